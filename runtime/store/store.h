/* The durable job store, one interface over two backends: an SQLite
 * database in WAL mode with synchronous=FULL (the embedded default), or a
 * PostgreSQL database that several jobrt instances may share (pg.c). Writes
 * open a transaction lazily; jr_store_commit() ends it, so all writes of one
 * loop iteration share one commit (group commit), and waiters run only once
 * it is durable. */
#ifndef JR_STORE_H
#define JR_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "store/err.h"

struct jr_store;

/* A job row. For writes the caller owns the strings; rows are read through
 * callbacks and their pointers are valid during the callback only. Times are
 * milliseconds since the epoch, 0 = unset. */
struct jr_job_rec {
    int64_t seq;              /* creation order: the keyset cursor */
    const char *id;
    const char *surface;
    const char *owner;
    const char *state;
    int64_t priority;
    int64_t max_parallelism;
    int64_t created_at, updated_at, started_at, ended_at;
    const char *error;        /* NULL = none */
    const char *attrs;        /* JSON object: title, labels, doc, approval... */
    /* Insert only: the id was generated here (no other job can hold it),
     * so the store need not ask whether it is taken before it answers
     * (PostgreSQL then inserts without waiting for the server). */
    int fresh_id;
};

/* A task row: the columns the scheduler needs, plus the spec as JSON.
 * argv and env are NUL-separated lists ("a\0b\0"), deps a comma-separated
 * list of task indexes in the same job. */
struct jr_task_rec {
    int64_t job_seq;
    int64_t idx;
    const char *alias;
    const char *deps;
    const char *state;
    int64_t priority, tolerable, retries, attempt;
    int64_t cpu, memory, gpu, disk, timeout_ms;
    const char *argv; size_t argv_len;
    const char *env; size_t env_len;
    const char *workdir;      /* NULL = default */
    int64_t exit_code;        /* -1 = none */
    int64_t signal;
    const char *outcome;      /* NULL = none */
    const char *error;
    int64_t started_at, ended_at;
    int64_t pid, pid_start;   /* process group leader and its start time */
    const char *run_record;   /* the running attempt's record (the executor's
                               * text, exec/record.h); NULL = none */
    const char *spec;         /* JSON object as submitted */
    const char *group;        /* NULL = a group of its own (see jr_task_spec) */
    /* Read only (jr_store_task_set_usage writes them): the last attempt's
     * usage; has_usage = 0 when none was recorded. */
    int has_usage;
    int64_t cpu_ms, max_rss_bytes, wall_ms;
    /* Read only (jr_store_task_set_log_offset writes it; a row set running
     * starts at 0): bytes of the attempt's output spool already logged. */
    int64_t log_offset;
};

struct jr_event_rec {
    int64_t seq, time;
    const char *job;          /* job id */
    const char *task;         /* alias or NULL */
    const char *type;         /* "job", "task", "updated", "deleted", ... */
    const char *state;        /* new state or NULL */
    const char *message;      /* reason or NULL */
};

struct jr_log_rec {
    int64_t id, time, level;
    const char *task;
    const char *message;
    const char *data;         /* JSON or NULL */
};

struct jr_asset_rec {
    const char *name;
    const char *data;         /* JSON object */
};

struct jr_job_filter {
    const char *owner, *surface, *state;   /* NULL = any */
    int64_t after;            /* list jobs with seq > after (0 = from start) */
    int64_t limit;
};

/* A one-shot commit listener, embedded in the caller's struct. cb runs once,
 * after the next commit (status 0) or its failure (a jr_code). */
struct jr_store_waiter {
    struct jr_store_waiter *prev, *next;
    void (*cb)(struct jr_store_waiter *w, int status);
};

enum { JR_LOG_LEVEL_DEBUG = 10, JR_LOG_LEVEL_INFO = 20, JR_LOG_LEVEL_WARN = 30,
       JR_LOG_LEVEL_ERROR = 40 };

/* Open (creating and migrating) the store at target: a
 * "postgresql://..." (or "postgres://...") URL opens the PostgreSQL
 * backend, anything else is the path of an SQLite database. On failure
 * *out is NULL and e says why. */
int jr_store_open(const char *target, struct jr_store **out, struct jr_err *e);
/* The longest a call waits for a database server (PostgreSQL; 10 s by
 * default); past it the connection counts as lost. */
void jr_store_set_timeout(struct jr_store *st, int64_t ms);
/* Is target a PostgreSQL URL? */
int jr_store_is_url(const char *target);
/* "sqlite" or "postgres". */
const char *jr_store_backend(const struct jr_store *st);

