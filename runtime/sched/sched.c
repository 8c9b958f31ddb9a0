/* The scheduler proper: active jobs in memory, the ready queue ordered by job
 * priority, task priority and age, resource fitting, task start through the
 * executor (released at its gate once "running" is committed), completion,
 * retries, timeouts, kills with a grace period, and recovery at open. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched/internal.h"

#define DEFAULT_GRACE_MS 10000
#define TIMEOUT_BACKSTOP_MS 2000

/* ---- rows and events ---- */

int jr_sched_event(struct jr_sched *s, const char *job, const char *task,
                   const char *type, const char *state, const char *message,
                   struct jr_err *e)
{
    struct jr_event_rec ev = { 0, 0, job, task, type, state, message };
    int64_t seq = 0;
    int rc = jr_store_event_add(s->st, &ev, &seq, e);

    if (!rc && s->opts.on_event)
        s->opts.on_event(s->opts.event_arg, seq);
    return rc;
}

int jr_sched_write_task(struct jr_sched *s, struct stask *t, int64_t exit_code,
                        int64_t sig, const char *outcome, const char *error,
                        int64_t ended_at, struct jr_err *e)
{
    struct jr_task_rec r;
    int rc;

    memset(&r, 0, sizeof r);
    r.job_seq = t->job->seq;
    r.idx = t->idx;
    r.state = jr_tstate_names[t->state];
    r.attempt = t->attempt;
    r.exit_code = exit_code;
    r.signal = sig;
    r.outcome = outcome;
    r.error = error;
    r.started_at = t->started_at;
    r.ended_at = ended_at;
    r.pid = t->proc ? t->pid : 0;
    r.pid_start = t->proc ? t->pid_start : 0;
    rc = jr_store_task_set_state(s->st, &r, e);
    if (!rc)
        rc = jr_sched_event(s, t->job->id, t->alias, "task", r.state, error, e);
    return rc;
}

int jr_sched_write_job_state(struct jr_sched *s, int64_t seq, const char *id, int state,
                             int64_t started_at, int64_t ended_at, const char *error,
                             const char *message, struct jr_err *e)
{
    struct jr_job_rec r;
    int rc;

    memset(&r, 0, sizeof r);
    r.seq = seq;
    r.state = jr_jstate_names[state];
    r.updated_at = jr_store_now_ms();
    r.started_at = started_at;
    r.ended_at = ended_at;
    r.error = error;
    rc = jr_store_job_set_state(s->st, &r, e);
    if (!rc)
        rc = jr_sched_event(s, id, NULL, "job", r.state, message ? message : error, e);
    return rc;
}

/* ---- the in-memory model ---- */

struct sjob *jr_sched_find(struct jr_sched *s, const char *id)
{
    struct sjob *j;

    for (j = s->jobs.next; j != &s->jobs; j = j->next)
        if (strcmp(j->id, id) == 0)
            return j;
    return NULL;
}

static void drop_timer(struct stask *t);

static void ready_remove(struct jr_sched *s, struct stask *t)
{
    size_t i;

    if (!t->in_ready)
        return;
    for (i = 0; i < s->nready; i++)
        if (s->ready[i] == t)
            s->ready[i] = NULL;
    t->in_ready = 0;
}

static int ready_add(struct jr_sched *s, struct stask *t)
{
    struct stask **n;

    if (t->in_ready)
        return 0;
    if (s->nready == s->cap_ready) {
        size_t cap = s->cap_ready ? s->cap_ready * 2 : 64;
        n = realloc(s->ready, cap * sizeof *n);
        if (!n)
            return -1;
        s->ready = n;
        s->cap_ready = cap;
    }
    s->ready[s->nready++] = t;
    t->in_ready = 1;
    s->ready_dirty = 1;
    if (s->dispatching)
        s->dispatch_again = 1;
    return 0;
}

void jr_sched_free_job(struct jr_sched *s, struct sjob *j)
{
    int i;

    for (i = 0; i < j->ntasks; i++) {
        struct stask *t = &j->tasks[i];
        ready_remove(s, t);
        drop_timer(t);
        free(t->alias);
        free(t->deps);
        free(t->argv);
        free(t->env);
        free(t->workdir);
        free(t->spec);
        free(t->error);
    }
    if (j->next) {
        j->prev->next = j->next;
        j->next->prev = j->prev;
        s->njobs--;
    }
    free(j->tasks);
    free(j->id);
    free(j);
}

