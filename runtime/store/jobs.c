/* Job and task rows: insert, read, state and attribute updates, delete and
 * keyset-paginated listing. */
#include <string.h>

#include "store/internal.h"

static void bind_time(sqlite3_stmt *s, int i, int64_t v)
{
    if (v)
        sqlite3_bind_int64(s, i, v);
    else
        sqlite3_bind_null(s, i);
}

static void read_job(sqlite3_stmt *s, struct jr_job_rec *j)
{
    j->seq = sqlite3_column_int64(s, 0);
    j->id = jr_store_col_text(s, 1);
    j->surface = jr_store_col_text(s, 2);
    j->owner = jr_store_col_text(s, 3);
    j->state = jr_store_col_text(s, 4);
    j->priority = sqlite3_column_int64(s, 5);
    j->max_parallelism = sqlite3_column_int64(s, 6);
    j->created_at = sqlite3_column_int64(s, 7);
    j->updated_at = sqlite3_column_int64(s, 8);
    j->started_at = sqlite3_column_int64(s, 9);
    j->ended_at = sqlite3_column_int64(s, 10);
    j->error = jr_store_col_text(s, 11);
    j->attrs = jr_store_col_text(s, 12);
}

static int step_done(struct jr_store *st, sqlite3_stmt *s, struct jr_err *e,
                     const char *what)
{
    return jr_store_finish(st, s, sqlite3_step(s), e, what);
}

int jr_sqlite_job_insert(struct jr_store *st, struct jr_job_rec *job, struct jr_err *e)
{
    int rc;
    sqlite3_stmt *s = jr_store_write_stmt(st, S_JOB_INSERT, &rc, e);

    if (!s)
        return rc;
    jr_store_bind_text(s, 1, job->id);
    jr_store_bind_text(s, 2, job->surface ? job->surface : "");
    jr_store_bind_text(s, 3, job->owner ? job->owner : "");
    jr_store_bind_text(s, 4, job->state);
    sqlite3_bind_int64(s, 5, job->priority);
    sqlite3_bind_int64(s, 6, job->max_parallelism);
    sqlite3_bind_int64(s, 7, job->created_at);
    sqlite3_bind_int64(s, 8, job->updated_at);
    bind_time(s, 9, job->started_at);
    bind_time(s, 10, job->ended_at);
    jr_store_bind_text(s, 11, job->error);
    jr_store_bind_text(s, 12, job->attrs ? job->attrs : "{}");
    rc = sqlite3_step(s);
    if (rc == SQLITE_CONSTRAINT) {
        sqlite3_reset(s);
        return jr_err_set(e, JR_E_EXISTS, "a job with id '%s' already exists", job->id);
    }
    if (rc != SQLITE_DONE) {
        rc = jr_store_fail(st, e, "insert job");
        sqlite3_reset(s);
        return rc;
    }
    sqlite3_reset(s);
    job->seq = sqlite3_last_insert_rowid(SQ(st)->db);
    jr_store_counts_add(st, job->surface, job->state, 1);
    return JR_OK;
}

int jr_sqlite_job_create(struct jr_store *st, struct jr_job_rec *job,
                         struct jr_task_rec *tasks, size_t ntasks,
                         const struct jr_event_rec *ev, int64_t *event_seq,
                         struct jr_err *e)
{
    size_t i;
    int rc = jr_sqlite_job_insert(st, job, e);

    if (rc)
        return rc;
    for (i = 0; !rc && i < ntasks; i++) {
        tasks[i].job_seq = job->seq;
        rc = jr_sqlite_task_insert(st, &tasks[i], e);
    }
    if (!rc)
        rc = jr_sqlite_event_add(st, ev, event_seq, e);
    if (rc)
        SQ(st)->doomed = 1;
    return rc;
}

static int job_get(struct jr_store *st, sqlite3_stmt *s, jr_store_job_cb cb,
                   void *arg, struct jr_err *e, const char *what)
{
    struct jr_job_rec j;
    int rc = sqlite3_step(s);

    if (rc == SQLITE_ROW) {
        read_job(s, &j);
        cb(arg, &j);
        rc = JR_OK;
    } else if (rc == SQLITE_DONE) {
        rc = jr_err_set(e, JR_E_NOT_FOUND, "no job '%s'", what);
    } else {
        rc = jr_store_fail(st, e, "get job");
    }
    sqlite3_reset(s);
    return rc;
}

