/* The scheduler's in-memory model, shared by its files: only active jobs
 * (queued, running, or stopping with tasks still alive) live here; every
 * other job is only on disk. Not included outside runtime/sched/. */
#ifndef JR_SCHED_INTERNAL_H
#define JR_SCHED_INTERNAL_H

#include "sched/sched.h"

/* A task stopped by jr_sched_stop_all: it runs again at the next start. */
#define KILL_SHUTDOWN (JR_OUT_LAST + 1)

enum jstate { J_CREATED, J_AWAITING, J_REJECTED, J_QUEUED, J_RUNNING, J_SUCCEEDED,
              J_FAILED, J_CANCELED, J_SUSPENDED, J_NSTATES };
enum tstate { T_PENDING, T_READY, T_RUNNING, T_SUCCEEDED, T_FAILED, T_CANCELED,
              T_SKIPPED, T_NSTATES };

extern const char *const jr_jstate_names[J_NSTATES];
extern const char *const jr_tstate_names[T_NSTATES];
int jr_jstate_parse(const char *name);   /* -1 if unknown */
int jr_tstate_parse(const char *name);

struct sjob;

/* A timer owned by a task; freed by its close callback, so a task can be
 * freed while its timer is closing. */
struct stimer {
    uv_timer_t h;
    struct stask *task;          /* NULL once the task let go */
};

struct stask {
    struct sjob *job;
    int idx;
    char *alias;
    int state;
    int64_t priority, tolerable, retries, attempt;
    int64_t cpu, memory, gpu, timeout_ms;
    int *deps;
    int ndeps;
    char *group;                 /* NULL = a group of its own */
    int grp;                     /* index of the group's first task (its key) */
    char *argv; size_t argv_len;
    char *env; size_t env_len;
    char *workdir;
    char *spec;                  /* the task as submitted (JSON) */
    int64_t started_at;
    int64_t log_offset;          /* bytes of the attempt's spool logged */
    /* while a process exists */
    struct jr_exec_proc *proc;
    int64_t pid, pid_start;
    char *run_record;            /* the executor's record of it (NULL = none) */
    int kill_reason;             /* JR_OUT_TIMEOUT / JR_OUT_CANCELED /
                                  * KILL_SHUTDOWN / 0 */
    int gated;                   /* spawned, waiting for the commit */
    int in_ready;
    struct stimer *timer;
    /* last failure, kept for the job's error */
    char *error;
    /* ended while the store was unreachable: its outcome waits here */
    struct jr_exec_result *ended;
    /* why it waits, as the last dispatch decided (ready tasks) */
    unsigned char wait, wait_res;
    int64_t wait_behind;         /* Priority: the seq of the job ahead */
    char *wait_note;             /* Preparing: the executor's words */
    uint64_t prep_ticket;        /* the executor's preparation it waits for */
    int prepared;                /* the executor said it can start */
    uint64_t ready_ns;           /* uv_hrtime when it became ready */
};

struct sjob {
    struct sjob *prev, *next;
    struct jr_sched *sched;
    int64_t seq;
    char *id;
    int state;                   /* J_QUEUED / J_RUNNING, or the stop target */
    int stopping;                /* stop/cancel/suspend: wait for procs */
    int deleting;                /* deleted with force: no more rows or
                                  * events; removed once stopped */
    int lost;                    /* another instance took it over: no more
                                  * rows or events; dropped once stopped */
    int64_t priority, max_parallelism;
    int64_t created_at, started_at;
    int running;                 /* processes alive */
    /* Groups with a process alive: what max_parallelism counts. Without
     * named groups every task is its own and grp_running is NULL. */
    int groups_running;
    int *grp_running;            /* by group key: processes alive */
    int ntasks;
    struct stask *tasks;
};

struct jr_sched {
    uv_loop_t *loop;
    struct jr_store *st;
    struct jr_executor ex;
    struct jr_sched_opts opts;
    char *data_dir;
    struct jr_node node;
    struct jr_node used;         /* max_tasks field = running count */
    struct sjob jobs;            /* list head of active jobs */
    int njobs;
    struct stask **ready;
    size_t nready, cap_ready;
    int ready_dirty;
    int dispatching, dispatch_again;
    struct jr_store_waiter gate_waiter;
    int closing;
    int draining;                /* jr_sched_stop_all: nothing starts */
    struct jr_shared *shared;    /* on a shared store (shared.c), else NULL */
    const char *adopting;        /* recovering jobs another instance ran: why
                                  * their running tasks failed over */
};

struct active_list {
    struct jr_sched_jobrow *v;
    size_t n, cap;
    int failed;
};

/* What the scheduler reads of a job's row before acting on it. */
struct jr_sched_jobrow {
    int64_t seq, priority, max_par, created_at, started_at, ended_at;
    int state;                   /* J_*, -1 if unknown */
    char id[80];                 /* ids are at most 64 bytes (submit.c) */
    char surface[64];            /* for the metrics' labels */
};

