/* The PostgreSQL backend's task rows, events, logs and assets, read and
 * written through the pipelined connection of pg_conn.c (writes join the
 * open batch; reads wait for their rows). Jobs are in pg_rows.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/pg.h"

/* ---- tasks ---- */

int jr_pg_task_insert(struct jr_store *st, const struct jr_task_rec *t,
                          struct jr_err *e)
{
    struct pg_params p = { 0 };

    jr_pg_p_int(&p, t->job_seq);
    jr_pg_p_int(&p, t->idx);
    jr_pg_p_text(&p, t->alias);
    jr_pg_p_text(&p, t->deps ? t->deps : "");
    jr_pg_p_text(&p, t->state);
    jr_pg_p_int(&p, t->priority);
    jr_pg_p_int(&p, t->tolerable);
    jr_pg_p_int(&p, t->retries);
    jr_pg_p_int(&p, t->attempt);
    jr_pg_p_int(&p, t->cpu);
    jr_pg_p_int(&p, t->memory);
    jr_pg_p_int(&p, t->gpu);
    jr_pg_p_int(&p, t->disk);
    jr_pg_p_int(&p, t->timeout_ms);
    jr_pg_p_bytes(&p, t->argv, t->argv ? t->argv_len : 0);
    jr_pg_p_bytes(&p, t->env, t->env ? t->env_len : 0);
    jr_pg_p_text(&p, t->workdir);
    if (t->exit_code >= 0)
        jr_pg_p_int(&p, t->exit_code);
    else
        jr_pg_p_text(&p, NULL);
    jr_pg_p_time(&p, t->signal);
    jr_pg_p_text(&p, t->outcome);
    jr_pg_p_text(&p, t->error);
    jr_pg_p_time(&p, t->started_at);
    jr_pg_p_time(&p, t->ended_at);
    jr_pg_p_time(&p, t->pid);
    jr_pg_p_time(&p, t->pid_start);
    jr_pg_p_text(&p, t->spec ? t->spec : "{}");
    jr_pg_p_text(&p, t->group);
    return jr_pg_write(PG(st), P_TASK_INSERT, &p, e);
}

int jr_pg_task_set_state(struct jr_store *st, const struct jr_task_rec *t,
                             struct jr_err *e)
{
    struct pg_params p = { 0 };

    jr_pg_p_int(&p, t->job_seq);
    jr_pg_p_int(&p, t->idx);
    jr_pg_p_text(&p, t->state);
    jr_pg_p_int(&p, t->attempt);
    if (t->exit_code >= 0)
        jr_pg_p_int(&p, t->exit_code);
    else
        jr_pg_p_text(&p, NULL);
    jr_pg_p_time(&p, t->signal);
    jr_pg_p_text(&p, t->outcome);
    jr_pg_p_text(&p, t->error);
    jr_pg_p_time(&p, t->started_at);
    jr_pg_p_time(&p, t->ended_at);
    jr_pg_p_time(&p, t->pid);
    jr_pg_p_time(&p, t->pid_start);
    jr_pg_p_text(&p, t->run_record && *t->run_record ? t->run_record : NULL);
    return jr_pg_write(PG(st), P_TASK_SET_STATE, &p, e);
}

int jr_pg_task_set_usage(struct jr_store *st, int64_t job_seq, int64_t idx,
                             int64_t cpu_ms, int64_t max_rss_bytes, int64_t wall_ms,
                             struct jr_err *e)
{
    struct pg_params p = { 0 };

    jr_pg_p_int(&p, job_seq);
    jr_pg_p_int(&p, idx);
    jr_pg_p_int(&p, cpu_ms);
    jr_pg_p_int(&p, max_rss_bytes);
    jr_pg_p_int(&p, wall_ms);
    return jr_pg_write(PG(st), P_TASK_SET_USAGE, &p, e);
}

int jr_pg_task_set_log_offset(struct jr_store *st, int64_t job_seq, int64_t idx,
                                  int64_t offset, struct jr_err *e)
{
    struct pg_params p = { 0 };

    jr_pg_p_int(&p, job_seq);
    jr_pg_p_int(&p, idx);
    jr_pg_p_int(&p, offset);
    return jr_pg_write(PG(st), P_TASK_SET_LOG_OFFSET, &p, e);
}

int jr_pg_tasks_reset(struct jr_store *st, int64_t job_seq, int keep_succeeded,
                          struct jr_err *e)
{
    struct pg_params p = { 0 };

