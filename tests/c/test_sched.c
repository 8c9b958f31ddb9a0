/* Unit tests of the scheduler and the state machine, with real processes
 * (/bin/sh) on a real libuv loop: every transition and refused transition,
 * DAG release order with priorities and max_parallelism, tolerable failures,
 * skipped dependants, retries, timeouts, approval, resource fitting, logs
 * and recovery after a crash. Each wait is bounded by a loop deadline. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sched/sched.h"
#include "sched_env.h"
#include "unit.h"

/* ---- tests ---- */

TEST(submit_validation)
{
    struct env v;
    struct jr_err e = { 0, "" };
    char id[80];
    struct tdef unknown[] = { { "a", "true", { "zz" }, 0, 0, 0, 0, 0, 0, 0 } };
    struct tdef cycle[] = {
        { "a", "true", { "c" }, 0, 0, 0, 0, 0, 0, 0 },
        { "b", "true", { "a" }, 0, 0, 0, 0, 0, 0, 0 },
        { "c", "true", { "b" }, 0, 0, 0, 0, 0, 0, 0 },
    };
    struct tdef dup[] = { { "a", "true", { 0 }, 0, 0, 0, 0, 0, 0, 0 },
                          { "a", "true", { 0 }, 0, 0, 0, 0, 0, 0, 0 } };
    struct tdef big[] = { { "huge", "true", { 0 }, 0, 0, 0, 64000, 0, 0, 0 } };
    struct tdef gpu[] = { { "g", "true", { 0 }, 0, 0, 0, 0, 0, 1, 0 } };
    struct tdef nocmd[] = { { "a", NULL, { 0 }, 0, 0, 0, 0, 0, 0, 0 } };
    struct tdef ok[] = { { "a", "true", { 0 }, 0, 0, 0, 0, 0, 0, 0 } };

    if (env_open(&v, small))
        return;
    CHECK_INT(submit(&v, NULL, unknown, 1, 0, 0, id, &e), JR_E_INVALID);
    CHECK(strstr(e.msg, "unknown task 'zz'") != NULL);
    CHECK_INT(submit(&v, NULL, cycle, 3, 0, 0, id, &e), JR_E_INVALID);
    CHECK(strstr(e.msg, "cycle") != NULL);
    CHECK_INT(submit(&v, NULL, dup, 2, 0, 0, id, &e), JR_E_INVALID);
    CHECK(strstr(e.msg, "used twice") != NULL);
    CHECK_INT(submit(&v, NULL, big, 1, 0, 0, id, &e), JR_E_INVALID);
    CHECK(strstr(e.msg, "task 'huge' needs cpu 64000m but the node has 2000m") != NULL);
    CHECK_INT(submit(&v, NULL, gpu, 1, 0, 0, id, &e), JR_E_INVALID);
    CHECK(strstr(e.msg, "gpu") != NULL);
    CHECK_INT(submit(&v, NULL, nocmd, 1, 0, 0, id, &e), JR_E_INVALID);
    CHECK_INT(submit(&v, "../etc", ok, 1, 0, 0, id, &e), JR_E_INVALID);
    CHECK_INT(submit(&v, "my-job.1", ok, 1, 0, 0, id, &e), 0);
    CHECK_STR(id, "my-job.1");
    CHECK_STR(job_state(&v, "my-job.1"), "created");
    CHECK_INT(submit(&v, "my-job.1", ok, 1, 0, 0, id, &e), JR_E_EXISTS);
    CHECK_INT(submit(&v, NULL, ok, 1, 0, 0, id, &e), 0);
    CHECK_INT(strlen(id), 36);
    /* nothing was stored by the refused submits */
    CHECK_INT(jr_store_jobs_count(v.st), 2);
    env_close(&v);
}

