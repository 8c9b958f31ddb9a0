/* The scheduler and the job state machine of DESIGN §3 and §5: every
 * transition is checked against its preconditions and written as one store
 * operation plus one event; ready tasks start by job priority, task priority
 * and age when the node's resources and the job's max_parallelism (counting
 * task groups, see jr_task_spec.group) allow. */
#ifndef JR_SCHED_H
#define JR_SCHED_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "exec/exec.h"
#include "store/store.h"

struct jr_sched;

/* Node capacity: cpu in millicores, memory in bytes. */
struct jr_node {
    int64_t cpu, memory, gpu, max_tasks;
};

struct jr_sched_opts {
    const char *data_dir;        /* task dirs under DATA/jobs/<job>/<task> */
    struct jr_node node;         /* 0 (or < 0 for gpu) = detect */
    int64_t kill_grace_ms;       /* SIGTERM -> SIGKILL, default 10 s */
    /* 1: close leaves running tasks running (shutdown.tasks: keep) when the
     * executor can detach them; 0: close kills them. Either way their rows
     * stay "running" and the next open reattaches or recovers them. */
    int keep_tasks;
    /* On a shared store (several instances on one database): this
     * instance's id (stable across restarts, so that a restart recovers
     * its own jobs), the address it says it serves, its heartbeat period
     * and how long another instance may be silent before its jobs are
     * failed over here (0 = 2 s and 15 min). */
    const char *instance, *address;
    int64_t heartbeat_ms, failover_ms;
    /* Called after every event the scheduler writes (may be NULL). */
    void (*on_event)(void *arg, int64_t seq);
    void *event_arg;
    /* Submissions, transitions, rejections, task outcomes and times are
     * counted here (runtime/metrics.h; NULL = not counted). */
    struct jr_metrics *metrics;
};

struct jr_task_spec {
    const char *alias;
    /* Tasks of one group count as one under their job's max_parallelism,
     * and once one of them starts the others may start beside it (the
     * parties of one Kuscia task). NULL = a group of its own. Same name
     * rules as alias. */
    const char *group;
    const char *const *deps;     /* aliases */
    size_t ndeps;
    int64_t priority, tolerable, retries;
    int64_t cpu, memory, gpu, disk, timeout_ms;
    const char *argv; size_t argv_len;   /* NUL-separated */
    const char *env; size_t env_len;     /* NUL-separated K=V */
    const char *workdir;
    const char *spec;            /* the task as submitted, JSON: what is stored */
    /* What the executor checks (image, network, inputs), filled by the
     * caller from the same task; NULL = decoded from spec for the check. */
    const struct jr_task_setup *setup;
};

struct jr_job_spec {
    const char *id;              /* NULL = generate */
    const char *surface, *owner;
    int64_t priority, max_parallelism;
    const char *attrs;           /* JSON object */
    const struct jr_task_spec *tasks;
    size_t ntasks;
    int64_t created_at;          /* submit: creation time in ms, 0 = now */
};

/* What jr_sched_update changes. */
enum { JR_UPD_PRIORITY = 1, JR_UPD_MAX_PAR = 2, JR_UPD_ATTRS = 4, JR_UPD_TASKS = 8 };

/* Fill the zero fields of n from the machine. */
void jr_node_detect(struct jr_node *n);

/* Create the scheduler on loop over st, running tasks through ex (which it
 * then owns), and recover what a previous daemon left: tasks left running
 * are reattached when the executor can (their output and outcome follow,
 * their resources count, their timeout runs from their start, a cancel of
 * their job is carried out; one that never passed its gate runs again);
 * otherwise they are killed if still alive, failed with "runtime
 * restarted" and the reason, and retried per their retries. */
int jr_sched_open(uv_loop_t *loop, struct jr_store *st, struct jr_executor ex,
                  const struct jr_sched_opts *o, struct jr_sched **out,
                  struct jr_err *e);
/* Kill running tasks, or with keep_tasks leave them running (their rows
 * stay "running"; the next start recovers them), and free the scheduler
 * once its handles are closed. */
void jr_sched_close(struct jr_sched *s);
/* shutdown.tasks: stop. Starts no more tasks and stops the running ones
 * (SIGTERM, then SIGKILL after the grace); each goes back to ready, its
 * attempt not counted, to run at the next start. Returns how many still
 * run (jr_sched_stats tells when none is left). */
int64_t jr_sched_stop_all(struct jr_sched *s);

const struct jr_node *jr_sched_node(const struct jr_sched *s);
/* Tasks running now and in the in-memory ready queue. */
void jr_sched_stats(const struct jr_sched *s, int64_t *running, int64_t *ready,
                    int64_t *jobs);

/* Store the job in state "created". id_out receives its id (generated if
 * spec->id is NULL). Refuses unknown deps, cycles, duplicate aliases and
 * tasks larger than the node with JR_E_INVALID. */
int jr_sched_submit(struct jr_sched *s, const struct jr_job_spec *spec,
                    char id_out[80], struct jr_err *e);

/* start: created|suspended|succeeded|failed|canceled|rejected -> queued, or
 * awaiting_approval when hold (why it waits, the event's message) is not
 * NULL, or rejected when reject is not NULL. A finished job starts afresh
 * (task results and assets discarded); a suspended one resumes (succeeded
 * tasks kept). */
int jr_sched_start(struct jr_sched *s, const char *id, const char *hold, const char *reject,
                   struct jr_err *e);
