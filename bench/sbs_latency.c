/* Start-to-exit latency of /bin/true through the sandbox server, the way
 * the daemon runs every task: a start request (the server forks a helper
 * that prepares the sandbox, its spool and control socket; see
 * exec/record.h), "go" on the gate, then until the helper has sent its
 * outcome and ended its side of the control connection. Usage:
 * sbs_latency HELPER RUNS; prints one time in ms per line (after 20
 * unprinted warm-up runs). With RUNS "-", one run per line read on stdin,
 * its time printed at once: bench/sandbox.sh drives it that way, taking
 * turns with its other cases. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

/* One task; the time from the request to the control connection's EOF
 * (after the outcome line), or -1. Then, as the daemon does once the
 * outcome is committed, 'k': the helper need not keep it. */
static double one(struct jr_sbs *s, const char *base, int devnull, int i)
{
    int gate[2], ctl[2];
    char name[64], spool[300], control[64], buf[4096];
    struct jr_err e = {0, ""};
    int32_t pid;
    double t0 = now_ms(), t;

    if (pipe2(gate, O_CLOEXEC) || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl))
        return -1;
    snprintf(name, sizeof(name), "--cgroup-name=bench-sbs-%d-%d", (int)getpid(), i);
    snprintf(control, sizeof(control), "--control=jobrt-bench-%d-%d", (int)getpid(), i);
    snprintf(spool, sizeof(spool), "--spool=%s/jobrt-bench-%d.log", base, i);
    char *words[] = {"--gate-fd=3", "--status-fd=4", spool, control, "--log-cap=1048576",
                     "--orphan-timeout=600000ms", name, "--lazy-cgroups=yes",
                     "--nproc=1024", "--", "/bin/true", NULL};
    int fds[4] = {gate[0], devnull, devnull, ctl[1]};
    int rc = jr_sbs_start(s, words, fds, &pid, &e);
    close(gate[0]);
    close(ctl[1]);
    if (rc) {
        fprintf(stderr, "sbs_latency: %s\n", e.msg);
        return -1;
    }
    if (write(gate[1], "go\n", 3) != 3)
        return -1;
    close(gate[1]);
    while (read(ctl[0], buf, sizeof(buf)) > 0)
        ;
    t = now_ms() - t0;
    if (write(ctl[0], "k", 1) != 1)
        t = -1;
    close(ctl[0]);
    return t;
}

int main(int argc, char **argv)
{
    uv_loop_t loop;
    struct jr_sbs *s;
    struct jr_err e = {0, ""};
    char base[] = "/tmp/jobrt-sbs-latency-XXXXXX", cmd[64];
    int notices = 0, runs = argc == 3 ? atoi(argv[2]) : 0, rc = 0;
    int paced = argc == 3 && strcmp(argv[2], "-") == 0;
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);

    if (runs <= 0 && !paced) {
        fprintf(stderr, "usage: sbs_latency HELPER RUNS|-\n");
        return 2;
    }
    if (devnull < 0 || !mkdtemp(base))
        return 1;
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&loop);
    if (jr_sbs_spawn(&loop, argv[1], NULL, on_notice, &notices, &s, &e)) {
        fprintf(stderr, "sbs_latency: %s\n", e.msg);
        return 1;
    }
    for (int i = 0; paced || i < 20 + runs; i++) {
        if (paced && !fgets(cmd, sizeof(cmd), stdin))
            break;
        double t = one(s, base, devnull, i);
        if (t < 0) {
            rc = 1;
            break;
        }
        if (paced || i >= 20)
            printf("%.3f\n", t);
        if (paced)
            fflush(stdout);
        uv_run(&loop, UV_RUN_NOWAIT); /* the exit notices */
    }
    jr_sbs_close(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", base);
    if (system(cmd) != 0)
        rc = 1;
    close(devnull);
    return rc;
}
