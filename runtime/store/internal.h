/* What the store's own files share: the store struct and the cache of
 * prepared statements. Not included outside runtime/store/. */
#ifndef JR_STORE_INTERNAL_H
#define JR_STORE_INTERNAL_H

#include <sqlite3.h>

#include "store/store.h"

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

/* The recent events (ring.c): every event with base < seq <= last, oldest
 * at head; n of cap slots used. */
#define JR_STORE_RING_SIZE 4096
struct jr_event_ring {
    struct ring_ev **v;
    size_t cap, head, n;
    int64_t base, last;
    int failed;                  /* a fill ran out of memory */
};

struct jr_store {
    sqlite3 *db;
    int in_txn;                  /* BEGIN done, COMMIT not yet */
    int op_depth;                /* open jr_store_op_begin() savepoints */
    sqlite3_stmt *stmts[S_COUNT];
    struct jr_store_waiter waiters;  /* list head */
    uv_prepare_t prepare;
    uv_check_t check;
    uv_idle_t idle;
    int attached;
    int open_handles;            /* handles not yet closed */
    int64_t event_last;          /* the newest event this connection sees */
    struct jr_event_ring ring;
    struct jr_metrics *metrics;  /* commits counted here (may be NULL) */
    uint64_t batch_writes;       /* writes in the open transaction */
    int doomed;                  /* a write of the batch failed half done: the
                                  * commit rolls the batch back */
    struct jr_store_counts *counts; /* jobs by surface and state (stats.c), NULL
                                  * until first read or after an undo */
};

/* The cached statement id, reset and with its bindings cleared, ready to
 * bind. The store owns it: a Lua error raised while a caller visits its rows
 * leaks nothing, the next use resets it. NULL on failure (e filled). */
sqlite3_stmt *jr_store_stmt(struct jr_store *st, enum jr_stmt id, struct jr_err *e);

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

/* ring.c: after a rollback, re-read event_last and drop the ring's events
 * above it; at close, free the ring. */
void jr_store_ring_rollback(struct jr_store *st);
void jr_store_ring_free(struct jr_store *st);
/* ring.c: an event just added (seq set), kept in the ring when the ring
 * holds every event before it, so readers need no query for it. */
void jr_store_ring_append(struct jr_store *st, const struct jr_event_rec *ev);

/* The schema migrations, applied in order at open. */
int jr_store_migrate(sqlite3 *db, struct jr_err *e);

#endif