struct load_ctx {
    struct sjob *j;
    int cap;
    int failed;
};

static char *dup_mem(const char *p, size_t n)
{
    char *d = malloc(n + 1);

    if (d) {
        if (n)
            memcpy(d, p, n);
        d[n] = 0;
    }
    return d;
}

static int parse_deps(struct stask *t, const char *deps)
{
    const char *p;
    int n = 0;

    if (!deps || !*deps)
        return 0;
    for (p = deps; *p; p++)
        n += *p == ',';
    t->deps = calloc((size_t)n + 1, sizeof *t->deps);
    if (!t->deps)
        return -1;
    for (p = deps; *p;) {
        t->deps[t->ndeps++] = (int)strtol(p, (char **)&p, 10);
        if (*p == ',')
            p++;
    }
    return 0;
}

static int load_task(void *arg, const struct jr_task_rec *r)
{
    struct load_ctx *c = arg;
    struct sjob *j = c->j;
    struct stask *t;

    if (j->ntasks == c->cap) {
        int cap = c->cap ? c->cap * 2 : 4;
        struct stask *n = realloc(j->tasks, (size_t)cap * sizeof *n);
        if (!n) {
            c->failed = 1;
            return 1;
        }
        j->tasks = n;
        c->cap = cap;
    }
    t = &j->tasks[j->ntasks++];
    memset(t, 0, sizeof *t);
    t->idx = (int)r->idx;
    t->state = jr_tstate_parse(r->state);
    if (t->state < 0)
        t->state = T_PENDING;
    t->priority = r->priority;
    t->tolerable = r->tolerable;
    t->retries = r->retries;
    t->attempt = r->attempt;
    t->cpu = r->cpu;
    t->memory = r->memory;
    t->gpu = r->gpu;
    t->timeout_ms = r->timeout_ms;
    t->started_at = r->started_at;
    t->pid = r->pid;
    t->pid_start = r->pid_start;
    t->alias = strdup(r->alias);
    t->argv = dup_mem(r->argv, r->argv_len);
    t->argv_len = r->argv_len;
    t->env = dup_mem(r->env, r->env_len);
    t->env_len = r->env_len;
    t->workdir = r->workdir ? strdup(r->workdir) : NULL;
    t->spec = strdup(r->spec ? r->spec : "{}");
    t->error = r->error ? strdup(r->error) : NULL;
    if (!t->alias || !t->argv || !t->env || !t->spec || parse_deps(t, r->deps))
        c->failed = 1;
    return c->failed;
}

struct sjob *jr_sched_load(struct jr_sched *s, int64_t seq, const char *id,
                           int state, int64_t priority, int64_t max_par,
                           int64_t created_at, int64_t started_at, struct jr_err *e)
{
    struct load_ctx c = { NULL, 0, 0 };
    struct sjob *j = calloc(1, sizeof *j);
    int i;

    if (!j || !(j->id = strdup(id))) {
        free(j);
        jr_err_set(e, JR_E_SYSTEM, "out of memory");
        return NULL;
    }
    j->sched = s;
    j->seq = seq;
    j->state = state;
    j->priority = priority;
    j->max_parallelism = max_par;
    j->created_at = created_at;
    j->started_at = started_at;
    c.j = j;
    if (jr_store_tasks_each(s->st, seq, load_task, &c, e) || c.failed) {
        if (c.failed)
            jr_err_set(e, JR_E_SYSTEM, "out of memory");
        jr_sched_free_job(s, j);
        return NULL;
    }
    for (i = 0; i < j->ntasks; i++)
        j->tasks[i].job = j;
    j->next = &s->jobs;
    j->prev = s->jobs.prev;
    s->jobs.prev->next = j;
    s->jobs.prev = j;
    s->njobs++;
    return j;
}

/* ---- timers and kills ---- */

