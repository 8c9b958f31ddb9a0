/* The Slurm executor's text (exec/slurm_text.c): sizes, quoting, what
 * sbatch, squeue and sacct print, outcome mapping, the record; and the
 * generated wrapper and batch scripts run for real with /bin/sh and bash
 * (the batch script against a stand-in srun that runs the step here). */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec/slurm.h"
#include "unit.h"

TEST(sizes_round_up)
{
    CHECK_INT(sl_cpus(0), 1);
    CHECK_INT(sl_cpus(250), 1);
    CHECK_INT(sl_cpus(1000), 1);
    CHECK_INT(sl_cpus(1001), 2);
    CHECK_INT(sl_cpus(2500), 3);
    CHECK_INT(sl_mem_mb(0), 0);
    CHECK_INT(sl_mem_mb(1), 1);
    CHECK_INT(sl_mem_mb(1 << 20), 1);
    CHECK_INT(sl_mem_mb((1 << 20) + 1), 2);
    CHECK_INT(sl_minutes(0), 0);
    CHECK_INT(sl_minutes(1), 1);
    CHECK_INT(sl_minutes(60000), 1);
    CHECK_INT(sl_minutes(60001), 2);
}

TEST(quote_is_one_shell_word)
{
    struct jr_buf b = { 0 };

    CHECK_INT(sl_quote(&b, "it's $HOME `x`"), 0);
    CHECK_INT(jr_buf_add(&b, "", 1), 0);
    CHECK_STR(b.data, "'it'\\''s $HOME `x`'");
    jr_buf_free(&b);
}

TEST(sbatch_job_id)
{
    CHECK_INT(sl_parse_jobid("123\n", 4), 123);
    CHECK_INT(sl_parse_jobid("45;cluster\n", 11), 45);
    CHECK_INT(sl_parse_jobid("", 0), 0);
    CHECK_INT(sl_parse_jobid("sbatch: error\n", 14), 0);
    CHECK_INT(sl_parse_jobid("12x\n", 4), 0);
}

TEST(squeue_lines)
{
    struct sl_state s;
    const char *a = "4|CANCELLED|None|15|localhost|";
    const char *b = "2|FAILED|NonZeroExitCode|768|node[1-2]|";
    const char *c = "7|PENDING|Resources|0||";

    CHECK_INT(sl_parse_squeue(a, strlen(a), &s), 0);
    CHECK_INT(s.id, 4);
    CHECK_STR(s.state, "CANCELLED");
    CHECK_INT(s.signal, 15);
    CHECK_INT(s.exit_code, -1);
    CHECK_STR(s.nodes, "localhost");
    CHECK_INT(sl_parse_squeue(b, strlen(b), &s), 0);
    CHECK_INT(s.exit_code, 3);
    CHECK_INT(s.signal, 0);
    CHECK_STR(s.reason, "NonZeroExitCode");
    CHECK_STR(s.nodes, "node[1-2]");
    CHECK_INT(sl_parse_squeue(c, strlen(c), &s), 0);
    CHECK_STR(s.state, "PENDING");
    CHECK_INT(sl_state_final(s.state), 0);
    CHECK_INT(sl_state_started(s.state), 0);
    CHECK_INT(sl_parse_squeue("JOBID|STATE", 11, &s), -1);
    CHECK_INT(sl_parse_squeue("12.batch|RUNNING|None|0||", 25, &s), -1);
    CHECK_INT(sl_parse_squeue("", 0, &s), -1);
}

TEST(sacct_lines)
{
    struct sl_state s;
    const char *a = "2|FAILED|3:0|localhost";
    const char *b = "4|CANCELLED by 0|0:0|localhost";
    const char *c = "3|FAILED|0:9|";

    CHECK_INT(sl_parse_sacct(a, strlen(a), &s), 0);
    CHECK_INT(s.exit_code, 3);
    CHECK_INT(sl_parse_sacct(b, strlen(b), &s), 0);
    CHECK_STR(s.state, "CANCELLED");
    CHECK_INT(sl_parse_sacct(c, strlen(c), &s), 0);
    CHECK_INT(s.signal, 9);
    CHECK_INT(s.exit_code, -1);
    CHECK_INT(sl_parse_sacct("4.batch|COMPLETED|0:0|x", 23, &s), -1);
}