int jr_sqlite_job_get(struct jr_store *st, const char *id, jr_store_job_cb cb,
                     void *arg, struct jr_err *e)
{
    sqlite3_stmt *s = jr_store_stmt(st, S_JOB_GET, e);

    if (!s)
        return JR_E_STORE;
    jr_store_bind_text(s, 1, id);
    return job_get(st, s, cb, arg, e, id);
}

int jr_sqlite_job_get_seq(struct jr_store *st, int64_t seq, jr_store_job_cb cb,
                         void *arg, struct jr_err *e)
{
    sqlite3_stmt *s = jr_store_stmt(st, S_JOB_GET_SEQ, e);

    if (!s)
        return JR_E_STORE;
    sqlite3_bind_int64(s, 1, seq);
    return job_get(st, s, cb, arg, e, "#seq");
}

int jr_sqlite_job_set_state(struct jr_store *st, const struct jr_job_rec *job,
                           struct jr_err *e)
{
    int rc;
    sqlite3_stmt *s = jr_store_write_stmt(st, S_JOB_SET_STATE, &rc, e);

    if (!s)
        return rc;
    jr_store_counts_move(st, job->seq, job->state);
    sqlite3_bind_int64(s, 1, job->seq);
    jr_store_bind_text(s, 2, job->state);
    sqlite3_bind_int64(s, 3, job->updated_at);
    bind_time(s, 4, job->started_at);
    bind_time(s, 5, job->ended_at);
    jr_store_bind_text(s, 6, job->error);
    if ((rc = step_done(st, s, e, "update job state")))
        jr_store_counts_forget(st);
    return rc;
}

int jr_sqlite_job_set_attrs(struct jr_store *st, const struct jr_job_rec *job,
                           struct jr_err *e)
{
    int rc;
    sqlite3_stmt *s = jr_store_write_stmt(st, S_JOB_SET_ATTRS, &rc, e);

    if (!s)
        return rc;
    sqlite3_bind_int64(s, 1, job->seq);
    sqlite3_bind_int64(s, 2, job->priority);
    sqlite3_bind_int64(s, 3, job->max_parallelism);
    jr_store_bind_text(s, 4, job->attrs);
    sqlite3_bind_int64(s, 5, job->updated_at);
    return step_done(st, s, e, "update job");
}

int jr_sqlite_job_delete(struct jr_store *st, int64_t seq, struct jr_err *e)
{
    static const enum jr_stmt order[] = { S_JOB_DELETE_TASKS, S_JOB_DELETE_LOGS,
                                          S_JOB_DELETE_ASSETS, S_JOB_DELETE };
    sqlite3_stmt *s;
    size_t i;
    int rc = jr_store_write_begin(st, e);

    if (!rc)
        jr_store_counts_move(st, seq, NULL);
    for (i = 0; !rc && i < sizeof order / sizeof order[0]; i++) {
        if (!(s = jr_store_stmt(st, order[i], e))) {
            rc = JR_E_STORE;
            break;
        }
        sqlite3_bind_int64(s, 1, seq);
        rc = step_done(st, s, e, "delete job");
    }
    if (rc)
        jr_store_counts_forget(st);
    return rc;
}

int jr_sqlite_job_mark_deleting(struct jr_store *st, int64_t seq, struct jr_err *e)
{
    int rc;
    sqlite3_stmt *s = jr_store_write_stmt(st, S_JOB_MARK_DELETING, &rc, e);

    if (!s)
        return rc;
    jr_store_counts_move(st, seq, JR_STORE_DELETING);
    sqlite3_bind_int64(s, 1, seq);
    sqlite3_bind_int64(s, 2, jr_store_now_ms());
    if ((rc = step_done(st, s, e, "mark job deleting")))
        jr_store_counts_forget(st);
    return rc;
}