static void on_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void drop_timer(struct stask *t)
{
    if (!t->timer)
        return;
    t->timer->task = NULL;
    uv_close((uv_handle_t *)&t->timer->h, on_timer_closed);
    t->timer = NULL;
}

static int ensure_timer(struct jr_sched *s, struct stask *t)
{
    if (t->timer)
        return 0;
    t->timer = calloc(1, sizeof *t->timer);
    if (!t->timer)
        return -1;
    uv_timer_init(s->loop, &t->timer->h);
    t->timer->h.data = t->timer;
    t->timer->task = t;
    return 0;
}

static struct jr_sched *sched_of(struct stask *t);

static void on_grace(uv_timer_t *h)
{
    struct stimer *tm = h->data;

    if (tm->task && tm->task->proc)
        sched_of(tm->task)->ex.ops->kill(tm->task->proc, SIGKILL);
}

static void kill_task(struct jr_sched *s, struct stask *t, int reason)
{
    if (!t->proc)
        return;
    if (!t->kill_reason)
        t->kill_reason = reason;
    if (t->gated) {
        /* Never released: it cannot have run anything. */
        s->ex.ops->kill(t->proc, SIGKILL);
        return;
    }
    s->ex.ops->kill(t->proc, SIGTERM);
    if (ensure_timer(s, t) == 0)
        uv_timer_start(&t->timer->h, on_grace,
                       (uint64_t)(s->opts.kill_grace_ms > 0 ? s->opts.kill_grace_ms
                                                             : DEFAULT_GRACE_MS), 0);
    else
        s->ex.ops->kill(t->proc, SIGKILL);
}

static void on_timeout(uv_timer_t *h)
{
    struct stimer *tm = h->data;

    if (tm->task)
        kill_task(sched_of(tm->task), tm->task, JR_OUT_TIMEOUT);
}

static struct jr_sched *sched_of(struct stask *t)
{
    return t->job->sched;
}

/* ---- settle: release, skip, finish ---- */

static int dep_state(struct sjob *j, struct stask *t, int *blocked_by)
{
    int i, waiting = 0;

    for (i = 0; i < t->ndeps; i++) {
        struct stask *d = &j->tasks[t->deps[i]];
        if (d->state == T_SUCCEEDED || (d->state == T_FAILED && d->tolerable))
            continue;
        if (d->state == T_FAILED || d->state == T_SKIPPED || d->state == T_CANCELED) {
            *blocked_by = t->deps[i];
            return -1;
        }
        waiting = 1;
    }
    return waiting;
}

static int finish_job(struct jr_sched *s, struct sjob *j, struct jr_err *e)
{
    char err[512];
    const char *failed = NULL, *why = NULL;
    int i, rc;

    for (i = 0; i < j->ntasks; i++) {
        struct stask *t = &j->tasks[i];
        if (t->state == T_FAILED && !t->tolerable) {
            failed = t->alias;
            why = t->error;
            break;
        }
    }
    if (failed)
        snprintf(err, sizeof err, "task '%s' failed: %s", failed, why ? why : "failed");
    /* A failed job always has an error log entry saying why, written first. */
    rc = failed ? jr_store_log_add(s->st, j->seq, failed, JR_LOG_LEVEL_ERROR, err, NULL, e) : 0;
    if (!rc)
        rc = jr_sched_write_job_state(s, j->seq, j->id, failed ? J_FAILED : J_SUCCEEDED,
                                      j->started_at, jr_store_now_ms(), failed ? err : NULL,
                                      NULL, e);
    jr_sched_free_job(s, j);
    return rc;
}

