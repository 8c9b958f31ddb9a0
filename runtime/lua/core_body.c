/* jobrt.core.submit_body: a native job document submitted from its JSON
 * text in one pass (DESIGN §7's pipeline for a job not started, with no
 * estimator): read into nodes (body_doc.c), units translated and the
 * core model checked as jobrt.native, jobrt.units and jobrt.model do,
 * and the spec, the stored JSON and the answer made in C, with no Lua
 * table in between. It takes the common shape only; a document with
 * anything else, or with any problem, is left to the decoded path, which
 * names the problem: what this pass stores is what that path would. */
#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/body_doc.h"
#include "lua/body_units.h"
#include "lua/core_internal.h"
#include "spec.h"

#define NODES_MAX 256

enum { L_TITLE, L_DESCRIPTION, L_LABEL_KEY, L_LABEL_VALUE, L_LABELS, L_ENV, L_ENV_VALUE,
       L_TASKS, L_ARGV, L_COUNT };
static const char *const limit_names[L_COUNT] = {
    "title", "description", "label_key", "label_value", "labels", "env", "env_value",
    "tasks", "argv",
};

/* One pass's state: the nodes, the limits, and the scratch all the made
 * texts go to (a userdata on the stack, sized beforehand). */
struct pass {
    const struct jr_doc_node *v;
    int64_t lim[L_COUNT];
    char *p;
    size_t n, cap;
};

#define NODE(ps, i) (&(ps)->v[(i)])
#define EACH(ps, parent, c) \
    for (const struct jr_doc_node *c = (parent)->child < 0 ? NULL : NODE(ps, (parent)->child); c; \
         c = c->next < 0 ? NULL : NODE(ps, c->next))

static int is_key(const struct jr_doc_node *m, const char *k)
{
    size_t n = strlen(k);
    return m->key_len == n && memcmp(m->key, k, n) == 0;
}

static int same_key(const struct jr_doc_node *a, const struct jr_doc_node *b)
{
    return a->key_len == b->key_len && memcmp(a->key, b->key, a->key_len) == 0;
}

/* ---- scratch output ---- */

static int put(struct pass *ps, const char *s, size_t n)
{
    if (ps->cap - ps->n < n)
        return -1;
    memcpy(ps->p + ps->n, s, n);
    ps->n += n;
    return 0;
}

static int put_c(struct pass *ps, char c)
{
    return put(ps, &c, 1);
}

/* A NUL-terminated copy of s. */
static const char *copy(struct pass *ps, const char *s, size_t n)
{
    size_t at = ps->n;
    if (put(ps, s, n) || put_c(ps, 0))
        return NULL;
    return ps->p + at;
}

static int put_int(struct pass *ps, int64_t v)
{
    uint64_t u = v < 0 ? 0ULL - (uint64_t)v : (uint64_t)v;
    char tmp[24], *q = tmp + sizeof tmp;

    do
        *--q = (char)('0' + u % 10);
    while ((u /= 10) > 0);
    if (v < 0)
        *--q = '-';
    return put(ps, q, (size_t)(tmp + sizeof tmp - q));
}

/* As the encoder writes a number: integers exact, floats the shortest of
 * 14 to 17 digits that reads back the same. */
static int put_num(struct pass *ps, double f)
{
    char text[40];

    if (f == floor(f) && f >= -9223372036854775808.0 && f < 9223372036854775808.0)
        return put_int(ps, (int64_t)f);
    for (int digits = 14; digits <= 17; digits++) {
        snprintf(text, sizeof text, "%.*g", digits, f);
        if (strtod(text, NULL) == f)
            break;
    }
    return put(ps, text, strlen(text));
}

static int put_str(struct pass *ps, const char *s, size_t n)
{
    return put_c(ps, '"') || put(ps, s, n) || put_c(ps, '"');
}

/* The value as the encoder writes its decoded table (strings hold no
 * escapes: body_doc.c refuses those). */
