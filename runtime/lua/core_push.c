/* jobrt.core: stored rows -> Lua tables in the core model (jobs with their
 * tasks, times as RFC 3339), and the JSON helpers the binding uses (the C
 * codec of json.c, called directly). */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/core_internal.h"
#include "lua/json.h"

void jr_lcore_push_time(lua_State *L, int64_t ms)
{
    char buf[40];

    if (!ms) {
        lua_pushnil(L);
        return;
    }
    jr_store_format_time(ms, buf);
    lua_pushstring(L, buf);
}

/* Replace the value at the top by its JSON text and return 0; or by an
 * error message and return -1. */
int jr_lcore_encode(lua_State *L)
{
    int rc = jr_json_encode(L, -1);

    lua_remove(L, -2);
    return rc;
}

/* Decode JSON text into a table pushed on the stack ({} on failure). */
void jr_lcore_push_json(lua_State *L, const char *text)
{
    if (!text)
        text = "{}";
    if (jr_json_decode(L, text, strlen(text)) || !lua_istable(L, -1)) {
        lua_pop(L, 1);
        lua_newtable(L);
    }
}

int jr_lcore_level_of(lua_State *L, int idx, int64_t def)
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

const char *jr_lcore_level_name(int64_t level)
{
    return level >= JR_LOG_LEVEL_ERROR ? "error" : level >= JR_LOG_LEVEL_WARN ? "warn"
         : level >= JR_LOG_LEVEL_INFO ? "info" : "debug";
}

/* ---- rows -> Lua tables ---- */

void jr_lcore_set_int(lua_State *L, const char *k, int64_t v)
{
    lua_pushinteger(L, v);
    lua_setfield(L, -2, k);
}

void jr_lcore_set_str(lua_State *L, const char *k, const char *v)
{
    if (!v)
        return;
    lua_pushstring(L, v);
    lua_setfield(L, -2, k);
}

void jr_lcore_set_time(lua_State *L, const char *k, int64_t ms)
{
    jr_lcore_push_time(L, ms);
    lua_setfield(L, -2, k);
}

static void push_job(lua_State *L, const struct jr_job_rec *j)
{
    jr_lcore_push_json(L, j->attrs);
    jr_lcore_set_str(L, "id", j->id);
    jr_lcore_set_str(L, "surface", j->surface);
    jr_lcore_set_str(L, "owner", j->owner);
    jr_lcore_set_str(L, "state", j->state);
    jr_lcore_set_int(L, "priority", j->priority);
    jr_lcore_set_int(L, "max_parallelism", j->max_parallelism);
    jr_lcore_set_time(L, "created_at", j->created_at);
    jr_lcore_set_time(L, "updated_at", j->updated_at);
    jr_lcore_set_time(L, "started_at", j->started_at);
    jr_lcore_set_time(L, "ended_at", j->ended_at);
    jr_lcore_set_str(L, "error", j->error);
}

int jr_lcore_job_row(void *arg, const struct jr_job_rec *j)
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

/* Into the task table at the top: the state and the scheduling columns
 * (priority, tolerable, retries, attempt, resources, timeout). */
