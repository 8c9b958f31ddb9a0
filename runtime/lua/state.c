/* Creates and closes the daemon's one Lua state: memory.c's allocator,
 * the standard libraries, luv bound to the daemon's loop with a callback
 * handler that logs instead of exiting (or hands the error to the function
 * jobrt.callbacks.on_error set), the C modules and the embedded Lua library
 * in package.preload, generational collection and the deadline watchdog
 * (watchdog.c); and the context of a plain interpreter that loads the
 * rock. */
#include <lauxlib.h>
#include <lualib.h>
#include <luv/luv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/embedded.h"
#include "lua/runtime.h"

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            msg = lua_tostring(L, -1);
        else
            msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* lua_pcall with a traceback; on failure the message is left on the stack. */
static int traced_pcall(lua_State *L, int nargs, int nresults)
{
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, traceback);
    lua_insert(L, base);
    int rc = lua_pcall(L, nargs, nresults, base);
    lua_remove(L, base);
    return rc;
}

int jr_pcall(lua_State *L, int nargs, int nresults)
{
    int rc = traced_pcall(L, nargs, nresults);
    if (rc != LUA_OK) {
        jr_log(jr_loop_of(L), JR_LOG_ERROR, "lua: %s", lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    return rc;
}

/* The registry key of the function that takes an error raised in a luv
 * callback (with its traceback); without one the error is logged and the
 * loop goes on, as a daemon wants. `jobrt lua` sets one that fails the
 * script (jobrt.main). */
static const char CALLBACK_ERROR[] = "jobrt.callback_error";

/* luv's contract: leave the results and return their count, or return the
 * negated status with nothing left. Unlike luv's default, never exit. */
static int luv_callback(lua_State *L, int nargs, int nresults, int flags)
{
    (void)flags;
    int top = lua_gettop(L) - nargs - 1;
    int rc = traced_pcall(L, nargs, nresults);
    if (rc == LUA_OK)
        return lua_gettop(L) - top;
    if (lua_getfield(L, LUA_REGISTRYINDEX, CALLBACK_ERROR) == LUA_TFUNCTION) {
        lua_insert(L, -2);
        jr_pcall(L, 1, 0);
    } else {
        lua_pop(L, 1);
        jr_log(jr_loop_of(L), JR_LOG_ERROR, "lua: %s", lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    return -rc;
}

/* jobrt.callbacks.on_error(fn | nil) -> the previous fn | nil: fn(message)
 * takes the errors raised in luv callbacks from now on; nil logs them. */
static int l_on_error(lua_State *L)
{
    if (!lua_isnoneornil(L, 1))
        luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_settop(L, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, CALLBACK_ERROR);
    lua_insert(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, CALLBACK_ERROR);
    return 1;
}

static int open_callbacks(lua_State *L)
{
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, l_on_error);
    lua_setfield(L, -2, "on_error");
    return 1;
}

static void warn_to_log(void *ud, const char *msg, int tocont)
{
    (void)tocont;
    jr_log(ud, JR_LOG_WARN, "lua warning: %s", msg);
}

/* package.preload loader for an embedded file; upvalue 1 is its index. */
static int load_embedded(lua_State *L)
{
    const struct jr_embedded_file *f = &jr_embedded_files[lua_tointeger(L, lua_upvalueindex(1))];
    lua_pushfstring(L, "@%s", f->path);
    if (luaL_loadbufferx(L, f->source, f->size, lua_tostring(L, -1), "t") != LUA_OK)
        return lua_error(L);
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1);
    return 1;
}

/* "lua/jobrt/server.lua" -> "jobrt.server"; only the runtime's own library
 * is preloaded: surfaces and policies are loaded sandboxed by plugins.lua. */
static int module_name(const char *path, char *out, size_t outlen)
{
    const char *prefix = "lua/";
    size_t plen = strlen(prefix), len = strlen(path);
    if (strncmp(path, prefix, plen) != 0 || len < plen + 5 || strcmp(path + len - 4, ".lua") != 0)
        return -1;
    size_t n = len - plen - 4;
    if (n + 1 > outlen)
        return -1;
    memcpy(out, path + plen, n);
    out[n] = '\0';
    for (char *p = out; *p; p++)
        if (*p == '/')
            *p = '.';
    size_t olen = strlen(out);
    if (olen > 5 && strcmp(out + olen - 5, ".init") == 0)
        out[olen - 5] = '\0';
    return 0;
}

static int setup(lua_State *L)
{
    struct jr_loop *loop = jr_loop_of(L);
    luaL_openlibs(L);
    luv_set_loop(L, loop->uv);
    luv_set_callback(L, luv_callback);
    luaL_requiref(L, "luv", luaopen_luv, 0);
    lua_pop(L, 1);

    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    for (const struct jr_lua_module *m = jr_lua_modules; m->name; m++) {
        lua_pushcfunction(L, m->open);
        lua_setfield(L, -2, m->name);
    }
    lua_pushcfunction(L, open_callbacks);
    lua_setfield(L, -2, "jobrt.callbacks");
    char name[256];
    for (int i = 0; jr_embedded_files[i].path; i++) {
        if (module_name(jr_embedded_files[i].path, name, sizeof(name)) != 0)
            continue;
        lua_pushinteger(L, i);
        lua_pushcclosure(L, load_embedded, 1);
        lua_setfield(L, -2, name);
    }
    lua_pop(L, 1);

    /* Sandboxed code must not reach the shared string library through
     * getmetatable(""). */
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);
    return 0;
}

int jr_lua_open(struct jr_lua *lua, struct jr_loop *loop, char *err, size_t errlen)
{
    memset(lua, 0, sizeof *lua);
    lua->loop = loop;
    lua_State *L = lua_newstate(jr_lua_allocate, &lua->mem);
    if (!L) {
        snprintf(err, errlen, "cannot create the Lua state: out of memory");
        return -1;
    }
    *(struct jr_lua **)lua_getextraspace(L) = lua;
    lua->L = L;
    lua_setwarnf(L, warn_to_log, loop);
    lua_pushcfunction(L, setup);
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
        snprintf(err, errlen, "cannot set up Lua: %s", lua_tostring(L, -1));
        jr_lua_close(lua);
        return -1;
    }
    /* Generational: a request's objects die young, and a cycle of the
     * incremental collector marked and swept the whole heap (the loaded
     * surfaces and modules) every thousand requests or so, in steps of a
     * millisecond or two that stalled every answer waiting behind them
     * (p99 3.5-5 ms against 1.6 ms now on bench/http.sh's Lua route). */
    lua_gc(L, LUA_GCGEN, 0, 0);
    /* Without the thread, bounded calls fall back to a count hook. */
    if (jr_lua_watchdog_start(lua, jr_lua_deadline_hook) == 0)
        jr_lua_chain_coroutines(L);
    return 0;
}