int jr_sched_settle(struct jr_sched *s, struct sjob *j, struct jr_err *e)
{
    int changed = 1, i, rc = 0, busy;
    char msg[300];

    if (j->stopping) {
        if (j->running > 0)
            return 0;
        jr_sched_free_job(s, j);
        return 1;
    }
    while (changed && !rc) {
        changed = 0;
        for (i = 0; i < j->ntasks && !rc; i++) {
            struct stask *t = &j->tasks[i];
            int blocked = -1, w;
            if (t->state != T_PENDING)
                continue;
            w = dep_state(j, t, &blocked);
            if (w < 0) {
                t->state = T_SKIPPED;
                snprintf(msg, sizeof msg, "dependency '%s' did not succeed",
                         j->tasks[blocked].alias);
                rc = jr_sched_write_task(s, t, -1, 0, NULL, msg, jr_store_now_ms(), e);
                changed = 1;
            } else if (w == 0) {
                t->state = T_READY;
                rc = jr_sched_write_task(s, t, -1, 0, NULL, NULL, 0, e);
                if (!rc && ready_add(s, t))
                    rc = jr_err_set(e, JR_E_SYSTEM, "out of memory");
                changed = 1;
            }
        }
    }
    busy = j->running > 0;
    for (i = 0; i < j->ntasks && !busy; i++)
        busy = j->tasks[i].state == T_READY || j->tasks[i].state == T_PENDING;
    if (busy || j->ntasks == 0)
        return 0;
    finish_job(s, j, rc ? NULL : e);
    return 1;
}

/* ---- starting tasks ---- */

static void on_task_log(void *arg, int stream, const char *line, size_t len)
{
    struct stask *t = arg;
    struct jr_sched *s = sched_of(t);
    char *msg = dup_mem(line, len);

    if (!msg || s->closing) {
        free(msg);
        return;
    }
    jr_store_log_add(s->st, t->job->seq, t->alias,
                     stream == 2 ? JR_LOG_LEVEL_WARN : JR_LOG_LEVEL_INFO, msg, NULL, NULL);
    free(msg);
}

static void on_task_done(void *arg, const struct jr_exec_result *r);

static const struct jr_exec_cbs task_cbs = { on_task_log, on_task_done };

static void on_gate_commit(struct jr_store_waiter *w, int status)
{
    struct jr_sched *s = (struct jr_sched *)((char *)w - offsetof(struct jr_sched, gate_waiter));
    struct sjob *j;
    int i;

    for (j = s->jobs.next; j != &s->jobs; j = j->next) {
        for (i = 0; i < j->ntasks; i++) {
            struct stask *t = &j->tasks[i];
            if (!t->gated || !t->proc)
                continue;
            t->gated = 0;
            if (status) {
                t->kill_reason = JR_OUT_SETUP_ERROR;
                s->ex.ops->kill(t->proc, SIGKILL);
                continue;
            }
            s->ex.ops->go(t->proc);
            /* A sandboxed task's helper enforces the timeout itself (and
             * reports it); this timer is then only the backstop. */
            if (t->timeout_ms > 0 && ensure_timer(s, t) == 0)
                uv_timer_start(&t->timer->h, on_timeout, (uint64_t)t->timeout_ms +
                               (s->ex.ops->sandboxed ? TIMEOUT_BACKSTOP_MS : 0), 0);
        }
    }
}

/* argv/env blobs to NULL-terminated arrays pointing into the blob. */
static char **split_list(const char *blob, size_t len, size_t extra)
{
    size_t n = 0, i, k = 0;
    char **v;

    for (i = 0; i < len; i++)
        n += blob[i] == 0;
    v = calloc(n + extra + 1, sizeof *v);
    if (!v)
        return NULL;
    for (i = 0; i < len; i += strlen(blob + i) + 1)
        v[k++] = (char *)blob + i;
    return v;
}

static int resolve_cwd(struct jr_sched *s, struct stask *t, char *out, size_t size)
{
    const char *w = t->workdir;
    char base[4096];

    if (!w || !*w || strcmp(w, "/outputs") == 0)
        return jr_sched_task_dir(s, t->job->id, t->alias, "outputs", out, size);
    if (strncmp(w, "/outputs/", 9) == 0 || strcmp(w, "/work") == 0 ||
        strncmp(w, "/work/", 6) == 0 || w[0] != '/') {
        if (jr_sched_task_dir(s, t->job->id, t->alias, NULL, base, sizeof base))
            return -1;
        return (size_t)snprintf(out, size, "%s/%s", base, w[0] == '/' ? w + 1 : w)
               >= size ? -1 : 0;
    }
    return (size_t)snprintf(out, size, "%s", w) >= size ? -1 : 0;
}

#define NBASE_ENV 8

