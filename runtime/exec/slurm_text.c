/* The Slurm executor's text, kept pure for the unit tests: sizes as sbatch
 * takes them, the wrapper and batch scripts, what sbatch, squeue and sacct
 * print, the attempt's record and its job names, and how a job's end
 * becomes a result. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/jv.h"
#include "exec/slurm.h"

int64_t sl_cpus(int64_t millicores)
{
    return millicores <= 1000 ? 1 : (millicores + 999) / 1000;
}

int64_t sl_mem_mb(int64_t bytes)
{
    return bytes <= 0 ? 0 : (bytes + (1 << 20) - 1) >> 20;
}

int64_t sl_minutes(int64_t ms)
{
    return ms <= 0 ? 0 : (ms + 59999) / 60000;
}

int sl_quote(struct jr_buf *b, const char *s)
{
    int rc = jr_buf_add(b, "'", 1);

    for (; !rc && *s; s++)
        rc = *s == '\'' ? jr_buf_addstr(b, "'\\''") : jr_buf_add(b, s, 1);
    return rc ? rc : jr_buf_add(b, "'", 1);
}

/* ---- the wrapper ---- */

/* The task's env, then the Slurm variables a task may want. */
static int add_env(struct jr_buf *b, char *const *env)
{
    static const char *const slurm[] = {
        "SLURM_JOB_ID", "SLURM_STEP_ID", "SLURMD_NODENAME", "SLURM_CPUS_PER_TASK",
        "SLURM_JOB_PARTITION", NULL
    };
    int rc = jr_buf_addstr(b, " env -i");

    for (; !rc && env && *env; env++) {
        rc = jr_buf_add(b, " ", 1);
        if (!rc)
            rc = sl_quote(b, *env);
    }
    for (int i = 0; !rc && slurm[i]; i++)
        rc = jr_buf_addf(b, " ${%s:+%s=\"$%s\"}", slurm[i], slurm[i], slurm[i]);
    return rc;
}

