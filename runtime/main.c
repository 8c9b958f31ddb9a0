/* jobrt's entry point: builds the loop and the Lua state, hands the command
 * line to lua/jobrt/main.lua, runs the loop until it has nothing left, and
 * tears everything down in order. */
#include <lauxlib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop.h"
#include "lua/runtime.h"
#include "sandbox/sandbox.h"
#include "sandbox/server.h"

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

int jr_certs_main(int argc, char **argv);

/* In sanitizer builds, LeakSanitizer checks at exit by stopping the
 * process with ptrace, which the task sandbox's seccomp filter denies; a
 * jobrt running as a task (openEO's `jobrt eval`) would then fail. Every
 * task has JOBRT_TASK set. Unused in normal builds. */
int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void)
{
    return getenv("JOBRT_TASK") != NULL;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "sandbox") == 0)
        return jr_sandbox_main(argc, argv);
    if (argc > 1 && strcmp(argv[1], "sandbox-check") == 0)
        return jr_sandbox_check_main(argc, argv);
    if (argc > 1 && strcmp(argv[1], "sandbox-server") == 0)
        return jr_sandbox_server_main(argc, argv);
    /* Commands that need neither the loop nor Lua run here. */
    if (argc > 1 && strcmp(argv[1], "certs") == 0 &&
        !(argc > 2 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)))
        return jr_certs_main(argc, argv);
    struct jr_loop loop;
    memset(&loop, 0, sizeof(loop));
    loop.log_level = JR_LOG_INFO;
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t uv;
    if (uv_loop_init(&uv) != 0) {
        fprintf(stderr, "jobrt: cannot create the event loop\n");
        return 1;
    }
    loop.uv = &uv;
    char err[512];
    if (jr_lua_open(&loop, err, sizeof(err)) != 0) {
        fprintf(stderr, "jobrt: %s\n", err);
        uv_loop_close(&uv);
        return 1;
    }
    lua_State *L = loop.L;
    int code = 1;
    lua_pushcfunction(L, start);
    lua_pushinteger(L, argc);
    lua_pushlightuserdata(L, argv);
    if (jr_pcall(L, 2, 1) == LUA_OK) {
        int serve = lua_isnil(L, -1);
        code = (int)lua_tointeger(L, -1);
        lua_pop(L, 1);
        uv_run(&uv, UV_RUN_DEFAULT);
        if (serve)
            code = call_main(L, "exit_code", 1);
    }
    /* What Lua opened (the core) closes its own handles first: the walk
     * below would close them behind its back. */
    call_main(L, "finish", 0);
    /* Close what is left while Lua can still run close callbacks, then
     * close Lua (whose finalizers may close more), then the loop. */
    uv_walk(&uv, close_handle, NULL);
    uv_run(&uv, UV_RUN_DEFAULT);
    jr_lua_close(&loop);
    uv_walk(&uv, close_handle, NULL);
    uv_run(&uv, UV_RUN_DEFAULT);
    if (uv_loop_close(&uv) != 0)
        fprintf(stderr, "jobrt: event loop still busy at exit\n");
    return code;
}
