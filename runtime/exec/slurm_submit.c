/* The Slurm executor's submissions and cancels. The batching rule: an
 * attempt asking for at most batch.max_cpu, batch.max_memory and no GPU is
 * small; small attempts started within batch.window of the first share
 * one sbatch (up to batch.max_tasks), whose script runs them as srun steps,
 * batch.width at once. Any other attempt, or a small one alone in its
 * window, is a Slurm job of its own running its wrapper as the batch
 * script. A small attempt joins its batch at start, because its record
 * names the batch; the batch is submitted once its window closed and all
 * its attempts had their go (their rows are committed), so a batch holds
 * exactly the attempts whose records name it. The run folders are written
 * here, just before sbatch. Cancels are collected and go out as one
 * scancel per kind. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exec/slurm.h"

#define MAX_ARGS 48

/* An attempt's earlier files, cleared before its run folder is used. */
static const char *const run_files[] = {
    "task.sh", "task.sh.tmp", "stdout", "stderr", "outcome", "outcome.tmp", "step",
    "step.tmp", "cancel", "slurm.out", NULL
};

static void fail_all(struct sl_batch *b, const char *fmt, const char *detail)
{
    while (b->procs) {
        struct jr_exec_proc *p = b->procs;
        memset(&p->result, 0, sizeof p->result);
        p->result.outcome = JR_OUT_SETUP_ERROR;
        p->result.exit_code = -1;
        p->result.cpu_ms = p->result.max_rss_bytes = p->result.wall_ms = -1;
        snprintf(p->result.message, sizeof p->result.message, fmt, detail);
        sl_end(p);
    }
}

/* The first line of what a command printed, for a message. */
static void first_line(char *dst, size_t size, const char *s, size_t len)
{
    size_t n = 0;

    while (n < len && s[n] != '\n')
        n++;
    snprintf(dst, size, "%.*s", (int)n, s);
    if (!dst[0])
        snprintf(dst, size, "no message");
}

static void on_submitted(void *arg, int status, const char *out, size_t outlen,
                         const char *err, size_t errlen)
{
    struct sl_batch *b = arg;
    struct sl_exec *ex = b->ex;
    int64_t id = status == 0 ? sl_parse_jobid(out, outlen) : 0;
    char why[200];

    b->submitting = 0;
    if (!id) {
        if (status < 0)
            snprintf(why, sizeof why, "%.*s", (int)errlen, err);
        else
            first_line(why, sizeof why, errlen ? err : out, errlen ? errlen : outlen);
        fail_all(b, "setup_error: sbatch refused the task: %s", why);
        return;
    }
    b->id = id;
    for (struct jr_exec_proc *p = b->procs; p; p = p->bnext) {
        p->state = P_SUBMITTED;
        if (p->cancel_sig)
            sl_cancel(p, p->cancel_sig);
    }
    if (!b->procs && !b->kept) {
        /* All were canceled while sbatch ran. */
        jr_buf_addf(&ex->cancels[SL_CANCEL], " %lld", (long long)id);
        sl_kick(ex);
        return;
    }
    sl_poll_start(ex);
}

static void add_arg(char **v, int *n, char *s)
{
    if (*n < MAX_ARGS - 1)
        v[(*n)++] = s;
}

