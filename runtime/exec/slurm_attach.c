/* The Slurm executor across daemon restarts. A Slurm job outlives the
 * daemon that submitted it, so a later daemon takes its attempts over from
 * the records the store kept (attach), and a stopping daemon lets them go
 * (detach). A record names the job an attempt runs in by the names chosen
 * at start (its own, and its batch's when it may share one) and never by
 * id: the attached attempts wait in P_LOOKUP until one squeue call (then
 * one sacct call, for jobs squeue forgot) for all their names says which
 * name Slurm knows, and so the job's id and whether the attempt is a step
 * of a batch. An attempt neither name reached was never submitted, and it
 * ends as canceled before it ran (the scheduler runs it again). The
 * attempt's output is read from the offsets the store kept: stdout's in
 * the low 32 bits of the log offset, stderr's above. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/slurm.h"

#define LOOKUP_MAX 256

int64_t sl_log_offset(const struct jr_exec_proc *p)
{
    int64_t out = p->read[0] - (int64_t)p->lines[0].len;
    int64_t err = p->read[1] - (int64_t)p->lines[1].len;

    return (out & 0xffffffffLL) | (err << 32);
}

int sl_attach_op(void *self, const struct jr_exec_attach *a, const struct jr_exec_cbs *cbs,
                 void *arg, struct jr_exec_proc **out, struct jr_err *e)
{
    struct sl_exec *ex = self;
    struct jr_exec_proc *p;
    struct sl_record r;

    *out = NULL;
    if (!a->record || !a->record[0])
        return jr_err_set(e, JR_E_NOT_FOUND, "no record of attempt %lld of task '%s'",
                          (long long)a->attempt, a->task);
    if (sl_record_parse(a->record, &r)) {
        if (r.format > SL_RECORD_FORMAT)
            return jr_err_set(e, JR_E_NOT_FOUND, "the record of attempt %lld of task '%s' is"
                              " of Slurm record format %d, newer than this daemon's (%d); its"
                              " Slurm job, if any, is left alone", (long long)a->attempt,
                              a->task, r.format, SL_RECORD_FORMAT);
        return jr_err_set(e, JR_E_NOT_FOUND, "the record of attempt %lld of task '%s' is not"
                          " a Slurm record this daemon reads", (long long)a->attempt, a->task);
    }
    if (r.attempt != a->attempt)
        return jr_err_set(e, JR_E_NOT_FOUND, "the record of task '%s' is of attempt %lld, not"
                          " %lld", a->task, (long long)r.attempt, (long long)a->attempt);
    if (!(p = sl_proc_new(ex, r.dir, a->job_id, a->task, cbs, arg)))
        return jr_err_set(e, JR_E_SYSTEM, "out of memory");
    p->attempt = a->attempt;
    snprintf(p->name, sizeof p->name, "%s", r.name);
    snprintf(p->bname, sizeof p->bname, "%s", r.batch);
    p->read[0] = a->log_offset & 0xffffffffLL;
    p->read[1] = a->log_offset >> 32;
    /* What was logged counts against the cap as before. */
    p->logged = p->read[0] + p->read[1];
    p->progress = a->log_offset;
    p->state = P_LOOKUP;
    sl_proc_link(p);
    sl_poll_start(ex);
    *out = p;
    return JR_OK;
}

void sl_detach(struct jr_exec_proc *p)
{
    struct sl_batch *b = p->batch;

    if (b) {
        /* Its job runs on (the next daemon reads its folder), and a batch
         * not yet submitted must never go without it. */
        b->kept = 1;
        b->due = 0;
        if (p->ex->forming == b)
            p->ex->forming = NULL;
    }
    sl_proc_drop(p);
}

/* ---- finding jobs by name ---- */

/* p runs in Slurm job id: its batch (made, or the one another attempt of
 * the same job found) takes it. */
static void resolve(struct jr_exec_proc *p, int64_t id, const char *name, int single)
{
    struct sl_exec *ex = p->ex;
    struct sl_batch *b;

    for (b = ex->batches; b; b = b->next)
        if (b->id == id && !b->pending)
            break;
    if (!b) {
        if (!(b = sl_batch_new(ex, name))) {
            sl_end_with(p, JR_OUT_LOST, "out of memory while taking its Slurm job over");
            return;
        }
        b->id = id;
        b->single = single;
        /* A batch's folder goes with the batch, as if this daemon made it. */
        if (!single && asprintf(&b->dir, "%s/slurm/%s", ex->data_dir, name) < 0)
            b->dir = NULL;
    }
    p->state = P_SUBMITTED;
    sl_batch_add(b, p);
    if (p->cancel_sig)
        sl_cancel(p, p->cancel_sig);
}

