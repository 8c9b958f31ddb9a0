/* A task process's gate, output pipes and handle bookkeeping for the plain
 * executor (see child.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "exec/child.h"

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void on_closed(uv_handle_t *h)
{
    struct jr_exec_child *c = h->data;

    c->open_handles--;
    c->hooks->closed(c->owner);
}

void jr_exec_child_close(struct jr_exec_child *c, uv_handle_t *h)
{
    h->data = c;
    uv_close(h, on_closed);
}

int jr_exec_child_open_pipe(struct jr_exec_child *c, uv_pipe_t *h, int fd,
                            struct jr_err *e)
{
    int r;

    uv_pipe_init(c->loop, h, 0);
    h->data = c;
    c->open_handles++;
    if ((r = uv_pipe_open(h, fd)) != 0) {
        jr_exec_child_close(c, (uv_handle_t *)h);
        return jr_err_set(e, JR_E_SYSTEM, "pipes: %s", uv_strerror(r));
    }
    c->open_pipes++;
    return JR_OK;
}

int jr_exec_child_open(struct jr_exec_child *c, uv_loop_t *loop, void *owner,
                       const struct jr_exec_child_hooks *hooks,
                       const struct jr_exec_cbs *cbs, void *arg, int64_t log_cap,
                       struct jr_err *e)
{
    int gate[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
    int rc;

    memset(c, 0, sizeof *c);
    c->owner = owner;
    c->hooks = hooks;
    c->loop = loop;
    c->cbs = *cbs;
    c->arg = arg;
    c->log_cap = log_cap;
    c->gate_fd = c->fds[0] = c->fds[1] = c->fds[2] = -1;
    if (pipe2(gate, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) {
        rc = jr_err_set(e, JR_E_SYSTEM, "pipes: %s", strerror(errno));
        goto fail;
    }
    /* Handles first: once one is open, failures close through the loop. */
    if ((rc = jr_exec_child_open_pipe(c, &c->out, out[0], e)))
        goto fail;
    out[0] = -1;
    if ((rc = jr_exec_child_open_pipe(c, &c->err, err[0], e))) {
        jr_exec_child_close(c, (uv_handle_t *)&c->out);
        goto fail;
    }
    err[0] = -1;
    c->open_pipes = 0; /* counted again once reading starts */
    c->gate_fd = gate[1];
    c->fds[0] = gate[0];
    c->fds[1] = out[1];
    c->fds[2] = err[1];
    return JR_OK;
fail:
    for (int i = 0; i < 2; i++) {
        close_fd(&gate[i]);
        close_fd(&out[i]);
        close_fd(&err[i]);
    }
    return rc;
}

/* One line for the scheduler, within the attempt's cap. */
static void log_line(void *arg, int stream, const char *line, size_t len)
{
    struct jr_exec_child *c = arg;
    char note[96];

    if (c->truncated)
        return;
    if (c->log_cap > 0 && c->logged + (int64_t)len > c->log_cap) {
        c->truncated = 1;
        snprintf(note, sizeof note, "[jobrt] output truncated: more than %lld bytes",
                 (long long)c->log_cap);
        c->cbs.log(c->arg, 2, note, strlen(note));
        return;
    }
    c->logged += (int64_t)len + 1;
    c->cbs.log(c->arg, stream, line, len);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct jr_exec_child *c = h->data;

    (void)hint;
    jr_exec_lines_room(&c->lines[(uv_pipe_t *)h == &c->out ? 0 : 1], buf);
}

void jr_exec_child_pipe_ended(struct jr_exec_child *c, uv_stream_t *s)
{
    jr_exec_child_close(c, (uv_handle_t *)s);
    c->open_pipes--;
    c->hooks->ended(c->owner);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct jr_exec_child *c = s->data;
    int stream = (uv_pipe_t *)s == &c->out ? 1 : 2;

    (void)buf;
    if (n > 0) {
        jr_exec_lines_add(&c->lines[stream - 1], (size_t)n, 0, log_line, c, stream);
        return;
    }
    if (n == 0)
        return;
    /* EOF or error: flush what is left, stop reading. */
    jr_exec_lines_add(&c->lines[stream - 1], 0, 1, log_line, c, stream);
    jr_exec_child_pipe_ended(c, s);
}

void jr_exec_child_started(struct jr_exec_child *c)
{
    for (int i = 0; i < 3; i++)
        close_fd(&c->fds[i]);
    c->started = uv_now(c->loop);
    c->open_pipes += 2;
    uv_read_start((uv_stream_t *)&c->out, on_alloc, on_read);
    uv_read_start((uv_stream_t *)&c->err, on_alloc, on_read);
}

void jr_exec_child_abandon(struct jr_exec_child *c)
{
    for (int i = 0; i < 3; i++)
        close_fd(&c->fds[i]);
    close_fd(&c->gate_fd);
    jr_exec_child_close(c, (uv_handle_t *)&c->out);
    jr_exec_child_close(c, (uv_handle_t *)&c->err);
}

void jr_exec_child_go(struct jr_exec_child *c)
{
    ssize_t w;

    if (c->gate_fd < 0)
        return;
    do
        w = write(c->gate_fd, "go\n", 3);
    while (w < 0 && errno == EINTR);
    close_fd(&c->gate_fd);
}

int jr_exec_child_shut(struct jr_exec_child *c)
{
    if (c->gate_fd < 0)
        return 0;
    close_fd(&c->gate_fd);
    return 1;
}

void jr_exec_child_done(struct jr_exec_child *c, struct jr_exec_result *r)
{
    r->duration_ms = (int64_t)(uv_now(c->loop) - c->started);
    c->cbs.done(c->arg, r);
}

void jr_exec_child_free(struct jr_exec_child *c)
{
    jr_exec_lines_free(&c->lines[0]);
    jr_exec_lines_free(&c->lines[1]);
    for (int i = 0; i < 3; i++)
        close_fd(&c->fds[i]);
    close_fd(&c->gate_fd);
}
