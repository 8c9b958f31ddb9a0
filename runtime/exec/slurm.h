/* Shared by the Slurm executor's files (exec/slurm*.c): the executor, an
 * attempt, a batch (one Slurm job running one or more attempts), the
 * command runner, and the pure text functions (scripts, arguments,
 * parsing, outcome mapping). Not for use outside runtime/exec/.
 *
 * The attempt's record (struct sl_record) is what start returns and the
 * store keeps with the running row: the Slurm job names chosen before
 * anything is submitted and the attempt's run folder. Start touches no
 * file; the run folder is written when the attempt is submitted, after
 * its running row is committed.
 *
 * An attempt's run folder, DATA/jobs/<job>/<task>/run/ (on the filesystem
 * the cluster's nodes share with the daemon):
 *   task.sh   the wrapper the node runs: the task's env, folder, timeout
 *             and command (or the sandbox helper around it);
 *   stdout, stderr  the task's output, read back as log lines;
 *   outcome   one JSON line the wrapper writes (renamed into place) when
 *             the command ended: {"outcome": "exited", "exit_code": 0,
 *             ...} as the sandbox helper writes it, or {"step_exit": N}
 *             from a batch script whose step left none;
 *   step      "JOBID" or "JOBID.STEPID" the wrapper runs in (a batched
 *             attempt is canceled by its step);
 *   cancel    made by the daemon to cancel an attempt whose step has not
 *             started: the batch script and the wrapper skip it;
 *   slurm.out Slurm's own output of a job of one attempt.
 * A batch of several has DATA/slurm/<batch name>/ for its script and
 * Slurm's output of it. */
#ifndef JR_EXEC_SLURM_H
#define JR_EXEC_SLURM_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "exec/exec.h"
#include "exec/lines.h"
#include "exec/slurm_sandbox.h"
#include "loop.h"

#define SL_RUN_DIR "run"
#define SL_RECORD_FORMAT 1
#define SL_NAME_MAX 128          /* bytes of a Slurm job name we choose */

/* ---- commands (slurm_cmd.c): sbatch, squeue, sacct, scancel ---- */

/* status: the exit code, 128 + signal when killed, -1 when it could not
 * run (err says why). out/err are what it printed (NUL-terminated, capped). */
typedef void (*sl_cmd_cb)(void *arg, int status, const char *out, size_t outlen,
                          const char *err, size_t errlen);

struct sl_cmds {
    uv_loop_t *loop;
    char *bin;                   /* folder of the commands, "" = PATH */
    char **env;                  /* NULL = the daemon's */
    struct sl_cmd *running;      /* in flight */
    int nrunning;
    int64_t timeout_ms;          /* a command is killed after this */
    void (*closed)(void *arg);   /* sl_cmds_close's, once none is left */
    void *closed_arg;
};

int sl_cmds_init(struct sl_cmds *c, uv_loop_t *loop, const char *bin, const char *conf);
/* Runs argv[0] (a Slurm command's name) with argv; cb from the loop,
 * exactly once unless sl_cmds_close came first. -1 when out of memory. */
int sl_cmd_run(struct sl_cmds *c, char *const *argv, sl_cmd_cb cb, void *arg);
/* Let every command in flight go (no callback follows; the processes run
 * on); *closed is called once their handles have closed. */
void sl_cmds_close(struct sl_cmds *c, void (*closed)(void *arg), void *arg);
void sl_cmds_free(struct sl_cmds *c);

/* ---- pure text (slurm_text.c) ---- */

/* What sbatch and srun are asked for: CPUs from millicores (rounded up,
 * at least 1), MiB from bytes (rounded up; 0 = none), minutes from ms
 * (rounded up; 0 = none). */
int64_t sl_cpus(int64_t millicores);
int64_t sl_mem_mb(int64_t bytes);
int64_t sl_minutes(int64_t ms);

/* s as one shell word in single quotes. -1 when out of memory. */
int sl_quote(struct jr_buf *b, const char *s);

struct sl_task_script {
    const char *run_dir;         /* absolute */
    const char *cwd;             /* where the command starts (plain runs) */
    char *const *argv;           /* the command, or the sandbox helper's argv */
    char *const *env;            /* K=V, the whole env (plain runs); NULL with sandbox */
    const char *path;            /* PATH of the wrapper itself */
    int64_t timeout_ms, grace_ms; /* plain runs: enforced with timeout(1) */
    int sandboxed;               /* argv runs the helper, its status on fd 3 */
};
/* The wrapper (run/task.sh): a POSIX sh script. */
int sl_task_script(struct jr_buf *b, const struct sl_task_script *t);

struct sl_batch_item {
    const char *run_dir;
    const char *name;            /* the step's name */
    int64_t cpus, mem_mb;
};
/* A bash script running n wrappers as srun steps, at most width at once;
 * path is the PATH it runs with. */
int sl_batch_script(struct jr_buf *b, const char *path, const struct sl_batch_item *v,
                    size_t n, int width);

