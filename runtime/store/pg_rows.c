/* The PostgreSQL backend's job rows, read and written through the
 * pipelined connection of pg_conn.c (writes join the open batch without
 * waiting; reads wait for their rows), parameters and columns, and the
 * backend's table of operations (tasks, events, logs: pg_tasks.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/pg.h"

/* pg_loop.c */
int jr_pg_attach(struct jr_store *st, uv_loop_t *loop);
int jr_pg_pending(const struct jr_store *st);
int jr_pg_commit(struct jr_store *st);
int jr_pg_op_begin(struct jr_store *st, struct jr_err *e);
int jr_pg_op_end(struct jr_store *st, int ok, struct jr_err *e);
void jr_pg_close(struct jr_store *st);

/* ---- parameters and columns ---- */

void jr_pg_p_int(struct pg_params *p, int64_t v)
{
    int i = p->n++;

    snprintf(p->num[i], sizeof p->num[i], "%lld", (long long)v);
    p->v[i] = p->num[i];
    p->len[i] = 0;
    p->fmt[i] = 0;
}

void jr_pg_p_text(struct pg_params *p, const char *s)
{
    int i = p->n++;

    p->v[i] = s;
    p->len[i] = 0;
    p->fmt[i] = 0;
}

void jr_pg_p_time(struct pg_params *p, int64_t v)
{
    if (v)
        jr_pg_p_int(p, v);
    else
        jr_pg_p_text(p, NULL);
}

void jr_pg_p_bytes(struct pg_params *p, const char *data, size_t len)
{
    int i = p->n++;

    p->v[i] = data ? (data[0] || len ? data : "") : NULL;
    p->len[i] = (int)len;
    p->fmt[i] = 1;
}

void jr_pg_p_limit(struct pg_params *p, int64_t limit)
{
    if (limit > 0)
        jr_pg_p_int(p, limit);
    else
        jr_pg_p_text(p, NULL);
}

