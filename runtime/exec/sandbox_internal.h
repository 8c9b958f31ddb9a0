/* Shared by the sandbox executor's files (exec/sandbox*.c): the executor,
 * an attempt, a task's inputs as read from its spec, and the functions that
 * cross between the files. Not for use outside runtime/exec/. */
#ifndef JR_EXEC_SANDBOX_INTERNAL_H
#define JR_EXEC_SANDBOX_INTERNAL_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "exec/exec.h"
#include "exec/jv.h"
#include "exec/record.h"
#include "exec/sbserver.h"
#include "exec/spool.h"
#include "http/client.h"
#include "image/image.h"

#define DEFAULT_LOG_CAP (1024 * 1024)
#define DEFAULT_ORPHAN_MS (10 * 60 * 1000)
#define DEFAULT_PIDS 1024
#define MAX_INPUTS 48
#define STATUS_MAX 4096
#define URL_MAX_BYTES (1024LL * 1024 * 1024) /* default cap of a url input */
#define URL_TIMEOUT_MS (10 * 60 * 1000)

/* A url input being downloaded while the helper waits at its gate. */
struct url_fetch {
    struct jr_exec_proc *p;
    struct jr_http_get *f;       /* NULL once ended */
    char *url;
    int input;                   /* 1-based, for messages */
};

struct sb_exec {
    uv_loop_t *loop;
    char *exe, *cgroup_parent, *network;
    char *helper;                /* the server: jobrt-sandbox or exe */
    struct jr_sbs *server;       /* takes the starts; NULL until the first */
    int nservers;                /* servers not yet told lost (a replaced one
                                  * may still have attempts to end) */
    struct jr_exec_proc *procs;  /* attempts being watched */
    int nprocs;                  /* attempts not yet freed */
    int closing;                 /* closed by the scheduler: goes with the
                                  * server and the last attempt */
    int devnull;                 /* the helpers' stdout and stderr */
    char **images;               /* name, root, name, root, ..., NULL */
    struct jr_image_store *image_store; /* consulted first; NULL = none */
    char **pull_hosts;           /* on-demand registries, NULL-terminated */
    char **host_paths;
    int64_t grace_ms, log_cap, orphan_ms;
    uint64_t counter;            /* makes cgroup names unique */
    struct jr_tls_ctx *tls;      /* https downloads' client context, lazily */
};

/* An attempt: a helper this daemon started (through the server), or one
 * a previous daemon started that this one attached to. Either way it ends
 * when the helper has sent its outcome line and ended its side of the
 * control connection, or, without the line, when it has exited (its
 * outcome is then the spool's last record, if anywhere); its output is in
 * the spool. */
struct jr_exec_proc {
    struct sb_exec *ex;
    struct jr_exec_proc *next, **prevp; /* in ex->procs while linked */
    struct jr_exec_cbs cbs;      /* the scheduler's log, progress, done */
    void *arg;
    char *spool_path;            /* the attempt's spool, in the task's folder */
    struct jr_exec_spool spool;
    int gate_fd;                 /* write end of the gate, -1 once used */
    uv_pipe_t ctl;               /* the control connection */
    uv_poll_t exit_poll;         /* attached, not connected: its pidfd */
    uv_timer_t kick;             /* attached: its first read, from the loop */
    int ctl_open, poll_open;     /* whether those handles were opened */
    int open_handles;            /* handles not yet closed */
    int pidfd;                   /* attached: the helper (its start time
                                  * checked), -1 otherwise */
    struct jr_sbs *server;       /* started here: the helper's parent; NULL
                                  * once lost, or attached */
    int64_t pid;
    int attached;
    int woken;                   /* the helper spooled something ('o') */
    int line_on_ctl;             /* its outcome came on the connection: 'k' */
    int ctl_eof;                 /* the helper let go of the attempt's files */
    int exited, exit_signal;     /* the server's notice (started here), or
                                  * its pidfd (attached) */
    int64_t exit_status;
    int lost;                    /* its server went: no exit notice */
    int gone;                    /* attached to a helper already gone */
    char gone_why[256];          /* why, when it was not simply gone */
    int reported;                /* done was called (or detached) */
    char status_line[STATUS_MAX]; /* the outcome line sent on ctl */
    size_t status_len;
    char rbuf[256];              /* what one read of ctl brings */
    struct jr_exec_result result;
    uint64_t started;            /* uv_now at the start or the attach */
    struct url_fetch *fetches;   /* url inputs: go waits until all are in */
    int nfetches, fetching, go_wanted;
    char fetch_err[320];         /* a failed download: the attempt's error */
};

/* One input of a task, as read from its spec (strings point into it). */
struct input {
    const char *source;          /* inline, path, task-output, jobrt, url */
    const char *target;          /* absolute, in the sandbox */
    const char *data;            /* inline */
    size_t data_len;
    const char *path;            /* path: the host path */
    const char *task, *file;     /* task-output */
    const char *url;             /* url */
    int64_t max_bytes;
    char target_buf[PATH_MAX];
};

