/* Opening, closing and group commit of the job store: one lazily opened
 * transaction per loop iteration, committed from uv_check (after I/O
 * callbacks) and uv_prepare (before the loop blocks), then the waiters run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metrics.h"
#include "store/internal.h"

extern const char *const jr_store_sql[S_COUNT];

int64_t jr_store_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The seconds part of the last time formatted, per thread: times come in
 * runs within one second, and gmtime_r with strftime costs a microsecond. */
static _Thread_local struct {
    time_t t;
    size_t n;
    char text[32];
} last_second = { -1, 0, "" };

void jr_store_format_time(int64_t ms, char out[40])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    int frac = (int)(ms % 1000);

    if (ms < 0 || t != last_second.t) {
        gmtime_r(&t, &tm);
        last_second.n = strftime(last_second.text, sizeof last_second.text,
                                 "%Y-%m-%dT%H:%M:%S", &tm);
        last_second.t = ms < 0 ? -1 : t;
    }
    memcpy(out, last_second.text, last_second.n);
    char *p = out + last_second.n;
    if (frac < 0)
        frac = -frac;
    p[0] = '.';
    p[1] = (char)('0' + frac / 100);
    p[2] = (char)('0' + frac / 10 % 10);
    p[3] = (char)('0' + frac % 10);
    p[4] = 'Z';
    p[5] = 0;
}

int jr_store_fail(struct jr_store *st, struct jr_err *e, const char *what)
{
    return jr_err_set(e, JR_E_STORE, "%s: %s", what, sqlite3_errmsg(st->db));
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
    sqlite3_stmt *s = st->stmts[id];

    if (!s) {
        if (sqlite3_prepare_v3(st->db, jr_store_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                               &s, NULL) != SQLITE_OK) {
            jr_store_fail(st, e, "prepare");
            return NULL;
        }
        st->stmts[id] = s;
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
}

static int exec_sql(struct jr_store *st, const char *sql, struct jr_err *e)
{
    if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK)
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

    if (st->in_txn)
        return JR_OK;
    rc = run_stmt(st, S_BEGIN, e);
    if (rc)
        return rc;
    st->in_txn = 1;
    /* Keep the loop from blocking in poll while a batch is open; the next
     * prepare commits it. */
    if (st->attached)
        uv_idle_start(&st->idle, on_idle);
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
    st->batch_writes++;
    return s;
}

int jr_store_op_begin(struct jr_store *st, struct jr_err *e)
{
    int rc = jr_store_write_begin(st, e);

    if (rc)
        return rc;
    rc = run_stmt(st, S_SAVEPOINT, e);
    if (!rc)
        st->op_depth++;
    return rc;
}

int jr_store_op_end(struct jr_store *st, int ok, struct jr_err *e)
{
    int rc = JR_OK;

    if (st->op_depth <= 0)
        return JR_OK;
    if (!ok) {
        rc = run_stmt(st, S_ROLLBACK_TO, e);
        jr_store_ring_rollback(st);
        jr_store_counts_forget(st);
    }
    if (run_stmt(st, S_RELEASE, rc ? NULL : e) && !rc)
        rc = JR_E_STORE;
    st->op_depth--;
    return rc;
}

int jr_store_pending(const struct jr_store *st)
{
    return st && st->in_txn;
}

void jr_store_wait(struct jr_store *st, struct jr_store_waiter *w)
{
    struct jr_store_waiter *head = &st->waiters;

    w->next = head;
    w->prev = head->prev;
    head->prev->next = w;
    head->prev = w;
}

void jr_store_unwait(struct jr_store_waiter *w)
{
    if (!w->next)
        return;
    w->prev->next = w->next;
    w->next->prev = w->prev;
    w->prev = w->next = NULL;
}

static void run_waiters(struct jr_store *st, int status)
{
    struct jr_store_waiter local, *w;

    if (st->waiters.next == &st->waiters)
        return;
    /* Move the list aside: callbacks may add waiters for the next commit,
     * or remove waiters still on this list. */
    local.next = st->waiters.next;
    local.prev = st->waiters.prev;
    local.next->prev = &local;
    local.prev->next = &local;
    st->waiters.next = st->waiters.prev = &st->waiters;
    while ((w = local.next) != &local) {
        jr_store_unwait(w);
        w->cb(w, status);
    }
}

