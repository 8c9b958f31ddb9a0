/* The sandbox server through the daemon's client (exec/sbserver.c): a
 * helper it forks runs a task behind its gate and reports on the status
 * pipe, its exit comes back as a notice; a kill for a pid that is not its
 * child is ignored; a killed server is reported lost. Runs $JOBRT_BIN
 * sandbox-server; needs root for the sandbox (skipped otherwise). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "exec/sbserver.h"
#include "unit.h"

struct seen {
    int32_t pid;
    int status, notices, lost;
};

static void on_exit_notice(void *owner, struct jr_sbs *server, int32_t pid, int status)
{
    struct seen *s = owner;

    (void)server;
    if (pid == 0) {
        s->lost++;
        return;
    }
    s->pid = pid;
    s->status = status;
    s->notices++;
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

/* Runs the loop until *flag is set or about 10 s have passed. */
static void run_until(uv_loop_t *loop, const int *flag)
{
    uv_timer_t t;

    uv_timer_init(loop, &t);
    uv_timer_start(&t, on_tick, 10, 10);
    for (int i = 0; i < 1000 && !*flag; i++)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

static const char *bin(void)
{
    const char *b = getenv("JOBRT_BIN");
    return b && *b ? b : "./jobrt";
}

/* Reads fd to EOF (bounded by the helper's own end) into buf. */
static void read_all(int fd, char *buf, size_t len)
{
    size_t got = 0;
    ssize_t n;

    while (got + 1 < len && (n = read(fd, buf + got, len - 1 - got)) > 0)
        got += (size_t)n;
    buf[got] = 0;
}

TEST(a_helper_runs_behind_its_gate_and_its_exit_is_noticed)
{
    uv_loop_t loop;
    struct jr_sbs *s = NULL;
    struct jr_err e = {0, ""};
    struct seen seen = {0, 0, 0, 0};
    int gate[2], out[2], err[2], status[2];
    char name[64], line[2048];
    int32_t pid = 0;

    uv_loop_init(&loop);
    CHECK_INT(jr_sbs_spawn(&loop, bin(), NULL, on_exit_notice, &seen, &s, &e), 0);
    CHECK(pipe2(gate, O_CLOEXEC) == 0 && pipe2(out, O_CLOEXEC) == 0 &&
          pipe2(err, O_CLOEXEC) == 0 && pipe2(status, O_CLOEXEC) == 0);
    snprintf(name, sizeof(name), "--cgroup-name=unit-sbs-%d", (int)getpid());
    char *words[] = {"--gate-fd=3", "--status-fd=4", name, "--", "/bin/echo", "hello", NULL};
    int fds[4] = {gate[0], out[1], err[1], status[1]};
    CHECK_INT(jr_sbs_start(s, words, fds, &pid, &e), 0);
    CHECK(pid > 0);
    close(gate[0]);
    close(out[1]);
    close(err[1]);
    close(status[1]);
    CHECK_INT(write(gate[1], "go\n", 3), 3);
    close(gate[1]);
    read_all(out[0], line, sizeof(line));
    CHECK_STR(line, "hello\n");
    read_all(status[0], line, sizeof(line));
    CHECK(strstr(line, "\"outcome\":\"exited\"") != NULL);
    CHECK(strstr(line, "\"exit_code\":0") != NULL);
    run_until(&loop, &seen.notices);
    CHECK_INT(seen.notices, 1);
    CHECK_INT(seen.pid, pid);
    CHECK(WIFEXITED(seen.status) && WEXITSTATUS(seen.status) == 0);
    CHECK_INT(seen.lost, 0);
    close(out[0]);
    close(err[0]);
    close(status[0]);
    jr_sbs_close(s);
    uv_run(&loop, UV_RUN_DEFAULT); /* until the server has exited */
    CHECK_INT(uv_loop_close(&loop), 0);
}

TEST(a_kill_for_a_pid_that_is_not_its_child_is_ignored)
{
    uv_loop_t loop;
    struct jr_sbs *s = NULL;
    struct jr_err e = {0, ""};
    struct seen seen = {0, 0, 0, 0};
    pid_t other = fork();
    int st;

    if (other == 0) {
        pause();
        _exit(0);
    }
    uv_loop_init(&loop);
    CHECK_INT(jr_sbs_spawn(&loop, bin(), NULL, on_exit_notice, &seen, &s, &e), 0);
    CHECK_INT(jr_sbs_kill(s, other, SIGKILL, 0), 0);
    CHECK_INT(jr_sbs_kill(s, other, SIGKILL, 1), 0);
    /* The server handles requests in order: after this start's answer the
     * kills above were seen (and refused). */
    {
        int gate[2], p[2];
        int32_t pid;
        CHECK(pipe2(gate, O_CLOEXEC) == 0 && pipe2(p, O_CLOEXEC) == 0);
        char *words[] = {"--gate-fd=3", "--status-fd=4", "--", "/bin/true", NULL};
        int fds[4] = {gate[0], p[1], p[1], p[1]};
        CHECK_INT(jr_sbs_start(s, words, fds, &pid, &e), 0);
        close(gate[0]);
        close(gate[1]); /* never "go": the helper reports canceled */
        close(p[1]);
        run_until(&loop, &seen.notices);
        close(p[0]);
    }
    CHECK_INT(waitpid(other, &st, WNOHANG), 0); /* still alive */
    kill(other, SIGKILL);
    waitpid(other, &st, 0);
    jr_sbs_close(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&loop), 0);
}

TEST(a_killed_server_is_reported_lost_and_refuses_starts)
{
    uv_loop_t loop;
    struct jr_sbs *s = NULL;
    struct jr_err e = {0, ""};
    struct seen seen = {0, 0, 0, 0};
    char cmd[128];

    uv_loop_init(&loop);
    CHECK_INT(jr_sbs_spawn(&loop, bin(), NULL, on_exit_notice, &seen, &s, &e), 0);
    /* The server is our only child named jobrt-sbserver (once it has named
     * itself: a sanitizer build starts slowly). */
    snprintf(cmd, sizeof(cmd), "pkill -KILL -P %d -x jobrt-sbserver", (int)getpid());
    int found = -1;
    for (int i = 0; i < 500 && found != 0; i++) {
        found = system(cmd);
        if (found != 0)
            usleep(10000);
    }
    CHECK_INT(found, 0);
    run_until(&loop, &seen.lost);
    CHECK_INT(seen.lost, 1);
    CHECK_INT(jr_sbs_alive(s), 0);
    {
        int32_t pid;
        char *words[] = {"--", "/bin/true", NULL};
        int fds[4] = {0, 1, 2, 2};
        CHECK(jr_sbs_start(s, words, fds, &pid, &e) != 0);
        CHECK(strstr(e.msg, "gone") != NULL);
    }
    jr_sbs_close(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&loop), 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (geteuid() != 0) {
        printf("skip - %s # the sandbox needs root\n", __FILE__);
        return 0;
    }
    RUN(a_helper_runs_behind_its_gate_and_its_exit_is_noticed);
    RUN(a_kill_for_a_pid_that_is_not_its_child_is_ignored);
    RUN(a_killed_server_is_reported_lost_and_refuses_starts);
    return UNIT_DONE();
}