TEST(dag_release_order)
{
    struct env v;
    struct jr_err e = { 0, "" };
    char id[80];
    struct tdef dag[] = {
        { "d", "true", { "b", "c" }, 0, 0, 0, 0, 0, 0, 0 },
        { "b", "true", { "a" }, 0, 0, 0, 0, 0, 0, 0 },
        { "c", "true", { "a" }, 5, 0, 0, 0, 0, 0, 0 },
        { "a", "echo hello; echo oops >&2", { 0 }, 0, 0, 0, 0, 0, 0, 0 },
    };
    struct jr_node one = { 2000, 1LL << 30, 0, 1 };

    if (env_open(&v, one))
        return;
    CHECK_INT(submit(&v, "dag", dag, 4, 0, 0, id, &e), 0);
    CHECK_INT(jr_sched_start(v.s, "dag", NULL, NULL, &e), 0);
    CHECK(wait_state(&v, "dag", "succeeded", 5000));
    /* one slot: a first, then c (priority 5) before b, then d */
    CHECK_STR(order_of(&v, "dag", "running"), "a c b d");
    CHECK_STR(order_of(&v, "dag", "succeeded"), "a c b d");
    env_close(&v);
}

static int count_logs(void *arg, const struct jr_log_rec *l)
{
    int *n = arg;

    if (strcmp(l->message, "hello") == 0 && l->level == JR_LOG_LEVEL_INFO)
        n[0]++;
    if (strcmp(l->message, "oops") == 0 && l->level == JR_LOG_LEVEL_WARN)
        n[1]++;
    return 0;
}

TEST(task_output_becomes_logs)
{
    struct env v;
    struct jr_err e = { 0, "" };
    char id[80];
    struct tdef one[] = { { "a", "echo hello; echo oops >&2; printf tail", { 0 }, 0, 0, 0,
                            0, 0, 0, 0 } };
    int n[2] = { 0, 0 };
    int64_t seq = 0;

    if (env_open(&v, small))
        return;
    submit(&v, "logs", one, 1, 0, 0, id, &e);
    jr_sched_start(v.s, "logs", NULL, NULL, &e);
    CHECK(wait_state(&v, "logs", "succeeded", 5000));
    jr_store_job_get(v.st, "logs", copy_seq, &seq, NULL);
    jr_store_logs(v.st, seq, 0, 0, 100, count_logs, n, NULL);
    CHECK_INT(n[0], 1);
    CHECK_INT(n[1], 1);
    env_close(&v);
}

TEST(priorities_across_jobs)
{
    struct env v;
    struct jr_err e = { 0, "" };
    char id[80];
    struct tdef blocker[] = { { "x", "sleep 0.3", { 0 }, 0, 0, 0, 0, 0, 0, 0 } };
    struct tdef low[] = { { "l1", "true", { 0 }, 1, 0, 0, 0, 0, 0, 0 },
                          { "l2", "true", { 0 }, 2, 0, 0, 0, 0, 0, 0 } };
    struct tdef high[] = { { "h1", "true", { 0 }, 0, 0, 0, 0, 0, 0, 0 },
                           { "h2", "true", { 0 }, 9, 0, 0, 0, 0, 0, 0 } };
    struct jr_node one = { 2000, 1LL << 30, 0, 1 };

    if (env_open(&v, one))
        return;
    submit(&v, "blocker", blocker, 1, 0, 0, id, &e);
    submit(&v, "low", low, 2, 0, 0, id, &e);
    submit(&v, "high", high, 2, 10, 0, id, &e);
    jr_sched_start(v.s, "blocker", NULL, NULL, &e);
    CHECK(wait_state(&v, "blocker", "running", 3000));
    jr_sched_start(v.s, "low", NULL, NULL, &e);
    jr_sched_start(v.s, "high", NULL, NULL, &e);
    CHECK_STR(job_state(&v, "low"), "queued");
    CHECK(wait_state(&v, "low", "succeeded", 5000));
    CHECK(wait_state(&v, "high", "succeeded", 5000));
    /* job priority first, then task priority */
    CHECK_STR(order_of(&v, NULL, "running"), "blocker/x high/h2 high/h1 low/l2 low/l1");
    CHECK(max_concurrent(&v, NULL) <= 1);
    env_close(&v);
}