static int put_value(struct pass *ps, const struct jr_doc_node *x)
{
    int first = 1;

    switch (x->type) {
    case JR_DOC_NULL: return put(ps, "null", 4);
    case JR_DOC_TRUE: return put(ps, "true", 4);
    case JR_DOC_FALSE: return put(ps, "false", 5);
    case JR_DOC_INT: return put_int(ps, x->i);
    case JR_DOC_FLOAT: return put_num(ps, x->f);
    case JR_DOC_STR: return put_str(ps, x->s, x->len);
    default: break;
    }
    if (put_c(ps, x->type == JR_DOC_ARR ? '[' : '{'))
        return -1;
    EACH(ps, x, c) {
        if ((!first && put_c(ps, ',')) ||
            (x->type == JR_DOC_OBJ && (put_str(ps, c->key, c->key_len) || put_c(ps, ':'))) ||
            put_value(ps, c))
            return -1;
        first = 0;
    }
    return put_c(ps, x->type == JR_DOC_ARR ? ']' : '}');
}

/* ---- the model's check of the common shape, and the spec ---- */

/* An object of strings (labels, env), each member checked by the limits;
 * env names as the model's key pattern wants them. */
static int string_map(struct pass *ps, const struct jr_doc_node *m, int count, int key_max,
                      int value_max, int names)
{
    if (m->type != JR_DOC_OBJ || m->n > ps->lim[count])
        return -1;
    EACH(ps, m, c) {
        if (c->type != JR_DOC_STR || (value_max >= 0 && (int64_t)c->len > ps->lim[value_max]) ||
            (key_max >= 0 && (int64_t)c->key_len > ps->lim[key_max]))
            return -1;
        if (names) {
            if (c->key_len == 0 || (c->key[0] >= '0' && c->key[0] <= '9'))
                return -1;
            for (size_t k = 0; k < c->key_len; k++) {
                char ch = c->key[k];
                if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                      (ch >= '0' && ch <= '9') || ch == '_'))
                    return -1;
            }
        }
        for (const struct jr_doc_node *d = m->child < 0 ? NULL : NODE(ps, m->child); d != c;
             d = NODE(ps, d->next))
            if (same_key(c, d))
                return -1; /* a name given twice: the decoded path keeps the last */
    }
    return 0;
}

static int string_list(struct pass *ps, const struct jr_doc_node *m, int64_t max)
{
    if (m->type != JR_DOC_ARR || m->n > max)
        return -1;
    EACH(ps, m, c)
        if (c->type != JR_DOC_STR)
            return -1;
    return 0;
}

static const char *const task_keys[] = {
    "alias", "group", "image", "engine", "workdir", "deps", "priority", "retries",
    "tolerable", "command", "env", "resources", "timeout", NULL
};

/* The task object x -> t, st and its stored JSON (members in the order
 * given, units translated). */
static int conv_task(struct pass *ps, const struct jr_doc_node *x, struct jr_task_spec *t,
                     struct jr_task_setup *st)
{
    unsigned given = 0;
    double timeout = 0;

