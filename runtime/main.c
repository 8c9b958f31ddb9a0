/* jobrt's entry point: the commands that need no loop run at once; for the
 * others it builds the loop, hands the command line to the script layer
 * (script.h), which runs the loop, and closes the loop last. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop.h"
#include "metrics.h"
#include "script.h"
#include "sandbox/sandbox.h"

static void close_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

int jr_certs_main(int argc, char **argv);

/* In sanitizer builds, LeakSanitizer checks at exit by stopping the
 * process with ptrace, which the task sandbox's seccomp filter denies; a
 * jobrt running as a task (openEO's `jobrt eval`) would then fail. Every
 * task has JOBRT_TASK set. Unused in normal builds. */
int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void)
{
    return getenv("JOBRT_TASK") != NULL;
}

int main(int argc, char **argv)
{
    int status;

    if (jr_sandbox_command(argc, argv, &status))
        return status;
    /* Commands that need neither the loop nor the script layer run here. */
    if (argc > 1 && strcmp(argv[1], "certs") == 0 &&
        !(argc > 2 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)))
        return jr_certs_main(argc, argv);
    struct jr_loop loop;
    struct jr_metrics metrics;
    memset(&loop, 0, sizeof(loop));
    loop.log_level = JR_LOG_INFO;
    jr_metrics_init(&metrics);
    loop.metrics = &metrics;
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t uv;
    if (uv_loop_init(&uv) != 0) {
        fprintf(stderr, "jobrt: cannot create the event loop\n");
        jr_metrics_free(&metrics);
        return 1;
    }
    loop.uv = &uv;
    int code = jr_script_main(&loop, argc, argv);
    /* What the script layer's finalizers closed last. */
    uv_walk(&uv, close_handle, NULL);
    uv_run(&uv, UV_RUN_DEFAULT);
    if (uv_loop_close(&uv) != 0)
        fprintf(stderr, "jobrt: event loop still busy at exit\n");
    jr_metrics_free(&metrics);
    return code;
}