/* A job's state as squeue or sacct tell it. */
struct sl_state {
    int64_t id;
    char state[32];              /* RUNNING, COMPLETED, ... */
    char reason[64];
    int exit_code, signal;       /* -1 / 0 when unknown */
    char nodes[128];
};
/* The job id sbatch --parsable printed ("123" or "123;cluster"), 0 if none. */
int64_t sl_parse_jobid(const char *out, size_t len);
/* One line of `squeue -O JobID:|,State:|,Reason:|,exit_code:|,NodeList:|`
 * (exit_code is a wait status). 0, or -1 when it is not one. */
int sl_parse_squeue(const char *line, size_t len, struct sl_state *s);
/* One line of `sacct -P -n -X -o JobID,State,ExitCode,NodeList`
 * (ExitCode "code:signal"; State may read "CANCELLED by 0"). */
int sl_parse_sacct(const char *line, size_t len, struct sl_state *s);
/* 1 when the state is final (the job's processes are all gone). */
int sl_state_final(const char *state);
/* 1 when the job may be running the tasks (not pending, not held). */
int sl_state_started(const char *state);

/* The attempt's result from its outcome line (NULL/0 when there is none)
 * and the final state of the Slurm job that ran it (NULL when Slurm no
 * longer knows it); canceled: the daemon asked to stop it. */
void sl_outcome(const char *line, size_t len, const struct sl_state *job, int canceled,
                struct jr_exec_result *r);

/* The attempt's record, the text start returns (JR_EXEC_RECORD_SIZE at
 * most): "jobrt-slurm <format>", then "<key> <value>" lines: job, task,
 * attempt; name, the Slurm job's name when the attempt runs alone; batch,
 * when it may share a batch, the batch job's name ("-": none); dir, its
 * run folder. Both names are chosen at start, unique (a random part), and
 * exactly one of them reaches Slurm: a later daemon finds the job by
 * looking both up (squeue, then sacct), which also says whether the
 * attempt is a step of a batch; neither known means it was never
 * submitted. The job id is not kept: it is learned after the row is
 * committed, and one lookup per restart finds it by name. A reader takes
 * formats up to its own and ignores keys it does not know. */
struct sl_record {
    int format;
    char job[80], task[80];
    int64_t attempt;
    char name[SL_NAME_MAX], batch[SL_NAME_MAX]; /* batch "" = none */
    char dir[JR_EXEC_RECORD_SIZE];
};
/* Its text; -1 when it does not fit in len. */
int sl_record_format(const struct sl_record *r, char *buf, size_t len);
/* 0; -1 when it is not a record or lacks attempt, name or dir, and also
 * (r->format set to it) when its format is newer than this daemon's. */
int sl_record_parse(const char *text, struct sl_record *r);
/* "jobrt-<task>-<job>-<attempt>-<8 hex>" or, with task NULL,
 * "jobrt-batch-<16 hex>", from the random bytes rnd (8 of them); only
 * letters, digits, '-', '_' and '.'. */
void sl_job_name(char *dst, size_t size, const char *task, const char *job, int64_t attempt,
                 const unsigned char *rnd);

/* ---- the executor (slurm.c) ---- */

/* P_GATED: started, before go; P_WAITING: go came, its batch is not
 * submitted yet; P_LOOKUP: attached, its job looked up by name. */
enum { P_GATED, P_WAITING, P_SUBMITTING, P_SUBMITTED, P_LOOKUP, P_ENDED };

struct sl_batch;

struct jr_exec_proc {
    struct sl_exec *ex;
    struct jr_exec_proc *next, **prevp;  /* in ex->procs while alive */
    struct jr_exec_proc *bnext;          /* in its batch */
    struct sl_batch *batch;      /* the one it shares or runs in, or NULL */
    int state;                   /* P_* */
    char *run_dir, *job_id, *task;
    char name[SL_NAME_MAX];      /* its job's name when alone (record) */
    char bname[SL_NAME_MAX];     /* its batch's name, "" = none (record) */
    struct jr_buf script;        /* task.sh, until it is written */
    int64_t attempt, cpus, mem_mb, gpu, timeout_ms;
    int small;                   /* may share a batch */
    int cancel_sig;              /* what the scheduler asked (0 = nothing) */
    int cancel_done;             /* the scancel for it went out */
    int asked;                   /* P_LOOKUP: in the lookup under way */
    /* output read back from run/stdout and run/stderr */
    struct jr_exec_lines lines[2];
    int64_t read[2];             /* bytes read of each file */
    int64_t logged, log_cap;
    int64_t progress;            /* the log offset last reported */
    int truncated;
    struct jr_exec_cbs cbs;
    void *arg;
    struct jr_exec_result result;
    struct jr_exec_proc *done_next; /* in ex->ended while waiting to report */
};

