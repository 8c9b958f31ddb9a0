/* Unit tests of why tasks wait, as the scheduler decides it where it
 * dispatches (runtime/sched/run.c, read back through waiting.c): Dependency,
 * Resources naming each resource short (cpu, memory, gpu, max_tasks),
 * MaxParallelism, Priority behind the job that waits first, the job's own
 * reason, the counts the metrics sample, and the reasons cleared once the
 * task starts. Real processes (/bin/sh) on a real loop, each wait bounded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics.h"
#include "sched/sched.h"
#include "sched_env.h"
#include "unit.h"

#define MAXT 8

/* What jr_sched_waiting reported for one job: [0] the job, [1 + idx] tasks. */
struct seen {
    int found;
    struct {
        int reason;
        unsigned resources;
        char behind[80];
        char deps[128];
    } w[1 + MAXT];
};

static void collect(void *arg, int idx, const struct jr_wait *w)
{
    struct seen *s = arg;
    int k = idx + 1;
    size_t off = 0;

    if (k < 0 || k > MAXT)
        return;
    s->w[k].reason = w->reason;
    s->w[k].resources = w->resources;
    snprintf(s->w[k].behind, sizeof s->w[k].behind, "%s", w->behind ? w->behind : "");
    s->w[k].deps[0] = 0;
    for (int i = 0; i < w->ndeps; i++)
        off += (size_t)snprintf(s->w[k].deps + off, sizeof s->w[k].deps - off, "%s%s",
                                i ? "," : "", w->deps[i]);
}

static struct seen waiting(struct env *v, const char *id)
{
    struct seen s;

    memset(&s, 0, sizeof s);
    s.found = jr_sched_waiting(v->s, id, collect, &s);
    return s;
}

static int start(struct env *v, const char *id, const struct tdef *t, size_t n, int64_t prio,
                 int64_t max_par)
{
    struct jr_err e = { 0, "" };
    char out[80];

    if (submit(v, id, t, n, prio, max_par, out, &e) || jr_sched_start(v->s, id, NULL, NULL, &e)) {
        fprintf(stderr, "    %s: %s\n", id, e.msg);
        return -1;
    }
    return 0;
}

#define MiB (1LL << 20)