/* Commit what is pending, detach from the loop, close the database. The
 * store memory is freed once its loop handles are closed (or at once when it
 * was never attached). Safe with NULL. */
void jr_store_close(struct jr_store *st);

/* Commit once per loop iteration from a uv_check and a uv_prepare handle. */
int jr_store_attach(struct jr_store *st, uv_loop_t *loop);

/* Count each group commit's duration and writes (and failures) into m
 * (runtime/metrics.h; NULL = none). m must outlive the store. */
struct jr_metrics;
void jr_store_set_metrics(struct jr_store *st, struct jr_metrics *m);

/* Is a write transaction open (writes not yet on disk)? */
int jr_store_pending(const struct jr_store *st);

/* Commit the open transaction, if any, then run the waiters. Returns 0 or
 * JR_E_STORE (the batch was rolled back; the waiters get the error). */
int jr_store_commit(struct jr_store *st);

/* Run w->cb after the next commit (PostgreSQL: after the commit holding
 * this instance's writes so far answered; with nothing pending here, also
 * when another instance's events arrive, see jr_store_listen). */
void jr_store_wait(struct jr_store *st, struct jr_store_waiter *w);
/* Remove a waiter that has not run yet; harmless if it has. */
void jr_store_unwait(struct jr_store_waiter *w);

/* Group several writes into one all-or-nothing operation inside the batch:
 * begin, writes, then end(ok): ok = 0 undoes the writes since begin. */
int jr_store_op_begin(struct jr_store *st, struct jr_err *e);
int jr_store_op_end(struct jr_store *st, int ok, struct jr_err *e);

/* Jobs. insert fills job->seq. */
int jr_store_job_insert(struct jr_store *st, struct jr_job_rec *job, struct jr_err *e);
/* A new job with its tasks (their job_seq is set here) and its first event
 * (ev->job is the job's id), written as one all-or-nothing part of the
 * batch without a savepoint: the job's row goes first, so a taken id fails
 * with JR_E_EXISTS and nothing written; a failure after it dooms the batch
 * (the next commit rolls it back and its waiters get the error). Fills
 * job->seq and *event_seq (may be NULL; 0 on PostgreSQL, which numbers
 * events at commit, see jr_store_event_add). */
int jr_store_job_create(struct jr_store *st, struct jr_job_rec *job,
                        struct jr_task_rec *tasks, size_t ntasks,
                        const struct jr_event_rec *ev, int64_t *event_seq,
                        struct jr_err *e);
typedef int (*jr_store_job_cb)(void *arg, const struct jr_job_rec *job);
/* Call cb once with the job's row, or return JR_E_NOT_FOUND (also for a
 * job being deleted). Inside a callback the caller may use other store
 * calls, not the same one. */
int jr_store_job_get(struct jr_store *st, const char *id, jr_store_job_cb cb,
                     void *arg, struct jr_err *e);
int jr_store_job_get_seq(struct jr_store *st, int64_t seq, jr_store_job_cb cb,
                         void *arg, struct jr_err *e);
/* Write state, times and error of job->seq. */
int jr_store_job_set_state(struct jr_store *st, const struct jr_job_rec *job,
                           struct jr_err *e);
/* Write priority, max_parallelism, attrs (unless NULL) and updated_at of
 * job->seq. */
int jr_store_job_set_attrs(struct jr_store *st, const struct jr_job_rec *job,
                           struct jr_err *e);
/* Record an approval decision in attrs.approval {decision, by, reason, at}. */
int jr_store_job_set_approval(struct jr_store *st, int64_t seq, const char *decision,
                              const char *by, const char *reason, const char *at,
                              struct jr_err *e);
/* Delete the job's tasks only (for replacing them). */
int jr_store_job_delete_tasks(struct jr_store *st, int64_t seq, struct jr_err *e);
/* Delete the job, its tasks, logs and assets. */
int jr_store_job_delete(struct jr_store *st, int64_t seq, struct jr_err *e);
/* A job deleted while its tasks still run keeps its row, in the state
 * JR_STORE_DELETING (not a job state), until they have ended: get, list and
 * count skip it, its id stays taken, recovery finds it. */
#define JR_STORE_DELETING "deleting"
int jr_store_job_mark_deleting(struct jr_store *st, int64_t seq, struct jr_err *e);
/* Call cb for each job marked deleting, in seq order. */
int jr_store_jobs_deleting(struct jr_store *st, jr_store_job_cb cb, void *arg,
                           struct jr_err *e);

