/* The store's interface (store.h) over its backends: open picks SQLite or
 * PostgreSQL from its target, and each call goes to the backend's table of
 * operations; commit waiters, the clock and time formatting are common. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/backend.h"

int jr_store_is_url(const char *target)
{
    return target && (strncmp(target, "postgresql://", 13) == 0 ||
                      strncmp(target, "postgres://", 11) == 0);
}

int jr_store_open(const char *target, struct jr_store **out, struct jr_err *e)
{
    if (jr_store_is_url(target))
        return jr_pg_open(target, out, e);
    return jr_sqlite_open(target, out, e);
}

const char *jr_store_backend(const struct jr_store *st)
{
    return st->ops->name;
}

void jr_store_set_metrics(struct jr_store *st, struct jr_metrics *m)
{
    st->metrics = m;
}

int jr_store_jobs_by_state(struct jr_store *st, jr_store_state_count_cb cb, void *arg,
                           struct jr_err *e)
{
    return st->ops->jobs_by_state(st, cb, arg, e);
}

void jr_store_set_timeout(struct jr_store *st, int64_t ms)
{
    if (ms > 0)
        st->timeout_ms = ms;
}

void jr_store_listen(struct jr_store *st, void (*cb)(void *arg, int what), void *arg)
{
    st->on_change = cb;
    st->change_arg = arg;
}

void jr_store_base_init(struct jr_store *st, const struct jr_store_ops *ops)
{
    st->ops = ops;
    st->waiters.next = st->waiters.prev = &st->waiters;
}

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

void jr_store_run_waiters(struct jr_store *st, int status)
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

/* ---- the operations, to the backend ---- */

void jr_store_close(struct jr_store *st)
{
    if (st)
        st->ops->close(st);
}

int jr_store_attach(struct jr_store *st, uv_loop_t *loop)
{
    return st->ops->attach(st, loop);
}

int jr_store_pending(const struct jr_store *st)
{
    return st ? st->ops->pending(st) : 0;
}

int jr_store_commit(struct jr_store *st)
{
    return st ? st->ops->commit(st) : JR_OK;
}

int jr_store_op_begin(struct jr_store *st, struct jr_err *e)
{
    return st->ops->op_begin(st, e);
}

int jr_store_op_end(struct jr_store *st, int ok, struct jr_err *e)
{
    return st->ops->op_end(st, ok, e);
}

int jr_store_job_insert(struct jr_store *st, struct jr_job_rec *job, struct jr_err *e)
{
    return st->ops->job_insert(st, job, e);
}

int jr_store_job_create(struct jr_store *st, struct jr_job_rec *job,
                        struct jr_task_rec *tasks, size_t ntasks,
                        const struct jr_event_rec *ev, int64_t *event_seq,
                        struct jr_err *e)
{
    return st->ops->job_create(st, job, tasks, ntasks, ev, event_seq, e);
}

int jr_store_job_get(struct jr_store *st, const char *id, jr_store_job_cb cb, void *arg,
                     struct jr_err *e)
{
    return st->ops->job_get(st, id, cb, arg, e);
}

int jr_store_job_get_seq(struct jr_store *st, int64_t seq, jr_store_job_cb cb, void *arg,
                         struct jr_err *e)
{
    return st->ops->job_get_seq(st, seq, cb, arg, e);
}

int jr_store_job_set_state(struct jr_store *st, const struct jr_job_rec *job,
                           struct jr_err *e)
{
    return st->ops->job_set_state(st, job, e);
}

int jr_store_job_set_attrs(struct jr_store *st, const struct jr_job_rec *job,
                           struct jr_err *e)
{
    return st->ops->job_set_attrs(st, job, e);
}

int jr_store_job_set_approval(struct jr_store *st, int64_t seq, const char *decision,
                              const char *by, const char *reason, const char *at,
                              struct jr_err *e)
{
    return st->ops->job_set_approval(st, seq, decision, by, reason, at, e);
}

int jr_store_job_delete_tasks(struct jr_store *st, int64_t seq, struct jr_err *e)
{
    return st->ops->job_delete_tasks(st, seq, e);
}

int jr_store_job_delete(struct jr_store *st, int64_t seq, struct jr_err *e)
{
    return st->ops->job_delete(st, seq, e);
}

int jr_store_job_mark_deleting(struct jr_store *st, int64_t seq, struct jr_err *e)
{
    return st->ops->job_mark_deleting(st, seq, e);
}

int jr_store_jobs_deleting(struct jr_store *st, jr_store_job_cb cb, void *arg,
                           struct jr_err *e)
{
    return st->ops->jobs_deleting(st, cb, arg, e);
}

int jr_store_jobs_list(struct jr_store *st, const struct jr_job_filter *f,
                       jr_store_job_cb cb, void *arg, struct jr_err *e)
{
    return st->ops->jobs_list(st, f, cb, arg, e);
}

int jr_store_jobs_active(struct jr_store *st, jr_store_job_cb cb, void *arg,
                         struct jr_err *e)
{
    return st->ops->jobs_active(st, cb, arg, e);
}

int64_t jr_store_jobs_count(struct jr_store *st)
{
    return st->ops->jobs_count(st);
}

int jr_store_jobs_count_where(struct jr_store *st, const struct jr_job_count *f,
                              int64_t *out, struct jr_err *e)
{
    return st->ops->jobs_count_where(st, f, out, e);
}

