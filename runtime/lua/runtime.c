/* jobrt.runtime: what Lua needs from the daemon itself: bounded resumption
 * of coroutines and the wait primitive (resume.c), logging, the clock, the
 * memory figures and the embedded sources. */
#include <lauxlib.h>
#include <string.h>
#include <uv.h>

#include "lua/embedded.h"
#include "lua/runtime.h"

#ifndef JOBRT_VERSION
#define JOBRT_VERSION "0.1.0"
#endif

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
    luaL_setfuncs(L, jr_lua_resume_funcs, 0);
    lua_pushliteral(L, JOBRT_VERSION);
    lua_setfield(L, -2, "version");
    return 1;
}
