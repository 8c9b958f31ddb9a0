/* The Slurm executor across daemon restarts. A Slurm job outlives the
 * daemon that submitted it, so a later daemon takes its attempts over from
 * their run folders' records (attach), and a stopping daemon lets them go
 * (detach). A record names the job by a name chosen before the submission
 * and, once sbatch answered, by its id; one without the id is looked up
 * by name (squeue, then sacct); one that names no job was never submitted,
 * and the attempt ends as canceled before it ran (the scheduler runs it
 * again). The attempt's output is read from the offsets the store kept:
 * stdout's in the low 32 bits of the log offset, stderr's above. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exec/slurm.h"

int64_t sl_log_offset(const struct jr_exec_proc *p)
{
    int64_t out = p->read[0] - (int64_t)p->lines[0].len;
    int64_t err = p->read[1] - (int64_t)p->lines[1].len;

    return (out & 0xffffffffLL) | (err << 32);
}

static int read_record(const char *run_dir, struct sl_record *r, struct jr_err *e)
{
    char path[4200], text[2048];
    ssize_t n;
    int fd;

    snprintf(path, sizeof path, "%s/slurm", run_dir);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
        return jr_err_set(e, JR_E_NOT_FOUND, "no Slurm record of the attempt in %.200s: %s",
                          run_dir, strerror(errno));
    n = read(fd, text, sizeof text - 1);
    close(fd);
    text[n > 0 ? n : 0] = 0;
    if (sl_record_parse(text, r))
        return jr_err_set(e, JR_E_NOT_FOUND, "%.200s is not a Slurm record this daemon reads",
                          path);
    return JR_OK;
}

int sl_attach(struct sl_exec *ex, const char *task_dir, const char *job_id, const char *task,
              int64_t attempt, int64_t log_offset, const struct jr_exec_cbs *cbs, void *arg,
              struct jr_exec_proc **out, struct jr_err *e)
{
    struct jr_exec_proc *p;
    struct sl_batch *b;
    struct sl_record r;
    int rc;

    *out = NULL;
    if (!(p = sl_proc_new(ex, task_dir, job_id, task, cbs, arg)))
        return jr_err_set(e, JR_E_SYSTEM, "out of memory");
    if ((rc = read_record(p->run_dir, &r, e))) {
        sl_proc_free(p);
        return rc;
    }
    if (r.attempt != attempt) {
        rc = jr_err_set(e, JR_E_NOT_FOUND, "the run folder holds attempt %lld, not %lld",
                        (long long)r.attempt, (long long)attempt);
        sl_proc_free(p);
        return rc;
    }
    p->attempt = attempt;
    p->read[0] = log_offset & 0xffffffffLL;
    p->read[1] = log_offset >> 32;
    /* What was logged counts against the cap as before. */
    p->logged = p->read[0] + p->read[1];
    p->progress = log_offset;
    sl_proc_link(p);
    *out = p;
    if (strcmp(r.name, "-") == 0) {
        p->state = P_SUBMITTING; /* in no list */
        sl_end_with(p, JR_OUT_CANCELED, "never submitted to Slurm: the daemon that started"
                    " it went first");
        return JR_OK;
    }
    for (b = ex->batches; b; b = b->next)
        if (r.slurm_job ? b->id == r.slurm_job : strcmp(b->name, r.name) == 0)
            break;
    if (!b && !(b = sl_batch_new(ex, r.name))) {
        sl_proc_drop(p);
        *out = NULL;
        return jr_err_set(e, JR_E_SYSTEM, "out of memory");
    }
    b->id = r.slurm_job;
    b->single = !r.batched;
    b->lookup = !r.slurm_job;
    p->state = P_SUBMITTED;
    sl_batch_add(b, p);
    sl_poll_start(ex);
    return JR_OK;
}

void sl_detach(struct jr_exec_proc *p)
{
    sl_proc_drop(p);
}

/* ---- jobs known by name only ---- */

static void lookup_sacct(struct sl_exec *ex);

/* "ID|NAME" lines: the batches of those names get their ids (and their
 * attempts' records). */