int sl_task_script(struct jr_buf *b, const struct sl_task_script *t)
{
    int rc = 0;

    rc |= jr_buf_addstr(b, "#!/bin/sh\n# jobrt: one task attempt, as a Slurm job or step"
                        " (written by the daemon)\nrun=");
    rc |= sl_quote(b, t->run_dir);
    rc |= jr_buf_addstr(b, "\nPATH=");
    rc |= sl_quote(b, t->path);
    rc |= jr_buf_addstr(b,
        "\nexport PATH\nnow() { date +%s%3N; }\n"
        "out() { printf '%s\\n' \"$1\" >\"$run/outcome.tmp\" && "
        "mv -f \"$run/outcome.tmp\" \"$run/outcome\"; }\n"
        "printf '%s\\n' \"${SLURM_JOB_ID:-0}${SLURM_STEP_ID:+.$SLURM_STEP_ID}\" "
        ">\"$run/step.tmp\" && mv -f \"$run/step.tmp\" \"$run/step\"\n"
        "if [ -e \"$run/cancel\" ]; then\n"
        "  out '{\"outcome\":\"canceled\",\"message\":\"canceled before it started\"}'\n"
        "  exit 0\nfi\n"
        /* A TERM from scancel reaches the command too: the wrapper waits
         * for it and says how it ended. */
        "trap 'term=1' TERM\n"
        "start=$(now)\n");
    if (t->sandboxed) {
        /* The helper says how the task ended on fd 3; it keeps the
         * timeout itself. */
        rc |= jr_buf_addstr(b, "exec 3>\"$run/outcome.tmp\"\n");
        for (char *const *a = t->argv; !rc && *a; a++) {
            rc |= sl_quote(b, *a);
            rc |= jr_buf_add(b, " ", 1);
        }
        rc |= jr_buf_addstr(b,
            "</dev/null >\"$run/stdout\" 2>\"$run/stderr\"\nrc=$?\nexec 3>&-\n"
            "if [ -s \"$run/outcome.tmp\" ]; then mv -f \"$run/outcome.tmp\" \"$run/outcome\"\n"
            "else out \"{\\\"outcome\\\":\\\"setup_error\\\",\\\"stage\\\":\\\"helper\\\","
            "\\\"message\\\":\\\"the sandbox helper exited with status $rc without reporting\\\"}\"\n"
            "fi\nexit 0\n");
        return rc ? -1 : 0;
    }
    rc |= jr_buf_addstr(b, "cd ");
    rc |= sl_quote(b, t->cwd);
    rc |= jr_buf_addstr(b, " 2>/dev/null || { out \"{\\\"outcome\\\":\\\"setup_error\\\","
                        "\\\"stage\\\":\\\"chdir\\\",\\\"message\\\":\\\"cannot enter the"
                        " task folder on $(hostname)\\\"}\"; exit 0; }\n");
    if (t->timeout_ms > 0)
        rc |= jr_buf_addf(b, "timeout -k %lld.%03llds %lld.%03llds",
                          (long long)(t->grace_ms / 1000), (long long)(t->grace_ms % 1000),
                          (long long)(t->timeout_ms / 1000), (long long)(t->timeout_ms % 1000));
    rc |= add_env(b, t->env);
    for (char *const *a = t->argv; !rc && *a; a++) {
        rc |= jr_buf_add(b, " ", 1);
        rc |= sl_quote(b, *a);
    }
    rc |= jr_buf_addstr(b, " </dev/null >\"$run/stdout\" 2>\"$run/stderr\"\nrc=$?\n");
    rc |= jr_buf_addf(b, "end=$(now); wall=$((end - start))\n"
                      "if [ %lld -gt 0 ] && [ \"$wall\" -ge %lld ] && "
                      "{ [ $rc = 124 ] || [ $rc = 137 ] || [ $rc = 143 ]; }; then\n"
                      "  out \"{\\\"outcome\\\":\\\"timeout\\\",\\\"wall_ms\\\":$wall,"
                      "\\\"ended_ms\\\":$end}\"\n",
                      (long long)t->timeout_ms, (long long)t->timeout_ms);
    /* The shell reports a command killed by signal N as 128 + N. */
    rc |= jr_buf_addstr(b,
        "elif [ $rc -gt 128 ] && [ $rc -le 192 ]; then\n"
        "  out \"{\\\"outcome\\\":\\\"signaled\\\",\\\"signal\\\":$((rc - 128)),"
        "\\\"wall_ms\\\":$wall,\\\"ended_ms\\\":$end}\"\n"
        "else\n"
        "  out \"{\\\"outcome\\\":\\\"exited\\\",\\\"exit_code\\\":$rc,"
        "\\\"wall_ms\\\":$wall,\\\"ended_ms\\\":$end}\"\n"
        /* Slurm shows the task's own status (sacct, squeue). */
        "fi\nexit $rc\n");
    return rc ? -1 : 0;
}

/* ---- the batch script ---- */

int sl_batch_script(struct jr_buf *b, const char *path, const struct sl_batch_item *v,
                    size_t n, int width)
{
    int rc = 0;

    rc |= jr_buf_addf(b, "#!/bin/bash\n# jobrt: %zu task attempts as srun steps, at most %d"
                      " at once (written by the daemon)\nPATH=", n, width);
    rc |= sl_quote(b, path);
    rc |= jr_buf_addstr(b,
        "\nexport PATH SLURM_EXPORT_ENV=ALL\n"
        "step() {\n"
        "  run=$1 name=$2; shift 2\n"
        "  if [ -e \"$run/cancel\" ]; then\n"
        "    printf '%s\\n' '{\"outcome\":\"canceled\",\"message\":\"canceled before it"
        " started\"}' >\"$run/outcome.tmp\"\n"
        "  else\n"
        "    srun --ntasks=1 --exact --job-name=\"$name\" \"$@\" /bin/sh \"$run/task.sh\"\n"
        "    rc=$?\n"
        "    [ -e \"$run/outcome\" ] || printf '{\"step_exit\":%d}\\n' $rc"
        " >\"$run/outcome.tmp\"\n"
        "  fi\n"
        "  [ -e \"$run/outcome.tmp\" ] && mv -f \"$run/outcome.tmp\" \"$run/outcome\"\n"
        "  return 0\n"
        "}\n");
    rc |= jr_buf_addf(b, "slot() { while [ \"$(jobs -pr | wc -l)\" -ge %d ]; do wait -n;"
                      " done; }\n", width < 1 ? 1 : width);
    for (size_t i = 0; !rc && i < n; i++) {
        rc |= jr_buf_addstr(b, "slot; step ");
        rc |= sl_quote(b, v[i].run_dir);
        rc |= jr_buf_add(b, " ", 1);
        rc |= sl_quote(b, v[i].name);
        rc |= jr_buf_addf(b, " --cpus-per-task=%lld", (long long)v[i].cpus);
        if (v[i].mem_mb > 0)
            rc |= jr_buf_addf(b, " --mem=%lldM", (long long)v[i].mem_mb);
        rc |= jr_buf_addstr(b, " &\n");
    }
    rc |= jr_buf_addstr(b, "wait\n");
    return rc ? -1 : 0;
}

