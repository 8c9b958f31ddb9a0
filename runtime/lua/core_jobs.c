/* jobrt.core: the job functions (submit, get, list, count, update, the
 * state changes, logs and results), each a thin call into the scheduler or
 * the store. */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/core_internal.h"
#include "lua/json.h"

/* ---- jobs ---- */

/* opts.hold: true, or why the job waits for approval (its event's message). */
static const char *hold_reason(lua_State *L, int idx)
{
    if (lua_type(L, idx) == LUA_TSTRING)
        return lua_tostring(L, idx);
    return lua_toboolean(L, idx) ? "awaiting approval" : NULL;
}

/* submit(job[, {start, hold, reject, answer}]) -> the stored job | nil,
 * err, code. start (or hold, reject) starts it as jr_sched_start does.
 * answer = "json": a job only created comes back as {id, surface, owner,
 * state, json}, json the text of the job as get() would read it, built
 * from what was written (the native API answers with it as it is). */
static int l_submit(lua_State *L)
{
    struct core *c = jr_lcore_open(L);
    struct conv cv = { L, 0, 0, "" };
    struct jr_job_spec spec;
    struct jr_err e = { 0, "" };
    char id[80];
    int start = 0, as_json = 0;
    const char *hold = NULL, *reject = NULL;

    luaL_checktype(L, 1, LUA_TTABLE);
    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "start");
        start = lua_toboolean(L, -1);
        lua_getfield(L, 2, "hold");
        hold = hold_reason(L, -1);
        lua_getfield(L, 2, "reject");
        reject = lua_tostring(L, -1);
        lua_getfield(L, 2, "answer");
        as_json = lua_isstring(L, -1) && strcmp(lua_tostring(L, -1), "json") == 0;
        lua_pop(L, 4);
    }
    lua_newtable(L);
    cv.anchor = lua_gettop(L);
    /* the tables encoded for the store, kept to answer with when the answer
     * is a table of the job as created */
    if (!start && !hold && !reject && !as_json) {
        lua_newtable(L);
        cv.kept = lua_gettop(L);
    }
    if (jr_lcore_conv_job(&cv, 1, &spec, NULL))
        return jr_lcore_fail(L, JR_E_INVALID, cv.err);
    spec.created_at = jr_store_now_ms();
    if (jr_sched_submit(c->core->sched, &spec, id, &e))
        return jr_lcore_fail_err(L, &e);
    if (!start && !hold && !reject && as_json) {
        lua_createtable(L, 0, 5);
        jr_lcore_set_str(L, "id", id);
        jr_lcore_set_str(L, "surface", spec.surface ? spec.surface : "");
        jr_lcore_set_str(L, "owner", spec.owner ? spec.owner : "");
        jr_lcore_set_str(L, "state", "created");
        jr_lcore_push_submitted_json(L, c, &spec, id);
        lua_setfield(L, -2, "json");
        return 1;
    }
    if (!start && !hold && !reject) {
        jr_lcore_push_submitted_job(L, &spec, id, cv.kept);
        jr_lcore_set_waiting(L, c, -1);
        return 1;
    }
    if (jr_sched_start(c->core->sched, id, hold, reject, &e)) {
        /* the job exists; say why it did not start */
        return jr_lcore_fail_err(L, &e);
    }
    return jr_lcore_push_full_job(L, c, id);
}

static int l_get(lua_State *L)
{
    struct core *c = jr_lcore_open(L);

    return jr_lcore_push_full_job(L, c, luaL_checkstring(L, 1));
}

