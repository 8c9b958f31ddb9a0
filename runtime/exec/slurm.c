/* The Slurm executor: each task attempt runs as a Slurm job (or as an srun
 * step of a batch shared with other small attempts, exec/slurm_submit.c),
 * its state polled with one squeue call for all (exec/slurm_poll.c). This
 * file is the ops table: start builds the attempt's wrapper in memory,
 * chooses the names its Slurm job may have (a small attempt joins the
 * batch being formed) and returns them as the record, touching no file;
 * go hands it to the batcher, which writes the run folder and submits only
 * then, so nothing runs in Slurm before the task's "running" row (and its
 * record) is committed; kill cancels; attempts end through one queue
 * reported from the loop. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exec/slurm.h"

#define DEFAULT_POLL_MS 1000
#define DEFAULT_GRACE_MS 10000
#define DEFAULT_LOG_CAP (1024 * 1024)

/* ---- files ---- */

int sl_write_file(const char *dir, const char *name, const char *data, size_t len)
{
    char path[4096], tmp[4100];
    size_t off = 0;
    int fd, err;

    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
        return errno = ENAMETOOLONG, -1;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return -1;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            err = errno;
            close(fd);
            unlink(tmp);
            return errno = err, -1;
        }
        off += (size_t)w;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        err = errno;
        unlink(tmp);
        return errno = err, -1;
    }
    return 0;
}

/* ---- attempts ---- */

void sl_proc_free(struct jr_exec_proc *p)
{
    jr_exec_lines_free(&p->lines[0]);
    jr_exec_lines_free(&p->lines[1]);
    jr_buf_free(&p->script);
    free(p->run_dir);
    free(p->job_id);
    free(p->task);
    free(p);
}

static void proc_unlink(struct jr_exec_proc *p)
{
    if (!p->prevp)
        return;
    *p->prevp = p->next;
    if (p->next)
        p->next->prevp = p->prevp;
    p->prevp = NULL;
}

/* Out of its batch's list. */
static void proc_leave_batch(struct jr_exec_proc *p)
{
    struct jr_exec_proc **pp;

    if (p->batch) {
        for (pp = &p->batch->procs; *pp && *pp != p; pp = &(*pp)->bnext)
            ;
        if (*pp) {
            *pp = p->bnext;
            p->batch->nprocs--;
        }
    }
    /* The batch goes with the kick's sweep once none is left. */
    p->batch = NULL;
    p->bnext = NULL;
}

void sl_end(struct jr_exec_proc *p)
{
    struct sl_exec *ex = p->ex;

    if (p->state == P_ENDED)
        return;
    proc_leave_batch(p);
    p->state = P_ENDED;
    p->done_next = ex->ended;
    ex->ended = p;
    sl_kick(ex);
}

void sl_end_with(struct jr_exec_proc *p, int outcome, const char *msg)
{
    memset(&p->result, 0, sizeof p->result);
    p->result.outcome = outcome;
    p->result.exit_code = -1;
    p->result.cpu_ms = p->result.max_rss_bytes = p->result.wall_ms = -1;
    snprintf(p->result.message, sizeof p->result.message, "%s", msg);
    sl_end(p);
}

struct jr_exec_proc *sl_proc_new(struct sl_exec *ex, const char *run_dir, const char *job_id,
                                 const char *task, const struct jr_exec_cbs *cbs, void *arg)
{
    struct jr_exec_proc *p = calloc(1, sizeof *p);

    if (!p)
        return NULL;
    p->ex = ex;
    p->run_dir = strdup(run_dir);
    p->job_id = strdup(job_id);
    p->task = strdup(task);
    p->log_cap = ex->log_cap;
    p->cbs = *cbs;
    p->arg = arg;
    if (!p->run_dir || !p->job_id || !p->task) {
        sl_proc_free(p);
        return NULL;
    }
    return p;
}