    jr_pg_p_int(&p, job_seq);
    jr_pg_p_int(&p, keep_succeeded);
    return jr_pg_write(PG(st), P_TASKS_RESET, &p, e);
}

int64_t jr_pg_tasks_count(struct jr_store *st, int64_t job_seq)
{
    struct pg_params p = { 0 };
    int64_t n = -1;

    jr_pg_p_int(&p, job_seq);
    return jr_pg_read_count(st, P_TASKS_COUNT, &p, &n, NULL) ? -1 : n;
}

/* A bytea column (hex text) as bytes; *buf is the caller's to PQfreemem. */
static const char *col_bytes(const PGresult *r, int i, int c, size_t *len,
                             unsigned char **buf)
{
    *len = 0;
    *buf = NULL;
    if (PQgetisnull(r, i, c))
        return NULL;
    *buf = PQunescapeBytea((const unsigned char *)PQgetvalue(r, i, c), len);
    return *buf ? (const char *)*buf : "";
}

int jr_pg_tasks_each(struct jr_store *st, int64_t job_seq, jr_store_task_cb cb,
                         void *arg, struct jr_err *e)
{
    struct pg_params p = { 0 };
    struct jr_task_rec t;
    PGresult *r;
    unsigned char *argv_buf, *env_buf;
    int i, n, rc, stop;

    jr_pg_p_int(&p, job_seq);
    rc = jr_pg_query(PG(st), P_TASKS_EACH, &p, 0, &r, e);
    if (rc)
        return rc;
    n = PQntuples(r);
    for (i = 0; i < n; i++) {
        memset(&t, 0, sizeof t);
        t.job_seq = jr_pg_int(r, i, 0);
        t.idx = jr_pg_int(r, i, 1);
        t.alias = jr_pg_str(r, i, 2);
        t.deps = jr_pg_str(r, i, 3);
        t.state = jr_pg_str(r, i, 4);
        t.priority = jr_pg_int(r, i, 5);
        t.tolerable = jr_pg_int(r, i, 6);
        t.retries = jr_pg_int(r, i, 7);
        t.attempt = jr_pg_int(r, i, 8);
        t.cpu = jr_pg_int(r, i, 9);
        t.memory = jr_pg_int(r, i, 10);
        t.gpu = jr_pg_int(r, i, 11);
        t.disk = jr_pg_int(r, i, 12);
        t.timeout_ms = jr_pg_int(r, i, 13);
        t.argv = col_bytes(r, i, 14, &t.argv_len, &argv_buf);
        t.env = col_bytes(r, i, 15, &t.env_len, &env_buf);
        t.workdir = jr_pg_str(r, i, 16);
        t.exit_code = PQgetisnull(r, i, 17) ? -1 : jr_pg_int(r, i, 17);
        t.signal = jr_pg_int(r, i, 18);
        t.outcome = jr_pg_str(r, i, 19);
        t.error = jr_pg_str(r, i, 20);
        t.started_at = jr_pg_int(r, i, 21);
        t.ended_at = jr_pg_int(r, i, 22);
        t.pid = jr_pg_int(r, i, 23);
        t.pid_start = jr_pg_int(r, i, 24);
        t.spec = jr_pg_str(r, i, 25);
        t.has_usage = !PQgetisnull(r, i, 28);
        t.cpu_ms = jr_pg_int(r, i, 26);
        t.max_rss_bytes = jr_pg_int(r, i, 27);
        t.wall_ms = jr_pg_int(r, i, 28);
        t.group = jr_pg_str(r, i, 29);
        t.log_offset = jr_pg_int(r, i, 30);
        t.run_record = jr_pg_str(r, i, 31);
        stop = cb(arg, &t);
        PQfreemem(argv_buf);
        PQfreemem(env_buf);
        if (stop)
            break;
    }
    PQclear(r);
    return JR_OK;
}

/* ---- events, logs, assets ---- */

int jr_pg_event_add(struct jr_store *st, const struct jr_event_rec *ev,
                        int64_t *seq_out, struct jr_err *e)
{
    /* numbered at commit (commit order across instances) */
    if (seq_out)
        *seq_out = 0;
    return jr_pg_event(PG(st), ev, e);
}

