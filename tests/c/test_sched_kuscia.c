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

/* ---- task groups ---- */

/* Replays a job's task events: at every start, all running tasks are of one
 * group (the group is the alias without its last letter); counts the most
 * running at once. */
struct group_trace {
    const char *job;
    char running[8][16];
    int n, max, mixed;
};

static int see_group_event(void *arg, const struct jr_event_rec *ev)
{
    struct group_trace *g = arg;
    int i;

    if (!ev->task || !ev->state || strcmp(ev->job, g->job) != 0)
        return 0;
    if (strcmp(ev->state, "running") == 0 && g->n < 8) {
        for (i = 0; i < g->n; i++)
            g->mixed |= strncmp(g->running[i], ev->task, strlen(ev->task) - 1) != 0;
        snprintf(g->running[g->n++], sizeof g->running[0], "%s", ev->task);
        if (g->n > g->max)
            g->max = g->n;
    } else if (strcmp(ev->state, "succeeded") == 0 || strcmp(ev->state, "failed") == 0) {
        for (i = 0; i < g->n && strcmp(g->running[i], ev->task) != 0; i++)
            ;
        if (i < g->n)
            memmove(g->running[i], g->running[i + 1], (size_t)(g->n - i - 1) * 16);
        g->n -= i < g->n;
    }
    return 0;
}

static int task_group_of(void *arg, const struct jr_task_rec *t)
{
    char *out = arg;

    if (strcmp(t->alias, "g2a") == 0)
        snprintf(out, 32, "%s", t->group ? t->group : "(null)");
    return 0;
}

TEST(groups_count_once_under_max_parallelism)
{
    struct env v;
    struct jr_err e = { 0, "" };
    char id[80], grp[32] = "";
    struct built b;
    struct jr_job_spec spec;
    struct group_trace g;
    int64_t seq = 0;
    /* three groups of two, the group's priority on both of its tasks */
    struct tdef six[] = {
        { "g1a", "sleep 0.2", { 0 }, 1, 0, 0, 0, 0, 0, 0 },
        { "g1b", "sleep 0.2", { 0 }, 1, 0, 0, 0, 0, 0, 0 },
        { "g2a", "sleep 0.2", { 0 }, 5, 0, 0, 0, 0, 0, 0 },
        { "g2b", "sleep 0.2", { 0 }, 5, 0, 0, 0, 0, 0, 0 },
        { "g3a", "sleep 0.2", { 0 }, 3, 0, 0, 0, 0, 0, 0 },
        { "g3b", "sleep 0.2", { 0 }, 3, 0, 0, 0, 0, 0, 0 },
    };
    const char *groups[] = { "g1", "g1", "g2", "g2", "g3", "g3" };
    size_t i;

    if (env_open(&v, small))
        return;
    build(&b, &spec, six, 6);
    spec.id = "grp";
    spec.max_parallelism = 1;
    for (i = 0; i < 6; i++)
        b.tasks[i].group = groups[i];
    b.tasks[5].group = "not valid!";
    CHECK_INT(jr_sched_submit(v.s, &spec, id, &e), JR_E_INVALID);
    CHECK(strstr(e.msg, "tasks[5].group 'not valid!' is not valid") != NULL);
    b.tasks[5].group = "g3";
    CHECK_INT(jr_sched_submit(v.s, &spec, id, &e), 0);
    jr_store_job_get(v.st, "grp", copy_seq, &seq, NULL);
    jr_store_tasks_each(v.st, seq, task_group_of, grp, NULL);
    CHECK_STR(grp, "g2");
    CHECK_INT(jr_sched_start(v.s, "grp", NULL, NULL, &e), 0);
    CHECK(wait_state(&v, "grp", "succeeded", 10000));
    /* the groups one after another by priority, each group's two together */
    CHECK_STR(order_of(&v, "grp", "running"), "g2a g2b g3a g3b g1a g1b");
    memset(&g, 0, sizeof g);
    g.job = "grp";
    jr_store_events_after(v.st, 0, -1, see_group_event, &g, NULL);
    CHECK_INT(g.max, 2);
    CHECK_INT(g.mixed, 0);
    /* without groups, max_parallelism 1 still counts tasks */
    for (i = 0; i < 6; i++)
        b.tasks[i].group = NULL;
    spec.id = "nogrp";
    CHECK_INT(jr_sched_submit(v.s, &spec, id, &e), 0);
    CHECK_INT(jr_sched_start(v.s, "nogrp", NULL, NULL, &e), 0);
    CHECK(wait_state(&v, "nogrp", "succeeded", 10000));
    CHECK_INT(max_concurrent(&v, "nogrp"), 1);
    env_close(&v);
}

/* A group's other tasks start beside the first only as resources fit: on
 * a node of 2000m, a group of three 1000m tasks runs two, then one. */
TEST(groups_still_need_resources)
{
    struct env v;
    struct jr_err e = { 0, "" };
    char id[80];
    struct built b;
    struct jr_job_spec spec;
    struct tdef three[] = {
        { "pa", "sleep 0.2", { 0 }, 0, 0, 0, 1000, 0, 0, 0 },
        { "pb", "sleep 0.2", { 0 }, 0, 0, 0, 1000, 0, 0, 0 },
        { "pc", "sleep 0.2", { 0 }, 0, 0, 0, 1000, 0, 0, 0 },
        { "solo", "true", { 0 }, 9, 0, 0, 0, 0, 0, 0 },
    };
    size_t i;

    if (env_open(&v, small))
        return;
    build(&b, &spec, three, 4);
    spec.id = "res";
    spec.max_parallelism = 1;
    for (i = 0; i < 3; i++)
        b.tasks[i].group = "p";
    CHECK_INT(jr_sched_submit(v.s, &spec, id, &e), 0);
    CHECK_INT(jr_sched_start(v.s, "res", NULL, NULL, &e), 0);
    CHECK(wait_state(&v, "res", "succeeded", 10000));
    CHECK_INT(max_concurrent(&v, "res"), 2);
    /* solo (priority 9) first and alone, then the group */
    CHECK_STR(order_of(&v, "res", "running"), "solo pa pb pc");
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
    RUN(groups_count_once_under_max_parallelism);
    RUN(groups_still_need_resources);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    rc = system(cmd);
    (void)rc;
    return UNIT_DONE();
}
