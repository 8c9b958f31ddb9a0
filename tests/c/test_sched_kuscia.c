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
    /* A created job that can never start (its image pull failed) fails. */
    submit(&v, "kc", one, 1, 0, 0, id, &e);
    CHECK_INT(jr_sched_fail(v.s, "kc", "image pull failed", &e), 0);
    jr_store_job_get(v.st, "kc", copy_state, &b, NULL);
    CHECK_STR(b.state, "failed");
    CHECK_STR(b.error, "image pull failed");
    submit(&v, "kf", three, 3, 0, 0, id, &e);
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

/* ---- deleting a job whose tasks run ---- */

static int count_rows(void *arg, const struct jr_job_rec *r)
{
    (void)r;
    ++*(int *)arg;
    return 0;
}

/* Jobs marked deleting, jobs listed, and jobs counted for the owner. */
static void visible(struct env *v, int *deleting, int *listed, int64_t *counted)
{
    struct jr_job_filter f;
    struct jr_job_count c;

    *deleting = *listed = 0;
    jr_store_jobs_deleting(v->st, count_rows, deleting, NULL);
    memset(&f, 0, sizeof f);
    jr_store_jobs_list(v->st, &f, count_rows, listed, NULL);
    memset(&c, 0, sizeof c);
    c.owner = "tester";
    jr_store_jobs_count_where(v->st, &c, counted, NULL);
}

/* The last event of a job, as "type:state". */
struct last_event {
    const char *job;
    char text[64];
};

static int see_last(void *arg, const struct jr_event_rec *ev)
{
    struct last_event *l = arg;

    if (strcmp(ev->job, l->job) == 0)
        snprintf(l->text, sizeof l->text, "%s:%s", ev->type, ev->state ? ev->state : "");
    return 0;
}

static const char *last_event(struct env *v, const char *job)
{
    static struct last_event l;

    l.job = job;
    l.text[0] = 0;
    jr_store_events_after(v->st, 0, -1, see_last, &l, NULL);
    return l.text;
}

static int dir_exists(struct env *v, const char *job)
{
    char path[700];
    struct stat sb;

    snprintf(path, sizeof path, "%s/jobs/%s", v->data, job);
    return stat(path, &sb) == 0;
}

TEST(force_delete_of_a_running_job)
{
    struct env v;
    struct jr_err e = { 0, "" };
    char id[80];
    int deleting, listed;
    int64_t counted = -1, seq = 0, running, ready, jobs;
    struct tdef two[] = {
        { "a", "echo started; exec sleep 30", { 0 }, 0, 0, 0, 0, 0, 0, 0 },
        { "b", "true", { "a" }, 0, 0, 0, 0, 0, 0, 0 },
    };
    struct tdef one[] = { { "a", "true", { 0 }, 0, 0, 0, 0, 0, 0, 0 } };
    struct tdef big[] = { { "a", "true", { 0 }, 0, 0, 0, 2000, 0, 0, 0 } };
    struct tdef all_cpu[] = { { "a", "echo started; exec sleep 30", { 0 }, 0, 0, 0, 2000,
                                0, 0, 0 } };

    if (env_open(&v, small))
        return;
    submit(&v, "fd", two, 2, 0, 0, id, &e);
    jr_store_job_get(v.st, "fd", copy_seq, &seq, NULL);
    jr_sched_start(v.s, "fd", NULL, NULL, &e);
    CHECK(wait_started(&v, "fd", 5000));
    CHECK_INT(jr_sched_delete(v.s, "fd", 0, &e), JR_E_LOCKED);
    CHECK_INT(jr_sched_delete(v.s, "fd", 1, &e), 0);
    /* gone for readers at once, its "deleted" event written now */
    CHECK_STR(job_state(&v, "fd"), "(none)");
    visible(&v, &deleting, &listed, &counted);
    CHECK_INT(deleting, 1);
    CHECK_INT(listed, 0);
    CHECK_INT(counted, 0);
    CHECK_INT(jr_store_jobs_count(v.st), 0);
    CHECK_STR(last_event(&v, "fd"), "deleted:");
    CHECK_INT(jr_sched_delete(v.s, "fd", 1, &e), JR_E_NOT_FOUND);
    CHECK_INT(jr_sched_cancel(v.s, "fd", NULL, &e), JR_E_NOT_FOUND);
    /* its id is taken until its task has ended (the loop has not run: its
     * process cannot have been reaped yet) */
    jr_sched_stats(v.s, &running, &ready, &jobs);
    CHECK_INT(running, 1);
    CHECK_INT(submit(&v, "fd", one, 1, 0, 0, id, &e), JR_E_CONFLICT);
    CHECK(strstr(e.msg, "being deleted") != NULL);
    CHECK(dir_exists(&v, "fd"));
    drain(&v, 5000);
    /* then its rows and files are removed, and nothing more was said */
    visible(&v, &deleting, &listed, &counted);
    CHECK_INT(deleting, 0);
    CHECK_INT(jr_store_tasks_count(v.st, seq), 0);
    CHECK(!dir_exists(&v, "fd"));
    CHECK_STR(last_event(&v, "fd"), "deleted:");
    CHECK_INT(submit(&v, "fd", one, 1, 0, 0, id, &e), 0);
    CHECK_STR(job_state(&v, "fd"), "created");
    /* a queued job (nothing runs: the node's cpu is taken) goes at once */
    submit(&v, "hold", all_cpu, 1, 0, 0, id, &e);
    jr_sched_start(v.s, "hold", NULL, NULL, &e);
    CHECK(wait_started(&v, "hold", 5000));
    submit(&v, "q", big, 1, 0, 0, id, &e);
    jr_sched_start(v.s, "q", NULL, NULL, &e);
    CHECK_STR(job_state(&v, "q"), "queued");
    CHECK_INT(jr_sched_delete(v.s, "q", 1, &e), 0);
    visible(&v, &deleting, &listed, &counted);
    CHECK_INT(deleting, 0);
    CHECK_INT(listed, 2);
    CHECK_INT(counted, 2);
    CHECK_INT(submit(&v, "q", one, 1, 0, 0, id, &e), 0);
    /* force on a finished job deletes as without it */
    CHECK_INT(jr_sched_delete(v.s, "fd", 1, &e), 0);
    CHECK_STR(job_state(&v, "fd"), "(none)");
    jr_sched_cancel(v.s, "hold", NULL, &e);
    drain(&v, 5000);
    env_close(&v);
}