/* "ID|NAME" lines: each attempt looked up whose own name (else its
 * batch's) is listed runs in that job. */
static void take_ids(struct sl_exec *ex, const char *out, size_t len)
{
    for (struct jr_exec_proc *p = ex->procs; p; p = p->next) {
        const char *line = out, *end = out + len;
        int64_t own = 0, batch = 0;
        if (p->state != P_LOOKUP)
            continue;
        while (line < end) {
            const char *nl = memchr(line, '\n', (size_t)(end - line));
            size_t n = nl ? (size_t)(nl - line) : (size_t)(end - line);
            char buf[256], *bar;
            snprintf(buf, sizeof buf, "%.*s", (int)(n < 255 ? n : 255), line);
            line += n + 1;
            if (!(bar = strchr(buf, '|')) || atoll(buf) <= 0)
                continue;
            *bar++ = 0;
            bar[strcspn(bar, "| ")] = 0;
            if (strcmp(bar, p->name) == 0)
                own = atoll(buf);
            else if (p->bname[0] && strcmp(bar, p->bname) == 0)
                batch = atoll(buf);
        }
        if (own)
            resolve(p, own, p->name, 1);
        else if (batch)
            resolve(p, batch, p->bname, 0);
    }
}

/* names: "--name=a,b,..." of the attempts asked about; 0 when none. A
 * new round (start) asks about LOOKUP_MAX of those looked up at most, so
 * that the argument stays short; the next poll takes the rest. */
static int lookup_names(struct sl_exec *ex, struct jr_buf *names, int start)
{
    int n = 0;

    for (struct jr_exec_proc *p = ex->procs; p; p = p->next) {
        if (start)
            p->asked = p->state == P_LOOKUP && n++ < LOOKUP_MAX;
        if (p->state != P_LOOKUP || !p->asked)
            continue;
        jr_buf_addf(names, "%s%s", names->len ? "," : "--name=", p->name);
        if (p->bname[0])
            jr_buf_addf(names, ",%s", p->bname);
    }
    return names->len && !jr_buf_add(names, "", 1);
}

static void lookup_sacct(struct sl_exec *ex);

static void on_lookup_sacct(void *arg, int status, const char *out, size_t outlen,
                            const char *err, size_t errlen)
{
    struct sl_exec *ex = arg;
    struct jr_exec_proc *p, *next;

    ex->polling = 0;
    if (ex->closing)
        return;
    if (status != 0 && ex->sacct_flag == 0) {
        /* No slurmdbd: the jobcomp file may know. */
        ex->sacct_flag = 1;
        lookup_sacct(ex);
        return;
    }
    if (status != 0) {
        jr_log(ex->log, JR_LOG_WARN, "slurm: sacct --name failed (status %d): %.*s", status,
               (int)(errlen > 300 ? 300 : errlen), err);
        return; /* the next poll asks again */
    }
    take_ids(ex, out, outlen);
    /* Neither knows either name: sbatch never reached Slurm. */
    for (p = ex->procs; p; p = next) {
        next = p->next;
        if (p->state == P_LOOKUP && p->asked)
            sl_end_with(p, JR_OUT_CANCELED, "never started: Slurm has no job of the names its"
                        " daemon chose before it went");
    }
}

static void lookup_sacct(struct sl_exec *ex)
{
    struct jr_buf names = { 0 };
    char *v[12];
    int n = 0;

    if (!lookup_names(ex, &names, 0)) {
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

    ex->polling = 0;
    if (ex->closing)
        return;
    if (status != 0) {
        jr_log(ex->log, JR_LOG_WARN, "slurm: squeue --name failed (status %d): %.*s", status,
               (int)(errlen > 300 ? 300 : errlen), err);
        return;
    }
    take_ids(ex, out, outlen);
    for (struct jr_exec_proc *p = ex->procs; p; p = p->next)
        if (p->state == P_LOOKUP && p->asked) {
            lookup_sacct(ex);
            return;
        }
}

int sl_lookup_names(struct sl_exec *ex)
{
    struct jr_buf names = { 0 };
    char *v[10];
    int n = 0;

    if (!lookup_names(ex, &names, 1)) {
        jr_buf_free(&names);
        return 0;
    }
    v[n++] = "squeue";
    v[n++] = "-h";
    v[n++] = "-t";
    v[n++] = "all";
    v[n++] = names.data;
    v[n++] = "-o";
    v[n++] = "%i|%j";
    v[n] = NULL;
    ex->polling = 1;
    if (sl_cmd_run(&ex->cmds, v, on_lookup, ex))
        ex->polling = 0;
    jr_buf_free(&names);
    return 1;
}