TEST(states)
{
    const char *final[] = { "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL",
                            "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL", "DEADLINE", NULL };
    const char *live[] = { "PENDING", "RUNNING", "COMPLETING", "SUSPENDED", "CONFIGURING",
                           NULL };

    for (int i = 0; final[i]; i++)
        CHECK_INT(sl_state_final(final[i]), 1);
    for (int i = 0; live[i]; i++)
        CHECK_INT(sl_state_final(live[i]), 0);
    CHECK_INT(sl_state_started("RUNNING"), 1);
    CHECK_INT(sl_state_started("COMPLETING"), 1);
    CHECK_INT(sl_state_started("CONFIGURING"), 0);
    CHECK_INT(sl_state_started(""), 0);
}

static struct sl_state job(const char *state, const char *reason)
{
    struct sl_state s;

    memset(&s, 0, sizeof s);
    s.id = 42;
    s.exit_code = -1;
    snprintf(s.state, sizeof s.state, "%s", state);
    snprintf(s.reason, sizeof s.reason, "%s", reason);
    snprintf(s.nodes, sizeof s.nodes, "n7");
    return s;
}

#define LINE(s) (s), strlen(s)

TEST(outcomes_from_the_wrapper)
{
    struct jr_exec_result r;
    struct sl_state done = job("COMPLETED", "None"), oom = job("OUT_OF_MEMORY", "None");

    sl_outcome(LINE("{\"outcome\":\"exited\",\"exit_code\":0,\"wall_ms\":12}"), &done, 0, &r);
    CHECK_INT(r.outcome, JR_OUT_EXITED);
    CHECK_INT(r.exit_code, 0);
    CHECK_INT(r.wall_ms, 12);
    CHECK_INT(r.ended_ms, 0);
    sl_outcome(LINE("{\"outcome\":\"exited\",\"exit_code\":0,\"ended_ms\":1796380000123}"),
               &done, 0, &r);
    CHECK_INT(r.ended_ms, 1796380000123LL);
    CHECK_STR(r.message, "");
    sl_outcome(LINE("{\"outcome\":\"exited\",\"exit_code\":3}"), &done, 0, &r);
    CHECK_STR(r.message, "exit code 3");
    sl_outcome(LINE("{\"outcome\":\"timeout\",\"wall_ms\":2001}"), &done, 0, &r);
    CHECK_INT(r.outcome, JR_OUT_TIMEOUT);
    sl_outcome(LINE("{\"outcome\":\"signaled\",\"signal\":9}"), &oom, 0, &r);
    CHECK_INT(r.outcome, JR_OUT_OOM);
    CHECK(strstr(r.message, "OUT_OF_MEMORY") != NULL);
    /* A clean exit stays one whatever the allocation did afterwards. */
    sl_outcome(LINE("{\"outcome\":\"exited\",\"exit_code\":0}"), &oom, 0, &r);
    CHECK_INT(r.outcome, JR_OUT_EXITED);
    sl_outcome(LINE("{\"outcome\":\"setup_error\",\"stage\":\"chdir\",\"message\":\"no\"}"),
               &done, 0, &r);
    CHECK_INT(r.outcome, JR_OUT_SETUP_ERROR);
    CHECK_STR(r.message, "setup_error at stage chdir: no");
}

