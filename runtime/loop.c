/* The daemon's context: logging and finding the context from Lua. */
#include "loop.h"

#include <lauxlib.h>
#include <lua.h>
#include <luv/luv.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lua/runtime.h"

void jr_log(struct jr_loop *loop, int level, const char *fmt, ...)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    if (loop && level < loop->log_level)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* One fprintf per line keeps lines whole when stderr is shared. */
    fprintf(stderr, "%s.%03ldZ %-5s %s\n", when, ts.tv_nsec / 1000000,
            names[level < 0 ? 0 : level > 3 ? 3 : level], line);
}

struct jr_loop *jr_loop_of(lua_State *L)
{
    return *(struct jr_loop **)lua_getextraspace(L);
}

/* The context for a Lua state that is not the daemon's: plain lua5.4
 * loading jobrt.core from the rock, so policy authors can test their Lua
 * without the daemon. The loop is luv's; the context is a userdata kept in
 * the registry, and the runtime's other C modules are offered through
 * package.preload. May raise (luv missing). */
struct jr_loop *jr_loop_standalone(lua_State *L)
{
    struct jr_loop *loop = jr_loop_of(L);
    if (loop)
        return loop;
    lua_getglobal(L, "require");
    lua_pushliteral(L, "luv");
    lua_call(L, 1, 1);
    lua_pop(L, 1);
    loop = lua_newuserdatauv(L, sizeof(*loop), 0);
    memset(loop, 0, sizeof(*loop));
    loop->uv = luv_loop(L);
    loop->log_level = JR_LOG_INFO;
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    loop->L = lua_tothread(L, -1);
    lua_pop(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "jobrt.loop");
    *(struct jr_loop **)lua_getextraspace(loop->L) = loop;
    *(struct jr_loop **)lua_getextraspace(L) = loop;
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    for (const struct jr_lua_module *m = jr_lua_modules; m->name; m++) {
        if (strncmp(m->name, "jobrt.", 6) != 0 || strcmp(m->name, "jobrt.core") == 0)
            continue;
        lua_getfield(L, -1, m->name);
        if (lua_isnil(L, -1)) {
            lua_pushcfunction(L, m->open);
            lua_setfield(L, -3, m->name);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return loop;
}