static int l_list(lua_State *L)
{
    struct core *c = jr_lcore_open(L);
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
                return jr_lcore_fail(L, JR_E_INVALID, "after must be a cursor from a previous page");
        }
        lua_getfield(L, 1, "limit");
        if (!lua_isnil(L, -1)) {
            int ok = 0;
            limit = lua_tointegerx(L, -1, &ok);
            if (!ok || limit < 1)
                return jr_lcore_fail(L, JR_E_INVALID, "limit must be a positive integer");
        }
        /* keep the strings referenced: the five values stay on the stack */
    }
    if (f.state && !jr_job_state_valid(f.state))
        return jr_lcore_fail(L, JR_E_INVALID, "unknown job state in filter");
    if (limit > JR_LCORE_LIST_MAX)
        limit = JR_LCORE_LIST_MAX;
    f.limit = limit + 1;          /* one more tells whether a next page exists */
    lua_newtable(L);              /* result */
    lua_newtable(L);              /* jobs */
    if (jr_store_jobs_list(c->core->store, &f, jr_lcore_job_row, &p, &e))
        return jr_lcore_fail_err(L, &e);
    if (p.n > limit) {
        /* the extra row only says that a next page exists */
        lua_pushnil(L);
        lua_rawseti(L, -2, p.n);
    }
    for (int i = 1; i <= p.n && i <= limit; i++) {
        lua_rawgeti(L, -1, i);
        jr_lcore_set_waiting(L, c, -1);
        lua_pop(L, 1);
    }
    jr_json_array(L, -1);
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
    struct core *c = jr_lcore_open(L);
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
            return jr_lcore_fail(L, JR_E_INVALID, "count: owner must be a string");
        f.owner = lua_tostring(L, 2);
        ty = lua_getfield(L, 1, "surface");     /* 3 */
        if (ty != LUA_TNIL && ty != LUA_TSTRING)
            return jr_lcore_fail(L, JR_E_INVALID, "count: surface must be a string");
        f.surface = lua_tostring(L, 3);
        ty = lua_getfield(L, 1, "state");       /* 4 */
        if (ty == LUA_TSTRING) {
            states[f.nstates++] = lua_tostring(L, 4);
        } else if (ty == LUA_TTABLE) {
            lua_Integer k, len = (lua_Integer)lua_rawlen(L, 4);
            if (len > JR_STORE_COUNT_STATES)
                return jr_lcore_fail(L, JR_E_INVALID, "count: state lists more states than there are");
            for (k = 1; k <= len; k++) {
                if (lua_rawgeti(L, 4, k) != LUA_TSTRING)
                    return jr_lcore_fail(L, JR_E_INVALID, "count: state must be a state or a list of states");
                states[f.nstates++] = lua_tostring(L, -1); /* stays on the stack */
            }
        } else if (ty != LUA_TNIL) {
            return jr_lcore_fail(L, JR_E_INVALID, "count: state must be a state or a list of states");
        }
        for (size_t i = 0; i < f.nstates; i++)
            if (!jr_job_state_valid(states[i]))
                return jr_lcore_fail(L, JR_E_INVALID,
                            lua_pushfstring(L, "count: unknown job state '%s'", states[i]));
        f.states = states;
    }
    if (jr_store_jobs_count_where(c->core->store, &f, &n, &e))
        return jr_lcore_fail_err(L, &e);
    lua_pushinteger(L, n);
    return 1;
}

typedef int (*halt_fn)(struct jr_sched *, const char *, const char *, struct jr_err *);

static int do_halt(lua_State *L, halt_fn fn)
{
    struct core *c = jr_lcore_open(L);
    const char *id = luaL_checkstring(L, 1);
    struct jr_err e = { 0, "" };

    if (fn(c->core->sched, id, luaL_optstring(L, 2, NULL), &e))
        return jr_lcore_fail_err(L, &e);
    return jr_lcore_push_full_job(L, c, id);
}

static int l_stop(lua_State *L) { return do_halt(L, jr_sched_stop); }
static int l_cancel(lua_State *L) { return do_halt(L, jr_sched_cancel); }
static int l_suspend(lua_State *L) { return do_halt(L, jr_sched_suspend); }
static int l_fail(lua_State *L) { return do_halt(L, jr_sched_fail); }

static int l_start(lua_State *L)
{
    struct core *c = jr_lcore_open(L);
    const char *id = luaL_checkstring(L, 1);
    struct jr_err e = { 0, "" };
    const char *hold = NULL, *reject = NULL;

    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "hold");
        hold = hold_reason(L, -1);
        lua_getfield(L, 2, "reject");
        reject = lua_tostring(L, -1);
    }
    if (jr_sched_start(c->core->sched, id, hold, reject, &e))
        return jr_lcore_fail_err(L, &e);
    return jr_lcore_push_full_job(L, c, id);
}

static int l_restart(lua_State *L)
{
    struct core *c = jr_lcore_open(L);
    const char *id = luaL_checkstring(L, 1);
    struct jr_err e = { 0, "" };

    if (jr_sched_restart(c->core->sched, id, &e))
        return jr_lcore_fail_err(L, &e);
    return jr_lcore_push_full_job(L, c, id);
}

static int l_approve(lua_State *L)
{
    struct core *c = jr_lcore_open(L);
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
        return jr_lcore_fail_err(L, &e);
    return jr_lcore_push_full_job(L, c, id);
}

