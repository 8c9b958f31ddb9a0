/* The Slurm executor's view of its jobs: every poll interval one squeue
 * call for all of them (never one per task); for a job squeue no longer
 * lists (older than MinJobAge, or forgotten), one sacct call (slurmdbd,
 * else the jobcomp file with -c). Running jobs have their attempts' output
 * read back as log lines; an attempt ends with its outcome file (a batched
 * one as soon as its step wrote it) or with its job's final state. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exec/slurm.h"

#define OUTCOME_MAX 4096

/* ---- output ---- */

static void on_line(void *arg, int stream, const char *line, size_t len)
{
    struct jr_exec_proc *p = arg;
    char note[200];

    if (p->truncated)
        return;
    if (p->logged + (int64_t)len + 1 > p->log_cap) {
        p->truncated = 1;
        snprintf(note, sizeof note, "jobrt: output beyond the log cap (%lld bytes) is not"
                 " logged; all of it is in the run folder's stdout and stderr",
                 (long long)p->log_cap);
        p->cbs.log(p->arg, 2, note, strlen(note));
        return;
    }
    p->logged += (int64_t)len + 1;
    p->cbs.log(p->arg, stream, line, len);
}

void sl_read_output(struct jr_exec_proc *p, int final)
{
    static const char *const names[2] = { "stdout", "stderr" };
    char path[4200];

    for (int k = 0; k < 2; k++) {
        int fd;
        snprintf(path, sizeof path, "%s/%s", p->run_dir, names[k]);
        fd = p->truncated ? -1 : open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        while (fd >= 0 && !p->truncated) {
            uv_buf_t buf;
            ssize_t n;
            jr_exec_lines_room(&p->lines[k], &buf);
            if (!buf.base || buf.len == 0)
                break;
            n = pread(fd, buf.base, buf.len, (off_t)p->read[k]);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            p->read[k] += n;
            jr_exec_lines_add(&p->lines[k], (size_t)n, 0, on_line, p, k + 1);
        }
        if (fd >= 0)
            close(fd);
        if (final)
            jr_exec_lines_add(&p->lines[k], 0, 1, on_line, p, k + 1);
    }
    /* The store keeps how far the log rows reach, with them. */
    if (p->cbs.progress && sl_log_offset(p) != p->progress) {
        p->progress = sl_log_offset(p);
        p->cbs.progress(p->arg, p->progress);
    }
}

/* ---- ending attempts ---- */

/* run/outcome into buf; its length, 0 when there is none yet. */
static size_t read_outcome(const struct jr_exec_proc *p, char *buf, size_t size)
{
    char path[4200];
    ssize_t n;
    int fd;

    snprintf(path, sizeof path, "%s/outcome", p->run_dir);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
        return 0;
    n = read(fd, buf, size - 1);
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    return n > 0 ? (size_t)n : 0;
}

static void finish(struct jr_exec_proc *p, const struct sl_state *st)
{
    char line[OUTCOME_MAX];
    size_t n;

    sl_read_output(p, 1);
    n = read_outcome(p, line, sizeof line);
    sl_outcome(n ? line : NULL, n, st, p->cancel_sig != 0, &p->result);
    sl_end(p);
}

static void finish_batch(struct sl_batch *b, const struct sl_state *st)
{
    struct jr_exec_proc *p, *next;

    b->final = 1;
    for (p = b->procs; p; p = next) {
        next = p->bnext;
        finish(p, st);
    }
}

/* A started job: output so far; batched attempts that wrote their
 * outcome end; cancels whose step was not known yet go out. */
static void follow(struct sl_batch *b)
{
    struct jr_exec_proc *p, *next;
    char line[OUTCOME_MAX];

    for (p = b->procs; p; p = next) {
        next = p->bnext;
        if (!b->single && read_outcome(p, line, sizeof line)) {
            finish(p, &b->st);
            continue;
        }
        sl_read_output(p, 0);
        if (p->cancel_sig && !p->cancel_done)
            sl_cancel(p, p->cancel_sig);
    }
}

/* ---- sacct, for jobs squeue forgot ---- */

static void ask_sacct(struct sl_exec *ex);

static void on_sacct(void *arg, int status, const char *out, size_t outlen,
                     const char *err, size_t errlen)
{
    struct sl_exec *ex = arg;
    struct sl_batch *b;
    struct sl_state st;
    const char *line = out, *end = out + outlen;

    (void)err;
    (void)errlen;
    ex->polling = 0;
    if (ex->closing)
        return;
    if (status != 0 && ex->sacct_flag == 0) {
        /* No slurmdbd: the jobcomp file may know. */
        ex->sacct_flag = 1;
        ask_sacct(ex);
        return;
    }
    while (status == 0 && line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t len = nl ? (size_t)(nl - line) : (size_t)(end - line);
        if (sl_parse_sacct(line, len, &st) == 0 && sl_state_final(st.state))
            for (b = ex->batches; b; b = b->next)
                if (b->id == st.id && b->asking && !b->final) {
                    b->st = st;
                    finish_batch(b, &b->st);
                }
        line += len + 1;
    }
    /* Neither squeue nor sacct knows it: what its attempts left is all. */
    for (b = ex->batches; b; b = b->next)
        if (b->asking && !b->final)
            finish_batch(b, NULL);
    for (b = ex->batches; b; b = b->next)
        b->asking = 0;
}