TEST(max_parallelism_and_resources)
{
    struct env v;
    struct jr_err e = { 0, "" };
    char id[80];
    struct tdef four[] = {
        { "a", "sleep 0.1", { 0 }, 0, 0, 0, 0, 0, 0, 0 },
        { "b", "sleep 0.1", { 0 }, 0, 0, 0, 0, 0, 0, 0 },
        { "c", "sleep 0.1", { 0 }, 0, 0, 0, 0, 0, 0, 0 },
        { "d", "sleep 0.1", { 0 }, 0, 0, 0, 0, 0, 0, 0 },
    };
    struct tdef cpu[] = {
        { "a", "sleep 0.1", { 0 }, 0, 0, 0, 1000, 0, 0, 0 },
        { "b", "sleep 0.1", { 0 }, 0, 0, 0, 1000, 0, 0, 0 },
        { "c", "sleep 0.1", { 0 }, 0, 0, 0, 1000, 0, 0, 0 },
    };

    if (env_open(&v, small))
        return;
    submit(&v, "par", four, 4, 0, 2, id, &e);
    jr_sched_start(v.s, "par", NULL, NULL, &e);
    CHECK(wait_state(&v, "par", "succeeded", 5000));
    CHECK_INT(max_concurrent(&v, "par"), 2);
    /* node cpu 2000m: three 1000m tasks, at most two at once */
    submit(&v, "cpu", cpu, 3, 0, 0, id, &e);
    jr_sched_start(v.s, "cpu", NULL, NULL, &e);
    CHECK(wait_state(&v, "cpu", "succeeded", 5000));
    CHECK_INT(max_concurrent(&v, "cpu"), 2);
    env_close(&v);
}

TEST(tolerable_failure_and_skip)
{
    struct env v;
    struct jr_err e = { 0, "" };
    char id[80];
    struct tdef tol[] = {
        { "a", "exit 3", { 0 }, 0, 1, 0, 0, 0, 0, 0 },
        { "b", "true", { "a" }, 0, 0, 0, 0, 0, 0, 0 },
    };
    struct tdef skip[] = {
        { "a", "exit 1", { 0 }, 0, 0, 0, 0, 0, 0, 0 },
        { "b", "true", { "a" }, 0, 0, 0, 0, 0, 0, 0 },
        { "c", "true", { "b" }, 0, 0, 0, 0, 0, 0, 0 },
        { "ind", "sleep 0.1", { 0 }, 0, 0, 0, 0, 0, 0, 0 },
    };
    struct state_buf b;

    if (env_open(&v, small))
        return;
    submit(&v, "tol", tol, 2, 0, 0, id, &e);
    jr_sched_start(v.s, "tol", NULL, NULL, &e);
    CHECK(wait_state(&v, "tol", "succeeded", 5000));
    CHECK_STR(task(&v, "tol", "a").state, "failed");
    CHECK_INT(task(&v, "tol", "a").exit_code, 3);
    CHECK_STR(task(&v, "tol", "b").state, "succeeded");
    submit(&v, "skip", skip, 4, 0, 0, id, &e);
    jr_sched_start(v.s, "skip", NULL, NULL, &e);
    CHECK(wait_state(&v, "skip", "failed", 5000));
    CHECK_STR(task(&v, "skip", "b").state, "skipped");
    CHECK_STR(task(&v, "skip", "c").state, "skipped");
    /* best effort: the independent branch still ran */
    CHECK_STR(task(&v, "skip", "ind").state, "succeeded");
    jr_store_job_get(v.st, "skip", copy_state, &b, NULL);
    CHECK_STR(b.error, "task 'a' failed: exit code 1");
    env_close(&v);
}

TEST(retries_and_timeout)
{
    struct env v;
    struct jr_err e = { 0, "" };
    char id[80];
    struct tdef retry[] = { { "a", "[ \"$JOBRT_ATTEMPT\" -ge 3 ]", { 0 }, 0, 0, 2, 0, 0, 0,
                              0 } };
    struct tdef out[] = { { "a", "exit 1", { 0 }, 0, 0, 1, 0, 0, 0, 0 } };
    struct tdef slow[] = { { "slow", "sleep 30", { 0 }, 0, 0, 0, 0, 150, 0, 0 } };
    uint64_t t0;

    if (env_open(&v, small))
        return;
    submit(&v, "retry", retry, 1, 0, 0, id, &e);
    jr_sched_start(v.s, "retry", NULL, NULL, &e);
    CHECK(wait_state(&v, "retry", "succeeded", 5000));
    CHECK_INT(task(&v, "retry", "a").attempt, 3);
    submit(&v, "out", out, 1, 0, 0, id, &e);
    jr_sched_start(v.s, "out", NULL, NULL, &e);
    CHECK(wait_state(&v, "out", "failed", 5000));
    CHECK_INT(task(&v, "out", "a").attempt, 2);
    submit(&v, "slow", slow, 1, 0, 0, id, &e);
    t0 = uv_hrtime();
    jr_sched_start(v.s, "slow", NULL, NULL, &e);
    CHECK(wait_state(&v, "slow", "failed", 5000));
    CHECK((uv_hrtime() - t0) / 1000000 < 3000);
    CHECK_STR(task(&v, "slow", "slow").outcome, "timeout");
    CHECK(strstr(task(&v, "slow", "slow").error, "timed out") != NULL);
    env_close(&v);
}

