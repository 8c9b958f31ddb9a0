/* The sandbox executor's attempts once their helper runs, whether this
 * daemon started it (sandbox_proc.c) or attached to it (sandbox_attach.c):
 * the control connection's wakes and outcome line, the spool read into log
 * lines (its last record the outcome when no daemon took it), the end, its
 * acknowledgement once committed, and freeing (contract: exec/record.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec/sandbox_internal.h"

static void on_closed(uv_handle_t *h)
{
    struct jr_exec_proc *p = h->data;
    struct sb_exec *ex = p->ex;

    if (--p->open_handles > 0 || !p->reported)
        return;
    if (p->prevp) {
        *p->prevp = p->next;
        if (p->next)
            p->next->prevp = p->prevp;
    }
    jr_sbexec_abort_fetches(p);
    for (int i = 0; i < p->nfetches; i++)
        free(p->fetches[i].url);
    free(p->fetches);
    jr_exec_spool_close(&p->spool);
    if (p->gate_fd >= 0)
        close(p->gate_fd);
    if (p->pidfd >= 0)
        close(p->pidfd);
    free(p->spool_path);
    free(p);
    ex->nprocs--;
    jr_sbexec_maybe_free(ex);
}

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, on_closed);
}

void jr_sbexec_release(struct jr_exec_proc *p)
{
    p->reported = 1;
    jr_sbexec_abort_fetches(p);
    if (p->ctl_open) {
        p->ctl_open = 0;
        close_handle((uv_handle_t *)&p->ctl);
    }
    if (p->poll_open) {
        p->poll_open = 0;
        close_handle((uv_handle_t *)&p->exit_poll);
    }
    close_handle((uv_handle_t *)&p->kick);
}

struct jr_exec_proc *jr_sbexec_proc_new(struct sb_exec *ex, const char *spool_path,
                                        const struct jr_exec_cbs *cbs, void *arg,
                                        int64_t log_offset)
{
    struct jr_exec_proc *p = calloc(1, sizeof *p);

    if (!p || !(p->spool_path = strdup(spool_path))) {
        free(p);
        return NULL;
    }
    p->ex = ex;
    p->cbs = *cbs;
    p->arg = arg;
    p->gate_fd = p->pidfd = -1;
    p->started = uv_now(ex->loop);
    jr_exec_spool_init(&p->spool, log_offset);
    uv_timer_init(ex->loop, &p->kick);
    p->kick.data = p;
    p->open_handles = 1;
    p->next = ex->procs;
    p->prevp = &ex->procs;
    if (ex->procs)
        ex->procs->prevp = &p->next;
    ex->procs = p;
    ex->nprocs++;
    return p;
}

static int outcome_of(const char *name)
{
    for (int k = JR_OUT_EXITED; k <= JR_OUT_LAST; k++)
        if (strcmp(jr_exec_outcome_name(k), name) == 0)
            return k;
    return JR_OUT_NONE;
}

static int64_t num_of(const struct jr_jv *o, const char *key, int64_t def)
{
    const struct jr_jv *v = jr_jv_get(o, key);

    return v && v->type == JR_JV_NUM ? (int64_t)v->num : def;
}

/* A whole outcome line in status_line? */
static int have_outcome(const struct jr_exec_proc *p)
{
    struct jr_jv *o;
    const char *name;
    int ok;

    if (p->status_len == 0 || p->status_line[p->status_len - 1] != '\n')
        return 0;
    o = jr_jv_parse(p->status_line, p->status_len);
    name = o ? jr_jv_str(o, "outcome") : NULL;
    ok = name && outcome_of(name) != JR_OUT_NONE;
    jr_jv_free(o);
    return ok;
}