int64_t jr_pg_int(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static struct jr_pg *pg_of(struct jr_store *st)
{
    return PG(st);
}

int jr_pg_write_one(struct jr_store *st, enum pg_stmt s, int64_t a, struct jr_err *e)
{
    struct pg_params p = { 0 };

    jr_pg_p_int(&p, a);
    return jr_pg_write(pg_of(st), s, &p, e);
}

/* ---- jobs ---- */

static void read_job(const PGresult *r, int i, struct jr_job_rec *j)
{
    j->seq = jr_pg_int(r, i, 0);
    j->id = jr_pg_str(r, i, 1);
    j->surface = jr_pg_str(r, i, 2);
    j->owner = jr_pg_str(r, i, 3);
    j->state = jr_pg_str(r, i, 4);
    j->priority = jr_pg_int(r, i, 5);
    j->max_parallelism = jr_pg_int(r, i, 6);
    j->created_at = jr_pg_int(r, i, 7);
    j->updated_at = jr_pg_int(r, i, 8);
    j->started_at = jr_pg_int(r, i, 9);
    j->ended_at = jr_pg_int(r, i, 10);
    j->error = jr_pg_str(r, i, 11);
    j->attrs = jr_pg_str(r, i, 12);
}

int jr_pg_each_job(PGresult *r, jr_store_job_cb cb, void *arg)
{
    struct jr_job_rec j;
    int i, n = PQntuples(r);

    for (i = 0; i < n; i++) {
        read_job(r, i, &j);
        if (cb(arg, &j))
            break;
    }
    PQclear(r);
    return JR_OK;
}

/* A seq for a new job: from the block taken ahead (one round trip per
 * PG_SEQ_BLOCK jobs). Seqs of one instance grow; those of several
 * interleave by block. */
static int next_seq(struct jr_pg *g, int64_t *out, struct jr_err *e)
{
    struct pg_params p = { 0 };
    PGresult *r;
    int i, n, rc;

    if (g->nseqs == 0) {
        jr_pg_p_int(&p, PG_SEQ_BLOCK);
        if ((rc = jr_pg_query(g, P_SEQ_RESERVE, &p, 0, &r, e)))
            return rc;
        n = PQntuples(r);
        /* handed out from the end: keep them in descending order */
        for (i = 0; i < n && i < PG_SEQ_BLOCK; i++)
            g->seqs[i] = jr_pg_int(r, n - 1 - i, 0);
        g->nseqs = i;
        PQclear(r);
        if (!g->nseqs)
            return jr_err_set(e, JR_E_STORE, "postgres: no job seq");
    }
    *out = g->seqs[--g->nseqs];
    return JR_OK;
}

static int pg_job_insert(struct jr_store *st, struct jr_job_rec *job, struct jr_err *e)
{
    struct pg_params p = { 0 };
    PGresult *r;
    int rc;

    jr_pg_p_text(&p, job->id);
    jr_pg_p_text(&p, job->surface ? job->surface : "");
    jr_pg_p_text(&p, job->owner ? job->owner : "");
    jr_pg_p_text(&p, job->state);
    jr_pg_p_int(&p, job->priority);
    jr_pg_p_int(&p, job->max_parallelism);
    jr_pg_p_int(&p, job->created_at);
    jr_pg_p_int(&p, job->updated_at);
    jr_pg_p_time(&p, job->started_at);
    jr_pg_p_time(&p, job->ended_at);
    jr_pg_p_text(&p, job->error);
    jr_pg_p_text(&p, job->attrs ? job->attrs : "{}");
    if (job->fresh_id) {
        int64_t seq = 0;
        if ((rc = next_seq(PG(st), &seq, e)))
            return rc;
        jr_pg_p_int(&p, seq);
        if ((rc = jr_pg_write(PG(st), P_JOB_INSERT_SEQ, &p, e)))
            return rc;
        job->seq = seq;
        return JR_OK;
    }
    rc = jr_pg_query(pg_of(st), P_JOB_INSERT, &p, 1, &r, e);
    if (rc)
        return rc;
    if (PQntuples(r) == 0)
        rc = jr_err_set(e, JR_E_EXISTS, "a job with id '%s' already exists", job->id);
    else
        job->seq = jr_pg_int(r, 0, 0);
    PQclear(r);
    return rc;
}

/* The job's row first (a taken id: JR_E_EXISTS, nothing written), then its
 * tasks and first event, all joining the open batch without a round trip
 * when the id was generated here. A failure after the row dooms the batch:
 * it ends in ROLLBACK and its waiters get JR_E_STORE. *event_seq = 0: the
 * event is numbered when the batch commits (jr_store_event_add). */
static int pg_job_create(struct jr_store *st, struct jr_job_rec *job,
                         struct jr_task_rec *tasks, size_t ntasks,
                         const struct jr_event_rec *ev, int64_t *event_seq,
                         struct jr_err *e)
{
    size_t i;
    int rc = pg_job_insert(st, job, e);

    if (rc)
        return rc;
    for (i = 0; !rc && i < ntasks; i++) {
        tasks[i].job_seq = job->seq;
        rc = jr_pg_task_insert(st, &tasks[i], e);
    }
    if (!rc)
        rc = jr_pg_event_add(st, ev, event_seq, e);
    if (rc && PG(st)->open)
        PG(st)->open->doomed = 1;
    return rc;
}

static int job_get(struct jr_store *st, enum pg_stmt s, struct pg_params *p,
                   jr_store_job_cb cb, void *arg, struct jr_err *e, const char *what)
{
    PGresult *r;
    int rc = jr_pg_query(pg_of(st), s, p, 0, &r, e);

    if (rc)
        return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return jr_err_set(e, JR_E_NOT_FOUND, "no job '%s'", what);
    }
    return jr_pg_each_job(r, cb, arg);
}

static int pg_job_get(struct jr_store *st, const char *id, jr_store_job_cb cb, void *arg,
                      struct jr_err *e)
{
    struct pg_params p = { 0 };

    jr_pg_p_text(&p, id);
    return job_get(st, P_JOB_GET, &p, cb, arg, e, id);
}

static int pg_job_get_seq(struct jr_store *st, int64_t seq, jr_store_job_cb cb, void *arg,
                          struct jr_err *e)
{
    struct pg_params p = { 0 };

    jr_pg_p_int(&p, seq);
    return job_get(st, P_JOB_GET_SEQ, &p, cb, arg, e, "#seq");
}

static int pg_job_set_state(struct jr_store *st, const struct jr_job_rec *job,
                            struct jr_err *e)
{
    struct pg_params p = { 0 };

    jr_pg_p_int(&p, job->seq);
    jr_pg_p_text(&p, job->state);
    jr_pg_p_int(&p, job->updated_at);
    jr_pg_p_time(&p, job->started_at);
    jr_pg_p_time(&p, job->ended_at);
    jr_pg_p_text(&p, job->error);
    return jr_pg_write(pg_of(st), P_JOB_SET_STATE, &p, e);
}

