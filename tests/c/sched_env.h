/* The scheduler tests' harness: a store and a scheduler on a real libuv loop
 * in a fresh data directory, jobs built from small task tables, and bounded
 * waits on job and task states (each one a loop deadline). Included by the
 * tests/c/test_sched*.c files; main() sets dir. */
#ifndef JR_TEST_SCHED_ENV_H
#define JR_TEST_SCHED_ENV_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sched/sched.h"

static char dir[256];
static int db_counter;

struct env {
    uv_loop_t loop;
    struct jr_store *st;
    struct jr_sched *s;
    char data[512];
};

static inline int env_open_at(struct env *v, const char *data, struct jr_node node)
{
    char path[600];
    struct jr_err e = { 0, "" };
    struct jr_executor ex;
    struct jr_sched_opts o;

    snprintf(v->data, sizeof v->data, "%s", data);
    mkdir(v->data, 0755);
    snprintf(path, sizeof path, "%s/jobrt.db", v->data);
    if (jr_store_open(path, &v->st, &e)) {
        fprintf(stderr, "store: %s\n", e.msg);
        return -1;
    }
    jr_store_attach(v->st, &v->loop);
    jr_exec_spawn_open(&v->loop, &ex, &e);
    memset(&o, 0, sizeof o);
    o.data_dir = v->data;
    o.node = node;
    o.kill_grace_ms = 2000;
    if (jr_sched_open(&v->loop, v->st, ex, &o, &v->s, &e)) {
        fprintf(stderr, "sched: %s\n", e.msg);
        return -1;
    }
    return 0;
}

/* A fresh loop and DIR/name, with the store's and the scheduler's metrics
 * (NULL: none) and, when ops is given, the spawn executor's ops copied
 * into *ops with prepare set to it (a test's own preparation step). */
static inline int env_open_with(struct env *v, const char *name, struct jr_node node,
                                struct jr_metrics *m, struct jr_exec_ops *ops,
                                int (*prepare)(void *, const struct jr_task_setup *,
                                               uint64_t *, void (*)(void *), void *,
                                               char *, size_t))
{
    char path[600];
    struct jr_err e = { 0, "" };
    struct jr_executor ex;
    struct jr_sched_opts o;

    uv_loop_init(&v->loop);
    snprintf(v->data, sizeof v->data, "%s/%s", dir, name);
    mkdir(v->data, 0755);
    snprintf(path, sizeof path, "%s/jobrt.db", v->data);
    if (jr_store_open(path, &v->st, &e))
        return -1;
    jr_store_attach(v->st, &v->loop);
    if (m)
        jr_store_set_metrics(v->st, m);
    jr_exec_spawn_open(&v->loop, &ex, &e);
    if (ops) {
        *ops = *ex.ops;
        ops->prepare = prepare;
        ex.ops = ops;
    }
    memset(&o, 0, sizeof o);
    o.data_dir = v->data;
    o.node = node;
    o.metrics = m;
    return jr_sched_open(&v->loop, v->st, ex, &o, &v->s, &e) ? -1 : 0;
}

static inline int env_open(struct env *v, struct jr_node node)
{
    char data[512];

    uv_loop_init(&v->loop);
    snprintf(data, sizeof data, "%s/d%d", dir, ++db_counter);
    return env_open_at(v, data, node);
}

static inline void walk_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static inline void env_close(struct env *v)
{
    jr_sched_close(v->s);
    jr_store_close(v->st);
    uv_run(&v->loop, UV_RUN_DEFAULT);
    uv_walk(&v->loop, walk_close, NULL);
    uv_run(&v->loop, UV_RUN_DEFAULT);
    uv_loop_close(&v->loop);
}

/* ---- building jobs ---- */

struct tdef {
    const char *alias;
    const char *cmd;          /* run with sh -c */
    const char *deps[4];
    int64_t priority, tolerable, retries, cpu, timeout_ms, gpu, memory;
};

struct built {
    struct jr_task_spec tasks[16];
    char argv[16][512];
};