/* No outcome line: what is known of the helper's end. */
static void no_outcome(struct jr_exec_proc *p)
{
    struct jr_exec_result *r = &p->result;

    r->outcome = p->exit_signal ? JR_OUT_SIGNALED : JR_OUT_SETUP_ERROR;
    r->signal = p->exit_signal;
    if (p->attached && p->gone_why[0]) {
        r->outcome = JR_OUT_LOST;
        snprintf(r->message, sizeof r->message, "%s", p->gone_why);
    } else if (p->attached) {
        r->outcome = JR_OUT_LOST;
        snprintf(r->message, sizeof r->message, p->gone
                 ? "its sandbox helper (pid %lld) was gone without an outcome when the"
                   " daemon came back"
                 : "its sandbox helper (pid %lld) ended without an outcome",
                 (long long)p->pid);
    } else if (p->lost) {
        snprintf(r->message, sizeof r->message, "the sandbox helper ended without "
                 "reporting (its sandbox server was lost)");
    } else {
        snprintf(r->message, sizeof r->message, p->exit_signal
                 ? "the sandbox helper was killed by signal %d before reporting"
                 : "the sandbox helper exited with status %d without reporting",
                 p->exit_signal ? p->exit_signal : (int)p->exit_status);
    }
}

/* The outcome line into p->result. */
static void read_outcome(struct jr_exec_proc *p)
{
    struct jr_exec_result *r = &p->result;
    struct jr_jv *o;
    const char *msg, *stage;

    r->exit_code = -1;
    r->cpu_ms = r->max_rss_bytes = r->wall_ms = -1;
    if (!have_outcome(p) || !(o = jr_jv_parse(p->status_line, p->status_len))) {
        no_outcome(p);
        return;
    }
    r->outcome = outcome_of(jr_jv_str(o, "outcome"));
    r->exit_code = (int)num_of(o, "exit_code", -1);
    r->signal = (int)num_of(o, "signal", 0);
    r->cpu_ms = num_of(o, "cpu_ms", -1);
    r->max_rss_bytes = num_of(o, "max_rss_bytes", -1);
    r->wall_ms = num_of(o, "wall_ms", -1);
    r->ended_ms = num_of(o, "ended_ms", 0);
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

/* Reads what was spooled since (final: the helper is done with it). */
static void read_spool(struct jr_exec_proc *p, int final)
{
    if (jr_exec_spool_read(&p->spool, p->spool_path, final, &p->cbs, p->arg) && final) {
        char note[200];
        snprintf(note, sizeof note, "[jobrt] reading the output spool: %s", strerror(errno));
        p->cbs.log(p->arg, 2, note, strlen(note));
    }
}

/* The attempt's end is committed (this runs from the loop after the
 * iteration that reported it, whose store batch is then on disk): the
 * helper that sent its outcome hears so ('k': it need not keep it), and
 * the spool goes. */
static void on_finish(uv_timer_t *t)
{
    struct jr_exec_proc *p = t->data;

    if (p->ctl_open && p->line_on_ctl) {
        uv_buf_t k = uv_buf_init("k", 1);
        uv_try_write((uv_stream_t *)&p->ctl, &k, 1);
    }
    unlink(p->spool_path);
    jr_sbexec_release(p);
}

/* Has the helper let go of the run (exited, or no notice can tell)? */
static int helper_done(struct jr_exec_proc *p)
{
    struct pollfd pf;

    if (p->attached ? p->pidfd < 0 || p->exited : !p->server || p->exited)
        return 1;
    if (!p->attached)
        return 0; /* the server's notice comes */
    pf.fd = p->pidfd;
    pf.events = POLLIN;
    pf.revents = 0;
    if (poll(&pf, 1, 0) == 1) {
        p->exited = 1;
        return 1;
    }
    if (!p->poll_open && jr_sbexec_watch_exit(p, p->pidfd, NULL) != JR_OK)
        return 1; /* cannot wait: go on without it */
    return 0;
}

/* The attempt ends once the helper has sent its outcome line and ended
 * its side of the connection, or, without the line, once it has exited
 * (its outcome, if any, is then the last record of its spool). */
static void maybe_done(struct jr_exec_proc *p)
{
    if (p->reported || !p->ctl_eof)
        return;
    if (have_outcome(p)) {
        p->line_on_ctl = 1;
        if (p->woken || p->attached)
            read_spool(p, 1);
    } else {
        if (!helper_done(p))
            return;
        read_spool(p, 1);
        if (p->spool.result) {
            p->status_len = strlen(p->spool.result);
            if (p->status_len >= sizeof p->status_line)
                p->status_len = 0;
            memcpy(p->status_line, p->spool.result, p->status_len);
            p->status_line[p->status_len] = 0;
        }
    }
    read_outcome(p);
    if (p->fetch_err[0]) { /* the helper only saw its gate close */
        p->result.outcome = JR_OUT_SETUP_ERROR;
        p->result.exit_code = -1;
        p->result.signal = 0;
        snprintf(p->result.message, sizeof p->result.message, "%s", p->fetch_err);
    }
    p->result.duration_ms = (int64_t)(uv_now(p->ex->loop) - p->started);
    p->reported = 1;
    jr_sbexec_abort_fetches(p);
    if (p->poll_open) {
        p->poll_open = 0;
        uv_close((uv_handle_t *)&p->exit_poll, on_closed);
    }
    uv_timer_start(&p->kick, on_finish, 0, 0);
    p->cbs.done(p->arg, &p->result);
    /* p goes once on_finish has run and its handles have closed. */
}

static void on_kick(uv_timer_t *t)
{
    struct jr_exec_proc *p = t->data;

    if (p->reported)
        return;
    read_spool(p, 0);
    maybe_done(p);
}

void jr_sbexec_kick(struct jr_exec_proc *p)
{
    uv_timer_start(&p->kick, on_kick, 0, 0);
}

static void on_ctl_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct jr_exec_proc *p = h->data;

    (void)hint;
    buf->base = p->rbuf;
    buf->len = sizeof p->rbuf;
}