int jr_sqlite_job_delete_tasks(struct jr_store *st, int64_t seq, struct jr_err *e)
{
    int rc;
    sqlite3_stmt *s = jr_store_write_stmt(st, S_JOB_DELETE_TASKS, &rc, e);

    if (!s)
        return rc;
    sqlite3_bind_int64(s, 1, seq);
    return step_done(st, s, e, "delete tasks");
}

static int each_job(struct jr_store *st, sqlite3_stmt *s, jr_store_job_cb cb,
                    void *arg, struct jr_err *e)
{
    struct jr_job_rec j;
    int rc;

    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        read_job(s, &j);
        if (cb(arg, &j))
            break;
    }
    return jr_store_finish(st, s, rc, e, "list jobs");
}

int jr_sqlite_jobs_list(struct jr_store *st, const struct jr_job_filter *f,
                       jr_store_job_cb cb, void *arg, struct jr_err *e)
{
    enum jr_stmt id = f->owner ? S_JOBS_OWNER : f->state ? S_JOBS_STATE
                    : f->surface ? S_JOBS_SURFACE : S_JOBS_ALL;
    sqlite3_stmt *s = jr_store_stmt(st, id, e);

    if (!s)
        return JR_E_STORE;
    sqlite3_bind_int64(s, 1, f->after);
    jr_store_bind_text(s, 2, f->owner);
    jr_store_bind_text(s, 3, f->surface);
    jr_store_bind_text(s, 4, f->state);
    sqlite3_bind_int64(s, 5, f->limit > 0 ? f->limit : -1);
    return each_job(st, s, cb, arg, e);
}

int jr_sqlite_jobs_active(struct jr_store *st, jr_store_job_cb cb, void *arg,
                         struct jr_err *e)
{
    sqlite3_stmt *s = jr_store_stmt(st, S_JOBS_ACTIVE, e);

    if (!s)
        return JR_E_STORE;
    return each_job(st, s, cb, arg, e);
}

int jr_sqlite_jobs_deleting(struct jr_store *st, jr_store_job_cb cb, void *arg,
                           struct jr_err *e)
{
    sqlite3_stmt *s = jr_store_stmt(st, S_JOBS_DELETING, e);

    if (!s)
        return JR_E_STORE;
    return each_job(st, s, cb, arg, e);
}

int64_t jr_sqlite_jobs_count(struct jr_store *st)
{
    sqlite3_stmt *s = jr_store_stmt(st, S_JOBS_COUNT, NULL);

    return s ? jr_store_step_int(s, -1) : -1;
}

int jr_sqlite_jobs_count_where(struct jr_store *st, const struct jr_job_count *f,
                              int64_t *out, struct jr_err *e)
{
    enum jr_stmt id;
    sqlite3_stmt *s;
    int rc;

    *out = 0;
    if (f->nstates > JR_STORE_COUNT_STATES)
        return jr_err_set(e, JR_E_INVALID, "at most %d states to count",
                          JR_STORE_COUNT_STATES);
    if (f->nstates)
        id = f->owner ? S_COUNT_OWNER_STATES : S_COUNT_STATES;
    else
        id = f->owner ? S_COUNT_OWNER : f->surface ? S_COUNT_SURFACE : S_JOBS_COUNT;
    if (!(s = jr_store_stmt(st, id, e)))
        return JR_E_STORE;
    if (id != S_JOBS_COUNT) {
        jr_store_bind_text(s, 1, f->owner);
        jr_store_bind_text(s, 2, f->surface);
    }
    for (size_t i = 0; i < f->nstates; i++)
        jr_store_bind_text(s, 3 + (int)i, f->states[i]);
    rc = sqlite3_step(s);
    if (rc != SQLITE_ROW)
        return jr_store_fail(st, e, "count jobs");
    *out = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return JR_OK;
}

int jr_sqlite_task_insert(struct jr_store *st, const struct jr_task_rec *t,
                         struct jr_err *e)
{
    int rc;
    sqlite3_stmt *s = jr_store_write_stmt(st, S_TASK_INSERT, &rc, e);

