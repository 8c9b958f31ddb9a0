/* The scheduler on a shared store (several instances on one PostgreSQL
 * database). An instance drives the jobs it claimed (jobs.instance): it
 * takes a job it queues itself when it has room, else leaves it for the
 * first instance with room (claims with FOR UPDATE SKIP LOCKED, on news of
 * other instances' events and on every heartbeat). It follows the event
 * sequence for changes other instances make to its jobs (a stop, a
 * delete), heartbeats, fails over the jobs of an instance silent for the
 * failover time (their running tasks fail and are retried per their
 * retries), stops its own tasks when it finds itself failed over or has
 * been cut off from the store for nearly the failover time, and puts its
 * rows right when the store's connection comes back. Nothing here runs
 * on a store of one instance. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched/internal.h"

#define DEFAULT_HEARTBEAT_MS 2000
#define DEFAULT_FAILOVER_MS (15 * 60 * 1000)

struct jr_shared {
    struct jr_sched *s;
    char *id, *address;
    int64_t heartbeat_ms, failover_ms;
    uv_timer_t timer;
    int64_t ev_after;            /* events looked at up to here */
    int want_claim;
    int64_t down_since;          /* ms the store has been unreachable since */
    int stopped;                 /* its tasks stopped for a long outage */
};

static struct jr_sched *sched_of(struct jr_shared *sh)
{
    return sh->s;
}

static int64_t ready_count(const struct jr_sched *s)
{
    int64_t n = 0;
    size_t i;

    for (i = 0; i < s->nready; i++)
        n += s->ready[i] != NULL;
    return n;
}

/* Task slots not taken by running or ready tasks. */
static int64_t room(const struct jr_sched *s)
{
    return s->node.max_tasks - s->used.max_tasks - ready_count(s);
}

int jr_sched_shared_take(struct jr_sched *s, int64_t seq, int *mine, struct jr_err *e)
{
    *mine = 1;
    if (!s->shared)
        return JR_OK;
    *mine = room(s) > 0;
    return jr_store_job_set_driver(s->st, seq, *mine, e);
}

/* Recover the jobs in l (claimed or adopted; running tasks fail over with
 * why when adopting). */
static void take_jobs(struct jr_sched *s, struct active_list *l, const char *why)
{
    struct jr_err e = { 0, "" };
    size_t i;

    s->adopting = why;
    for (i = 0; i < l->n; i++) {
        struct jr_sched_jobrow *a = &l->v[i];
        if (jr_sched_find(s, a->id))
            continue;
        if (a->state < 0)
            continue;        /* "deleting": nothing of it runs here */
        if (jr_sched_recover_job(s, a, &e))
            fprintf(stderr, "jobrt: taking job %s: %s\n", a->id, e.msg);
    }
    s->adopting = NULL;
}

static void claim_some(struct jr_shared *sh)
{
    struct jr_sched *s = sched_of(sh);
    struct active_list l = { NULL, 0, 0, 0 };
    struct jr_err e = { 0, "" };
    int64_t n = room(s);

    sh->want_claim = 0;
    if (n <= 0 || s->closing || s->draining || !jr_store_available(s->st))
        return;
    if (jr_store_jobs_claim(s->st, n, jr_sched_collect, &l, &e) == JR_OK && !l.failed)
        take_jobs(s, &l, "claimed with a task marked running by no live instance");
    free(l.v);
    jr_sched_dispatch(s);
}

struct dead_list {
    char ids[16][80];
    int n;
};

static int note_dead(void *arg, const char *id)
{
    struct dead_list *d = arg;

    if (d->n < 16)
        snprintf(d->ids[d->n++], sizeof d->ids[0], "%s", id);
    return 0;
}

/* Fail over the jobs of instances silent for the failover time. */
static void adopt_dead(struct jr_shared *sh)
{
    struct jr_sched *s = sched_of(sh);
    struct dead_list d;
    char why[200];
    int i;

    d.n = 0;
    if (jr_store_instances_dead(s->st, sh->failover_ms, note_dead, &d, NULL))
        return;
    for (i = 0; i < d.n; i++) {
        struct active_list l = { NULL, 0, 0, 0 };
        if (jr_store_jobs_adopt(s->st, d.ids[i], jr_sched_collect, &l, NULL) == JR_OK &&
            !l.failed) {
            snprintf(why, sizeof why, "instance %.70s stopped heartbeating; failed over"
                     " to %.70s", d.ids[i], sh->id);
            take_jobs(s, &l, why);
        }
        free(l.v);
    }
    if (d.n)
        jr_sched_dispatch(s);
}

/* Another instance failed this one over: its jobs are the other's now.
 * Kill what still runs here and forget them, then start afresh. */