/* Wakes ('o') and then the outcome line. */
static void on_ctl_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct jr_exec_proc *p = s->data;
    int woke = 0;

    if (n > 0) {
        for (ssize_t i = 0; i < n; i++) {
            if (p->status_len == 0 && buf->base[i] == 'o') {
                woke = 1;
                continue;
            }
            if (p->status_len < sizeof p->status_line - 1)
                p->status_line[p->status_len++] = buf->base[i];
        }
        p->status_line[p->status_len] = 0;
        if (woke) {
            p->woken = 1;
            read_spool(p, 0);
        }
        return;
    }
    if (n == 0)
        return;
    /* The helper ended its side: after its outcome line it waits for our
     * 'k' on the same connection (on_finish), so it stays open. */
    p->ctl_eof = 1;
    uv_read_stop(s);
    if (n != UV_EOF) {
        p->ctl_open = 0;
        close_handle((uv_handle_t *)&p->ctl);
    }
    maybe_done(p);
}

int jr_sbexec_watch(struct jr_exec_proc *p, int fd, struct jr_err *e)
{
    int r;

    uv_pipe_init(p->ex->loop, &p->ctl, 0);
    p->ctl.data = p;
    p->open_handles++;
    p->ctl_open = 1;
    if ((r = uv_pipe_open(&p->ctl, fd)) != 0)
        close(fd); /* not the handle's */
    else
        r = uv_read_start((uv_stream_t *)&p->ctl, on_ctl_alloc, on_ctl_read);
    if (r != 0) {
        p->ctl_open = 0;
        close_handle((uv_handle_t *)&p->ctl);
        return jr_err_set(e, JR_E_SYSTEM, "the helper's control connection: %s",
                          uv_strerror(r));
    }
    return JR_OK;
}

static void on_exit_poll(uv_poll_t *h, int status, int events)
{
    struct jr_exec_proc *p = h->data;

    (void)status;
    (void)events;
    p->ctl_eof = p->exited = 1;
    p->poll_open = 0;
    close_handle((uv_handle_t *)&p->exit_poll);
    maybe_done(p);
}

int jr_sbexec_watch_exit(struct jr_exec_proc *p, int pidfd, struct jr_err *e)
{
    int r;

    p->pidfd = pidfd;
    if ((r = uv_poll_init(p->ex->loop, &p->exit_poll, pidfd)) != 0)
        return jr_err_set(e, JR_E_SYSTEM, "watching the helper: %s", uv_strerror(r));
    p->exit_poll.data = p;
    p->open_handles++;
    p->poll_open = 1;
    uv_poll_start(&p->exit_poll, UV_READABLE, on_exit_poll);
    return JR_OK;
}

void jr_sbexec_helper_exited(struct jr_exec_proc *p, int status)
{
    p->exited = 1;
    p->server = NULL;
    if (status < 0)
        p->lost = 1;
    else if (WIFSIGNALED(status))
        p->exit_signal = WTERMSIG(status);
    else
        p->exit_status = WEXITSTATUS(status);
    maybe_done(p);
}
