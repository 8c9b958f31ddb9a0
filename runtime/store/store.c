/* The SQLite backend: opening, closing and group commit: one lazily opened
 * transaction per loop iteration, committed from uv_check (after I/O
 * callbacks) and uv_prepare (before the loop blocks), then the waiters run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metrics.h"
#include "store/internal.h"

extern const char *const jr_store_sql[S_COUNT];
static const struct jr_store_ops jr_sqlite_ops;

int jr_store_fail(struct jr_store *st, struct jr_err *e, const char *what)
{
    return jr_err_set(e, JR_E_STORE, "%s: %s", what, sqlite3_errmsg(SQ(st)->db));
}

int jr_store_finish(struct jr_store *st, sqlite3_stmt *s, int rc, struct jr_err *e,
                    const char *what)
{
    rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? JR_OK : jr_store_fail(st, e, what);
    sqlite3_reset(s);
    return rc;
}

int64_t jr_store_step_int(sqlite3_stmt *s, int64_t dflt)
{
    int64_t n = dflt;

    if (sqlite3_step(s) == SQLITE_ROW)
        n = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return n;
}

sqlite3_stmt *jr_store_stmt(struct jr_store *st, enum jr_stmt id, struct jr_err *e)
{
    sqlite3_stmt *s = SQ(st)->stmts[id];

    if (!s) {
        if (sqlite3_prepare_v3(SQ(st)->db, jr_store_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                               &s, NULL) != SQLITE_OK) {
            jr_store_fail(st, e, "prepare");
            return NULL;
        }
        SQ(st)->stmts[id] = s;
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
}

static int exec_sql(struct jr_store *st, const char *sql, struct jr_err *e)
{
    if (sqlite3_exec(SQ(st)->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return jr_store_fail(st, e, sql);
    return JR_OK;
}

/* Run one cached statement that returns no rows. */
static int run_stmt(struct jr_store *st, enum jr_stmt id, struct jr_err *e)
{
    sqlite3_stmt *s = jr_store_stmt(st, id, e);
    int rc;

    if (!s)
        return JR_E_STORE;
    rc = sqlite3_step(s) == SQLITE_DONE ? JR_OK : jr_store_fail(st, e, jr_store_sql[id]);
    sqlite3_reset(s);
    return rc;
}

static void on_idle(uv_idle_t *h)
{
    uv_idle_stop(h);
}

int jr_store_write_begin(struct jr_store *st, struct jr_err *e)
{
    int rc;

    if (SQ(st)->in_txn)
        return JR_OK;
    rc = run_stmt(st, S_BEGIN, e);
    if (rc)
        return rc;
    SQ(st)->in_txn = 1;
    /* Keep the loop from blocking in poll while a batch is open; the next
     * prepare commits it. */
    if (SQ(st)->attached)
        uv_idle_start(&SQ(st)->idle, on_idle);
    return JR_OK;
}

sqlite3_stmt *jr_store_write_stmt(struct jr_store *st, enum jr_stmt id, int *rc,
                                  struct jr_err *e)
{
    sqlite3_stmt *s;

    if ((*rc = jr_store_write_begin(st, e)))
        return NULL;
    if (!(s = jr_store_stmt(st, id, e)))
        *rc = JR_E_STORE;
    SQ(st)->batch_writes++;
    return s;
}

int jr_sqlite_op_begin(struct jr_store *st, struct jr_err *e)
{
    int rc = jr_store_write_begin(st, e);

    if (rc)
        return rc;
    rc = run_stmt(st, S_SAVEPOINT, e);
    if (!rc)
        SQ(st)->op_depth++;
    return rc;
}

int jr_sqlite_op_end(struct jr_store *st, int ok, struct jr_err *e)
{
    int rc = JR_OK;

    if (SQ(st)->op_depth <= 0)
        return JR_OK;
    if (!ok) {
        rc = run_stmt(st, S_ROLLBACK_TO, e);
        jr_sqlite_ring_rollback(st);
        jr_store_counts_forget(st);
    }
    if (run_stmt(st, S_RELEASE, rc ? NULL : e) && !rc)
        rc = JR_E_STORE;
    SQ(st)->op_depth--;
    return rc;
}

