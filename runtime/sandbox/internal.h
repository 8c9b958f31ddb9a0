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

struct jr_sb_box;

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
 * title, what is known of the host (NULL: learn it now) and a warm
 * sandbox (NULL: none; used if it fits the task, else discarded). */
int jr_sandbox_run(int argc, char **argv, char *title, size_t title_len,
                   const struct jr_sb_host *host, struct jr_sb_box *warm);

/* ---- io.c: all len bytes to or from fd, across short counts and EINTR;
 * 0, or -1 at end of file or on an error (send: without SIGPIPE) ---- */
int jr_sb_read_full(int fd, void *buf, size_t len);
int jr_sb_write_full(int fd, const void *buf, size_t len);
/* On a non-blocking fd: waits up to wait_ms each time it is full. */
int jr_sb_write_full_wait(int fd, const void *buf, size_t len, int wait_ms);
int jr_sb_send_full(int fd, const void *buf, size_t len);

/* ---- warm.c: the sandbox server's helpers ---- */
struct jr_sbs_req;
/* The header of the next request on fd and the fds riding with it (at most
 * 4; *nfds says how many). -1 on end of file or a broken stream. */
int jr_sb_recv_req(int fd, struct jr_sbs_req *r, int fds[4], int *nfds);
/* Runs a start request (fds: gate, stdout, stderr, status; words: len
 * bytes) as `jobrt sandbox` would, in warm if it fits. cold: a helper
 * forked for it from the server (fresh signal state and session, every
 * other fd closed); else a warm one, whose sandbox's fds stay. */
_Noreturn void jr_sb_helper_main(const int fds[4], char *words, uint32_t len, int cold,
                                 char *argv0, char *title, size_t title_len,
                                 const struct jr_sb_host *host, struct jr_sb_box *warm);
/* Prepares a box (image host, network namespace, the cgroup parent) while
 * no task is known, then serves the one start request the server forwards
 * on sock (server.h's wire) as a forked helper would, or ends (its box
 * discarded) when sock closes. Never returns. */
_Noreturn void jr_sb_warm_main(int sock, const char *parent, char *argv0, char *title,
                               size_t title_len, const struct jr_sb_host *host);

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

/* The cgroup2 leaf alone (parent/name), made before the sandbox's pid 1 is
 * cloned into it, when its task may not be known yet (a warm sandbox's
 * keeps its name: cgroup2 has no rename); none (and 0) when there is no
 * writable cgroup2. 0 or -1 with e. */
int jr_sb_cg_prepare(struct jr_sb_cg *cg, const char *parent, const char *name,
                     const struct jr_sb_host *host, struct jr_sb_err *e);
/* Creates the task's leaves (memory, pids, cpu, cpuacct as v1 or v2, plus a
 * cgroup2 leaf for kill/CLONE_INTO_CGROUP: the one jr_sb_cg_prepare made,
 * which cg holds, serves every cgroup2 role) and writes the limits. A role
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
    int nimage;                  /* m[0..nimage) is the image; the task's
                                  * binds follow */
    int layer_fd[JR_SB_MAX_LAYERS]; /* --layer clones, bottom first */
    int nlayers;
    int dev_fd[JR_SB_NDEV];      /* host char devices, bound into /dev */
};

extern const char *const jr_sb_dev_names[JR_SB_NDEV];

/* Empties p (n and fds; the entries are written as they are used). */
void jr_sb_plan_init(struct jr_sb_plan *p);
/* Resolves the image ("host" or a root folder; or, given nlayers, the
 * layers the child stacks with overlayfs) and the devices as the host sees
 * them (so sources the task's uids cannot reach still bind). 0 or -1 with
 * e. */
int jr_sb_plan_image(struct jr_sb_plan *p, const char *image, const char *const *layers,
                     int nlayers, struct jr_sb_err *e);