/* Call cb for each job matching f in seq order; cb returns non-zero to stop.
 * Uses the indexes so that one page costs O(limit). */
int jr_store_jobs_list(struct jr_store *st, const struct jr_job_filter *f,
                       jr_store_job_cb cb, void *arg, struct jr_err *e);
/* Jobs that need the scheduler after a restart: queued, running, or with a
 * task left running (jobs being deleted aside). */
int jr_store_jobs_active(struct jr_store *st, jr_store_job_cb cb, void *arg,
                         struct jr_err *e);
int64_t jr_store_jobs_count(struct jr_store *st);

/* What jr_store_jobs_count_where counts: jobs matching every filter given
 * (NULL or 0 = any); a job matches states when its state is one of them. */
enum { JR_STORE_COUNT_STATES = 9 };
struct jr_job_count {
    const char *owner, *surface;
    const char *const *states;    /* at most JR_STORE_COUNT_STATES */
    size_t nstates;
};
/* *out = the number of matching jobs. With states, the cost is the number
 * of jobs in those states (index (state, seq)); with an owner only, that
 * owner's jobs. JR_E_INVALID for too many states. */
int jr_store_jobs_count_where(struct jr_store *st, const struct jr_job_count *f,
                              int64_t *out, struct jr_err *e);

/* Call cb(arg, surface, state, n) for each surface and state that has jobs
 * (jobs being deleted aside), in that order; cb returns non-zero to stop.
 * The first call counts every job; from then on the store keeps the counts
 * as it writes jobs (one read of the job's row before it changes state),
 * so a call costs the number of surfaces and states. For one process's
 * store: writes by another process to the same file are not seen. */
typedef int (*jr_store_state_count_cb)(void *arg, const char *surface, const char *state,
                                       int64_t n);
int jr_store_jobs_by_state(struct jr_store *st, jr_store_state_count_cb cb, void *arg,
                           struct jr_err *e);

/* Tasks. */
int jr_store_task_insert(struct jr_store *st, const struct jr_task_rec *t,
                         struct jr_err *e);
/* Write the run fields (state, attempt, exit, signal, outcome, error, times,
 * pid, run_record) of (t->job_seq, t->idx). */
int jr_store_task_set_state(struct jr_store *st, const struct jr_task_rec *t,
                            struct jr_err *e);
/* Record the usage of (job_seq, idx)'s last attempt (values as measured;
 * -1 = unknown), in the same batch as its outcome. */
int jr_store_task_set_usage(struct jr_store *st, int64_t job_seq, int64_t idx,
                            int64_t cpu_ms, int64_t max_rss_bytes, int64_t wall_ms,
                            struct jr_err *e);
/* Record that the log rows of (job_seq, idx)'s running attempt cover its
 * output spool up to offset; write it in the same batch as those rows
 * (runtime/exec/record.h). */
int jr_store_task_set_log_offset(struct jr_store *st, int64_t job_seq, int64_t idx,
                                 int64_t offset, struct jr_err *e);
/* Reset the job's tasks to pending (attempt 0, results cleared); with
 * keep_succeeded, succeeded tasks keep their state. */
int jr_store_tasks_reset(struct jr_store *st, int64_t job_seq, int keep_succeeded,
                         struct jr_err *e);
int64_t jr_store_tasks_count(struct jr_store *st, int64_t job_seq);
typedef int (*jr_store_task_cb)(void *arg, const struct jr_task_rec *t);
int jr_store_tasks_each(struct jr_store *st, int64_t job_seq, jr_store_task_cb cb,
                        void *arg, struct jr_err *e);

/* Events: append-only, seq is the integer sequence. SQLite numbers an
 * event as it is added (*seq_out) and shows it to this store's readers at
 * once; PostgreSQL numbers events when their transaction commits, in commit
 * order across instances (*seq_out = 0), and shows them from then on, so a
 * reader at seq n never sees a smaller seq appear later. */
int jr_store_event_add(struct jr_store *st, const struct jr_event_rec *ev,
                       int64_t *seq_out, struct jr_err *e);
typedef int (*jr_store_event_cb)(void *arg, const struct jr_event_rec *ev);
int jr_store_events_after(struct jr_store *st, int64_t after, int64_t limit,
                          jr_store_event_cb cb, void *arg, struct jr_err *e);
/* One job's events after seq `after`, in order (through events_by_job). */
int jr_store_job_events(struct jr_store *st, const char *job, int64_t after, int64_t limit,
                        jr_store_event_cb cb, void *arg, struct jr_err *e);
