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
    jr_exec_child_free(&p->c);
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
static void maybe_free(void *owner)
{
    struct jr_exec_proc *p = owner;

    if (p->reported && p->exited && p->c.open_handles == 0) {
        unlink_proc(p);
        proc_free(p);
    }
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
static void maybe_done(void *owner)
{
    struct jr_exec_proc *p = owner;

    if (p->reported || p->c.open_pipes > 0 || (!p->exited && !have_outcome(p)))
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
    jr_exec_child_done(&p->c, &p->result);
    /* p stays: freed by the caller or by the last handle's close. */
}

static const struct jr_exec_child_hooks hooks = { maybe_done, maybe_free };

/* The status pipe: one outcome line, kept whole (an oversized one is
 * dropped). */
static void on_status_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct jr_exec_proc *p = ((struct jr_exec_child *)h->data)->owner;

    (void)hint;
    buf->base = p->status_line + p->status_len;
    buf->len = sizeof p->status_line - 1 - p->status_len;
    if (buf->len == 0) { /* an oversized line: keep reading, drop it */
        p->status_len = 0;
        buf->base = p->status_line;
        buf->len = sizeof p->status_line - 1;
    }
}

static void on_status_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct jr_exec_proc *p = ((struct jr_exec_child *)s->data)->owner;

    (void)buf;
    if (n > 0) {
        p->status_len += (size_t)n;
        p->status_line[p->status_len] = 0;
        return;
    }
    if (n == 0)
        return;
    p->status_eof = 1;
    jr_exec_child_pipe_ended(&p->c, s);
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
    int status[2] = { -1, -1 }, status_open = 0;
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
    /* The helper's ends (gate, stdout, stderr, status) go to the server;
     * the gate's write end and the pipes' read ends stay here. */
    if ((rc = jr_exec_child_open(&p->c, ex->loop, p, &hooks, cbs, arg, ex->log_cap, e))) {
        p->reported = p->exited = 1;
        if (p->c.open_handles > 0)
            p = NULL; /* freed once its handles have closed */
        goto done;
    }
    if (pipe2(status, O_CLOEXEC))
        rc = jr_err_set(e, JR_E_SYSTEM, "pipes: %s", strerror(errno));
    else if ((rc = jr_exec_child_open_pipe(&p->c, &p->status, status[0], e)) == 0)
        status[0] = -1, status_open = 1; /* the handle's now */
    if (rc == 0) {
        int fds[4] = { p->c.fds[0], p->c.fds[1], p->c.fds[2], status[1] };
        int32_t hpid;
        if ((rc = jr_sbs_start(ex->server, a.v + 2, fds, &hpid, e)) == 0)
            p->pid = hpid;
    }
    if (rc) {
        /* The pipes' handles close; the executor's server, if lost, is
         * replaced at the next start. */
        p->reported = p->exited = 1;
        if (status_open)
            jr_exec_child_close(&p->c, (uv_handle_t *)&p->status);
        jr_exec_child_abandon(&p->c);
        p = NULL;
        goto done;
    }
    p->server = ex->server;
    p->next = ex->procs;
    p->prevp = &ex->procs;
    if (ex->procs)
        ex->procs->prevp = &p->next;
    ex->procs = p;
    jr_sbexec_start_fetches(ex, p, t.inputs, t.ninputs, url_fd);
    jr_exec_child_started(&p->c);
    uv_read_start((uv_stream_t *)&p->status, on_status_alloc, on_status_read);
    *pid = p->pid;
    *pid_start = jr_exec_pid_start(p->pid);
    *out_proc = p;
    p = NULL;
done:
    for (int i = 0; i < MAX_INPUTS; i++)
        if (url_fd[i] >= 0)
            close(url_fd[i]);
    for (int i = 0; i < 2; i++)
        if (status[i] >= 0)
            close(status[i]);
    if (p)
        proc_free(p);
    jr_sbexec_free_list(a.v);
    jr_sbexec_task_free(&t);
    return rc;
}

/* The scheduler's go: at once, or when the last url input is in. */
void jr_sbexec_go(struct jr_exec_proc *p)
{
    if (p->fetching > 0) {
        p->go_wanted = 1;
        return;
    }
    jr_exec_child_go(&p->c);
}

void jr_sbexec_kill(struct jr_exec_proc *p, int signum)
{
    jr_sbexec_abort_fetches(p);
    p->go_wanted = 0;
    /* Still at its gate: closing it is the cancel, and the helper removes
     * what it prepared. */
    if (jr_exec_child_shut(&p->c))
        return;
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

