/* jobrt.core: the job store and scheduler for Lua. Job tables in the core
 * model go in and come out; operational failures return nil, message, CODE.
 * durable() and watchers wait on the store's group commit via jobrt.async. */
#include <errno.h>
#include <lauxlib.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loop.h"
#include "lua/runtime.h"
#include "core.h"

#define CORE_MT "jobrt.core"
#define WATCH_MT "jobrt.core.watch"
#define LIST_MAX 1000

struct watch;

struct core {
    struct jr_core *core;  /* NULL while closed */
    lua_State *L;          /* main thread: callbacks call Lua from here */
    struct watch *waiting; /* watchers waiting for an event */
    int watch_stopped;     /* stop_watchers(): next() ends at once */
};

/* ---- helpers ---- */

static struct core *check_core(lua_State *L)
{
    return luaL_checkudata(L, lua_upvalueindex(1), CORE_MT);
}

static struct core *open_core(lua_State *L)
{
    struct core *c = check_core(L);

    if (!c->core)
        luaL_error(L, "jobrt.core is not open (call core.open(cfg) first)");
    return c;
}

static int fail(lua_State *L, int code, const char *msg)
{
    lua_pushnil(L);
    lua_pushstring(L, msg);
    lua_pushstring(L, jr_err_name(code));
    return 3;
}

static int fail_err(lua_State *L, const struct jr_err *e)
{
    return fail(L, e->code ? e->code : JR_E_SYSTEM, e->msg);
}

static void push_time(lua_State *L, int64_t ms)
{
    char buf[40];

    if (!ms) {
        lua_pushnil(L);
        return;
    }
    jr_store_format_time(ms, buf);
    lua_pushstring(L, buf);
}

/* Push jobrt.json.<fn>, the module cached in the registry after the first
 * use. Pushes nil if the module cannot be loaded. */
static void push_json_fn(lua_State *L, const char *fn)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, "jobrt.core.json") != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_getglobal(L, "require");
        lua_pushliteral(L, "jobrt.json");
        if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_istable(L, -1)) {
            lua_pop(L, 1);
            lua_pushnil(L);
            return;
        }
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, "jobrt.core.json");
    }
    lua_getfield(L, -1, fn);
    lua_remove(L, -2);
}

/* Call jobrt.json.<fn> on the value at the top; replaces it with the result
 * or returns -1 leaving an error message on the stack. */
static int json_call(lua_State *L, const char *fn)
{
    push_json_fn(L, fn);
    lua_insert(L, -2);
    if (lua_pcall(L, 1, 2, 0) != LUA_OK)
        return -1;
    if (lua_isnil(L, -2)) {
        lua_remove(L, -2);
        return -1;
    }
    lua_pop(L, 1);
    return 0;
}

/* Mark the table at the top as a JSON array. */
static void as_array(lua_State *L)
{
    push_json_fn(L, "array");
    lua_pushvalue(L, -2);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK)
        lua_pop(L, 1);
}

/* Decode JSON text into a table pushed on the stack ({} on failure). */
static void push_json(lua_State *L, const char *text)
{
    lua_pushstring(L, text ? text : "{}");
    if (json_call(L, "decode") || !lua_istable(L, -1)) {
        lua_pop(L, 1);
        lua_newtable(L);
    }
}

static int level_of(lua_State *L, int idx, int64_t def)
{
    static const char *const names[] = { "debug", "info", "warn", "error", NULL };
    static const int values[] = { JR_LOG_LEVEL_DEBUG, JR_LOG_LEVEL_INFO,
                                  JR_LOG_LEVEL_WARN, JR_LOG_LEVEL_ERROR };
    const char *s;
    int i;

    if (lua_isnoneornil(L, idx))
        return (int)def;
    if (lua_isinteger(L, idx))
        return (int)lua_tointeger(L, idx);
    s = lua_tostring(L, idx);
    for (i = 0; s && names[i]; i++)
        if (strcmp(s, names[i]) == 0)
            return values[i];
    if (s && strcmp(s, "warning") == 0)
        return JR_LOG_LEVEL_WARN;
    return -1;
}

static const char *level_name(int64_t level)
{
    return level >= JR_LOG_LEVEL_ERROR ? "error" : level >= JR_LOG_LEVEL_WARN ? "warn"
         : level >= JR_LOG_LEVEL_INFO ? "info" : "debug";
}

/* ---- Lua tables -> specs ---- */

/* Conversion scratch: Lua strings referenced from the anchor table stay
 * alive (and in place) for the whole call; arrays are userdata, so nothing
 * leaks if a Lua error cuts the call short. */
struct conv {
    lua_State *L;
    int anchor;            /* stack index of the anchor table */
    char err[256];
};

static const char *anchor_top(struct conv *cv, size_t *len)
{
    lua_State *L = cv->L;
    const char *s = lua_tolstring(L, -1, len);

    lua_rawseti(L, cv->anchor, (lua_Integer)lua_rawlen(L, cv->anchor) + 1);
    return s;
}

static void *scratch(struct conv *cv, size_t size)
{
    void *p = lua_newuserdatauv(cv->L, size ? size : 1, 0);

    memset(p, 0, size ? size : 1);
    anchor_top(cv, NULL);
    return p;
}

static int bad(struct conv *cv, const char *fmt, const char *a, const char *b)
{
    snprintf(cv->err, sizeof cv->err, fmt, a, b);
    return -1;
}

/* Optional string field of the table at idx. */
static int get_str(struct conv *cv, int idx, const char *key, const char **out,
                   const char *where)
{
    lua_State *L = cv->L;
    int t = lua_getfield(L, idx, key);

    *out = NULL;
    if (t == LUA_TNIL || (t == LUA_TLIGHTUSERDATA)) {
        lua_pop(L, 1);
        return 0;
    }
    if (t != LUA_TSTRING) {
        lua_pop(L, 1);
        return bad(cv, "%s%s must be a string", where, key);
    }
    *out = anchor_top(cv, NULL);
    return 0;
}

static int get_int(struct conv *cv, int idx, const char *key, int64_t *out, int64_t def,
                   const char *where)
{
    lua_State *L = cv->L;
    int t = lua_getfield(L, idx, key), isnum = 0;
    lua_Integer v;

    *out = def;
    if (t == LUA_TNIL || t == LUA_TLIGHTUSERDATA) {
        lua_pop(L, 1);
        return 0;
    }
    if (t == LUA_TBOOLEAN) {
        *out = lua_toboolean(L, -1);
        lua_pop(L, 1);
        return 0;
    }
    v = lua_tointegerx(L, -1, &isnum);
    lua_pop(L, 1);
    if (t != LUA_TNUMBER || !isnum)
        return bad(cv, "%s%s must be an integer", where, key);
    *out = v;
    return 0;
}

/* Encode the table at idx without the listed keys as JSON. */
static int encode_without(struct conv *cv, int idx, const char *const *skip,
                          const char **out)
{
    lua_State *L = cv->L;
    size_t i;

    idx = lua_absindex(L, idx);
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        int keep = lua_type(L, -2) == LUA_TSTRING;
        for (i = 0; keep && skip[i]; i++)
            keep = strcmp(lua_tostring(L, -2), skip[i]) != 0;
        if (keep) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, -4);
        } else {
            lua_pop(L, 1);
        }
    }
    if (json_call(L, "encode") != 0 || !lua_isstring(L, -1)) {
        snprintf(cv->err, sizeof cv->err, "cannot encode as JSON: %s",
                 lua_isstring(L, -1) ? lua_tostring(L, -1) : "?");
        lua_pop(L, 1);
        return -1;
    }
    *out = anchor_top(cv, NULL);
    return 0;
}