static void take_ids(struct sl_exec *ex, const char *out, size_t len)
{
    const char *line = out, *end = out + len;

    while (line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t n = nl ? (size_t)(nl - line) : (size_t)(end - line);
        char buf[256], *bar;
        snprintf(buf, sizeof buf, "%.*s", (int)(n < 255 ? n : 255), line);
        line += n + 1;
        if (!(bar = strchr(buf, '|')))
            continue;
        *bar++ = 0;
        bar[strcspn(bar, "| ")] = 0;
        for (struct sl_batch *b = ex->batches; b; b = b->next)
            if (b->lookup && strcmp(b->name, bar) == 0 && atoll(buf) > 0) {
                b->id = atoll(buf);
                b->lookup = 0;
                for (struct jr_exec_proc *p = b->procs; p; p = p->bnext)
                    sl_record_write(p, b);
            }
    }
}

static void on_lookup_sacct(void *arg, int status, const char *out, size_t outlen,
                            const char *err, size_t errlen)
{
    struct sl_exec *ex = arg;

    (void)err;
    (void)errlen;
    ex->polling = 0;
    if (ex->closing)
        return;
    if (status != 0 && ex->sacct_flag == 0) {
        ex->sacct_flag = 1;
        lookup_sacct(ex);
        return;
    }
    if (status == 0)
        take_ids(ex, out, outlen);
    /* Neither knows the name: sbatch never reached Slurm. */
    for (struct sl_batch *b = ex->batches; b; b = b->next) {
        if (!b->lookup)
            continue;
        b->lookup = 0;
        b->final = 1;
        while (b->procs)
            sl_end_with(b->procs, JR_OUT_CANCELED, "never started: Slurm has no job of the"
                        " name its daemon chose before it went");
    }
}

static void lookup_sacct(struct sl_exec *ex)
{
    struct jr_buf names = { 0 };
    char *v[12];
    int n = 0;

    for (struct sl_batch *b = ex->batches; b; b = b->next)
        if (b->lookup)
            jr_buf_addf(&names, "%s%s", names.len ? "," : "--name=", b->name);
    if (!names.len || jr_buf_add(&names, "", 1)) {
        jr_buf_free(&names);
        return;
    }
    v[n++] = "sacct";
    if (ex->sacct_flag)
        v[n++] = "-c";
    v[n++] = "-P";
    v[n++] = "-n";
    v[n++] = "-X";
    v[n++] = names.data;
    v[n++] = "-o";
    v[n++] = "JobID,JobName";
    v[n] = NULL;
    ex->polling = 1;
    if (sl_cmd_run(&ex->cmds, v, on_lookup_sacct, ex))
        ex->polling = 0;
    jr_buf_free(&names);
}

static void on_lookup(void *arg, int status, const char *out, size_t outlen,
                      const char *err, size_t errlen)
{
    struct sl_exec *ex = arg;
    int left = 0;

    ex->polling = 0;
    if (ex->closing)
        return;
    if (status != 0) {
        jr_log(ex->log, JR_LOG_WARN, "slurm: squeue --name failed (status %d): %.*s", status,
               (int)(errlen > 300 ? 300 : errlen), err);
        return;
    }
    take_ids(ex, out, outlen);
    for (struct sl_batch *b = ex->batches; b; b = b->next)
        left |= b->lookup;
    if (left)
        lookup_sacct(ex);
}

int sl_lookup_names(struct sl_exec *ex)
{
    struct jr_buf names = { 0 };
    char *v[10];
    int n = 0;

    for (struct sl_batch *b = ex->batches; b; b = b->next)
        if (b->lookup)
            jr_buf_addf(&names, "%s%s", names.len ? "," : "--name=", b->name);
    if (!names.len || jr_buf_add(&names, "", 1)) {
        jr_buf_free(&names);
        return 0;
    }
    v[n++] = "squeue";
    v[n++] = "-h";
    v[n++] = "-t";
    v[n++] = "all";
    v[n++] = names.data;
    v[n++] = "-O";
    v[n++] = "JobID:|,Name:|";
    v[n] = NULL;
    ex->polling = 1;
    if (sl_cmd_run(&ex->cmds, v, on_lookup, ex))
        ex->polling = 0;
    jr_buf_free(&names);
    return 1;
}