int jr_sqlite_pending(const struct jr_store *st)
{
    return st && SQ(st)->in_txn;
}

int jr_sqlite_commit(struct jr_store *st)
{
    int rc = JR_OK;
    uint64_t started;

    if (!st || !SQ(st)->in_txn || SQ(st)->op_depth > 0)
        return JR_OK;
    started = uv_hrtime();
    if (SQ(st)->doomed || run_stmt(st, S_COMMIT, NULL)) {
        rc = JR_E_STORE;
        sqlite3_exec(SQ(st)->db, "ROLLBACK", NULL, NULL, NULL);
        SQ(st)->in_txn = 0;
        jr_sqlite_ring_rollback(st);
        jr_store_counts_forget(st);
        jr_metrics_count(st->metrics, JR_M_COMMIT_FAILURES, NULL, NULL, 1);
    } else {
        jr_metrics_observe(st->metrics, JR_H_COMMIT_TIME,
                           (double)(uv_hrtime() - started) / 1e9);
        jr_metrics_observe(st->metrics, JR_H_COMMIT_WRITES, (double)SQ(st)->batch_writes);
    }
    SQ(st)->in_txn = 0;
    SQ(st)->doomed = 0;
    SQ(st)->batch_writes = 0;
    jr_store_run_waiters(st, rc);
    return rc;
}

static void on_check(uv_check_t *h)
{
    jr_store_commit(h->data);
}

static void on_prepare(uv_prepare_t *h)
{
    jr_store_commit(h->data);
}

int jr_sqlite_attach(struct jr_store *st, uv_loop_t *loop)
{
    if (SQ(st)->attached)
        return JR_OK;
    uv_prepare_init(loop, &SQ(st)->prepare);
    uv_check_init(loop, &SQ(st)->check);
    uv_idle_init(loop, &SQ(st)->idle);
    SQ(st)->prepare.data = SQ(st)->check.data = SQ(st)->idle.data = st;
    uv_prepare_start(&SQ(st)->prepare, on_prepare);
    uv_check_start(&SQ(st)->check, on_check);
    /* The store keeps the loop alive only while a batch is pending (the idle
     * handle is active then). */
    uv_unref((uv_handle_t *)&SQ(st)->prepare);
    uv_unref((uv_handle_t *)&SQ(st)->check);
    SQ(st)->attached = 1;
    SQ(st)->open_handles = 3;
    if (SQ(st)->in_txn)
        uv_idle_start(&SQ(st)->idle, on_idle);
    return JR_OK;
}

