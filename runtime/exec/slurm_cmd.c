/* The Slurm executor's commands (sbatch, squeue, sacct, scancel) run with
 * uv_spawn on the loop: their output collected (capped), their status
 * handed to a callback once they exited and their pipes ended, each
 * bounded in time. Nothing here blocks. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/slurm.h"

#define OUT_CAP (16 << 20)
#define ERR_CAP (64 << 10)
#define DEFAULT_TIMEOUT_MS 60000

extern char **environ;

struct sl_cmd {
    struct sl_cmds *owner;
    struct sl_cmd *next, **prevp;
    uv_process_t proc;
    uv_pipe_t pipes[2];
    uv_timer_t timer;
    struct jr_buf buf[2];
    int handles;                 /* not yet closed */
    int pipes_open, exited, status, timed_out, reported;
    char why[160];               /* could not run: the reason */
    char drop[4096];             /* reads past the cap land here */
    sl_cmd_cb cb;
    void *arg;
};

int sl_cmds_init(struct sl_cmds *c, uv_loop_t *loop, const char *bin, const char *conf)
{
    size_t n = 0;

    memset(c, 0, sizeof *c);
    c->loop = loop;
    c->timeout_ms = DEFAULT_TIMEOUT_MS;
    if (!(c->bin = strdup(bin ? bin : "")))
        return -1;
    if (!conf)
        return 0;
    /* The daemon's environment with SLURM_CONF set to conf. */
    while (environ[n])
        n++;
    if (!(c->env = calloc(n + 2, sizeof *c->env)))
        return -1;
    n = 0;
    for (char **v = environ; *v; v++)
        if (strncmp(*v, "SLURM_CONF=", 11) != 0 && !(c->env[n++] = strdup(*v)))
            return -1;
    if (asprintf(&c->env[n], "SLURM_CONF=%s", conf) < 0) {
        c->env[n] = NULL;
        return -1;
    }
    return 0;
}

void sl_cmds_free(struct sl_cmds *c)
{
    for (char **v = c->env; v && *v; v++)
        free(*v);
    free(c->env);
    free(c->bin);
    c->env = NULL;
    c->bin = NULL;
}

static void cmd_closed(uv_handle_t *h)
{
    struct sl_cmd *cmd = h->data;
    struct sl_cmds *c = cmd->owner;

    if (--cmd->handles > 0)
        return;
    if (cmd->prevp) {
        *cmd->prevp = cmd->next;
        if (cmd->next)
            cmd->next->prevp = cmd->prevp;
    }
    c->nrunning--;
    jr_buf_free(&cmd->buf[0]);
    jr_buf_free(&cmd->buf[1]);
    free(cmd);
    if (c->closed && c->nrunning == 0)
        c->closed(c->closed_arg);
}

static void close_all(struct sl_cmd *cmd)
{
    uv_handle_t *hs[4] = {
        (uv_handle_t *)&cmd->proc, (uv_handle_t *)&cmd->pipes[0],
        (uv_handle_t *)&cmd->pipes[1], (uv_handle_t *)&cmd->timer
    };

    for (int i = 0; i < 4; i++)
        if (hs[i]->data == cmd && !uv_is_closing(hs[i]))
            uv_close(hs[i], cmd_closed);
}

static void finish(struct sl_cmd *cmd)
{
    if (cmd->reported || cmd->pipes_open > 0 || !cmd->exited)
        return;
    cmd->reported = 1;
    if (cmd->cb) {
        if (jr_buf_add(&cmd->buf[0], "", 1) || jr_buf_add(&cmd->buf[1], "", 1))
            cmd->cb(cmd->arg, -1, "", 0, "out of memory", 13);
        else if (cmd->status < 0)
            cmd->cb(cmd->arg, -1, "", 0, cmd->why, strlen(cmd->why));
        else
            cmd->cb(cmd->arg, cmd->status, cmd->buf[0].data, cmd->buf[0].len - 1,
                    cmd->buf[1].data, cmd->buf[1].len - 1);
    }
    close_all(cmd);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct sl_cmd *cmd = h->data;
    int k = (uv_pipe_t *)h == &cmd->pipes[1];
    struct jr_buf *b = &cmd->buf[k];
    size_t cap = (size_t)(k ? ERR_CAP : OUT_CAP);

    (void)hint;
    if (b->cap - b->len < 4096 && b->len < cap) {
        size_t want = b->cap ? b->cap * 2 : 16384;
        char *d = realloc(b->data, want);
        if (d) {
            b->data = d;
            b->cap = want;
        }
    }
    /* Past the cap (or out of memory) what comes is read and dropped. */
    if (b->cap - b->len < 1024 || b->len >= cap) {
        buf->base = cmd->drop;
        buf->len = sizeof cmd->drop;
        return;
    }
    buf->base = b->data + b->len;
    buf->len = b->cap - b->len - 1;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct sl_cmd *cmd = s->data;
    int k = (uv_pipe_t *)s == &cmd->pipes[1];
    struct jr_buf *b = &cmd->buf[k];

    if (n > 0 && b->data && buf->base == b->data + b->len)
        b->len += (size_t)n;
    if (n < 0) {
        uv_read_stop(s);
        cmd->pipes_open--;
        finish(cmd);
    }
}

