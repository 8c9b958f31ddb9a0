/* Running tasks: timers, timeouts and kills with a grace period; starting a
 * task through the executor (released at its gate once "running" is
 * committed) as resources fit, in priority order, or taking over one a
 * previous daemon started; and its completion, retries and stops. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "sched/internal.h"

#define DEFAULT_GRACE_MS 10000
#define TIMEOUT_BACKSTOP_MS 2000

/* ---- timers and kills ---- */

static void on_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

void jr_sched_drop_timer(struct stask *t)
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

/* The timeout of a running task, left_ms from now. A sandboxed task's
 * helper enforces it itself (and reports it); this timer is then only the
 * backstop. */
static void start_timeout(struct jr_sched *s, struct stask *t, int64_t left_ms)
{
    /* A backend that times out itself (Slurm: from the start on a node,
     * not from the submit) needs no timer. */
    if (t->timeout_ms > 0 && !s->ex.ops->times_out && ensure_timer(s, t) == 0)
        uv_timer_start(&t->timer->h, on_timeout, (uint64_t)left_ms +
                       (s->ex.ops->sandboxed ? TIMEOUT_BACKSTOP_MS : 0), 0);
}

static struct jr_sched *sched_of(struct stask *t)
{
    return t->job->sched;
}

/* ---- starting tasks ---- */

static void account(struct jr_sched *s, struct stask *t, int sign);

static void on_task_log(void *arg, int stream, const char *line, size_t len)
{
    struct stask *t = arg;
    struct jr_sched *s = sched_of(t);
    char *msg = jr_sched_dup_mem(line, len);

    if (!msg || s->closing || t->job->lost) {
        free(msg);
        return;
    }
    jr_store_log_add(s->st, t->job->seq, t->alias,
                     stream == 2 ? JR_LOG_LEVEL_WARN : JR_LOG_LEVEL_INFO, msg, NULL, NULL);
    free(msg);
}

/* The log rows so far reach offset of the attempt's spool: kept in the
 * same batch as them. */
static void on_task_progress(void *arg, int64_t offset)
{
    struct stask *t = arg;
    struct jr_sched *s = sched_of(t);

    t->log_offset = offset;
    if (!s->closing && !t->job->deleting && !t->job->lost)
        jr_store_task_set_log_offset(s->st, t->job->seq, t->idx, offset, NULL);
}

static void on_task_done(void *arg, const struct jr_exec_result *r);

static const struct jr_exec_cbs task_cbs = {
    .log = on_task_log, .progress = on_task_progress, .done = on_task_done,
};

void jr_sched_gate_commit(struct jr_store_waiter *w, int status)
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
            start_timeout(s, t, t->timeout_ms);
        }
    }
}

