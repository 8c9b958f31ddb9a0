/* Why jobs and tasks wait, read from the scheduler's memory: the reasons
 * the last dispatch gave ready tasks (run.c), a pending task's unfinished
 * dependencies, a job's reason from its first waiting task; and the
 * figures the metrics sample (resources in use, waiting tasks by reason). */
#include <string.h>

#include "sched/internal.h"

static const char *const reason_names[JR_WAIT_NREASONS] = {
    NULL, "Dependency", "Resources", "MaxParallelism", "Priority", "Approval", "Held"
};

const char *jr_wait_reason_name(int reason)
{
    return reason > 0 && reason < JR_WAIT_NREASONS ? reason_names[reason] : NULL;
}

const char *jr_wait_resource_name(unsigned bit)
{
    switch (bit) {
    case JR_WAIT_CPU: return "cpu";
    case JR_WAIT_MEMORY: return "memory";
    case JR_WAIT_GPU: return "gpu";
    case JR_WAIT_MAX_TASKS: return "max_tasks";
    default: return NULL;
    }
}

static const char *job_id_of(const struct jr_sched *s, int64_t seq)
{
    const struct sjob *j;

    for (j = s->jobs.next; j != &s->jobs; j = j->next)
        if (j->seq == seq)
            return j->id;
    return NULL;
}

/* A dependency is done when it succeeded or failed tolerably. */
static int dep_done(const struct stask *d)
{
    return d->state == T_SUCCEEDED || (d->state == T_FAILED && d->tolerable);
}

/* Fill w for t; returns 0 when t does not wait. */
static int task_wait(const struct jr_sched *s, const struct stask *t, struct jr_wait *w)
{
    const struct sjob *j = t->job;
    int i;

    memset(w, 0, sizeof *w);
    if (t->state == T_PENDING) {
        w->reason = JR_WAIT_DEPENDENCY;
        for (i = 0; i < t->ndeps; i++) {
            const struct stask *d = &j->tasks[t->deps[i]];
            if (dep_done(d))
                continue;
            if (w->ndeps < JR_WAIT_MAX_DEPS)
                w->deps[w->ndeps++] = d->alias;
            else
                w->more_deps++;
        }
        return 1;
    }
    if (t->state != T_READY || t->wait == JR_WAIT_NONE)
        return 0;
    w->reason = t->wait;
    w->resources = t->wait_res;
    if (t->wait == JR_WAIT_PRIORITY)
        w->behind = job_id_of(s, t->wait_behind);
    return 1;
}

/* Ready before pending, then by task priority and index: the task the
 * dispatch would start first. */
static int ahead_of(const struct stask *a, const struct stask *b)
{
    if (!b)
        return 1;
    if ((a->state == T_READY) != (b->state == T_READY))
        return a->state == T_READY;
    if (a->priority != b->priority)
        return a->priority > b->priority;
    return a->idx < b->idx;
}

int jr_sched_waiting(const struct jr_sched *s, const char *id, jr_wait_cb cb, void *arg)
{
    const struct sjob *j;
    const struct stask *first = NULL;
    struct jr_wait w;
    int i;

    for (j = s->jobs.next; j != &s->jobs; j = j->next)
        if (strcmp(j->id, id) == 0)
            break;
    if (j == &s->jobs)
        return 0;
    if (j->stopping || j->deleting)
        return 1;
    for (i = 0; j->running == 0 && i < j->ntasks; i++) {
        const struct stask *t = &j->tasks[i];
        if (task_wait(s, t, &w) && ahead_of(t, first))
            first = t;
    }
    if (first) {
        task_wait(s, first, &w);
        cb(arg, -1, &w);
    }
    for (i = 0; i < j->ntasks; i++)
        if (task_wait(s, &j->tasks[i], &w))
            cb(arg, j->tasks[i].idx, &w);
    return 1;
}

void jr_sched_usage(const struct jr_sched *s, struct jr_node *used,
                    int64_t counts[JR_WAIT_NREASONS])
{
    const struct sjob *j;
    struct jr_wait w;
    int i;

    *used = s->used;
    memset(counts, 0, JR_WAIT_NREASONS * sizeof counts[0]);
    for (j = s->jobs.next; j != &s->jobs; j = j->next) {
        if (j->stopping || j->deleting)
            continue;
        for (i = 0; i < j->ntasks; i++)
            if (task_wait(s, &j->tasks[i], &w))
                counts[w.reason]++;
    }
}
