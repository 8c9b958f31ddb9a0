/* The executors' shared child plumbing (exec/child.c): gate, output lines,
 * log cap, handle counting; and the plain executor built on it. */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "exec/child.h"
#include "exec/exec.h"
#include "unit.h"

struct seen {
    char text[2048];             /* "1:line|2:line|" in arrival order */
    int done, ended, closed;
    struct jr_exec_result r;
};

static void on_log(void *arg, int stream, const char *line, size_t len)
{
    struct seen *s = arg;
    size_t n = strlen(s->text);

    snprintf(s->text + n, sizeof s->text - n, "%d:%.*s|", stream, (int)len, line);
}

static void on_done(void *arg, const struct jr_exec_result *r)
{
    struct seen *s = arg;

    s->done++;
    s->r = *r;
}

static const struct jr_exec_cbs cbs = { .log = on_log, .done = on_done };

static void on_ended(void *owner)
{
    ((struct seen *)owner)->ended++;
}

static void on_closed(void *owner)
{
    ((struct seen *)owner)->closed++;
}

static const struct jr_exec_child_hooks hooks = { on_ended, on_closed };

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
}

static void put(int fd, const char *s)
{
    CHECK_INT(write(fd, s, strlen(s)), strlen(s));
}

TEST(lines_gate_and_handles)
{
    uv_loop_t loop;
    struct jr_exec_child c;
    struct seen s;
    struct jr_err e = { 0, "" };
    char buf[8] = { 0 };
    int gate;

    memset(&s, 0, sizeof s);
    uv_loop_init(&loop);
    CHECK_INT(jr_exec_child_open(&c, &loop, &s, &hooks, &cbs, &s, 0, &e), JR_OK);
    CHECK_INT(c.open_handles, 2);
    gate = dup(c.fds[0]);
    put(c.fds[1], "one\ntwo\nlast without newline");
    put(c.fds[2], "err\n");
    jr_exec_child_started(&c); /* closes the write ends: EOF after the data */
    CHECK_INT(c.fds[1], -1);
    run_until(&loop, &s.ended, 2);
    CHECK_INT(s.ended, 2);
    CHECK_INT(c.open_pipes, 0);
    CHECK(strstr(s.text, "1:one|1:two|1:last without newline|") != NULL);
    CHECK(strstr(s.text, "2:err|") != NULL);
    jr_exec_child_go(&c);
    CHECK_INT(c.gate_fd, -1);
    CHECK_INT(read(gate, buf, sizeof buf - 1), 3);
    CHECK_STR(buf, "go\n");
    CHECK_INT(jr_exec_child_shut(&c), 0); /* already used */
    close(gate);
    run_until(&loop, &s.closed, 2);
    CHECK_INT(c.open_handles, 0);
    jr_exec_child_free(&c);
    CHECK_INT(uv_loop_close(&loop), 0);
}

TEST(log_cap_truncates_once_with_a_note)
{
    uv_loop_t loop;
    struct jr_exec_child c;
    struct seen s;
    struct jr_err e = { 0, "" };
    char buf[8];
    int gate;

    memset(&s, 0, sizeof s);
    uv_loop_init(&loop);
    CHECK_INT(jr_exec_child_open(&c, &loop, &s, &hooks, &cbs, &s, 10, &e), JR_OK);
    gate = dup(c.fds[0]);
    put(c.fds[1], "1234\nabcd\nthis one is over\nand this\n");
    jr_exec_child_started(&c);
    run_until(&loop, &s.ended, 2);
    CHECK_STR(s.text, "1:1234|1:abcd|2:[jobrt] output truncated: more than 10 bytes|");
    /* shut: the gate closes unopened, the process reads EOF */
    CHECK_INT(jr_exec_child_shut(&c), 1);
    CHECK_INT(read(gate, buf, sizeof buf), 0);
    close(gate);
    run_until(&loop, &s.closed, 2);
    jr_exec_child_free(&c);
    CHECK_INT(uv_loop_close(&loop), 0);
}