TEST(approval_hold_and_release)
{
    struct env v;
    struct jr_err e = { 0, "" };
    char id[80];
    struct tdef one[] = { { "a", "true", { 0 }, 0, 0, 0, 0, 0, 0, 0 } };

    if (env_open(&v, small))
        return;
    submit(&v, "ap", one, 1, 0, 0, id, &e);
    CHECK_INT(jr_sched_start(v.s, "ap", "awaiting approval", NULL, &e), 0);
    CHECK_STR(job_state(&v, "ap"), "awaiting_approval");
    drain(&v, 200);
    CHECK_STR(task(&v, "ap", "a").state, "pending");
    CHECK_INT(jr_sched_approve(v.s, "ap", 1, "ops", "fine", &e), 0);
    CHECK(wait_state(&v, "ap", "succeeded", 5000));
    submit(&v, "rj", one, 1, 0, 0, id, &e);
    jr_sched_start(v.s, "rj", "awaiting approval", NULL, &e);
    CHECK_INT(jr_sched_approve(v.s, "rj", 0, "ops", "too big", &e), 0);
    CHECK_STR(job_state(&v, "rj"), "rejected");
    submit(&v, "pol", one, 1, 0, 0, id, &e);
    CHECK_INT(jr_sched_start(v.s, "pol", NULL, "policy says no", &e), 0);
    CHECK_STR(job_state(&v, "pol"), "rejected");
    env_close(&v);
}

/* Put a fresh job into each state, then try each operation on it. */
enum { OP_START, OP_RESTART, OP_STOP, OP_CANCEL, OP_SUSPEND, OP_APPROVE, OP_UPDATE,
       OP_DELETE, OP_FAIL, NOPS };
static const char *const op_names[NOPS] = { "start", "restart", "stop", "cancel",
                                            "suspend", "approve", "update", "delete",
                                            "fail" };
static const char *const states[] = { "created", "awaiting_approval", "rejected",
                                      "queued", "running", "succeeded", "failed",
                                      "canceled", "suspended" };
/* 1 = allowed; anything else is the refusal code */
static const int allowed[9][NOPS] = {
    /*                start restart stop cancel suspend approve update delete fail */
    /* created */   { 1, 3, 3, 1, 3, 3, 1, 1, 1 },
    /* awaiting */  { 3, 3, 1, 1, 3, 1, 1, 1, 1 },
    /* rejected */  { 1, 3, 3, 3, 3, 3, 1, 1, 3 },
    /* queued */    { 3, 3, 1, 1, 1, 3, 4, 4, 1 },
    /* running */   { 3, 3, 1, 1, 1, 3, 4, 4, 1 },
    /* succeeded */ { 1, 3, 3, 3, 3, 3, 1, 1, 3 },
    /* failed */    { 1, 1, 3, 1, 3, 3, 1, 1, 3 },
    /* canceled */  { 1, 1, 3, 3, 3, 3, 1, 1, 3 },
    /* suspended */ { 1, 1, 3, 1, 3, 3, 1, 1, 1 },
};

