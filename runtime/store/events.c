/* Append-only events (the integer sequence watchers follow), job logs and
 * published assets. */
#include "store/internal.h"

int jr_sqlite_event_add(struct jr_store *st, const struct jr_event_rec *ev,
                       int64_t *seq_out, struct jr_err *e)
{
    int rc;
    sqlite3_stmt *s = jr_store_write_stmt(st, S_EVENT_ADD, &rc, e);

    if (!s)
        return rc;
    struct jr_event_rec kept = *ev;

    if (!kept.time)
        kept.time = jr_store_now_ms();
    sqlite3_bind_int64(s, 1, kept.time);
    jr_store_bind_text(s, 2, ev->job);
    jr_store_bind_text(s, 3, ev->task);
    jr_store_bind_text(s, 4, ev->type);
    jr_store_bind_text(s, 5, ev->state);
    jr_store_bind_text(s, 6, ev->message);
    rc = jr_store_finish(st, s, sqlite3_step(s), e, "add event");
    if (!rc) {
        st->event_last = kept.seq = sqlite3_last_insert_rowid(SQ(st)->db);
        jr_store_ring_append(st, &kept);
        if (seq_out)
            *seq_out = st->event_last;
    }
    return rc;
}

/* The events of statement s (bound), in order, to cb. */
static int read_events(struct jr_store *st, sqlite3_stmt *s, jr_store_event_cb cb, void *arg,
                       struct jr_err *e)
{
    struct jr_event_rec ev;
    int rc;

    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        ev.seq = sqlite3_column_int64(s, 0);
        ev.time = sqlite3_column_int64(s, 1);
        ev.job = jr_store_col_text(s, 2);
        ev.task = jr_store_col_text(s, 3);
        ev.type = jr_store_col_text(s, 4);
        ev.state = jr_store_col_text(s, 5);
        ev.message = jr_store_col_text(s, 6);
        if (cb(arg, &ev))
            break;
    }
    return jr_store_finish(st, s, rc, e, "read events");
}

int jr_sqlite_events_after(struct jr_store *st, int64_t after, int64_t limit,
                          jr_store_event_cb cb, void *arg, struct jr_err *e)
{
    sqlite3_stmt *s = jr_store_stmt(st, S_EVENTS_AFTER, e);

    if (!s)
        return JR_E_STORE;
    sqlite3_bind_int64(s, 1, after);
    sqlite3_bind_int64(s, 2, limit > 0 ? limit : -1);
    return read_events(st, s, cb, arg, e);
}

int jr_sqlite_job_events(struct jr_store *st, const char *job, int64_t after, int64_t limit,
                        jr_store_event_cb cb, void *arg, struct jr_err *e)
{
    sqlite3_stmt *s = jr_store_stmt(st, S_EVENTS_OF_JOB, e);

    if (!s)
        return JR_E_STORE;
    sqlite3_bind_int64(s, 1, after);
    sqlite3_bind_int64(s, 2, limit > 0 ? limit : -1);
    jr_store_bind_text(s, 3, job);
    return read_events(st, s, cb, arg, e);
}

int64_t jr_store_events_last(struct jr_store *st)
{
    return st->event_last;
}

int jr_sqlite_log_add(struct jr_store *st, int64_t job_seq, const char *task,
                     int64_t level, const char *message, const char *data,
                     struct jr_err *e)
{
    int rc;
    sqlite3_stmt *s = jr_store_write_stmt(st, S_LOG_ADD, &rc, e);

    if (!s)
        return rc;
    sqlite3_bind_int64(s, 1, job_seq);
    jr_store_bind_text(s, 2, task);
    sqlite3_bind_int64(s, 3, level);
    sqlite3_bind_int64(s, 4, jr_store_now_ms());
    jr_store_bind_text(s, 5, message ? message : "");
    jr_store_bind_text(s, 6, data);
    return jr_store_finish(st, s, sqlite3_step(s), e, "add log");
}

int jr_sqlite_logs(struct jr_store *st, int64_t job_seq, int64_t after,
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
        l.task = jr_store_col_text(s, 3);
        l.message = jr_store_col_text(s, 4);
        l.data = jr_store_col_text(s, 5);
        if (cb(arg, &l))
            break;
    }
    return jr_store_finish(st, s, rc, e, "read logs");
}

int jr_sqlite_asset_put(struct jr_store *st, int64_t job_seq, const char *name,
                       const char *data, struct jr_err *e)
{
    int rc;
    sqlite3_stmt *s = jr_store_write_stmt(st, S_ASSET_PUT, &rc, e);

    if (!s)
        return rc;
    sqlite3_bind_int64(s, 1, job_seq);
    jr_store_bind_text(s, 2, name);
    jr_store_bind_text(s, 3, data ? data : "{}");
    return jr_store_finish(st, s, sqlite3_step(s), e, "put asset");
}

int jr_sqlite_assets_clear(struct jr_store *st, int64_t job_seq, struct jr_err *e)
{
    int rc;
    sqlite3_stmt *s = jr_store_write_stmt(st, S_ASSETS_CLEAR, &rc, e);

    if (!s)
        return rc;
    sqlite3_bind_int64(s, 1, job_seq);
    return jr_store_finish(st, s, sqlite3_step(s), e, "clear assets");
}

int jr_sqlite_assets(struct jr_store *st, int64_t job_seq, jr_store_asset_cb cb,
                    void *arg, struct jr_err *e)
{
    sqlite3_stmt *s = jr_store_stmt(st, S_ASSETS, e);
    struct jr_asset_rec a;
    int rc;

    if (!s)
        return JR_E_STORE;
    sqlite3_bind_int64(s, 1, job_seq);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        a.name = jr_store_col_text(s, 0);
        a.data = jr_store_col_text(s, 1);
        if (cb(arg, &a))
            break;
    }
    return jr_store_finish(st, s, rc, e, "read assets");
}
