/* The daemon's one context: the libuv loop, the Lua state and what the
 * services running on that loop share. No other global mutable state. */
#ifndef JR_LOOP_H
#define JR_LOOP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct lua_State;

/* Memory accounting for the one Lua state; see runtime/lua/runtime.c. */
struct jr_lua_memory {
    size_t used;        /* bytes currently allocated by the Lua state */
    size_t hard_limit;  /* whole-state ceiling, 0 = none */
    size_t call_limit;  /* while a bounded call runs: ceiling for it, else 0 */
};

struct jr_loop {
    uv_loop_t *uv;
    struct lua_State *L;
    struct jr_lua_memory mem;
    /* Monotonic deadline (ns, uv_hrtime clock) of the bounded Lua call that
     * is running now, or 0 when the running code is the runtime's own. */
    uint64_t lua_deadline_ns;
    int lua_deadline_hit; /* set once the hook fired for this call */
    int shutting_down;
    int log_level;        /* JR_LOG_* */
    uv_signal_t sigterm, sigint, sighup;
};

enum { JR_LOG_DEBUG, JR_LOG_INFO, JR_LOG_WARN, JR_LOG_ERROR };

/* Log one line to stderr: "time level message". */
void jr_log(struct jr_loop *loop, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The context of a Lua state, stored in its main thread's extra space. */
struct jr_loop *jr_loop_of(struct lua_State *L);

/* jr_loop_of, or for a plain Lua interpreter (the rock's jobrt.core) a
 * context made on first use around luv's loop. May raise. */
struct jr_loop *jr_loop_standalone(struct lua_State *L);

#endif