/* A NUL-separated list from a Lua array of strings (or one string, run by
 * /bin/sh -c), or from a string map ("K=V"). */
static int get_list(struct conv *cv, int idx, const char *key, int map, const char **out,
                    size_t *len, const char *where)
{
    lua_State *L = cv->L;
    luaL_Buffer b;
    int t = lua_getfield(L, idx, key), n = 0;

    *out = NULL;
    *len = 0;
    if (t == LUA_TNIL || t == LUA_TLIGHTUSERDATA) {
        lua_pop(L, 1);
        return 0;
    }
    if (!map && t == LUA_TSTRING) {
        /* one string: run by the shell, as "/bin/sh\0-c\0CMD\0" */
        lua_pushliteral(L, "/bin/sh");
        lua_pushlstring(L, "\0-c\0", 4);
        lua_pushvalue(L, -3);
        lua_pushlstring(L, "\0", 1);
        lua_concat(L, 4);
        lua_remove(L, -2);
        *out = anchor_top(cv, len);
        return 0;
    }
    if (t != LUA_TTABLE) {
        lua_pop(L, 1);
        return bad(cv, "%s%s must be a list of strings", where, key);
    }
    luaL_buffinit(L, &b);
    lua_pushnil(L);
    while (lua_next(L, -3)) {
        /* stack: tbl, [buffer], key, value */
        if (map) {
            if (lua_type(L, -2) != LUA_TSTRING || !lua_isstring(L, -1)) {
                lua_pop(L, 2);
                luaL_pushresult(&b);
                lua_pop(L, 2);
                return bad(cv, "%s%s must map names to strings", where, key);
            }
            lua_pushvalue(L, -2);
            lua_pushliteral(L, "=");
            lua_pushvalue(L, -3);
            lua_concat(L, 3);
            luaL_addvalue(&b);
            luaL_addchar(&b, '\0');
            lua_pop(L, 1);
        } else {
            if (!lua_isinteger(L, -2) || lua_type(L, -1) != LUA_TSTRING) {
                lua_pop(L, 2);
                luaL_pushresult(&b);
                lua_pop(L, 2);
                return bad(cv, "%s%s must be a list of strings", where, key);
            }
            n++;
            lua_pop(L, 1);
        }
    }
    if (!map) {
        int i;
        for (i = 1; i <= n; i++) {
            if (lua_rawgeti(L, -2, i) != LUA_TSTRING) {
                lua_pop(L, 1);
                luaL_pushresult(&b);
                lua_pop(L, 2);
                return bad(cv, "%s%s must be a list of strings", where, key);
            }
            luaL_addvalue(&b);
            luaL_addchar(&b, '\0');
        }
    }
    luaL_pushresult(&b);
    lua_remove(L, -2);
    *out = anchor_top(cv, len);
    return 0;
}

static const char *const job_columns[] = {
    "id", "surface", "owner", "state", "priority", "max_parallelism", "tasks", "start",
    "created_at", "updated_at", "started_at", "ended_at", "error", NULL
};

static const char *const task_run_fields[] = {
    "state", "attempt", "exit_code", "signal", "outcome", "error", "started_at",
    "ended_at", NULL
};

static int conv_task(struct conv *cv, int idx, struct jr_task_spec *t, int n)
{
    lua_State *L = cv->L;
    char where[96];
    double timeout = 0;
    int ty;
    lua_Integer i;

    snprintf(where, sizeof where, "tasks[%d].", n);
    if (get_str(cv, idx, "alias", &t->alias, where) ||
        get_int(cv, idx, "priority", &t->priority, 0, where) ||
        get_int(cv, idx, "tolerable", &t->tolerable, 0, where) ||
        get_int(cv, idx, "retries", &t->retries, 0, where) ||
        get_list(cv, idx, "command", 0, &t->argv, &t->argv_len, where) ||
        get_list(cv, idx, "env", 1, &t->env, &t->env_len, where) ||
        get_str(cv, idx, "workdir", &t->workdir, where))
        return -1;
    if (!t->alias) {
        snprintf(cv->err, sizeof cv->err, "tasks[%d] has no alias", n);
        return -1;
    }
    ty = lua_getfield(L, idx, "timeout");
    if (ty == LUA_TNUMBER) {
        timeout = lua_tonumber(L, -1);
    } else if (ty != LUA_TNIL) {
        lua_pop(L, 1);
        return bad(cv, "%s%s must be a number of seconds", where, "timeout");
    }
    lua_pop(L, 1);
    if (timeout < 0)
        return bad(cv, "%s%s cannot be negative", where, "timeout");
    t->timeout_ms = (int64_t)(timeout * 1000 + 0.5);
    ty = lua_getfield(L, idx, "resources");
    if (ty == LUA_TTABLE) {
        int r = lua_gettop(L);
        snprintf(where, sizeof where, "tasks[%d].resources.", n);
        if (get_int(cv, r, "cpu", &t->cpu, 0, where) ||
            get_int(cv, r, "memory", &t->memory, 0, where) ||
            get_int(cv, r, "gpu", &t->gpu, 0, where) ||
            get_int(cv, r, "disk", &t->disk, 0, where)) {
            lua_pop(L, 1);
            return -1;
        }
    } else if (ty != LUA_TNIL) {
        lua_pop(L, 1);
        return bad(cv, "%s%s must be a table", where, "resources");
    }
    lua_pop(L, 1);
    /* deps: list of aliases */
    ty = lua_getfield(L, idx, "deps");
    if (ty == LUA_TTABLE) {
        lua_Integer nd = (lua_Integer)lua_rawlen(L, -1);
        const char **deps = scratch(cv, (size_t)(nd + 1) * sizeof *deps);
        for (i = 1; i <= nd; i++) {
            if (lua_rawgeti(L, -1, i) != LUA_TSTRING) {
                lua_pop(L, 2);
                snprintf(where, sizeof where, "tasks[%d].", n);
                return bad(cv, "%s%s must be a list of task aliases", where, "deps");
            }
            deps[i - 1] = anchor_top(cv, NULL);
        }
        t->deps = deps;
        t->ndeps = (size_t)nd;
    } else if (ty != LUA_TNIL) {
        lua_pop(L, 1);
        snprintf(where, sizeof where, "tasks[%d].", n);
        return bad(cv, "%s%s must be a list of task aliases", where, "deps");
    }
    lua_pop(L, 1);
    return encode_without(cv, idx, task_run_fields, &t->spec);
}

/* The job table at idx -> spec. what (may be NULL) receives the JR_UPD_*
 * mask of the fields present (for update). */
