/* Bounded resumption of coroutines, in one place: a deadline on the time a
 * coroutine spends running (watchdog.c) and a cap on the
 * memory it grows, kept per coroutine across its waits; and the wait/wake
 * primitive that suspends the running coroutine until a callback wakes it.
 * jobrt.async (lua/jobrt/async.lua) and the C bindings both build on it. */
#include <lauxlib.h>
#include <string.h>
#include <uv.h>

#include "lua/runtime.h"
#include "metrics.h"

#define HOOK_EVERY 1000 /* instructions between clock checks */
#define TASKS_KEY "jobrt.tasks" /* registry: coroutine -> its bounds (weak keys) */
#define POOL_KEY "jobrt.workers" /* registry: parked workers (a list) */
#define POOL_MAX 256

/* What a worker (async.start's coroutine) yields when its job is done: it
 * is then parked for the next job rather than left to the collector. */
static const char park_token;

/* May raise (that is its purpose): once the deadline passed it fires on
 * every instruction, so a pcall in the script cannot swallow the kill. Set
 * by the watchdog's signal when the deadline passes, or, without a
 * watchdog, on every bounded coroutine as a count hook. */
void jr_lua_deadline_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    struct jr_lua *lua = jr_lua_of(L);
    if (!lua->deadline_ns)
        return;
    if (!lua->deadline_hit && uv_hrtime() < lua->deadline_ns)
        return;
    if (!lua->deadline_hit) {
        lua->deadline_hit = 1;
        lua_sethook(L, jr_lua_deadline_hook, LUA_MASKCOUNT | LUA_MASKLINE, 1);
    }
    luaL_error(L, "time limit exceeded");
}

static uint64_t min_nonzero(uint64_t a, uint64_t b)
{
    if (!a)
        return b;
    if (!b)
        return a;
    return a < b ? a : b;
}

/* Resume co with the nargs values on top of L. Pushes status, elapsed,
 * grown, ...: status "yield" or "ok" is followed by the coroutine's values;
 * "error" by the error value, its kind ("deadline", "memory" or "error")
 * and a traceback. seconds and bytes of 0 mean unbounded; an inner bounded
 * call never extends the bounds of the one around it. Returns the number of
 * values pushed. May raise (stack overflow). */
static int bounded_resume(lua_State *L, lua_State *co, double seconds, lua_Integer bytes,
                          int nargs)
{
    int status = lua_status(co);
    if (status != LUA_YIELD && !(status == LUA_OK && lua_gettop(co) > 0)) {
        lua_pop(L, nargs);
        lua_pushliteral(L, "error");
        lua_pushnumber(L, 0);
        lua_pushinteger(L, 0);
        lua_pushliteral(L, "cannot resume dead coroutine");
        lua_pushliteral(L, "error");
        return 5;
    }
    struct jr_lua *lua = jr_lua_of(L);
    if (!lua_checkstack(co, nargs + LUA_MINSTACK))
        return luaL_error(L, "too many arguments to resume");
    if (lua->chain_len >= JR_LUA_CHAIN_MAX)
        return luaL_error(L, "coroutines nested too deeply");
    lua_xmove(L, co, nargs);

    uint64_t saved_deadline = lua->deadline_ns;
    int saved_hit = lua->deadline_hit;
    size_t saved_limit = lua->mem.call_limit;
    uint64_t start = uv_hrtime();
    size_t used_before = lua->mem.used;

    lua->deadline_ns =
        min_nonzero(saved_deadline, seconds > 0 ? start + (uint64_t)(seconds * 1e9) : 0);
    lua->deadline_hit = 0;
    lua->mem.call_limit = min_nonzero(saved_limit, bytes > 0 ? used_before + (size_t)bytes : 0);
    if (lua->watchdog)
        jr_lua_watchdog_arm(lua->watchdog, lua->deadline_ns);
    else
        lua_sethook(co, jr_lua_deadline_hook, LUA_MASKCOUNT, HOOK_EVERY);

    int nres = 0, saved_at = lua->bounded_at;
    lua->bounded_at = lua->chain_len;
    jr_lua_chain_push(lua, co);
    status = lua_resume(co, L, nargs, &nres);
    jr_lua_chain_pop(lua);
    lua->bounded_at = saved_at;
    if (lua->watchdog)
        lua_sethook(co, NULL, 0, 0); /* the watchdog may have hooked it */

    int hit = lua->deadline_hit;
    lua->deadline_ns = saved_deadline;
    lua->deadline_hit = saved_hit;
    lua->mem.call_limit = saved_limit;
    if (lua->watchdog)
        jr_lua_watchdog_resume_outer(lua, HOOK_EVERY);
    double elapsed = (double)(uv_hrtime() - start) / 1e9;
    lua_Integer grown = (lua_Integer)lua->mem.used - (lua_Integer)used_before;

    if (status == LUA_OK || status == LUA_YIELD) {
        if (!lua_checkstack(L, nres + 3)) {
            lua_pop(co, nres);
            return luaL_error(L, "too many results to resume");
        }
        lua_pushstring(L, status == LUA_OK ? "ok" : "yield");
        lua_pushnumber(L, elapsed);
        lua_pushinteger(L, grown);
        lua_xmove(co, L, nres);
        return 3 + nres;
    }
    if (hit || status == LUA_ERRMEM)
        jr_metrics_count(lua->loop->metrics, JR_M_LUA_KILLS, hit ? "deadline" : "memory",
                         NULL, 1);
    lua_pushliteral(L, "error");
    lua_pushnumber(L, elapsed);
    lua_pushinteger(L, grown);
    lua_xmove(co, L, 1); /* the error value, kept as it is (tables too) */
    lua_pushstring(L, hit ? "deadline" : status == LUA_ERRMEM ? "memory" : "error");
    const char *msg = lua_tostring(L, -2);
    luaL_traceback(L, co, msg ? msg : "(error object)", 0);
    return 6;
}

