/* Submitting a job: validate ids, aliases, dependencies (unknown aliases and
 * cycles named in the error) and resources against the node, then store the
 * job "created" with its tasks "pending" and one event, all or nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "metrics.h"
#include "sched/internal.h"

#define ID_MAX 64

/* [A-Za-z0-9][A-Za-z0-9._-]*, at most ID_MAX: safe as a file name. */
static int valid_name(const char *s, int first_underscore)
{
    size_t i, n = s ? strlen(s) : 0;

    if (n == 0 || n > ID_MAX)
        return 0;
    for (i = 0; i < n; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (i > 0)
            ok = ok || c == '.' || c == '-' || c == '_';
        else if (first_underscore)
            ok = ok || c == '_';
        if (!ok)
            return 0;
    }
    return 1;
}

/* A UUID version 7 (RFC 9562): 48 bits of Unix time in ms, then 74 random
 * bits. Ids created close together sort close together, so the unique index
 * on jobs.id grows at its end instead of dirtying a random leaf page per
 * submit (fewer pages per group commit). */
static int gen_id(char out[80], int64_t ms, struct jr_err *e)
{
    unsigned char b[16];
    int i;

    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b)
        return jr_err_set(e, JR_E_SYSTEM, "no random bytes for a job id");
    for (i = 0; i < 6; i++)
        b[i] = (unsigned char)((uint64_t)ms >> (40 - 8 * i));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x70);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    /* 8-4-4-4-12 hex digits, without printf (it cost a tenth of a submit's store work) */
    static const char hex[] = "0123456789abcdef";
    char *p = out;
    for (i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[b[i] >> 4];
        *p++ = hex[b[i] & 15];
    }
    *p = 0;
    return JR_OK;
}

static int find_alias(const struct jr_job_spec *spec, const char *alias)
{
    size_t i;

    for (i = 0; i < spec->ntasks; i++)
        if (strcmp(spec->tasks[i].alias, alias) == 0)
            return (int)i;
    return -1;
}

/* Depth-first search for a cycle; on finding one, path holds it. */
static int dfs(const struct jr_job_spec *spec, const int *const *deps, int node,
               char *color, int *stack, int depth, char *msg, size_t size)
{
    size_t k;
    int d, i;

    color[node] = 1;
    stack[depth] = node;
    for (k = 0; k < spec->tasks[node].ndeps; k++) {
        d = deps[node][k];
        if (color[d] == 1) {
            size_t off = 0;
            int start = depth;
            while (start > 0 && stack[start] != d)
                start--;
            off += (size_t)snprintf(msg, size, "tasks form a cycle: ");
            for (i = start; i <= depth && off < size; i++)
                off += (size_t)snprintf(msg + off, size - off, "%s depends on ",
                                        spec->tasks[stack[i]].alias);
            if (off < size)
                snprintf(msg + off, size - off, "%s", spec->tasks[d].alias);
            return 1;
        }
        if (color[d] == 0 && dfs(spec, deps, d, color, stack, depth + 1, msg, size))
            return 1;
    }
    color[node] = 2;
    return 0;
}

/* The executor's check of t's image, network and inputs: from t->setup,
 * or from its JSON when the caller gave none. */
static int check_setup(struct jr_sched *s, const struct jr_task_spec *t, struct jr_err *e)
{
    struct jr_task_setup own;
    int rc, has_command = t->argv && t->argv_len > 0 && t->argv[0];

    if (t->setup) {
        own = *t->setup;
        own.has_command = has_command;
        own.checking = 1;
        return s->ex.ops->check(s->ex.self, t->alias, &own,
                                (const char *const *)t->deps, t->ndeps, e);
    }
    if (jr_spec_decode(t->spec, &own))
        rc = jr_err_set(e, JR_E_INVALID, "task '%s': its spec is not a JSON object",
                        t->alias);
    else {
        own.has_command = has_command;
        own.checking = 1;
        rc = s->ex.ops->check(s->ex.self, t->alias, &own, (const char *const *)t->deps,
                              t->ndeps, e);
    }
    jr_spec_free(&own);
    return rc;
}