int jr_sqlite_open(const char *path, struct jr_store **out, struct jr_err *e)
{
    struct jr_store *st;
    int rc;

    *out = NULL;
    st = calloc(1, sizeof(struct jr_sqlite));
    if (!st)
        return jr_err_set(e, JR_E_SYSTEM, "out of memory");
    jr_store_base_init(st, &jr_sqlite_ops);
    if (sqlite3_open_v2(path, &SQ(st)->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                        SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        rc = jr_err_set(e, JR_E_STORE, "%s: %s", path,
                        SQ(st)->db ? sqlite3_errmsg(SQ(st)->db) : "cannot open");
        goto done;
    }
    sqlite3_busy_timeout(SQ(st)->db, 5000);
    rc = exec_sql(st, "PRAGMA journal_mode = WAL", e);
    if (!rc)
        rc = exec_sql(st, "PRAGMA synchronous = FULL", e);
    if (!rc)
        /* 32 MB: the interior pages of the tables and indexes of ten
         * million jobs (about 16 MB) stay in memory, so reading one job
         * costs its leaf pages only; a store that small needs less. */
        rc = exec_sql(st, "PRAGMA cache_size = -32000", e);
    if (!rc)
        rc = exec_sql(st, "PRAGMA temp_store = MEMORY", e);
    if (!rc)
        rc = jr_store_migrate(SQ(st)->db, e);
    if (!rc) {
        sqlite3_stmt *s = jr_store_stmt(st, S_EVENTS_LAST, e);
        if (s)
            st->event_last = jr_store_step_int(s, 0);
        else
            rc = JR_E_STORE;
    }
done:
    if (rc) {
        sqlite3_close(SQ(st)->db);
        free(st);
        return rc;
    }
    *out = st;
    return JR_OK;
}

void jr_sqlite_ring_rollback(struct jr_store *st)
{
    sqlite3_stmt *s = jr_store_stmt(st, S_EVENTS_LAST, NULL);

    /* Without the figure (the statement was prepared at open, so hardly),
     * hold nothing: the next read refills. */
    jr_store_ring_cut(st, s ? jr_store_step_int(s, 0) : 0);
}

static void on_closed(uv_handle_t *h)
{
    struct jr_store *st = h->data;

    if (--SQ(st)->open_handles == 0)
        free(st);
}

void jr_sqlite_close(struct jr_store *st)
{
    int i;

    if (!st)
        return;
    while (SQ(st)->op_depth > 0)
        jr_store_op_end(st, 0, NULL);
    jr_store_commit(st);
    jr_store_run_waiters(st, JR_E_STORE);
    jr_store_ring_free(st);
    jr_store_counts_forget(st);
    for (i = 0; i < S_COUNT; i++)
        sqlite3_finalize(SQ(st)->stmts[i]);
    sqlite3_close(SQ(st)->db);
    SQ(st)->db = NULL;
    if (!SQ(st)->attached) {
        free(st);
        return;
    }
    uv_close((uv_handle_t *)&SQ(st)->prepare, on_closed);
    uv_close((uv_handle_t *)&SQ(st)->check, on_closed);
    uv_close((uv_handle_t *)&SQ(st)->idle, on_closed);
}

static const struct jr_store_ops jr_sqlite_ops = {
    .name = "sqlite",
    .jobs_by_state = jr_sqlite_jobs_by_state,
    .close = jr_sqlite_close,
    .attach = jr_sqlite_attach,
    .pending = jr_sqlite_pending,
    .commit = jr_sqlite_commit,
    .op_begin = jr_sqlite_op_begin,
    .op_end = jr_sqlite_op_end,
    .job_insert = jr_sqlite_job_insert,
    .job_create = jr_sqlite_job_create,
    .job_get = jr_sqlite_job_get,
    .job_get_seq = jr_sqlite_job_get_seq,
    .job_set_state = jr_sqlite_job_set_state,
    .job_set_attrs = jr_sqlite_job_set_attrs,
    .job_set_approval = jr_sqlite_job_set_approval,
    .job_delete_tasks = jr_sqlite_job_delete_tasks,
    .job_delete = jr_sqlite_job_delete,
    .job_mark_deleting = jr_sqlite_job_mark_deleting,
    .jobs_deleting = jr_sqlite_jobs_deleting,
    .jobs_list = jr_sqlite_jobs_list,
    .jobs_active = jr_sqlite_jobs_active,
    .jobs_count = jr_sqlite_jobs_count,
    .jobs_count_where = jr_sqlite_jobs_count_where,
    .task_insert = jr_sqlite_task_insert,
    .task_set_state = jr_sqlite_task_set_state,
    .task_set_usage = jr_sqlite_task_set_usage,
    .task_set_log_offset = jr_sqlite_task_set_log_offset,
    .tasks_reset = jr_sqlite_tasks_reset,
    .tasks_count = jr_sqlite_tasks_count,
    .tasks_each = jr_sqlite_tasks_each,
    .event_add = jr_sqlite_event_add,
    .events_after = jr_sqlite_events_after,
    .job_events = jr_sqlite_job_events,
    .log_add = jr_sqlite_log_add,
    .logs = jr_sqlite_logs,
    .asset_put = jr_sqlite_asset_put,
    .assets_clear = jr_sqlite_assets_clear,
    .assets = jr_sqlite_assets,
};