/* hold(id, {by, reason}) -> job: why a job awaiting approval waits, and
 * which policy holds it (job.approval {decision = "wait", by, reason}). */
static int l_hold(lua_State *L)
{
    struct core *c = jr_lcore_open(L);
    const char *id = luaL_checkstring(L, 1);
    struct jr_err e = { 0, "" };
    const char *by, *reason;

    luaL_checktype(L, 2, LUA_TTABLE);
    lua_getfield(L, 2, "by");
    by = lua_tostring(L, -1);
    lua_getfield(L, 2, "reason");
    reason = lua_tostring(L, -1);
    if (jr_sched_hold(c->core->sched, id, by, reason, &e))
        return jr_lcore_fail_err(L, &e);
    return jr_lcore_push_full_job(L, c, id);
}

/* update(id, changes): changes hold attributes to merge (title, labels, doc,
 * ...), priority, max_parallelism, and tasks (replacing all tasks). */
static int l_update(lua_State *L)
{
    struct core *c = jr_lcore_open(L);
    const char *id = luaL_checkstring(L, 1);
    struct conv cv = { L, 0, 0, "" };
    struct jr_job_spec spec;
    struct jr_err e = { 0, "" };
    int what = 0, merged;

    luaL_checktype(L, 2, LUA_TTABLE);
    lua_newtable(L);
    cv.anchor = lua_gettop(L);
    /* merged = stored attrs + changes (changes win; json null removes) */
    if (jr_lcore_push_full_job(L, c, id) != 1)
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
    if (jr_lcore_conv_job(&cv, merged, &spec, &what))
        return jr_lcore_fail(L, JR_E_INVALID, cv.err);
    if (lua_getfield(L, 2, "priority") == LUA_TNIL)
        what &= ~JR_UPD_PRIORITY;
    if (lua_getfield(L, 2, "max_parallelism") == LUA_TNIL)
        what &= ~JR_UPD_MAX_PAR;
    lua_pop(L, 2);
    if (jr_sched_update(c->core->sched, id, &spec, what, &e))
        return jr_lcore_fail_err(L, &e);
    return jr_lcore_push_full_job(L, c, id);
}

/* delete(id[, {force = true}]) -> true: force deletes a job whose tasks
 * still run (they are stopped; the job is gone for readers at once). */
static int l_delete(lua_State *L)
{
    struct core *c = jr_lcore_open(L);
    struct jr_err e = { 0, "" };
    const char *id = luaL_checkstring(L, 1);
    int force = 0;

    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "force");
        force = lua_toboolean(L, -1);
        lua_pop(L, 1);
    } else if (!lua_isnoneornil(L, 2)) {
        return luaL_typeerror(L, 2, "table or nil");
    }
    if (jr_sched_delete(c->core->sched, id, force, &e))
        return jr_lcore_fail_err(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_set_state(lua_State *L)
{
    struct core *c = jr_lcore_open(L);
    const char *id = luaL_checkstring(L, 1);
    struct jr_err e = { 0, "" };

    if (jr_sched_set_state(c->core->sched, id, luaL_checkstring(L, 2), luaL_optstring(L, 3, NULL), &e))
        return jr_lcore_fail_err(L, &e);
    return jr_lcore_push_full_job(L, c, id);
}

/* ---- logs, results ---- */

static int log_row(void *arg, const struct jr_log_rec *l)
{
    struct push_ctx *p = arg;
    lua_State *L = p->L;

    lua_createtable(L, 0, 6);
    jr_lcore_set_int(L, "id", l->id);
    jr_lcore_set_time(L, "time", l->time);
    jr_lcore_set_str(L, "level", jr_lcore_level_name(l->level));
    jr_lcore_set_str(L, "task", l->task);
    jr_lcore_set_str(L, "message", l->message);
    if (l->data) {
        jr_lcore_push_json(L, l->data);
        lua_setfield(L, -2, "data");
    }
    lua_rawseti(L, -2, ++p->n);
    return 0;
}

/* logs(id, {after, level, limit}) -> list */
static int l_logs(lua_State *L)
{
    struct core *c = jr_lcore_open(L);
    struct push_ctx p = { L, 0, 0, 0, 0 };
    struct jr_err e = { 0, "" };
    int64_t after = 0, limit = 100, seq;
    int level = 0;

    seq = jr_lcore_seq_of(c, luaL_checkstring(L, 1), &e);
    if (seq < 0)
        return jr_lcore_fail_err(L, &e);
    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "after");
        after = (int64_t)luaL_optinteger(L, -1, 0);
        lua_getfield(L, 2, "limit");
        limit = (int64_t)luaL_optinteger(L, -1, 100);
        lua_getfield(L, 2, "level");
        level = jr_lcore_level_of(L, -1, 0);
        if (level < 0)
            return jr_lcore_fail(L, JR_E_INVALID, "level must be debug, info, warn or error");
        lua_pop(L, 3);
    }
    if (limit < 1 || limit > JR_LCORE_LIST_MAX)
        limit = limit < 1 ? 1 : JR_LCORE_LIST_MAX;
    lua_newtable(L);
    if (jr_store_logs(c->core->store, seq, after, level, limit, log_row, &p, &e))
        return jr_lcore_fail_err(L, &e);
    jr_json_array(L, -1);
    return 1;
}