static void fenced(struct jr_shared *sh)
{
    struct jr_sched *s = sched_of(sh);
    struct sjob *j, *next;
    int i;

    fprintf(stderr, "jobrt: instance %s was failed over by another instance; stopping"
            " its tasks here\n", sh->id);
    for (j = s->jobs.next; j != &s->jobs; j = next) {
        next = j->next;
        j->lost = 1;
        j->stopping = 1;
        for (i = 0; i < j->ntasks; i++) {
            jr_sched_ready_remove(s, &j->tasks[i]);
            if (j->tasks[i].proc)
                s->ex.ops->kill(j->tasks[i].proc, SIGKILL);
        }
        jr_sched_settle(s, j, NULL);
    }
    jr_store_instance_up(s->st, sh->address, NULL);
}

/* Another instance's events: a job of ours it stopped or deleted is
 * stopped here; a job queued anywhere is work to claim. */
static int on_event(void *arg, const struct jr_event_rec *ev)
{
    struct jr_shared *sh = arg;
    struct jr_sched *s = sched_of(sh);
    struct sjob *j;
    int st;

    sh->ev_after = ev->seq;
    if (!ev->type || !ev->job)
        return 0;
    if (strcmp(ev->type, "job") == 0 && ev->state) {
        st = jr_jstate_parse(ev->state);
        if (st == J_QUEUED) {
            sh->want_claim = 1;
            return 0;
        }
        if (st != J_CANCELED && st != J_SUSPENDED && st != J_FAILED)
            return 0;
        j = jr_sched_find(s, ev->job);
        if (!j || j->stopping)
            return 0;
        j->state = st;
        jr_sched_stop_tasks(s, j, NULL);
        jr_sched_settle(s, j, NULL);
    } else if (strcmp(ev->type, "deleted") == 0) {
        j = jr_sched_find(s, ev->job);
        if (!j || j->deleting)
            return 0;
        j->deleting = 1;
        j->state = J_CANCELED;
        if (!j->stopping)
            jr_sched_stop_tasks(s, j, NULL);
        jr_sched_settle(s, j, NULL);
    }
    return 0;
}

static void follow_events(struct jr_shared *sh)
{
    struct jr_sched *s = sched_of(sh);
    int64_t before;
    int rounds = 0;

    do {
        before = sh->ev_after;
        if (jr_store_events_recent(s->st, sh->ev_after, 500, on_event, sh, NULL))
            break;
    } while (sh->ev_after != before && ++rounds < 20);
    if (sh->want_claim)
        claim_some(sh);
    jr_sched_dispatch(s);
}

/* ---- after the store came back ---- */

struct row_check {
    struct sjob *j;
    int differs;
};

static int compare_task(void *arg, const struct jr_task_rec *r)
{
    struct row_check *c = arg;

    if (r->idx >= 0 && r->idx < c->j->ntasks) {
        struct stask *t = &c->j->tasks[r->idx];
        if (jr_tstate_parse(r->state) != t->state || r->attempt != t->attempt)
            c->differs |= 1;
    }
    return 0;
}

/* The batches in flight when the connection went were rolled back: write
 * again what this instance holds of its jobs, recover those of its jobs it
 * no longer holds (their last change was lost), then the outcomes that
 * waited. */
static void resync(struct jr_shared *sh)
{
    struct jr_sched *s = sched_of(sh);
    struct active_list l = { NULL, 0, 0, 0 };
    struct sjob *j, *next;
    size_t k;
    int i;

    for (j = s->jobs.next; j != &s->jobs; j = j->next) {
        struct row_check c = { j, 0 };
        if (j->lost || j->deleting)
            continue;
        jr_store_tasks_each(s->st, j->seq, compare_task, &c, NULL);
        if (!c.differs)
            continue;
        for (i = 0; i < j->ntasks; i++) {
            struct stask *t = &j->tasks[i];
            jr_sched_write_task(s, t, -1, 0, NULL, t->error, 0, NULL);
        }
        if (j->state == J_RUNNING || j->state == J_QUEUED)
            jr_sched_write_job_state(s, j->seq, j->id, j->state, j->started_at, 0, NULL,
                                     "rewritten after the store came back", NULL);
    }
    if (jr_store_jobs_active(s->st, jr_sched_collect, &l, NULL) == JR_OK && !l.failed) {
        for (k = 0; k < l.n; k++)
            if (!jr_sched_find(s, l.v[k].id))
                jr_sched_recover_job(s, &l.v[k], NULL);
    }
    free(l.v);
    for (j = s->jobs.next; j != &s->jobs; j = next) {
        next = j->next;
        for (i = 0; i < j->ntasks; i++) {
            struct stask *t = &j->tasks[i];
            struct jr_exec_result *r = t->ended;
            if (!r)
                continue;
            t->ended = NULL;
            jr_sched_task_outcome(t, r);  /* may free j: its tasks are done */
            free(r);
            break;
        }
    }
    /* more than one outcome of a job may have waited */
    for (j = s->jobs.next; j != &s->jobs; j = next) {
        next = j->next;
        for (i = 0; i < j->ntasks; i++)
            if (j->tasks[i].ended) {
                resync(sh);
                return;
            }
    }
    jr_sched_dispatch(s);
}

