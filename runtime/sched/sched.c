/* The scheduler proper: open (recovering the jobs that were active at the
 * last stop), close, and its figures. The model of active jobs is in
 * model.c, running their tasks in run.c. The ready queue is ordered by job
 * priority, task priority and age. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "sched/internal.h"

/* ---- open, recover, close ---- */

int jr_sched_collect(void *arg, const struct jr_job_rec *r)
{
    struct active_list *l = arg;
    struct jr_sched_jobrow *a;

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
    jr_sched_jobrow_read(&l->v[l->n++], r);
    return 0;
}

/* A task left running that cannot be reattached: what is left of it is
 * stopped (here: a task another instance ran is not ours to touch), and it
 * fails (retried per its retries) saying why. */
static int recover_lost(struct jr_sched *s, struct stask *t, int live, const char *why,
                        struct jr_err *e)
{
    char msg[300];

    if (s->adopting)
        snprintf(msg, sizeof msg, "%s", s->adopting);
    else
        jr_exec_kill_stale(t->pid, t->pid_start);
    if (!s->adopting)
        snprintf(msg, sizeof msg, "runtime restarted: %s", why);
    free(t->error);
    t->error = strdup(msg);
    if (live && t->attempt <= t->retries)
        t->state = T_READY;
    else
        t->state = live ? T_FAILED : T_CANCELED;
    return jr_sched_write_task(s, t, -1, 0, NULL, msg,
                               t->state == T_READY ? 0 : jr_store_now_ms(), e);
}

int jr_sched_recover_job(struct jr_sched *s, struct jr_sched_jobrow *a, struct jr_err *e)
{
    struct sjob *j;
    int i, rc = 0, attached = 0, live = a->state == J_QUEUED || a->state == J_RUNNING;

    j = jr_sched_load(s, a->seq, a->id, a->state, a->priority, a->max_par,
                      a->created_at, a->started_at, e);
    if (!j)
        return e ? e->code : JR_E_SYSTEM;
    for (i = 0; i < j->ntasks && !rc; i++) {
        struct stask *t = &j->tasks[i];
        if (t->state == T_RUNNING) {
            struct jr_err ae = { 0, "" };
            int ar = s->adopting ? JR_E_NOT_FOUND : jr_sched_reattach(s, t, &ae);
            if (ar == JR_OK)
                attached++;
            else
                rc = recover_lost(s, t, live, ar == JR_E_NOT_FOUND ? ae.msg
                                  : "its helper could not be reattached", e);
        }
        if (!rc && live && t->state == T_READY && jr_sched_ready_add(s, t))
            rc = jr_err_set(e, JR_E_SYSTEM, "out of memory");
    }
    /* A job stopped (canceled, suspended, failed) before the restart: the
     * stop of its tasks that was acknowledged is carried out now. */
    if (!rc && !live && attached)
        rc = jr_sched_stop_tasks(s, j, e);
    if (!attached && (rc || !live)) {
        jr_sched_free_job(s, j);
        return rc;
    }
    if (!rc)
        jr_sched_settle(s, j, e);
    return rc; /* on an error its attached tasks are let go with it */
}

static int kill_left(void *arg, const struct jr_task_rec *t)
{
    (void)arg;
    if (strcmp(t->state, "running") == 0)
        jr_exec_kill_stale(t->pid, t->pid_start);
    return 0;
}

/* Finish what a force delete began before the last stop: kill what its
 * tasks left alive, then remove the job's rows and files. */
static int finish_deletes(struct jr_sched *s, struct jr_err *e)
{
    struct active_list l = { NULL, 0, 0, 0 };
    size_t i;
    int rc = jr_store_jobs_deleting(s->st, jr_sched_collect, &l, e);

    if (!rc && l.failed)
        rc = jr_err_set(e, JR_E_SYSTEM, "out of memory");
    for (i = 0; !rc && i < l.n; i++) {
        rc = jr_store_tasks_each(s->st, l.v[i].seq, kill_left, NULL, e);
        if (!rc)
            rc = jr_sched_remove(s, l.v[i].seq, l.v[i].id, 0, e);
    }
    free(l.v);
    return rc;
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
    s->gate_waiter.cb = jr_sched_gate_commit;
    /* Every state is listed from the start, at 0. */
    for (i = 0; i < J_NSTATES; i++)
        jr_metrics_count(s->opts.metrics, JR_M_TRANSITIONS, jr_jstate_names[i], NULL, 0);
    rc = jr_sched_shared_open(s, e);
    if (!rc)
        rc = finish_deletes(s, e);
    if (!rc)
        rc = jr_store_jobs_active(st, jr_sched_collect, &l, e);
    if (!rc && l.failed)
        rc = jr_err_set(e, JR_E_SYSTEM, "out of memory");
    for (i = 0; !rc && i < l.n; i++)
        rc = jr_sched_recover_job(s, &l.v[i], e);
    free(l.v);
    if (rc) {
        s->closing = 1;
        jr_sched_shared_close(s);
        while (s->jobs.next != &s->jobs) {
            struct sjob *j = s->jobs.next;
            for (i = 0; i < (size_t)j->ntasks; i++)
                if (j->tasks[i].proc && s->ex.ops->detach)
                    s->ex.ops->detach(j->tasks[i].proc);
            jr_sched_free_job(s, j);
        }
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
    jr_sched_shared_close(s);
    for (j = s->jobs.next; j != &s->jobs; j = next) {
        next = j->next;
        for (i = 0; i < j->ntasks; i++) {
            struct stask *t = &j->tasks[i];
            if (!t->proc)
                continue;
            if (s->opts.keep_tasks && s->ex.ops->detach) {
                /* It runs on, and its row stays "running": the next
                 * daemon reattaches to it. */
                s->ex.ops->detach(t->proc);
                t->proc = NULL;
                j->running--;
            } else {
                s->ex.ops->kill(t->proc, SIGKILL);
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
