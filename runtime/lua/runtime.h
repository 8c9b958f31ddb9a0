/* The one Lua state: creation with a memory-accounting allocator, the
 * embedded library in package.preload, luv on the daemon's loop, and the
 * protected-call wrapper every call from C into Lua goes through. The
 * state's own context (struct jr_lua) lives here, beside the loop's. */
#ifndef JR_LUA_RUNTIME_H
#define JR_LUA_RUNTIME_H

#include <lauxlib.h>
#include <lua.h>
#include <stddef.h>
#include <stdint.h>

#include "loop.h"

/* Coroutines resumed one inside another at most (the resume chain). */
#define JR_LUA_CHAIN_MAX 128

/* Blocks of at most this many bytes are cached by size (memory.c). */
#define JR_LUA_SMALL_MAX 512

/* Memory accounting for the one Lua state and its cache of small blocks;
 * see runtime/lua/memory.c. */
struct jr_lua_memory {
    size_t used;        /* bytes currently allocated by the Lua state */
    size_t hard_limit;  /* whole-state ceiling, 0 = none */
    size_t call_limit;  /* while a bounded call runs: ceiling for it, else 0 */
    size_t cached;      /* bytes in the cache, not counted in used */
    void *cache[JR_LUA_SMALL_MAX / 16 + 1]; /* free blocks by size class */
};

/* The lua_Alloc of a state whose ud is its struct jr_lua_memory. */
void *jr_lua_allocate(void *ud, void *ptr, size_t osize, size_t nsize);
/* Frees the cached blocks; after lua_close. */
void jr_lua_memory_drain(struct jr_lua_memory *m);

/* The Lua state's context, stored in its main thread's extra space. */
struct jr_lua {
    struct jr_loop *loop;
    lua_State *L;       /* the main thread */
    struct jr_lua_memory mem;
    /* Monotonic deadline (ns, uv_hrtime clock) of the bounded Lua call that
     * is running now, or 0 when the running code is the runtime's own.
     * Read by the watchdog's signal handler, on this thread. */
    volatile uint64_t deadline_ns;
    int deadline_hit;   /* set once the hook fired for this call */
    /* The coroutines being resumed now, outermost first (watchdog.c), and
     * where in it the innermost bounded call's coroutine is (0 when none
     * runs: the handler hooks from there on). */
    lua_State *volatile chain[JR_LUA_CHAIN_MAX];
    volatile int chain_len;
    volatile int bounded_at;
    struct jr_lua_watchdog *watchdog; /* NULL: a count hook bounds calls */
};

/* The deadline watchdog (watchdog.c). start: the thread, and the signal
 * whose handler sets hook on the resume chain; -1 when it cannot run
 * (then bounded calls carry a count hook). arm: the deadline of the call
 * running now (0: none). */
int jr_lua_watchdog_start(struct jr_lua *lua, lua_Hook hook);
void jr_lua_watchdog_arm(struct jr_lua_watchdog *w, uint64_t deadline);
void jr_lua_watchdog_stop(struct jr_lua *lua);
/* push: co is being resumed; -1 when the chain is full (then co must not
 * be). pop: it returned or yielded. */
int jr_lua_chain_push(struct jr_lua *lua, lua_State *co);
void jr_lua_chain_pop(struct jr_lua *lua);
/* After a bounded call inside another returned: hooks the outer one's
 * coroutines (count hook, every `every` instructions) when its deadline
 * passed meanwhile, else tells the watchdog its deadline. */
void jr_lua_watchdog_resume_outer(struct jr_lua *lua, int every);
/* coroutine.resume and coroutine.wrap replaced by versions that keep the
 * resume chain. */
void jr_lua_chain_coroutines(lua_State *L);
/* The hook that stops a bounded call past its deadline (resume.c). */
void jr_lua_deadline_hook(lua_State *L, lua_Debug *ar);

static inline struct jr_lua *jr_lua_of(lua_State *L)
{
    return *(struct jr_lua **)lua_getextraspace(L);
}

static inline struct jr_loop *jr_loop_of(lua_State *L)
{
    return jr_lua_of(L)->loop;
}

/* jr_loop_of, or for a plain Lua interpreter (the rock's jobrt.core) a
 * context made on first use around luv's loop. May raise. */
struct jr_loop *jr_loop_standalone(lua_State *L);

/* Create lua->L on loop. Returns 0, or -1 with a message in err. */
int jr_lua_open(struct jr_lua *lua, struct jr_loop *loop, char *err, size_t errlen);
void jr_lua_close(struct jr_lua *lua);

/* lua_pcall with a traceback; on failure logs the error, pops it and
 * returns the Lua status. Never raises. */
int jr_pcall(lua_State *L, int nargs, int nresults);

/* Binding modules, registered in package.preload by jr_lua_open. */
struct jr_lua_module {
    const char *name;
    lua_CFunction open;
};
extern const struct jr_lua_module jr_lua_modules[];

/* The metatable of a userdata class, made once under name (also its
 * __name): __index = the methods (may be NULL), __gc and __close = gc (may
 * be NULL: an object that frees itself), __tostring. Leaves the stack as
 * it was. May raise (memory). Check objects with luaL_checkudata(L, i, name). */
void jr_lua_class(lua_State *L, const char *name, const luaL_Reg *methods,
                  lua_CFunction gc, lua_CFunction tostring);

/* wait(register): suspend the running coroutine until the wake function
 * passed to register(wake) is called (now or later; only the first call
 * counts) and return wake's arguments; the wake resumes the coroutine
 * within its bounds (resume.c). A lua_CFunction that yields: call it from
 * C with lua_callk. Raises outside a coroutine. */
int jr_lua_wait(lua_State *L);
/* A log context: a full userdata whose memory is a struct jr_log_fields
 * (runtime.c), made by runtime.log_context(). */
#define JR_LOG_CONTEXT_MT "jobrt.log_context"

/* resume.c's part of jobrt.runtime: resume, bound, resume_task, wait. */
extern const luaL_Reg jr_lua_resume_funcs[];

int luaopen_jobrt_runtime(lua_State *L);

#endif