    if (!s)
        return rc;
    sqlite3_bind_int64(s, 1, t->job_seq);
    sqlite3_bind_int64(s, 2, t->idx);
    jr_store_bind_text(s, 3, t->alias);
    jr_store_bind_text(s, 4, t->deps ? t->deps : "");
    jr_store_bind_text(s, 5, t->state);
    sqlite3_bind_int64(s, 6, t->priority);
    sqlite3_bind_int64(s, 7, t->tolerable);
    sqlite3_bind_int64(s, 8, t->retries);
    sqlite3_bind_int64(s, 9, t->attempt);
    sqlite3_bind_int64(s, 10, t->cpu);
    sqlite3_bind_int64(s, 11, t->memory);
    sqlite3_bind_int64(s, 12, t->gpu);
    sqlite3_bind_int64(s, 13, t->disk);
    sqlite3_bind_int64(s, 14, t->timeout_ms);
    if (t->argv)
        sqlite3_bind_blob(s, 15, t->argv, (int)t->argv_len, SQLITE_STATIC);
    if (t->env)
        sqlite3_bind_blob(s, 16, t->env, (int)t->env_len, SQLITE_STATIC);
    jr_store_bind_text(s, 17, t->workdir);
    if (t->exit_code >= 0)
        sqlite3_bind_int64(s, 18, t->exit_code);
    if (t->signal)
        sqlite3_bind_int64(s, 19, t->signal);
    jr_store_bind_text(s, 20, t->outcome);
    jr_store_bind_text(s, 21, t->error);
    bind_time(s, 22, t->started_at);
    bind_time(s, 23, t->ended_at);
    bind_time(s, 24, t->pid);
    bind_time(s, 25, t->pid_start);
    jr_store_bind_text(s, 26, t->spec ? t->spec : "{}");
    jr_store_bind_text(s, 27, t->group);
    return step_done(st, s, e, "insert task");
}

int jr_sqlite_task_set_state(struct jr_store *st, const struct jr_task_rec *t,
                            struct jr_err *e)
{
    int rc;
    sqlite3_stmt *s = jr_store_write_stmt(st, S_TASK_SET_STATE, &rc, e);

    if (!s)
        return rc;
    sqlite3_bind_int64(s, 1, t->job_seq);
    sqlite3_bind_int64(s, 2, t->idx);
    jr_store_bind_text(s, 3, t->state);
    sqlite3_bind_int64(s, 4, t->attempt);
    if (t->exit_code >= 0)
        sqlite3_bind_int64(s, 5, t->exit_code);
    if (t->signal)
        sqlite3_bind_int64(s, 6, t->signal);
    jr_store_bind_text(s, 7, t->outcome);
    jr_store_bind_text(s, 8, t->error);
    bind_time(s, 9, t->started_at);
    bind_time(s, 10, t->ended_at);
    bind_time(s, 11, t->pid);
    bind_time(s, 12, t->pid_start);
    jr_store_bind_text(s, 13, t->run_record && *t->run_record ? t->run_record : NULL);
    return step_done(st, s, e, "update task");
}

int jr_sqlite_task_set_usage(struct jr_store *st, int64_t job_seq, int64_t idx,
                            int64_t cpu_ms, int64_t max_rss_bytes, int64_t wall_ms,
                            struct jr_err *e)
{
    int rc;
    sqlite3_stmt *s = jr_store_write_stmt(st, S_TASK_SET_USAGE, &rc, e);

    if (!s)
        return rc;
    sqlite3_bind_int64(s, 1, job_seq);
    sqlite3_bind_int64(s, 2, idx);
    sqlite3_bind_int64(s, 3, cpu_ms);
    sqlite3_bind_int64(s, 4, max_rss_bytes);
    sqlite3_bind_int64(s, 5, wall_ms);
    return step_done(st, s, e, "update task usage");
}

int jr_sqlite_task_set_log_offset(struct jr_store *st, int64_t job_seq, int64_t idx,
                                 int64_t offset, struct jr_err *e)
{
    int rc;
    sqlite3_stmt *s = jr_store_write_stmt(st, S_TASK_SET_LOG_OFFSET, &rc, e);

    if (!s)
        return rc;
    sqlite3_bind_int64(s, 1, job_seq);
    sqlite3_bind_int64(s, 2, idx);
    sqlite3_bind_int64(s, 3, offset);
    return step_done(st, s, e, "update task log offset");
}