TEST(abandoned_start_closes_everything)
{
    uv_loop_t loop;
    struct jr_exec_child c;
    struct seen s;
    struct jr_err e = { 0, "" };

    memset(&s, 0, sizeof s);
    uv_loop_init(&loop);
    CHECK_INT(jr_exec_child_open(&c, &loop, &s, &hooks, &cbs, &s, 0, &e), JR_OK);
    jr_exec_child_abandon(&c);
    for (int i = 0; i < 3; i++)
        CHECK_INT(c.fds[i], -1);
    CHECK_INT(c.gate_fd, -1);
    run_until(&loop, &s.closed, 2);
    CHECK_INT(c.open_handles, 0);
    CHECK_INT(s.ended, 0);
    jr_exec_child_free(&c);
    CHECK_INT(uv_loop_close(&loop), 0);
}

/* The plain executor: the command runs only after go; its lines arrive. */
static void spawn_run(int go, struct seen *s, const char *marker)
{
    uv_loop_t loop;
    struct jr_executor ex;
    struct jr_exec_proc *p = NULL;
    struct jr_err e = { 0, "" };
    int64_t pid = 0, start = 0;
    char cmd[512];
    char *argv[] = { "/bin/sh", "-c", cmd, NULL };
    char *env[] = { "PATH=/usr/bin:/bin", NULL };
    struct jr_exec_spec spec;

    snprintf(cmd, sizeof cmd, "echo out; echo err >&2; : > %s; exit 3", marker);
    memset(&spec, 0, sizeof spec);
    spec.argv = argv;
    spec.env = env;
    spec.cwd = "/";
    spec.job_id = "j";
    spec.task = "t";
    uv_loop_init(&loop);
    CHECK_INT(jr_exec_spawn_open(&loop, &ex, &e), JR_OK);
    char record[JR_EXEC_RECORD_SIZE];
    CHECK_INT(ex.ops->start(ex.self, &spec, &cbs, s, &p, &pid, &start, record, &e), JR_OK);
    CHECK(pid > 0);
    CHECK_STR(record, ""); /* the plain executor's tasks do not outlive the daemon */
    if (go)
        ex.ops->go(p);
    else
        ex.ops->kill(p, SIGTERM);
    run_until(&loop, &s->done, 1);
    uv_run(&loop, UV_RUN_DEFAULT); /* the handles' closes */
    ex.ops->close(ex.self);
    CHECK_INT(uv_loop_close(&loop), 0);
}

TEST(spawn_runs_after_go_and_reports)
{
    struct seen s;
    char marker[] = "/tmp/jobrt-child-XXXXXX";
    struct stat st;
    int fd = mkstemp(marker);

    close(fd);
    unlink(marker);
    memset(&s, 0, sizeof s);
    spawn_run(1, &s, marker);
    CHECK_INT(s.done, 1);
    CHECK_INT(s.r.outcome, JR_OUT_EXITED);
    CHECK_INT(s.r.exit_code, 3);
    CHECK(s.r.duration_ms >= 0);
    CHECK(strstr(s.text, "1:out|") != NULL);
    CHECK(strstr(s.text, "2:err|") != NULL);
    CHECK_INT(stat(marker, &st), 0);
    unlink(marker);
}

TEST(spawn_killed_at_its_gate_never_runs)
{
    struct seen s;
    char marker[] = "/tmp/jobrt-child-XXXXXX";
    struct stat st;
    int fd = mkstemp(marker);

    close(fd);
    unlink(marker);
    memset(&s, 0, sizeof s);
    spawn_run(0, &s, marker);
    CHECK_INT(s.done, 1);
    CHECK(s.r.outcome == JR_OUT_SIGNALED ||
          (s.r.outcome == JR_OUT_EXITED && s.r.exit_code == 125));
    CHECK_STR(s.text, "");
    CHECK(stat(marker, &st) != 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    RUN(lines_gate_and_handles);
    RUN(log_cap_truncates_once_with_a_note);
    RUN(abandoned_start_closes_everything);
    RUN(spawn_runs_after_go_and_reports);
    RUN(spawn_killed_at_its_gate_never_runs);
    return UNIT_DONE();
}