static inline void build(struct built *b, struct jr_job_spec *spec, const struct tdef *defs,
                  size_t n)
{
    size_t i, k, len;

    memset(spec, 0, sizeof *spec);
    for (i = 0; i < n; i++) {
        struct jr_task_spec *t = &b->tasks[i];
        memset(t, 0, sizeof *t);
        t->alias = defs[i].alias;
        for (k = 0; k < 4 && defs[i].deps[k]; k++)
            ;
        t->deps = defs[i].deps;
        t->ndeps = k;
        len = (size_t)snprintf(b->argv[i], sizeof b->argv[i], "/bin/sh%c-c%c%s", 0, 0,
                               defs[i].cmd);
        t->argv = b->argv[i];
        t->argv_len = defs[i].cmd ? len + 1 : 0;
        t->priority = defs[i].priority;
        t->tolerable = defs[i].tolerable;
        t->retries = defs[i].retries;
        t->cpu = defs[i].cpu;
        t->gpu = defs[i].gpu;
        t->memory = defs[i].memory;
        t->timeout_ms = defs[i].timeout_ms;
        t->spec = "{}";
    }
    spec->tasks = b->tasks;
    spec->ntasks = n;
    spec->surface = "test";
    spec->owner = "tester";
    spec->attrs = "{}";
}

static inline int submit(struct env *v, const char *id, const struct tdef *defs, size_t n,
                  int64_t priority, int64_t max_par, char out[80], struct jr_err *e)
{
    struct built b;
    struct jr_job_spec spec;

    build(&b, &spec, defs, n);
    spec.id = id;
    spec.priority = priority;
    spec.max_parallelism = max_par;
    return jr_sched_submit(v->s, &spec, out, e);
}

/* ---- reading state ---- */

struct state_buf {
    char state[32];
    char error[256];
};

static inline int copy_state(void *arg, const struct jr_job_rec *r)
{
    struct state_buf *b = arg;

    snprintf(b->state, sizeof b->state, "%s", r->state);
    snprintf(b->error, sizeof b->error, "%s", r->error ? r->error : "");
    return 0;
}

static inline const char *job_state(struct env *v, const char *id)
{
    static struct state_buf b;

    strcpy(b.state, "(none)");
    b.error[0] = 0;
    jr_store_job_get(v->st, id, copy_state, &b, NULL);
    return b.state;
}

struct task_q {
    const char *alias;
    char state[32], outcome[32], error[256];
    int64_t attempt, exit_code;
    int64_t job_seq;
};

static inline int copy_task(void *arg, const struct jr_task_rec *t)
{
    struct task_q *q = arg;

    if (strcmp(t->alias, q->alias) != 0)
        return 0;
    snprintf(q->state, sizeof q->state, "%s", t->state);
    snprintf(q->outcome, sizeof q->outcome, "%s", t->outcome ? t->outcome : "");
    snprintf(q->error, sizeof q->error, "%s", t->error ? t->error : "");
    q->attempt = t->attempt;
    q->exit_code = t->exit_code;
    return 1;
}

static inline int copy_seq(void *arg, const struct jr_job_rec *r)
{
    *(int64_t *)arg = r->seq;
    return 0;
}

static inline struct task_q task(struct env *v, const char *id, const char *alias)
{
    struct task_q q;
    int64_t seq = 0;

    memset(&q, 0, sizeof q);
    q.alias = alias;
    strcpy(q.state, "(none)");
    jr_store_job_get(v->st, id, copy_seq, &seq, NULL);
    jr_store_tasks_each(v->st, seq, copy_task, &q, NULL);
    return q;
}

/* The order in which tasks of the given job entered a state, from events. */
struct order {
    const char *job, *state;
    char seq[512];
};

static inline int see_event(void *arg, const struct jr_event_rec *ev)
{
    struct order *o = arg;

    if (ev->task && (!o->job || strcmp(ev->job, o->job) == 0) && ev->state &&
        strcmp(ev->state, o->state) == 0) {
        size_t n = strlen(o->seq);
        snprintf(o->seq + n, sizeof o->seq - n, "%s%s%s%s", n ? " " : "",
                 o->job ? "" : ev->job, o->job ? "" : "/", ev->task);
    }
    return 0;
}