int jr_sqlite_tasks_each(struct jr_store *st, int64_t job_seq, jr_store_task_cb cb,
                        void *arg, struct jr_err *e)
{
    sqlite3_stmt *s = jr_store_stmt(st, S_TASKS_EACH, e);
    struct jr_task_rec t;
    int rc;

    if (!s)
        return JR_E_STORE;
    sqlite3_bind_int64(s, 1, job_seq);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        memset(&t, 0, sizeof t);
        t.job_seq = sqlite3_column_int64(s, 0);
        t.idx = sqlite3_column_int64(s, 1);
        t.alias = jr_store_col_text(s, 2);
        t.deps = jr_store_col_text(s, 3);
        t.state = jr_store_col_text(s, 4);
        t.priority = sqlite3_column_int64(s, 5);
        t.tolerable = sqlite3_column_int64(s, 6);
        t.retries = sqlite3_column_int64(s, 7);
        t.attempt = sqlite3_column_int64(s, 8);
        t.cpu = sqlite3_column_int64(s, 9);
        t.memory = sqlite3_column_int64(s, 10);
        t.gpu = sqlite3_column_int64(s, 11);
        t.disk = sqlite3_column_int64(s, 12);
        t.timeout_ms = sqlite3_column_int64(s, 13);
        t.argv = sqlite3_column_blob(s, 14);
        t.argv_len = (size_t)sqlite3_column_bytes(s, 14);
        t.env = sqlite3_column_blob(s, 15);
        t.env_len = (size_t)sqlite3_column_bytes(s, 15);
        t.workdir = jr_store_col_text(s, 16);
        t.exit_code = sqlite3_column_type(s, 17) == SQLITE_NULL ? -1
                    : sqlite3_column_int64(s, 17);
        t.signal = sqlite3_column_int64(s, 18);
        t.outcome = jr_store_col_text(s, 19);
        t.error = jr_store_col_text(s, 20);
        t.started_at = sqlite3_column_int64(s, 21);
        t.ended_at = sqlite3_column_int64(s, 22);
        t.pid = sqlite3_column_int64(s, 23);
        t.pid_start = sqlite3_column_int64(s, 24);
        t.spec = jr_store_col_text(s, 25);
        t.has_usage = sqlite3_column_type(s, 28) != SQLITE_NULL;
        t.cpu_ms = sqlite3_column_int64(s, 26);
        t.max_rss_bytes = sqlite3_column_int64(s, 27);
        t.wall_ms = sqlite3_column_int64(s, 28);
        t.group = jr_store_col_text(s, 29);
        t.log_offset = sqlite3_column_int64(s, 30);
        t.run_record = jr_store_col_text(s, 31);
        if (cb(arg, &t))
            break;
    }
    return jr_store_finish(st, s, rc, e, "read tasks");
}

int jr_sqlite_job_set_approval(struct jr_store *st, int64_t seq, const char *decision,
                              const char *by, const char *reason, const char *at,
                              struct jr_err *e)
{
    int rc;
    sqlite3_stmt *s = jr_store_write_stmt(st, S_JOB_SET_APPROVAL, &rc, e);

    if (!s)
        return rc;
    sqlite3_bind_int64(s, 1, seq);
    jr_store_bind_text(s, 2, decision);
    jr_store_bind_text(s, 3, by);
    jr_store_bind_text(s, 4, reason);
    jr_store_bind_text(s, 5, at);
    sqlite3_bind_int64(s, 6, jr_store_now_ms());
    return step_done(st, s, e, "record approval");
}

int jr_sqlite_tasks_reset(struct jr_store *st, int64_t job_seq, int keep_succeeded,
                         struct jr_err *e)
{
    int rc;
    sqlite3_stmt *s = jr_store_write_stmt(st, S_TASKS_RESET, &rc, e);

    if (!s)
        return rc;
    sqlite3_bind_int64(s, 1, job_seq);
    sqlite3_bind_int(s, 2, keep_succeeded);
    return step_done(st, s, e, "reset tasks");
}

int64_t jr_sqlite_tasks_count(struct jr_store *st, int64_t job_seq)
{
    sqlite3_stmt *s = jr_store_stmt(st, S_TASKS_COUNT, NULL);

    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, job_seq);
    return jr_store_step_int(s, -1);
}