/* ---- what the commands print ---- */

int64_t sl_parse_jobid(const char *out, size_t len)
{
    int64_t id = 0;
    size_t i = 0;

    while (i < len && (out[i] == ' ' || out[i] == '\n'))
        i++;
    for (; i < len && out[i] >= '0' && out[i] <= '9'; i++) {
        if (id > (INT64_MAX - 9) / 10)
            return 0;
        id = id * 10 + (out[i] - '0');
    }
    return i < len && out[i] != ';' && out[i] != '\n' && out[i] != ' ' ? 0 : id;
}

/* Field k (0-based) of a '|'-separated line into buf (trimmed). */
static int field(const char *line, size_t len, int k, char *buf, size_t size)
{
    size_t i = 0, start, end;

    for (; k > 0 && i < len; i++)
        if (line[i] == '|')
            k--;
    if (k > 0)
        return -1;
    start = i;
    while (i < len && line[i] != '|' && line[i] != '\n')
        i++;
    end = i;
    while (start < end && line[start] == ' ')
        start++;
    while (end > start && line[end - 1] == ' ')
        end--;
    snprintf(buf, size, "%.*s", (int)(end - start), line + start);
    return 0;
}

static int parse_id(const char *s, int64_t *id)
{
    char *end;
    long long v = strtoll(s, &end, 10);

    /* "123.batch" or "123+0" are parts of a job, not the job. */
    if (end == s || *end || v <= 0)
        return -1;
    *id = v;
    return 0;
}

static void state_init(struct sl_state *s)
{
    memset(s, 0, sizeof *s);
    s->exit_code = -1;
}

int sl_parse_squeue(const char *line, size_t len, struct sl_state *s)
{
    char id[32], status[32];
    long long w;

    state_init(s);
    if (field(line, len, 0, id, sizeof id) || parse_id(id, &s->id) ||
        field(line, len, 1, s->state, sizeof s->state) || !s->state[0] ||
        field(line, len, 2, s->reason, sizeof s->reason) ||
        field(line, len, 3, status, sizeof status))
        return -1;
    field(line, len, 4, s->nodes, sizeof s->nodes);
    if (sscanf(status, "%lld", &w) == 1 && w >= 0) {
        if (w & 0x7f) {
            s->signal = (int)(w & 0x7f);
        } else {
            s->exit_code = (int)((w >> 8) & 0xff);
        }
    }
    return 0;
}

int sl_parse_sacct(const char *line, size_t len, struct sl_state *s)
{
    char id[32], code[32];
    int c, sig;

    state_init(s);
    if (field(line, len, 0, id, sizeof id) || parse_id(id, &s->id) ||
        field(line, len, 1, s->state, sizeof s->state) || !s->state[0] ||
        field(line, len, 2, code, sizeof code))
        return -1;
    field(line, len, 3, s->nodes, sizeof s->nodes);
    /* "CANCELLED by 0" */
    s->state[strcspn(s->state, " ")] = 0;
    if (sscanf(code, "%d:%d", &c, &sig) == 2) {
        s->exit_code = sig ? -1 : c;
        s->signal = sig;
    }
    return 0;
}

static int one_of(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return 1;
    return 0;
}

int sl_state_final(const char *state)
{
    static const char *const final[] = {
        "COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED",
        "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY", "REVOKED", "SPECIAL_EXIT", NULL
    };
    return one_of(state, final);
}

int sl_state_started(const char *state)
{
    static const char *const waiting[] = {
        "PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD",
        NULL
    };
    return state[0] && !one_of(state, waiting);
}

/* ---- outcomes ---- */

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

/* The outcome line's own result; 0 when it has none (no line, or a
 * batch script's {"step_exit": N} for a step that left nothing). */