/* sbatch for b (its procs linked, its script written). */
static void submit(struct sl_batch *b, const char *script, const char *chdir_to,
                   int64_t ntasks, int64_t cpus, int64_t mem_mb, int64_t gpu, int64_t minutes)
{
    struct sl_exec *ex = b->ex;
    char *v[MAX_ARGS];
    char name[160], dir[4200], outp[4300], n_s[40], c_s[40], m_s[40], g_s[40], t_s[40],
         p_s[300], a_s[300];
    int n = 0;

    snprintf(name, sizeof name, "--job-name=%s", b->name);
    snprintf(dir, sizeof dir, "--chdir=%s", chdir_to);
    snprintf(outp, sizeof outp, "--output=%s/slurm.out", chdir_to);
    snprintf(n_s, sizeof n_s, "--ntasks=%lld", (long long)ntasks);
    snprintf(c_s, sizeof c_s, "--cpus-per-task=%lld", (long long)cpus);
    add_arg(v, &n, "sbatch");
    add_arg(v, &n, "--parsable");
    add_arg(v, &n, name);
    /* jobrt retries per the task's retries; Slurm must not run it twice. */
    add_arg(v, &n, "--no-requeue");
    add_arg(v, &n, "--export=NONE");
    add_arg(v, &n, dir);
    add_arg(v, &n, outp);
    add_arg(v, &n, n_s);
    add_arg(v, &n, c_s);
    if (mem_mb > 0) {
        snprintf(m_s, sizeof m_s, "--mem=%lldM", (long long)mem_mb);
        add_arg(v, &n, m_s);
    }
    if (gpu > 0) {
        snprintf(g_s, sizeof g_s, "--gres=gpu:%lld", (long long)gpu);
        add_arg(v, &n, g_s);
    }
    if (minutes > 0) {
        snprintf(t_s, sizeof t_s, "--time=%lld", (long long)minutes);
        add_arg(v, &n, t_s);
    }
    if (ex->partition) {
        snprintf(p_s, sizeof p_s, "--partition=%s", ex->partition);
        add_arg(v, &n, p_s);
    }
    if (ex->account) {
        snprintf(a_s, sizeof a_s, "--account=%s", ex->account);
        add_arg(v, &n, a_s);
    }
    for (char **a = ex->sbatch_args; a && *a; a++)
        add_arg(v, &n, *a);
    add_arg(v, &n, (char *)script);
    v[n] = NULL;
    b->submitting = 1;
    if (sl_cmd_run(&ex->cmds, v, on_submitted, b)) {
        b->submitting = 0;
        fail_all(b, "setup_error: %s", "cannot run sbatch: out of memory");
    }
}

struct sl_batch *sl_batch_new(struct sl_exec *ex, const char *name)
{
    struct sl_batch *b = calloc(1, sizeof *b);

    if (!b)
        return NULL;
    b->ex = ex;
    snprintf(b->name, sizeof b->name, "%s", name);
    b->next = ex->batches;
    if (ex->batches)
        ex->batches->prevp = &b->next;
    b->prevp = &ex->batches;
    ex->batches = b;
    return b;
}

void sl_batch_add(struct sl_batch *b, struct jr_exec_proc *p)
{
    struct jr_exec_proc **pp = &b->procs;

    while (*pp)
        pp = &(*pp)->bnext;
    p->bnext = NULL;
    *pp = p;
    b->nprocs++;
    p->batch = b;
}

/* p's run folder, cleared of an earlier attempt's files, with its wrapper. */
static int write_run_dir(struct jr_exec_proc *p, char *why, size_t size)
{
    char path[4200];

    if (mkdir(p->run_dir, 0755) != 0 && errno != EEXIST) {
        snprintf(why, size, "cannot create %.3000s: %s", p->run_dir, strerror(errno));
        return -1;
    }
    for (int i = 0; run_files[i]; i++) {
        snprintf(path, sizeof path, "%s/%s", p->run_dir, run_files[i]);
        if (unlink(path) != 0 && errno != ENOENT) {
            snprintf(why, size, "cannot clear %.3000s: %s", path, strerror(errno));
            return -1;
        }
    }
    if (sl_write_file(p->run_dir, "task.sh", p->script.data, p->script.len)) {
        snprintf(why, size, "cannot write %.3000s/task.sh: %s", p->run_dir, strerror(errno));
        return -1;
    }
    jr_buf_free(&p->script);
    return 0;
}

/* Hands b (pending, all its attempts past their go) to Slurm as one job:
 * alone under the attempt's own name, else as a batch under its own. */