int jr_store_task_insert(struct jr_store *st, const struct jr_task_rec *t,
                         struct jr_err *e)
{
    return st->ops->task_insert(st, t, e);
}

int jr_store_task_set_state(struct jr_store *st, const struct jr_task_rec *t,
                            struct jr_err *e)
{
    return st->ops->task_set_state(st, t, e);
}

int jr_store_task_set_usage(struct jr_store *st, int64_t job_seq, int64_t idx,
                            int64_t cpu_ms, int64_t max_rss_bytes, int64_t wall_ms,
                            struct jr_err *e)
{
    return st->ops->task_set_usage(st, job_seq, idx, cpu_ms, max_rss_bytes, wall_ms, e);
}

int jr_store_task_set_log_offset(struct jr_store *st, int64_t job_seq, int64_t idx,
                                 int64_t offset, struct jr_err *e)
{
    return st->ops->task_set_log_offset(st, job_seq, idx, offset, e);
}

int jr_store_tasks_reset(struct jr_store *st, int64_t job_seq, int keep_succeeded,
                         struct jr_err *e)
{
    return st->ops->tasks_reset(st, job_seq, keep_succeeded, e);
}

int64_t jr_store_tasks_count(struct jr_store *st, int64_t job_seq)
{
    return st->ops->tasks_count(st, job_seq);
}

int jr_store_tasks_each(struct jr_store *st, int64_t job_seq, jr_store_task_cb cb,
                        void *arg, struct jr_err *e)
{
    return st->ops->tasks_each(st, job_seq, cb, arg, e);
}

int jr_store_event_add(struct jr_store *st, const struct jr_event_rec *ev,
                       int64_t *seq_out, struct jr_err *e)
{
    return st->ops->event_add(st, ev, seq_out, e);
}

int jr_store_events_after(struct jr_store *st, int64_t after, int64_t limit,
                          jr_store_event_cb cb, void *arg, struct jr_err *e)
{
    return st->ops->events_after(st, after, limit, cb, arg, e);
}

int jr_store_job_events(struct jr_store *st, const char *job, int64_t after,
                        int64_t limit, jr_store_event_cb cb, void *arg, struct jr_err *e)
{
    return st->ops->job_events(st, job, after, limit, cb, arg, e);
}

int jr_store_log_add(struct jr_store *st, int64_t job_seq, const char *task,
                     int64_t level, const char *message, const char *data,
                     struct jr_err *e)
{
    return st->ops->log_add(st, job_seq, task, level, message, data, e);
}

int jr_store_logs(struct jr_store *st, int64_t job_seq, int64_t after, int64_t min_level,
                  int64_t limit, jr_store_log_cb cb, void *arg, struct jr_err *e)
{
    return st->ops->logs(st, job_seq, after, min_level, limit, cb, arg, e);
}

int jr_store_asset_put(struct jr_store *st, int64_t job_seq, const char *name,
                       const char *data, struct jr_err *e)
{
    return st->ops->asset_put(st, job_seq, name, data, e);
}

int jr_store_assets_clear(struct jr_store *st, int64_t job_seq, struct jr_err *e)
{
    return st->ops->assets_clear(st, job_seq, e);
}

int jr_store_assets(struct jr_store *st, int64_t job_seq, jr_store_asset_cb cb, void *arg,
                    struct jr_err *e)
{
    return st->ops->assets(st, job_seq, cb, arg, e);
}

/* ---- several instances: nothing to do for a store of one ---- */

int jr_store_shared(const struct jr_store *st)
{
    return st->ops->jobs_claim != NULL;
}

int jr_store_available(const struct jr_store *st)
{
    return st->ops->available ? st->ops->available(st) : 1;
}

int jr_store_set_instance(struct jr_store *st, const char *id, struct jr_err *e)
{
    return st->ops->set_instance ? st->ops->set_instance(st, id, e) : JR_OK;
}

int jr_store_instance_up(struct jr_store *st, const char *address, struct jr_err *e)
{
    return st->ops->instance_up ? st->ops->instance_up(st, address, e) : JR_OK;
}

int jr_store_instance_beat(struct jr_store *st, int *alive, struct jr_err *e)
{
    *alive = 1;
    return st->ops->instance_beat ? st->ops->instance_beat(st, alive, e) : JR_OK;
}

int jr_store_instances_dead(struct jr_store *st, int64_t ms,
                            int (*cb)(void *arg, const char *id), void *arg,
                            struct jr_err *e)
{
    return st->ops->instances_dead ? st->ops->instances_dead(st, ms, cb, arg, e) : JR_OK;
}

int jr_store_jobs_claim(struct jr_store *st, int64_t n, jr_store_job_cb cb, void *arg,
                        struct jr_err *e)
{
    return st->ops->jobs_claim ? st->ops->jobs_claim(st, n, cb, arg, e) : JR_OK;
}

int jr_store_jobs_adopt(struct jr_store *st, const char *dead, jr_store_job_cb cb,
                        void *arg, struct jr_err *e)
{
    return st->ops->jobs_adopt ? st->ops->jobs_adopt(st, dead, cb, arg, e) : JR_OK;
}

int jr_store_job_set_driver(struct jr_store *st, int64_t seq, int mine, struct jr_err *e)
{
    return st->ops->job_set_driver ? st->ops->job_set_driver(st, seq, mine, e) : JR_OK;
}