static int start_task(struct jr_sched *s, struct stask *t, struct jr_err *e)
{
    struct sjob *j = t->job;
    char outdir[4096], workdir[4096], cwd[4096], taskdir[4096], jobdir[4096];
    char *base[NBASE_ENV] = { 0 };
    char **argv = NULL, **env = NULL, **task_env = NULL;
    struct jr_exec_spec spec;
    size_t n;
    int rc = JR_OK, i, sandboxed = s->ex.ops->sandboxed;

    if (jr_sched_task_dir(s, j->id, t->alias, "outputs", outdir, sizeof outdir) ||
        jr_sched_task_dir(s, j->id, t->alias, "work", workdir, sizeof workdir) ||
        jr_sched_task_dir(s, j->id, t->alias, NULL, taskdir, sizeof taskdir) ||
        jr_sched_task_dir(s, j->id, NULL, NULL, jobdir, sizeof jobdir) ||
        resolve_cwd(s, t, cwd, sizeof cwd)) {
        rc = jr_err_set(e, JR_E_SYSTEM, "task directory path too long");
        goto done;
    }
    /* A sandboxed task's workdir is a path inside its sandbox: only the
     * task's own directories are made on the host. */
    if (jr_sched_mkdirs(outdir) || jr_sched_mkdirs(workdir) ||
        (!sandboxed && jr_sched_mkdirs(cwd))) {
        rc = jr_err_set(e, JR_E_SYSTEM, "cannot create %s: %m", sandboxed ? taskdir : cwd);
        goto done;
    }
    argv = split_list(t->argv, t->argv_len, 0);
    env = split_list(t->env, t->env_len, NBASE_ENV);
    task_env = split_list(t->env, t->env_len, 0);
    if (!argv || !env || !task_env || !argv[0]) {
        rc = jr_err_set(e, argv && env ? JR_E_INVALID : JR_E_SYSTEM,
                        argv && env ? "task has no command" : "out of memory");
        goto done;
    }
    t->attempt++;
    if (asprintf(&base[0], "PATH=/usr/local/bin:/usr/bin:/bin") < 0 ||
        asprintf(&base[1], "HOME=%s", workdir) < 0 ||
        asprintf(&base[2], "TMPDIR=%s", workdir) < 0 ||
        asprintf(&base[3], "JOBRT_JOB_ID=%s", j->id) < 0 ||
        asprintf(&base[4], "JOBRT_TASK=%s", t->alias) < 0 ||
        asprintf(&base[5], "JOBRT_ATTEMPT=%lld", (long long)t->attempt) < 0 ||
        asprintf(&base[6], "JOBRT_OUTPUTS=%s", outdir) < 0 ||
        asprintf(&base[7], "JOBRT_WORK=%s", workdir) < 0) {
        rc = jr_err_set(e, JR_E_SYSTEM, "out of memory");
        goto done;
    }
    for (n = 0; env[n]; n++)
        ;
    /* The task's own env comes first: the first definition wins. */
    for (i = 0; i < NBASE_ENV; i++)
        env[n + (size_t)i] = base[i];
    memset(&spec, 0, sizeof spec);
    spec.argv = argv;
    spec.env = env;
    spec.cwd = cwd;
    spec.job_id = j->id;
    spec.task = t->alias;
    spec.cpu = t->cpu;
    spec.memory = t->memory;
    spec.gpu = t->gpu;
    spec.task_env = task_env;
    spec.workdir = t->workdir;
    spec.task_dir = taskdir;
    spec.job_dir = jobdir;
    spec.spec_json = t->spec;
    spec.attempt = t->attempt;
    spec.timeout_ms = t->timeout_ms;
    t->kill_reason = 0;
    rc = s->ex.ops->start(s->ex.self, &spec, &task_cbs, t, &t->proc, &t->pid,
                          &t->pid_start, e);
done:
    for (i = 0; i < NBASE_ENV; i++)
        free(base[i]);
    free(argv);
    free(env);
    free(task_env);
    return rc;
}

