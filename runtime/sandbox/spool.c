/* The task's stdout and stderr into the attempt's output spool (a helper
 * with --spool): the helper reads both pipes, and a third one carrying its
 * own messages (the allow-list proxy's refusals) as stderr, cuts them into
 * lines and appends each as one record "1<line>\n" or "2<line>\n" while
 * the log cap allows, then one stderr note that the rest was dropped; it
 * keeps reading (and dropping), so the task never blocks on a full pipe.
 * The file is made at the first line; the outcome may follow as the last
 * record. The format and what the daemon does with it:
 * runtime/exec/record.h. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sandbox/internal.h"

#define READ_CHUNK 16384
/* The records of one read: at most the kept partial line and the chunk,
 * plus two bytes per line, plus the truncation note. */
#define OUT_MAX (JR_SB_LINE_MAX + 3 * READ_CHUNK + 128)

int jr_sb_spool_open(struct jr_sb_spool *sp, const char *path, int64_t cap,
                     struct jr_sb_err *e)
{
    memset(sp, 0, sizeof(*sp));
    for (int k = 0; k < JR_SB_SPOOL_IN; k++)
        sp->in[k] = -1;
    sp->cap = cap;
    sp->fd = -1; /* made at the first line: a task that prints nothing costs no file */
    sp->path = path;
    (void)e; /* the buffers come with the first output (buffers()) */
    return 0;
}

/* The buffers stream k's output needs, made at its first bytes: a task
 * that prints nothing costs no memory (nor the page faults of touching
 * it). 0, or -1 when out of memory (the bytes are then dropped). */
static int buffers(struct jr_sb_spool *sp, int k)
{
    if (!sp->line[k] && !(sp->line[k] = malloc(JR_SB_LINE_MAX)))
        return -1;
    if (!sp->out && !(sp->out = malloc(OUT_MAX)))
        return -1;
    return 0;
}

int jr_sb_spool_pipes(struct jr_sb_spool *sp, int wr[JR_SB_SPOOL_IN], struct jr_sb_err *e)
{
    for (int k = 0; k < JR_SB_SPOOL_IN; k++) {
        int p[2];
        if (pipe2(p, O_CLOEXEC))
            return jr_sb_fail(e, "spool", errno, "the task's output pipes");
        fcntl(p[0], F_SETFL, O_NONBLOCK);
        /* Only we write our messages: a full pipe drops one rather than
         * block the loop that empties it. */
        if (k == 2)
            fcntl(p[1], F_SETFL, O_NONBLOCK);
        sp->in[k] = p[0];
        wr[k] = p[1];
    }
    return 0;
}

/* Queues the record of one line of stream k (0 stdout, 1 stderr) within
 * the cap; out has room for the records of one read. */
static void add_line(struct jr_sb_spool *sp, int k, const char *text, size_t len)
{
    if (sp->truncated)
        return;
    if (sp->cap > 0 && sp->logged + (int64_t)len > sp->cap) {
        sp->truncated = 1;
        sp->outlen += (size_t)snprintf(sp->out + sp->outlen, 64,
                                       "2[jobrt] output truncated: more than %lld bytes\n",
                                       (long long)sp->cap);
        return;
    }
    sp->logged += (int64_t)len + 1;
    sp->out[sp->outlen++] = k == 0 ? '1' : '2';
    memcpy(sp->out + sp->outlen, text, len);
    sp->outlen += len;
    sp->out[sp->outlen++] = '\n';
}

/* Cuts the n new bytes at data into lines of stream k (a partial one is
 * kept, and sent whole at the end or when it reaches JR_SB_LINE_MAX). */