TEST(outcomes_from_slurm)
{
    struct jr_exec_result r;
    struct sl_state to = job("TIMEOUT", "TimeLimit"), oom = job("OUT_OF_MEMORY", "None"),
                    nf = job("NODE_FAIL", "None"), cx = job("CANCELLED", "None"),
                    lf = job("FAILED", "JobLaunchFailure"), pre = job("PREEMPTED", "None"),
                    fail = job("FAILED", "NonZeroExitCode");

    sl_outcome(NULL, 0, &to, 0, &r);
    CHECK_INT(r.outcome, JR_OUT_TIMEOUT);
    CHECK(strstr(r.message, "time limit") != NULL);
    sl_outcome(NULL, 0, &oom, 0, &r);
    CHECK_INT(r.outcome, JR_OUT_OOM);
    sl_outcome(NULL, 0, &nf, 0, &r);
    CHECK_INT(r.outcome, JR_OUT_LOST);
    CHECK_STR(r.message, "Slurm node failure: job 42 ended NODE_FAIL on n7");
    sl_outcome(NULL, 0, &cx, 1, &r);
    CHECK_INT(r.outcome, JR_OUT_CANCELED);
    sl_outcome(NULL, 0, &cx, 0, &r);
    CHECK_INT(r.outcome, JR_OUT_SIGNALED);
    CHECK(strstr(r.message, "without jobrt asking") != NULL);
    sl_outcome(NULL, 0, &lf, 0, &r);
    CHECK_INT(r.outcome, JR_OUT_SETUP_ERROR);
    CHECK(strstr(r.message, "JobLaunchFailure") != NULL);
    sl_outcome(NULL, 0, &pre, 0, &r);
    CHECK_INT(r.outcome, JR_OUT_LOST);
    CHECK_STR(r.message, "Slurm job 42 ended PREEMPTED without the task's outcome");
    sl_outcome(LINE("{\"step_exit\":1}"), &fail, 0, &r);
    CHECK_STR(r.message, "its srun step in Slurm job 42 ended (srun exit 1) without the"
              " task's outcome");
    sl_outcome(NULL, 0, NULL, 0, &r);
    CHECK_INT(r.outcome, JR_OUT_LOST);
    CHECK(strstr(r.message, "no longer known") != NULL);
    /* An asked-for cancel wins over a step that left nothing. */
    sl_outcome(LINE("{\"step_exit\":137}"), &fail, 1, &r);
    CHECK_INT(r.outcome, JR_OUT_CANCELED);
}

TEST(record_round_trip)
{
    struct sl_record r, back;
    char text[1024];
    static const unsigned char rnd[8] = { 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4 };

    memset(&r, 0, sizeof r);
    snprintf(r.job, sizeof r.job, "0190-abc");
    snprintf(r.task, sizeof r.task, "train");
    r.attempt = 3;
    sl_job_name(r.name, sizeof r.name, "train", "0190/abc x", 3, rnd);
    CHECK_STR(r.name, "jobrt-train-0190_abc_x-3-deadbeef");
    sl_job_name(r.batch, sizeof r.batch, NULL, NULL, 0, rnd);
    CHECK_STR(r.batch, "jobrt-batch-deadbeef01020304");
    snprintf(r.dir, sizeof r.dir, "/data/jobs/0190-abc/train/run");
    CHECK(sl_record_format(&r, text, sizeof text) > 0);
    CHECK_INT(sl_record_parse(text, &back), 0);
    CHECK_INT(back.format, SL_RECORD_FORMAT);
    CHECK_STR(back.job, "0190-abc");
    CHECK_STR(back.task, "train");
    CHECK_INT(back.attempt, 3);
    CHECK_STR(back.name, "jobrt-train-0190_abc_x-3-deadbeef");
    CHECK_STR(back.batch, "jobrt-batch-deadbeef01020304");
    CHECK_STR(back.dir, "/data/jobs/0190-abc/train/run");
    /* No batch is "-", read back as none. */
    r.batch[0] = 0;
    CHECK(sl_record_format(&r, text, sizeof text) > 0);
    CHECK(strstr(text, "\nbatch -\n") != NULL);
    CHECK_INT(sl_record_parse(text, &back), 0);
    CHECK_STR(back.batch, "");
    CHECK_INT(sl_record_format(&r, text, 16), -1);
    /* A newer format is refused, its number kept for the message. */
    CHECK_INT(sl_record_parse("jobrt-slurm 9\njob a\nattempt 1\nname x\ndir /d\n", &back), -1);
    CHECK_INT(back.format, 9);
    CHECK_INT(sl_record_parse("jobrt-slurm 1\njob a\nname x\ndir /d\n", &back), -1);
    CHECK_INT(sl_record_parse("jobrt-slurm 1\nattempt 1\nname x\n", &back), -1);
    CHECK_INT(sl_record_parse("jobrt-slurm 1\nattempt 1\ndir /d\n", &back), -1);
    CHECK_INT(sl_record_parse("jobrt-attempt 1\nattempt 1\nname x\ndir /d\n", &back), -1);
    /* Keys it does not know are left alone; a value may hold spaces. */
    CHECK_INT(sl_record_parse("jobrt-slurm 1\nattempt 2\nname n\nfuture 7\ndir /a b\n", &back),
              0);
    CHECK_STR(back.dir, "/a b");
    CHECK_STR(back.batch, "");
}