    memset(t, 0, sizeof *t);
    memset(st, 0, sizeof *st);
    if (x->type != JR_DOC_OBJ)
        return -1;
    EACH(ps, x, m) {
        int k;
        for (k = 0; task_keys[k] && !is_key(m, task_keys[k]); k++)
            ;
        if (!task_keys[k] || (given & (1u << k)))
            return -1;
        given |= 1u << k;
        if (k <= 4) { /* strings */
            const char *s;
            if (m->type != JR_DOC_STR || !(s = copy(ps, m->s, m->len)))
                return -1;
            if (k == 0)
                t->alias = s;
            else if (k == 1)
                t->group = s;
            else if (k == 2) {
                st->image_kind = JR_SPEC_OK;
                st->image = s;
            } else if (k == 4)
                t->workdir = s;
        } else if (k == 5) {
            if (string_list(ps, m, INT64_MAX))
                return -1;
            size_t at = (ps->n + 7) & ~(size_t)7;
            if (at > ps->cap || ps->cap - at < (size_t)m->n * sizeof(char *))
                return -1;
            const char **deps = (const char **)(void *)(ps->p + at);
            ps->n = at + (size_t)m->n * sizeof(char *);
            size_t d = 0;
            EACH(ps, m, c)
                if (!(deps[d++] = copy(ps, c->s, c->len)))
                    return -1;
            t->deps = deps;
            t->ndeps = (size_t)m->n;
        } else if (k == 6 || k == 7) {
            if (m->type != JR_DOC_INT || (k == 7 && m->i < 0))
                return -1;
            *(k == 6 ? &t->priority : &t->retries) = m->i;
        } else if (k == 8) {
            if (m->type != JR_DOC_TRUE && m->type != JR_DOC_FALSE)
                return -1;
            t->tolerable = m->type == JR_DOC_TRUE;
        } else if (k == 9) {
            size_t at = ps->n;
            if (m->type == JR_DOC_STR) {
                if (put(ps, "/bin/sh\0-c\0", 11) || put(ps, m->s, m->len) || put_c(ps, 0))
                    return -1;
            } else {
                if (string_list(ps, m, ps->lim[L_ARGV]))
                    return -1;
                EACH(ps, m, c)
                    if (put(ps, c->s, c->len) || put_c(ps, 0))
                        return -1;
            }
            t->argv = ps->p + at;
            t->argv_len = ps->n - at;
        } else if (k == 10) {
            if (string_map(ps, m, L_ENV, -1, L_ENV_VALUE, 1))
                return -1;
            size_t at = ps->n;
            EACH(ps, m, c)
                if (put(ps, c->key, c->key_len) || put_c(ps, '=') || put(ps, c->s, c->len) ||
                    put_c(ps, 0))
                    return -1;
            t->env = ps->p + at;
            t->env_len = ps->n - at;
        } else if (k == 11) {
            unsigned had = 0;
            if (m->type != JR_DOC_OBJ)
                return -1;
            EACH(ps, m, r) {
                int64_t v;
                int which = is_key(r, "cpu") ? 0 : is_key(r, "memory") ? 1 :
                            is_key(r, "disk") ? 2 : is_key(r, "gpu") ? 3 : -1;
                if (which < 0 || (had & (1u << which)))
                    return -1;
                had |= 1u << which;
                if (which == 0 ? jr_body_cpu(r, &v) : which == 3 ?
                    (r->type != JR_DOC_INT || r->i < 0 ? -1 : (v = r->i, 0)) : jr_body_bytes(r, &v))
                    return -1;
                *(which == 0 ? &t->cpu : which == 1 ? &t->memory : which == 2 ? &t->disk
                  : &t->gpu) = v;
            }
        } else if (k == 12) {
            if (jr_body_duration(m, &timeout))
                return -1;
            t->timeout_ms = (int64_t)(timeout * 1000 + 0.5);
        }
    }
    if (!t->alias)
        return -1;
    /* what is stored: the task as given, units translated */
    size_t at = ps->n;
    int first = 1;
    if (put_c(ps, '{'))
        return -1;
    EACH(ps, x, m) {
        if ((!first && put_c(ps, ',')) || put_str(ps, m->key, m->key_len) || put_c(ps, ':'))
            return -1;
        first = 0;
        if (is_key(m, "timeout")) {
            if (put_num(ps, timeout))
                return -1;
        } else if (is_key(m, "resources")) {
            int rfirst = 1;
            if (put_c(ps, '{'))
                return -1;
            EACH(ps, m, r) {
                int64_t v = is_key(r, "cpu") ? t->cpu : is_key(r, "memory") ? t->memory :
                            is_key(r, "disk") ? t->disk : t->gpu;
                if ((!rfirst && put_c(ps, ',')) || put_str(ps, r->key, r->key_len) ||
                    put_c(ps, ':') || put_int(ps, v))
                    return -1;
                rfirst = 0;
            }
            if (put_c(ps, '}'))
                return -1;
        } else if (put_value(ps, m)) {
            return -1;
        }
    }
    if (put(ps, "}", 2)) /* with its NUL */
        return -1;
    t->spec = ps->p + at;
    t->setup = st;
    return 0;
}

/* The job object (node 0) -> spec; -1: the decoded path's to take. */
static int conv_job(struct pass *ps, struct jr_job_spec *spec, struct jr_task_spec *tasks,
                    struct jr_task_setup *setups)
{
    const struct jr_doc_node *job = NODE(ps, 0), *list = NULL;
    unsigned given = 0;
    size_t i = 0;