/* resume(co, seconds, bytes, ...) -> status, elapsed, grown, ...: one
 * bounded resumption (see bounded_resume), for async.call. */
static int l_resume(lua_State *L)
{
    lua_State *co = lua_tothread(L, 1);
    luaL_argcheck(L, co, 1, "coroutine expected");
    double seconds = luaL_checknumber(L, 2);
    lua_Integer bytes = luaL_checkinteger(L, 3);
    return bounded_resume(L, co, seconds, bytes, lua_gettop(L) - 3);
}

/* ---- tasks: coroutines with bounds that hold across their waits ---- */

/* A task's bounds and what it used so far; user values 1 and 2 are its
 * on_done and on_error functions (or nil), 3 its log context (a
 * jobrt.log_context userdata, or nil: runtime.c), 4 the value passed to
 * them first (or nil: none is). */
struct bounds {
    double deadline, cpu;      /* seconds of running time: allowed, used */
    lua_Integer memory, grown; /* bytes of heap growth: allowed, used */
    int per_wake;              /* the deadline holds for each resumption */
};

/* A worker whose job is done goes on the list of parked ones (up to
 * POOL_MAX; one more is left to the collector). */
static void park(lua_State *L, lua_State *co)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, POOL_KEY) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, POOL_KEY);
    }
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    if (n < POOL_MAX) {
        lua_pushthread(co);
        lua_xmove(co, L, 1);
        lua_rawseti(L, -2, n + 1);
    }
    lua_pop(L, 1);
}

static void push_tasks(lua_State *L)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, TASKS_KEY) == LUA_TTABLE)
        return;
    lua_pop(L, 1);
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, TASKS_KEY);
}

/* Resume co with the nargs values on top of L (popped) through the one
 * bounded path: within what is left of its bounds when it has any (then a
 * finished task calls its on_done(...) or on_error(err, kind, traceback),
 * or logs), else plainly, logging a failure. Raises what the callbacks
 * raise. */