void jr_store_set_metrics(struct jr_store *st, struct jr_metrics *m)
{
    st->metrics = m;
}

int jr_store_commit(struct jr_store *st)
{
    int rc = JR_OK;
    uint64_t started;

    if (!st || !st->in_txn || st->op_depth > 0)
        return JR_OK;
    started = uv_hrtime();
    if (st->doomed || run_stmt(st, S_COMMIT, NULL)) {
        rc = JR_E_STORE;
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        st->in_txn = 0;
        jr_store_ring_rollback(st);
        jr_store_counts_forget(st);
        jr_metrics_count(st->metrics, JR_M_COMMIT_FAILURES, NULL, NULL, 1);
    } else {
        jr_metrics_observe(st->metrics, JR_H_COMMIT_TIME, (double)(uv_hrtime() - started) / 1e9);
        jr_metrics_observe(st->metrics, JR_H_COMMIT_WRITES, (double)st->batch_writes);
    }
    st->in_txn = 0;
    st->doomed = 0;
    st->batch_writes = 0;
    run_waiters(st, rc);
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

int jr_store_attach(struct jr_store *st, uv_loop_t *loop)
{
    if (st->attached)
        return JR_OK;
    uv_prepare_init(loop, &st->prepare);
    uv_check_init(loop, &st->check);
    uv_idle_init(loop, &st->idle);
    st->prepare.data = st->check.data = st->idle.data = st;
    uv_prepare_start(&st->prepare, on_prepare);
    uv_check_start(&st->check, on_check);
    /* The store keeps the loop alive only while a batch is pending (the idle
     * handle is active then). */
    uv_unref((uv_handle_t *)&st->prepare);
    uv_unref((uv_handle_t *)&st->check);
    st->attached = 1;
    st->open_handles = 3;
    if (st->in_txn)
        uv_idle_start(&st->idle, on_idle);
    return JR_OK;
}

int jr_store_open(const char *path, struct jr_store **out, struct jr_err *e)
{
    struct jr_store *st;
    int rc;

    *out = NULL;
    st = calloc(1, sizeof *st);
    if (!st)
        return jr_err_set(e, JR_E_SYSTEM, "out of memory");
    st->waiters.next = st->waiters.prev = &st->waiters;
    if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                        SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        rc = jr_err_set(e, JR_E_STORE, "%s: %s", path,
                        st->db ? sqlite3_errmsg(st->db) : "cannot open");
        goto done;
    }
    sqlite3_busy_timeout(st->db, 5000);
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
        rc = jr_store_migrate(st->db, e);
    if (!rc) {
        sqlite3_stmt *s = jr_store_stmt(st, S_EVENTS_LAST, e);
        if (s)
            st->event_last = jr_store_step_int(s, 0);
        else
            rc = JR_E_STORE;
    }
done:
    if (rc) {
        sqlite3_close(st->db);
        free(st);
        return rc;
    }
    *out = st;
    return JR_OK;
}

static void on_closed(uv_handle_t *h)
{
    struct jr_store *st = h->data;

    if (--st->open_handles == 0)
        free(st);
}

void jr_store_close(struct jr_store *st)
{
    int i;

    if (!st)
        return;
    while (st->op_depth > 0)
        jr_store_op_end(st, 0, NULL);
    jr_store_commit(st);
    run_waiters(st, JR_E_STORE);
    jr_store_ring_free(st);
    jr_store_counts_forget(st);
    for (i = 0; i < S_COUNT; i++)
        sqlite3_finalize(st->stmts[i]);
    sqlite3_close(st->db);
    st->db = NULL;
    if (!st->attached) {
        free(st);
        return;
    }
    uv_close((uv_handle_t *)&st->prepare, on_closed);
    uv_close((uv_handle_t *)&st->check, on_closed);
    uv_close((uv_handle_t *)&st->idle, on_closed);
}
