/* Append-only events (the integer sequence watchers follow), job logs and
 * published assets. */
#include "store/internal.h"

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i);
}

static const char *col_text(sqlite3_stmt *s, int i)
{
    return (const char *)sqlite3_column_text(s, i);
}

static int finish(struct jr_store *st, sqlite3_stmt *s, int rc, struct jr_err *e,
                  const char *what)
{
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        rc = jr_store_fail(st, e, what);
    else
        rc = JR_OK;
    sqlite3_reset(s);
    return rc;
}

int jr_store_event_add(struct jr_store *st, const struct jr_event_rec *ev,
                       int64_t *seq_out, struct jr_err *e)
{
    sqlite3_stmt *s;
    int rc = jr_store_write_begin(st, e);

    if (rc)
        return rc;
    if (!(s = jr_store_stmt(st, S_EVENT_ADD, e)))
        return JR_E_STORE;
    sqlite3_bind_int64(s, 1, ev->time ? ev->time : jr_store_now_ms());
    bind_text(s, 2, ev->job);
    bind_text(s, 3, ev->task);
    bind_text(s, 4, ev->type);
    bind_text(s, 5, ev->state);
    bind_text(s, 6, ev->message);
    rc = finish(st, s, sqlite3_step(s), e, "add event");
    if (!rc && seq_out)
        *seq_out = sqlite3_last_insert_rowid(st->db);
    return rc;
}

int jr_store_events_after(struct jr_store *st, int64_t after, int64_t limit,
                          jr_store_event_cb cb, void *arg, struct jr_err *e)
{
    sqlite3_stmt *s = jr_store_stmt(st, S_EVENTS_AFTER, e);
    struct jr_event_rec ev;
    int rc;

    if (!s)
        return JR_E_STORE;
    sqlite3_bind_int64(s, 1, after);
    sqlite3_bind_int64(s, 2, limit > 0 ? limit : -1);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        ev.seq = sqlite3_column_int64(s, 0);
        ev.time = sqlite3_column_int64(s, 1);
        ev.job = col_text(s, 2);
        ev.task = col_text(s, 3);
        ev.type = col_text(s, 4);
        ev.state = col_text(s, 5);
        ev.message = col_text(s, 6);
        if (cb(arg, &ev))
            break;
    }
    return finish(st, s, rc, e, "read events");
}

int64_t jr_store_events_last(struct jr_store *st)
{
    sqlite3_stmt *s = jr_store_stmt(st, S_EVENTS_LAST, NULL);
    int64_t n = 0;

    if (!s)
        return 0;
    if (sqlite3_step(s) == SQLITE_ROW)
        n = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return n;
}

int jr_store_log_add(struct jr_store *st, int64_t job_seq, const char *task,
                     int64_t level, const char *message, const char *data,
                     struct jr_err *e)
{
    sqlite3_stmt *s;
    int rc = jr_store_write_begin(st, e);

    if (rc)
        return rc;
    if (!(s = jr_store_stmt(st, S_LOG_ADD, e)))
        return JR_E_STORE;
    sqlite3_bind_int64(s, 1, job_seq);
    bind_text(s, 2, task);
    sqlite3_bind_int64(s, 3, level);
    sqlite3_bind_int64(s, 4, jr_store_now_ms());
    bind_text(s, 5, message ? message : "");
    bind_text(s, 6, data);
    return finish(st, s, sqlite3_step(s), e, "add log");
}

int jr_store_logs(struct jr_store *st, int64_t job_seq, int64_t after,
                  int64_t min_level, int64_t limit, jr_store_log_cb cb, void *arg,
                  struct jr_err *e)
{
    sqlite3_stmt *s = jr_store_stmt(st, S_LOGS, e);
    struct jr_log_rec l;
    int rc;

    if (!s)
        return JR_E_STORE;
    sqlite3_bind_int64(s, 1, job_seq);
    sqlite3_bind_int64(s, 2, after);
    sqlite3_bind_int64(s, 3, min_level);
    sqlite3_bind_int64(s, 4, limit > 0 ? limit : -1);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        l.id = sqlite3_column_int64(s, 0);
        l.time = sqlite3_column_int64(s, 1);
        l.level = sqlite3_column_int64(s, 2);
        l.task = col_text(s, 3);
        l.message = col_text(s, 4);
        l.data = col_text(s, 5);
        if (cb(arg, &l))
            break;
    }
    return finish(st, s, rc, e, "read logs");
}

int jr_store_asset_put(struct jr_store *st, int64_t job_seq, const char *name,
                       const char *data, struct jr_err *e)
{
    sqlite3_stmt *s;
    int rc = jr_store_write_begin(st, e);

    if (rc)
        return rc;
    if (!(s = jr_store_stmt(st, S_ASSET_PUT, e)))
        return JR_E_STORE;
    sqlite3_bind_int64(s, 1, job_seq);
    bind_text(s, 2, name);
    bind_text(s, 3, data ? data : "{}");
    return finish(st, s, sqlite3_step(s), e, "put asset");
}

int jr_store_assets_clear(struct jr_store *st, int64_t job_seq, struct jr_err *e)
{
    sqlite3_stmt *s;
    int rc = jr_store_write_begin(st, e);

    if (rc)
        return rc;
    if (!(s = jr_store_stmt(st, S_ASSETS_CLEAR, e)))
        return JR_E_STORE;
    sqlite3_bind_int64(s, 1, job_seq);
    return finish(st, s, sqlite3_step(s), e, "clear assets");
}

int jr_store_assets(struct jr_store *st, int64_t job_seq, jr_store_asset_cb cb,
                    void *arg, struct jr_err *e)
{
    sqlite3_stmt *s = jr_store_stmt(st, S_ASSETS, e);
    struct jr_asset_rec a;
    int rc;

    if (!s)
        return JR_E_STORE;
    sqlite3_bind_int64(s, 1, job_seq);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        a.name = col_text(s, 0);
        a.data = col_text(s, 1);
        if (cb(arg, &a))
            break;
    }
    return finish(st, s, rc, e, "read assets");
}