static void set_task_columns(lua_State *L, const struct jr_task_rec *t)
{
    jr_lcore_set_str(L, "state", t->state);
    jr_lcore_set_int(L, "priority", t->priority);
    lua_pushboolean(L, t->tolerable != 0);
    lua_setfield(L, -2, "tolerable");
    jr_lcore_set_int(L, "retries", t->retries);
    jr_lcore_set_int(L, "attempt", t->attempt);
    lua_createtable(L, 0, 4);
    jr_lcore_set_int(L, "cpu", t->cpu);
    jr_lcore_set_int(L, "memory", t->memory);
    jr_lcore_set_int(L, "gpu", t->gpu);
    jr_lcore_set_int(L, "disk", t->disk);
    lua_setfield(L, -2, "resources");
    if (t->timeout_ms) {
        lua_pushnumber(L, (double)t->timeout_ms / 1000);
        lua_setfield(L, -2, "timeout");
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
    jr_lcore_push_json(L, t->spec);
    lua_pushstring(L, t->alias);
    lua_setfield(L, -2, "alias");
    jr_lcore_set_str(L, "group", t->group);
    lua_newtable(L);
    for (d = t->deps; d && *d;) {
        char *end;
        long i = strtol(d, &end, 10);
        lua_pushinteger(L, i + 1);
        lua_rawseti(L, -2, ++k);
        d = *end == ',' ? end + 1 : end;
    }
    jr_json_array(L, -1);
    lua_setfield(L, -2, "deps");
    set_task_columns(L, t);
    if (t->exit_code >= 0)
        jr_lcore_set_int(L, "exit_code", t->exit_code);
    if (t->signal)
        jr_lcore_set_int(L, "signal", t->signal);
    jr_lcore_set_str(L, "outcome", t->outcome);
    jr_lcore_set_str(L, "error", t->error);
    jr_lcore_set_time(L, "started_at", t->started_at);
    jr_lcore_set_time(L, "ended_at", t->ended_at);
    /* A figure the sandbox could not measure (-1) is left out. */
    if (t->has_usage && (t->cpu_ms >= 0 || t->max_rss_bytes >= 0 || t->wall_ms >= 0)) {
        lua_newtable(L);
        if (t->cpu_ms >= 0)
            jr_lcore_set_int(L, "cpu_ms", t->cpu_ms);
        if (t->max_rss_bytes >= 0)
            jr_lcore_set_int(L, "max_rss_bytes", t->max_rss_bytes);
        if (t->wall_ms >= 0)
            jr_lcore_set_int(L, "wall_ms", t->wall_ms);
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
int jr_lcore_push_full_job(lua_State *L, struct core *c, const char *id)
{
    struct push_ctx p = { L, 1, 0, 0, 0 };
    struct jr_err e = { 0, "" };
    int top = lua_gettop(L);

    if (jr_store_job_get(c->core->store, id, jr_lcore_job_row, &p, &e)) {
        lua_settop(L, top);
        return jr_lcore_fail_err(L, &e);
    }
    lua_newtable(L);                       /* tasks */
    p.n = 0;
    if (jr_store_tasks_each(c->core->store, p.last, task_row, &p, &e)) {
        lua_settop(L, top);
        return jr_lcore_fail_err(L, &e);
    }
    deps_to_aliases(L, p.n);
    jr_json_array(L, -1);
    lua_setfield(L, -2, "tasks");
    jr_lcore_set_waiting(L, c, -1);
    return 1;
}

/* Push stored JSON as a table: kept[i], the table that was encoded into
 * json, copied as decoding json would give it (no text to parse); or
 * json decoded when there is no such table. */
static void push_stored(lua_State *L, int kept, lua_Integer i, const char *json)
{
    if (kept) {
        int t = lua_rawgeti(L, kept, i);
        if (t == LUA_TTABLE && jr_json_copy(L, -1) == 0) {
            lua_remove(L, -2);
            return;
        }
        lua_settop(L, lua_gettop(L) - (t == LUA_TTABLE ? 2 : 1));
    }
    jr_lcore_push_json(L, json);
}

/* Push the job jr_sched_submit just stored from spec (created_at set), the
 * same table push_full_job would read back: attrs and task specs as stored
 * (from the tables conversion kept, see struct conv), the columns as
 * stored, tasks pending. Saves reading the rows again. */
void jr_lcore_push_submitted_job(lua_State *L, const struct jr_job_spec *spec, const char *id,
                                 int kept)
{
    size_t i, k;

    push_stored(L, kept, 1, spec->attrs);
    jr_lcore_set_str(L, "id", id);
    jr_lcore_set_str(L, "surface", spec->surface ? spec->surface : "");
    jr_lcore_set_str(L, "owner", spec->owner ? spec->owner : "");
    jr_lcore_set_str(L, "state", "created");
    jr_lcore_set_int(L, "priority", spec->priority);
    jr_lcore_set_int(L, "max_parallelism", spec->max_parallelism);
    jr_lcore_push_time(L, spec->created_at);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "created_at");
    lua_setfield(L, -2, "updated_at");
    lua_createtable(L, (int)spec->ntasks, 0);
    for (i = 0; i < spec->ntasks; i++) {
        const struct jr_task_spec *t = &spec->tasks[i];
        push_stored(L, kept, (lua_Integer)i + 2, t->spec);
        lua_pushstring(L, t->alias);
        lua_setfield(L, -2, "alias");
        jr_lcore_set_str(L, "group", t->group);
        lua_createtable(L, (int)t->ndeps, 0);
        for (k = 0; k < t->ndeps; k++) {
            lua_pushstring(L, t->deps[k]);
            lua_rawseti(L, -2, (lua_Integer)k + 1);
        }
        jr_json_array(L, -1);
        lua_setfield(L, -2, "deps");
        set_task_columns(L, &(struct jr_task_rec){
            .state = "pending", .priority = t->priority, .tolerable = t->tolerable,
            .retries = t->retries, .cpu = t->cpu, .memory = t->memory, .gpu = t->gpu,
            .disk = t->disk, .timeout_ms = t->timeout_ms });
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    jr_json_array(L, -1);
    lua_setfield(L, -2, "tasks");
}

int64_t jr_lcore_seq_of(struct core *c, const char *id, struct jr_err *e)
{
    int64_t seq = 0;

    if (jr_store_job_get(c->core->store, id, copy_seq, &seq, e))
        return -1;
    return seq;
}
