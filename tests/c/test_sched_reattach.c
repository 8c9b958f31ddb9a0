/* The scheduler across a restart, with an executor that keeps its tasks
 * (a fake one: its attempts end when the test says so). A closed
 * scheduler with keep_tasks detaches its running tasks; the next one
 * reattaches them with the log offset it kept, counts their resources,
 * runs their timeout from their start (an expired one fires at once),
 * carries out a stop of their job acknowledged before, records the end time
 * the executor reports, runs again an attempt that never started or that
 * shutdown stopped (not counting it), retries a lost one, and fails one it
 * cannot reattach with the executor's reason. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "sched_env.h"
#include "unit.h"

/* ---- the fake executor ---- */

struct fake;

struct jr_exec_proc {
    struct fake *f;
    struct jr_exec_cbs cbs;
    void *arg;
    char alias[32];
    int live;
};

#define MAXP 16

struct fake {
    struct jr_exec_proc *p[MAXP];
    int n;
    int starts, attaches, detaches, gone;
    int sigs[8];                 /* signals sent, in order */
    int nsigs;
    int64_t attach_offset, attach_attempt, attach_pid;
    int attach_rc;               /* what attach answers (0 = attach) */
    char attach_record[128];     /* the record attach was given */
};

static struct jr_exec_proc *add(struct fake *f, const char *alias, const struct jr_exec_cbs *cbs,
                                void *arg)
{
    struct jr_exec_proc *p = calloc(1, sizeof *p);

    p->f = f;
    p->cbs = *cbs;
    p->arg = arg;
    p->live = 1;
    snprintf(p->alias, sizeof p->alias, "%s", alias);
    if (f->n < MAXP)
        f->p[f->n++] = p;
    return p;
}

static int f_start(void *self, const struct jr_exec_spec *spec, const struct jr_exec_cbs *cbs,
                   void *arg, struct jr_exec_proc **out, int64_t *pid, int64_t *pid_start,
                   char *record, struct jr_err *e)
{
    struct fake *f = self;

    (void)e;
    f->starts++;
    snprintf(record, JR_EXEC_RECORD_SIZE, "fake record of %s, attempt %lld", spec->task,
             (long long)spec->attempt);
    *out = add(f, spec->task, cbs, arg);
    *pid = 1000 + f->starts;
    *pid_start = 77;
    return JR_OK;
}

static int f_attach(void *self, const struct jr_exec_attach *a, const struct jr_exec_cbs *cbs,
                    void *arg, struct jr_exec_proc **out, struct jr_err *e)
{
    struct fake *f = self;

    f->attaches++;
    f->attach_offset = a->log_offset;
    f->attach_attempt = a->attempt;
    f->attach_pid = a->pid;
    snprintf(f->attach_record, sizeof f->attach_record, "%s", a->record ? a->record : "(none)");
    if (f->attach_rc)
        return jr_err_set(e, f->attach_rc, "no record of attempt %lld of task '%s'",
                          (long long)a->attempt, a->task);
    *out = add(f, a->task, cbs, arg);
    return JR_OK;
}

static void f_go(struct jr_exec_proc *p)
{
    (void)p;
}

static void f_kill(struct jr_exec_proc *p, int signum)
{
    if (p->f->nsigs < 8)
        p->f->sigs[p->f->nsigs++] = signum;
}

static void f_detach(struct jr_exec_proc *p)
{
    p->f->detaches++;
    p->live = 0;
}

static void f_close(void *self)
{
    (void)self;
}

static const struct jr_exec_ops fake_ops = {
    .name = "fake", .start = f_start, .go = f_go, .kill = f_kill, .close = f_close,
    .attach = f_attach, .detach = f_detach, .sandboxed = 0,
};

/* The attempt of alias ends with r (as from the loop). */
static void finish(struct fake *f, const char *alias, int outcome, int code, int64_t ended_ms)
{
    struct jr_exec_result r;

    memset(&r, 0, sizeof r);
    r.outcome = outcome;
    r.exit_code = code;
    r.cpu_ms = r.max_rss_bytes = r.wall_ms = -1;
    r.ended_ms = ended_ms;
    for (int i = f->n - 1; i >= 0; i--)
        if (f->p[i]->live && strcmp(f->p[i]->alias, alias) == 0) {
            f->p[i]->live = 0;
            f->p[i]->cbs.done(f->p[i]->arg, &r);
            return;
        }
    UNIT_FAIL("no live attempt of %s", alias);
}