static int read_events(struct jr_store *st, enum pg_stmt s, struct pg_params *p,
                       jr_store_event_cb cb, void *arg, struct jr_err *e)
{
    struct jr_event_rec ev;
    PGresult *r;
    int i, n, rc = jr_pg_query(PG(st), s, p, 0, &r, e);

    if (rc)
        return rc;
    n = PQntuples(r);
    for (i = 0; i < n; i++) {
        ev.seq = jr_pg_int(r, i, 0);
        ev.time = jr_pg_int(r, i, 1);
        ev.job = jr_pg_str(r, i, 2);
        ev.task = jr_pg_str(r, i, 3);
        ev.type = jr_pg_str(r, i, 4);
        ev.state = jr_pg_str(r, i, 5);
        ev.message = jr_pg_str(r, i, 6);
        if (cb(arg, &ev))
            break;
    }
    PQclear(r);
    return JR_OK;
}

int jr_pg_events_after(struct jr_store *st, int64_t after, int64_t limit,
                           jr_store_event_cb cb, void *arg, struct jr_err *e)
{
    struct pg_params p = { 0 };

    jr_pg_p_int(&p, after);
    jr_pg_p_limit(&p, limit);
    return read_events(st, P_EVENTS_AFTER, &p, cb, arg, e);
}

int jr_pg_job_events(struct jr_store *st, const char *job, int64_t after,
                         int64_t limit, jr_store_event_cb cb, void *arg, struct jr_err *e)
{
    struct pg_params p = { 0 };

    jr_pg_p_int(&p, after);
    jr_pg_p_limit(&p, limit);
    jr_pg_p_text(&p, job);
    return read_events(st, P_EVENTS_OF_JOB, &p, cb, arg, e);
}

int jr_pg_log_add(struct jr_store *st, int64_t job_seq, const char *task,
                      int64_t level, const char *message, const char *data,
                      struct jr_err *e)
{
    struct pg_params p = { 0 };

    jr_pg_p_int(&p, job_seq);
    jr_pg_p_text(&p, task);
    jr_pg_p_int(&p, level);
    jr_pg_p_int(&p, jr_store_now_ms());
    jr_pg_p_text(&p, message ? message : "");
    jr_pg_p_text(&p, data);
    return jr_pg_write(PG(st), P_LOG_ADD, &p, e);
}

int jr_pg_logs(struct jr_store *st, int64_t job_seq, int64_t after, int64_t min_level,
                   int64_t limit, jr_store_log_cb cb, void *arg, struct jr_err *e)
{
    struct pg_params p = { 0 };
    struct jr_log_rec l;
    PGresult *r;
    int i, n, rc;

    jr_pg_p_int(&p, job_seq);
    jr_pg_p_int(&p, after);
    jr_pg_p_int(&p, min_level);
    jr_pg_p_limit(&p, limit);
    rc = jr_pg_query(PG(st), P_LOGS, &p, 0, &r, e);
    if (rc)
        return rc;
    n = PQntuples(r);
    for (i = 0; i < n; i++) {
        l.id = jr_pg_int(r, i, 0);
        l.time = jr_pg_int(r, i, 1);
        l.level = jr_pg_int(r, i, 2);
        l.task = jr_pg_str(r, i, 3);
        l.message = jr_pg_str(r, i, 4);
        l.data = jr_pg_str(r, i, 5);
        if (cb(arg, &l))
            break;
    }
    PQclear(r);
    return JR_OK;
}

int jr_pg_asset_put(struct jr_store *st, int64_t job_seq, const char *name,
                        const char *data, struct jr_err *e)
{
    struct pg_params p = { 0 };

    jr_pg_p_int(&p, job_seq);
    jr_pg_p_text(&p, name);
    jr_pg_p_text(&p, data ? data : "{}");
    return jr_pg_write(PG(st), P_ASSET_PUT, &p, e);
}

int jr_pg_assets_clear(struct jr_store *st, int64_t job_seq, struct jr_err *e)
{
    return jr_pg_write_one(st, P_ASSETS_CLEAR, job_seq, e);
}

int jr_pg_assets(struct jr_store *st, int64_t job_seq, jr_store_asset_cb cb,
                     void *arg, struct jr_err *e)
{
    struct pg_params p = { 0 };
    struct jr_asset_rec a;
    PGresult *r;
    int i, n, rc;

    jr_pg_p_int(&p, job_seq);
    rc = jr_pg_query(PG(st), P_ASSETS, &p, 0, &r, e);
    if (rc)
        return rc;
    n = PQntuples(r);
    for (i = 0; i < n; i++) {
        a.name = jr_pg_str(r, i, 0);
        a.data = jr_pg_str(r, i, 1);
        if (cb(arg, &a))
            break;
    }
    PQclear(r);
    return JR_OK;
}