TEST(each_reason_from_the_dispatch)
{
    struct env v;
    struct jr_node node = { 2000, 1024 * MiB, 1, 8 };
    struct tdef hold[] = { { "hold", "sleep 30", { 0 }, 0, 0, 0, 1000, 0, 1, 512 * MiB } };
    struct tdef dep[] = { { "a", "sleep 30", { 0 }, 0, 0, 0, 0, 0, 0, 0 },
                          { "b", "true", { "a" }, 0, 0, 0, 0, 0, 0, 0 } };
    struct tdef par[] = { { "x", "sleep 30", { 0 }, 0, 0, 0, 0, 0, 0, 0 },
                          { "y", "sleep 30", { 0 }, 0, 0, 0, 0, 0, 0, 0 } };
    struct tdef cpu[] = { { "c", "true", { 0 }, 0, 0, 0, 1500, 0, 0, 0 } };
    struct tdef gpu[] = { { "g", "true", { 0 }, 0, 0, 0, 0, 0, 1, 0 } };
    struct tdef mem[] = { { "m", "true", { 0 }, 0, 0, 0, 0, 0, 0, 768 * MiB } };
    struct tdef both[] = { { "cm", "true", { 0 }, 0, 0, 0, 1500, 0, 0, 768 * MiB } };
    struct tdef low[] = { { "p", "true", { 0 }, 0, 0, 0, 1500, 0, 0, 0 } };
    struct jr_node used;
    int64_t counts[JR_WAIT_NREASONS];
    struct seen s;
    struct jr_err e = { 0, "" };

    if (env_open(&v, node))
        return;
    CHECK_INT(start(&v, "hold", hold, 1, 0, 0), 0);
    CHECK(wait_task(&v, "hold", "hold", "running", 5000));
    CHECK_INT(start(&v, "dep", dep, 2, 0, 0), 0);
    CHECK_INT(start(&v, "par", par, 2, 0, 1), 0);
    CHECK_INT(start(&v, "cpu", cpu, 1, 10, 0), 0);
    CHECK_INT(start(&v, "gpu", gpu, 1, 5, 0), 0);
    CHECK_INT(start(&v, "mem", mem, 1, 5, 0), 0);
    CHECK_INT(start(&v, "both", both, 1, 5, 0), 0);
    CHECK_INT(start(&v, "low", low, 1, 0, 0), 0);

    /* A running task and its job say nothing; b waits for a. */
    s = waiting(&v, "dep");
    CHECK_INT(s.found, 1);
    CHECK_INT(s.w[0].reason, JR_WAIT_NONE);
    CHECK_INT(s.w[1].reason, JR_WAIT_NONE);
    CHECK_INT(s.w[2].reason, JR_WAIT_DEPENDENCY);
    CHECK_STR(s.w[2].deps, "a");
    s = waiting(&v, "par");
    CHECK_INT(s.w[2].reason, JR_WAIT_MAX_PARALLELISM);
    /* The first job short of cpu waits for it; its job as a whole too. */
    s = waiting(&v, "cpu");
    CHECK_INT(s.w[0].reason, JR_WAIT_RESOURCES);
    CHECK_INT(s.w[0].resources, JR_WAIT_CPU);
    CHECK_INT(s.w[1].reason, JR_WAIT_RESOURCES);
    s = waiting(&v, "gpu");
    CHECK_INT(s.w[1].reason, JR_WAIT_RESOURCES);
    CHECK_INT(s.w[1].resources, JR_WAIT_GPU);
    s = waiting(&v, "mem");
    CHECK_INT(s.w[1].reason, JR_WAIT_RESOURCES);
    CHECK_INT(s.w[1].resources, JR_WAIT_MEMORY);
    /* Short of cpu (which "cpu" waits for first) and memory (which "mem",
     * submitted before it at the same priority, waits for first). */
    s = waiting(&v, "both");
    CHECK_INT(s.w[1].reason, JR_WAIT_PRIORITY);
    CHECK_STR(s.w[1].behind, "cpu");
    CHECK_INT(s.w[1].resources, JR_WAIT_CPU);
    s = waiting(&v, "low");
    CHECK_INT(s.w[1].reason, JR_WAIT_PRIORITY);
    CHECK_STR(s.w[1].behind, "cpu");
    /* Not in memory: a job never started. */
    CHECK_INT(waiting(&v, "nope").found, 0);

    jr_sched_usage(v.s, &used, counts);
    CHECK_INT(used.cpu, 1000);
    CHECK_INT(used.gpu, 1);
    CHECK_INT(used.max_tasks, 3);
    CHECK_INT(counts[JR_WAIT_DEPENDENCY], 1);
    CHECK_INT(counts[JR_WAIT_MAX_PARALLELISM], 1);
    CHECK_INT(counts[JR_WAIT_RESOURCES], 3);
    CHECK_INT(counts[JR_WAIT_PRIORITY], 2);

    /* Once the holder is gone, the cpu job starts and says nothing more. */
    CHECK_INT(jr_sched_cancel(v.s, "hold", NULL, &e), 0);
    CHECK(wait_state(&v, "cpu", "succeeded", 10000));
    CHECK_INT(waiting(&v, "cpu").found, 0);
    env_close(&v);
}

TEST(task_slots_then_priority)
{
    struct env v;
    struct jr_node node = { 2000, 1024 * MiB, 0, 1 };
    struct tdef one[] = { { "t", "sleep 30", { 0 }, 0, 0, 0, 0, 0, 0, 0 } };
    struct seen s;

    if (env_open(&v, node))
        return;
    CHECK_INT(start(&v, "first", one, 1, 0, 0), 0);
    CHECK(wait_task(&v, "first", "t", "running", 5000));
    CHECK_INT(start(&v, "low", one, 1, 0, 0), 0);
    CHECK_INT(start(&v, "high", one, 1, 9, 0), 0);
    s = waiting(&v, "high");
    CHECK_INT(s.w[0].reason, JR_WAIT_RESOURCES);
    CHECK_INT(s.w[0].resources, JR_WAIT_MAX_TASKS);
    s = waiting(&v, "low");
    CHECK_INT(s.w[0].reason, JR_WAIT_PRIORITY);
    CHECK_STR(s.w[0].behind, "high");
    CHECK_INT(s.w[1].resources, JR_WAIT_MAX_TASKS);
    env_close(&v);
}