/* restart: failed|canceled|suspended -> queued, keeping succeeded tasks. */
int jr_sched_restart(struct jr_sched *s, const char *id, struct jr_err *e);
/* stop: awaiting_approval|queued|running -> canceled.
 * cancel: also from created, suspended and failed (a failed job made final).
 * suspend: queued|running -> suspended.
 * Running tasks get SIGTERM, then SIGKILL after the grace period. */
int jr_sched_stop(struct jr_sched *s, const char *id, const char *reason,
                  struct jr_err *e);
int jr_sched_cancel(struct jr_sched *s, const char *id, const char *reason,
                    struct jr_err *e);
int jr_sched_suspend(struct jr_sched *s, const char *id, const char *reason,
                     struct jr_err *e);
/* fail: awaiting_approval|queued|running|suspended -> failed, its error and
 * its event's message the reason (NULL = "failed on request"); tasks are
 * stopped as stop stops them. Restartable, like any failed job (Kuscia's
 * stop). */
int jr_sched_fail(struct jr_sched *s, const char *id, const char *reason,
                  struct jr_err *e);
/* approve: awaiting_approval -> queued (accept) or rejected. */
int jr_sched_approve(struct jr_sched *s, const char *id, int accept, const char *by,
                     const char *reason, struct jr_err *e);
/* hold: a job awaiting approval records who holds it (the policy) and why,
 * as approval {decision "wait", by, reason, at}; refused in other states. */
int jr_sched_hold(struct jr_sched *s, const char *id, const char *by, const char *reason,
                  struct jr_err *e);
/* update: refused with JR_E_LOCKED while queued or running. what is a mask of
 * JR_UPD_*; the fields come from spec (tasks replace all tasks). */
int jr_sched_update(struct jr_sched *s, const char *id, const struct jr_job_spec *spec,
                    int what, struct jr_err *e);
/* delete: removes the job's rows and files, with a "deleted" event. Without
 * force, refused while queued or running (JR_E_LOCKED) or while its tasks
 * are still stopping (JR_E_CONFLICT). With force, a job whose tasks run or
 * may run is gone for readers at once (get: JR_E_NOT_FOUND; list and count
 * skip it; the event now), its tasks are stopped as cancel stops them and
 * its rows and files are removed once the last one has ended, or by the
 * next jr_sched_open. Its id stays taken until then: a submit of it is
 * refused with JR_E_CONFLICT. */
int jr_sched_delete(struct jr_sched *s, const char *id, int force, struct jr_err *e);
/* For jobs without tasks (driven by a script): set any state. */
int jr_sched_set_state(struct jr_sched *s, const char *id, const char *state,
                       const char *error, struct jr_err *e);

/* Append a log entry to a job (task may be NULL). */
int jr_sched_log(struct jr_sched *s, const char *id, const char *task, int64_t level,
                 const char *message, const char *data, struct jr_err *e);

/* Name tables. */
int jr_job_state_valid(const char *state);
int jr_task_state_valid(const char *state);
/* The i-th job state's name (0 <= i), NULL past the last. */
const char *jr_job_state_name(int i);

/* Why a job or a task waits, as Slurm's squeue says it. The scheduler
 * decides Resources, MaxParallelism, Priority and Preparing where it
 * dispatches and keeps them in memory; Dependency comes from the task's deps; Approval
 * and Held from the job's state (the binding's part). */
enum jr_wait_reason {
    JR_WAIT_NONE, JR_WAIT_DEPENDENCY, JR_WAIT_RESOURCES, JR_WAIT_MAX_PARALLELISM,
    JR_WAIT_PRIORITY, JR_WAIT_APPROVAL, JR_WAIT_HELD,
    JR_WAIT_PREPARING,           /* the executor makes what it needs first (an
                                  * image's merged root) */
    JR_WAIT_NREASONS
};
/* The resources a task waits for (JR_WAIT_RESOURCES and, for the job
 * ahead, JR_WAIT_PRIORITY). */
enum { JR_WAIT_CPU = 1, JR_WAIT_MEMORY = 2, JR_WAIT_GPU = 4, JR_WAIT_MAX_TASKS = 8 };
#define JR_WAIT_MAX_DEPS 16

struct jr_wait {
    int reason;                  /* JR_WAIT_* */
    unsigned resources;          /* JR_WAIT_CPU ... */
    const char *behind;          /* Priority: the id of the job whose task is
                                  * ahead in the queue, NULL when it is gone */
    const char *deps[JR_WAIT_MAX_DEPS]; /* Dependency: the deps not done yet */
    int ndeps, more_deps;        /* listed, and left out past the first 16 */
    const char *note;            /* Preparing: what, in words (may be NULL) */
};

/* "Dependency", "Resources", ...; NULL for JR_WAIT_NONE. */
const char *jr_wait_reason_name(int reason);
/* "cpu", "memory", "gpu", "max_tasks" for one JR_WAIT_* resource bit. */
const char *jr_wait_resource_name(unsigned bit);

/* For a job the scheduler holds (queued, running, or stopping): cb(arg, -1,
 * w) for the job when it waits as a whole (no task of it runs), then
 * cb(arg, idx, w) for each of its pending or ready tasks that waits, idx
 * its index. Returns 1, or 0 (no call) for a job not in memory. The
 * strings in w are valid during the call. */
typedef void (*jr_wait_cb)(void *arg, int idx, const struct jr_wait *w);
int jr_sched_waiting(const struct jr_sched *s, const char *id, jr_wait_cb cb, void *arg);
/* The resources running tasks hold now (max_tasks: how many run), and the
 * tasks in memory waiting by reason (counts[JR_WAIT_*]). */
void jr_sched_usage(const struct jr_sched *s, struct jr_node *used,
                    int64_t counts[JR_WAIT_NREASONS]);

#endif
