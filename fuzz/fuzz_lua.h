/* The Lua state of the fuzz targets that check Lua code: the standard
 * libraries, lpeg and cjson, the target's own C modules, package.path on
 * JOBRT_LUA_DIR (default lua/), and the target's check chunk run once. */
#ifndef JR_FUZZ_LUA_H
#define JR_FUZZ_LUA_H

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int luaopen_lpeg(lua_State *L);
int luaopen_cjson(lua_State *L);

/* Returns the state; *check_ref is the registry ref of the function the
 * check chunk returned. Aborts (naming target) when the chunk fails. */
static lua_State *fuzz_lua_open(const char *target, const luaL_Reg *modules, const char *check,
                                int *check_ref)
{
    const char *dir = getenv("JOBRT_LUA_DIR");
    char path[1024];
    snprintf(path, sizeof(path), "%s/?.lua", dir ? dir : "lua");
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    luaL_requiref(L, "lpeg", luaopen_lpeg, 0);
    luaL_requiref(L, "cjson", luaopen_cjson, 0);
    for (const luaL_Reg *m = modules; m && m->name; m++)
        luaL_requiref(L, m->name, m->func, 0);
    lua_settop(L, 0);
    lua_getglobal(L, "package");
    lua_pushstring(L, path);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
    if (luaL_loadstring(L, check) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
        fprintf(stderr, "%s: %s\n", target, lua_tostring(L, -1));
        abort();
    }
    *check_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return L;
}

/* Runs the check function on one input; aborts (naming target) when it
 * fails. Returns the integer it returned (0 for none), which targets count
 * as extra coverage. */
static inline lua_Integer fuzz_lua_check(lua_State *L, int check_ref, const char *target,
                                  const uint8_t *data, size_t size)
{
    lua_Integer n;

    lua_rawgeti(L, LUA_REGISTRYINDEX, check_ref);
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        fprintf(stderr, "%s: oracle failed: %s\n", target, lua_tostring(L, -1));
        abort();
    }
    n = lua_tointeger(L, -1);
    lua_pop(L, 1);
    return n;
}

/* Coverage of Lua code for libFuzzer: every line run in a file whose
 * source name contains `under` bumps one of n counters (file and line
 * hashed). The settings live in a userdata the main thread's extra space
 * points to (coroutines inherit it), anchored in the registry. */
struct fuzz_lua_cover {
    uint8_t *counters;
    size_t n;
    const char *under;
};

static inline void fuzz_lua_line_hook(lua_State *l, lua_Debug *ar)
{
    struct fuzz_lua_cover *c = *(struct fuzz_lua_cover **)lua_getextraspace(l);
    const char *file;
    unsigned h = 0;

    if (!c || !lua_getinfo(l, "S", ar) || !(file = strstr(ar->source, c->under)))
        return;
    for (; *file; file++)
        h = h * 31 + (unsigned char)*file;
    c->counters[(h + (unsigned)ar->currentline) % c->n]++;
}

static inline void fuzz_lua_cover(lua_State *L, uint8_t *counters, size_t n, const char *under)
{
    struct fuzz_lua_cover *c = lua_newuserdatauv(L, sizeof *c, 0);

    c->counters = counters;
    c->n = n;
    c->under = under;
    luaL_ref(L, LUA_REGISTRYINDEX);
    *(struct fuzz_lua_cover **)lua_getextraspace(L) = c;
    lua_sethook(L, fuzz_lua_line_hook, LUA_MASKLINE, 0);
}

#endif