static int conv_job(struct conv *cv, int idx, struct jr_job_spec *spec, int *what)
{
    lua_State *L = cv->L;
    struct jr_task_spec *tasks;
    lua_Integer n, i;
    int ty;

    memset(spec, 0, sizeof *spec);
    idx = lua_absindex(L, idx);
    if (get_str(cv, idx, "id", &spec->id, "") || get_str(cv, idx, "surface", &spec->surface, "")
        || get_str(cv, idx, "owner", &spec->owner, "") ||
        get_int(cv, idx, "priority", &spec->priority, 0, "") ||
        get_int(cv, idx, "max_parallelism", &spec->max_parallelism, 0, "") ||
        encode_without(cv, idx, job_columns, &spec->attrs))
        return -1;
    if (what) {
        *what = JR_UPD_ATTRS;
        if (lua_getfield(L, idx, "priority") != LUA_TNIL)
            *what |= JR_UPD_PRIORITY;
        if (lua_getfield(L, idx, "max_parallelism") != LUA_TNIL)
            *what |= JR_UPD_MAX_PAR;
        lua_pop(L, 2);
    }
    ty = lua_getfield(L, idx, "tasks");
    if (ty == LUA_TNIL) {
        lua_pop(L, 1);
        return 0;
    }
    if (ty != LUA_TTABLE) {
        lua_pop(L, 1);
        snprintf(cv->err, sizeof cv->err, "tasks must be a list");
        return -1;
    }
    if (what)
        *what |= JR_UPD_TASKS;
    n = (lua_Integer)lua_rawlen(L, -1);
    tasks = scratch(cv, (size_t)(n + 1) * sizeof *tasks);
    for (i = 1; i <= n; i++) {
        if (lua_rawgeti(L, -1, i) != LUA_TTABLE) {
            lua_pop(L, 2);
            snprintf(cv->err, sizeof cv->err, "tasks[%d] must be a table", (int)i);
            return -1;
        }
        if (conv_task(cv, lua_gettop(L), &tasks[i - 1], (int)i)) {
            lua_pop(L, 2);
            return -1;
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    spec->tasks = tasks;
    spec->ntasks = (size_t)n;
    return 0;
}

/* ---- rows -> Lua tables ---- */

struct push_ctx {
    lua_State *L;
    int single;        /* one row: leave it on the stack */
    int n;             /* rows pushed into the list at the top */
    int64_t last, prev;
};

static void set_int(lua_State *L, const char *k, int64_t v)
{
    lua_pushinteger(L, v);
    lua_setfield(L, -2, k);
}

static void set_str(lua_State *L, const char *k, const char *v)
{
    if (!v)
        return;
    lua_pushstring(L, v);
    lua_setfield(L, -2, k);
}

static void set_time(lua_State *L, const char *k, int64_t ms)
{
    push_time(L, ms);
    lua_setfield(L, -2, k);
}

static void push_job(lua_State *L, const struct jr_job_rec *j)
{
    push_json(L, j->attrs);
    set_str(L, "id", j->id);
    set_str(L, "surface", j->surface);
    set_str(L, "owner", j->owner);
    set_str(L, "state", j->state);
    set_int(L, "priority", j->priority);
    set_int(L, "max_parallelism", j->max_parallelism);
    set_time(L, "created_at", j->created_at);
    set_time(L, "updated_at", j->updated_at);
    set_time(L, "started_at", j->started_at);
    set_time(L, "ended_at", j->ended_at);
    set_str(L, "error", j->error);
}

static int job_row(void *arg, const struct jr_job_rec *j)
{
    struct push_ctx *p = arg;

    push_job(p->L, j);
    p->prev = p->last;
    p->last = j->seq;
    if (p->single)
        return 0;
    lua_rawseti(p->L, -2, ++p->n);
    return 0;
}

/* In the task list at the top, replace each deps entry (a 1-based task
 * index) by that task's alias. */
static void deps_to_aliases(lua_State *L, int n)
{
    int i, k, nd;

    for (i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        lua_getfield(L, -1, "deps");
        nd = (int)lua_rawlen(L, -1);
        for (k = 1; k <= nd; k++) {
            lua_rawgeti(L, -1, k);
            lua_rawgeti(L, -4, lua_tointeger(L, -1));
            lua_getfield(L, -1, "alias");
            lua_rawseti(L, -4, k);
            lua_pop(L, 2);
        }
        lua_pop(L, 2);
    }
}

static int task_row(void *arg, const struct jr_task_rec *t)
{
    struct push_ctx *p = arg;
    lua_State *L = p->L;
    const char *d;
    int k = 0;

    /* stack: ..., list; deps hold task indexes (1-based) until
     * push_full_job turns them into aliases */
    push_json(L, t->spec);
    lua_pushstring(L, t->alias);
    lua_setfield(L, -2, "alias");
    lua_newtable(L);
    for (d = t->deps; d && *d;) {
        char *end;
        long i = strtol(d, &end, 10);
        lua_pushinteger(L, i + 1);
        lua_rawseti(L, -2, ++k);
        d = *end == ',' ? end + 1 : end;
    }
    as_array(L);
    lua_setfield(L, -2, "deps");
    set_str(L, "state", t->state);
    set_int(L, "priority", t->priority);
    lua_pushboolean(L, t->tolerable != 0);
    lua_setfield(L, -2, "tolerable");
    set_int(L, "retries", t->retries);
    set_int(L, "attempt", t->attempt);
    lua_newtable(L);
    set_int(L, "cpu", t->cpu);
    set_int(L, "memory", t->memory);
    set_int(L, "gpu", t->gpu);
    set_int(L, "disk", t->disk);
    lua_setfield(L, -2, "resources");
    if (t->timeout_ms) {
        lua_pushnumber(L, (double)t->timeout_ms / 1000);
        lua_setfield(L, -2, "timeout");
    }
    if (t->exit_code >= 0)
        set_int(L, "exit_code", t->exit_code);
    if (t->signal)
        set_int(L, "signal", t->signal);
    set_str(L, "outcome", t->outcome);
    set_str(L, "error", t->error);
    set_time(L, "started_at", t->started_at);
    set_time(L, "ended_at", t->ended_at);
    /* A figure the sandbox could not measure (-1) is left out. */
    if (t->has_usage && (t->cpu_ms >= 0 || t->max_rss_bytes >= 0 || t->wall_ms >= 0)) {
        lua_newtable(L);
        if (t->cpu_ms >= 0)
            set_int(L, "cpu_ms", t->cpu_ms);
        if (t->max_rss_bytes >= 0)
            set_int(L, "max_rss_bytes", t->max_rss_bytes);
        if (t->wall_ms >= 0)
            set_int(L, "wall_ms", t->wall_ms);
        lua_setfield(L, -2, "usage");
    }
    lua_rawseti(L, -2, ++p->n);
    return 0;
}

static int copy_seq(void *arg, const struct jr_job_rec *j)
{
    *(int64_t *)arg = j->seq;
    return 0;
}

/* Push the job with its tasks, or return nil, msg, code. */
static int push_full_job(lua_State *L, struct core *c, const char *id)
{
    struct push_ctx p = { L, 1, 0, 0, 0 };
    struct jr_err e = { 0, "" };
    int top = lua_gettop(L);

    if (jr_store_job_get(c->core->store, id, job_row, &p, &e)) {
        lua_settop(L, top);
        return fail_err(L, &e);
    }
    lua_newtable(L);                       /* tasks */
    p.n = 0;
    if (jr_store_tasks_each(c->core->store, p.last, task_row, &p, &e)) {
        lua_settop(L, top);
        return fail_err(L, &e);
    }
    deps_to_aliases(L, p.n);
    as_array(L);
    lua_setfield(L, -2, "tasks");
    return 1;
}

/* Push the job jr_sched_submit just stored from spec (created_at set), the
 * same table push_full_job would read back: attrs and task specs decoded,
 * the columns as stored, tasks pending. Saves reading the rows again. */
static void push_submitted_job(lua_State *L, const struct jr_job_spec *spec, const char *id)
{
    size_t i, k;

    push_json(L, spec->attrs ? spec->attrs : "{}");
    set_str(L, "id", id);
    set_str(L, "surface", spec->surface ? spec->surface : "");
    set_str(L, "owner", spec->owner ? spec->owner : "");
    set_str(L, "state", "created");
    set_int(L, "priority", spec->priority);
    set_int(L, "max_parallelism", spec->max_parallelism);
    push_time(L, spec->created_at);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "created_at");
    lua_setfield(L, -2, "updated_at");
    lua_createtable(L, (int)spec->ntasks, 0);
    for (i = 0; i < spec->ntasks; i++) {
        const struct jr_task_spec *t = &spec->tasks[i];
        push_json(L, t->spec ? t->spec : "{}");
        lua_pushstring(L, t->alias);
        lua_setfield(L, -2, "alias");
        lua_createtable(L, (int)t->ndeps, 0);
        for (k = 0; k < t->ndeps; k++) {
            lua_pushstring(L, t->deps[k]);
            lua_rawseti(L, -2, (lua_Integer)k + 1);
        }
        as_array(L);
        lua_setfield(L, -2, "deps");
        set_str(L, "state", "pending");
        set_int(L, "priority", t->priority);
        lua_pushboolean(L, t->tolerable != 0);
        lua_setfield(L, -2, "tolerable");
        set_int(L, "retries", t->retries);
        set_int(L, "attempt", 0);
        lua_createtable(L, 0, 4);
        set_int(L, "cpu", t->cpu);
        set_int(L, "memory", t->memory);
        set_int(L, "gpu", t->gpu);
        set_int(L, "disk", t->disk);
        lua_setfield(L, -2, "resources");
        if (t->timeout_ms) {
            lua_pushnumber(L, (double)t->timeout_ms / 1000);
            lua_setfield(L, -2, "timeout");
        }
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    as_array(L);
    lua_setfield(L, -2, "tasks");
}

static int64_t seq_of(struct core *c, const char *id, struct jr_err *e)
{
    int64_t seq = 0;

    if (jr_store_job_get(c->core->store, id, copy_seq, &seq, e))
        return -1;
    return seq;
}

/* ---- commit waits ---- */

/* One wait for the next commit, owned by the store's list until it fires or
 * is cancelled; wake_ref is the async.wait wake function. */
struct commit_wait {
    struct jr_store_waiter w;
    lua_State *L;
    int wake_ref;
};

static void on_commit(struct jr_store_waiter *w, int status)
{
    struct commit_wait *cw = (struct commit_wait *)w;
    lua_State *L = cw->L;
    int ref = cw->wake_ref;

    free(cw);
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
    if (status == 0) {
        lua_pushboolean(L, 1);
        jr_pcall(L, 1, 0);
    } else {
        lua_pushnil(L);
        lua_pushstring(L, "the store could not commit");
        jr_pcall(L, 2, 0);
    }
}

/* The register function given to async.wait: upvalue 1 is the core. */
static int register_commit(lua_State *L)
{
    struct core *c = luaL_checkudata(L, lua_upvalueindex(1), CORE_MT);
    struct commit_wait *cw;
    int ref;

    luaL_checktype(L, 1, LUA_TFUNCTION);
    if (!c->core) {
        lua_pushvalue(L, 1);
        lua_pushnil(L);
        lua_pushliteral(L, "the store is closed");
        lua_call(L, 2, 0);
        return 0;
    }
    /* take the reference first: nothing may raise once cw is allocated */
    lua_pushvalue(L, 1);
    ref = luaL_ref(L, LUA_REGISTRYINDEX);
    cw = malloc(sizeof *cw);
    if (!cw) {
        luaL_unref(L, LUA_REGISTRYINDEX, ref);
        return luaL_error(L, "out of memory");
    }
    cw->wake_ref = ref;
    cw->L = c->L;
    cw->w.cb = on_commit;
    jr_store_wait(c->core->store, &cw->w);
    return 0;
}

static int results_k(lua_State *L, int status, lua_KContext base)
{
    (void)status;
    return lua_gettop(L) - (int)base;
}

/* Push async.wait and a register closure over the core upvalue. */
static void push_wait_call(lua_State *L, lua_CFunction reg, int upvalue_idx)
{
    lua_getglobal(L, "require");
    lua_pushliteral(L, "jobrt.async");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "wait");
    lua_remove(L, -2);
    lua_pushvalue(L, upvalue_idx);
    lua_pushcclosure(L, reg, 1);
}

/* durable() -> true | nil, err: wait for the commit holding our writes. */
static int l_durable(lua_State *L)
{
    struct core *c = check_core(L);
    int base;

    if (!c->core || !jr_store_pending(c->core->store)) {
        lua_pushboolean(L, 1);
        return 1;
    }
    if (!lua_isyieldable(L)) {
        if (jr_store_commit(c->core->store))
            return fail(L, JR_E_STORE, "the store could not commit");
        lua_pushboolean(L, 1);
        return 1;
    }
    base = lua_gettop(L);
    push_wait_call(L, register_commit, lua_upvalueindex(1));
    lua_callk(L, 1, LUA_MULTRET, base, results_k);
    return results_k(L, LUA_OK, base);
}

/* ---- open / close ---- */

static int64_t opt_field(lua_State *L, int idx, const char *k)
{
    int64_t v = 0;

    if (lua_getfield(L, idx, k) == LUA_TNUMBER)
        v = (int64_t)lua_tonumber(L, -1);
    lua_pop(L, 1);
    return v;
}

/* A string list field of the table at idx into a NULL-terminated array
 * of pointers into Lua strings (valid while the table is alive), in a
 * userdata left on the stack. With map, "name", "value" pairs. */
static const char **string_list(lua_State *L, int idx, const char *key, int map)
{
    const char **v;
    size_t n = 0, cap = 0;

    if (lua_getfield(L, idx, key) == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            cap += 2;
            lua_pop(L, 1);
        }
    }
    v = lua_newuserdatauv(L, (cap + 1) * sizeof *v, 0);
    lua_insert(L, -2);
    if (lua_istable(L, -1)) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            if (lua_type(L, -1) == LUA_TSTRING && (!map || lua_type(L, -2) == LUA_TSTRING)) {
                if (map)
                    v[n++] = lua_tostring(L, -2);
                v[n++] = lua_tostring(L, -1);
            }
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    v[n] = NULL;
    return v;
}

