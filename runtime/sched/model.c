/* The scheduler's model of active jobs: their rows and events on disk, the
 * in-memory jobs and tasks loaded from the store, the ready queue, and
 * settling a job after a change (release, skip, finish). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "sched/internal.h"

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

    /* A deleted job's tasks end unseen: its "deleted" event was its last;
     * a job another instance took over is its to write. */
    if (t->job->deleting || t->job->lost)
        return JR_OK;
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
    r.run_record = t->proc ? t->run_record : NULL;
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
    if (!rc)
        jr_metrics_count(s->opts.metrics, JR_M_TRANSITIONS, r.state, NULL, 1);
    return rc;
}

/* ---- the in-memory model ---- */

void jr_sched_jobrow_read(struct jr_sched_jobrow *o, const struct jr_job_rec *r)
{
    o->seq = r->seq;
    o->priority = r->priority;
    o->max_par = r->max_parallelism;
    o->created_at = r->created_at;
    o->started_at = r->started_at;
    o->ended_at = r->ended_at;
    o->state = jr_jstate_parse(r->state);
    snprintf(o->id, sizeof o->id, "%s", r->id);
    snprintf(o->surface, sizeof o->surface, "%s", r->surface ? r->surface : "");
}

struct sjob *jr_sched_find(struct jr_sched *s, const char *id)
{
    struct sjob *j;

    for (j = s->jobs.next; j != &s->jobs; j = j->next)
        if (strcmp(j->id, id) == 0)
            return j;
    return NULL;
}


void jr_sched_ready_remove(struct jr_sched *s, struct stask *t)
{
    size_t i;

    if (!t->in_ready)
        return;
    for (i = 0; i < s->nready; i++)
        if (s->ready[i] == t)
            s->ready[i] = NULL;
    t->in_ready = 0;
}

int jr_sched_ready_add(struct jr_sched *s, struct stask *t)
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
    t->wait = JR_WAIT_NONE;
    t->ready_ns = uv_hrtime();
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
        jr_sched_ready_remove(s, t);
        jr_sched_drop_timer(t);
        free(t->alias);
        free(t->group);
        free(t->deps);
        free(t->argv);
        free(t->env);
        free(t->workdir);
        free(t->spec);
        free(t->error);
        free(t->wait_note);
        free(t->run_record);
        free(t->ended);
    }
    if (j->next) {
        j->prev->next = j->next;
        j->next->prev = j->prev;
        s->njobs--;
    }
    free(j->tasks);
    free(j->grp_running);
    free(j->id);
    free(j);
}

struct load_ctx {
    struct sjob *j;
    int cap;
    int failed;
};

char *jr_sched_dup_mem(const char *p, size_t n)
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
    t->log_offset = r->log_offset;
    t->run_record = r->run_record ? strdup(r->run_record) : NULL;
    t->alias = strdup(r->alias);
    t->argv = jr_sched_dup_mem(r->argv, r->argv_len);
    t->argv_len = r->argv_len;
    t->env = jr_sched_dup_mem(r->env, r->env_len);
    t->env_len = r->env_len;
    t->workdir = r->workdir ? strdup(r->workdir) : NULL;
    t->spec = strdup(r->spec ? r->spec : "{}");
    t->error = r->error ? strdup(r->error) : NULL;
    t->group = r->group ? strdup(r->group) : NULL;
    if (!t->alias || !t->argv || !t->env || !t->spec || (r->group && !t->group) ||
        (r->run_record && !t->run_record) ||
        parse_deps(t, r->deps))
        c->failed = 1;
    return c->failed;
}

/* Each task's group key: the index of the first task of its group (its own
 * without a group). Allocates the job's group counters when a group is
 * named; -1 when out of memory. */
static int key_groups(struct sjob *j)
{
    int i, k, named = 0;

    for (i = 0; i < j->ntasks; i++) {
        struct stask *t = &j->tasks[i];
        t->grp = i;
        for (k = 0; t->group && k < i; k++) {
            if (j->tasks[k].group && strcmp(j->tasks[k].group, t->group) == 0) {
                t->grp = j->tasks[k].grp;
                break;
            }
        }
        named |= t->group != NULL;
    }
    if (named && !(j->grp_running = calloc((size_t)j->ntasks, sizeof *j->grp_running)))
        return -1;
    return 0;
}

struct sjob *jr_sched_load(struct jr_sched *s, int64_t seq, const char *id,
                           int state, int64_t priority, int64_t max_par,
                           int64_t created_at, int64_t started_at, struct jr_err *e)
{
    struct load_ctx c = { NULL, 0, 0 };
    struct sjob *j = calloc(1, sizeof *j);
    int i, rc;

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
    rc = jr_store_tasks_each(s->st, seq, load_task, &c, e);
    if (!rc && !c.failed && key_groups(j))
        c.failed = 1;
    if (rc || c.failed) {
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
        if (j->deleting && !j->lost)
            jr_sched_remove(s, j->seq, j->id, 0, e);
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
                if (!rc && jr_sched_ready_add(s, t))
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