/* log(id, {level, message, task, data}) -> true */
static int l_log(lua_State *L)
{
    struct core *c = jr_lcore_open(L);
    const char *id = luaL_checkstring(L, 1);
    struct jr_err e = { 0, "" };
    const char *msg, *task, *data = NULL;
    int level;

    luaL_checktype(L, 2, LUA_TTABLE);
    lua_getfield(L, 2, "level");
    level = jr_lcore_level_of(L, -1, JR_LOG_LEVEL_INFO);
    if (level < 0)
        return jr_lcore_fail(L, JR_E_INVALID, "level must be debug, info, warn or error");
    lua_getfield(L, 2, "message");
    msg = luaL_checkstring(L, -1);
    lua_getfield(L, 2, "task");
    task = lua_tostring(L, -1);
    if (lua_getfield(L, 2, "data") != LUA_TNIL) {
        if (jr_lcore_encode(L) || !lua_isstring(L, -1))
            return jr_lcore_fail(L, JR_E_INVALID, "log data cannot be encoded as JSON");
        data = lua_tostring(L, -1);
    }
    if (jr_sched_log(c->core->sched, id, task, level, msg, data, &e))
        return jr_lcore_fail_err(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

static int asset_row(void *arg, const struct jr_asset_rec *a)
{
    struct push_ctx *p = arg;

    jr_lcore_push_json(p->L, a->data);
    jr_lcore_set_str(p->L, "name", a->name);
    lua_rawseti(p->L, -2, ++p->n);
    return 0;
}

/* results(id) -> list of assets {name, ...} */
static int l_results(lua_State *L)
{
    struct core *c = jr_lcore_open(L);
    struct push_ctx p = { L, 0, 0, 0, 0 };
    struct jr_err e = { 0, "" };
    int64_t seq = jr_lcore_seq_of(c, luaL_checkstring(L, 1), &e);

    if (seq < 0)
        return jr_lcore_fail_err(L, &e);
    lua_newtable(L);
    if (jr_store_assets(c->core->store, seq, asset_row, &p, &e))
        return jr_lcore_fail_err(L, &e);
    jr_json_array(L, -1);
    return 1;
}

/* add_result(id, name, asset_table) -> true */
static int l_add_result(lua_State *L)
{
    struct core *c = jr_lcore_open(L);
    struct jr_err e = { 0, "" };
    const char *name = luaL_checkstring(L, 2);
    int64_t seq;

    luaL_checktype(L, 3, LUA_TTABLE);
    seq = jr_lcore_seq_of(c, luaL_checkstring(L, 1), &e);
    if (seq < 0)
        return jr_lcore_fail_err(L, &e);
    lua_pushvalue(L, 3);
    if (jr_lcore_encode(L) || !lua_isstring(L, -1))
        return jr_lcore_fail(L, JR_E_INVALID, "the asset cannot be encoded as JSON");
    if (jr_store_asset_put(c->core->store, seq, name, lua_tostring(L, -1), &e))
        return jr_lcore_fail_err(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

const luaL_Reg jr_lcore_job_funcs[] = {
    { "submit", l_submit },
    { "get", l_get },
    { "list", l_list },
    { "count", l_count },
    { "update", l_update },
    { "start", l_start },
    { "stop", l_stop },
    { "cancel", l_cancel },
    { "suspend", l_suspend },
    { "fail", l_fail },
    { "restart", l_restart },
    { "delete", l_delete },
    { "approve", l_approve },
    { "hold", l_hold },
    { "set_state", l_set_state },
    { "logs", l_logs },
    { "log", l_log },
    { "results", l_results },
    { "add_result", l_add_result },
    { NULL, NULL },
};