/* open(cfg): cfg.data_dir, cfg.node {cpu, memory, gpu, max_tasks},
 * cfg.kill_grace (seconds), cfg.sandbox {network, require, images,
 * allow_host_paths} (the daemon's normalised config always has one;
 * without it, embedders and tests, tasks run with plain spawn). The strings
 * stay on the stack while jr_core_open copies what it keeps. */
static int l_open(lua_State *L)
{
    struct core *c = check_core(L);
    struct jr_core_opts o;
    struct jr_err e = { 0, "" };

    luaL_checktype(L, 1, LUA_TTABLE);
    if (c->core)
        return fail(L, JR_E_CONFLICT, "jobrt.core is already open");
    memset(&o, 0, sizeof o);
    o.loop = jr_loop_of(L);
    lua_getfield(L, 1, "data_dir");
    o.data_dir = luaL_optstring(L, -1, "./jobrt-data");
    o.node.gpu = -1;
    if (lua_getfield(L, 1, "node") == LUA_TTABLE) {
        o.node.cpu = opt_field(L, -1, "cpu");
        o.node.memory = opt_field(L, -1, "memory");
        if (lua_getfield(L, -1, "gpu") == LUA_TNUMBER)
            o.node.gpu = (int64_t)lua_tonumber(L, -1);
        lua_pop(L, 1);
        o.node.max_tasks = opt_field(L, -1, "max_tasks");
    }
    o.kill_grace_ms = (int64_t)(opt_field(L, 1, "kill_grace") * 1000);
    if (lua_getfield(L, 1, "sandbox") == LUA_TTABLE) {
        int sb = lua_gettop(L);
        o.sandbox.enabled = 1;
        lua_getfield(L, sb, "network");
        o.sandbox.network = lua_tostring(L, -1);
        o.sandbox.require = string_list(L, sb, "require", 0);
        o.sandbox.images = string_list(L, sb, "images", 1);
        o.sandbox.allow_host_paths = string_list(L, sb, "allow_host_paths", 0);
    }
    if (jr_core_open(&o, &c->core, &e))
        return fail_err(L, &e);
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    c->L = lua_tothread(L, -1);
    lua_pop(L, 1);
    lua_pushboolean(L, 1);
    return 1;
}