/* A daemon that stopped before the deleted job's tasks ended: the next
 * one kills what is left and finishes the removal at start-up. */
TEST(force_delete_finished_after_restart)
{
    struct env v;
    struct jr_err e = { 0, "" };
    char id[80], data[512];
    int deleting, listed;
    int64_t counted = -1, seq = 0, seq2 = 0;
    struct tdef stubborn[] = {
        { "a", "trap '' TERM; echo started; sleep 30", { 0 }, 0, 0, 0, 0, 0, 0, 0 },
    };
    struct tdef one[] = { { "a", "true", { 0 }, 0, 0, 0, 0, 0, 0, 0 } };
    struct jr_task_rec r;
    pid_t orphan;
    int status = 0;

    if (env_open(&v, small))
        return;
    snprintf(data, sizeof data, "%s", v.data);
    /* 1: this daemon stops within the kill grace, the task still alive */
    submit(&v, "st", stubborn, 1, 0, 0, id, &e);
    jr_store_job_get(v.st, "st", copy_seq, &seq, NULL);
    jr_sched_start(v.s, "st", NULL, NULL, &e);
    CHECK(wait_started(&v, "st", 5000));
    CHECK_INT(jr_sched_delete(v.s, "st", 1, &e), 0);
    CHECK(dir_exists(&v, "st"));
    /* 2: a task a crashed daemon left running under a deleted job */
    submit(&v, "orph", one, 1, 0, 0, id, &e);
    jr_store_job_get(v.st, "orph", copy_seq, &seq2, NULL);
    orphan = fork();
    if (orphan == 0) {
        setsid();
        execl("/bin/sleep", "sleep", "30", (char *)NULL);
        _exit(127);
    }
    jr_store_job_mark_deleting(v.st, seq2, &e);
    memset(&r, 0, sizeof r);
    r.job_seq = seq2;
    r.state = "running";
    r.attempt = 1;
    r.exit_code = -1;
    r.started_at = jr_store_now_ms();
    r.pid = orphan;
    r.pid_start = jr_exec_pid_start(orphan);
    jr_store_task_set_state(v.st, &r, &e);
    jr_store_commit(v.st);
    env_close(&v);
    /* the next daemon */
    uv_loop_init(&v.loop);
    CHECK_INT(env_open_at(&v, data, small), 0);
    CHECK_INT(waitpid(orphan, &status, WNOHANG), orphan);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    visible(&v, &deleting, &listed, &counted);
    CHECK_INT(deleting, 0);
    CHECK_INT(listed, 0);
    CHECK_INT(jr_store_tasks_count(v.st, seq), 0);
    CHECK_INT(jr_store_tasks_count(v.st, seq2), 0);
    CHECK(!dir_exists(&v, "st"));
    CHECK_INT(submit(&v, "st", one, 1, 0, 0, id, &e), 0);
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
    RUN(force_delete_of_a_running_job);
    RUN(force_delete_finished_after_restart);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    rc = system(cmd);
    (void)rc;
    return UNIT_DONE();
}
