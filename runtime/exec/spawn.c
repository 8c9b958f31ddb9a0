/* The plain executor: each task is `sh -c GATE` started with uv_spawn in its
 * own session (so a signal to the group reaches the whole tree); the gate
 * reads "go" on fd 3 before exec'ing the command, and exits 125 on EOF. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exec/exec.h"
#include "exec/child.h"

#define GATE_EXIT 125

static const char gate_script[] =
    "IFS= read -r go <&3 && [ \"$go\" = go ] || exit 125; exec \"$@\" 3<&-";

struct spawn_exec {
    uv_loop_t *loop;
};

struct jr_exec_proc {
    struct jr_exec_child c;      /* gate, output pipes, callbacks */
    uv_process_t proc;
    int64_t pid;
    int exited;
    struct jr_exec_result result;
};

const char *jr_exec_outcome_name(int outcome)
{
    static const char *const names[] = {
        NULL, "exited", "signaled", "oom", "timeout", "pids_limit", "seccomp",
        "setup_error", "canceled", "orphaned", "lost"
    };

    if (outcome <= 0 || outcome > JR_OUT_LAST)
        return NULL;
    return names[outcome];
}

static void proc_free(struct jr_exec_proc *p)
{
    jr_exec_child_free(&p->c);
    free(p);
}

/* The last of the pipes and the process handle closed. */
static void on_closed(void *owner)
{
    struct jr_exec_proc *p = owner;

    if (p->c.open_handles == 0)
        proc_free(p);
}

static void maybe_done(void *owner)
{
    struct jr_exec_proc *p = owner;

    if (!p->exited || p->c.open_pipes > 0)
        return;
    jr_exec_child_done(&p->c, &p->result);
    jr_exec_child_close(&p->c, (uv_handle_t *)&p->proc);
}

static const struct jr_exec_child_hooks hooks = { maybe_done, on_closed };

static void on_proc_exit(uv_process_t *h, int64_t status, int signum)
{
    struct jr_exec_proc *p = h->data;

    p->exited = 1;
    p->result.cpu_ms = p->result.max_rss_bytes = p->result.wall_ms = -1;
    if (signum) {
        p->result.outcome = JR_OUT_SIGNALED;
        p->result.exit_code = -1;
        p->result.signal = signum;
    } else {
        p->result.outcome = JR_OUT_EXITED;
        p->result.exit_code = (int)status;
    }
    /* Nothing of the task may outlive it: take down what is left of its
     * group, which also closes the output pipes it held. */
    kill(-(pid_t)p->pid, SIGKILL);
    maybe_done(p);
}

static int spawn_start(void *self, const struct jr_exec_spec *spec,
                       const struct jr_exec_cbs *cbs, void *arg,
                       struct jr_exec_proc **out, int64_t *pid, int64_t *pid_start,
                       char *record, struct jr_err *e)
{
    struct spawn_exec *ex = self;
    struct jr_exec_proc *p = NULL;
    uv_process_options_t opt;
    uv_stdio_container_t stdio[4];
    char **args = NULL;
    size_t n = 0, i;
    int rc = JR_OK, r;

    *out = NULL;
    record[0] = 0; /* its tasks do not outlive the daemon */
    while (spec->argv[n])
        n++;
    if (n == 0)
        return jr_err_set(e, JR_E_INVALID, "empty command");
    p = calloc(1, sizeof *p);
    args = calloc(n + 5, sizeof *args);
    if (!p || !args) {
        rc = jr_err_set(e, JR_E_SYSTEM, "out of memory");
        goto done;
    }
    args[0] = "/bin/sh";
    args[1] = "-c";
    args[2] = (char *)gate_script;
    args[3] = "jobrt-task";
    for (i = 0; i < n; i++)
        args[4 + i] = spec->argv[i];
    if ((rc = jr_exec_child_open(&p->c, ex->loop, p, &hooks, cbs, arg, 0, e))) {
        if (p->c.open_handles > 0)
            p = NULL; /* freed once its handles have closed */
        goto done;
    }
    memset(stdio, 0, sizeof stdio);
    stdio[0].flags = UV_IGNORE;
    for (i = 1; i < 4; i++) {
        stdio[i].flags = UV_INHERIT_FD;
        stdio[i].data.fd = p->c.fds[i % 3]; /* stdout, stderr, then the gate */
    }
    memset(&opt, 0, sizeof opt);
    opt.exit_cb = on_proc_exit;
    opt.file = "/bin/sh";
    opt.args = args;
    opt.env = (char **)spec->env;
    opt.cwd = spec->cwd;
    opt.flags = UV_PROCESS_DETACHED;
    opt.stdio_count = 4;
    opt.stdio = stdio;
    r = uv_spawn(ex->loop, &p->proc, &opt);
    p->proc.data = p;
    p->c.open_handles++;
    if (r != 0) {
        rc = jr_err_set(e, JR_E_SYSTEM, "spawn %s: %s", spec->argv[0], uv_strerror(r));
        /* The handles were initialised: they must be closed through the loop. */
        jr_exec_child_abandon(&p->c);
        jr_exec_child_close(&p->c, (uv_handle_t *)&p->proc);
        p = NULL;
        goto done;
    }
    p->pid = p->proc.pid;
    jr_exec_child_started(&p->c);
    *pid = p->pid;
    *pid_start = jr_exec_pid_start(p->pid);
    *out = p;
    p = NULL;
done:
    if (p)
        proc_free(p);
    free(args);
    return rc;
}

static void spawn_go(struct jr_exec_proc *p)
{
    jr_exec_child_go(&p->c);
}

static void spawn_kill(struct jr_exec_proc *p, int signum)
{
    /* A task still at its gate never runs its command. */
    jr_exec_child_shut(&p->c);
    kill(-(pid_t)p->pid, signum);
}

static void spawn_close(void *self)
{
    free(self);
}

static const struct jr_exec_ops spawn_ops = {
    .name = "spawn",
    .start = spawn_start,
    .go = spawn_go,
    .kill = spawn_kill,
    .close = spawn_close,
    .check = NULL,
    .sandboxed = 0,
};

int jr_exec_spawn_open(uv_loop_t *loop, struct jr_executor *out, struct jr_err *e)
{
    struct spawn_exec *ex = calloc(1, sizeof *ex);

    if (!ex)
        return jr_err_set(e, JR_E_SYSTEM, "out of memory");
    ex->loop = loop;
    out->ops = &spawn_ops;
    out->self = ex;
    return JR_OK;
}