static int pg_job_set_attrs(struct jr_store *st, const struct jr_job_rec *job,
                            struct jr_err *e)
{
    struct pg_params p = { 0 };

    jr_pg_p_int(&p, job->seq);
    jr_pg_p_int(&p, job->priority);
    jr_pg_p_int(&p, job->max_parallelism);
    jr_pg_p_text(&p, job->attrs);
    jr_pg_p_int(&p, job->updated_at);
    return jr_pg_write(pg_of(st), P_JOB_SET_ATTRS, &p, e);
}

static int pg_job_set_approval(struct jr_store *st, int64_t seq, const char *decision,
                               const char *by, const char *reason, const char *at,
                               struct jr_err *e)
{
    struct pg_params p = { 0 };

    jr_pg_p_int(&p, seq);
    jr_pg_p_text(&p, decision);
    jr_pg_p_text(&p, by);
    jr_pg_p_text(&p, reason);
    jr_pg_p_text(&p, at);
    jr_pg_p_int(&p, jr_store_now_ms());
    return jr_pg_write(pg_of(st), P_JOB_SET_APPROVAL, &p, e);
}

static int pg_job_delete_tasks(struct jr_store *st, int64_t seq, struct jr_err *e)
{
    return jr_pg_write_one(st, P_JOB_DELETE_TASKS, seq, e);
}

static int pg_job_delete(struct jr_store *st, int64_t seq, struct jr_err *e)
{
    static const enum pg_stmt order[] = { P_JOB_DELETE_TASKS, P_JOB_DELETE_LOGS,
                                          P_JOB_DELETE_ASSETS, P_JOB_DELETE };
    size_t i;
    int rc = JR_OK;

    for (i = 0; !rc && i < sizeof order / sizeof order[0]; i++)
        rc = jr_pg_write_one(st, order[i], seq, e);
    return rc;
}

static int pg_job_mark_deleting(struct jr_store *st, int64_t seq, struct jr_err *e)
{
    struct pg_params p = { 0 };

    jr_pg_p_int(&p, seq);
    jr_pg_p_int(&p, jr_store_now_ms());
    return jr_pg_write(pg_of(st), P_JOB_MARK_DELETING, &p, e);
}

static int read_jobs(struct jr_store *st, enum pg_stmt s, struct pg_params *p,
                     jr_store_job_cb cb, void *arg, struct jr_err *e)
{
    PGresult *r;
    int rc = jr_pg_query(pg_of(st), s, p, 0, &r, e);

    return rc ? rc : jr_pg_each_job(r, cb, arg);
}

static int pg_jobs_deleting(struct jr_store *st, jr_store_job_cb cb, void *arg,
                            struct jr_err *e)
{
    struct pg_params p = { 0 };

    if (!PG(st)->instance)
        return read_jobs(st, P_JOBS_DELETING, NULL, cb, arg, e);
    jr_pg_p_text(&p, PG(st)->instance);
    return read_jobs(st, P_JOBS_DELETING_MINE, &p, cb, arg, e);
}

static int pg_jobs_list(struct jr_store *st, const struct jr_job_filter *f,
                        jr_store_job_cb cb, void *arg, struct jr_err *e)
{
    enum pg_stmt s = f->owner ? P_JOBS_OWNER : f->state ? P_JOBS_STATE
                   : f->surface ? P_JOBS_SURFACE : P_JOBS_ALL;
    struct pg_params p = { 0 };

    jr_pg_p_int(&p, f->after);
    jr_pg_p_text(&p, f->owner);
    jr_pg_p_text(&p, f->surface);
    jr_pg_p_text(&p, f->state);
    jr_pg_p_limit(&p, f->limit);
    return read_jobs(st, s, &p, cb, arg, e);
}

static int pg_jobs_active(struct jr_store *st, jr_store_job_cb cb, void *arg,
                          struct jr_err *e)
{
    struct pg_params p = { 0 };

    if (!PG(st)->instance)
        return read_jobs(st, P_JOBS_ACTIVE, NULL, cb, arg, e);
    jr_pg_p_text(&p, PG(st)->instance);
    return read_jobs(st, P_JOBS_ACTIVE_MINE, &p, cb, arg, e);
}

