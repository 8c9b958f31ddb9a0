/* What the SQLite backend's files share: its store struct and the cache of
 * prepared statements. Not included outside runtime/store/. */
#ifndef JR_STORE_INTERNAL_H
#define JR_STORE_INTERNAL_H

#include <sqlite3.h>

#include "store/backend.h"

enum jr_stmt {
    S_JOB_INSERT, S_JOB_GET, S_JOB_GET_SEQ, S_JOB_SET_STATE, S_JOB_SET_ATTRS,
    S_JOB_DELETE, S_JOB_DELETE_TASKS, S_JOB_DELETE_LOGS, S_JOB_DELETE_ASSETS,
    S_JOBS_ALL, S_JOBS_OWNER, S_JOBS_SURFACE, S_JOBS_STATE, S_JOBS_ACTIVE,
    S_JOBS_COUNT, S_COUNT_OWNER, S_COUNT_SURFACE, S_COUNT_OWNER_STATES, S_COUNT_STATES,
    S_JOB_SET_APPROVAL, S_JOB_MARK_DELETING, S_JOBS_DELETING,
    S_TASK_INSERT, S_TASK_SET_STATE, S_TASKS_EACH, S_TASKS_RESET, S_TASKS_COUNT,
    S_TASK_SET_USAGE, S_TASK_SET_LOG_OFFSET,
    S_EVENT_ADD, S_EVENTS_AFTER, S_EVENTS_OF_JOB, S_EVENTS_LAST,
    S_LOG_ADD, S_LOGS,
    S_ASSET_PUT, S_ASSETS_CLEAR, S_ASSETS,
    S_SAVEPOINT, S_RELEASE, S_ROLLBACK_TO, S_BEGIN, S_COMMIT,
    S_COUNT
};

struct jr_sqlite {
    struct jr_store base;        /* first: a struct jr_store * is one of these */
    sqlite3 *db;
    int in_txn;                  /* BEGIN done, COMMIT not yet */
    int op_depth;                /* open jr_store_op_begin() savepoints */
    sqlite3_stmt *stmts[S_COUNT];
    uv_prepare_t prepare;
    uv_check_t check;
    uv_idle_t idle;
    int attached;
    int open_handles;            /* handles not yet closed */
    uint64_t batch_writes;       /* writes in the open transaction */
    int doomed;                  /* a write of the batch failed half done: the
                                  * commit rolls the batch back */
    struct jr_store_counts *counts; /* jobs by surface and state (stats.c), NULL
                                  * until first read or after an undo */
};

#define SQ(st) ((struct jr_sqlite *)(st))

/* The operations of the SQLite backend (the ops table in store.c). */
void jr_sqlite_close(struct jr_store *st);
int jr_sqlite_attach(struct jr_store *st, uv_loop_t *loop);
int jr_sqlite_pending(const struct jr_store *st);
int jr_sqlite_commit(struct jr_store *st);
int jr_sqlite_op_begin(struct jr_store *st, struct jr_err *e);
int jr_sqlite_op_end(struct jr_store *st, int ok, struct jr_err *e);
int jr_sqlite_job_insert(struct jr_store *st, struct jr_job_rec *job, struct jr_err *e);
int jr_sqlite_job_create(struct jr_store *st, struct jr_job_rec *job,
                         struct jr_task_rec *tasks, size_t ntasks,
                         const struct jr_event_rec *ev, int64_t *event_seq,
                         struct jr_err *e);
int jr_sqlite_job_get(struct jr_store *st, const char *id, jr_store_job_cb cb, void *arg,
                      struct jr_err *e);
int jr_sqlite_job_get_seq(struct jr_store *st, int64_t seq, jr_store_job_cb cb, void *arg,
                          struct jr_err *e);
int jr_sqlite_job_set_state(struct jr_store *st, const struct jr_job_rec *job,
                            struct jr_err *e);
int jr_sqlite_job_set_attrs(struct jr_store *st, const struct jr_job_rec *job,
                            struct jr_err *e);
int jr_sqlite_job_set_approval(struct jr_store *st, int64_t seq, const char *decision,
                               const char *by, const char *reason, const char *at,
                               struct jr_err *e);
int jr_sqlite_job_delete_tasks(struct jr_store *st, int64_t seq, struct jr_err *e);
int jr_sqlite_job_delete(struct jr_store *st, int64_t seq, struct jr_err *e);
int jr_sqlite_job_mark_deleting(struct jr_store *st, int64_t seq, struct jr_err *e);
int jr_sqlite_jobs_deleting(struct jr_store *st, jr_store_job_cb cb, void *arg,
                            struct jr_err *e);
int jr_sqlite_jobs_list(struct jr_store *st, const struct jr_job_filter *f,
                        jr_store_job_cb cb, void *arg, struct jr_err *e);
int jr_sqlite_jobs_active(struct jr_store *st, jr_store_job_cb cb, void *arg,
                          struct jr_err *e);