static int make_in_state(struct env *v, const char *state, int n, char *id)
{
    struct jr_err e = { 0, "" };
    struct tdef ok[] = { { "a", "true", { 0 }, 0, 0, 0, 0, 0, 0, 0 } };
    struct tdef bad[] = { { "a", "exit 1", { 0 }, 0, 0, 0, 0, 0, 0, 0 } };
    struct tdef hold[] = { { "a", "sleep 30", { 0 }, 0, 0, 0, 0, 0, 0, 0 } };
    struct tdef full[] = { { "a", "true", { 0 }, 0, 0, 0, 2000, 0, 0, 0 } };
    char got[80];

    snprintf(id, 80, "%s-%d", state, n);
    if (!strcmp(state, "failed"))
        submit(v, id, bad, 1, 0, 0, got, &e);
    else if (!strcmp(state, "running") || !strcmp(state, "suspended") ||
             !strcmp(state, "canceled"))
        submit(v, id, hold, 1, 0, 0, got, &e);
    else if (!strcmp(state, "queued"))
        submit(v, id, full, 1, 0, 0, got, &e);
    else
        submit(v, id, ok, 1, 0, 0, got, &e);
    if (!strcmp(state, "created"))
        return 0;
    if (!strcmp(state, "awaiting_approval"))
        return jr_sched_start(v->s, id, "awaiting approval", NULL, &e);
    if (!strcmp(state, "rejected"))
        return jr_sched_start(v->s, id, NULL, "no", &e);
    jr_sched_start(v->s, id, NULL, NULL, &e);
    if (!strcmp(state, "queued"))
        return 0;
    if (!wait_state(v, id, strcmp(state, "succeeded") && strcmp(state, "failed") ?
                    "running" : state, 5000))
        return -1;
    if (!strcmp(state, "suspended"))
        jr_sched_suspend(v->s, id, NULL, &e);
    if (!strcmp(state, "canceled"))
        jr_sched_cancel(v->s, id, NULL, &e);
    /* let the killed task go, so later operations are not "still stopping" */
    if (!strcmp(state, "suspended") || !strcmp(state, "canceled"))
        wait_task(v, id, "a", "canceled", 5000);
    return 0;
}

TEST(every_transition_and_refusal)
{
    struct env v;
    struct jr_err e;
    char id[80], blocker[80];
    struct tdef cpu_all[] = { { "a", "sleep 30", { 0 }, 0, 0, 0, 2000, 0, 0, 0 } };
    struct built b;
    struct jr_job_spec upd;
    size_t s;
    int op, n = 0, rc;

    if (env_open(&v, small))
        return;
    /* a job holding all cpu keeps "queued" jobs queued */
    e.code = 0;
    submit(&v, "blocker", cpu_all, 1, 0, 0, blocker, &e);
    jr_sched_start(v.s, "blocker", NULL, NULL, &e);
    CHECK(wait_state(&v, "blocker", "running", 5000));
    for (s = 0; s < sizeof states / sizeof states[0]; s++) {
        for (op = 0; op < NOPS; op++) {
            if (make_in_state(&v, states[s], ++n, id)) {
                UNIT_FAIL("could not reach %s", states[s]);
                continue;
            }
            if (strcmp(job_state(&v, id), states[s]) != 0) {
                UNIT_FAIL("%s: job is %s", states[s], job_state(&v, id));
                continue;
            }
            memset(&e, 0, sizeof e);
            switch (op) {
            case OP_START: rc = jr_sched_start(v.s, id, NULL, NULL, &e); break;
            case OP_RESTART: rc = jr_sched_restart(v.s, id, &e); break;
            case OP_STOP: rc = jr_sched_stop(v.s, id, NULL, &e); break;
            case OP_CANCEL: rc = jr_sched_cancel(v.s, id, NULL, &e); break;
            case OP_SUSPEND: rc = jr_sched_suspend(v.s, id, NULL, &e); break;
            case OP_APPROVE: rc = jr_sched_approve(v.s, id, 1, "t", NULL, &e); break;
            case OP_UPDATE:
                build(&b, &upd, NULL, 0);
                upd.priority = 7;
                rc = jr_sched_update(v.s, id, &upd, JR_UPD_PRIORITY, &e);
                break;
            case OP_FAIL: rc = jr_sched_fail(v.s, id, NULL, &e); break;
            default: rc = jr_sched_delete(v.s, id, 0, &e); break;
            }
            if (allowed[s][op] == 1 && rc != 0)
                UNIT_FAIL("%s from %s refused: %s", op_names[op], states[s], e.msg);
            if (allowed[s][op] != 1 && rc != allowed[s][op])
                UNIT_FAIL("%s from %s: got %d (%s), want %s", op_names[op], states[s], rc,
                          e.msg, jr_err_name(allowed[s][op] == 3 ? JR_E_CONFLICT
                                                                 : JR_E_LOCKED));
            if (rc == JR_E_CONFLICT && !strstr(e.msg, "cannot"))
                UNIT_FAIL("unclear refusal: %s", e.msg);
            /* stop whatever is still running */
            jr_sched_cancel(v.s, id, NULL, NULL);
        }
    }
    jr_sched_cancel(v.s, "blocker", NULL, NULL);
    drain(&v, 5000);
    env_close(&v);
}