/* Appends the task's binds (o->binds, in order). 0 or -1 with e. */
int jr_sb_plan_binds(struct jr_sb_plan *p, const struct jr_sandbox_opts *o,
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
#define JR_SB_CHILD_CLOSE 16
struct jr_sb_child {
    const struct jr_sandbox_opts *o; /* set by pid 1 once its task came */
    const struct jr_sb_plan *plan;   /* the image's part */
    const struct sock_fprog *filter; /* NULL: no seccomp */
    char *const *envp;           /* set by pid 1 with o */
    const char *path;            /* the sandbox's PATH, for the exec search */
    int sync_fd, err_fd, status_fd;
    int task_fd;                 /* where the task comes (box.c's message) */
    int close_fds[JR_SB_CHILD_CLOSE]; /* the parent's ends and fds: closed first */
    int nclose;
    int netns;
    int proxy_fd;                /* netns: where an allow listener goes, else -1 */
    int rootless;                /* 1: only our own uid is mapped */
    int cap_last;
    char *title;                 /* the helper's argv+environ strings, which */
    size_t title_len;            /* init blanks so the task cannot read them */
};

/* What pid 1 is sent when its task starts (then the words, len bytes:
 * the helper's options after "sandbox", each NUL-terminated, which pid 1
 * parses as the helper did). Rides with fds: the task's stdout and
 * stderr, then one detached mount per bind. */
struct jr_sb_task_msg {
    uint32_t len;
    uint32_t nbinds;
    unsigned char is_dir[JR_SB_MAX_BINDS];
};

/* Writes e on the child's error pipe and exits 126 (pid 1, or the task
 * before its exec). */
_Noreturn void jr_sb_child_fail(const struct jr_sb_child *c, struct jr_sb_err *e);
/* The task's clone entry (task.c), c its jr_sb_child with o, envp and path
 * set: drops every privilege, installs seccomp and execs; never returns. */
int jr_sb_task_main(void *c);

/* The sandbox's environment: the user's entries, plus PATH and HOME unless
 * given, and for network allow the proxy variables (unless given). envp
 * has room for JR_SB_MAX_ENV + 9; proxy_kv holds their text. */
void jr_sb_build_env(const struct jr_sandbox_opts *o, const char **envp,
                     const char **path, char (*proxy_kv)[48]);

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
 * parent, builds the root from the image and pivots into it, then waits
 * for its task on task_fd (a jr_sb_task_msg), mounts the task's binds,
 * /tmp and /dev/shm, starts the task and becomes its init. Reports setup
 * failures as a jr_sb_err on err_fd and, when the main task ends, a
 * jr_sb_report on status_fd. Never returns. */
_Noreturn void jr_sb_child_main(const struct jr_sb_child *c);

/* ---- a prepared sandbox (box.c) ---- */
/* Everything of a sandbox that does not depend on its task, made ahead:
 * the image's mounts, the cgroup2 leaf, pid 1 cloned into the namespaces
 * with its ids mapped, its root built, waiting for its task. The sandbox
 * server keeps a few warm (warm.c); a helper without one prepares its own
 * once it knows its task. */
struct jr_sb_box {
    struct jr_sb_plan *plan;     /* the image's mounts; the task's binds are
                                  * appended */
    struct jr_sb_cg cg;          /* the cgroup2 leaf, if one could be made */
    const char *image;           /* as --image names it */
    const char *const *layers;   /* as --layer names them (nlayers) */
    int nlayers;
    char parent[128];            /* the cgroup parent */
    int netns;
    pid_t pid;                   /* pid 1 (0: none) */
    int pidfd, err_r, status_r;  /* pid 1's pidfd, setup-error and report pipes */
    int task_w;                  /* where its task is sent */
    int proxy_r;                 /* netns: where an allow listener comes */
    int into_cgroup;             /* cloned into the cgroup2 leaf */
};

/* Prepares b for image, or its layers (nlayers; the strings must outlive
 * b), and a network namespace when netns, in the cgroup2 leaf
 * parent/name; close_fds (n) are the caller's fds pid 1 must not keep. 0
 * or -1 with e (b is then empty). */
int jr_sb_box_prepare(struct jr_sb_box *b, const char *image, const char *const *layers,
                      int nlayers, int netns, const char *parent, const char *name,
                      const struct jr_sb_host *host, char *title, size_t title_len,
                      const int *close_fds, int n, struct jr_sb_err *e);
/* Whether b serves a task with options o (same image or layers, network
 * namespace and cgroup parent, and its pid 1 has not failed). */
int jr_sb_box_fits(const struct jr_sb_box *b, const struct jr_sandbox_opts *o);
/* Sends pid 1 its task: the words (len bytes; see jr_sb_task_msg), the
 * task's stdout and stderr and the plan's binds. 0 or -1 with e. */
int jr_sb_box_start(struct jr_sb_box *b, const char *words, size_t len, int out, int err,
                    struct jr_sb_err *e);
/* Kills and reaps pid 1, removes the leaf, closes everything: b is empty. */
void jr_sb_box_discard(struct jr_sb_box *b);
/* Closes the fds b still holds and frees its plan, leaving its pid 1 and
 * cgroup to whoever took them. */
void jr_sb_box_close(struct jr_sb_box *b);

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