static void core_shut(struct core *c)
{
    jr_core_close(c->core);
    c->core = NULL;
}

static int l_close(lua_State *L)
{
    core_shut(check_core(L));
    lua_pushboolean(L, 1);
    return 1;
}

static int core_gc(lua_State *L)
{
    core_shut(luaL_checkudata(L, 1, CORE_MT));
    return 0;
}

static int core_tostring(lua_State *L)
{
    struct core *c = luaL_checkudata(L, 1, CORE_MT);

    lua_pushfstring(L, "jobrt.core (%s)", c->core ? "open" : "closed");
    return 1;
}

/* ---- jobs ---- */

static int l_submit(lua_State *L)
{
    struct core *c = open_core(L);
    struct conv cv = { L, 0, "" };
    struct jr_job_spec spec;
    struct jr_err e = { 0, "" };
    char id[80];
    int hold = 0, start = 0;
    const char *reject = NULL;

    luaL_checktype(L, 1, LUA_TTABLE);
    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "start");
        start = lua_toboolean(L, -1);
        lua_getfield(L, 2, "hold");
        hold = lua_toboolean(L, -1);
        lua_getfield(L, 2, "reject");
        reject = lua_tostring(L, -1);
        lua_pop(L, 3);
    }
    lua_newtable(L);
    cv.anchor = lua_gettop(L);
    if (conv_job(&cv, 1, &spec, NULL))
        return fail(L, JR_E_INVALID, cv.err);
    spec.created_at = jr_store_now_ms();
    if (jr_sched_submit(c->core->sched, &spec, id, &e))
        return fail_err(L, &e);
    if (!start && !hold && !reject) {
        push_submitted_job(L, &spec, id);
        return 1;
    }
    if (jr_sched_start(c->core->sched, id, hold, reject, &e)) {
        /* the job exists; say why it did not start */
        return fail_err(L, &e);
    }
    return push_full_job(L, c, id);
}

static int l_get(lua_State *L)
{
    struct core *c = open_core(L);

    return push_full_job(L, c, luaL_checkstring(L, 1));
}

static int l_list(lua_State *L)
{
    struct core *c = open_core(L);
    struct jr_job_filter f;
    struct push_ctx p = { L, 0, 0, 0, 0 };
    struct jr_err e = { 0, "" };
    int64_t limit = 100;

    memset(&f, 0, sizeof f);
    if (lua_istable(L, 1)) {
        lua_getfield(L, 1, "owner");
        f.owner = lua_tostring(L, -1);
        lua_getfield(L, 1, "surface");
        f.surface = lua_tostring(L, -1);
        lua_getfield(L, 1, "state");
        f.state = lua_tostring(L, -1);
        lua_getfield(L, 1, "after");
        if (!lua_isnil(L, -1)) {
            int ok = 0;
            f.after = lua_tointegerx(L, -1, &ok);
            if (!ok || f.after < 0)
                return fail(L, JR_E_INVALID, "after must be a cursor from a previous page");
        }
        lua_getfield(L, 1, "limit");
        if (!lua_isnil(L, -1)) {
            int ok = 0;
            limit = lua_tointegerx(L, -1, &ok);
            if (!ok || limit < 1)
                return fail(L, JR_E_INVALID, "limit must be a positive integer");
        }
        /* keep the strings referenced: the five values stay on the stack */
    }
    if (f.state && !jr_job_state_valid(f.state))
        return fail(L, JR_E_INVALID, "unknown job state in filter");
    if (limit > LIST_MAX)
        limit = LIST_MAX;
    f.limit = limit + 1;          /* one more tells whether a next page exists */
    lua_newtable(L);              /* result */
    lua_newtable(L);              /* jobs */
    if (jr_store_jobs_list(c->core->store, &f, job_row, &p, &e))
        return fail_err(L, &e);
    if (p.n > limit) {
        /* the extra row only says that a next page exists */
        lua_pushnil(L);
        lua_rawseti(L, -2, p.n);
    }
    as_array(L);
    lua_setfield(L, -2, "jobs");
    if (p.n > limit) {
        lua_pushfstring(L, "%I", (lua_Integer)p.prev);
        lua_setfield(L, -2, "next");
    }
    return 1;
}

/* count{owner, surface, state} -> integer: jobs matching every filter
 * given; state is a state or a list of states (any of them). */