static void cut(struct jr_sb_spool *sp, int k, const char *data, size_t n, int flush)
{
    char *keep = sp->line[k];

    for (size_t i = 0; i < n; i++) {
        if (data[i] == '\n') {
            add_line(sp, k, keep, sp->len[k]);
            sp->len[k] = 0;
            continue;
        }
        keep[sp->len[k]++] = data[i];
        if (sp->len[k] == JR_SB_LINE_MAX) {
            add_line(sp, k, keep, sp->len[k]);
            sp->len[k] = 0;
        }
    }
    if (flush && sp->len[k] > 0) {
        add_line(sp, k, keep, sp->len[k]);
        sp->len[k] = 0;
    }
}

/* Appends the queued records: 1 when there were some. */
static int flush_out(struct jr_sb_spool *sp)
{
    if (sp->outlen == 0)
        return 0;
    if (sp->fd < 0 && !sp->failed) {
        sp->fd = open(sp->path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC |
                      O_NOFOLLOW, 0600);
        sp->failed = sp->fd < 0;
    }
    /* A full disk drops the output, not the task. */
    if (sp->fd >= 0 && jr_sb_write_full(sp->fd, sp->out, sp->outlen) == 0)
        sp->appended++;
    sp->outlen = 0;
    return 1;
}

/* One read of stream k: 1 when records were appended, 0 when not, and at
 * the end of the stream (or an error) the pipe is closed. */
int jr_sb_spool_read(struct jr_sb_spool *sp, int k)
{
    char buf[READ_CHUNK];
    ssize_t n;

    if (sp->in[k] < 0)
        return 0;
    do
        n = read(sp->in[k], buf, sizeof(buf));
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN)
        return 0;
    sp->outlen = 0;
    if (n > 0) {
        if (buffers(sp, k))
            return 0; /* out of memory: dropped, but the pipe is emptied */
        cut(sp, k, buf, (size_t)n, 0);
    } else {
        cut(sp, k, NULL, 0, 1);
        close(sp->in[k]);
        sp->in[k] = -1;
    }
    return flush_out(sp);
}

void jr_sb_spool_drain(struct jr_sb_spool *sp, int64_t ms)
{
    int64_t end = jr_sb_now_ms() + ms;

    for (;;) {
        struct pollfd p[JR_SB_SPOOL_IN];
        int open = 0;
        int64_t left = end - jr_sb_now_ms();
        for (int k = 0; k < JR_SB_SPOOL_IN; k++) {
            p[k].fd = sp->in[k];
            p[k].events = POLLIN;
            open += sp->in[k] >= 0;
        }
        if (!open || left <= 0)
            break;
        if (poll(p, JR_SB_SPOOL_IN, (int)left) < 0 && errno != EINTR)
            break;
        for (int k = 0; k < JR_SB_SPOOL_IN; k++)
            if (p[k].revents & (POLLIN | POLLHUP | POLLERR))
                jr_sb_spool_read(sp, k);
    }
    for (int k = 0; k < JR_SB_SPOOL_IN; k++) /* a writer that outlived the task: cut off */
        if (sp->in[k] >= 0) {
            sp->outlen = 0;
            cut(sp, k, NULL, 0, 1);
            flush_out(sp);
            close(sp->in[k]);
            sp->in[k] = -1;
        }
}

int jr_sb_spool_result(struct jr_sb_spool *sp, const char *line, size_t len)
{
    if (sp->fd < 0)
        sp->fd = open(sp->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (sp->fd < 0)
        return -1;
    return jr_sb_write_full(sp->fd, "R", 1) == 0 && jr_sb_write_full(sp->fd, line, len) == 0 ? 0 : -1;
}

void jr_sb_spool_close(struct jr_sb_spool *sp)
{
    for (int k = 0; k < JR_SB_SPOOL_IN; k++) {
        if (sp->in[k] >= 0)
            close(sp->in[k]);
        sp->in[k] = -1;
        free(sp->line[k]);
        sp->line[k] = NULL;
    }
    if (sp->fd >= 0)
        close(sp->fd);
    sp->fd = -1;
    free(sp->out);
    sp->out = NULL;
}