static inline const char *order_of(struct env *v, const char *job, const char *state)
{
    static struct order o;

    o.job = job;
    o.state = state;
    o.seq[0] = 0;
    jr_store_events_after(v->st, 0, -1, see_event, &o, NULL);
    return o.seq;
}

/* Max number of tasks of job running at once, replayed from events. */
struct conc {
    const char *job;
    int now, max;
};

static inline int see_conc(void *arg, const struct jr_event_rec *ev)
{
    struct conc *c = arg;

    if (!ev->task || !ev->state || (c->job && strcmp(ev->job, c->job) != 0))
        return 0;
    if (strcmp(ev->state, "running") == 0) {
        if (++c->now > c->max)
            c->max = c->now;
    } else if (strcmp(ev->state, "succeeded") == 0 || strcmp(ev->state, "failed") == 0 ||
               strcmp(ev->state, "canceled") == 0 ||
               (strcmp(ev->state, "ready") == 0 && ev->message)) {
        c->now--;
    }
    return 0;
}

static inline int max_concurrent(struct env *v, const char *job)
{
    struct conc c = { job, 0, 0 };

    jr_store_events_after(v->st, 0, -1, see_conc, &c, NULL);
    return c.max;
}

/* ---- driving the loop ---- */

static inline void on_deadline(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

/* Run the loop until the job is in state (or any of "a|b"), at most ms. */
static inline int wait_state(struct env *v, const char *id, const char *want, int ms)
{
    uv_timer_t t;
    int expired = 0, ok = 0;
    char buf[64];

    uv_timer_init(&v->loop, &t);
    t.data = &expired;
    uv_timer_start(&t, on_deadline, (uint64_t)ms, 0);
    for (;;) {
        snprintf(buf, sizeof buf, "|%s|", job_state(v, id));
        {
            char w[128];
            snprintf(w, sizeof w, "|%s|", want);
            if (strstr(w, buf)) {
                ok = 1;
                break;
            }
        }
        if (expired)
            break;
        uv_run(&v->loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&v->loop, UV_RUN_NOWAIT);
    if (!ok)
        fprintf(stderr, "    job %s is %s, wanted %s\n", id, job_state(v, id), want);
    return ok;
}

static inline int wait_task(struct env *v, const char *id, const char *alias, const char *want,
                     int ms)
{
    uv_timer_t t;
    int expired = 0, ok = 0;

    uv_timer_init(&v->loop, &t);
    t.data = &expired;
    uv_timer_start(&t, on_deadline, (uint64_t)ms, 0);
    while (!(ok = strcmp(task(v, id, alias).state, want) == 0) && !expired)
        uv_run(&v->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&v->loop, UV_RUN_NOWAIT);
    return ok;
}

/* Let the loop settle: run until no in-memory task is left, bounded. */
static inline void drain(struct env *v, int ms)
{
    uv_timer_t t;
    int expired = 0;
    int64_t running, ready, jobs;

    uv_timer_init(&v->loop, &t);
    t.data = &expired;
    uv_timer_start(&t, on_deadline, (uint64_t)ms, 0);
    for (;;) {
        jr_sched_stats(v->s, &running, &ready, &jobs);
        if ((!running && !jobs) || expired)
            break;
        uv_run(&v->loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&v->loop, UV_RUN_NOWAIT);
}

static const struct jr_node small = { 2000, 1LL << 30, 0, 8 };

static inline int find_log(void *arg, const struct jr_log_rec *l)
{
    int *found = arg;

    *found |= strcmp(l->message, "started") == 0;
    return 0;
}

/* Run the loop until the job has logged the line "started", at most ms. */
static inline int wait_started(struct env *v, const char *id, int ms)
{
    uv_timer_t t;
    int expired = 0, found = 0;
    int64_t seq = 0;

    jr_store_job_get(v->st, id, copy_seq, &seq, NULL);
    uv_timer_init(&v->loop, &t);
    t.data = &expired;
    uv_timer_start(&t, on_deadline, (uint64_t)ms, 0);
    for (;;) {
        jr_store_logs(v->st, seq, 0, 0, 100, find_log, &found, NULL);
        if (found || expired)
            break;
        uv_run(&v->loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&v->loop, UV_RUN_NOWAIT);
    return found;
}

#endif