static int from_line(const char *line, size_t len, struct jr_exec_result *r, int *step_exit)
{
    struct jr_jv *o = line && len ? jr_jv_parse(line, len) : NULL;
    const char *name = o ? jr_jv_str(o, "outcome") : NULL;
    const char *msg, *stage;

    *step_exit = o ? (int)num_of(o, "step_exit", -1) : -1;
    if (!name || outcome_of(name) == JR_OUT_NONE) {
        jr_jv_free(o);
        return 0;
    }
    r->outcome = outcome_of(name);
    r->exit_code = (int)num_of(o, "exit_code", -1);
    r->signal = (int)num_of(o, "signal", 0);
    r->cpu_ms = num_of(o, "cpu_ms", -1);
    r->max_rss_bytes = num_of(o, "max_rss_bytes", -1);
    r->wall_ms = num_of(o, "wall_ms", -1);
    r->ended_ms = num_of(o, "ended_ms", 0);
    msg = jr_jv_str(o, "message");
    stage = jr_jv_str(o, "stage");
    if (r->outcome == JR_OUT_SETUP_ERROR)
        snprintf(r->message, sizeof r->message, "setup_error at stage %s: %s",
                 stage ? stage : "?", msg ? msg : "");
    else if (r->outcome == JR_OUT_EXITED && r->exit_code != 0)
        snprintf(r->message, sizeof r->message, "exit code %d", r->exit_code);
    else if (r->outcome == JR_OUT_SIGNALED)
        snprintf(r->message, sizeof r->message, "killed by signal %d", r->signal);
    else if (msg)
        snprintf(r->message, sizeof r->message, "%s", msg);
    jr_jv_free(o);
    return 1;
}

void sl_outcome(const char *line, size_t len, const struct sl_state *job, int canceled,
                struct jr_exec_result *r)
{
    int step_exit;
    const char *st = job ? job->state : "";

    memset(r, 0, sizeof *r);
    r->exit_code = -1;
    r->cpu_ms = r->max_rss_bytes = r->wall_ms = -1;
    if (from_line(line, len, r, &step_exit)) {
        /* Killed with the job over its memory: Slurm says why. */
        if (strcmp(st, "OUT_OF_MEMORY") == 0 && r->outcome != JR_OUT_TIMEOUT &&
            !(r->outcome == JR_OUT_EXITED && r->exit_code == 0)) {
            r->outcome = JR_OUT_OOM;
            snprintf(r->message, sizeof r->message, "out of memory (Slurm job %lld ended"
                     " OUT_OF_MEMORY)", (long long)job->id);
        }
        return;
    }
    if (canceled) {
        r->outcome = JR_OUT_CANCELED;
        snprintf(r->message, sizeof r->message, "canceled");
        return;
    }
    if (!job) {
        r->outcome = JR_OUT_LOST;
        snprintf(r->message, sizeof r->message, "its Slurm job is no longer known to Slurm"
                 " and the task left no outcome");
        return;
    }
    if (strcmp(st, "TIMEOUT") == 0) {
        r->outcome = JR_OUT_TIMEOUT;
        snprintf(r->message, sizeof r->message, "Slurm's time limit ended job %lld",
                 (long long)job->id);
    } else if (strcmp(st, "OUT_OF_MEMORY") == 0) {
        r->outcome = JR_OUT_OOM;
        snprintf(r->message, sizeof r->message, "out of memory (Slurm job %lld ended"
                 " OUT_OF_MEMORY)", (long long)job->id);
    } else if (strcmp(st, "NODE_FAIL") == 0) {
        r->outcome = JR_OUT_LOST;
        snprintf(r->message, sizeof r->message, "Slurm node failure: job %lld ended"
                 " NODE_FAIL on %s", (long long)job->id, job->nodes[0] ? job->nodes : "its node");
    } else if (strcmp(st, "CANCELLED") == 0) {
        r->outcome = JR_OUT_SIGNALED;
        r->signal = 15;
        snprintf(r->message, sizeof r->message, "canceled in Slurm: job %lld ended CANCELLED"
                 " without jobrt asking", (long long)job->id);
    } else if (strcmp(st, "FAILED") == 0 && strcmp(job->reason, "JobLaunchFailure") == 0) {
        r->outcome = JR_OUT_SETUP_ERROR;
        snprintf(r->message, sizeof r->message, "setup_error: Slurm could not launch job"
                 " %lld (JobLaunchFailure) on %s", (long long)job->id,
                 job->nodes[0] ? job->nodes : "its node");
    } else {
        r->outcome = JR_OUT_LOST;
        r->signal = job->signal;
        if (step_exit >= 0)
            snprintf(r->message, sizeof r->message, "its srun step in Slurm job %lld ended"
                     " (srun exit %d) without the task's outcome", (long long)job->id,
                     step_exit);
        else
            snprintf(r->message, sizeof r->message, "Slurm job %lld ended %s%s%s%s without"
                     " the task's outcome", (long long)job->id, st[0] ? st : "unknown",
                     job->reason[0] && strcmp(job->reason, "None") ? " (" : "",
                     job->reason[0] && strcmp(job->reason, "None") ? job->reason : "",
                     job->reason[0] && strcmp(job->reason, "None") ? ")" : "");
    }
}