static void fake_free(struct fake *f)
{
    for (int i = 0; i < f->n; i++)
        free(f->p[i]);
    memset(f, 0, sizeof *f);
}

/* ---- the scheduler over it ---- */

static int open_fake(struct env *v, const char *data, struct fake *f, struct jr_node node)
{
    char path[600];
    struct jr_err e = { 0, "" };
    struct jr_executor ex = { &fake_ops, f };
    struct jr_sched_opts o;

    uv_loop_init(&v->loop);
    snprintf(v->data, sizeof v->data, "%s", data);
    mkdir(v->data, 0755);
    snprintf(path, sizeof path, "%s/jobrt.db", v->data);
    if (jr_store_open(path, &v->st, &e))
        return -1;
    jr_store_attach(v->st, &v->loop);
    memset(&o, 0, sizeof o);
    o.data_dir = v->data;
    o.node = node;
    o.kill_grace_ms = 200;
    o.keep_tasks = 1;
    if (jr_sched_open(&v->loop, v->st, ex, &o, &v->s, &e)) {
        fprintf(stderr, "sched: %s\n", e.msg);
        return -1;
    }
    return 0;
}

/* Runs the loop for about ms. */
static void spin(struct env *v, int ms)
{
    uv_update_time(&v->loop);
    uint64_t end = uv_now(&v->loop) + (uint64_t)ms;

    while (uv_now(&v->loop) < end) {
        uv_run(&v->loop, UV_RUN_NOWAIT);
        usleep(2000);
        uv_update_time(&v->loop);
    }
    uv_run(&v->loop, UV_RUN_NOWAIT);
}

struct ended_q {
    const char *alias;
    int64_t ended_at;
};

static int copy_ended(void *arg, const struct jr_task_rec *t)
{
    struct ended_q *q = arg;

    if (strcmp(t->alias, q->alias) == 0)
        q->ended_at = t->ended_at;
    return 0;
}

static int64_t ended_at(struct env *v, const char *id, const char *alias)
{
    struct ended_q q = { alias, -1 };
    int64_t seq = 0;

    jr_store_job_get(v->st, id, copy_seq, &seq, NULL);
    jr_store_tasks_each(v->st, seq, copy_ended, &q, NULL);
    return q.ended_at;
}

static const struct jr_node one_cpu = { 1000, 1LL << 30, 0, 4 };

static void start_job(struct env *v, const char *id, const struct tdef *defs, size_t n)
{
    char out[80];
    struct jr_err e = { 0, "" };

    CHECK_INT(submit(v, id, defs, n, 0, 0, out, &e), 0);
    CHECK_INT(jr_sched_start(v->s, id, NULL, NULL, &e), 0);
}

TEST(reattached_tasks_count_and_end_with_their_outcome)
{
    struct env v;
    struct fake f = { 0 };
    char data[512];
    struct tdef a[] = { { "a", "true", { 0 }, 0, 0, 0, 1000, 0, 0, 0 } };
    struct tdef b[] = { { "b", "true", { 0 }, 0, 0, 0, 1000, 0, 0, 0 } };
    int64_t ended = jr_store_now_ms() - 60000;

    snprintf(data, sizeof data, "%s/r1", dir);
    if (open_fake(&v, data, &f, one_cpu))
        return;
    start_job(&v, "j", a, 1);
    start_job(&v, "k", b, 1);
    spin(&v, 30);
    CHECK_INT(f.starts, 1); /* b waits for a's cpu */
    f.p[0]->cbs.log(f.p[0]->arg, 1, "first", 5);
    f.p[0]->cbs.progress(f.p[0]->arg, 7);
    spin(&v, 10);
    env_close(&v);
    CHECK_INT(f.detaches, 1);
    CHECK_INT(f.nsigs, 0); /* keep: nothing was stopped */
    fake_free(&f);

    if (open_fake(&v, data, &f, one_cpu))
        return;
    spin(&v, 30);
    CHECK_INT(f.attaches, 1);
    CHECK_INT(f.attach_offset, 7);
    CHECK_INT(f.attach_attempt, 1);
    CHECK_INT(f.attach_pid, 1001);
    CHECK_STR(f.attach_record, "fake record of a, attempt 1"); /* kept by the store */
    CHECK_INT(f.starts, 0); /* a's cpu is still counted */
    CHECK_STR(job_state(&v, "j"), "running");
    finish(&f, "a", JR_OUT_EXITED, 0, ended);
    spin(&v, 30);
    CHECK_STR(job_state(&v, "j"), "succeeded");
    CHECK_INT(ended_at(&v, "j", "a"), ended); /* when it ended, not when we learnt it */
    CHECK_INT(f.starts, 1); /* now b */
    {
        struct task_q q = task(&v, "j", "a");
        CHECK_STR(q.state, "succeeded");
        CHECK_INT(q.attempt, 1);
    }
    finish(&f, "b", JR_OUT_EXITED, 0, 0);
    spin(&v, 10);
    env_close(&v);
    fake_free(&f);
}

