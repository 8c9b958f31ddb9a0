/* The one Lua state: creation with a memory-accounting allocator, the
 * embedded library in package.preload, luv on the daemon's loop, and the
 * protected-call wrapper every call from C into Lua goes through. */
#ifndef JR_LUA_RUNTIME_H
#define JR_LUA_RUNTIME_H

#include <lua.h>
#include <stddef.h>

struct jr_loop;

/* Create loop->L. Returns 0, or -1 with a message in err. */
int jr_lua_open(struct jr_loop *loop, char *err, size_t errlen);
void jr_lua_close(struct jr_loop *loop);

/* lua_pcall with a traceback; on failure logs the error, pops it and
 * returns the Lua status. Never raises. */
int jr_pcall(lua_State *L, int nargs, int nresults);

/* Binding modules, registered in package.preload by jr_lua_open. */
struct jr_lua_module {
    const char *name;
    lua_CFunction open;
};
extern const struct jr_lua_module jr_lua_modules[];

int luaopen_jobrt_runtime(lua_State *L);

#endif