/* ---- the record ---- */

/* Slurm job names: letters, digits and -_. only. */
static size_t name_part(char *dst, size_t size, const char *s)
{
    size_t i = 0;

    for (; *s && i + 1 < size; s++, i++) {
        char c = *s;
        dst[i] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_' || c == '.' ? c : '_';
    }
    dst[i] = 0;
    return i;
}

void sl_job_name(char *dst, size_t size, const char *task, const char *job, int64_t attempt,
                 const unsigned char *rnd)
{
    char t[41], j[41];

    if (!task) {
        snprintf(dst, size, "jobrt-batch-%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1],
                 rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
        return;
    }
    name_part(t, sizeof t, task);
    name_part(j, sizeof j, job);
    snprintf(dst, size, "jobrt-%s-%s-%lld-%02x%02x%02x%02x", t, j, (long long)attempt, rnd[0],
             rnd[1], rnd[2], rnd[3]);
}

int sl_record_format(const struct sl_record *r, char *buf, size_t len)
{
    int n = snprintf(buf, len, "jobrt-slurm %d\njob %s\ntask %s\nattempt %lld\nname %s\n"
                     "batch %s\ndir %s\n", SL_RECORD_FORMAT, r->job, r->task,
                     (long long)r->attempt, r->name, r->batch[0] ? r->batch : "-", r->dir);

    return n < 0 || (size_t)n >= len ? -1 : n;
}

int sl_record_parse(const char *text, struct sl_record *r)
{
    const char *p = text, *nl;
    int have = 0;

    memset(r, 0, sizeof *r);
    if (sscanf(p, "jobrt-slurm %d", &r->format) != 1 || r->format < 1)
        return -1;
    if (r->format > SL_RECORD_FORMAT)
        return -1;
    for (; (nl = strchr(p, '\n')) && nl[1]; p = nl + 1) {
        const char *key = nl + 1, *val = strchr(key, ' '), *end = strchr(key, '\n');
        size_t klen, vlen;
        long long v;
        char num[32];
        if (!end)
            end = key + strlen(key);
        if (!val || val > end)
            continue;
        klen = (size_t)(val - key);
        vlen = (size_t)(end - ++val);
#define KEY(k) (klen == sizeof k - 1 && memcmp(key, k, klen) == 0)
        if (KEY("job"))
            snprintf(r->job, sizeof r->job, "%.*s", (int)vlen, val);
        else if (KEY("task"))
            snprintf(r->task, sizeof r->task, "%.*s", (int)vlen, val);
        else if (KEY("name") && vlen && vlen < sizeof r->name)
            have |= 1, snprintf(r->name, sizeof r->name, "%.*s", (int)vlen, val);
        else if (KEY("batch") && vlen < sizeof r->batch)
            snprintf(r->batch, sizeof r->batch, "%.*s",
                     vlen == 1 && val[0] == '-' ? 0 : (int)vlen, val);
        else if (KEY("dir") && vlen && vlen < sizeof r->dir)
            have |= 2, snprintf(r->dir, sizeof r->dir, "%.*s", (int)vlen, val);
        else if (KEY("attempt") && vlen < sizeof num) {
            snprintf(num, sizeof num, "%.*s", (int)vlen, val);
            if (sscanf(num, "%lld", &v) == 1)
                have |= 4, r->attempt = v;
        }
#undef KEY
    }
    return have == 7 ? 0 : -1;
}