static void submit_batch(struct sl_batch *b)
{
    struct sl_exec *ex = b->ex;
    struct jr_exec_proc *p;
    struct jr_buf text = { 0 };
    struct sl_batch_item *items = NULL;
    int64_t cpus = 1, mem = 0, total_ms = 0, longest = 0, width;
    int timed = 1, i = 0, n = b->nprocs;
    char why[3300];

    b->pending = b->due = 0;
    if (ex->forming == b) {
        ex->forming = NULL;
        uv_timer_stop(&ex->window);
    }
    for (p = b->procs; p; p = p->bnext)
        p->state = P_SUBMITTING;
    for (p = b->procs; p; p = p->bnext)
        if (write_run_dir(p, why, sizeof why)) {
            fail_all(b, "setup_error: %s", why);
            return;
        }
    if (n == 1) {
        p = b->procs;
        b->single = 1;
        snprintf(b->name, sizeof b->name, "%s", p->name);
        submit(b, "task.sh", p->run_dir, 1, p->cpus, p->mem_mb, p->gpu,
               p->timeout_ms > 0 ? sl_minutes(p->timeout_ms + ex->grace_ms + 60000) : 0);
        return;
    }
    /* Several: a folder of the batch's own for its script and output. */
    width = n < ex->batch_width ? n : ex->batch_width;
    items = calloc((size_t)n, sizeof *items);
    if (!items || asprintf(&b->dir, "%s/slurm/%s", ex->data_dir, b->name) < 0) {
        b->dir = NULL;
        fail_all(b, "setup_error: %s", "out of memory");
        goto done;
    }
    for (p = b->procs; p; p = p->bnext, i++) {
        items[i].run_dir = p->run_dir;
        items[i].name = p->task;
        items[i].cpus = p->cpus;
        items[i].mem_mb = p->mem_mb;
        cpus = p->cpus > cpus ? p->cpus : cpus;
        mem = p->mem_mb > mem ? p->mem_mb : mem;
        timed &= p->timeout_ms > 0;
        total_ms += p->timeout_ms + ex->grace_ms;
        longest = p->timeout_ms + ex->grace_ms > longest ? p->timeout_ms + ex->grace_ms : longest;
    }
    {
        char parent[4200];
        snprintf(parent, sizeof parent, "%s/slurm", ex->data_dir);
        if ((mkdir(parent, 0755) != 0 && errno != EEXIST) ||
            (mkdir(b->dir, 0755) != 0 && errno != EEXIST)) {
            fail_all(b, "setup_error: cannot create the batch folder: %s", strerror(errno));
            goto done;
        }
    }
    if (sl_batch_script(&text, ex->path, items, (size_t)n, (int)width) ||
        sl_write_file(b->dir, "batch.sh", text.data, text.len)) {
        fail_all(b, "setup_error: cannot write the batch script: %s", strerror(errno));
        goto done;
    }
    /* Its time limit (a backstop: each wrapper keeps its own) covers the
     * slowest packing of the steps. */
    submit(b, "batch.sh", b->dir, width, cpus, mem * width, 0,
           timed ? sl_minutes(total_ms / width + longest + 60000) : 0);
done:
    jr_buf_free(&text);
    free(items);
}

void sl_submit_due(struct sl_batch *b)
{
    if (!b->pending || !b->due || b->ex->closing || b->nprocs == 0)
        return;
    for (struct jr_exec_proc *p = b->procs; p; p = p->bnext)
        if (p->state != P_WAITING)
            return;
    submit_batch(b);
}

static void on_window(uv_timer_t *t)
{
    struct sl_exec *ex = t->data;
    struct sl_batch *b = ex->forming;

    ex->forming = NULL;
    if (b) {
        b->due = 1;
        sl_submit_due(b);
    }
}

int sl_batch_join(struct jr_exec_proc *p)
{
    struct sl_exec *ex = p->ex;
    struct sl_batch *b = ex->forming;
    unsigned char rnd[8];
    char name[SL_NAME_MAX];

    if (!b) {
        sl_name_bytes(ex, rnd, sizeof rnd);
        sl_job_name(name, sizeof name, NULL, NULL, 0, rnd);
        if (!(b = sl_batch_new(ex, name)))
            return -1;
        b->pending = 1;
        ex->forming = b;
        uv_timer_start(&ex->window, on_window, (uint64_t)ex->batch_window_ms, 0);
    }
    snprintf(p->bname, sizeof p->bname, "%s", b->name);
    sl_batch_add(b, p);
    if (b->nprocs >= ex->batch_max) {
        b->due = 1;
        ex->forming = NULL;
        uv_timer_stop(&ex->window);
    }
    return 0;
}

