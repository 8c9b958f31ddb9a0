/* The Slurm executor's records, submissions and attach, run on a real
 * loop against stand-in Slurm commands (a shell script answering as
 * sbatch, squeue, sacct and scancel from files the test writes, and
 * noting each call): start returns the record and touches no file; go
 * writes the run folder and submits under the record's names; attach
 * refuses records it cannot use and finds the jobs of the others by name. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exec/slurm.h"
#include "unit.h"

static char tmp[256];

struct ended {
    int n;
    struct jr_exec_result r[8];
    int order[8];
};

struct slot {
    struct ended *e;
    int k;
};

static void on_log(void *arg, int stream, const char *line, size_t len)
{
    (void)arg, (void)stream, (void)line, (void)len;
}

static void on_done(void *arg, const struct jr_exec_result *r)
{
    struct slot *s = arg;

    s->e->r[s->k] = *r;
    s->e->order[s->e->n++] = s->k;
}

static const struct jr_exec_cbs cbs = { .log = on_log, .progress = NULL, .done = on_done };

static void on_guard(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

/* Runs the loop until *flag reaches want, at most 10 s. */
static void run_until(uv_loop_t *loop, int *flag, int want)
{
    uv_timer_t guard;
    int expired = 0;

    uv_timer_init(loop, &guard);
    guard.data = &expired;
    uv_timer_start(&guard, on_guard, 10000, 0);
    while (*flag < want && !expired)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    CHECK(*flag >= want);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    if (!f) {
        UNIT_FAIL("cannot write %s", path);
        return;
    }
    fputs(text, f);
    fclose(f);
}

static char *read_text(const char *path)
{
    static char buf[16384];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;

    if (f)
        fclose(f);
    buf[n] = 0;
    return buf;
}

/* bin/ holds the stand-in under each command's name; answers/<cmd>[.names]
 * is what it prints; calls gets one line per call. */
