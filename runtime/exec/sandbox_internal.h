/* Shared by the sandbox executor's files (exec/sandbox*.c): the executor,
 * an attempt, a task's inputs as read from its spec, and the functions that
 * cross between the files. Not for use outside runtime/exec/. */
#ifndef JR_EXEC_SANDBOX_INTERNAL_H
#define JR_EXEC_SANDBOX_INTERNAL_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "exec/child.h"
#include "exec/exec.h"
#include "http/client.h"
#include "exec/jv.h"
#include "exec/sbserver.h"

#define DEFAULT_LOG_CAP (1024 * 1024)
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
    struct jr_exec_proc *procs;  /* attempts whose helper may not have exited */
    int closing;                 /* closed by the scheduler: goes with the server */
    char **images;               /* name, root, name, root, ..., NULL */
    char **host_paths;
    int64_t grace_ms, log_cap;
    uint64_t counter;
    struct jr_tls_ctx *tls;      /* https downloads' client context, lazily */
};

struct jr_exec_proc {
    struct jr_exec_child c;      /* gate, stdout/stderr, callbacks */
    struct jr_exec_proc *next, **prevp; /* in ex->procs while linked */
    struct jr_sbs *server;       /* the helper's parent; NULL once lost */
    uv_pipe_t status;            /* the helper's outcome line (fd 4) */
    char status_line[STATUS_MAX];
    size_t status_len;
    int64_t pid;
    int exited, exit_signal;
    int lost;                    /* its server went: no exit status */
    int status_eof;              /* the helper's status pipe has closed */
    int reported;                /* done was called: only the reap is left */
    int64_t exit_status;
    struct jr_exec_result result;
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
    struct jr_jv *spec;          /* the parsed spec: inputs point into it */
    const char *root, *net;      /* the image's root, the network mode */
    const struct jr_jv *domains; /* network.domains, NULL when not given */
    struct input *inputs;
    int ninputs;
};

/* The helper's argv, built up by jr_sbexec_build_args. */
struct argv_b {
    char **v;
    size_t n, cap;
    int failed;
};

/* sandbox.c: the executor. */
void jr_sbexec_free(struct sb_exec *ex);
void jr_sbexec_free_list(char **v);

/* sandbox_spec.c: reading the task spec (at submit and at start). */
int jr_sbexec_check(void *self, const char *alias, const char *spec_json,
                    const char *const *deps, size_t ndeps, struct jr_err *e);
int jr_sbexec_read_task(const struct sb_exec *ex, const struct jr_exec_spec *spec,
                        struct sb_task *t, struct jr_err *e);
void jr_sbexec_task_free(struct sb_task *t);

/* sandbox_args.c: staging the inputs and the helper's argv (url_fd[i]
 * gets the fd of url input i's empty file). */
int jr_sbexec_build_args(struct sb_exec *ex, const struct jr_exec_spec *s,
                         const struct sb_task *t, int *url_fd, struct argv_b *a,
                         struct jr_err *e);

/* sandbox_proc.c: an attempt's life. */
int jr_sbexec_start(void *self, const struct jr_exec_spec *spec,
                    const struct jr_exec_cbs *cbs, void *arg,
                    struct jr_exec_proc **out_proc, int64_t *pid, int64_t *pid_start,
                    struct jr_err *e);
void jr_sbexec_go(struct jr_exec_proc *p);
void jr_sbexec_kill(struct jr_exec_proc *p, int signum);

/* sandbox_fetch.c: url inputs downloaded while the helper waits at its
 * gate (fds in url_fd are taken, -1 after). */
void jr_sbexec_start_fetches(struct sb_exec *ex, struct jr_exec_proc *p,
                             const struct input *inputs, int ninputs, int *url_fd);
void jr_sbexec_abort_fetches(struct jr_exec_proc *p);

#endif