static int fits(struct jr_sched *s, struct stask *t)
{
    struct sjob *j = t->job;

    if (j->stopping || (j->state != J_QUEUED && j->state != J_RUNNING))
        return 0;
    if (j->max_parallelism > 0 && j->running >= j->max_parallelism)
        return 0;
    return s->used.max_tasks < s->node.max_tasks &&
           s->used.cpu + t->cpu <= s->node.cpu &&
           s->used.memory + t->memory <= s->node.memory &&
           s->used.gpu + t->gpu <= s->node.gpu;
}

static void account(struct jr_sched *s, struct stask *t, int sign)
{
    s->used.cpu += sign * t->cpu;
    s->used.memory += sign * t->memory;
    s->used.gpu += sign * t->gpu;
    s->used.max_tasks += sign;
    t->job->running += sign;
}

static void launch(struct jr_sched *s, struct stask *t)
{
    struct sjob *j = t->job;
    struct jr_err e = { 0, "" };
    int64_t now = jr_store_now_ms();
    int rc;

    rc = start_task(s, t, &e);
    if (rc) {
        t->state = T_FAILED;
        t->proc = NULL;
        free(t->error);
        t->error = strdup(e.msg);
        t->started_at = now;
        jr_sched_write_task(s, t, -1, 0, jr_exec_outcome_name(JR_OUT_SETUP_ERROR),
                            e.msg, now, NULL);
        jr_sched_settle(s, j, NULL);
        return;
    }
    t->state = T_RUNNING;
    t->started_at = now;
    t->gated = 1;
    account(s, t, +1);
    jr_sched_write_task(s, t, -1, 0, NULL, NULL, 0, NULL);
    if (j->state == J_QUEUED) {
        j->state = J_RUNNING;
        j->started_at = now;
        jr_sched_write_job_state(s, j->seq, j->id, J_RUNNING, now, 0, NULL, NULL, NULL);
    }
    if (!s->gate_waiter.next)
        jr_store_wait(s->st, &s->gate_waiter);
}

static int ready_cmp(const void *a, const void *b)
{
    const struct stask *x = *(struct stask *const *)a, *y = *(struct stask *const *)b;

    if (!x || !y)
        return !x - !y;      /* holes last */
    if (x->job->priority != y->job->priority)
        return x->job->priority > y->job->priority ? -1 : 1;
    if (x->priority != y->priority)
        return x->priority > y->priority ? -1 : 1;
    if (x->job->seq != y->job->seq)
        return x->job->seq < y->job->seq ? -1 : 1;
    return x->idx - y->idx;
}

void jr_sched_dispatch(struct jr_sched *s)
{
    size_t i, k;

    if (s->closing)
        return;
    if (s->dispatching) {
        s->dispatch_again = 1;
        return;
    }
    s->dispatching = 1;
    do {
        s->dispatch_again = 0;
        if (s->ready_dirty) {
            qsort(s->ready, s->nready, sizeof *s->ready, ready_cmp);
            s->ready_dirty = 0;
        }
        for (i = 0; i < s->nready && s->used.max_tasks < s->node.max_tasks; i++) {
            struct stask *t = s->ready[i];
            if (!t || !fits(s, t))
                continue;
            s->ready[i] = NULL;
            t->in_ready = 0;
            launch(s, t);
        }
        for (i = k = 0; i < s->nready; i++)
            if (s->ready[i])
                s->ready[k++] = s->ready[i];
        s->nready = k;
    } while (s->dispatch_again);
    s->dispatching = 0;
}

/* ---- completion ---- */

