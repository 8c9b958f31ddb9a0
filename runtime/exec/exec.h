/* The executor interface: how the scheduler runs one task. A task starts
 * held at a gate and runs its command only after go(), which the scheduler
 * calls once the task's "running" row is on disk (so a crash can never leave
 * an unrecorded task running). Backends: plain uv_spawn (exec/spawn.c); the
 * sandbox helper replaces it behind the same table, and its tasks outlive
 * the daemon: a later daemon reattaches to them (attach, exec/record.h). */
#ifndef JR_EXEC_H
#define JR_EXEC_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "spec.h"
#include "store/err.h"

enum jr_outcome {
    JR_OUT_NONE, JR_OUT_EXITED, JR_OUT_SIGNALED, JR_OUT_OOM, JR_OUT_TIMEOUT,
    JR_OUT_PIDS_LIMIT, JR_OUT_SECCOMP, JR_OUT_SETUP_ERROR, JR_OUT_CANCELED,
    JR_OUT_ORPHANED,           /* its helper stopped it: no daemon for too long */
    JR_OUT_LOST,               /* its helper is gone without an outcome */
    JR_OUT_LAST = JR_OUT_LOST
};

/* "exited", "signaled", ...; NULL for JR_OUT_NONE. */
const char *jr_exec_outcome_name(int outcome);

struct jr_exec_spec {
    char *const *argv;         /* NULL-terminated, argv[0] is the program */
    char *const *env;          /* NULL-terminated "K=V" list: the whole env
                                * as the host sees it (the spawn backend) */
    const char *cwd;           /* host path, must exist (the spawn backend) */
    const char *job_id, *task; /* for messages and task directories */
    int64_t cpu, memory, gpu;  /* limits (millicores, bytes, count) */
    /* What a sandboxing backend needs besides; the spawn backend ignores it. */
    char *const *task_env;     /* NULL-terminated: the task's own env only */
    const char *workdir;       /* as submitted (NULL = default) */
    const char *task_dir;      /* DATA/jobs/<job>/<task>: inputs, outputs, work */
    const char *job_dir;       /* DATA/jobs/<job>: the deps' outputs */
    const struct jr_task_setup *setup; /* image, network, inputs as submitted;
                                * NULL for a backend that is not sandboxed */
    int64_t attempt, timeout_ms;
};

struct jr_exec_result {
    int outcome;               /* JR_OUT_* */
    int exit_code;             /* -1 when none */
    int signal;
    int64_t duration_ms;
    int64_t cpu_ms, max_rss_bytes, wall_ms; /* -1 = unknown */
    int64_t ended_ms;          /* when it ended (ms since the epoch), 0 = now:
                                * earlier for one that ended while no
                                * daemon was attached */
    char message[320];         /* why it failed ("" = nothing to add) */
};

struct jr_exec_cbs {
    /* One line of output (without the newline); stream 1 = stdout, 2 = stderr. */
    void (*log)(void *arg, int stream, const char *line, size_t len);
    /* Optional (NULL = not kept): the lines so far are the attempt's output
     * spool up to byte offset. Called in the same loop callback as their log
     * calls, so the store writes both in one transaction; a reattach then
     * replays from the offset it kept (jr_exec_attach.log_offset). */
    void (*progress)(void *arg, int64_t offset);
    /* Exactly once, after the process exited and its output was drained.
     * The proc is gone when this returns. */
    void (*done)(void *arg, const struct jr_exec_result *r);
};

struct jr_exec_proc;

/* What the scheduler kept of an attempt a previous daemon started. */
struct jr_exec_attach {
    const char *job_id, *task;
    const char *task_dir;      /* DATA/jobs/<job>/<task> */
    int64_t attempt;
    int64_t pid, pid_start;    /* as start returned them */
    const char *record;        /* as start returned it; NULL = none */
    int64_t log_offset;        /* spool bytes already logged */
};

/* Bytes of the record start returns (a backend's text, versioned). */
#define JR_EXEC_RECORD_SIZE 1024