TEST(a_stop_acknowledged_before_is_carried_out)
{
    struct env v;
    struct fake f = { 0 };
    char data[512];
    struct jr_err e = { 0, "" };
    struct tdef a[] = { { "a", "sleep 9", { 0 }, 0, 0, 0, 0, 0, 0, 0 } };

    snprintf(data, sizeof data, "%s/r2", dir);
    if (open_fake(&v, data, &f, one_cpu))
        return;
    start_job(&v, "c", a, 1);
    spin(&v, 30);
    CHECK_INT(jr_sched_cancel(v.s, "c", NULL, &e), 0);
    spin(&v, 10);
    /* acknowledged (on disk); the daemon goes before the task ended */
    env_close(&v);
    fake_free(&f);

    if (open_fake(&v, data, &f, one_cpu))
        return;
    spin(&v, 30);
    CHECK_INT(f.attaches, 1);
    CHECK(f.nsigs >= 1 && f.sigs[0] == SIGTERM);
    spin(&v, 300); /* the grace: SIGKILL follows */
    CHECK(f.nsigs >= 2 && f.sigs[1] == SIGKILL);
    finish(&f, "a", JR_OUT_CANCELED, -1, 0);
    spin(&v, 30);
    CHECK_STR(job_state(&v, "c"), "canceled");
    CHECK_STR(task(&v, "c", "a").state, "canceled");
    CHECK_INT(f.starts, 0);
    env_close(&v);
    fake_free(&f);
}

TEST(a_timeout_that_expired_meanwhile_fires_at_once)
{
    struct env v;
    struct fake f = { 0 };
    char data[512];
    struct tdef a[] = { { "a", "sleep 9", { 0 }, 0, 0, 0, 0, 300, 0, 0 } };

    snprintf(data, sizeof data, "%s/r3", dir);
    if (open_fake(&v, data, &f, one_cpu))
        return;
    start_job(&v, "t", a, 1);
    spin(&v, 30);
    env_close(&v);
    fake_free(&f);
    usleep(400 * 1000); /* its 300 ms pass while no daemon is here */

    if (open_fake(&v, data, &f, one_cpu))
        return;
    spin(&v, 50);
    CHECK_INT(f.attaches, 1);
    CHECK(f.nsigs >= 1 && f.sigs[0] == SIGTERM);
    finish(&f, "a", JR_OUT_SIGNALED, -1, 0);
    spin(&v, 30);
    CHECK_STR(job_state(&v, "t"), "failed");
    CHECK_STR(task(&v, "t", "a").outcome, "timeout");
    env_close(&v);
    fake_free(&f);
}