/* The scheduler counts what it does into the metrics it was given. */
TEST(scheduler_counts)
{
    struct env v;
    struct jr_metrics m;
    struct jr_err e = { 0, "" };
    struct jr_executor ex;
    struct jr_sched_opts o;
    char path[600], id[80];
    struct tdef ok[] = { { "a", "true", { 0 }, 0, 0, 0, 0, 0, 0, 0 },
                         { "b", "exit 3", { 0 }, 0, 1, 1, 0, 0, 0, 0 } };

    jr_metrics_init(&m);
    uv_loop_init(&v.loop);
    snprintf(v.data, sizeof v.data, "%s/metrics", dir);
    mkdir(v.data, 0755);
    snprintf(path, sizeof path, "%s/jobrt.db", v.data);
    if (jr_store_open(path, &v.st, &e))
        return;
    jr_store_attach(v.st, &v.loop);
    jr_store_set_metrics(v.st, &m);
    jr_exec_spawn_open(&v.loop, &ex, &e);
    memset(&o, 0, sizeof o);
    o.data_dir = v.data;
    o.node = small;
    o.metrics = &m;
    if (jr_sched_open(&v.loop, v.st, ex, &o, &v.s, &e))
        return;
    CHECK_INT(submit(&v, "j", ok, 2, 0, 0, id, &e), 0);
    CHECK_INT(jr_sched_start(v.s, "j", NULL, NULL, &e), 0);
    CHECK(wait_state(&v, "j", "succeeded", 5000));
    CHECK_INT(submit(&v, "r", ok, 1, 0, 0, id, &e), 0);
    CHECK_INT(jr_sched_start(v.s, "r", NULL, "not here", &e), 0);
    env_close(&v);

    uint64_t sub = 0, rej = 0, exited_ok = 0, retried = 0, failed_tol = 0, queued = 0;
    for (struct jr_metrics_entry *x = m.counters[JR_M_SUBMISSIONS]; x; x = x->next)
        sub += strcmp(x->v[0], "test") == 0 ? x->n : 0;
    for (struct jr_metrics_entry *x = m.counters[JR_M_REJECTIONS]; x; x = x->next)
        rej += strcmp(x->v[0], "test") == 0 && strcmp(x->v[1], "policy") == 0 ? x->n : 0;
    for (struct jr_metrics_entry *x = m.counters[JR_M_TASK_OUTCOMES]; x; x = x->next) {
        exited_ok += strcmp(x->v[0], "exited") == 0 && strcmp(x->v[1], "succeeded") == 0 ? x->n : 0;
        retried += strcmp(x->v[1], "retried") == 0 ? x->n : 0;
        failed_tol += strcmp(x->v[0], "exited") == 0 && strcmp(x->v[1], "failed") == 0 ? x->n : 0;
    }
    for (struct jr_metrics_entry *x = m.counters[JR_M_TRANSITIONS]; x; x = x->next)
        queued += strcmp(x->v[0], "queued") == 0 ? x->n : 0;
    CHECK_INT(sub, 2);
    CHECK_INT(rej, 1);
    CHECK_INT(exited_ok, 1);
    CHECK_INT(retried, 1);    /* b fails once, is retried, fails for good (tolerably) */
    CHECK_INT(failed_tol, 1);
    CHECK_INT(queued, 1);
    CHECK_INT(m.hists[JR_H_RUN_TIME].count, 3);
    CHECK_INT(m.hists[JR_H_QUEUE_WAIT].count, 3);
    CHECK_INT(m.hists[JR_H_TASK_START].count, 3);
    CHECK(m.hists[JR_H_COMMIT_TIME].count > 0);
    CHECK(m.hists[JR_H_COMMIT_WRITES].sum >= 10);
    jr_metrics_free(&m);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/jobrt-test-waiting-%d", (int)getpid());
    mkdir(dir, 0700);
    RUN(each_reason_from_the_dispatch);
    RUN(task_slots_then_priority);
    RUN(scheduler_counts);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return UNIT_DONE();
}