static int l_count(lua_State *L)
{
    struct core *c = open_core(L);
    struct jr_job_count f;
    const char *states[JR_STORE_COUNT_STATES];
    struct jr_err e = { 0, "" };
    int64_t n;
    int ty;

    memset(&f, 0, sizeof f);
    if (!lua_isnoneornil(L, 1)) {
        luaL_checktype(L, 1, LUA_TTABLE);
        lua_settop(L, 1);
        ty = lua_getfield(L, 1, "owner");       /* 2 */
        if (ty != LUA_TNIL && ty != LUA_TSTRING)
            return fail(L, JR_E_INVALID, "count: owner must be a string");
        f.owner = lua_tostring(L, 2);
        ty = lua_getfield(L, 1, "surface");     /* 3 */
        if (ty != LUA_TNIL && ty != LUA_TSTRING)
            return fail(L, JR_E_INVALID, "count: surface must be a string");
        f.surface = lua_tostring(L, 3);
        ty = lua_getfield(L, 1, "state");       /* 4 */
        if (ty == LUA_TSTRING) {
            states[f.nstates++] = lua_tostring(L, 4);
        } else if (ty == LUA_TTABLE) {
            lua_Integer k, len = (lua_Integer)lua_rawlen(L, 4);
            if (len > JR_STORE_COUNT_STATES)
                return fail(L, JR_E_INVALID, "count: state lists more states than there are");
            for (k = 1; k <= len; k++) {
                if (lua_rawgeti(L, 4, k) != LUA_TSTRING)
                    return fail(L, JR_E_INVALID, "count: state must be a state or a list of states");
                states[f.nstates++] = lua_tostring(L, -1); /* stays on the stack */
            }
        } else if (ty != LUA_TNIL) {
            return fail(L, JR_E_INVALID, "count: state must be a state or a list of states");
        }
        for (size_t i = 0; i < f.nstates; i++)
            if (!jr_job_state_valid(states[i]))
                return fail(L, JR_E_INVALID,
                            lua_pushfstring(L, "count: unknown job state '%s'", states[i]));
        f.states = states;
    }
    if (jr_store_jobs_count_where(c->core->store, &f, &n, &e))
        return fail_err(L, &e);
    lua_pushinteger(L, n);
    return 1;
}

typedef int (*halt_fn)(struct jr_sched *, const char *, const char *, struct jr_err *);

static int do_halt(lua_State *L, halt_fn fn)
{
    struct core *c = open_core(L);
    const char *id = luaL_checkstring(L, 1);
    struct jr_err e = { 0, "" };

    if (fn(c->core->sched, id, luaL_optstring(L, 2, NULL), &e))
        return fail_err(L, &e);
    return push_full_job(L, c, id);
}

static int l_stop(lua_State *L) { return do_halt(L, jr_sched_stop); }
static int l_cancel(lua_State *L) { return do_halt(L, jr_sched_cancel); }
static int l_suspend(lua_State *L) { return do_halt(L, jr_sched_suspend); }

static int l_start(lua_State *L)
{
    struct core *c = open_core(L);
    const char *id = luaL_checkstring(L, 1);
    struct jr_err e = { 0, "" };
    const char *reject = NULL;
    int hold = 0;

    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "hold");
        hold = lua_toboolean(L, -1);
        lua_getfield(L, 2, "reject");
        reject = lua_tostring(L, -1);
    }
    if (jr_sched_start(c->core->sched, id, hold, reject, &e))
        return fail_err(L, &e);
    return push_full_job(L, c, id);
}

static int l_restart(lua_State *L)
{
    struct core *c = open_core(L);
    const char *id = luaL_checkstring(L, 1);
    struct jr_err e = { 0, "" };

    if (jr_sched_restart(c->core->sched, id, &e))
        return fail_err(L, &e);
    return push_full_job(L, c, id);
}

static int l_approve(lua_State *L)
{
    struct core *c = open_core(L);
    const char *id = luaL_checkstring(L, 1);
    struct jr_err e = { 0, "" };
    int accept = 1;
    const char *by = NULL, *reason = NULL;

    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "accept");
        accept = lua_isnil(L, -1) ? 1 : lua_toboolean(L, -1);
        lua_getfield(L, 2, "by");
        by = lua_tostring(L, -1);
        lua_getfield(L, 2, "reason");
        reason = lua_tostring(L, -1);
    } else if (lua_isboolean(L, 2)) {
        accept = lua_toboolean(L, 2);
    }
    if (jr_sched_approve(c->core->sched, id, accept, by, reason, &e))
        return fail_err(L, &e);
    return push_full_job(L, c, id);
}

/* update(id, changes): changes hold attributes to merge (title, labels, doc,
 * ...), priority, max_parallelism, and tasks (replacing all tasks). */
static int l_update(lua_State *L)
{
    struct core *c = open_core(L);
    const char *id = luaL_checkstring(L, 1);
    struct conv cv = { L, 0, "" };
    struct jr_job_spec spec;
    struct jr_err e = { 0, "" };
    int what = 0, merged;

    luaL_checktype(L, 2, LUA_TTABLE);
    lua_newtable(L);
    cv.anchor = lua_gettop(L);
    /* merged = stored attrs + changes (changes win; json null removes) */
    if (push_full_job(L, c, id) != 1)
        return 3;
    merged = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        if (lua_type(L, -1) == LUA_TLIGHTUSERDATA) {
            lua_pop(L, 1);
            lua_pushnil(L);
        }
        lua_settable(L, merged);
    }
    /* tasks are replaced only when given */
    if (lua_getfield(L, 2, "tasks") == LUA_TNIL) {
        lua_pushnil(L);
        lua_setfield(L, merged, "tasks");
    }
    lua_pop(L, 1);
    if (conv_job(&cv, merged, &spec, &what))
        return fail(L, JR_E_INVALID, cv.err);
    if (lua_getfield(L, 2, "priority") == LUA_TNIL)
        what &= ~JR_UPD_PRIORITY;
    if (lua_getfield(L, 2, "max_parallelism") == LUA_TNIL)
        what &= ~JR_UPD_MAX_PAR;
    lua_pop(L, 2);
    if (jr_sched_update(c->core->sched, id, &spec, what, &e))
        return fail_err(L, &e);
    return push_full_job(L, c, id);
}

static int l_delete(lua_State *L)
{
    struct core *c = open_core(L);
    struct jr_err e = { 0, "" };

    if (jr_sched_delete(c->core->sched, luaL_checkstring(L, 1), &e))
        return fail_err(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_set_state(lua_State *L)
{
    struct core *c = open_core(L);
    const char *id = luaL_checkstring(L, 1);
    struct jr_err e = { 0, "" };

    if (jr_sched_set_state(c->core->sched, id, luaL_checkstring(L, 2), luaL_optstring(L, 3, NULL), &e))
        return fail_err(L, &e);
    return push_full_job(L, c, id);
}

/* ---- logs, results ---- */

static int log_row(void *arg, const struct jr_log_rec *l)
{
    struct push_ctx *p = arg;
    lua_State *L = p->L;

    lua_createtable(L, 0, 6);
    set_int(L, "id", l->id);
    set_time(L, "time", l->time);
    set_str(L, "level", level_name(l->level));
    set_str(L, "task", l->task);
    set_str(L, "message", l->message);
    if (l->data) {
        push_json(L, l->data);
        lua_setfield(L, -2, "data");
    }
    lua_rawseti(L, -2, ++p->n);
    return 0;
}

/* logs(id, {after, level, limit}) -> list */
static int l_logs(lua_State *L)
{
    struct core *c = open_core(L);
    struct push_ctx p = { L, 0, 0, 0, 0 };
    struct jr_err e = { 0, "" };
    int64_t after = 0, limit = 100, seq;
    int level = 0;

    seq = seq_of(c, luaL_checkstring(L, 1), &e);
    if (seq < 0)
        return fail_err(L, &e);
    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "after");
        after = (int64_t)luaL_optinteger(L, -1, 0);
        lua_getfield(L, 2, "limit");
        limit = (int64_t)luaL_optinteger(L, -1, 100);
        lua_getfield(L, 2, "level");
        level = level_of(L, -1, 0);
        if (level < 0)
            return fail(L, JR_E_INVALID, "level must be debug, info, warn or error");
        lua_pop(L, 3);
    }
    if (limit < 1 || limit > LIST_MAX)
        limit = limit < 1 ? 1 : LIST_MAX;
    lua_newtable(L);
    if (jr_store_logs(c->core->store, seq, after, level, limit, log_row, &p, &e))
        return fail_err(L, &e);
    as_array(L);
    return 1;
}