int64_t jr_sqlite_jobs_count(struct jr_store *st);
int jr_sqlite_jobs_count_where(struct jr_store *st, const struct jr_job_count *f,
                               int64_t *out, struct jr_err *e);
int jr_sqlite_task_insert(struct jr_store *st, const struct jr_task_rec *t,
                          struct jr_err *e);
int jr_sqlite_task_set_state(struct jr_store *st, const struct jr_task_rec *t,
                             struct jr_err *e);
int jr_sqlite_task_set_usage(struct jr_store *st, int64_t job_seq, int64_t idx,
                             int64_t cpu_ms, int64_t max_rss_bytes, int64_t wall_ms,
                             struct jr_err *e);
int jr_sqlite_task_set_log_offset(struct jr_store *st, int64_t job_seq, int64_t idx,
                                  int64_t offset, struct jr_err *e);
int jr_sqlite_tasks_reset(struct jr_store *st, int64_t job_seq, int keep_succeeded,
                          struct jr_err *e);
int64_t jr_sqlite_tasks_count(struct jr_store *st, int64_t job_seq);
int jr_sqlite_tasks_each(struct jr_store *st, int64_t job_seq, jr_store_task_cb cb,
                         void *arg, struct jr_err *e);
int jr_sqlite_event_add(struct jr_store *st, const struct jr_event_rec *ev,
                        int64_t *seq_out, struct jr_err *e);
int jr_sqlite_events_after(struct jr_store *st, int64_t after, int64_t limit,
                           jr_store_event_cb cb, void *arg, struct jr_err *e);
int jr_sqlite_job_events(struct jr_store *st, const char *job, int64_t after,
                         int64_t limit, jr_store_event_cb cb, void *arg, struct jr_err *e);
int jr_sqlite_log_add(struct jr_store *st, int64_t job_seq, const char *task,
                      int64_t level, const char *message, const char *data,
                      struct jr_err *e);
int jr_sqlite_logs(struct jr_store *st, int64_t job_seq, int64_t after, int64_t min_level,
                   int64_t limit, jr_store_log_cb cb, void *arg, struct jr_err *e);
int jr_sqlite_asset_put(struct jr_store *st, int64_t job_seq, const char *name,
                        const char *data, struct jr_err *e);
int jr_sqlite_assets_clear(struct jr_store *st, int64_t job_seq, struct jr_err *e);
int jr_sqlite_assets(struct jr_store *st, int64_t job_seq, jr_store_asset_cb cb,
                     void *arg, struct jr_err *e);

/* The cached statement id, reset and with its bindings cleared, ready to
 * bind. The store owns it: a Lua error raised while a caller visits its rows
 * leaks nothing, the next use resets it. NULL on failure (e filled). */
sqlite3_stmt *jr_store_stmt(struct jr_store *st, enum jr_stmt id, struct jr_err *e);

/* stats.c: the jobs by surface and state (jr_store_jobs_by_state), kept
 * in memory from the first read on */
int jr_sqlite_jobs_by_state(struct jr_store *st, jr_store_state_count_cb cb, void *arg,
                            struct jr_err *e);

/* stats.c: keep the jobs' counts by surface and state (when kept): add
 * delta to one; move job seq to state (NULL: gone), read before its row
 * changes; forget them all (an undone write, closing). */
void jr_store_counts_add(struct jr_store *st, const char *surface, const char *state,
                         int64_t delta);
void jr_store_counts_move(struct jr_store *st, int64_t seq, const char *state);
void jr_store_counts_forget(struct jr_store *st);

/* Open the batch transaction if needed. */
int jr_store_write_begin(struct jr_store *st, struct jr_err *e);

/* Fill e from the database's last error and return JR_E_STORE. */
int jr_store_fail(struct jr_store *st, struct jr_err *e, const char *what);

/* jr_store_write_begin, then jr_store_stmt(id): the statement, or NULL
 * with the error in *rc and e. */
sqlite3_stmt *jr_store_write_stmt(struct jr_store *st, enum jr_stmt id, int *rc,
                                  struct jr_err *e);

/* After the last sqlite3_step of s returned rc: resets s; JR_OK when rc is
 * SQLITE_ROW or SQLITE_DONE, else the store error naming what. */
int jr_store_finish(struct jr_store *st, sqlite3_stmt *s, int rc, struct jr_err *e,
                    const char *what);

/* Steps s once and returns its first column's integer (dflt without a
 * row), then resets it. */
int64_t jr_store_step_int(sqlite3_stmt *s, int64_t dflt);

/* Text or NULL, bound without a copy (the caller's string outlives the
 * step). */
static inline void jr_store_bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i);
}

static inline const char *jr_store_col_text(sqlite3_stmt *s, int i)
{
    return (const char *)sqlite3_column_text(s, i);
}

/* After a rollback: the ring and event_last cut back to the table. */
void jr_sqlite_ring_rollback(struct jr_store *st);

/* The schema migrations, applied in order at open. */
int jr_store_migrate(sqlite3 *db, struct jr_err *e);

#endif