static void task_resume(lua_State *L, lua_State *co, int nargs)
{
    int base = lua_gettop(L) - nargs;
    push_tasks(L);
    lua_pushthread(co);
    lua_xmove(co, L, 1);
    lua_rawget(L, -2);
    lua_remove(L, -2);
    struct bounds *b = lua_touserdata(L, -1);
    if (!b) {
        lua_Debug ar;
        int st = lua_status(co);
        lua_pop(L, 1);
        if (co == L || (st == LUA_OK && lua_getstack(co, 0, &ar)) ||
            (st != LUA_YIELD && (st != LUA_OK || lua_gettop(co) == 0))) {
            lua_pop(L, nargs);
            jr_log(jr_loop_of(L), JR_LOG_ERROR, "coroutine failed: cannot resume %s coroutine",
                   st == LUA_OK && lua_gettop(co) > 0 ? "non-suspended" : "dead");
            return;
        }
        lua_xmove(L, co, nargs);
        int nres = 0, status = lua_resume(co, L, nargs, &nres);
        if (status == LUA_OK || status == LUA_YIELD) {
            lua_pop(co, nres);
            return;
        }
        jr_log(jr_loop_of(L), JR_LOG_ERROR, "coroutine failed: %s",
               lua_tostring(co, -1) ? lua_tostring(co, -1) : "(error object)");
        lua_pop(co, 1);
        return;
    }
    lua_insert(L, base + 1); /* the bounds below the arguments */
    if (b->per_wake)
        b->cpu = 0;
    double seconds = b->deadline > 0 ? b->deadline - b->cpu : 0;
    lua_Integer bytes = b->memory > 0 ? b->memory - b->grown : 0;
    if (b->deadline > 0 && seconds < 1e-6)
        seconds = 1e-6;
    if (b->memory > 0 && bytes < 1)
        bytes = 1;
    /* While it runs, its log lines carry its context's fields. */
    struct jr_loop *loop = jr_loop_of(L);
    const struct jr_log_fields *saved_ctx = loop->log_context;
    loop->log_context = lua_getiuservalue(L, base + 1, 3) == LUA_TUSERDATA
                        ? lua_touserdata(L, -1) : NULL;
    lua_pop(L, 1);
    int n = bounded_resume(L, co, seconds, bytes, nargs);
    loop->log_context = saved_ctx;
    int top = lua_gettop(L), first = top - n + 1;
    const char *status = lua_tostring(L, first);
    b->cpu += lua_tonumber(L, first + 1);
    b->grown += lua_tointeger(L, first + 2);
    int parked = strcmp(status, "yield") == 0 && n == 4 &&
                 lua_touserdata(L, first + 3) == &park_token;
    if (strcmp(status, "yield") == 0 && !parked) {
        lua_settop(L, base);
        return;
    }
    push_tasks(L);
    lua_pushthread(co);
    lua_xmove(co, L, 1);
    if (parked) { /* its bounds stay, for its next job (l_bound) */
        lua_pop(L, 2);
        park(L, co);
        lua_settop(L, first + 2); /* done, without results */
        n = 3;
    } else {
        lua_pushnil(L);
        lua_rawset(L, -3);
        lua_pop(L, 1);
    }
    int ok = parked || strcmp(status, "ok") == 0;
    if (lua_getiuservalue(L, base + 1, ok ? 1 : 2) == LUA_TFUNCTION) {
        int nargs = ok ? n - 3 : 3;
        lua_insert(L, first + 3);
        if (lua_getiuservalue(L, base + 1, 4) != LUA_TNIL) {
            lua_insert(L, first + 4); /* the callback's first argument */
            nargs++;
        } else {
            lua_pop(L, 1);
        }
        lua_call(L, nargs, 0);
    } else if (ok) {
        lua_pop(L, 1);
    } else {
        lua_pop(L, 1);
        const char *trace = lua_tostring(L, first + 5);
        jr_log(jr_loop_of(L), JR_LOG_ERROR, "coroutine failed: %s", trace ? trace : "?");
    }
    lua_settop(L, base);
}

/* bound(co, deadline, memory, on_done, on_error[, log_context[, arg]]):
 * make co a task, its running time capped at deadline seconds and its heap
 * growth at memory bytes over all its resumptions (0 = none); while it
 * runs, the log lines written carry the fields of log_context
 * (runtime.log_context()). Given arg, the callbacks get it first:
 * on_done(arg, ...), on_error(arg, err, kind, traceback). */
static int l_bound(lua_State *L)
{
    lua_State *co = lua_tothread(L, 1);
    luaL_argcheck(L, co, 1, "coroutine expected");
    double deadline = luaL_optnumber(L, 2, 0);
    lua_Integer memory = luaL_optinteger(L, 3, 0);
    if (!lua_isnoneornil(L, 4))
        luaL_checktype(L, 4, LUA_TFUNCTION);
    if (!lua_isnoneornil(L, 5))
        luaL_checktype(L, 5, LUA_TFUNCTION);
    if (!lua_isnoneornil(L, 6))
        luaL_checkudata(L, 6, JR_LOG_CONTEXT_MT);
    lua_settop(L, 7);
    push_tasks(L);
    lua_pushvalue(L, 1);
    /* A parked worker taking a new job keeps its bounds userdata. */
    lua_pushvalue(L, 1);
    struct bounds *b = lua_rawget(L, -3) == LUA_TUSERDATA ? lua_touserdata(L, -1) : NULL;
    if (!b) {
        lua_pop(L, 1);
        b = lua_newuserdatauv(L, sizeof *b, 4);
    }
    memset(b, 0, sizeof *b);
    b->deadline = deadline;
    b->memory = memory;
    lua_pushvalue(L, 4);
    lua_setiuservalue(L, -2, 1);
    lua_pushvalue(L, 5);
    lua_setiuservalue(L, -2, 2);
    lua_pushvalue(L, 6);
    lua_setiuservalue(L, -2, 3);
    lua_pushvalue(L, 7);
    lua_setiuservalue(L, -2, 4);
    lua_rawset(L, -3);
    return 0;
}

/* per_wake(co): from now on co's deadline bounds each of its resumptions
 * rather than their sum; for a handler that streams for as long as its
 * client listens, each wake doing a little (the memory cap still holds
 * over its whole life). False when co is not a bounded task. */