static int check_tasks(struct jr_sched *s, const struct jr_job_spec *spec,
                       int **deps_out, struct jr_err *e)
{
    const struct jr_node *n = &s->node;
    size_t i, k, total = 0;
    int *deps = NULL, **rows = NULL, *stack = NULL, rc = JR_OK;
    char *color = NULL;

    *deps_out = NULL;
    for (i = 0; i < spec->ntasks; i++) {
        const struct jr_task_spec *t = &spec->tasks[i];
        if (!valid_name(t->alias, 1))
            return jr_err_set(e, JR_E_INVALID, "tasks[%zu].alias '%s' is not valid (letters,"
                              " digits, '.', '-', '_', at most %d)", i,
                              t->alias ? t->alias : "", ID_MAX);
        if (t->group && !valid_name(t->group, 1))
            return jr_err_set(e, JR_E_INVALID, "tasks[%zu].group '%s' is not valid (letters,"
                              " digits, '.', '-', '_', at most %d)", i, t->group, ID_MAX);
        if (find_alias(spec, t->alias) != (int)i)
            return jr_err_set(e, JR_E_INVALID, "task alias '%s' is used twice", t->alias);
        /* A sandboxed task may take its command from its image (the
         * executor's check says when there is none). */
        if ((!t->argv || t->argv_len == 0 || !t->argv[0]) && !s->ex.ops->sandboxed)
            return jr_err_set(e, JR_E_INVALID, "task '%s' has no command", t->alias);
        if (t->cpu < 0 || t->memory < 0 || t->gpu < 0 || t->disk < 0 ||
            t->timeout_ms < 0 || t->retries < 0)
            return jr_err_set(e, JR_E_INVALID, "task '%s': resources, timeout and retries"
                              " cannot be negative", t->alias);
        if (t->cpu > n->cpu)
            return jr_err_set(e, JR_E_INVALID, "task '%s' needs cpu %lldm but the node has"
                              " %lldm", t->alias, (long long)t->cpu, (long long)n->cpu);
        if (t->memory > n->memory)
            return jr_err_set(e, JR_E_INVALID, "task '%s' needs memory %lld bytes but the"
                              " node has %lld", t->alias, (long long)t->memory,
                              (long long)n->memory);
        if (t->gpu > n->gpu)
            return jr_err_set(e, JR_E_INVALID, "task '%s' needs %lld gpu but the node has"
                              " %lld", t->alias, (long long)t->gpu, (long long)n->gpu);
        if (s->ex.ops->check && (rc = check_setup(s, t, e)))
            return rc;
        total += t->ndeps;
    }
    deps = calloc(total + 1, sizeof *deps);
    rows = calloc(spec->ntasks + 1, sizeof *rows);
    color = calloc(spec->ntasks + 1, 1);
    stack = calloc(spec->ntasks + 1, sizeof *stack);
    if (!deps || !rows || !color || !stack) {
        rc = jr_err_set(e, JR_E_SYSTEM, "out of memory");
        goto done;
    }
    for (i = 0, total = 0; i < spec->ntasks; i++) {
        const struct jr_task_spec *t = &spec->tasks[i];
        rows[i] = deps + total;
        for (k = 0; k < t->ndeps; k++) {
            int d = t->deps[k] ? find_alias(spec, t->deps[k]) : -1;
            if (d < 0) {
                rc = jr_err_set(e, JR_E_INVALID, "task '%s' depends on unknown task '%s'",
                                t->alias, t->deps[k] ? t->deps[k] : "");
                goto done;
            }
            if (d == (int)i) {
                rc = jr_err_set(e, JR_E_INVALID, "task '%s' depends on itself", t->alias);
                goto done;
            }
            deps[total++] = d;
        }
    }
    for (i = 0; i < spec->ntasks; i++) {
        if (color[i] == 0 && dfs(spec, (const int *const *)rows, (int)i, color, stack, 0,
                                 e ? e->msg : NULL, e ? sizeof e->msg : 0)) {
            rc = JR_E_INVALID;
            if (e)
                e->code = rc;
            goto done;
        }
    }
    *deps_out = deps;
    deps = NULL;
done:
    free(deps);
    free(rows);
    free(color);
    free(stack);
    return rc;
}

/* The task rows of spec (job_seq left 0) in recs, their deps lists (task
 * indexes, comma-separated) in one allocation *lists owns; deps is
 * check_tasks' flattened list. */
static int task_recs(const struct jr_job_spec *spec, const int *deps,
                     struct jr_task_rec *recs, char **lists, struct jr_err *e)
{
    size_t i, k, size = 1, off = 0;
    char *list;