static void on_task_done(void *arg, const struct jr_exec_result *r)
{
    struct stask *t = arg;
    struct sjob *j = t->job;
    struct jr_sched *s = sched_of(t);
    char err[330] = "";
    const char *outcome = jr_exec_outcome_name(r->outcome);
    int64_t now = jr_store_now_ms();
    int kill_reason = t->kill_reason;

    t->proc = NULL;
    t->gated = 0;
    drop_timer(t);
    account(s, t, -1);
    if (s->closing) {
        if (j->running == 0)
            jr_sched_free_job(s, j);
        if (s->njobs == 0)
            free(s);
        return;
    }
    if ((kill_reason == JR_OUT_CANCELED || j->stopping) &&
        !(r->outcome == JR_OUT_EXITED && r->exit_code == 0 && !kill_reason)) {
        t->state = T_CANCELED;
        outcome = jr_exec_outcome_name(JR_OUT_CANCELED);
        snprintf(err, sizeof err, "canceled");
    } else if (kill_reason == JR_OUT_TIMEOUT || r->outcome == JR_OUT_TIMEOUT) {
        t->state = T_FAILED;
        outcome = jr_exec_outcome_name(JR_OUT_TIMEOUT);
        snprintf(err, sizeof err, "timed out after %.3gs", (double)t->timeout_ms / 1000);
    } else if (kill_reason == JR_OUT_SETUP_ERROR) {
        t->state = T_FAILED;
        outcome = jr_exec_outcome_name(JR_OUT_SETUP_ERROR);
        snprintf(err, sizeof err, "store commit failed before the task started");
    } else if (r->outcome == JR_OUT_EXITED && r->exit_code == 0) {
        t->state = T_SUCCEEDED;
    } else {
        t->state = T_FAILED;
        if (r->message[0])
            snprintf(err, sizeof err, "%s", r->message);
        else if (r->outcome == JR_OUT_SIGNALED)
            snprintf(err, sizeof err, "killed by signal %d", r->signal);
        else
            snprintf(err, sizeof err, "exit code %d", r->exit_code);
    }
    if (r->wall_ms >= 0) /* with the outcome, in the same batch */
        jr_store_task_set_usage(s->st, t->job->seq, t->idx, r->cpu_ms, r->max_rss_bytes,
                                r->wall_ms, NULL);
    if (t->state == T_FAILED) {
        free(t->error);
        t->error = strdup(err);
    }
    if (t->state == T_FAILED && t->attempt <= t->retries) {
        char msg[420];
        snprintf(msg, sizeof msg, "attempt %lld failed (%s); retrying",
                 (long long)t->attempt, err);
        t->state = T_READY;
        jr_sched_write_task(s, t, r->exit_code, r->signal, outcome, msg, now, NULL);
        ready_add(s, t);
    } else {
        jr_sched_write_task(s, t, r->exit_code, r->signal, outcome, err[0] ? err : NULL,
                            now, NULL);
    }
    jr_sched_settle(s, j, NULL);
    jr_sched_dispatch(s);
}

int jr_sched_stop_tasks(struct jr_sched *s, struct sjob *j, struct jr_err *e)
{
    int i, rc = 0;
    int64_t now = jr_store_now_ms();

    j->stopping = 1;
    for (i = 0; i < j->ntasks && !rc; i++) {
        struct stask *t = &j->tasks[i];
        if (t->state == T_RUNNING && t->proc) {
            kill_task(s, t, JR_OUT_CANCELED);
        } else if (t->state == T_READY || t->state == T_PENDING) {
            ready_remove(s, t);
            t->state = T_CANCELED;
            rc = jr_sched_write_task(s, t, -1, 0, jr_exec_outcome_name(JR_OUT_CANCELED),
                                     "canceled", now, e);
        }
    }
    return rc;
}

/* ---- open, recover, close ---- */

struct active {
    int64_t seq, priority, max_par, created_at, started_at;
    int state;
    char *id;
};

struct active_list {
    struct active *v;
    size_t n, cap;
    int failed;
};

static int collect_active(void *arg, const struct jr_job_rec *r)
{
    struct active_list *l = arg;
    struct active *a;

    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        a = realloc(l->v, cap * sizeof *a);
        if (!a) {
            l->failed = 1;
            return 1;
        }
        l->v = a;
        l->cap = cap;
    }
    a = &l->v[l->n];
    a->seq = r->seq;
    a->priority = r->priority;
    a->max_par = r->max_parallelism;
    a->created_at = r->created_at;
    a->started_at = r->started_at;
    a->state = jr_jstate_parse(r->state);
    a->id = strdup(r->id);
    if (!a->id) {
        l->failed = 1;
        return 1;
    }
    l->n++;
    return 0;
}

