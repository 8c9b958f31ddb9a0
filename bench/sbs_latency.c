/* Start-to-exit latency of /bin/true through the sandbox server, the way
 * the daemon runs every task: a start request (the server forks a helper
 * that prepares the sandbox), "go" on the gate, then until the status pipe
 * closes. Usage: sbs_latency HELPER RUNS; prints one time in ms per line
 * (after 20 unprinted warm-up runs). bench/sandbox.sh reads it. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "exec/sbserver.h"

static void on_notice(void *owner, struct jr_sbs *s, int32_t pid, int status)
{
    (void)s;
    (void)pid;
    (void)status;
    *(int *)owner += 1;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* One task; the time from the request to the status pipe's EOF, or -1. */
static double one(struct jr_sbs *s, int i)
{
    int gate[2], out[2], status[2];
    char name[64], buf[4096];
    struct jr_err e = {0, ""};
    int32_t pid;
    double t0 = now_ms();

    if (pipe2(gate, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(status, O_CLOEXEC))
        return -1;
    snprintf(name, sizeof(name), "--cgroup-name=bench-sbs-%d-%d", (int)getpid(), i);
    char *words[] = {"--gate-fd=3", "--status-fd=4", name, "--lazy-cgroups=yes",
                     "--nproc=1024", "--", "/bin/true", NULL};
    int fds[4] = {gate[0], out[1], out[1], status[1]};
    int rc = jr_sbs_start(s, words, fds, &pid, &e);
    close(gate[0]);
    close(out[1]);
    close(status[1]);
    if (rc) {
        fprintf(stderr, "sbs_latency: %s\n", e.msg);
        return -1;
    }
    if (write(gate[1], "go\n", 3) != 3)
        return -1;
    close(gate[1]);
    while (read(status[0], buf, sizeof(buf)) > 0)
        ;
    double t = now_ms() - t0;
    close(status[0]);
    close(out[0]);
    return t;
}

int main(int argc, char **argv)
{
    uv_loop_t loop;
    struct jr_sbs *s;
    struct jr_err e = {0, ""};
    int notices = 0, runs = argc == 3 ? atoi(argv[2]) : 0;

    if (runs <= 0) {
        fprintf(stderr, "usage: sbs_latency HELPER RUNS\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&loop);
    if (jr_sbs_spawn(&loop, argv[1], on_notice, &notices, &s, &e)) {
        fprintf(stderr, "sbs_latency: %s\n", e.msg);
        return 1;
    }
    for (int i = 0; i < 20 + runs; i++) {
        double t = one(s, i);
        if (t < 0)
            return 1;
        if (i >= 20)
            printf("%.3f\n", t);
        uv_run(&loop, UV_RUN_NOWAIT); /* the exit notices */
    }
    jr_sbs_close(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 0;
}