static void ask_sacct(struct sl_exec *ex)
{
    struct jr_buf ids = { 0 };
    char *v[12];
    int n = 0;

    for (struct sl_batch *b = ex->batches; b; b = b->next)
        if (b->asking)
            jr_buf_addf(&ids, "%s%lld", ids.len ? "," : "", (long long)b->id);
    if (!ids.len || jr_buf_add(&ids, "", 1)) {
        jr_buf_free(&ids);
        return;
    }
    v[n++] = "sacct";
    if (ex->sacct_flag)
        v[n++] = "-c";
    v[n++] = "-P";
    v[n++] = "-n";
    v[n++] = "-X";
    v[n++] = "-j";
    v[n++] = ids.data;
    v[n++] = "-o";
    v[n++] = "JobID,State,ExitCode,NodeList";
    v[n] = NULL;
    ex->polling = 1;
    if (sl_cmd_run(&ex->cmds, v, on_sacct, ex))
        ex->polling = 0;
    jr_buf_free(&ids);
}

/* ---- squeue ---- */

static void on_squeue(void *arg, int status, const char *out, size_t outlen,
                      const char *err, size_t errlen)
{
    struct sl_exec *ex = arg;
    struct sl_batch *b;
    struct sl_state st;
    const char *line = out, *end = out + outlen;
    int asking = 0;

    ex->polling = 0;
    if (ex->closing)
        return;
    /* One id that Slurm forgot is an error; in a list it is left out. */
    if (status != 0 && !(errlen && strstr(err, "Invalid job id"))) {
        if (ex->poll_failures++ % 60 == 0)
            jr_log(ex->log, JR_LOG_WARN, "slurm: squeue failed (status %d): %.*s; tasks"
                   " keep their state until it answers", status,
                   (int)(errlen > 300 ? 300 : errlen), err);
        return;
    }
    if (ex->poll_failures) {
        jr_log(ex->log, JR_LOG_INFO, "slurm: squeue answers again");
        ex->poll_failures = 0;
    }
    for (b = ex->batches; b; b = b->next)
        b->listed = 0;
    while (status == 0 && line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t len = nl ? (size_t)(nl - line) : (size_t)(end - line);
        if (sl_parse_squeue(line, len, &st) == 0)
            for (b = ex->batches; b; b = b->next)
                if (b->id == st.id) {
                    b->st = st;
                    b->listed = 1;
                }
        line += len + 1;
    }
    for (b = ex->batches; b; b = b->next) {
        if (!b->id || b->final || b->submitting)
            continue;
        if (!b->listed) {
            /* Twice in a row, so that a job is never judged on one answer. */
            if (++b->unseen >= 2)
                b->asking = asking = 1;
            continue;
        }
        b->unseen = 0;
        if (sl_state_final(b->st.state))
            finish_batch(b, &b->st);
        else if (sl_state_started(b->st.state))
            follow(b);
    }
    if (asking)
        ask_sacct(ex);
}

void sl_poll_tick(uv_timer_t *t)
{
    struct sl_exec *ex = t->data;
    struct jr_buf ids = { 0 };
    char *v[10];
    int n = 0, waiting = 0;

    if (ex->polling || ex->closing || sl_lookup_names(ex))
        return;
    for (struct sl_batch *b = ex->batches; b; b = b->next) {
        waiting |= b->submitting;
        if (b->id && !b->final)
            jr_buf_addf(&ids, "%s%lld", ids.len ? "," : "", (long long)b->id);
    }
    if (!ids.len || jr_buf_add(&ids, "", 1)) {
        if (!waiting)
            uv_timer_stop(&ex->poll);
        jr_buf_free(&ids);
        return;
    }
    v[n++] = "squeue";
    v[n++] = "-h";
    v[n++] = "-t";
    v[n++] = "all";
    v[n++] = "-j";
    v[n++] = ids.data;
    v[n++] = "-O";
    v[n++] = "JobID:|,State:|,Reason:|,exit_code:|,NodeList:|";
    v[n] = NULL;
    ex->polling = 1;
    if (sl_cmd_run(&ex->cmds, v, on_squeue, ex))
        ex->polling = 0;
    jr_buf_free(&ids);
}

void sl_poll_start(struct sl_exec *ex)
{
    if (!ex->closing && !uv_is_active((uv_handle_t *)&ex->poll))
        uv_timer_start(&ex->poll, sl_poll_tick, (uint64_t)ex->poll_ms, (uint64_t)ex->poll_ms);
}
