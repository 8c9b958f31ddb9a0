/* What the sandbox helper's files share among themselves: the setup-error
 * record, the cgroup set of one task, the mount plan built by the parent and
 * the arguments of the child that becomes pid 1. Not for the rest of jobrt. */
#ifndef JR_SANDBOX_INTERNAL_H
#define JR_SANDBOX_INTERNAL_H

#include <linux/filter.h>
#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

#include "sandbox/sandbox.h"

/* A setup failure: the stage that failed, its errno and a short detail.
 * Small enough to go through a pipe in one atomic write. */
struct jr_sb_err {
    int err;
    char stage[48];
    char detail[200];
};

/* The contiguous block of the process's argv and environ strings, which
 * becomes pid 1's process title. */
size_t jr_sb_title_area(int argc, char **argv, char **start);

/* Fills e and returns -1, so callers can `return jr_sb_fail(...)`. */
int jr_sb_fail(struct jr_sb_err *e, const char *stage, int err,
               const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* ---- what a helper learns of the host (host.c) ---- */
/* The same for every task: the sandbox server learns it once and its
 * helpers inherit it; a helper run on its own learns it itself. */
struct jr_sb_host {
    struct sock_fprog filter;    /* the tasks' seccomp filter */
    struct jr_sandbox_cgmounts mounts;
    char v2_controllers[256];    /* the cgroup2 root's cgroup.controllers */
    int cap_last;                /* /proc/sys/kernel/cap_last_cap */
};

/* 0 or -1 with e (the seccomp filter could not be built). */
int jr_sb_host_init(struct jr_sb_host *h, struct jr_sb_err *e);
void jr_sb_host_free(struct jr_sb_host *h);

/* jr_sandbox_main's work, with the memory that becomes pid 1's process
 * title and what is known of the host (NULL: learn it now). */
int jr_sandbox_run(int argc, char **argv, char *title, size_t title_len,
                   const struct jr_sb_host *host);

/* ---- cgroups of one task (cgroup.c) ---- */
struct jr_sb_cg {
    struct jr_sandbox_cgmounts mounts;
    char dir[JR_CG_NROLES][320]; /* the task's leaf per role, "" if none */
    int v2_role[JR_CG_NROLES];   /* role served by cgroup2 files */
    uint32_t layers;             /* cgroup, memory/pids/cpu_limit, cgroup_kill */
};

struct jr_sb_cg_stats {
    int64_t cpu_ms, max_rss;     /* -1 = unknown */
    int64_t oom_kills, pids_max; /* events counted by the kernel */
};

/* Creates the task's leaves (memory, pids, cpu, cpuacct as v1 or v2, plus a
 * cgroup2 leaf for kill/CLONE_INTO_CGROUP) and writes the limits. A role
 * whose hierarchy is missing or not writable is skipped unless a limit needs
 * it. Returns 0 or -1 with e; on -1 what was created is removed. */
int jr_sb_cg_setup(struct jr_sb_cg *cg, const struct jr_sandbox_opts *o,
                   const char *name, const struct jr_sb_host *host, struct jr_sb_err *e);
/* An O_DIRECTORY fd of the cgroup2 leaf for CLONE_INTO_CGROUP, or -1. */
int jr_sb_cg_v2_fd(const struct jr_sb_cg *cg);
/* Moves pid into every leaf (skipping the cgroup2 one if skip_v2). */
int jr_sb_cg_join(const struct jr_sb_cg *cg, pid_t pid, int skip_v2,
                  struct jr_sb_err *e);
/* The cgroup hierarchies from /proc/self/mountinfo; 0 or -1 with errno. */
int jr_sb_cg_load_mounts(struct jr_sandbox_cgmounts *m);
void jr_sb_cg_stats(const struct jr_sb_cg *cg, struct jr_sb_cg_stats *s);
/* SIGKILLs everything in the leaves (cgroup.kill when there is one). */
void jr_sb_cg_kill(const struct jr_sb_cg *cg);
/* Waits (bounded) until the leaves are empty, then removes them. */
void jr_sb_cg_destroy(struct jr_sb_cg *cg);
/* The cgroup2 leaf under the cgroup parent where the sandbox server and
 * its helpers live, out of the daemon's cgroup (not a task's: the
 * stale-cgroup sweep only removes it when it is empty). */
#define JR_SB_SHIM_CGROUP "shims"
/* Moves the calling process into the cgroup2 leaf parent/name (made if
 * missing); v1 hierarchies stay as they are. 0 or -1 with errno (no
 * cgroup2, or not allowed). */
int jr_sb_cg_place_self(const char *parent, const char *name);
/* Reads the whole (small) file into buf; returns its length or -1. */
ssize_t jr_sb_read_file(const char *path, char *buf, size_t len);
/* Writes s to an existing file; 0 or -1 with errno. */
int jr_sb_write_file(const char *path, const char *s);

/* ---- the mount plan (plan.c): detached mounts made by the parent ---- */
enum { JR_SB_M_BIND, JR_SB_M_SYMLINK };

struct jr_sb_mount {
    int kind;
    int fd;                      /* open_tree() clone, already ro/nosuid/... */
    int is_dir;
    char target[256];            /* relative to the new root, no leading '/' */
    char link[256];              /* symlink contents */
};

#define JR_SB_MAX_MOUNTS 160
#define JR_SB_NDEV 6

struct jr_sb_plan {
    struct jr_sb_mount m[JR_SB_MAX_MOUNTS];
    int n;
    int layer_fd[JR_SB_MAX_LAYERS]; /* --layer clones, bottom first */
    int nlayers;
    int dev_fd[JR_SB_NDEV];      /* host char devices, bound into /dev */
};

extern const char *const jr_sb_dev_names[JR_SB_NDEV];

/* Resolves the image and the binds as the host sees them (so sources the
 * task's uids cannot reach still bind). Returns 0 or -1 with e. */
int jr_sb_plan_build(struct jr_sb_plan *p, const struct jr_sandbox_opts *o,
                     struct jr_sb_err *e);
void jr_sb_plan_close(struct jr_sb_plan *p);

/* ---- seccomp (seccomp.c) ---- */
/* Builds the filter with libseccomp and exports it as BPF into prog
 * (prog->filter is malloc'ed; free it). 0 or -1 with e. */
int jr_sb_seccomp_build(struct sock_fprog *prog, struct jr_sb_err *e);

/* ---- the allow-list proxy (proxy.c), in the supervisor's poll loop ---- */
#define JR_SB_PROXY_MAX_CONNS 64
#define JR_SB_PROXY_MAX_FDS (2 + 2 * JR_SB_PROXY_MAX_CONNS)

struct pollfd;
struct jr_sb_pconn;

struct jr_sb_proxy {
    const struct jr_sandbox_opts *o; /* domains */
    int ctl_fd;                  /* socketpair end the listener arrives on */
    int lfd;                     /* the listener (in the task's netns) */
    struct jr_sb_pconn *c[JR_SB_PROXY_MAX_CONNS];
    int nconns;
    int who[JR_SB_PROXY_MAX_FDS], side[JR_SB_PROXY_MAX_FDS], npoll;
    int64_t now;
};

/* Takes ctl_fd (closed by jr_sb_proxy_close). */
void jr_sb_proxy_init(struct jr_sb_proxy *px, const struct jr_sandbox_opts *o, int ctl_fd);
/* Fills up to max pollfds; lowers *wait (ms, -1 = none) to the next
 * deadline. Returns how many were filled. */
int jr_sb_proxy_fds(struct jr_sb_proxy *px, struct pollfd *p, int max, int64_t now,
                    int64_t *wait);
/* Handles the revents of the n pollfds filled last, and deadlines. */
void jr_sb_proxy_run(struct jr_sb_proxy *px, const struct pollfd *p, int n, int64_t now);
void jr_sb_proxy_close(struct jr_sb_proxy *px);

/* ---- a task that outlives its daemon (--spool) ---- */
/* spool.c: the task's output into the spool file as line records. */
#define JR_SB_SPOOL_IN 3         /* the task's stdout, stderr; our messages */
struct jr_sb_spool {
    const char *path;            /* made at the first line */
    int fd;                      /* the spool (O_APPEND), -1 = none yet */
    int failed;                  /* it could not be made: output is dropped */
    int in[JR_SB_SPOOL_IN];      /* read ends of the task's stdout and stderr
                                  * and of our messages (as stderr), -1 once
                                  * at their end */
    char *line[JR_SB_SPOOL_IN];  /* a partial line per input */
    size_t len[JR_SB_SPOOL_IN];
    char *out;                   /* the records of one read */
    size_t outlen;
    int64_t logged, cap;         /* cap 0: no cap */
    int truncated;
    int appended;                /* writes to the spool so far */
};

/* Prepares the spool at path (made, emptied, at the first line). 0 or -1
 * with e. */
int jr_sb_spool_open(struct jr_sb_spool *sp, const char *path, int64_t cap,
                     struct jr_sb_err *e);
/* The pipes: wr gets the write ends, the task's stdout and stderr (for the
 * child) and ours (non-blocking, for our stderr). */
int jr_sb_spool_pipes(struct jr_sb_spool *sp, int wr[JR_SB_SPOOL_IN], struct jr_sb_err *e);
/* One non-blocking read of input k (0 stdout, 1 stderr, 2 ours): 1 when
 * records were appended. At its end the pipe is closed (in[k] = -1). */
int jr_sb_spool_read(struct jr_sb_spool *sp, int k);
/* Reads the pipes to their end (every writer is gone), at most ms. */
void jr_sb_spool_drain(struct jr_sb_spool *sp, int64_t ms);
/* Appends the outcome line as the last record ("R<line>"), making the
 * spool if the task printed nothing. 0 or -1. */
int jr_sb_spool_result(struct jr_sb_spool *sp, const char *line, size_t len);
void jr_sb_spool_close(struct jr_sb_spool *sp);

/* shim.c: the control socket, the attached daemon and the orphan clock. */
struct jr_sb_shim {
    int lfd;                     /* listening on the control socket, -1 =
                                  * none or at the end */
    int conn;                    /* the attached daemon, -1 = none */
    int conn_watched;            /* conn is a socket whose end we watch */
    int64_t alone_since;         /* ms since when no daemon is attached */
    int64_t orphan_ms;           /* 0 = never stop for that */
    uid_t uid;                   /* who may attach */
};

/* Listens on the control socket (o->control, if any); takes o->status_fd
 * as the first connection on success. 0 or -1 with e (status_fd then
 * untouched). */
int jr_sb_shim_open(struct jr_sb_shim *sh, const struct jr_sandbox_opts *o,
                    struct jr_sb_err *e);
/* The listener's and the connection's pollfds. */
void jr_sb_shim_fds(const struct jr_sb_shim *sh, struct pollfd *p);
/* Handles their revents: a new daemon, a gone one. */
void jr_sb_shim_handle(struct jr_sb_shim *sh, const struct pollfd *p, int64_t now);
/* 1 once the orphan timeout has passed; else lowers *wait (ms, -1 =
 * none) to its deadline when no daemon is attached. */
int jr_sb_shim_check(struct jr_sb_shim *sh, int64_t now, int64_t *wait);
/* Output was spooled: tells the attached daemon. */
void jr_sb_shim_wake(struct jr_sb_shim *sh);
/* The end: stops listening and sends the outcome line to the attached
 * daemon, ending our side. 0 when it went out, else -1. */
int jr_sb_shim_send(struct jr_sb_shim *sh, const char *line, size_t len);
/* Waits (at most ms) for the daemon's 'k': it has the outcome on disk.
 * 1 if it came, else 0 (then the outcome must be kept in the spool). The
 * connection is closed either way. */
int jr_sb_shim_acked(struct jr_sb_shim *sh, int64_t ms);
void jr_sb_shim_close(struct jr_sb_shim *sh);

/* ---- the child (child.c) ---- */
struct jr_sb_child {
    const struct jr_sandbox_opts *o;
    const struct jr_sb_plan *plan;
    const struct sock_fprog *filter; /* NULL: no seccomp */
    char *const *envp;
    const char *path;            /* the sandbox's PATH, for the exec search */
    int sync_fd, err_fd, status_fd;
    int close_fds[12];           /* the parent's ends and fds: closed first */
    int nclose;
    int netns;
    int proxy_fd;                /* allow: where the listener goes, else -1 */
    int rootless;                /* 1: only our own uid is mapped */
    int cap_last;
    char *title;                 /* the helper's argv+environ strings, which */
    size_t title_len;            /* init blanks so the task cannot read them */
};

/* What pid 1 sends on status_fd once the main task is reaped and every
 * other process of the namespace is killed and reaped: nothing of the task
 * runs or writes any more, only pid 1 itself and the namespaces' teardown
 * remain. cpu_ms and max_rss are pid 1's and its reaped descendants'
 * rusage (the parent's own RUSAGE_CHILDREN only has them once pid 1 is
 * reaped). Small enough for one atomic write. */
struct jr_sb_report {
    int status;                  /* the main task's wait status */
    int64_t cpu_ms, max_rss;
};

/* Runs in the clone3 child (pid 1 of the new namespaces): waits for the
 * parent, builds the root, forks the task and becomes its init. Reports
 * setup failures as a jr_sb_err on err_fd and, when the main task ends, a
 * jr_sb_report on status_fd. Never returns. */
_Noreturn void jr_sb_child_main(const struct jr_sb_child *c);

/* ---- the supervising parent's watch over one task (supervise.c) ---- */
/* Why the supervisor stopped the task (the first reason is reported). */
enum { R_NONE, R_TIMEOUT, R_CANCEL, R_OOM, R_PIDS, R_ORPHAN };

/* The supervisor's view of the running task (run.c fills it). */
struct jr_sb_sup {
    const struct jr_sandbox_opts *o;
    struct jr_sb_cg cg;
    int have_cg;
    pid_t pid;
    int pidfd, sigfd, err_r, status_r;
    int reason;
    int64_t t0, kill_at;
    struct jr_sb_err child_err;
    int have_child_err;
    struct jr_sb_report rep;     /* pid 1's report, when have_rep */
    int have_rep;
    struct jr_sb_proxy *proxy;   /* network allow, else NULL */
    struct jr_sb_shim *shim;     /* --spool, else NULL */
    struct jr_sb_spool *spool;   /* --spool: the task's output, else NULL */
    char outcome[2048];          /* --spool: the outcome line, once sent */
    size_t outcome_len;
};

int64_t jr_sb_now_ms(void);
/* SIGKILLs pid 1 and everything in the task's cgroups. */
void jr_sb_hard_kill(struct jr_sb_sup *s);
/* Waits until pid 1 reports the main task's end (1: pid 1 may still be
 * exiting) or ends without a report (0, its siginfo in si), enforcing the
 * timeout, cancel (SIGTERM on sigfd), the memory and pids limits and the
 * orphan timeout, and spooling the task's output. */
int jr_sb_supervise(struct jr_sb_sup *s, siginfo_t *si);
/* The outcome from what the supervisor saw, the report and the cgroups. */
void jr_sb_classify(struct jr_sb_sup *s, const siginfo_t *si, struct jr_sandbox_outcome *oc);

#endif