TEST(stop_restart_keeps_succeeded)
{
    struct env v;
    struct jr_err e = { 0, "" };
    char id[80];
    struct tdef two[] = {
        { "a", "true", { 0 }, 0, 0, 0, 0, 0, 0, 0 },
        { "b", "[ -e \"$JOBRT_OUTPUTS/../again\" ] || { touch \"$JOBRT_OUTPUTS/../again\";"
               " echo started; exec sleep 30; }", { "a" }, 0, 0, 0, 0, 0, 0, 0 },
    };

    if (env_open(&v, small))
        return;
    submit(&v, "sr", two, 2, 0, 0, id, &e);
    jr_sched_start(v.s, "sr", NULL, NULL, &e);
    CHECK(wait_task(&v, "sr", "b", "running", 5000));
    /* "running" is written before the gate opens: wait for the command */
    CHECK(wait_started(&v, "sr", 5000));
    CHECK_INT(jr_sched_stop(v.s, "sr", NULL, &e), 0);
    CHECK_STR(job_state(&v, "sr"), "canceled");
    /* the task is still dying: a restart must wait for it */
    if (strcmp(task(&v, "sr", "b").state, "running") == 0)
        CHECK_INT(jr_sched_restart(v.s, "sr", &e), JR_E_CONFLICT);
    CHECK(wait_task(&v, "sr", "b", "canceled", 5000));
    CHECK_STR(task(&v, "sr", "b").outcome, "canceled");
    CHECK_INT(jr_sched_restart(v.s, "sr", &e), 0);
    CHECK(wait_state(&v, "sr", "succeeded", 5000));
    CHECK_INT(task(&v, "sr", "a").attempt, 1);     /* kept */
    CHECK_INT(task(&v, "sr", "b").attempt, 1);     /* reset, ran once more */
    env_close(&v);
}

TEST(set_state_update_delete)
{
    struct env v;
    struct jr_err e = { 0, "" };
    char id[80], path[700];
    struct tdef one[] = { { "a", "true", { 0 }, 0, 0, 0, 0, 0, 0, 0 } };
    struct tdef cyc[] = { { "x", "true", { "x" }, 0, 0, 0, 0, 0, 0, 0 } };
    struct built b;
    struct jr_job_spec spec;
    struct stat sb;

    if (env_open(&v, small))
        return;
    build(&b, &spec, NULL, 0);
    spec.id = "manual";
    CHECK_INT(jr_sched_submit(v.s, &spec, id, &e), 0);
    CHECK_INT(jr_sched_set_state(v.s, "manual", "running", NULL, &e), 0);
    CHECK_STR(job_state(&v, "manual"), "running");
    CHECK_INT(jr_sched_set_state(v.s, "manual", "bogus", NULL, &e), JR_E_INVALID);
    CHECK_INT(jr_sched_set_state(v.s, "manual", "succeeded", NULL, &e), 0);
    submit(&v, "withtasks", one, 1, 0, 0, id, &e);
    CHECK_INT(jr_sched_set_state(v.s, "withtasks", "running", NULL, &e), JR_E_CONFLICT);
    /* update replaces tasks, validated */
    build(&b, &spec, cyc, 1);
    CHECK_INT(jr_sched_update(v.s, "withtasks", &spec, JR_UPD_TASKS, &e), JR_E_INVALID);
    build(&b, &spec, one, 1);
    b.tasks[0].alias = "renamed";
    CHECK_INT(jr_sched_update(v.s, "withtasks", &spec, JR_UPD_TASKS, &e), 0);
    CHECK_STR(task(&v, "withtasks", "renamed").state, "pending");
    jr_sched_start(v.s, "withtasks", NULL, NULL, &e);
    CHECK(wait_state(&v, "withtasks", "succeeded", 5000));
    snprintf(path, sizeof path, "%s/jobs/withtasks/renamed/outputs", v.data);
    CHECK_INT(stat(path, &sb), 0);
    CHECK_INT(jr_sched_delete(v.s, "withtasks", 0, &e), 0);
    CHECK_STR(job_state(&v, "withtasks"), "(none)");
    snprintf(path, sizeof path, "%s/jobs/withtasks", v.data);
    CHECK(stat(path, &sb) != 0);
    CHECK_INT(jr_sched_delete(v.s, "withtasks", 0, &e), JR_E_NOT_FOUND);
    env_close(&v);
}