/* model.c */
/* Fills o from a row of the store. */
void jr_sched_jobrow_read(struct jr_sched_jobrow *o, const struct jr_job_rec *r);
struct sjob *jr_sched_find(struct jr_sched *s, const char *id);
/* Load the job's tasks into memory (no state change). NULL on error. */
struct sjob *jr_sched_load(struct jr_sched *s, int64_t seq, const char *id,
                           int state, int64_t priority, int64_t max_par,
                           int64_t created_at, int64_t started_at, struct jr_err *e);
void jr_sched_free_job(struct jr_sched *s, struct sjob *j);
/* The ready queue: add (0, or -1 when out of memory) and remove. */
int jr_sched_ready_add(struct jr_sched *s, struct stask *t);
void jr_sched_ready_remove(struct jr_sched *s, struct stask *t);
/* A copy of n bytes with a NUL after them (the caller frees); NULL when
 * out of memory. */
char *jr_sched_dup_mem(const char *p, size_t n);
/* Release ready tasks, skip dependants, finish the job when nothing is left:
 * call after any change to j's tasks. Returns 1 when j was freed (finished,
 * or stopped with no process left), else 0; write errors go to e. */
int jr_sched_settle(struct jr_sched *s, struct sjob *j, struct jr_err *e);

/* sched.c: a jr_store_job_cb that appends rows to an active_list */
int jr_sched_collect(void *arg, const struct jr_job_rec *r);
/* Load a job left active and carry on with it: tasks left running are
 * reattached (or, with s->adopting, failed over), ready ones queued. */
int jr_sched_recover_job(struct jr_sched *s, struct jr_sched_jobrow *a, struct jr_err *e);

/* shared.c: several instances on one store (nothing on a store of one) */
int jr_sched_shared_open(struct jr_sched *s, struct jr_err *e);
void jr_sched_shared_close(struct jr_sched *s);
/* Take a job this instance has just queued (1), or leave it for whichever
 * instance has room first (0); written in the caller's operation. */
int jr_sched_shared_take(struct jr_sched *s, int64_t seq, int *mine, struct jr_err *e);
/* Process the outcomes that waited for the store (run.c's second half). */
void jr_sched_task_outcome(struct stask *t, const struct jr_exec_result *r);

/* run.c */
/* Start what is ready and fits. */
void jr_sched_dispatch(struct jr_sched *s);
/* The store committed (status 0) or failed to commit the "running" rows:
 * gated tasks go, or are killed as setup errors. */
void jr_sched_gate_commit(struct jr_store_waiter *w, int status);
/* Closes the task's timer, if any (it frees itself once closed). */
void jr_sched_drop_timer(struct stask *t);
/* Kill the job's running tasks (SIGTERM then SIGKILL) and cancel its
 * pending/ready ones; the job keeps its place until the last one exits. */
int jr_sched_stop_tasks(struct jr_sched *s, struct sjob *j, struct jr_err *e);
/* Recovery: take over t's attempt (state running) through the executor;
 * it then counts as running, and its timeout runs from its start.
 * JR_E_NOT_FOUND (e says why) when the executor cannot. */
int jr_sched_reattach(struct jr_sched *s, struct stask *t, struct jr_err *e);

/* model.c: rows and events */
/* Write a task's row from the in-memory task plus the given outcome fields. */
int jr_sched_write_task(struct jr_sched *s, struct stask *t, int64_t exit_code,
                        int64_t sig, const char *outcome, const char *error,
                        int64_t ended_at, struct jr_err *e);
/* Append one event and tell the listener. */
int jr_sched_event(struct jr_sched *s, const char *job, const char *task,
                   const char *type, const char *state, const char *message,
                   struct jr_err *e);
/* Write the job's state with times and error, plus its event. */
int jr_sched_write_job_state(struct jr_sched *s, int64_t seq, const char *id, int state,
                             int64_t started_at, int64_t ended_at, const char *error,
                             const char *message, struct jr_err *e);

/* ops.c: remove the job's rows (with a "deleted" event when event) and its
 * files. */
int jr_sched_remove(struct jr_sched *s, int64_t seq, const char *id, int event,
                    struct jr_err *e);

/* submit.c: validate spec's tasks and replace all tasks of job_seq. */
int jr_sched_replace_tasks(struct jr_sched *s, int64_t job_seq,
                           const struct jr_job_spec *spec, struct jr_err *e);

/* files.c */
int jr_sched_task_dir(struct jr_sched *s, const char *job, const char *task,
                      const char *sub, char *out, size_t size);
int jr_sched_mkdirs(const char *path);
void jr_sched_rmtree(const char *path);

#endif