void jr_lua_close(struct jr_lua *lua)
{
    if (!lua->L)
        return;
    jr_lua_watchdog_stop(lua);
    lua_close(lua->L);
    lua->L = NULL;
    jr_lua_memory_drain(&lua->mem);
}

/* The context for a Lua state that is not the daemon's: plain lua5.4
 * loading jobrt.core from the rock, so policy authors can test their Lua
 * without the daemon. The loop is luv's; both contexts live in a userdata
 * kept in the registry, and the runtime's other C modules are offered
 * through package.preload. May raise (luv missing). */
struct jr_loop *jr_loop_standalone(lua_State *L)
{
    struct standalone {
        struct jr_lua lua;
        struct jr_loop loop;
    } *sa;

    if (jr_lua_of(L))
        return jr_loop_of(L);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "luv");
    lua_call(L, 1, 1);
    lua_pop(L, 1);
    sa = lua_newuserdatauv(L, sizeof *sa, 0);
    memset(sa, 0, sizeof *sa);
    sa->loop.uv = luv_loop(L);
    sa->loop.log_level = JR_LOG_INFO;
    sa->lua.loop = &sa->loop;
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    sa->lua.L = lua_tothread(L, -1);
    lua_pop(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "jobrt.loop");
    *(struct jr_lua **)lua_getextraspace(sa->lua.L) = &sa->lua;
    *(struct jr_lua **)lua_getextraspace(L) = &sa->lua;
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
    return &sa->loop;
}