static void on_change(void *arg, int what)
{
    struct jr_shared *sh = arg;

    if (what == JR_STORE_CHANGE_UP) {
        struct jr_sched *s = sched_of(sh);
        int alive = 1;
        sh->down_since = 0;
        if (sh->stopped) {
            sh->stopped = 0;
            s->draining = 0;
        }
        /* Another instance may have taken this one's jobs meanwhile: then
         * they are its, and nothing of them is written from here. */
        if (jr_store_instance_beat(s->st, &alive, NULL) == JR_OK && !alive)
            fenced(sh);
        else
            resync(sh);
    }
    follow_events(sh);
}

static void on_tick(uv_timer_t *h)
{
    struct jr_shared *sh = h->data;
    struct jr_sched *s = sched_of(sh);
    int alive = 1;

    if (!jr_store_available(s->st)) {
        int64_t now = jr_store_now_ms();
        if (!sh->down_since)
            sh->down_since = now;
        /* Cut off for nearly the failover time: the other instances may
         * take this one's jobs as soon as they reach the database, so its
         * tasks stop now (they run again, uncounted, if they stay here). */
        if (!sh->stopped && now - sh->down_since > sh->failover_ms - 2 * sh->heartbeat_ms) {
            sh->stopped = 1;
            fprintf(stderr, "jobrt: the store has been unreachable for %llds; stopping this"
                    " instance's tasks before another instance fails them over\n",
                    (long long)((now - sh->down_since) / 1000));
            jr_sched_stop_all(s);
        }
        return;
    }
    if (jr_store_instance_beat(s->st, &alive, NULL) == JR_OK && !alive)
        fenced(sh);
    adopt_dead(sh);
    claim_some(sh);
    follow_events(sh);
}

int jr_sched_shared_open(struct jr_sched *s, struct jr_err *e)
{
    struct jr_shared *sh;
    int rc;

    if (!jr_store_shared(s->st))
        return JR_OK;
    if (!s->opts.instance || !*s->opts.instance)
        return jr_err_set(e, JR_E_INVALID, "a shared store needs this instance's id");
    sh = calloc(1, sizeof *sh);
    if (!sh || !(sh->id = strdup(s->opts.instance)) ||
        !(sh->address = strdup(s->opts.address ? s->opts.address : ""))) {
        if (sh)
            free(sh->id);
        free(sh);
        return jr_err_set(e, JR_E_SYSTEM, "out of memory");
    }
    sh->s = s;
    sh->heartbeat_ms = s->opts.heartbeat_ms > 0 ? s->opts.heartbeat_ms : DEFAULT_HEARTBEAT_MS;
    sh->failover_ms = s->opts.failover_ms > 0 ? s->opts.failover_ms : DEFAULT_FAILOVER_MS;
    s->shared = sh;
    rc = jr_store_set_instance(s->st, sh->id, e);
    if (!rc)
        rc = jr_store_instance_up(s->st, sh->address, e);
    if (!rc && jr_store_commit(s->st))
        rc = jr_err_set(e, JR_E_STORE, "could not register instance %s", sh->id);
    if (rc)
        return rc;      /* jr_sched_shared_close frees sh */
    sh->ev_after = jr_store_events_last(s->st);
    uv_timer_init(s->loop, &sh->timer);
    sh->timer.data = sh;
    uv_timer_start(&sh->timer, on_tick, 0, (uint64_t)sh->heartbeat_ms);
    uv_unref((uv_handle_t *)&sh->timer);
    jr_store_listen(s->st, on_change, sh);
    return JR_OK;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct jr_shared *sh = h->data;

    free(sh->id);
    free(sh->address);
    free(sh);
}

void jr_sched_shared_close(struct jr_sched *s)
{
    struct jr_shared *sh = s->shared;

    if (!sh)
        return;
    s->shared = NULL;
    jr_store_listen(s->st, NULL, NULL);
    if (sh->timer.data) {
        uv_timer_stop(&sh->timer);
        uv_close((uv_handle_t *)&sh->timer, on_timer_closed);
        return;
    }
    free(sh->id);
    free(sh->address);
    free(sh);
}
