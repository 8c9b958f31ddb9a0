/* The sandbox executor's attempts: one `jobrt sandbox` helper each, forked
 * by the sandbox server with its gate, output and status pipes; its output
 * becomes log lines, its outcome line (or exit status) the result. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec/sandbox_internal.h"

static void on_server_exit(void *owner, struct jr_sbs *s, int32_t pid, int status);

/* The server that takes the starts; a lost one's notice may still be due,
 * and ends its attempts then. */
static int ensure_server(struct sb_exec *ex, struct jr_err *e)
{
    int rc;

    if (ex->server && jr_sbs_alive(ex->server))
        return JR_OK;
    ex->server = NULL;
    if ((rc = jr_sbs_spawn(ex->loop, ex->helper, on_server_exit, ex, &ex->server, e)))
        return rc;
    ex->nservers++;
    return JR_OK;
}

static void proc_free(struct jr_exec_proc *p)
{
    jr_sbexec_abort_fetches(p);
    for (int i = 0; i < p->nfetches; i++)
        free(p->fetches[i].url);
    free(p->fetches);
    jr_exec_lines_free(&p->lines[0]);
    jr_exec_lines_free(&p->lines[1]);
    if (p->gate_fd >= 0)
        close(p->gate_fd);
    free(p);
}

static void unlink_proc(struct jr_exec_proc *p)
{
    if (!p->prevp)
        return;
    *p->prevp = p->next;
    if (p->next)
        p->next->prevp = p->prevp;
    p->next = NULL;
    p->prevp = NULL;
}