    for (i = 0; i < spec->ntasks; i++)
        size += spec->tasks[i].ndeps * 12 + 1;
    if (!(list = *lists = malloc(size)))
        return jr_err_set(e, JR_E_SYSTEM, "out of memory");
    for (i = 0; i < spec->ntasks; i++) {
        const struct jr_task_spec *t = &spec->tasks[i];
        struct jr_task_rec *r = &recs[i];
        memset(r, 0, sizeof *r);
        r->deps = list + off;
        for (k = 0; k < t->ndeps; k++)
            off += (size_t)snprintf(list + off, size - off, "%s%d", k ? "," : "", *deps++);
        list[off++] = 0;
        r->idx = (int64_t)i;
        r->alias = t->alias;
        r->group = t->group;
        r->state = jr_tstate_names[T_PENDING];
        r->priority = t->priority;
        r->tolerable = t->tolerable;
        r->retries = t->retries;
        r->cpu = t->cpu;
        r->memory = t->memory;
        r->gpu = t->gpu;
        r->disk = t->disk;
        r->timeout_ms = t->timeout_ms;
        r->argv = t->argv;
        r->argv_len = t->argv_len;
        r->env = t->env ? t->env : "";
        r->env_len = t->env ? t->env_len : 0;
        r->workdir = t->workdir;
        r->exit_code = -1;
        r->spec = t->spec;
    }
    return JR_OK;
}

int jr_sched_submit(struct jr_sched *s, const struct jr_job_spec *spec,
                    char id_out[80], struct jr_err *e)
{
    struct jr_job_rec r;
    struct jr_event_rec ev;
    struct jr_task_rec *recs = NULL;
    int64_t now = spec->created_at ? spec->created_at : jr_store_now_ms(), seq = 0;
    int *deps = NULL;
    char *lists = NULL;
    int rc;

    id_out[0] = 0;
    if (spec->id) {
        if (!valid_name(spec->id, 0))
            return jr_err_set(e, JR_E_INVALID, "job id '%s' is not valid (letters, digits,"
                              " '.', '-', '_', at most %d, starting with a letter or digit)",
                              spec->id, ID_MAX);
        snprintf(id_out, 80, "%s", spec->id);
    } else if ((rc = gen_id(id_out, now, e))) {
        return rc;
    }
    if (spec->max_parallelism < 0)
        return jr_err_set(e, JR_E_INVALID, "max_parallelism cannot be negative");
    rc = check_tasks(s, spec, &deps, e);
    if (rc)
        return rc;
    if (!(recs = calloc(spec->ntasks + 1, sizeof *recs))) {
        rc = jr_err_set(e, JR_E_SYSTEM, "out of memory");
        goto done;
    }
    if ((rc = task_recs(spec, deps, recs, &lists, e)))
        goto done;
    memset(&r, 0, sizeof r);
    r.id = id_out;
    r.surface = spec->surface;
    r.owner = spec->owner;
    r.state = jr_jstate_names[J_CREATED];
    r.priority = spec->priority;
    r.max_parallelism = spec->max_parallelism;
    r.created_at = r.updated_at = now;
    r.attrs = spec->attrs;
    r.fresh_id = spec->id == NULL;
    ev = (struct jr_event_rec){ 0, now, id_out, NULL, "job", r.state, "submitted" };
    rc = jr_store_job_create(s->st, &r, recs, spec->ntasks, &ev, &seq, e);
    if (rc == JR_E_EXISTS && spec->id) {
        struct sjob *gone = jr_sched_find(s, id_out);
        if (gone && gone->deleting)
            rc = jr_err_set(e, JR_E_CONFLICT, "job '%s' is being deleted: its tasks are"
                            " still stopping; submit it again once it is gone", id_out);
    }
    if (rc)
        goto done;
    if (s->opts.on_event)
        s->opts.on_event(s->opts.event_arg, seq);
    jr_metrics_count(s->opts.metrics, JR_M_SUBMISSIONS, spec->surface ? spec->surface : "",
                     NULL, 1);
done:
    free(deps);
    free(recs);
    free(lists);
    return rc;
}

int jr_sched_replace_tasks(struct jr_sched *s, int64_t job_seq,
                           const struct jr_job_spec *spec, struct jr_err *e)
{
    int *deps = NULL;
    int rc = check_tasks(s, spec, &deps, e);

    if (rc)
        return rc;
    struct jr_task_rec *recs = calloc(spec->ntasks + 1, sizeof *recs);
    char *lists = NULL;
    size_t i;

    if (!recs)
        rc = jr_err_set(e, JR_E_SYSTEM, "out of memory");
    if (!rc)
        rc = task_recs(spec, deps, recs, &lists, e);
    if (!rc)
        rc = jr_store_job_delete_tasks(s->st, job_seq, e);
    for (i = 0; !rc && i < spec->ntasks; i++) {
        recs[i].job_seq = job_seq;
        rc = jr_store_task_insert(s->st, &recs[i], e);
    }
    free(deps);
    free(recs);
    free(lists);
    return rc;
}