static int l_per_wake(lua_State *L)
{
    lua_State *co = lua_tothread(L, 1);
    luaL_argcheck(L, co, 1, "coroutine expected");
    push_tasks(L);
    lua_pushvalue(L, 1);
    lua_rawget(L, -2);
    struct bounds *b = lua_touserdata(L, -1);
    if (b)
        b->per_wake = 1;
    lua_pushboolean(L, b != NULL);
    return 1;
}

/* unhooked(fn, ...) -> fn's results: fn runs without the deadline hook of
 * this coroutine (when calls carry a count hook: without the watchdog).
 * For the runtime's own work whose cost the input's limits
 * already bound (the model's check of a job): while a count hook is set,
 * Lua 5.4 traps on every instruction, which makes such work about half as
 * dear again. The memory cap still holds; a deadline that passed meanwhile
 * fires at the next instruction after. fn must not yield. May raise. */
static int l_unhooked(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    /* The watchdog sets the hook only once the deadline passed: there is
     * nothing to lift, and a hook it sets meanwhile must stay. */
    if (jr_lua_of(L)->watchdog) {
        lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
        return lua_gettop(L);
    }
    lua_Hook hook = lua_gethook(L);
    int mask = lua_gethookmask(L), count = lua_gethookcount(L);
    lua_sethook(L, NULL, 0, 0);
    int status = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
    lua_sethook(L, hook, mask, count);
    if (status != LUA_OK)
        return lua_error(L);
    return lua_gettop(L);
}

/* worker() -> a parked worker coroutine (async.start's), or nothing;
 * park_token() -> what a worker yields when its job is done. */
static int l_worker(lua_State *L)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, POOL_KEY) != LUA_TTABLE)
        return 0;
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    if (n == 0)
        return 0;
    lua_rawgeti(L, -1, n);
    lua_pushnil(L);
    lua_rawseti(L, -3, n);
    return 1;
}

static int l_park_token(lua_State *L)
{
    lua_pushlightuserdata(L, (void *)&park_token);
    return 1;
}

/* resume_task(co, ...): continue a coroutine, a task or any other. */
static int l_resume_task(lua_State *L)
{
    lua_State *co = lua_tothread(L, 1);
    luaL_argcheck(L, co, 1, "coroutine expected");
    task_resume(L, co, lua_gettop(L) - 1);
    return 0;
}

/* ---- wait and wake ---- */

enum { WAITING, SUSPENDED, DONE };

/* The wake function given to register: upvalue 1 the waiting coroutine,
 * 2 its state, 3 the values of a wake that came while register ran. Only
 * the first call counts, so a timeout and an event may race safely. */
static int wake(lua_State *L)
{
    int state = (int)lua_tointeger(L, lua_upvalueindex(2));
    lua_State *co = lua_tothread(L, lua_upvalueindex(1));
    if (state == DONE)
        return 0;
    lua_pushinteger(L, DONE);
    lua_replace(L, lua_upvalueindex(2));
    if (state == WAITING && L == co) {
        /* woken while registering: wait returns these without yielding */
        int n = lua_gettop(L);
        lua_createtable(L, n, 1);
        lua_insert(L, 1);
        for (int i = n; i >= 1; i--)
            lua_rawseti(L, 1, i);
        lua_pushinteger(L, n);
        lua_setfield(L, 1, "n");
        lua_replace(L, lua_upvalueindex(3));
        return 0;
    }
    task_resume(L, co, lua_gettop(L));
    return 0;
}

int jr_lua_wait(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_settop(L, 1);
    if (lua_pushthread(L))
        return luaL_error(L, "async.wait called outside a coroutine");
    lua_pushinteger(L, WAITING);
    lua_pushnil(L);
    lua_pushcclosure(L, wake, 3);        /* 2: wake */
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_call(L, 1, 0);
    lua_getupvalue(L, 2, 2);
    int state = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (state == DONE) {
        lua_getupvalue(L, 2, 3);
        if (lua_istable(L, -1)) {
            lua_getfield(L, -1, "n");
            int n = (int)lua_tointeger(L, -1);
            lua_pop(L, 1);
            luaL_checkstack(L, n, "too many values to wake with");
            for (int i = 1; i <= n; i++)
                lua_rawgeti(L, 3, i);
            return n;
        }
        lua_pop(L, 1);
    } else {
        lua_pushinteger(L, SUSPENDED);
        lua_setupvalue(L, 2, 2);
    }
    return lua_yield(L, 0);
}

const luaL_Reg jr_lua_resume_funcs[] = {
    {"resume", l_resume},
    {"bound", l_bound},
    {"per_wake", l_per_wake},
    {"resume_task", l_resume_task},
    {"worker", l_worker},
    {"park_token", l_park_token},
    {"unhooked", l_unhooked},
    {"wait", jr_lua_wait},
    {NULL, NULL},
};