/* Freed once reported, its helper gone and its pipes closed. */
static void maybe_free(struct jr_exec_proc *p)
{
    if (p->reported && p->exited && p->open_handles == 0) {
        unlink_proc(p);
        proc_free(p);
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    struct jr_exec_proc *p = h->data;

    p->open_handles--;
    maybe_free(p);
}

static int outcome_of(const char *name)
{
    for (int k = JR_OUT_EXITED; k <= JR_OUT_CANCELED; k++)
        if (strcmp(jr_exec_outcome_name(k), name) == 0)
            return k;
    return JR_OUT_NONE;
}

static int64_t num_of(const struct jr_jv *o, const char *key, int64_t def)
{
    const struct jr_jv *v = jr_jv_get(o, key);

    return v && v->type == JR_JV_NUM ? (int64_t)v->num : def;
}

/* The helper's outcome line into p->result; without one, what its exit
 * status says. */
static void read_outcome(struct jr_exec_proc *p)
{
    struct jr_exec_result *r = &p->result;
    struct jr_jv *o = NULL;
    const char *name, *msg, *stage;

    r->exit_code = -1;
    r->cpu_ms = r->max_rss_bytes = r->wall_ms = -1;
    if (p->status_len > 0)
        o = jr_jv_parse(p->status_line, p->status_len);
    name = o ? jr_jv_str(o, "outcome") : NULL;
    if (!name || outcome_of(name) == JR_OUT_NONE) {
        r->outcome = p->exit_signal ? JR_OUT_SIGNALED : JR_OUT_SETUP_ERROR;
        r->signal = p->exit_signal;
        if (p->lost)
            snprintf(r->message, sizeof r->message, "the sandbox helper ended without "
                     "reporting (its sandbox server was lost)");
        else
            snprintf(r->message, sizeof r->message, p->exit_signal
                     ? "the sandbox helper was killed by signal %d before reporting"
                     : "the sandbox helper exited with status %d without reporting",
                     p->exit_signal ? p->exit_signal : (int)p->exit_status);
        jr_jv_free(o);
        return;
    }
    r->outcome = outcome_of(name);
    r->exit_code = (int)num_of(o, "exit_code", -1);
    r->signal = (int)num_of(o, "signal", 0);
    r->cpu_ms = num_of(o, "cpu_ms", -1);
    r->max_rss_bytes = num_of(o, "max_rss_bytes", -1);
    r->wall_ms = num_of(o, "wall_ms", -1);
    msg = jr_jv_str(o, "message");
    stage = jr_jv_str(o, "stage");
    if (r->outcome == JR_OUT_SETUP_ERROR)
        snprintf(r->message, sizeof r->message, "setup_error at stage %s (errno %d): %s",
                 stage ? stage : "?", (int)num_of(o, "errno", 0), msg ? msg : "");
    else if (r->outcome == JR_OUT_EXITED && r->exit_code != 0)
        snprintf(r->message, sizeof r->message, "exit code %d", r->exit_code);
    else if (r->outcome == JR_OUT_SIGNALED)
        snprintf(r->message, sizeof r->message, "killed by signal %d", r->signal);
    else if (msg)
        snprintf(r->message, sizeof r->message, "%s", msg);
    jr_jv_free(o);
}

/* Has the helper sent a complete outcome line? It sends it once the task's
 * processes are all dead and reaped (before its namespaces are torn down
 * and its cgroups removed), then closes the status pipe. */
static int have_outcome(const struct jr_exec_proc *p)
{
    struct jr_jv *o;
    const char *name;
    int ok;

    if (!p->status_eof || p->status_len == 0 || p->status_line[p->status_len - 1] != '\n')
        return 0;
    o = jr_jv_parse(p->status_line, p->status_len);
    name = o ? jr_jv_str(o, "outcome") : NULL;
    ok = name && outcome_of(name) != JR_OUT_NONE;
    jr_jv_free(o);
    return ok;
}

/* The attempt ends when every pipe has closed and either the outcome line
 * is in or the helper has exited (without a line: its exit status says
 * what happened). A helper still tearing down is reaped later by the
 * server, whose notice lets the proc go (helper_exited). */
static void maybe_done(struct jr_exec_proc *p)
{
    if (p->reported || p->open_pipes > 0 || (!p->exited && !have_outcome(p)))
        return;
    p->reported = 1;
    jr_sbexec_abort_fetches(p);
    read_outcome(p);
    if (p->fetch_err[0]) { /* the helper only saw its gate close */
        p->result.outcome = JR_OUT_SETUP_ERROR;
        p->result.exit_code = -1;
        p->result.signal = 0;
        snprintf(p->result.message, sizeof p->result.message, "%s", p->fetch_err);
    }
    p->result.duration_ms = (int64_t)(uv_now(p->loop) - p->started);
    p->cbs.done(p->arg, &p->result);
    /* p stays: freed by the caller or by the last handle's close. */
}

static void log_line(void *arg, int stream, const char *line, size_t len)
{
    struct jr_exec_proc *p = arg;
    char note[96];

    if (p->truncated)
        return;
    if (p->logged + (int64_t)len > p->log_cap) {
        p->truncated = 1;
        snprintf(note, sizeof note, "[jobrt] output truncated: more than %lld bytes",
                 (long long)p->log_cap);
        p->cbs.log(p->arg, 2, note, strlen(note));
        return;
    }
    p->logged += (int64_t)len + 1;
    p->cbs.log(p->arg, stream, line, len);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct jr_exec_proc *p = h->data;

    (void)hint;
    if ((uv_pipe_t *)h == &p->status) {
        buf->base = p->status_line + p->status_len;
        buf->len = sizeof p->status_line - 1 - p->status_len;
        if (buf->len == 0) { /* an oversized line: keep reading, drop it */
            p->status_len = 0;
            buf->base = p->status_line;
            buf->len = sizeof p->status_line - 1;
        }
        return;
    }
    jr_exec_lines_room(&p->lines[(uv_pipe_t *)h == &p->out ? 0 : 1], buf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct jr_exec_proc *p = s->data;
    int stream = (uv_pipe_t *)s == &p->out ? 1 : (uv_pipe_t *)s == &p->err ? 2 : 3;

    (void)buf;
    if (n > 0) {
        if (stream == 3) {
            p->status_len += (size_t)n;
            p->status_line[p->status_len] = 0;
            return;
        }
        jr_exec_lines_add(&p->lines[stream - 1], (size_t)n, 0, log_line, p, stream);
        return;
    }
    if (n == 0)
        return;
    if (stream < 3)
        jr_exec_lines_add(&p->lines[stream - 1], 0, 1, log_line, p, stream);
    else
        p->status_eof = 1;
    uv_close((uv_handle_t *)s, on_handle_closed);
    p->open_pipes--;
    maybe_done(p);
}

/* The server reaped p's helper (and killed what was left of its process
 * group), or, with status -1, the server is lost: the helper runs on and
 * its pipes still tell the end. */
static void helper_exited(struct jr_exec_proc *p, int status)
{
    p->exited = 1;
    p->server = NULL;
    if (status < 0)
        p->lost = 1;
    else if (WIFSIGNALED(status))
        p->exit_signal = WTERMSIG(status);
    else
        p->exit_status = WEXITSTATUS(status);
    unlink_proc(p);
    maybe_done(p);
    maybe_free(p);
}

static void on_server_exit(void *owner, struct jr_sbs *s, int32_t pid, int status)
{
    struct sb_exec *ex = owner;
    struct jr_exec_proc *p, *next;

    if (pid > 0) {
        for (p = ex->procs; p; p = p->next)
            if (p->pid == pid && p->server == s) {
                helper_exited(p, status);
                return;
            }
        return;
    }
    /* Lost: a new server starts with the next task (which a done callback
     * below may already start). s frees itself after this returns. */
    if (ex->server == s)
        ex->server = NULL;
    for (p = ex->procs; p; p = next) {
        next = p->next;
        if (p->server == s)
            helper_exited(p, -1);
    }
    jr_sbs_close(s);
    if (--ex->nservers == 0 && ex->closing)
        jr_sbexec_free(ex);
}

int jr_sbexec_start(void *self, const struct jr_exec_spec *spec,
                    const struct jr_exec_cbs *cbs, void *arg,
                    struct jr_exec_proc **out_proc, int64_t *pid, int64_t *pid_start,
                    struct jr_err *e)
{
    struct sb_exec *ex = self;
    struct jr_exec_proc *p = NULL;
    struct sb_task t = { 0 };
    struct argv_b a = { NULL, 0, 0, 0 };
    int gate[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
    int status[2] = { -1, -1 };
    int rc, url_fd[MAX_INPUTS];

    *out_proc = NULL;
    for (int i = 0; i < MAX_INPUTS; i++)
        url_fd[i] = -1;
    if (!spec->argv[0])
        return jr_err_set(e, JR_E_INVALID, "empty command");
    if ((rc = jr_sbexec_read_task(ex, spec, &t, e)))
        goto done;
    if ((rc = jr_sbexec_build_args(ex, spec, &t, url_fd, &a, e)))
        goto done;
    if ((rc = ensure_server(ex, e)))
        goto done;
    p = calloc(1, sizeof *p);
    if (!p) {
        rc = jr_err_set(e, JR_E_SYSTEM, "out of memory");
        goto done;
    }
    p->gate_fd = -1;
    p->log_cap = ex->log_cap;
    p->loop = ex->loop;
    /* The helper's ends, passed to the server; the gate's write end and the
     * pipes' read ends stay here. */
    if (pipe2(gate, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC) ||
        pipe2(status, O_CLOEXEC)) {
        rc = jr_err_set(e, JR_E_SYSTEM, "pipes: %s", strerror(errno));
        goto done;
    }
    uv_pipe_init(ex->loop, &p->out, 0);
    uv_pipe_init(ex->loop, &p->err, 0);
    uv_pipe_init(ex->loop, &p->status, 0);
    p->out.data = p->err.data = p->status.data = p;
    p->open_handles = 3;
    {
        int fds[4] = { gate[0], out[1], err[1], status[1] };
        int32_t pid;
        int r = uv_pipe_open(&p->out, out[0]);
        if (r == 0 && (r = uv_pipe_open(&p->err, err[0])) == 0)
            r = uv_pipe_open(&p->status, status[0]);
        if (r == 0)
            out[0] = err[0] = status[0] = -1; /* the handles' now */
        rc = r ? jr_err_set(e, JR_E_SYSTEM, "pipes: %s", uv_strerror(r))
               : jr_sbs_start(ex->server, a.v + 2, fds, &pid, e);
        if (rc) {
            /* The pipes' handles close; the executor's server, if lost,
             * is replaced at the next start. */
            p->reported = p->exited = 1;
            uv_close((uv_handle_t *)&p->out, on_handle_closed);
            uv_close((uv_handle_t *)&p->err, on_handle_closed);
            uv_close((uv_handle_t *)&p->status, on_handle_closed);
            p = NULL;
            goto done;
        }
        p->pid = pid;
    }
    p->cbs = *cbs;
    p->arg = arg;
    p->server = ex->server;
    p->next = ex->procs;
    p->prevp = &ex->procs;
    if (ex->procs)
        ex->procs->prevp = &p->next;
    ex->procs = p;
    p->gate_fd = gate[1];
    gate[1] = -1;
    jr_sbexec_start_fetches(ex, p, t.inputs, t.ninputs, url_fd);
    p->started = uv_now(ex->loop);
    p->open_pipes = 3;
    uv_read_start((uv_stream_t *)&p->out, on_alloc, on_read);
    uv_read_start((uv_stream_t *)&p->err, on_alloc, on_read);
    uv_read_start((uv_stream_t *)&p->status, on_alloc, on_read);
    *pid = p->pid;
    *pid_start = jr_exec_pid_start(p->pid);
    *out_proc = p;
    p = NULL;
done:
    for (int i = 0; i < MAX_INPUTS; i++)
        if (url_fd[i] >= 0)
            close(url_fd[i]);
    for (int i = 0; i < 2; i++) {
        if (gate[i] >= 0)
            close(gate[i]);
        if (out[i] >= 0)
            close(out[i]);
        if (err[i] >= 0)
            close(err[i]);
        if (status[i] >= 0)
            close(status[i]);
    }
    if (p)
        proc_free(p);
    jr_sbexec_free_list(a.v);
    jr_sbexec_task_free(&t);
    return rc;
}

void jr_sbexec_write_go(struct jr_exec_proc *p)
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

/* The scheduler's go: at once, or when the last url input is in. */
void jr_sbexec_go(struct jr_exec_proc *p)
{
    if (p->fetching > 0) {
        p->go_wanted = 1;
        return;
    }
    jr_sbexec_write_go(p);
}

void jr_sbexec_kill(struct jr_exec_proc *p, int signum)
{
    jr_sbexec_abort_fetches(p);
    p->go_wanted = 0;
    /* Still at its gate: closing it is the cancel, and the helper removes
     * what it prepared. */
    if (p->gate_fd >= 0) {
        close(p->gate_fd);
        p->gate_fd = -1;
        return;
    }
    if (p->exited || p->reported)
        return;
    /* SIGTERM: the helper passes it on and SIGKILLs the tree after its
     * grace. SIGKILL: the helper and its init (one process group) die, and
     * with the init the whole pid namespace. Through the server, which
     * knows the pid is still its child; without it (lost), directly. */
    if (p->server && jr_sbs_kill(p->server, (int32_t)p->pid, signum, signum == SIGKILL) == 0)
        return;
    if (signum == SIGKILL)
        kill(-(pid_t)p->pid, SIGKILL);
    else
        kill((pid_t)p->pid, signum);
}

