/* The command line's way into Lua: jobrt.main.run(argv...) in the one Lua
 * state, the loop run until it has nothing left, and the teardown in order
 * (handles closed while Lua can still run their callbacks, then Lua). */
#include <lauxlib.h>
#include <stdio.h>

#include "lua/runtime.h"
#include "script.h"

static void close_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Runs protected: main.run(argv...) -> exit code, or nil to serve until
 * the loop ends (main.exit_code() then says how it ended). */
static int start(lua_State *L)
{
    int argc = (int)lua_tointeger(L, 1);
    char **argv = lua_touserdata(L, 2);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "jobrt.main");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "run");
    luaL_checkstack(L, argc, "too many arguments");
    for (int i = 1; i < argc; i++)
        lua_pushstring(L, argv[i]);
    lua_call(L, argc - 1, 1);
    return 1;
}

/* main.<name>() -> its integer result, or code when it fails. */
static int call_main(lua_State *L, const char *name, int code)
{
    lua_getglobal(L, "require");
    lua_pushliteral(L, "jobrt.main");
    if (jr_pcall(L, 1, 1) == LUA_OK) {
        lua_getfield(L, -1, name);
        if (jr_pcall(L, 0, 1) == LUA_OK) {
            if (lua_isinteger(L, -1))
                code = (int)lua_tointeger(L, -1);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    return code;
}

int jr_script_main(struct jr_loop *loop, int argc, char **argv)
{
    struct jr_lua lua;
    char err[512];
    int code = 1;

    if (jr_lua_open(&lua, loop, err, sizeof(err)) != 0) {
        fprintf(stderr, "jobrt: %s\n", err);
        return 1;
    }
    lua_State *L = lua.L;
    lua_pushcfunction(L, start);
    lua_pushinteger(L, argc);
    lua_pushlightuserdata(L, argv);
    if (jr_pcall(L, 2, 1) == LUA_OK) {
        int serve = lua_isnil(L, -1);
        code = (int)lua_tointeger(L, -1);
        lua_pop(L, 1);
        uv_run(loop->uv, UV_RUN_DEFAULT);
        if (serve)
            code = call_main(L, "exit_code", 1);
    }
    /* What Lua opened (the core) closes its own handles first: the walk
     * below would close them behind its back. */
    call_main(L, "finish", 0);
    /* Close what is left while Lua can still run close callbacks, then
     * close Lua (whose finalizers may close more). */
    uv_walk(loop->uv, close_handle, NULL);
    uv_run(loop->uv, UV_RUN_DEFAULT);
    jr_lua_close(&lua);
    return code;
}