static int recover_job(struct jr_sched *s, struct active *a, struct jr_err *e)
{
    struct sjob *j;
    int i, rc = 0, live = a->state == J_QUEUED || a->state == J_RUNNING;
    int64_t now = jr_store_now_ms();

    j = jr_sched_load(s, a->seq, a->id, a->state, a->priority, a->max_par,
                      a->created_at, a->started_at, e);
    if (!j)
        return e ? e->code : JR_E_SYSTEM;
    for (i = 0; i < j->ntasks && !rc; i++) {
        struct stask *t = &j->tasks[i];
        if (t->state == T_RUNNING) {
            jr_exec_kill_stale(t->pid, t->pid_start);
            free(t->error);
            t->error = strdup("runtime restarted");
            if (live && t->attempt <= t->retries)
                t->state = T_READY;
            else
                t->state = live ? T_FAILED : T_CANCELED;
            rc = jr_sched_write_task(s, t, -1, 0, NULL, "runtime restarted",
                                     t->state == T_READY ? 0 : now, e);
        }
        if (!rc && live && t->state == T_READY && ready_add(s, t))
            rc = jr_err_set(e, JR_E_SYSTEM, "out of memory");
    }
    if (rc || !live) {
        jr_sched_free_job(s, j);
        return rc;
    }
    jr_sched_settle(s, j, e);
    return JR_OK;
}

int jr_sched_open(uv_loop_t *loop, struct jr_store *st, struct jr_executor ex,
                  const struct jr_sched_opts *o, struct jr_sched **out,
                  struct jr_err *e)
{
    struct jr_sched *s = calloc(1, sizeof *s);
    struct active_list l = { NULL, 0, 0, 0 };
    size_t i;
    int rc = JR_OK;

    *out = NULL;
    if (!s || !(s->data_dir = strdup(o->data_dir ? o->data_dir : "."))) {
        free(s);
        ex.ops->close(ex.self);
        return jr_err_set(e, JR_E_SYSTEM, "out of memory");
    }
    s->loop = loop;
    s->st = st;
    s->ex = ex;
    s->opts = *o;
    s->opts.data_dir = s->data_dir;
    s->node = o->node;
    jr_node_detect(&s->node);
    s->jobs.next = s->jobs.prev = &s->jobs;
    s->gate_waiter.cb = on_gate_commit;
    rc = jr_store_jobs_active(st, collect_active, &l, e);
    if (!rc && l.failed)
        rc = jr_err_set(e, JR_E_SYSTEM, "out of memory");
    for (i = 0; !rc && i < l.n; i++)
        rc = recover_job(s, &l.v[i], e);
    for (i = 0; i < l.n; i++)
        free(l.v[i].id);
    free(l.v);
    if (rc) {
        s->closing = 1;
        while (s->jobs.next != &s->jobs)
            jr_sched_free_job(s, s->jobs.next);
        free(s->ready);
        free(s->data_dir);
        ex.ops->close(ex.self);
        free(s);
        return rc;
    }
    *out = s;
    jr_sched_dispatch(s);
    return JR_OK;
}

void jr_sched_close(struct jr_sched *s)
{
    struct sjob *j, *next;
    int i, alive = 0;

    if (!s)
        return;
    s->closing = 1;
    jr_store_unwait(&s->gate_waiter);
    for (j = s->jobs.next; j != &s->jobs; j = next) {
        next = j->next;
        for (i = 0; i < j->ntasks; i++) {
            if (j->tasks[i].proc) {
                s->ex.ops->kill(j->tasks[i].proc, SIGKILL);
                alive = 1;
            }
        }
        if (j->running == 0)
            jr_sched_free_job(s, j);
    }
    s->ex.ops->close(s->ex.self);
    free(s->ready);
    s->ready = NULL;
    s->nready = 0;
    free(s->data_dir);
    s->data_dir = NULL;
    /* With processes left, the last on_task_done frees s. */
    if (!alive)
        free(s);
}

const struct jr_node *jr_sched_node(const struct jr_sched *s)
{
    return &s->node;
}

void jr_sched_stats(const struct jr_sched *s, int64_t *running, int64_t *ready,
                    int64_t *jobs)
{
    size_t i;

    *running = s->used.max_tasks;
    *ready = 0;
    for (i = 0; i < s->nready; i++)
        *ready += s->ready[i] != NULL;
    *jobs = s->njobs;
}