/* Events after `after`, as jr_store_events_after, read from the store's ring
 * of recent events when it holds them (refilled by one read of what was
 * added since): what many watchers read costs one query, not one each.
 * Nothing newer than `after`: no query at all. The callback may not write
 * to the store. */
int jr_store_events_recent(struct jr_store *st, int64_t after, int64_t limit,
                           jr_store_event_cb cb, void *arg, struct jr_err *e);
/* The newest event's seq as this store sees it (kept in memory). */
int64_t jr_store_events_last(struct jr_store *st);

/* Logs. */
int jr_store_log_add(struct jr_store *st, int64_t job_seq, const char *task,
                     int64_t level, const char *message, const char *data,
                     struct jr_err *e);
typedef int (*jr_store_log_cb)(void *arg, const struct jr_log_rec *l);
int jr_store_logs(struct jr_store *st, int64_t job_seq, int64_t after,
                  int64_t min_level, int64_t limit, jr_store_log_cb cb, void *arg,
                  struct jr_err *e);

/* Assets (published results), one per (job, name). */
int jr_store_asset_put(struct jr_store *st, int64_t job_seq, const char *name,
                       const char *data, struct jr_err *e);
int jr_store_assets_clear(struct jr_store *st, int64_t job_seq, struct jr_err *e);
typedef int (*jr_store_asset_cb)(void *arg, const struct jr_asset_rec *a);
int jr_store_assets(struct jr_store *st, int64_t job_seq, jr_store_asset_cb cb,
                    void *arg, struct jr_err *e);

/* ---- several instances on one database ----
 * A PostgreSQL store may be shared: each instance drives the jobs it has
 * claimed (jobs.instance), heartbeats, and adopts the jobs of an instance
 * that stopped heartbeating. On SQLite (one instance) these do nothing. */
/* May other instances share this store (PostgreSQL)? */
int jr_store_shared(const struct jr_store *st);
/* Is the database reachable now (a shared store's server may go away)? */
int jr_store_available(const struct jr_store *st);
/* This instance's id (copied): from now on jobs_active and jobs_deleting
 * see only the jobs it drives. */
int jr_store_set_instance(struct jr_store *st, const char *id, struct jr_err *e);
/* Register this instance (address, pid) with a fresh heartbeat. */
int jr_store_instance_up(struct jr_store *st, const char *address, struct jr_err *e);
/* Heartbeat, in the batch; *alive = 0 when this instance's row is gone:
 * another instance failed it over. */
int jr_store_instance_beat(struct jr_store *st, int *alive, struct jr_err *e);
/* cb(arg, id) for each other instance silent for more than ms (server
 * time). */
int jr_store_instances_dead(struct jr_store *st, int64_t ms,
                            int (*cb)(void *arg, const char *id), void *arg,
                            struct jr_err *e);
/* Claim up to n jobs that are queued or running and driven by no instance
 * (in priority, then creation order; FOR UPDATE SKIP LOCKED: two instances
 * never claim the same job), in the batch; cb for each. */
int jr_store_jobs_claim(struct jr_store *st, int64_t n, jr_store_job_cb cb, void *arg,
                        struct jr_err *e);
/* Take over every job driven by instance dead and remove its row, in the
 * batch; cb for each job taken. */
int jr_store_jobs_adopt(struct jr_store *st, const char *dead, jr_store_job_cb cb,
                        void *arg, struct jr_err *e);
/* Job seq is driven by this instance (mine) or free to claim (!mine). */
int jr_store_job_set_driver(struct jr_store *st, int64_t seq, int mine, struct jr_err *e);

/* A store shared by several instances (PostgreSQL) tells its listener
 * what changed beside this instance's own writes: another instance's
 * events became readable (JR_STORE_CHANGE_EVENTS; the store's waiters with
 * nothing pending here run too), or the connection came back after a loss
 * (JR_STORE_CHANGE_UP: the batches in flight then were rolled back). Called
 * from the loop, never from inside a store call. One listener; NULL
 * removes it. */
enum { JR_STORE_CHANGE_EVENTS = 1, JR_STORE_CHANGE_UP = 2 };
void jr_store_listen(struct jr_store *st, void (*cb)(void *arg, int what), void *arg);

/* Milliseconds since the epoch (wall clock). */
int64_t jr_store_now_ms(void);
/* ms as RFC 3339 UTC with milliseconds: "2024-05-01T12:00:00.123Z". */
void jr_store_format_time(int64_t ms, char out[40]);

#endif