void sl_submit_ready(struct jr_exec_proc *p)
{
    struct sl_batch *b = p->batch;

    p->state = P_WAITING;
    if (!b) {
        /* Not small: a job of its own, at once. */
        if (!(b = sl_batch_new(p->ex, p->name))) {
            sl_end_with(p, JR_OUT_SETUP_ERROR, "setup_error: out of memory");
            return;
        }
        sl_batch_add(b, p);
        b->pending = b->due = 1;
    }
    sl_submit_due(b);
}

/* ---- cancels ---- */

/* run/step: "JOB" or "JOB.STEP" once the wrapper started; "" before. */
static void read_step(const struct jr_exec_proc *p, char *buf, size_t size)
{
    char path[4200];
    ssize_t n;
    int fd;

    buf[0] = 0;
    snprintf(path, sizeof path, "%s/step", p->run_dir);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
        return;
    n = read(fd, buf, size - 1);
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    buf[strspn(buf, "0123456789.")] = 0;
}

void sl_cancel(struct jr_exec_proc *p, int signum)
{
    struct sl_exec *ex = p->ex;
    struct sl_batch *b = p->batch;
    char step[64], path[4200];
    int fd;

    if (!b || !b->id || p->state != P_SUBMITTED)
        return;
    if (b->single) {
        if (p->cancel_done && signum != SIGKILL)
            return;
        jr_buf_addf(&ex->cancels[signum == SIGKILL ? SL_KILL_JOB : SL_CANCEL], " %lld",
                    (long long)b->id);
        p->cancel_done = 1;
        sl_kick(ex);
        return;
    }
    /* A step not yet started skips itself; one that started is canceled
     * by its id. Whichever of the two files comes second, one side sees
     * the other (the poll tries again until the step is known). */
    snprintf(path, sizeof path, "%s/cancel", p->run_dir);
    if ((fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644)) >= 0)
        close(fd);
    read_step(p, step, sizeof step);
    if (!strchr(step, '.') || (p->cancel_done && signum != SIGKILL))
        return;
    jr_buf_addf(&ex->cancels[signum == SIGKILL ? SL_KILL_STEP : SL_CANCEL], " %s", step);
    p->cancel_done = 1;
    sl_kick(ex);
}

static void on_scancel(void *arg, int status, const char *out, size_t outlen,
                       const char *err, size_t errlen)
{
    struct sl_exec *ex = arg;

    (void)out;
    (void)outlen;
    /* A job that ended meanwhile is no error worth a word. */
    if (status != 0 && !(errlen && strstr(err, "already completing or completed")) &&
        !(errlen && strstr(err, "Invalid job id")))
        jr_log(ex->log, JR_LOG_WARN, "slurm: scancel failed (status %d): %.*s", status,
               (int)(errlen > 300 ? 300 : errlen), err);
}

void sl_cancel_flush(struct sl_exec *ex)
{
    static const char *const flags[3][3] = {
        { "scancel", NULL, NULL },
        { "scancel", "--signal=KILL", "--full" },
        { "scancel", "--signal=KILL", NULL },
    };

    for (int k = 0; k < 3; k++) {
        struct jr_buf *b = &ex->cancels[k];
        char **v;
        size_t n = 0, i = 0;
        if (!b->len || jr_buf_add(b, "", 1))
            continue;
        for (size_t j = 0; j < b->len; j++)
            n += b->data[j] == ' ';
        if ((v = calloc(n + 4, sizeof *v))) {
            for (int f = 0; f < 3 && flags[k][f]; f++)
                v[i++] = (char *)flags[k][f];
            for (char *s = strtok(b->data, " "); s; s = strtok(NULL, " "))
                v[i++] = s;
            v[i] = NULL;
            if (sl_cmd_run(&ex->cmds, v, on_scancel, ex))
                jr_log(ex->log, JR_LOG_WARN, "slurm: cannot run scancel: out of memory");
            free(v);
        }
        jr_buf_reset(b);
    }
}