int jr_pg_read_count(struct jr_store *st, enum pg_stmt s, struct pg_params *p,
                      int64_t *out, struct jr_err *e)
{
    PGresult *r;
    int rc = jr_pg_query(pg_of(st), s, p, 0, &r, e);

    if (rc)
        return rc;
    *out = PQntuples(r) == 1 ? jr_pg_int(r, 0, 0) : 0;
    PQclear(r);
    return JR_OK;
}

static int64_t pg_jobs_count(struct jr_store *st)
{
    int64_t n = -1;

    return jr_pg_read_count(st, P_JOBS_COUNT, NULL, &n, NULL) ? -1 : n;
}

static int pg_jobs_count_where(struct jr_store *st, const struct jr_job_count *f,
                               int64_t *out, struct jr_err *e)
{
    struct pg_params p = { 0 };
    enum pg_stmt s;
    size_t i;

    *out = 0;
    if (f->nstates > JR_STORE_COUNT_STATES)
        return jr_err_set(e, JR_E_INVALID, "at most %d states to count",
                          JR_STORE_COUNT_STATES);
    if (f->nstates)
        s = f->owner ? P_COUNT_OWNER_STATES : P_COUNT_STATES;
    else
        s = f->owner ? P_COUNT_OWNER : f->surface ? P_COUNT_SURFACE : P_JOBS_COUNT;
    if (s != P_JOBS_COUNT) {
        jr_pg_p_text(&p, f->owner);
        jr_pg_p_text(&p, f->surface);
    }
    if (f->nstates)
        for (i = 0; i < JR_STORE_COUNT_STATES; i++)
            jr_pg_p_text(&p, i < f->nstates ? f->states[i] : NULL);
    return jr_pg_read_count(st, s, s == P_JOBS_COUNT ? NULL : &p, out, e);
}

static int pg_jobs_by_state(struct jr_store *st, jr_store_state_count_cb cb, void *arg,
                            struct jr_err *e)
{
    PGresult *r;
    int i, n, rc = jr_pg_query(PG(st), P_JOBS_BY_STATE, NULL, 0, &r, e);

    if (rc)
        return rc;
    n = PQntuples(r);
    for (i = 0; i < n; i++)
        if (cb(arg, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), jr_pg_int(r, i, 2)))
            break;
    PQclear(r);
    return JR_OK;
}

const struct jr_store_ops jr_pg_ops = {
    .name = "postgres",
    .close = jr_pg_close,
    .attach = jr_pg_attach,
    .pending = jr_pg_pending,
    .commit = jr_pg_commit,
    .op_begin = jr_pg_op_begin,
    .op_end = jr_pg_op_end,
    .job_insert = pg_job_insert,
    .job_create = pg_job_create,
    .job_get = pg_job_get,
    .job_get_seq = pg_job_get_seq,
    .job_set_state = pg_job_set_state,
    .job_set_attrs = pg_job_set_attrs,
    .job_set_approval = pg_job_set_approval,
    .job_delete_tasks = pg_job_delete_tasks,
    .job_delete = pg_job_delete,
    .job_mark_deleting = pg_job_mark_deleting,
    .jobs_deleting = pg_jobs_deleting,
    .jobs_list = pg_jobs_list,
    .jobs_active = pg_jobs_active,
    .jobs_count = pg_jobs_count,
    .jobs_count_where = pg_jobs_count_where,
    .task_insert = jr_pg_task_insert,
    .task_set_state = jr_pg_task_set_state,
    .task_set_usage = jr_pg_task_set_usage,
    .task_set_log_offset = jr_pg_task_set_log_offset,
    .tasks_reset = jr_pg_tasks_reset,
    .tasks_count = jr_pg_tasks_count,
    .tasks_each = jr_pg_tasks_each,
    .event_add = jr_pg_event_add,
    .events_after = jr_pg_events_after,
    .job_events = jr_pg_job_events,
    .log_add = jr_pg_log_add,
    .logs = jr_pg_logs,
    .asset_put = jr_pg_asset_put,
    .assets_clear = jr_pg_assets_clear,
    .assets = jr_pg_assets,
    .available = jr_pg_available,
    .set_instance = jr_pg_set_instance,
    .instance_up = jr_pg_instance_up,
    .instance_beat = jr_pg_instance_beat,
    .instances_dead = jr_pg_instances_dead,
    .jobs_claim = jr_pg_jobs_claim,
    .jobs_adopt = jr_pg_jobs_adopt,
    .job_set_driver = jr_pg_job_set_driver,
    .jobs_by_state = pg_jobs_by_state,
};
