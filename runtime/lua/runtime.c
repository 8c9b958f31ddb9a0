/* jobrt.runtime: what Lua needs from the daemon itself: bounded resumption
 * of coroutines (a deadline on the time spent running, checked by an instruction-count hook,
 * and a memory cap), logging, the clock and the embedded sources. */
#include <lauxlib.h>
#include <string.h>
#include <uv.h>

#include "lua/embedded.h"
#include "lua/runtime.h"

#ifndef JOBRT_VERSION
#define JOBRT_VERSION "0.1.0"
#endif

#define HOOK_EVERY 1000 /* instructions between clock checks */

/* May raise (that is its purpose): once the deadline passed it fires on
 * every instruction, so a pcall in the script cannot swallow the kill. */
static void deadline_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    struct jr_lua *lua = jr_lua_of(L);
    if (!lua->deadline_ns)
        return;
    if (!lua->deadline_hit && uv_hrtime() < lua->deadline_ns)
        return;
    if (!lua->deadline_hit) {
        lua->deadline_hit = 1;
        lua_sethook(L, deadline_hook, LUA_MASKCOUNT | LUA_MASKLINE, 1);
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

/* resume(co, seconds, bytes, ...) -> status, elapsed, grown, ...
 * status "yield" or "ok" is followed by the coroutine's values; "error" by
 * the error value, its kind ("deadline", "memory" or "error") and a
 * traceback. seconds and bytes of 0 mean unbounded; an inner bounded call
 * never extends the bounds of the one around it. */
static int l_resume(lua_State *L)
{
    lua_State *co = lua_tothread(L, 1);
    luaL_argcheck(L, co, 1, "coroutine expected");
    double seconds = luaL_checknumber(L, 2);
    lua_Integer bytes = luaL_checkinteger(L, 3);
    int nargs = lua_gettop(L) - 3;
    int status = lua_status(co);
    if (status != LUA_YIELD && !(status == LUA_OK && lua_gettop(co) > 0)) {
        lua_pushliteral(L, "error");
        lua_pushnumber(L, 0);
        lua_pushinteger(L, 0);
        lua_pushliteral(L, "cannot resume dead coroutine");
        lua_pushliteral(L, "error");
        return 5;
    }
    if (!lua_checkstack(co, nargs + LUA_MINSTACK))
        return luaL_error(L, "too many arguments to resume");
    lua_xmove(L, co, nargs);

    struct jr_lua *lua = jr_lua_of(L);
    uint64_t saved_deadline = lua->deadline_ns;
    int saved_hit = lua->deadline_hit;
    size_t saved_limit = lua->mem.call_limit;
    uint64_t start = uv_hrtime();
    size_t used_before = lua->mem.used;

    lua->deadline_ns =
        min_nonzero(saved_deadline, seconds > 0 ? start + (uint64_t)(seconds * 1e9) : 0);
    lua->deadline_hit = 0;
    lua->mem.call_limit = min_nonzero(saved_limit, bytes > 0 ? used_before + (size_t)bytes : 0);
    lua_sethook(co, deadline_hook, LUA_MASKCOUNT, HOOK_EVERY);

    int nres = 0;
    status = lua_resume(co, L, nargs, &nres);

    int hit = lua->deadline_hit;
    lua->deadline_ns = saved_deadline;
    lua->deadline_hit = saved_hit;
    lua->mem.call_limit = saved_limit;
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
    lua_pushliteral(L, "error");
    lua_pushnumber(L, elapsed);
    lua_pushinteger(L, grown);
    lua_xmove(co, L, 1); /* the error value, kept as it is (tables too) */
    lua_pushstring(L, hit ? "deadline" : status == LUA_ERRMEM ? "memory" : "error");
    const char *msg = lua_tostring(L, -2);
    luaL_traceback(L, co, msg ? msg : "(error object)", 0);
    return 6;
}

static int l_log(lua_State *L)
{
    static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
    int level = luaL_checkoption(L, 1, "info", levels);
    const char *msg = luaL_checkstring(L, 2);
    jr_log(jr_loop_of(L), level, "%s", msg);
    return 0;
}

static int l_log_level(lua_State *L)
{
    static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
    jr_loop_of(L)->log_level = luaL_checkoption(L, 1, "info", levels);
    return 0;
}

/* logs(level) -> whether a message at that level would be written, so
 * callers can skip formatting it. */
static int l_logs(lua_State *L)
{
    static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
    lua_pushboolean(L, luaL_checkoption(L, 1, "info", levels) >= jr_loop_of(L)->log_level);
    return 1;
}

static int l_hrtime(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)uv_hrtime());
    return 1;
}

static int l_memory(lua_State *L)
{
    struct jr_lua *lua = jr_lua_of(L);
    lua_pushinteger(L, (lua_Integer)lua->mem.used);
    lua_pushinteger(L, (lua_Integer)lua->mem.hard_limit);
    return 2;
}

static int l_set_memory_limit(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 0, 1, "must not be negative");
    jr_lua_of(L)->mem.hard_limit = (size_t)n;
    return 0;
}

/* embedded(path) -> source or nil */
static int l_embedded(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    for (int i = 0; jr_embedded_files[i].path; i++) {
        if (strcmp(jr_embedded_files[i].path, path) == 0) {
            lua_pushlstring(L, jr_embedded_files[i].source, jr_embedded_files[i].size);
            return 1;
        }
    }
    return 0;
}

static int l_embedded_paths(lua_State *L)
{
    lua_newtable(L);
    for (int i = 0; jr_embedded_files[i].path; i++) {
        lua_pushstring(L, jr_embedded_files[i].path);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int l_pid(lua_State *L)
{
    lua_pushinteger(L, uv_os_getpid());
    return 1;
}

static const luaL_Reg funcs[] = {
    {"resume", l_resume},
    {"log", l_log},
    {"set_log_level", l_log_level},
    {"logs", l_logs},
    {"hrtime", l_hrtime},
    {"memory", l_memory},
    {"set_memory_limit", l_set_memory_limit},
    {"embedded", l_embedded},
    {"embedded_paths", l_embedded_paths},
    {"pid", l_pid},
    {NULL, NULL},
};

int luaopen_jobrt_runtime(lua_State *L)
{
    luaL_newlib(L, funcs);
    lua_pushliteral(L, JOBRT_VERSION);
    lua_setfield(L, -2, "version");
    return 1;
}