struct jr_exec_ops {
    const char *name;
    /* Start the task held at its gate. On success fills *out, *pid (its
     * process group), *pid_start (/proc start time, to recognise it after
     * a restart) and record (JR_EXEC_RECORD_SIZE bytes: what attach will
     * need, "" = nothing; the store keeps it with the running row); the
     * callbacks run only after start returned 0. */
    int (*start)(void *self, const struct jr_exec_spec *spec,
                 const struct jr_exec_cbs *cbs, void *arg,
                 struct jr_exec_proc **out, int64_t *pid, int64_t *pid_start,
                 char *record, struct jr_err *e);
    /* Release the gate: the command runs. */
    void (*go)(struct jr_exec_proc *p);
    /* Send signum to the task's whole process tree. */
    void (*kill)(struct jr_exec_proc *p, int signum);
    /* Free the executor; processes still running keep their callbacks. */
    void (*close)(void *self);
    /* Optional (NULL = accept all): refuse at submit a task this backend
     * could never start (unknown image, a host path outside the allow-list,
     * bad inputs), with JR_E_INVALID and a message naming the task. */
    int (*check)(void *self, const char *alias, const struct jr_task_setup *setup,
                 const char *const *deps, size_t ndeps, struct jr_err *e);
    /* Optional (NULL: tasks do not outlive the daemon): take over attempt a
     * of a previous daemon. On JR_OK *out behaves as a started attempt that
     * got its go: log, progress and done follow from the loop (never inside
     * attach): its output from a->log_offset on, and its real outcome, or
     * JR_OUT_LOST when its helper is gone without one (JR_OUT_CANCELED with
     * a message when it never passed its gate). JR_E_NOT_FOUND: no record
     * of the attempt (a->record NULL or not this backend's; the caller
     * stops what is left and fails it). */
    int (*attach)(void *self, const struct jr_exec_attach *a,
                  const struct jr_exec_cbs *cbs, void *arg, struct jr_exec_proc **out,
                  struct jr_err *e);
    /* Optional (NULL: close kills instead): let p go without stopping it;
     * no callback follows, p is freed. A later daemon reattaches. */
    void (*detach)(struct jr_exec_proc *p);
    /* 1: the backend builds the task's own root, env and workdir (the
     * scheduler then makes only the task directories). */
    int sandboxed;
    /* 1: the backend keeps the task's timeout itself, from when the task
     * really starts (a wait in a cluster's queue does not count), and
     * reports JR_OUT_TIMEOUT; the scheduler arms no timer of its own. */
    int times_out;
};

struct jr_executor {
    const struct jr_exec_ops *ops;
    void *self;
};

/* The plain uv_spawn backend. */
int jr_exec_spawn_open(uv_loop_t *loop, struct jr_executor *out, struct jr_err *e);

/* The sandbox backend: one `jobrt sandbox` helper per attempt. */
struct jr_image_store;
struct jr_exec_sandbox_opts {
    const char *exe;             /* the jobrt binary (the daemon's own path) */
    const char *cgroup_parent;   /* e.g. "jobrt/d-1a2b3c4d" */
    const char *network;         /* default mode: none | full | allow */
    const char *const *images;   /* NULL-terminated name, root, name, root... */
    struct jr_image_store *image_store; /* names resolved here first (not
                                  * owned; NULL = none) */
    const char *const *pull_hosts; /* NULL-terminated registry hosts whose
                                  * images are pulled on demand (a job is
                                  * started once they are in the store) */
    const char *const *host_paths; /* NULL-terminated allow-list (absolute) */
    int64_t grace_ms;            /* SIGTERM -> SIGKILL inside the helper */
    int64_t log_cap;             /* bytes of output logged per attempt (0 = 1 MiB) */
    int64_t orphan_timeout_ms;   /* a helper with no daemon stops its task
                                  * after this (0 = 10 min, < 0 = never) */
};

/* Copies what o points to. */
int jr_exec_sandbox_open(uv_loop_t *loop, const struct jr_exec_sandbox_opts *o,
                         struct jr_executor *out, struct jr_err *e);

/* The Slurm backend (exec/slurm*.c): each task a Slurm job, or an srun
 * step of a batch that small tasks ready together share. */
struct jr_loop;
struct jr_exec_slurm_opts {
    struct jr_loop *log;         /* warnings (Slurm unreachable, ...) */
    const char *data_dir;        /* batch scripts go under DATA/slurm */
    const char *partition;       /* NULL: the cluster's default */
    const char *account;         /* NULL: none asked */
    const char *const *sbatch_args; /* NULL-terminated, added to every sbatch */
    const char *bin;             /* folder of sbatch, squeue, ...; NULL: PATH */
    const char *conf;            /* SLURM_CONF for them; NULL: Slurm's default */
    int64_t poll_ms;             /* one squeue for all jobs this often (0 = 1 s) */
    int64_t grace_ms;            /* a timed-out task's SIGTERM -> SIGKILL (0 = 10 s) */
    int64_t log_cap;             /* bytes of output logged per attempt (0 = 1 MiB) */
    int64_t command_timeout_ms;  /* a Slurm command is killed after (0 = 60 s) */
    int batch_max;               /* attempts per batch; <= 1: no batching */
    int batch_width;             /* attempts of a batch running at once */
    int64_t batch_window_ms;     /* how long a batch waits for more */
    int64_t batch_max_cpu, batch_max_memory; /* what a small task may ask */
    /* NULL: tasks run as plain processes on their node; else under the
     * sandbox helper there, with these options (exe: the daemon's binary,
     * beside which jobrt-sandbox sits at the same path on the nodes). */
    const struct jr_exec_sandbox_opts *sandbox;
};

/* Copies what o points to. No Slurm command runs before the first task. */
int jr_exec_slurm_open(uv_loop_t *loop, const struct jr_exec_slurm_opts *o,
                       struct jr_executor *out, struct jr_err *e);

/* Start time of pid from /proc (clock ticks since boot), 0 if gone. */
int64_t jr_exec_pid_start(int64_t pid);

/* After a restart: if pid still runs with the same start time, SIGKILL its
 * process group and wait (bounded, start-up only) until no member is left.
 * Returns 1 if something was killed. */
int jr_exec_kill_stale(int64_t pid, int64_t pid_start);

#endif