/* ---- the scripts, run ---- */

static char tmp[256];

static void write_text(const char *path, const char *text, int mode)
{
    FILE *f = fopen(path, "w");

    if (!f)
        return;
    fputs(text, f);
    fclose(f);
    chmod(path, (mode_t)mode);
}

static char *slurp(const char *dir, const char *name)
{
    static char buf[8192];
    char path[600];
    FILE *f;
    size_t n;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    buf[0] = 0;
    if (!(f = fopen(path, "r")))
        return buf;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return buf;
}

/* Runs shell on the script in dir/name with PATH path; returns its status. */
static int run_script(const char *shell, const char *dir, const char *name, const char *path)
{
    char script[600];
    pid_t pid;
    int st = -1;

    snprintf(script, sizeof script, "%s/%s", dir, name);
    if ((pid = fork()) == 0) {
        setenv("PATH", path, 1);
        setenv("JOBRT_TEST_SECRET", "leak", 1);
        unsetenv("SLURM_JOB_ID");
        unsetenv("SLURM_STEP_ID");
        execl(shell, shell, script, (char *)NULL);
        _exit(127);
    }
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Writes dir/task.sh for argv with the given timeout and runs it. */
static int run_task(const char *dir, char *const *argv, int64_t timeout_ms)
{
    char *env[] = { "GREETING=hi there", "PATH=/usr/bin:/bin", NULL };
    struct sl_task_script t = { 0 };
    struct jr_buf b = { 0 };
    char path[600];

    mkdir(dir, 0755);
    t.run_dir = dir;
    t.cwd = tmp;
    t.argv = argv;
    t.env = env;
    t.path = "/usr/bin:/bin";
    t.timeout_ms = timeout_ms;
    t.grace_ms = 200;
    if (sl_task_script(&b, &t) || jr_buf_add(&b, "", 1))
        return -1;
    snprintf(path, sizeof path, "%s/task.sh", dir);
    write_text(path, b.data, 0644);
    jr_buf_free(&b);
    return run_script("/bin/sh", dir, "task.sh", "/usr/bin:/bin");
}

TEST(wrapper_runs_the_command_with_its_env)
{
    char dir[300];
    char *argv[] = { "sh", "-c", "echo \"$GREETING\" \"$1\"; echo \"${JOBRT_TEST_SECRET:-none}\";"
                     " pwd; echo oops >&2; exit 4", "x", "it's \"quoted\"\nand two lines", NULL };
    char want[600];

    snprintf(dir, sizeof dir, "%s/run1", tmp);
    CHECK_INT(run_task(dir, argv, 0), 4);
    snprintf(want, sizeof want, "hi there it's \"quoted\"\nand two lines\nnone\n%s\n", tmp);
    CHECK_STR(slurp(dir, "stdout"), want);
    CHECK_STR(slurp(dir, "stderr"), "oops\n");
    CHECK(strstr(slurp(dir, "outcome"), "{\"outcome\":\"exited\",\"exit_code\":4,") != NULL);
    CHECK_STR(slurp(dir, "step"), "0\n");
}

TEST(wrapper_keeps_the_timeout_and_reports_signals)
{
    char dir[300];
    char *sleeper[] = { "sleep", "5", NULL };
    char *killer[] = { "sh", "-c", "kill -9 $$", NULL };
    char *fast[] = { "true", NULL };

    snprintf(dir, sizeof dir, "%s/run2", tmp);
    run_task(dir, sleeper, 300);
    CHECK(strstr(slurp(dir, "outcome"), "{\"outcome\":\"timeout\",") != NULL);
    snprintf(dir, sizeof dir, "%s/run3", tmp);
    run_task(dir, killer, 0);
    CHECK(strstr(slurp(dir, "outcome"), "{\"outcome\":\"signaled\",\"signal\":9,") != NULL);
    /* A timeout that does not fire leaves the exit as it is. */
    snprintf(dir, sizeof dir, "%s/run4", tmp);
    CHECK_INT(run_task(dir, fast, 5000), 0);
    CHECK(strstr(slurp(dir, "outcome"), "{\"outcome\":\"exited\",\"exit_code\":0,") != NULL);
}

TEST(wrapper_skips_a_canceled_attempt)
{
    char dir[300], path[400];
    char *argv[] = { "sh", "-c", "echo ran", NULL };

    snprintf(dir, sizeof dir, "%s/run5", tmp);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/cancel", dir);
    write_text(path, "", 0644);
    CHECK_INT(run_task(dir, argv, 0), 0);
    CHECK_STR(slurp(dir, "stdout"), "");
    CHECK(strstr(slurp(dir, "outcome"), "\"outcome\":\"canceled\"") != NULL);
}

TEST(batch_script_runs_steps_and_fills_in_outcomes)
{
    struct sl_batch_item items[4];
    struct jr_buf b = { 0 };
    char dirs[4][300], bin[300], path[700], srun[400], text[2048];
    char *argv[] = { "sh", "-c", "echo step; sleep 0.2", NULL };

    /* A stand-in srun: drops its options, runs the step's command here,
     * and counts how many run at once. */
    snprintf(bin, sizeof bin, "%s/bin", tmp);
    mkdir(bin, 0755);
    snprintf(srun, sizeof srun, "%s/srun", bin);
    snprintf(text, sizeof text,
             "#!/bin/sh\nwhile [ $# -gt 0 ]; do case $1 in --*) shift;; *) break;; esac; done\n"
             "d=%s; touch $d/live.$$; n=$(ls $d/live.* | wc -l)\n"
             "[ \"$n\" -gt \"$(cat $d/max 2>/dev/null || echo 0)\" ] && echo $n > $d/max\n"
             "\"$@\"; rc=$?; rm -f $d/live.$$; exit $rc\n", tmp);
    write_text(srun, text, 0755);
    for (int i = 0; i < 4; i++) {
        snprintf(dirs[i], sizeof dirs[i], "%s/b%d", tmp, i);
        items[i].run_dir = dirs[i];
        items[i].name = "t";
        items[i].cpus = 1;
        items[i].mem_mb = i == 0 ? 64 : 0;
        if (i < 2)
            run_task(dirs[i], argv, 0); /* writes task.sh (and runs it once) */
        else
            mkdir(dirs[i], 0755);
        unlink(strcat(strcpy(path, dirs[i]), "/outcome"));
    }
    /* b2 is canceled before its step; b3 has no wrapper (its step fails). */
    write_text(strcat(strcpy(path, dirs[2]), "/cancel"), "", 0644);
    snprintf(path, sizeof path, "%s:/usr/bin:/bin", bin);
    CHECK_INT(sl_batch_script(&b, path, items, 4, 2), 0);
    CHECK(strstr(b.data, "--mem=64M") != NULL);
    write_text(strcat(strcpy(path, tmp), "/batch.sh"), b.data, 0644);
    jr_buf_free(&b);
    snprintf(path, sizeof path, "%s:/usr/bin:/bin", bin);
    CHECK_INT(run_script("/bin/bash", tmp, "batch.sh", path), 0);
    CHECK(strstr(slurp(dirs[0], "outcome"), "\"exit_code\":0") != NULL);
    CHECK(strstr(slurp(dirs[1], "outcome"), "\"exit_code\":0") != NULL);
    CHECK(strstr(slurp(dirs[2], "outcome"), "\"outcome\":\"canceled\"") != NULL);
    CHECK(strstr(slurp(dirs[3], "outcome"), "{\"step_exit\":") != NULL);
    CHECK_STR(slurp(tmp, "max"), "2\n");
}

int main(void)
{
    char cmd[300];

    signal(SIGPIPE, SIG_IGN);
    snprintf(tmp, sizeof tmp, "/tmp/jobrt-test-slurm-XXXXXX");
    if (!mkdtemp(tmp))
        return 1;
    RUN(sizes_round_up);
    RUN(quote_is_one_shell_word);
    RUN(sbatch_job_id);
    RUN(squeue_lines);
    RUN(sacct_lines);
    RUN(states);
    RUN(outcomes_from_the_wrapper);
    RUN(outcomes_from_slurm);
    RUN(record_round_trip);
    RUN(wrapper_runs_the_command_with_its_env);
    RUN(wrapper_keeps_the_timeout_and_reports_signals);
    RUN(wrapper_skips_a_canceled_attempt);
    RUN(batch_script_runs_steps_and_fills_in_outcomes);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmp);
    return UNIT_DONE();
}