static void stand_in(const char *dir)
{
    static const char *const cmds[] = { "sbatch", "squeue", "sacct", "scancel", NULL };
    char path[512], script[2048], link[512];

    snprintf(path, sizeof path, "%s/bin", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/answers", dir);
    mkdir(path, 0755);
    snprintf(script, sizeof script,
             "#!/bin/sh\nd='%s'\nc=$(basename \"$0\")\necho \"$c $*\" >>\"$d/calls\"\n"
             "case \"$c $*\" in\n*--name=*) f=\"$d/answers/$c.names\" ;;\n"
             "*) f=\"$d/answers/$c\" ;;\nesac\n[ -f \"$f\" ] && cat \"$f\"\nexit 0\n", dir);
    snprintf(path, sizeof path, "%s/bin/standin", dir);
    write_text(path, script);
    chmod(path, 0755);
    for (int i = 0; cmds[i]; i++) {
        snprintf(link, sizeof link, "%s/bin/%s", dir, cmds[i]);
        CHECK_INT(symlink("standin", link), 0);
    }
}

static void answer(const char *dir, const char *file, const char *text)
{
    char path[512];

    snprintf(path, sizeof path, "%s/answers/%s", dir, file);
    write_text(path, text);
}

static int open_exec(uv_loop_t *loop, const char *dir, int batch_max, struct jr_executor *x)
{
    struct jr_exec_slurm_opts o;
    struct jr_err e = { 0, "" };
    char bin[512];
    int rc;

    snprintf(bin, sizeof bin, "%s/bin", dir);
    memset(&o, 0, sizeof o);
    o.data_dir = dir;
    o.bin = bin;
    o.poll_ms = 20;
    o.batch_max = batch_max;
    o.batch_width = 2;
    o.batch_window_ms = 30;
    o.batch_max_cpu = 1000;
    o.batch_max_memory = 1 << 30;
    rc = jr_exec_slurm_open(loop, &o, x, &e);
    if (rc)
        UNIT_FAIL("open: %s", e.msg);
    return rc;
}

static void close_exec(uv_loop_t *loop, struct jr_executor *x)
{
    x->ops->close(x->self);
    for (int i = 0; i < 100 && uv_run(loop, UV_RUN_NOWAIT); i++)
        usleep(10000);
    CHECK_INT(uv_loop_close(loop), 0);
}

static char *const argv_true[] = { "true", NULL };
static char *const no_env[] = { NULL };

static int start(struct jr_executor *x, const char *dir, const char *task, int64_t cpu,
                 struct slot *s, struct jr_exec_proc **p, char *record)
{
    struct jr_exec_spec spec;
    struct jr_err e = { 0, "" };
    char task_dir[512];
    int64_t pid, pid_start;
    int rc;

    snprintf(task_dir, sizeof task_dir, "%s/jobs/j1/%s", dir, task);
    memset(&spec, 0, sizeof spec);
    spec.argv = argv_true;
    spec.env = no_env;
    spec.cwd = task_dir;
    spec.job_id = "j1";
    spec.task = task;
    spec.cpu = cpu;
    spec.task_dir = task_dir;
    spec.attempt = 1;
    rc = x->ops->start(x->self, &spec, &cbs, s, p, &pid, &pid_start, record, &e);
    if (rc)
        UNIT_FAIL("start %s: %s", task, e.msg);
    return rc;
}

TEST(start_returns_the_record_and_touches_no_file)
{
    uv_loop_t loop;
    struct jr_executor x;
    struct ended ended = { 0 };
    struct slot s[4] = { { &ended, 0 }, { &ended, 1 }, { &ended, 2 }, { &ended, 3 } };
    struct jr_exec_proc *p[4];
    struct sl_record r[4];
    char rec[4][JR_EXEC_RECORD_SIZE], dir[300], path[600];
    struct stat st;

    snprintf(dir, sizeof dir, "%s/start", tmp);
    mkdir(dir, 0755);
    stand_in(dir);
    uv_loop_init(&loop);
    if (open_exec(&loop, dir, 2, &x))
        return;
    /* Two small ones share a batch (max 2), a third starts the next; a
     * big one is never batched. */
    CHECK_INT(start(&x, dir, "a", 250, &s[0], &p[0], rec[0]), 0);
    CHECK_INT(start(&x, dir, "b", 0, &s[1], &p[1], rec[1]), 0);
    CHECK_INT(start(&x, dir, "c", 500, &s[2], &p[2], rec[2]), 0);
    CHECK_INT(start(&x, dir, "big", 4000, &s[3], &p[3], rec[3]), 0);
    for (int i = 0; i < 4; i++)
        CHECK_INT(sl_record_parse(rec[i], &r[i]), 0);
    CHECK(strncmp(r[0].name, "jobrt-a-j1-1-", 13) == 0);
    CHECK(strncmp(r[3].name, "jobrt-big-j1-1-", 15) == 0);
    CHECK(strcmp(r[0].name, r[1].name) != 0);
    CHECK(strncmp(r[0].batch, "jobrt-batch-", 12) == 0);
    CHECK_STR(r[0].batch, r[1].batch);
    CHECK(strncmp(r[2].batch, "jobrt-batch-", 12) == 0);
    CHECK(strcmp(r[2].batch, r[0].batch) != 0);
    CHECK_STR(r[3].batch, "");
    snprintf(path, sizeof path, "%s/jobs/j1/a/run", dir);
    CHECK_STR(r[0].dir, path);
    CHECK_STR(r[0].job, "j1");
    CHECK_INT(r[0].attempt, 1);
    /* Nothing on disk, no Slurm command before go. */
    snprintf(path, sizeof path, "%s/jobs", dir);
    CHECK(stat(path, &st) != 0);
    snprintf(path, sizeof path, "%s/calls", dir);
    CHECK(stat(path, &st) != 0);
    for (int i = 0; i < 4; i++)
        x.ops->kill(p[i], SIGKILL);
    run_until(&loop, &ended.n, 4);
    for (int i = 0; i < 4; i++)
        CHECK_INT(ended.r[i].outcome, JR_OUT_CANCELED);
    CHECK(stat(path, &st) != 0);
    close_exec(&loop, &x);
}

TEST(go_writes_the_run_folder_and_submits_under_the_records_names)
{
    uv_loop_t loop;
    struct jr_executor x;
    struct ended ended = { 0 };
    struct slot s[3] = { { &ended, 0 }, { &ended, 1 }, { &ended, 2 } };
    struct jr_exec_proc *p[3];
    struct sl_record r[3];
    char rec[3][JR_EXEC_RECORD_SIZE], dir[300], path[600], want[300], *calls;

    snprintf(dir, sizeof dir, "%s/go", tmp);
    mkdir(dir, 0755);
    stand_in(dir);
    answer(dir, "sbatch", "41\n");
    answer(dir, "squeue", "41|RUNNING|None|0|n1|\n");
    uv_loop_init(&loop);
    if (open_exec(&loop, dir, 4, &x))
        return;
    for (int i = 0; i < 3; i++) {
        CHECK_INT(start(&x, dir, i == 2 ? "big" : i ? "b" : "a", i == 2 ? 4000 : 100, &s[i],
                        &p[i], rec[i]), 0);
        CHECK_INT(sl_record_parse(rec[i], &r[i]), 0);
    }
    /* An earlier attempt's files go before the new one runs. */
    snprintf(path, sizeof path, "%s/jobs", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/jobs/j1", dir);
    mkdir(path, 0755);
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/jobs/j1/%s", dir, i == 2 ? "big" : i ? "b" : "a");
        mkdir(path, 0755);
    }
    snprintf(path, sizeof path, "%s/jobs/j1/a/run", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/jobs/j1/a/run/outcome", dir);
    write_text(path, "old\n");
    for (int i = 0; i < 3; i++)
        x.ops->go(p[i]);
    /* The big one at once, the two small ones as one batch after the
     * window: two sbatch calls. */
    for (int i = 0; i < 200; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        snprintf(path, sizeof path, "%s/calls", dir);
        calls = read_text(path);
        if (strstr(calls, "sbatch") && strstr(strstr(calls, "sbatch") + 1, "sbatch"))
            break;
        usleep(10000);
    }
    calls = read_text(path);
    snprintf(want, sizeof want, "--job-name=%s ", r[2].name);
    CHECK(strstr(calls, want) != NULL);
    snprintf(want, sizeof want, "--job-name=%s ", r[0].batch);
    CHECK(strstr(calls, want) != NULL);
    snprintf(want, sizeof want, "--job-name=%s ", r[0].name);
    CHECK(strstr(calls, want) == NULL);
    snprintf(path, sizeof path, "%s/jobs/j1/a/run/task.sh", dir);
    CHECK(access(path, R_OK) == 0);
    snprintf(path, sizeof path, "%s/jobs/j1/a/run/outcome", dir);
    CHECK(access(path, F_OK) != 0);
    snprintf(path, sizeof path, "%s/slurm/%s/batch.sh", dir, r[0].batch);
    CHECK(strstr(read_text(path), "/jobs/j1/b/run") != NULL);
    /* Each ends with its outcome file once Slurm says the job ended. */
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/jobs/j1/%s/run/outcome", dir,
                 i == 2 ? "big" : i ? "b" : "a");
        write_text(path, i == 1 ? "{\"outcome\":\"exited\",\"exit_code\":3}\n"
                                : "{\"outcome\":\"exited\",\"exit_code\":0}\n");
    }
    answer(dir, "squeue", "41|COMPLETED|None|0|n1|\n");
    run_until(&loop, &ended.n, 3);
    CHECK_INT(ended.r[0].exit_code, 0);
    CHECK_INT(ended.r[1].exit_code, 3);
    CHECK_INT(ended.r[2].outcome, JR_OUT_EXITED);
    /* The batch's folder goes with it. */
    uv_run(&loop, UV_RUN_NOWAIT);
    snprintf(path, sizeof path, "%s/slurm/%s", dir, r[0].batch);
    CHECK(access(path, F_OK) != 0);
    close_exec(&loop, &x);
}