/* log(id, {level, message, task, data}) -> true */
static int l_log(lua_State *L)
{
    struct core *c = open_core(L);
    const char *id = luaL_checkstring(L, 1);
    struct jr_err e = { 0, "" };
    const char *msg, *task, *data = NULL;
    int level;

    luaL_checktype(L, 2, LUA_TTABLE);
    lua_getfield(L, 2, "level");
    level = level_of(L, -1, JR_LOG_LEVEL_INFO);
    if (level < 0)
        return fail(L, JR_E_INVALID, "level must be debug, info, warn or error");
    lua_getfield(L, 2, "message");
    msg = luaL_checkstring(L, -1);
    lua_getfield(L, 2, "task");
    task = lua_tostring(L, -1);
    if (lua_getfield(L, 2, "data") != LUA_TNIL) {
        if (json_call(L, "encode") || !lua_isstring(L, -1))
            return fail(L, JR_E_INVALID, "log data cannot be encoded as JSON");
        data = lua_tostring(L, -1);
    }
    if (jr_sched_log(c->core->sched, id, task, level, msg, data, &e))
        return fail_err(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

static int asset_row(void *arg, const struct jr_asset_rec *a)
{
    struct push_ctx *p = arg;

    push_json(p->L, a->data);
    set_str(p->L, "name", a->name);
    lua_rawseti(p->L, -2, ++p->n);
    return 0;
}

/* results(id) -> list of assets {name, ...} */
static int l_results(lua_State *L)
{
    struct core *c = open_core(L);
    struct push_ctx p = { L, 0, 0, 0, 0 };
    struct jr_err e = { 0, "" };
    int64_t seq = seq_of(c, luaL_checkstring(L, 1), &e);

    if (seq < 0)
        return fail_err(L, &e);
    lua_newtable(L);
    if (jr_store_assets(c->core->store, seq, asset_row, &p, &e))
        return fail_err(L, &e);
    as_array(L);
    return 1;
}

/* add_result(id, name, asset_table) -> true */
static int l_add_result(lua_State *L)
{
    struct core *c = open_core(L);
    struct jr_err e = { 0, "" };
    const char *name = luaL_checkstring(L, 2);
    int64_t seq;

    luaL_checktype(L, 3, LUA_TTABLE);
    seq = seq_of(c, luaL_checkstring(L, 1), &e);
    if (seq < 0)
        return fail_err(L, &e);
    lua_pushvalue(L, 3);
    if (json_call(L, "encode") || !lua_isstring(L, -1))
        return fail(L, JR_E_INVALID, "the asset cannot be encoded as JSON");
    if (jr_store_asset_put(c->core->store, seq, name, lua_tostring(L, -1), &e))
        return fail_err(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

/* ---- events and watch ---- */

static int event_row(void *arg, const struct jr_event_rec *ev)
{
    struct push_ctx *p = arg;
    lua_State *L = p->L;

    lua_createtable(L, 0, 7);
    set_int(L, "seq", ev->seq);
    set_time(L, "time", ev->time);
    set_str(L, "job", ev->job);
    set_str(L, "task", ev->task);
    set_str(L, "type", ev->type);
    set_str(L, "state", ev->state);
    set_str(L, "message", ev->message);
    p->last = ev->seq;
    lua_rawseti(L, -2, ++p->n);
    return 0;
}

/* events(after, limit) -> list, last_seq */
static int l_events(lua_State *L)
{
    struct core *c = open_core(L);
    struct push_ctx p = { L, 0, 0, 0, 0 };
    struct jr_err e = { 0, "" };
    int64_t after = (int64_t)luaL_optinteger(L, 1, 0);
    int64_t limit = (int64_t)luaL_optinteger(L, 2, 100);

    if (limit < 1 || limit > LIST_MAX)
        limit = limit < 1 ? 1 : LIST_MAX;
    lua_newtable(L);
    p.last = after;
    if (jr_store_events_after(c->core->store, after, limit, event_row, &p, &e))
        return fail_err(L, &e);
    as_array(L);
    lua_pushinteger(L, p.last);
    return 2;
}

struct watch_timer {
    uv_timer_t h;
    struct watch *w;       /* NULL once the watcher let go */
};

/* A watcher: its position in the event sequence, and while waiting, one
 * commit waiter, one timer and the wake function's registry ref. */
struct watch {
    struct core *c;
    struct watch *next, **prevp; /* in c->waiting while waiting */
    int core_ref;          /* keeps the core alive */
    int64_t after;
    struct jr_store_waiter w;
    struct watch_timer *timer;
    int wake_ref;
    lua_State *L;
};

static void on_watch_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void watch_unlink(struct watch *w)
{
    if (!w->prevp)
        return;
    *w->prevp = w->next;
    if (w->next)
        w->next->prevp = w->prevp;
    w->next = NULL;
    w->prevp = NULL;
}

static void watch_settle(struct watch *w, int woke_by_commit)
{
    lua_State *L = w->L;
    int ref = w->wake_ref;

    watch_unlink(w);
    jr_store_unwait(&w->w);
    if (w->timer) {
        w->timer->w = NULL;
        uv_close((uv_handle_t *)&w->timer->h, on_watch_timer_closed);
        w->timer = NULL;
    }
    w->wake_ref = LUA_NOREF;
    if (ref == LUA_NOREF)
        return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
    lua_pushboolean(L, woke_by_commit);
    jr_pcall(L, 1, 0);
}

static void on_watch_commit(struct jr_store_waiter *sw, int status)
{
    struct watch *w = (struct watch *)((char *)sw - offsetof(struct watch, w));

    watch_settle(w, status == 0);
}

static void on_watch_timeout(uv_timer_t *h)
{
    struct watch_timer *t = h->data;

    if (t->w)
        watch_settle(t->w, 0);
}

static struct watch *check_watch(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, WATCH_MT);
}

/* register(wake) for async.wait: upvalue 1 is the watcher, upvalue 2 the
 * timeout in ms (0 = none). */
static int register_watch(lua_State *L)
{
    struct watch *w = check_watch(L, lua_upvalueindex(1));
    lua_Integer ms = lua_tointeger(L, lua_upvalueindex(2));

    luaL_checktype(L, 1, LUA_TFUNCTION);
    if (!w->c->core) {
        lua_pushvalue(L, 1);
        lua_pushboolean(L, 0);
        lua_call(L, 1, 0);
        return 0;
    }
    lua_pushvalue(L, 1);
    w->wake_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    w->L = w->c->L;
    w->next = w->c->waiting;
    w->prevp = &w->c->waiting;
    if (w->next)
        w->next->prevp = &w->next;
    w->c->waiting = w;
    w->w.cb = on_watch_commit;
    jr_store_wait(w->c->core->store, &w->w);
    if (ms > 0) {
        w->timer = calloc(1, sizeof *w->timer);
        if (w->timer) {
            uv_timer_init(jr_loop_of(L)->uv, &w->timer->h);
            w->timer->h.data = w->timer;
            w->timer->w = w;
            uv_timer_start(&w->timer->h, on_watch_timeout, (uint64_t)ms, 0);
        }
    }
    return 0;
}

static int watch_next_k(lua_State *L, int status, lua_KContext ctx);

/* w:next([timeout_ms]) -> event | nil (timed out, or closed) | nil,
 * "stopping" (core.stop_watchers: the daemon is stopping). Without a
 * timeout it waits for the next event; with 0 it does not wait. */
static int watch_next(lua_State *L)
{
    check_watch(L, 1);
    lua_settop(L, 2);
    return watch_next_k(L, LUA_OK, 0);
}

static int watch_next_k(lua_State *L, int status, lua_KContext ctx)
{
    struct watch *w = check_watch(L, 1);
    struct push_ctx p = { L, 0, 0, 0, 0 };
    lua_Integer ms = luaL_optinteger(L, 2, 0);

    (void)status;
    if (w->c->watch_stopped) {
        lua_pushnil(L);
        lua_pushliteral(L, "stopping");
        return 2;
    }
    if (ctx) {
        /* back from a wait: its result is at the top */
        int by_commit = lua_toboolean(L, -1);
        lua_settop(L, 2);
        if (!by_commit)
            return 0;
    }
    if (!w->c->core)
        return 0;
    lua_newtable(L);
    jr_store_events_after(w->c->core->store, w->after, 1, event_row, &p, NULL);
    if (p.n > 0) {
        w->after = p.last;
        lua_rawgeti(L, -1, 1);
        return 1;
    }
    lua_pop(L, 1);
    /* next(0) does not wait; nor can code outside a coroutine */
    if (!lua_isyieldable(L) || (!lua_isnoneornil(L, 2) && ms == 0))
        return 0;
    lua_getglobal(L, "require");
    lua_pushliteral(L, "jobrt.async");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "wait");
    lua_remove(L, -2);
    lua_pushvalue(L, 1);
    lua_pushinteger(L, ms);
    lua_pushcclosure(L, register_watch, 2);
    lua_callk(L, 1, 1, 1, watch_next_k);
    return watch_next_k(L, LUA_OK, 1);
}

static int watch_close(lua_State *L)
{
    struct watch *w = check_watch(L, 1);

    if (w->wake_ref != LUA_NOREF) {
        luaL_unref(L, LUA_REGISTRYINDEX, w->wake_ref);
        w->wake_ref = LUA_NOREF;
    }
    watch_unlink(w);
    jr_store_unwait(&w->w);
    if (w->timer) {
        w->timer->w = NULL;
        uv_close((uv_handle_t *)&w->timer->h, on_watch_timer_closed);
        w->timer = NULL;
    }
    if (w->core_ref != LUA_NOREF) {
        luaL_unref(L, LUA_REGISTRYINDEX, w->core_ref);
        w->core_ref = LUA_NOREF;
    }
    return 0;
}

static int watch_tostring(lua_State *L)
{
    lua_pushfstring(L, "jobrt.core.watch (after %I)", (lua_Integer)check_watch(L, 1)->after);
    return 1;
}

static int watch_position(lua_State *L)
{
    lua_pushinteger(L, check_watch(L, 1)->after);
    return 1;
}

/* watch([after]) -> watcher; after defaults to the last event now. */
static int l_watch(lua_State *L)
{
    struct core *c = open_core(L);
    int64_t after = lua_isnoneornil(L, 1) ? jr_store_events_last(c->core->store)
                  : (int64_t)luaL_checkinteger(L, 1);
    struct watch *w;

    w = lua_newuserdatauv(L, sizeof *w, 0);
    memset(w, 0, sizeof *w);
    w->wake_ref = LUA_NOREF;
    w->core_ref = LUA_NOREF;
    w->c = c;
    w->after = after;
    luaL_setmetatable(L, WATCH_MT);
    lua_pushvalue(L, lua_upvalueindex(1));
    w->core_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 1;
}

/* stop_watchers(): every watcher's next() returns nil, "stopping" from
 * now on, those waiting at once; so that event streams end when the
 * daemon stops instead of holding it for its whole shutdown grace. */
static int l_stop_watchers(lua_State *L)
{
    struct core *c = check_core(L);

    c->watch_stopped = 1;
    while (c->waiting)
        watch_settle(c->waiting, 0);
    return 0;
}

static int l_node(lua_State *L)
{
    struct core *c = open_core(L);
    const struct jr_node *n = jr_sched_node(c->core->sched);
    int64_t running, ready, jobs;

    jr_sched_stats(c->core->sched, &running, &ready, &jobs);
    lua_createtable(L, 0, 7);
    set_int(L, "cpu", n->cpu);
    set_int(L, "memory", n->memory);
    set_int(L, "gpu", n->gpu);
    set_int(L, "max_tasks", n->max_tasks);
    set_int(L, "running", running);
    set_int(L, "ready", ready);
    set_int(L, "active_jobs", jobs);
    set_int(L, "jobs", jr_store_jobs_count(c->core->store));
    return 1;
}

static int l_is_open(lua_State *L)
{
    lua_pushboolean(L, check_core(L)->core != NULL);
    return 1;
}

static const luaL_Reg core_funcs[] = {
    { "open", l_open },
    { "close", l_close },
    { "is_open", l_is_open },
    { "durable", l_durable },
    { "submit", l_submit },
    { "get", l_get },
    { "list", l_list },
    { "count", l_count },
    { "update", l_update },
    { "start", l_start },
    { "stop", l_stop },
    { "cancel", l_cancel },
    { "suspend", l_suspend },
    { "restart", l_restart },
    { "delete", l_delete },
    { "approve", l_approve },
    { "set_state", l_set_state },
    { "logs", l_logs },
    { "log", l_log },
    { "results", l_results },
    { "add_result", l_add_result },
    { "events", l_events },
    { "watch", l_watch },
    { "stop_watchers", l_stop_watchers },
    { "node", l_node },
    { NULL, NULL },
};

static const luaL_Reg watch_methods[] = {
    { "next", watch_next },
    { "close", watch_close },
    { "position", watch_position },
    { NULL, NULL },
};

int luaopen_jobrt_core(lua_State *L)
{
    struct core *c;

    jr_loop_standalone(L);

    if (luaL_newmetatable(L, WATCH_MT)) {
        luaL_newlib(L, watch_methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, watch_close);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, watch_close);
        lua_setfield(L, -2, "__close");
        lua_pushcfunction(L, watch_tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, CORE_MT)) {
        lua_pushcfunction(L, core_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, core_gc);
        lua_setfield(L, -2, "__close");
        lua_pushcfunction(L, core_tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pop(L, 1);
    luaL_newlibtable(L, core_funcs);
    c = lua_newuserdatauv(L, sizeof *c, 0);
    memset(c, 0, sizeof *c);
    luaL_setmetatable(L, CORE_MT);
    luaL_setfuncs(L, core_funcs, 1);
    return 1;
}
