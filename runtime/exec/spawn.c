/* The plain executor: each task is `sh -c GATE` started with uv_spawn in its
 * own session (so a signal to the group reaches the whole tree); the gate
 * reads "go" on fd 3 before exec'ing the command, and exits 125 on EOF. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exec/exec.h"
#include "exec/lines.h"

#define GATE_EXIT 125

static const char gate_script[] =
    "IFS= read -r go <&3 && [ \"$go\" = go ] || exit 125; exec \"$@\" 3<&-";

struct spawn_exec {
    uv_loop_t *loop;
};

struct jr_exec_proc {
    uv_process_t proc;
    uv_pipe_t out, err;
    int gate_fd;                 /* write end of the gate pipe, -1 once used */
    struct jr_exec_lines lines[2];
    struct jr_exec_cbs cbs;
    void *arg;
    int64_t pid;
    uint64_t started;            /* uv_now at start */
    int exited, open_pipes, open_handles;
    struct jr_exec_result result;
};

const char *jr_exec_outcome_name(int outcome)
{
    static const char *const names[] = {
        NULL, "exited", "signaled", "oom", "timeout", "pids_limit", "seccomp",
        "setup_error", "canceled"
    };

    if (outcome <= 0 || outcome > JR_OUT_CANCELED)
        return NULL;
    return names[outcome];
}

static void proc_free(struct jr_exec_proc *p)
{
    jr_exec_lines_free(&p->lines[0]);
    jr_exec_lines_free(&p->lines[1]);
    if (p->gate_fd >= 0)
        close(p->gate_fd);
    free(p);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct jr_exec_proc *p = h->data;

    if (--p->open_handles == 0)
        proc_free(p);
}

static void maybe_done(struct jr_exec_proc *p)
{
    if (!p->exited || p->open_pipes > 0)
        return;
    p->result.duration_ms = (int64_t)(uv_now(p->proc.loop) - p->started);
    p->cbs.done(p->arg, &p->result);
    uv_close((uv_handle_t *)&p->proc, on_handle_closed);
}

static void log_line(void *arg, int stream, const char *line, size_t len)
{
    struct jr_exec_proc *p = arg;

    p->cbs.log(p->arg, stream, line, len);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct jr_exec_proc *p = h->data;

    (void)hint;
    jr_exec_lines_room(&p->lines[(uv_pipe_t *)h == &p->out ? 0 : 1], buf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct jr_exec_proc *p = s->data;
    int stream = (uv_pipe_t *)s == &p->out ? 1 : 2;

    (void)buf;
    if (n > 0) {
        jr_exec_lines_add(&p->lines[stream - 1], (size_t)n, 0, log_line, p, stream);
        return;
    }
    if (n == 0)
        return;
    /* EOF or error: flush what is left, stop reading. */
    jr_exec_lines_add(&p->lines[stream - 1], 0, 1, log_line, p, stream);
    uv_close((uv_handle_t *)s, on_handle_closed);
    p->open_pipes--;
    maybe_done(p);
}

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
                       struct jr_err *e)
{
    struct spawn_exec *ex = self;
    struct jr_exec_proc *p = NULL;
    uv_process_options_t opt;
    uv_stdio_container_t stdio[4];
    uv_file gate[2] = { -1, -1 };
    char **args = NULL;
    size_t n = 0, i;
    int rc = JR_OK, r;

    *out = NULL;
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
    p->gate_fd = -1;
    args[0] = "/bin/sh";
    args[1] = "-c";
    args[2] = (char *)gate_script;
    args[3] = "jobrt-task";
    for (i = 0; i < n; i++)
        args[4 + i] = spec->argv[i];
    if ((r = uv_pipe(gate, 0, 0)) != 0) {
        rc = jr_err_set(e, JR_E_SYSTEM, "gate pipe: %s", uv_strerror(r));
        goto done;
    }
    uv_pipe_init(ex->loop, &p->out, 0);
    uv_pipe_init(ex->loop, &p->err, 0);
    p->out.data = p->err.data = p->proc.data = p;
    memset(stdio, 0, sizeof stdio);
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&p->out;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&p->err;
    stdio[3].flags = UV_INHERIT_FD;
    stdio[3].data.fd = gate[0];
    memset(&opt, 0, sizeof opt);
    opt.exit_cb = on_proc_exit;
    opt.file = "/bin/sh";
    opt.args = args;
    opt.env = (char **)spec->env;
    opt.cwd = spec->cwd;
    opt.flags = UV_PROCESS_DETACHED;
    opt.stdio_count = 4;
    opt.stdio = stdio;
    p->cbs = *cbs;
    p->arg = arg;
    r = uv_spawn(ex->loop, &p->proc, &opt);
    close(gate[0]);
    gate[0] = -1;
    if (r != 0) {
        rc = jr_err_set(e, JR_E_SYSTEM, "spawn %s: %s", spec->argv[0], uv_strerror(r));
        /* The pipes were initialised: they must be closed through the loop. */
        p->open_handles = 3;
        uv_close((uv_handle_t *)&p->out, on_handle_closed);
        uv_close((uv_handle_t *)&p->err, on_handle_closed);
        uv_close((uv_handle_t *)&p->proc, on_handle_closed);
        p = NULL;
        goto done;
    }
    p->gate_fd = gate[1];
    gate[1] = -1;
    p->pid = p->proc.pid;
    p->started = uv_now(ex->loop);
    p->open_pipes = 2;
    p->open_handles = 3;
    uv_read_start((uv_stream_t *)&p->out, on_alloc, on_read);
    uv_read_start((uv_stream_t *)&p->err, on_alloc, on_read);
    *pid = p->pid;
    *pid_start = jr_exec_pid_start(p->pid);
    *out = p;
    p = NULL;
done:
    if (gate[0] >= 0)
        close(gate[0]);
    if (gate[1] >= 0)
        close(gate[1]);
    if (p)
        proc_free(p);
    free(args);
    return rc;
}

static void spawn_go(struct jr_exec_proc *p)
{
    ssize_t w;

    if (p->gate_fd < 0)
        return;
    do
        w = write(p->gate_fd, "go\n", 3);
    while (w < 0 && errno == EINTR);
    close(p->gate_fd);
    p->gate_fd = -1;
}

static void spawn_kill(struct jr_exec_proc *p, int signum)
{
    /* A task still at its gate never runs its command. */
    if (p->gate_fd >= 0) {
        close(p->gate_fd);
        p->gate_fd = -1;
    }
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
