/* Unit tests of the scheduler operations the Kuscia surface needs: fail (a
 * restartable stop), task groups under max_parallelism, deleting a job
 * whose tasks still run (with a daemon restart in between), on real
 * processes (/bin/sh) and a real libuv loop, every wait bounded. */
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

/* The job events (type "job") of one job, as "state:message" joined by
 * " | ". */
struct job_events {
    const char *job;
    char text[1024];
};

static int see_job_event(void *arg, const struct jr_event_rec *ev)
{
    struct job_events *je = arg;
    size_t n = strlen(je->text);

    if (strcmp(ev->job, je->job) != 0 || strcmp(ev->type, "job") != 0)
        return 0;
    snprintf(je->text + n, sizeof je->text - n, "%s%s:%s", n ? " | " : "",
             ev->state ? ev->state : "", ev->message ? ev->message : "");
    return 0;
}

static const char *job_events(struct env *v, const char *job)
{
    static struct job_events je;

    je.job = job;
    je.text[0] = 0;
    jr_store_events_after(v->st, 0, -1, see_job_event, &je, NULL);
    return je.text;
}

/* ---- fail ---- */

TEST(fail_then_restart_reruns_what_did_not_succeed)
{
    struct env v;
    struct jr_err e = { 0, "" };
    char id[80];
    struct state_buf b;
    struct tdef three[] = {
        { "a", "true", { 0 }, 0, 0, 0, 0, 0, 0, 0 },
        { "b", "[ -e \"$JOBRT_OUTPUTS/../again\" ] || { touch \"$JOBRT_OUTPUTS/../again\";"
               " echo started; exec sleep 30; }", { "a" }, 0, 0, 0, 0, 0, 0, 0 },
        { "c", "true", { "b" }, 0, 0, 0, 0, 0, 0, 0 },
    };
    struct tdef one[] = { { "a", "true", { 0 }, 0, 0, 0, 0, 0, 0, 0 } };

    if (env_open(&v, small))
        return;
    submit(&v, "kf", three, 3, 0, 0, id, &e);
    CHECK_INT(jr_sched_fail(v.s, "kf", "too early", &e), JR_E_CONFLICT);
    CHECK(strstr(e.msg, "cannot fail job 'kf': it is created") != NULL);
    jr_sched_start(v.s, "kf", NULL, NULL, &e);
    CHECK(wait_task(&v, "kf", "b", "running", 5000));
    CHECK(wait_started(&v, "kf", 5000));
    CHECK_INT(jr_sched_fail(v.s, "kf", "stopped by alice", &e), 0);
    jr_store_job_get(v.st, "kf", copy_state, &b, NULL);
    CHECK_STR(b.state, "failed");
    CHECK_STR(b.error, "stopped by alice");
    /* the pending task is canceled at once, the running one once it died */
    CHECK_STR(task(&v, "kf", "c").state, "canceled");
    CHECK_INT(jr_sched_fail(v.s, "kf", NULL, &e), JR_E_CONFLICT);
    CHECK(wait_task(&v, "kf", "b", "canceled", 5000));
    CHECK_STR(task(&v, "kf", "b").outcome, "canceled");
    drain(&v, 5000);
    /* one job event for the failure, whose message is the reason */
    CHECK_STR(job_events(&v, "kf"), "created:submitted | queued:started | running: |"
              " failed:stopped by alice");
    CHECK_STR(job_state(&v, "kf"), "failed");
    CHECK_INT(jr_sched_restart(v.s, "kf", &e), 0);
    CHECK(wait_state(&v, "kf", "succeeded", 5000));
    CHECK_INT(task(&v, "kf", "a").attempt, 1);     /* kept */
    CHECK_INT(task(&v, "kf", "b").attempt, 1);     /* reset, ran once more */
    CHECK_STR(task(&v, "kf", "c").state, "succeeded");
    /* from awaiting approval: failed at once, restartable */
    submit(&v, "ka", one, 1, 0, 0, id, &e);
    jr_sched_start(v.s, "ka", "waiting", NULL, &e);
    CHECK_INT(jr_sched_fail(v.s, "ka", NULL, &e), 0);
    jr_store_job_get(v.st, "ka", copy_state, &b, NULL);
    CHECK_STR(b.state, "failed");
    CHECK_STR(b.error, "failed on request");
    CHECK_INT(jr_sched_restart(v.s, "ka", &e), 0);
    CHECK(wait_state(&v, "ka", "succeeded", 5000));
    CHECK_INT(jr_sched_fail(v.s, "nope", NULL, &e), JR_E_NOT_FOUND);
    env_close(&v);
}

int main(void)
{
    char cmd[300];
    int rc;

    signal(SIGPIPE, SIG_IGN);
    snprintf(dir, sizeof dir, "/tmp/jr_schedk_XXXXXX");
    if (!mkdtemp(dir))
        return 2;
    RUN(fail_then_restart_reruns_what_did_not_succeed);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    rc = system(cmd);
    (void)rc;
    return UNIT_DONE();
}