int jr_sched_reattach(struct jr_sched *s, struct stask *t, struct jr_err *e)
{
    struct jr_exec_attach a;
    char dir[4096];
    int64_t left;
    int rc;

    if (!s->ex.ops->attach)
        return jr_err_set(e, JR_E_NOT_FOUND, "the %s executor does not keep tasks across"
                          " restarts", s->ex.ops->name);
    if (jr_sched_task_dir(s, t->job->id, t->alias, NULL, dir, sizeof dir))
        return jr_err_set(e, JR_E_NOT_FOUND, "task directory path too long");
    memset(&a, 0, sizeof a);
    a.job_id = t->job->id;
    a.task = t->alias;
    a.task_dir = dir;
    a.attempt = t->attempt;
    a.pid = t->pid;
    a.pid_start = t->pid_start;
    a.record = t->run_record;
    a.log_offset = t->log_offset;
    t->kill_reason = 0;
    rc = s->ex.ops->attach(s->ex.self, &a, &task_cbs, t, &t->proc, e);
    if (rc) {
        t->proc = NULL;
        return rc;
    }
    t->gated = 0;
    account(s, t, +1);
    /* From its start: one that expired while no daemon was here fires now. */
    left = t->started_at + t->timeout_ms - jr_store_now_ms();
    start_timeout(s, t, left > 0 ? left : 0);
    return JR_OK;
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
    char record[JR_EXEC_RECORD_SIZE] = "";
    char *base[NBASE_ENV] = { 0 };
    char **argv = NULL, **env = NULL, **task_env = NULL;
    struct jr_exec_spec spec;
    struct jr_task_setup setup = { 0 };
    size_t n;
    uint64_t started;
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
    if (!argv || !env || !task_env || (!argv[0] && !sandboxed)) {
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
    /* The stored spec, decoded once for the backend that reads it. */
    if (sandboxed && jr_spec_decode(t->spec, &setup)) {
        rc = jr_err_set(e, JR_E_INVALID, "task '%s': its stored spec is not a JSON object",
                        t->alias);
        goto done;
    }
    spec.setup = sandboxed ? &setup : NULL;
    spec.attempt = t->attempt;
    spec.timeout_ms = t->timeout_ms;
    t->kill_reason = 0;
    started = uv_hrtime();
    rc = s->ex.ops->start(s->ex.self, &spec, &task_cbs, t, &t->proc, &t->pid,
                          &t->pid_start, record, e);
    if (!rc)
        jr_metrics_observe(s->opts.metrics, JR_H_TASK_START,
                           (double)(uv_hrtime() - started) / 1e9);
    /* Kept with the running row: a later daemon finds the task through it. */
    free(t->run_record);
    t->run_record = rc == 0 && record[0] ? strdup(record) : NULL;
done:
    jr_spec_free(&setup);
    for (i = 0; i < NBASE_ENV; i++)
        free(base[i]);
    free(argv);
    free(env);
    free(task_env);
    return rc;
}

/* Does a process of t's group run? (Never, without named groups.) */
static int group_running(const struct stask *t)
{
    return t->job->grp_running && t->job->grp_running[t->grp] > 0;
}

/* Why ready t cannot start now: JR_WAIT_NONE when it can, -1 when its job
 * does not start tasks at all (stopping); *res gets the resources short. */
static int why_waits(struct jr_sched *s, struct stask *t, unsigned *res)
{
    struct sjob *j = t->job;

    *res = 0;
    if (j->stopping || (j->state != J_QUEUED && j->state != J_RUNNING))
        return -1;
    /* max_parallelism counts groups: a task joins its running group */
    if (j->max_parallelism > 0 && j->groups_running >= j->max_parallelism &&
        !group_running(t))
        return JR_WAIT_MAX_PARALLELISM;
    if (s->used.max_tasks >= s->node.max_tasks)
        *res |= JR_WAIT_MAX_TASKS;
    if (s->used.cpu + t->cpu > s->node.cpu)
        *res |= JR_WAIT_CPU;
    if (s->used.memory + t->memory > s->node.memory)
        *res |= JR_WAIT_MEMORY;
    if (s->used.gpu + t->gpu > s->node.gpu)
        *res |= JR_WAIT_GPU;
    return *res ? JR_WAIT_RESOURCES : JR_WAIT_NONE;
}

static int fits(struct jr_sched *s, struct stask *t)
{
    unsigned res;

    return why_waits(s, t, &res) == JR_WAIT_NONE;
}

/* The first job (by seq) in this dispatch whose task waits for each
 * resource; 0 = none yet. Index: the resource bit's position. */
struct ahead {
    int64_t seq[4];
};

/* Note why t waits. A task short of a resource that a task of another job
 * ahead in the queue already waits for is behind it (Priority); the first
 * to wait for a resource waits for Resources. */
static void note_wait(struct stask *t, int why, unsigned res, struct ahead *a)
{
    int b;

    t->wait = (unsigned char)(why < 0 ? JR_WAIT_NONE : why);
    t->wait_res = 0;
    t->wait_behind = 0;
    if (why != JR_WAIT_RESOURCES)
        return;
    for (b = 0; b < 4; b++) {
        if ((res & (1u << b)) && a->seq[b] && a->seq[b] != t->job->seq) {
            t->wait = JR_WAIT_PRIORITY;
            t->wait_res = (unsigned char)(1u << b);
            t->wait_behind = a->seq[b];
            return;
        }
    }
    t->wait_res = (unsigned char)res;
    for (b = 0; b < 4; b++)
        if ((res & (1u << b)) && !a->seq[b])
            a->seq[b] = t->job->seq;
}

static void account(struct jr_sched *s, struct stask *t, int sign)
{
    s->used.cpu += sign * t->cpu;
    s->used.memory += sign * t->memory;
    s->used.gpu += sign * t->gpu;
    s->used.max_tasks += sign;
    t->job->running += sign;
    if (!t->job->grp_running)
        t->job->groups_running += sign;
    else if (sign > 0 ? t->job->grp_running[t->grp]++ == 0
                      : --t->job->grp_running[t->grp] == 0)
        t->job->groups_running += sign;
}

/* t could not start: it fails with msg (a setup error); its job may then
 * be settled and freed. */
static void start_failed(struct jr_sched *s, struct stask *t, const char *msg)
{
    struct sjob *j = t->job;
    int64_t now = jr_store_now_ms();

    t->state = T_FAILED;
    t->proc = NULL;
    free(t->error);
    t->error = strdup(msg);
    t->started_at = now;
    t->wait = JR_WAIT_NONE;
    jr_metrics_count(s->opts.metrics, JR_M_TASK_OUTCOMES,
                     jr_exec_outcome_name(JR_OUT_SETUP_ERROR), "failed", 1);
    jr_sched_write_task(s, t, -1, 0, jr_exec_outcome_name(JR_OUT_SETUP_ERROR), msg, now, NULL);
    jr_sched_settle(s, j, NULL);
}

static void on_prepared(void *arg)
{
    jr_sched_dispatch(arg);
}

/* Asks the executor whether t can start now (once it said yes, never
 * again): 1 yes; 0 not yet (t waits, Preparing, and the executor kicks a
 * dispatch when it is done); -1 never (t failed, its job may be freed). */
static int prepared(struct jr_sched *s, struct stask *t)
{
    struct jr_task_setup setup = { 0 };
    char why[400] = "";
    int rc;

    if (t->prepared || !s->ex.ops->prepare)
        return 1;
    /* A spec that does not decode fails at the start, saying so. */
    if (jr_spec_decode(t->spec, &setup)) {
        jr_spec_free(&setup);
        return 1;
    }
    rc = s->ex.ops->prepare(s->ex.self, &setup, &t->prep_ticket, on_prepared, s, why,
                            sizeof why);
    jr_spec_free(&setup);
    if (rc == 0) {
        t->prepared = 1;
        free(t->wait_note);
        t->wait_note = NULL;
        return 1;
    }
    if (rc < 0) {
        jr_sched_ready_remove(s, t);
        start_failed(s, t, why[0] ? why : "the executor cannot prepare it");
        return -1;
    }
    t->wait = JR_WAIT_PREPARING;
    t->wait_res = 0;
    t->wait_behind = 0;
    if (!t->wait_note || strcmp(t->wait_note, why) != 0) {
        free(t->wait_note);
        t->wait_note = strdup(why);
    }
    return 0;
}

/* Start t. Returns 1 when it runs; 0 when it failed to start (then its job
 * may have been settled and freed). */
static int launch(struct jr_sched *s, struct stask *t)
{
    struct sjob *j = t->job;
    struct jr_err e = { 0, "" };
    int64_t now = jr_store_now_ms();
    int rc;

    rc = start_task(s, t, &e);
    if (rc) {
        start_failed(s, t, e.msg);
        return 0;
    }
    t->state = T_RUNNING;
    t->started_at = now;
    t->gated = 1;
    t->wait = JR_WAIT_NONE;
    if (t->ready_ns)
        jr_metrics_observe(s->opts.metrics, JR_H_QUEUE_WAIT,
                           (double)(uv_hrtime() - t->ready_ns) / 1e9);
    account(s, t, +1);
    jr_sched_write_task(s, t, -1, 0, NULL, NULL, 0, NULL);
    if (j->state == J_QUEUED) {
        j->state = J_RUNNING;
        j->started_at = now;
        jr_sched_write_job_state(s, j->seq, j->id, J_RUNNING, now, 0, NULL, NULL, NULL);
    }
    if (!s->gate_waiter.next)
        jr_store_wait(s->st, &s->gate_waiter);
    return 1;
}

/* The first task of group g of j started: its other ready tasks start
 * right after it, whatever the job's max_parallelism, as resources fit.
 * A running task keeps j in memory meanwhile. */
static void launch_group(struct jr_sched *s, struct sjob *j, int g)
{
    size_t k;

    for (k = 0; k < s->nready && s->used.max_tasks < s->node.max_tasks; k++) {
        struct stask *o = s->ready[k];
        if (!o || o->job != j || o->grp != g || !fits(s, o))
            continue;
        if (prepared(s, o) <= 0)
            continue;
        s->ready[k] = NULL;
        o->in_ready = 0;
        launch(s, o);
    }
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
    struct ahead ahead;
    unsigned res;
    size_t i, k;
    int why;

    /* nothing starts while its running row cannot be written */
    if (s->closing || s->draining || !jr_store_available(s->st))
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
        /* Every ready task is looked at, so each one that stays says why. */
        memset(&ahead, 0, sizeof ahead);
        for (i = 0; i < s->nready; i++) {
            struct stask *t = s->ready[i];
            if (!t)
                continue;
            why = why_waits(s, t, &res);
            if (why != JR_WAIT_NONE) {
                note_wait(t, why, res, &ahead);
                continue;
            }
            if (prepared(s, t) <= 0)
                continue;
            s->ready[i] = NULL;
            t->in_ready = 0;
            if (launch(s, t) && t->job->grp_running && t->job->grp_running[t->grp] == 1)
                launch_group(s, t->job, t->grp);
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

    t->proc = NULL;
    t->gated = 0;
    jr_sched_drop_timer(t);
    account(s, t, -1);
    if (s->closing) {
        if (j->running == 0)
            jr_sched_free_job(s, j);
        if (s->njobs == 0)
            free(s);
        return;
    }
    if (j->lost) {
        jr_sched_settle(s, j, NULL);
        return;
    }
    /* Its outcome waits for the store to come back (shared.c): written
     * now it would be lost, and the job with it. */
    if (!jr_store_available(s->st) && (t->ended = malloc(sizeof *t->ended))) {
        *t->ended = *r;
        if (!t->ended->ended_ms)
            t->ended->ended_ms = jr_store_now_ms();
        return;
    }
    jr_sched_task_outcome(t, r);
}

void jr_sched_task_outcome(struct stask *t, const struct jr_exec_result *r)
{
    struct sjob *j = t->job;
    struct jr_sched *s = sched_of(t);
    char err[330] = "";
    const char *outcome = jr_exec_outcome_name(r->outcome);
    /* One that ended while no daemon was attached ended then. */
    int64_t now = r->ended_ms > 0 ? r->ended_ms : jr_store_now_ms();
    int kill_reason = t->kill_reason, again = 0;

    if ((kill_reason == JR_OUT_CANCELED || j->stopping) &&
        !(r->outcome == JR_OUT_EXITED && r->exit_code == 0 && !kill_reason)) {
        t->state = T_CANCELED;
        outcome = jr_exec_outcome_name(JR_OUT_CANCELED);
        snprintf(err, sizeof err, "canceled");
    } else if ((kill_reason == KILL_SHUTDOWN &&
                !(r->outcome == JR_OUT_EXITED && r->exit_code == 0)) ||
               (!kill_reason && r->outcome == JR_OUT_CANCELED)) {
        /* Stopped by the daemon's shutdown, or canceled without anyone
         * asking (its helper found its gate closed by a daemon that went,
         * or was stopped by a daemon's shutdown that did not wait for it).
         * Either way no one wanted it to end: it runs again, the attempt
         * not counted. */
        t->state = T_READY;
        again = 1;
        outcome = jr_exec_outcome_name(JR_OUT_CANCELED);
        if (kill_reason == KILL_SHUTDOWN)
            snprintf(err, sizeof err, "attempt %lld was stopped by the daemon's shutdown"
                     " (shutdown.tasks: stop); it runs again", (long long)t->attempt);
        else
            snprintf(err, sizeof err, "attempt %lld was interrupted, not canceled (%.200s);"
                     " it runs again", (long long)t->attempt,
                     r->message[0] ? r->message : "its helper was stopped");
        t->attempt--;
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
    if (r->wall_ms >= 0 && !j->deleting) /* with the outcome, in the same batch */
        jr_store_task_set_usage(s->st, t->job->seq, t->idx, r->cpu_ms, r->max_rss_bytes,
                                r->wall_ms, NULL);
    if (t->state == T_FAILED) {
        free(t->error);
        t->error = strdup(err);
    }
    jr_metrics_observe(s->opts.metrics, JR_H_RUN_TIME,
                       r->wall_ms >= 0 ? (double)r->wall_ms / 1000
                                       : (double)(now - t->started_at) / 1000);
    jr_metrics_count(s->opts.metrics, JR_M_TASK_OUTCOMES, outcome ? outcome : "unknown",
                     again || (t->state == T_FAILED && t->attempt <= t->retries) ? "retried"
                     : jr_tstate_names[t->state], 1);
    if (again) {
        jr_sched_write_task(s, t, -1, 0, outcome, err, now, NULL);
        jr_sched_ready_add(s, t);
    } else if (t->state == T_FAILED && t->attempt <= t->retries) {
        char msg[420];
        snprintf(msg, sizeof msg, "attempt %lld failed (%s); retrying",
                 (long long)t->attempt, err);
        t->state = T_READY;
        jr_sched_write_task(s, t, r->exit_code, r->signal, outcome, msg, now, NULL);
        jr_sched_ready_add(s, t);
    } else {
        jr_sched_write_task(s, t, r->exit_code, r->signal, outcome, err[0] ? err : NULL,
                            now, NULL);
    }
    jr_sched_settle(s, j, NULL);
    jr_sched_dispatch(s);
}

int64_t jr_sched_stop_all(struct jr_sched *s)
{
    struct sjob *j;
    int i;

    s->draining = 1;
    for (j = s->jobs.next; j != &s->jobs; j = j->next)
        for (i = 0; i < j->ntasks; i++)
            if (j->tasks[i].proc)
                kill_task(s, &j->tasks[i], KILL_SHUTDOWN);
    return s->used.max_tasks;
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
            jr_sched_ready_remove(s, t);
            t->state = T_CANCELED;
            rc = jr_sched_write_task(s, t, -1, 0, jr_exec_outcome_name(JR_OUT_CANCELED),
                                     "canceled", now, e);
        }
    }
    return rc;
}