    if (job->type != JR_DOC_OBJ)
        return -1;
    EACH(ps, job, m) {
        static const char *const keys[] = { "title", "description", "labels", "priority",
                                            "max_parallelism", "tasks", NULL };
        int k;
        for (k = 0; keys[k] && !is_key(m, keys[k]); k++)
            ;
        if (!keys[k] || (given & (1u << k)))
            return -1;
        given |= 1u << k;
        if ((k == 0 && (m->type != JR_DOC_STR || (int64_t)m->len > ps->lim[L_TITLE])) ||
            (k == 1 && (m->type != JR_DOC_STR || (int64_t)m->len > ps->lim[L_DESCRIPTION])) ||
            (k == 2 && string_map(ps, m, L_LABELS, L_LABEL_KEY, L_LABEL_VALUE, 0)) ||
            ((k == 3 || k == 4) && m->type != JR_DOC_INT) || (k == 4 && m->i < 0))
            return -1;
        if (k == 3)
            spec->priority = m->i;
        else if (k == 4)
            spec->max_parallelism = m->i;
        else if (k == 5)
            list = m;
    }
    if (!list || list->type != JR_DOC_ARR || list->n == 0 || list->n > ps->lim[L_TASKS])
        return -1;
    EACH(ps, list, t) {
        if (conv_task(ps, t, &tasks[i], &setups[i]))
            return -1;
        i++;
    }
    spec->tasks = tasks;
    spec->ntasks = i;
    /* the attrs: the job's own members but the columns, in the order given */
    size_t at = ps->n;
    int first = 1;
    if (put_c(ps, '{'))
        return -1;
    EACH(ps, job, m) {
        if (!is_key(m, "title") && !is_key(m, "description") && !is_key(m, "labels"))
            continue;
        if ((!first && put_c(ps, ',')) || put_str(ps, m->key, m->key_len) || put_c(ps, ':') ||
            put_value(ps, m))
            return -1;
        first = 0;
    }
    if (put(ps, "}", 2))
        return -1;
    spec->attrs = ps->p + at;
    return 0;
}

/* submit_body(text, owner, {surface =, limits =}) -> {id, surface, owner,
 * state, json} as submit(job, {answer = "json"}) answers | false: the
 * document is for the decoded path | nil, msg, CODE (the scheduler's
 * refusal, the store). */
static int l_submit_body(lua_State *L)
{
    struct core *c = jr_lcore_open(L);
    struct jr_doc_node nodes[NODES_MAX];
    struct pass ps;
    struct jr_job_spec spec;
    struct jr_err e = { 0, "" };
    char id[80];
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    const char *owner = luaL_optstring(L, 2, NULL);

    luaL_checktype(L, 3, LUA_TTABLE);
    int n = jr_doc_read(text, len, nodes, NODES_MAX);
    if (n < 0) {
        lua_pushboolean(L, 0);
        return 1;
    }
    memset(&ps, 0, sizeof ps);
    ps.v = nodes;
    lua_getfield(L, 3, "limits");
    for (int k = 0; k < L_COUNT; k++) {
        lua_getfield(L, -1, limit_names[k]);
        ps.lim[k] = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : -1;
        lua_pop(L, 1);
        if (ps.lim[k] < 0) {
            lua_pushboolean(L, 0);
            return 1;
        }
    }
    lua_getfield(L, 3, "surface");
    memset(&spec, 0, sizeof spec);
    spec.surface = lua_tostring(L, -1);
    spec.owner = owner;
    /* room for every text made (the stored JSON and the copies are each
     * at most the document, plus what the units add), then the arrays */
    ps.cap = (4 * len + 64 * (size_t)n + 512 + 15) & ~(size_t)15;
    size_t need = ps.cap + (size_t)n * (sizeof(struct jr_task_spec) + sizeof(struct jr_task_setup));
    if (c->scratch_cap < need) {
        char *p = realloc(c->scratch, need);
        if (!p)
            return luaL_error(L, "not enough memory");
        c->scratch = p;
        c->scratch_cap = need;
    }
    ps.p = c->scratch;
    struct jr_task_spec *tasks = (struct jr_task_spec *)(void *)(ps.p + ps.cap);
    struct jr_task_setup *setups = (struct jr_task_setup *)(void *)(tasks + n);
    if (conv_job(&ps, &spec, tasks, setups)) {
        lua_pushboolean(L, 0);
        return 1;
    }
    spec.created_at = jr_store_now_ms();
    if (jr_sched_submit(c->core->sched, &spec, id, &e))
        return jr_lcore_fail_err(L, &e);
    lua_createtable(L, 0, 5);
    jr_lcore_set_str(L, "id", id);
    jr_lcore_set_str(L, "surface", spec.surface ? spec.surface : "");
    jr_lcore_set_str(L, "owner", spec.owner ? spec.owner : "");
    jr_lcore_set_str(L, "state", "created");
    jr_lcore_push_submitted_json(L, c, &spec, id);
    lua_setfield(L, -2, "json");
    return 1;
}

const luaL_Reg jr_lcore_body_funcs[] = {
    { "submit_body", l_submit_body },
    { NULL, NULL },
};