/* What a start needs of a task's spec; jr_sbexec_task_free frees it. */
struct sb_task {
    const char *root, *net;      /* the image's root, the network mode */
    struct jr_image_use use;     /* a stored image (has_use): its layers,
                                  * use lock and config defaults */
    int has_use;
    const char *image;           /* the name asked for */
    const char *const *entrypoint; /* the task's own (entrypoint_set) */
    size_t nentrypoint;
    int entrypoint_set;
    const char *const *domains;  /* network.domains (ndomains), NULL when not given */
    size_t ndomains;
    struct input *inputs;
    int ninputs;
};

/* The helper's argv, built up by jr_sbexec_build_args. */
struct argv_b {
    char **v;
    size_t n, cap;
    int failed;
};

/* sandbox.c: the executor; it goes once closed, its servers told lost and
 * its attempts freed. */
void jr_sbexec_free(struct sb_exec *ex);
void jr_sbexec_maybe_free(struct sb_exec *ex);
void jr_sbexec_free_list(char **v);

/* sandbox_spec.c: reading the task spec (at submit and at start). */
int jr_sbexec_check(void *self, const char *alias, const struct jr_task_setup *spec,
                    const char *const *deps, size_t ndeps, struct jr_err *e);
int jr_sbexec_read_task(const struct sb_exec *ex, const struct jr_exec_spec *spec,
                        struct sb_task *t, struct jr_err *e);
void jr_sbexec_task_free(struct sb_task *t);

/* sandbox_args.c: staging the inputs and the helper's argv (url_fd[i]
 * gets the fd of url input i's empty file; spool and control are the
 * attempt's spool file and control socket name). */
int jr_sbexec_build_args(struct sb_exec *ex, const struct jr_exec_spec *s,
                         const struct sb_task *t, const char *spool, const char *control,
                         int *url_fd, struct argv_b *a, struct jr_err *e);

/* sandbox_proc.c: starting an attempt, its gate, kill and detach. */
int jr_sbexec_start(void *self, const struct jr_exec_spec *spec,
                    const struct jr_exec_cbs *cbs, void *arg,
                    struct jr_exec_proc **out_proc, int64_t *pid, int64_t *pid_start,
                    char *record, struct jr_err *e);
void jr_sbexec_go(struct jr_exec_proc *p);
/* Writes "go" through the gate, or (shut) closes it unopened: the helper
 * then cancels. 1 if the gate was still shut. */
int jr_sbexec_gate(struct jr_exec_proc *p, int shut);
void jr_sbexec_kill(struct jr_exec_proc *p, int signum);
void jr_sbexec_detach(struct jr_exec_proc *p);

/* sandbox_watch.c: an attempt once its helper runs, started here or
 * attached: the control connection, the spool, the outcome, the end. */
/* A new attempt for the executor's list, with its handles initialised
 * (kick), reading the spool at spool_path from log_offset; NULL when out
 * of memory. */
struct jr_exec_proc *jr_sbexec_proc_new(struct sb_exec *ex, const char *spool_path,
                                        const struct jr_exec_cbs *cbs, void *arg,
                                        int64_t log_offset);
/* Watches the control connection on fd (taken). JR_OK or an error (fd
 * closed). */
int jr_sbexec_watch(struct jr_exec_proc *p, int fd, struct jr_err *e);
/* Attached to a helper that cannot be connected to: its end is its pidfd
 * (taken). */
int jr_sbexec_watch_exit(struct jr_exec_proc *p, int pidfd, struct jr_err *e);
/* Calls maybe_done from the loop soon (a read of what is spooled, and the
 * end of an attempt whose helper is already gone). */
void jr_sbexec_kick(struct jr_exec_proc *p);
/* The server reaped p's helper (status as from waitpid), or (-1) is lost. */
void jr_sbexec_helper_exited(struct jr_exec_proc *p, int status);
/* Stops watching and frees p once its handles have closed; no callback
 * follows. */
void jr_sbexec_release(struct jr_exec_proc *p);

/* sandbox_attach.c: a previous daemon's attempt. */
int jr_sbexec_attach(void *self, const struct jr_exec_attach *a,
                     const struct jr_exec_cbs *cbs, void *arg, struct jr_exec_proc **out,
                     struct jr_err *e);

/* sandbox_fetch.c: url inputs downloaded while the helper waits at its
 * gate (fds in url_fd are taken, -1 after). */
void jr_sbexec_start_fetches(struct sb_exec *ex, struct jr_exec_proc *p,
                             const struct input *inputs, int ninputs, int *url_fd);
void jr_sbexec_abort_fetches(struct jr_exec_proc *p);

#endif