static int attach(struct jr_executor *x, const char *record, int64_t attempt, struct slot *s,
                  struct jr_exec_proc **p, struct jr_err *e)
{
    struct jr_exec_attach a;

    memset(&a, 0, sizeof a);
    a.job_id = "j1";
    a.task = "t";
    a.task_dir = "/nowhere";
    a.attempt = attempt;
    a.record = record;
    return x->ops->attach(x->self, &a, &cbs, s, p, e);
}

TEST(attach_finds_jobs_by_name)
{
    uv_loop_t loop;
    struct jr_executor x;
    struct ended ended = { 0 };
    struct slot s[4] = { { &ended, 0 }, { &ended, 1 }, { &ended, 2 }, { &ended, 3 } };
    struct jr_exec_proc *p[4];
    struct jr_err e = { 0, "" };
    char dir[300], rec[4][JR_EXEC_RECORD_SIZE], path[600], answer_text[600], *calls;
    static const char *const names[4][2] = {
        { "jobrt-a-j1-1-00000001", "" },                       /* alone, id 51 */
        { "jobrt-b-j1-1-00000002", "jobrt-batch-x1" },          /* in batch 52 */
        { "jobrt-c-j1-1-00000003", "jobrt-batch-x1" },          /* in batch 52 */
        { "jobrt-d-j1-1-00000004", "jobrt-batch-x2" },          /* never sent */
    };

    snprintf(dir, sizeof dir, "%s/attach", tmp);
    mkdir(dir, 0755);
    stand_in(dir);
    uv_loop_init(&loop);
    if (open_exec(&loop, dir, 4, &x))
        return;
    /* Records it cannot use. */
    CHECK_INT(attach(&x, NULL, 1, &s[0], &p[0], &e), JR_E_NOT_FOUND);
    CHECK_INT(attach(&x, "jobrt-attempt 1\nattempt 1\n", 1, &s[0], &p[0], &e), JR_E_NOT_FOUND);
    CHECK_INT(attach(&x, "jobrt-slurm 1\nattempt 2\nname n\ndir /d\n", 1, &s[0], &p[0], &e),
              JR_E_NOT_FOUND);
    CHECK(strstr(e.msg, "attempt 2, not 1") != NULL);
    CHECK_INT(attach(&x, "jobrt-slurm 7\nattempt 1\nname n\ndir /d\n", 1, &s[0], &p[0], &e),
              JR_E_NOT_FOUND);
    CHECK(strstr(e.msg, "format 7, newer") != NULL);
    /* Four that ran, or might have. */
    for (int i = 0; i < 4; i++) {
        char run[400];
        snprintf(run, sizeof run, "%s/run%d", dir, i);
        mkdir(run, 0755);
        snprintf(rec[i], sizeof rec[i], "jobrt-slurm 1\njob j1\ntask t%d\nattempt 1\nname %s\n"
                 "batch %s\ndir %s\n", i, names[i][0], names[i][1][0] ? names[i][1] : "-", run);
        snprintf(path, sizeof path, "%s/stdout", run);
        write_text(path, "one\ntwo\n");
        snprintf(path, sizeof path, "%s/outcome", run);
        write_text(path, i == 2 ? "{\"outcome\":\"exited\",\"exit_code\":5}\n"
                                : "{\"outcome\":\"exited\",\"exit_code\":0}\n");
        CHECK_INT(attach(&x, rec[i], 1, &s[i], &p[i], &e), JR_OK);
    }
    snprintf(answer_text, sizeof answer_text, "51|%s\n52|jobrt-batch-x1\n", names[0][0]);
    answer(dir, "squeue.names", answer_text);
    answer(dir, "squeue", "51|COMPLETED|None|0|n1|\n52|COMPLETED|None|0|n1|\n");
    run_until(&loop, &ended.n, 4);
    /* The one neither name reached never ran; its outcome file is an
     * earlier attempt's and is not read. */
    CHECK_INT(ended.order[0], 3);
    CHECK_INT(ended.r[3].outcome, JR_OUT_CANCELED);
    CHECK(strstr(ended.r[3].message, "never started") != NULL);
    CHECK_INT(ended.r[0].exit_code, 0);
    CHECK_INT(ended.r[1].exit_code, 0);
    CHECK_INT(ended.r[2].exit_code, 5);
    /* One lookup by all the names, sacct for what squeue did not know,
     * then states by id, one job per name. */
    snprintf(path, sizeof path, "%s/calls", dir);
    calls = read_text(path);
    CHECK(strstr(calls, "squeue -h -t all --name=") != NULL);
    for (int i = 0; i < 4; i++)
        CHECK(strstr(calls, names[i][0]) != NULL);
    CHECK(strstr(calls, ",jobrt-batch-x1,") != NULL);
    CHECK(strstr(calls, "sacct -P -n -X --name=jobrt-d-j1-1-00000004,jobrt-batch-x2 ") != NULL);
    CHECK(strstr(calls, "-j 52,51 ") != NULL || strstr(calls, "-j 51,52 ") != NULL);
    close_exec(&loop, &x);
}

int main(void)
{
    char cmd[300];

    signal(SIGPIPE, SIG_IGN);
    snprintf(tmp, sizeof tmp, "/tmp/jobrt-test-slurm-attach-XXXXXX");
    if (!mkdtemp(tmp))
        return 1;
    RUN(start_returns_the_record_and_touches_no_file);
    RUN(go_writes_the_run_folder_and_submits_under_the_records_names);
    RUN(attach_finds_jobs_by_name);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmp);
    return UNIT_DONE();
}