TEST(unstarted_and_lost_attempts)
{
    struct env v;
    struct fake f = { 0 };
    char data[512];
    struct tdef a[] = { { "a", "true", { 0 }, 0, 0, 0, 0, 0, 0, 0 } };
    struct tdef b[] = { { "b", "true", { 0 }, 0, 0, 1, 0, 0, 0, 0 } };

    snprintf(data, sizeof data, "%s/r4", dir);
    if (open_fake(&v, data, &f, one_cpu))
        return;
    start_job(&v, "n", a, 1);
    start_job(&v, "l", b, 1);
    spin(&v, 30);
    CHECK_INT(f.starts, 2);
    env_close(&v);
    fake_free(&f);

    if (open_fake(&v, data, &f, one_cpu))
        return;
    spin(&v, 30);
    CHECK_INT(f.attaches, 2);
    /* its gate closed with the old daemon: it never ran, so it runs again
     * as the same attempt */
    finish(&f, "a", JR_OUT_CANCELED, -1, 0);
    /* its helper is gone without an outcome: failed, retried (retries 1) */
    finish(&f, "b", JR_OUT_LOST, -1, 0);
    spin(&v, 30);
    CHECK_INT(f.starts, 2);
    {
        struct task_q q = task(&v, "n", "a");
        CHECK_STR(q.state, "running");
        CHECK_INT(q.attempt, 1);
        q = task(&v, "l", "b");
        CHECK_STR(q.state, "running");
        CHECK_INT(q.attempt, 2);
    }
    finish(&f, "a", JR_OUT_EXITED, 0, 0);
    finish(&f, "b", JR_OUT_EXITED, 0, 0);
    spin(&v, 30);
    CHECK_STR(job_state(&v, "n"), "succeeded");
    CHECK_STR(job_state(&v, "l"), "succeeded");
    env_close(&v);
    fake_free(&f);
}

TEST(no_record_fails_with_the_reason)
{
    struct env v;
    struct fake f = { 0 };
    char data[512];
    struct tdef a[] = { { "a", "true", { 0 }, 0, 0, 0, 0, 0, 0, 0 } };

    snprintf(data, sizeof data, "%s/r5", dir);
    if (open_fake(&v, data, &f, one_cpu))
        return;
    start_job(&v, "x", a, 1);
    spin(&v, 30);
    env_close(&v);
    fake_free(&f);

    f.attach_rc = JR_E_NOT_FOUND;
    if (open_fake(&v, data, &f, one_cpu))
        return;
    spin(&v, 30);
    CHECK_STR(job_state(&v, "x"), "failed");
    CHECK_STR(task(&v, "x", "a").error, "runtime restarted: no record of attempt 1 of task 'a'");
    env_close(&v);
    fake_free(&f);
}

TEST(shutdown_stop_sends_tasks_back_to_ready)
{
    struct env v;
    struct fake f = { 0 };
    char data[512];
    int64_t running, ready, jobs;
    struct tdef a[] = { { "a", "sleep 9", { 0 }, 0, 0, 0, 0, 0, 0, 0 } };
    struct tdef b[] = { { "b", "true", { 0 }, 0, 0, 0, 0, 0, 0, 0 } };

    snprintf(data, sizeof data, "%s/r6", dir);
    if (open_fake(&v, data, &f, one_cpu))
        return;
    start_job(&v, "s", a, 1);
    spin(&v, 30);
    CHECK_INT(jr_sched_stop_all(v.s), 1);
    CHECK(f.nsigs >= 1 && f.sigs[0] == SIGTERM);
    start_job(&v, "s2", b, 1); /* nothing starts any more */
    finish(&f, "a", JR_OUT_CANCELED, -1, 0);
    spin(&v, 30);
    jr_sched_stats(v.s, &running, &ready, &jobs);
    CHECK_INT(running, 0);
    CHECK_INT(f.starts, 1);
    {
        struct task_q q = task(&v, "s", "a");
        CHECK_STR(q.state, "ready");
        CHECK_INT(q.attempt, 0);
        CHECK(strstr(q.error, "shutdown") != NULL);
    }
    CHECK_STR(job_state(&v, "s"), "running");
    env_close(&v);
    fake_free(&f);

    if (open_fake(&v, data, &f, one_cpu))
        return;
    spin(&v, 30);
    CHECK_INT(f.attaches, 0);
    CHECK_INT(f.starts, 2); /* both run at the next start */
    CHECK_INT(task(&v, "s", "a").attempt, 1);
    env_close(&v);
    fake_free(&f);
}

int main(void)
{
    char cmd[300];

    signal(SIGPIPE, SIG_IGN);
    snprintf(dir, sizeof dir, "/tmp/jr_reattach_XXXXXX");
    if (!mkdtemp(dir))
        return 2;
    RUN(reattached_tasks_count_and_end_with_their_outcome);
    RUN(a_stop_acknowledged_before_is_carried_out);
    RUN(a_timeout_that_expired_meanwhile_fires_at_once);
    RUN(unstarted_and_lost_attempts);
    RUN(no_record_fails_with_the_reason);
    RUN(shutdown_stop_sends_tasks_back_to_ready);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return UNIT_DONE();
}