void sl_proc_link(struct jr_exec_proc *p)
{
    struct sl_exec *ex = p->ex;

    p->next = ex->procs;
    if (ex->procs)
        ex->procs->prevp = &p->next;
    p->prevp = &ex->procs;
    ex->procs = p;
}

void sl_proc_drop(struct jr_exec_proc *p)
{
    struct sl_exec *ex = p->ex;
    struct jr_exec_proc **pp;

    if (p->state == P_ENDED) {
        for (pp = &ex->ended; *pp && *pp != p; pp = &(*pp)->done_next)
            ;
        if (*pp)
            *pp = p->done_next;
    }
    proc_leave_batch(p);
    proc_unlink(p);
    sl_proc_free(p);
    sl_kick(ex);
}

/* ---- batches ---- */

static void rm_batch_dir(const char *dir)
{
    char path[4200];

    snprintf(path, sizeof path, "%s/batch.sh", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/slurm.out", dir);
    unlink(path);
    rmdir(dir);
}

static void batch_free(struct sl_batch *b)
{
    *b->prevp = b->next;
    if (b->next)
        b->next->prevp = b->prevp;
    if (b->ex->forming == b) {
        b->ex->forming = NULL;
        uv_timer_stop(&b->ex->window);
    }
    /* A job a stopping daemon let go still writes there. */
    if (b->dir && !b->kept)
        rm_batch_dir(b->dir);
    free(b->dir);
    free(b);
}

/* Batches with no attempt left and no sbatch in flight. */
static void sweep_batches(struct sl_exec *ex)
{
    struct sl_batch *b = ex->batches, *next;

    for (; b; b = next) {
        next = b->next;
        if (b->nprocs == 0 && !b->submitting)
            batch_free(b);
    }
}

/* ---- reporting, from the loop ---- */

static void free_exec(struct sl_exec *ex);

static void on_cmds_closed(void *arg)
{
    struct sl_exec *ex = arg;

    ex->cmds_closed = 1;
    free_exec(ex);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct sl_exec *ex = h->data;

    ex->handles--;
    free_exec(ex);
}

static void free_exec(struct sl_exec *ex)
{
    if (ex->handles > 0 || !ex->cmds_closed)
        return;
    while (ex->batches)
        batch_free(ex->batches);
    sl_cmds_free(&ex->cmds);
    for (int i = 0; i < 3; i++)
        jr_buf_free(&ex->cancels[i]);
    if (ex->sbatch_args)
        for (char **v = ex->sbatch_args; *v; v++)
            free(*v);
    free(ex->sbatch_args);
    free(ex->data_dir);
    free(ex->partition);
    free(ex->account);
    free(ex->path);
    free(ex->sandbox);
    free(ex);
}

/* Closing and nothing left to report: close the timers, let the commands
 * in flight go, free when all is closed. */
static void maybe_free(struct sl_exec *ex)
{
    if (!ex->closing || ex->procs || ex->ended || ex->handles < 3 ||
        uv_is_closing((uv_handle_t *)&ex->kick))
        return;
    uv_close((uv_handle_t *)&ex->window, on_timer_closed);
    uv_close((uv_handle_t *)&ex->poll, on_timer_closed);
    uv_close((uv_handle_t *)&ex->kick, on_timer_closed);
    sl_cmds_close(&ex->cmds, on_cmds_closed, ex);
}

static void on_kick(uv_timer_t *t)
{
    struct sl_exec *ex = t->data;

    sl_cancel_flush(ex);
    while (ex->ended) {
        struct jr_exec_proc *p = ex->ended;
        ex->ended = p->done_next;
        proc_unlink(p);
        p->cbs.done(p->arg, &p->result);
        sl_proc_free(p);
    }
    sweep_batches(ex);
    maybe_free(ex);
}

void sl_kick(struct sl_exec *ex)
{
    if (!uv_is_closing((uv_handle_t *)&ex->kick))
        uv_timer_start(&ex->kick, on_kick, 0, 0);
}

/* ---- the ops ---- */

static void free_list(char **v)
{
    for (char **p = v; p && *p; p++)
        free(*p);
    free(v);
}

/* A name must only differ from every other: the clock and a counter do
 * when the system has no random bytes to give. */
void sl_name_bytes(struct sl_exec *ex, unsigned char *rnd, size_t n)
{
    if (uv_random(NULL, NULL, rnd, n, 0, NULL) != 0) {
        uint64_t v = uv_hrtime() ^ ((uint64_t)getpid() << 40) ^ ++ex->names;
        for (size_t i = 0; i < n; i++, v = v * 6364136223846793005ULL + 1442695040888963407ULL)
            rnd[i] = (unsigned char)(v >> 56);
    }
}

static int slurm_start(void *self, const struct jr_exec_spec *spec,
                       const struct jr_exec_cbs *cbs, void *arg,
                       struct jr_exec_proc **out, int64_t *pid, int64_t *pid_start,
                       char *record, struct jr_err *e)
{
    struct sl_exec *ex = self;
    struct jr_exec_proc *p;
    struct sl_task_script ts;
    struct sl_record rec;
    unsigned char rnd[8];
    char **helper = NULL, run_dir[JR_EXEC_RECORD_SIZE];
    int rc;

    *out = NULL;
    *pid = *pid_start = 0; /* no local process: nothing for kill_stale */
    record[0] = 0;
    if (!spec->argv[0])
        return jr_err_set(e, JR_E_INVALID, "empty command");
    if ((size_t)snprintf(run_dir, sizeof run_dir, "%s/%s", spec->task_dir, SL_RUN_DIR) >=
        sizeof run_dir - 200)
        return jr_err_set(e, JR_E_INVALID, "task folder path too long for the slurm executor"
                          " (%zu bytes)", strlen(spec->task_dir));
    if (!(p = sl_proc_new(ex, run_dir, spec->job_id, spec->task, cbs, arg)))
        return jr_err_set(e, JR_E_SYSTEM, "out of memory");
    p->attempt = spec->attempt;
    p->cpus = sl_cpus(spec->cpu);
    p->mem_mb = sl_mem_mb(spec->memory);
    p->gpu = spec->gpu;
    p->timeout_ms = spec->timeout_ms;
    p->small = ex->batch_max > 1 && spec->gpu <= 0 &&
               (spec->cpu <= 0 ? 1000 : spec->cpu) <= ex->batch_max_cpu &&
               spec->memory <= ex->batch_max_memory;
    memset(&ts, 0, sizeof ts);
    ts.run_dir = p->run_dir;
    ts.path = ex->path;
    ts.cwd = spec->cwd;
    ts.argv = spec->argv;
    ts.env = spec->env;
    ts.timeout_ms = spec->timeout_ms;
    ts.grace_ms = ex->grace_ms;
    /* In the sandbox the helper keeps the env, folder and timeout. */
    if (ex->sb.ops && (rc = sl_sandbox_argv(&ex->sb, spec, &helper, e)))
        goto fail;
    if (helper) {
        ts.argv = helper;
        ts.env = NULL;
        ts.sandboxed = 1;
    }
    /* Written with the run folder once the attempt is submitted. */
    if (sl_task_script(&p->script, &ts)) {
        rc = jr_err_set(e, JR_E_SYSTEM, "out of memory");
        goto fail;
    }
    sl_name_bytes(ex, rnd, sizeof rnd);
    sl_job_name(p->name, sizeof p->name, spec->task, spec->job_id, spec->attempt, rnd);
    if (p->small && sl_batch_join(p)) {
        rc = jr_err_set(e, JR_E_SYSTEM, "out of memory");
        goto fail;
    }
    memset(&rec, 0, sizeof rec);
    snprintf(rec.job, sizeof rec.job, "%s", spec->job_id);
    snprintf(rec.task, sizeof rec.task, "%s", spec->task);
    rec.attempt = spec->attempt;
    snprintf(rec.name, sizeof rec.name, "%s", p->name);
    snprintf(rec.batch, sizeof rec.batch, "%s", p->bname);
    snprintf(rec.dir, sizeof rec.dir, "%s", p->run_dir);
    if (sl_record_format(&rec, record, JR_EXEC_RECORD_SIZE) < 0) {
        record[0] = 0;
        rc = jr_err_set(e, JR_E_INVALID, "the slurm executor's record of task '%s' does not"
                        " fit in %d bytes", spec->task, JR_EXEC_RECORD_SIZE);
        goto fail;
    }
    free_list(helper);
    p->state = P_GATED;
    sl_proc_link(p);
    *out = p;
    return JR_OK;
fail:
    free_list(helper);
    sl_proc_drop(p);
    return rc;
}

static void slurm_go(struct jr_exec_proc *p)
{
    if (p->state == P_GATED)
        sl_submit_ready(p);
}

static void slurm_kill(struct jr_exec_proc *p, int signum)
{
    struct sl_batch *b = p->batch;

    switch (p->state) {
    case P_GATED:
    case P_WAITING:
        sl_end_with(p, JR_OUT_CANCELED, "canceled before it was submitted to Slurm");
        /* Its batch may have waited for it alone. */
        if (b)
            sl_submit_due(b);
        break;
    case P_LOOKUP:
    case P_SUBMITTING:
        /* Applied once sbatch said which job it is. */
        if (!p->cancel_sig || signum == SIGKILL)
            p->cancel_sig = signum;
        break;
    case P_SUBMITTED:
        if (!p->cancel_sig || signum == SIGKILL)
            p->cancel_sig = signum;
        sl_cancel(p, signum);
        break;
    default:
        break;
    }
}

/* The scheduler is done with us: every attempt it killed ends now (the
 * scancels go out), and the executor goes once all is reported. */
static void slurm_close(void *self)
{
    struct sl_exec *ex = self;

    ex->closing = 1;
    sl_sandbox_close(&ex->sb);
    uv_timer_stop(&ex->window);
    uv_timer_stop(&ex->poll);
    for (struct jr_exec_proc *p = ex->procs; p; p = p->next)
        if (p->state != P_ENDED)
            sl_end_with(p, JR_OUT_CANCELED, "the daemon stopped; its Slurm job was canceled");
    sl_cancel_flush(ex);
    sl_kick(ex);
}

/* Without the sandbox a task runs as a plain process on its node: refuse
 * at submit what only the sandbox gives (an image, inputs, a network
 * other than the node's own), rather than run it without. */
static int slurm_check(void *self, const char *alias, const struct jr_task_setup *setup,
                       const char *const *deps, size_t ndeps, struct jr_err *e)
{
    struct sl_exec *ex = self;

    if (ex->sb.ops)
        return sl_sandbox_check(&ex->sb, alias, setup, deps, ndeps, e);
    if (!setup)
        return JR_OK;
    if (setup->image_kind != JR_SPEC_ABSENT &&
        !(setup->image_kind == JR_SPEC_OK && strcmp(setup->image, "host") == 0))
        return jr_err_set(e, JR_E_INVALID, "task '%s': image: the slurm executor runs tasks"
                          " on the node itself (only \"host\")", alias);
    if (setup->inputs_kind != JR_SPEC_ABSENT && setup->ninputs > 0)
        return jr_err_set(e, JR_E_INVALID, "task '%s': inputs: the slurm executor does not"
                          " stage inputs; read the deps' outputs from ../<task>/outputs", alias);
    if (setup->network_kind != JR_SPEC_ABSENT &&
        !(setup->network_mode && strcmp(setup->network_mode, "full") == 0))
        return jr_err_set(e, JR_E_INVALID, "task '%s': network: the slurm executor runs tasks"
                          " with the node's network (only \"full\")", alias);
    return JR_OK;
}

static const struct jr_exec_ops slurm_ops = {
    .name = "slurm",
    .start = slurm_start,
    .go = slurm_go,
    .kill = slurm_kill,
    .close = slurm_close,
    .check = slurm_check,
    .attach = sl_attach_op,
    .detach = sl_detach,
    .sandboxed = 0,
    .times_out = 1,
};

/* The same with the sandbox on the nodes: the scheduler hands over the
 * task's spec and makes only its folders. */
static const struct jr_exec_ops slurm_sandbox_ops = {
    .name = "slurm",
    .start = slurm_start,
    .go = slurm_go,
    .kill = slurm_kill,
    .close = slurm_close,
    .check = slurm_check,
    .attach = sl_attach_op,
    .detach = sl_detach,
    .sandboxed = 1,
    .times_out = 1,
};

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

int jr_exec_slurm_open(uv_loop_t *loop, const struct jr_exec_slurm_opts *o,
                       struct jr_executor *out, struct jr_err *e)
{
    struct sl_exec *ex = calloc(1, sizeof *ex);
    const char *path = getenv("PATH");
    size_t n = 0;

    if (!ex)
        return jr_err_set(e, JR_E_SYSTEM, "out of memory");
    ex->loop = loop;
    ex->log = o->log;
    ex->poll_ms = o->poll_ms > 0 ? o->poll_ms : DEFAULT_POLL_MS;
    ex->grace_ms = o->grace_ms > 0 ? o->grace_ms : DEFAULT_GRACE_MS;
    ex->log_cap = o->log_cap > 0 ? o->log_cap : DEFAULT_LOG_CAP;
    ex->batch_max = o->batch_max > 0 ? o->batch_max : 1;
    ex->batch_width = o->batch_width > 0 ? o->batch_width : 1;
    ex->batch_window_ms = o->batch_window_ms;
    ex->batch_max_cpu = o->batch_max_cpu > 0 ? o->batch_max_cpu : 1000;
    ex->batch_max_memory = o->batch_max_memory > 0 ? o->batch_max_memory : 1LL << 30;
    ex->data_dir = strdup(o->data_dir ? o->data_dir : ".");
    ex->partition = dup_or_null(o->partition);
    ex->account = dup_or_null(o->account);
    /* The scripts on the node find the commands where the daemon does. */
    if (o->bin && *o->bin) {
        if (asprintf(&ex->path, "%s:%s", o->bin, path ? path : "/usr/bin:/bin") < 0)
            ex->path = NULL;
    } else {
        ex->path = strdup(path ? path : "/usr/local/bin:/usr/bin:/bin");
    }
    while (o->sbatch_args && o->sbatch_args[n])
        n++;
    ex->sbatch_args = calloc(n + 1, sizeof *ex->sbatch_args);
    for (size_t i = 0; ex->sbatch_args && i < n; i++)
        if (!(ex->sbatch_args[i] = strdup(o->sbatch_args[i])))
            n = 0; /* reported below */
    if (!ex->data_dir || !ex->path || !ex->sbatch_args ||
        (n && !ex->sbatch_args[n - 1]) ||
        sl_cmds_init(&ex->cmds, loop, o->bin, o->conf)) {
        ex->cmds_closed = 1;
        free_exec(ex);
        return jr_err_set(e, JR_E_SYSTEM, "out of memory");
    }
    ex->cmds.timeout_ms = o->command_timeout_ms > 0 ? o->command_timeout_ms : 60000;
    uv_timer_init(loop, &ex->window);
    uv_timer_init(loop, &ex->poll);
    uv_timer_init(loop, &ex->kick);
    ex->window.data = ex->poll.data = ex->kick.data = ex;
    ex->handles = 3;
    if (o->sandbox && sl_sandbox_open(loop, o->sandbox, &ex->sb, e)) {
        ex->closing = 1;
        maybe_free(ex);
        return e ? e->code : JR_E_SYSTEM;
    }
    out->ops = o->sandbox ? &slurm_sandbox_ops : &slurm_ops;
    out->self = ex;
    return JR_OK;
}