static void on_cmd_exit(uv_process_t *h, int64_t status, int signum)
{
    struct sl_cmd *cmd = h->data;

    cmd->exited = 1;
    cmd->status = signum ? 128 + signum : (int)status;
    if (cmd->timed_out) {
        cmd->status = -1;
        snprintf(cmd->why, sizeof cmd->why, "did not answer within %lld s",
                 (long long)(cmd->owner->timeout_ms / 1000));
    }
    uv_timer_stop(&cmd->timer);
    finish(cmd);
}

static void on_timer(uv_timer_t *t)
{
    struct sl_cmd *cmd = t->data;

    if (cmd->exited) /* could not spawn: report from the loop */
        return finish(cmd);
    cmd->timed_out = 1;
    uv_process_kill(&cmd->proc, SIGKILL);
}

int sl_cmd_run(struct sl_cmds *c, char *const *argv, sl_cmd_cb cb, void *arg)
{
    struct sl_cmd *cmd = calloc(1, sizeof *cmd);
    uv_process_options_t o;
    uv_stdio_container_t stdio[3];
    char file[4096];
    int r;

    if (!cmd)
        return -1;
    cmd->owner = c;
    cmd->cb = cb;
    cmd->arg = arg;
    cmd->next = c->running;
    if (c->running)
        c->running->prevp = &cmd->next;
    cmd->prevp = &c->running;
    c->running = cmd;
    c->nrunning++;
    uv_timer_init(c->loop, &cmd->timer);
    cmd->timer.data = cmd;
    cmd->handles++;
    if (c->bin[0])
        snprintf(file, sizeof file, "%s/%s", c->bin, argv[0]);
    else
        snprintf(file, sizeof file, "%s", argv[0]);
    memset(stdio, 0, sizeof stdio);
    stdio[0].flags = UV_IGNORE;
    for (int k = 0; k < 2; k++) {
        uv_pipe_init(c->loop, &cmd->pipes[k], 0);
        cmd->pipes[k].data = cmd;
        cmd->handles++;
        stdio[k + 1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
        stdio[k + 1].data.stream = (uv_stream_t *)&cmd->pipes[k];
    }
    memset(&o, 0, sizeof o);
    o.exit_cb = on_cmd_exit;
    o.file = file;
    o.args = (char **)argv;
    o.env = c->env;
    o.stdio_count = 3;
    o.stdio = stdio;
    r = uv_spawn(c->loop, &cmd->proc, &o);
    cmd->proc.data = cmd;
    cmd->handles++;
    if (r != 0) {
        cmd->exited = 1;
        cmd->status = -1;
        snprintf(cmd->why, sizeof cmd->why, "cannot run %.100s: %s", file, uv_strerror(r));
        uv_timer_start(&cmd->timer, on_timer, 0, 0);
        return 0;
    }
    cmd->pipes_open = 2;
    uv_read_start((uv_stream_t *)&cmd->pipes[0], on_alloc, on_read);
    uv_read_start((uv_stream_t *)&cmd->pipes[1], on_alloc, on_read);
    uv_timer_start(&cmd->timer, on_timer, (uint64_t)c->timeout_ms, 0);
    return 0;
}

void sl_cmds_close(struct sl_cmds *c, void (*closed)(void *arg), void *arg)
{
    struct sl_cmd *cmd;

    if (!c->running) {
        closed(arg);
        return;
    }
    c->closed = closed;
    c->closed_arg = arg;
    for (cmd = c->running; cmd; cmd = cmd->next) {
        cmd->reported = 1;
        close_all(cmd);
    }
}