struct sl_batch {
    struct sl_exec *ex;
    struct sl_batch *next, **prevp;      /* in ex->batches */
    char name[SL_NAME_MAX];      /* the Slurm job's (a lone attempt's own) */
    char *dir;                   /* DATA/slurm/<name> (batches of several) */
    int64_t id;                  /* the Slurm job id, 0 until known */
    struct jr_exec_proc *procs;  /* its attempts (bnext) */
    int nprocs;
    int single;                  /* one attempt, its wrapper is the script */
    int pending;                 /* not submitted: members join at start */
    int due;                     /* pending, closed: goes once all had go */
    int kept;                    /* an attempt was detached: the job runs
                                  * on, its folder stays for the next daemon */
    int submitting;              /* sbatch in flight */
    int seen;                    /* squeue or sacct knew it */
    int unseen;                  /* polls in a row that did not list it */
    int final;                   /* state is final, or Slurm forgot it */
    int listed;                  /* in the last squeue answer */
    int asking;                  /* sacct is asked about it */
    struct sl_state st;
};

struct sl_exec {
    uv_loop_t *loop;
    struct jr_loop *log;
    struct sl_cmds cmds;
    char *data_dir, *partition, *account, *path, *sandbox;
    char **sbatch_args;
    int64_t poll_ms, grace_ms, log_cap;
    int batch_max, batch_width;
    int64_t batch_window_ms, batch_max_cpu, batch_max_memory;
    struct jr_exec_proc *procs;  /* every attempt not yet reported */
    struct sl_batch *batches;    /* pending, submitting or submitted */
    struct sl_batch *forming;    /* the pending batch small attempts join */
    struct jr_exec_proc *ended;  /* to report from the kick */
    uv_timer_t window, poll, kick;
    int handles;                 /* timers not yet closed */
    int polling;                 /* squeue/sacct in flight */
    int sacct_flag;              /* 0: try sacct, then sacct -c; 1: -c only */
    int poll_failures;
    uint64_t names;              /* names made without the system's random */
    int closing, cmds_closed;
    struct jr_executor sb;       /* executor.sandbox: the sandbox executor
                                  * whose spec reader and argv are used */
    /* scancel targets collected until the kick, one call per kind:
     * SL_CANCEL (plain scancel), SL_KILL_JOB, SL_KILL_STEP */
    struct jr_buf cancels[3];
};

enum { SL_CANCEL, SL_KILL_JOB, SL_KILL_STEP };

/* slurm.c */
/* A new attempt of ex (not linked), its run folder run_dir. */
struct jr_exec_proc *sl_proc_new(struct sl_exec *ex, const char *run_dir, const char *job_id,
                                 const char *task, const struct jr_exec_cbs *cbs, void *arg);
void sl_proc_link(struct jr_exec_proc *p);     /* into ex->procs */
void sl_proc_free(struct jr_exec_proc *p);
/* Out of every list and freed, without a word to the scheduler. */
void sl_proc_drop(struct jr_exec_proc *p);
void sl_end(struct jr_exec_proc *p);           /* result set: report it */
/* n random bytes for a name (the clock's when the system has none). */
void sl_name_bytes(struct sl_exec *ex, unsigned char *rnd, size_t n);
void sl_end_with(struct jr_exec_proc *p, int outcome, const char *msg);
/* From the loop: cancels go out, ended attempts are reported, batches
 * left without attempts are freed. */
void sl_kick(struct sl_exec *ex);
int sl_write_file(const char *dir, const char *name, const char *data, size_t len);

/* slurm_submit.c: the batching window and sbatch */
struct sl_batch *sl_batch_new(struct sl_exec *ex, const char *name); /* linked, empty */
void sl_batch_add(struct sl_batch *b, struct jr_exec_proc *p);       /* at its end */
/* At start: a small p joins the forming batch (made, and its window
 * started, when there is none); p->bname is that batch's name. -1 when
 * out of memory. */
int sl_batch_join(struct jr_exec_proc *p);
void sl_submit_ready(struct jr_exec_proc *p);  /* after go */
/* b is submitted if it is pending, due and all its attempts had go. */
void sl_submit_due(struct sl_batch *b);
void sl_cancel(struct jr_exec_proc *p, int signum);
void sl_cancel_flush(struct sl_exec *ex);

/* slurm_attach.c: across restarts */
/* The ops' attach (self: the struct sl_exec). */
int sl_attach_op(void *self, const struct jr_exec_attach *a, const struct jr_exec_cbs *cbs,
                 void *arg, struct jr_exec_proc **out, struct jr_err *e);
void sl_detach(struct jr_exec_proc *p);
/* The offsets of p's output logged so far, as the store keeps them. */
int64_t sl_log_offset(const struct jr_exec_proc *p);
/* Starts the lookup of the attached attempts' jobs by name; 1 when it
 * runs. */
int sl_lookup_names(struct sl_exec *ex);

/* slurm_poll.c: states, output, outcomes */
void sl_poll_start(struct sl_exec *ex);
void sl_poll_tick(uv_timer_t *t);
/* Reads new output of p; with final, everything (the job is over). */
void sl_read_output(struct jr_exec_proc *p, int final);

#endif