/* Write a job whose task is "running" under a process this test started, as
 * a dead daemon would have left it, then open a scheduler on it. */
TEST(recovery_after_crash)
{
    struct env v;
    struct jr_err e = { 0, "" };
    char id[80], data[512];
    struct tdef defs[] = {
        { "a", "[ \"$JOBRT_ATTEMPT\" -ge 2 ]", { 0 }, 0, 0, 1, 0, 0, 0, 0 },
    };
    struct tdef nore[] = { { "a", "true", { 0 }, 0, 0, 0, 0, 0, 0, 0 } };
    struct jr_task_rec r;
    int64_t seq = 0;
    pid_t orphan;
    int status = 0;

    if (env_open(&v, small))
        return;
    snprintf(data, sizeof data, "%s", v.data);
    submit(&v, "rec", defs, 1, 0, 0, id, &e);
    submit(&v, "rec0", nore, 1, 0, 0, id, &e);
    orphan = fork();
    if (orphan == 0) {
        setsid();
        execl("/bin/sleep", "sleep", "30", (char *)NULL);
        _exit(127);
    }
    /* mark both jobs running with attempt 1 of task a under the orphan */
    jr_sched_set_state(v.s, "rec", "created", NULL, &e);
    {
        const char *ids[2] = { "rec", "rec0" };
        int k;
        for (k = 0; k < 2; k++) {
            struct jr_job_rec j;
            seq = 0;
            jr_store_job_get(v.st, ids[k], copy_seq, &seq, NULL);
            memset(&j, 0, sizeof j);
            j.seq = seq;
            j.state = "running";
            j.updated_at = j.started_at = jr_store_now_ms();
            jr_store_job_set_state(v.st, &j, &e);
            memset(&r, 0, sizeof r);
            r.job_seq = seq;
            r.idx = 0;
            r.state = "running";
            r.attempt = 1;
            r.exit_code = -1;
            r.started_at = jr_store_now_ms();
            r.pid = k == 0 ? orphan : 999999;
            r.pid_start = k == 0 ? jr_exec_pid_start(orphan) : 1;
            jr_store_task_set_state(v.st, &r, &e);
        }
    }
    jr_store_commit(v.st);
    env_close(&v);
    /* the "new daemon" */
    uv_loop_init(&v.loop);
    CHECK_INT(env_open_at(&v, data, small), 0);
    CHECK_INT(waitpid(orphan, &status, WNOHANG), orphan);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    CHECK(wait_state(&v, "rec", "succeeded", 5000));
    CHECK_INT(task(&v, "rec", "a").attempt, 2);
    CHECK_STR(job_state(&v, "rec0"), "failed");
    /* the plain executor's tasks do not outlive the daemon, and say so */
    CHECK_STR(task(&v, "rec0", "a").error,
              "runtime restarted: the spawn executor does not keep tasks across restarts");
    env_close(&v);
}

int main(void)
{
    char cmd[300];
    int rc;

    signal(SIGPIPE, SIG_IGN);
    snprintf(dir, sizeof dir, "/tmp/jr_sched_XXXXXX");
    if (!mkdtemp(dir))
        return 2;
    RUN(submit_validation);
    RUN(dag_release_order);
    RUN(task_output_becomes_logs);
    RUN(priorities_across_jobs);
    RUN(max_parallelism_and_resources);
    RUN(tolerable_failure_and_skip);
    RUN(retries_and_timeout);
    RUN(approval_hold_and_release);
    RUN(every_transition_and_refusal);
    RUN(stop_restart_keeps_succeeded);
    RUN(set_state_update_delete);
    RUN(recovery_after_crash);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    rc = system(cmd);
    (void)rc;
    return UNIT_DONE();
}
