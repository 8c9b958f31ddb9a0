/* What the files of the jobrt.core binding share: the core userdata, the
 * conversion scratch, row pushing and the error convention. Not included
 * outside runtime/lua/. */
#ifndef JR_LUA_CORE_INTERNAL_H
#define JR_LUA_CORE_INTERNAL_H

#include <lauxlib.h>
#include <stdint.h>

#include "core.h"
#include "lua/runtime.h"

#define JR_LCORE_MT "jobrt.core"
#define JR_LCORE_WATCH_MT "jobrt.core.watch"
#define JR_LCORE_LIST_MAX 1000

struct watch;

/* The module's state, upvalue 1 of every jobrt.core function. */
struct core {
    struct jr_core *core;  /* NULL while closed */
    lua_State *L;          /* main thread: callbacks call Lua from here */
    struct watch *waiting; /* watchers waiting for an event */
    int watch_stopped;     /* stop_watchers(): next() ends at once */
    /* submit_body's scratch (core_body.c), kept for the next call: no
     * collector work per submit; freed with the module */
    char *scratch;
    size_t scratch_cap;
    char *answer;          /* the submit answer's text (core_answer.c), kept too */
    size_t answer_cap;
};

/* Conversion scratch: Lua strings referenced from the anchor table stay
 * alive (and in place) for the whole call; arrays are userdata, so nothing
 * leaks if a Lua error cuts the call short. */
struct conv {
    lua_State *L;
    int anchor;            /* stack index of the anchor table */
    int kept;              /* stack index of a list receiving the tables
                            * encoded for the store (job attrs, then each
                            * task's), or 0 */
    char err[256];
};

struct push_ctx {
    lua_State *L;
    int single;        /* one row: leave it on the stack */
    int n;             /* rows pushed into the list at the top */
    int64_t last, prev;
};

/* core.c: the core of upvalue 1; jr_lcore_open raises when it is closed. */
struct core *jr_lcore_check(lua_State *L);
struct core *jr_lcore_open(lua_State *L);
/* nil, msg, CODE: the operational-failure convention. Returns 3. */
int jr_lcore_fail(lua_State *L, int code, const char *msg);
int jr_lcore_fail_err(lua_State *L, const struct jr_err *e);

/* core_push.c: JSON with the C codec; rows as tables. */
void jr_lcore_push_time(lua_State *L, int64_t ms);
int jr_lcore_encode(lua_State *L);
void jr_lcore_push_json(lua_State *L, const char *text);
int jr_lcore_level_of(lua_State *L, int idx, int64_t def);
const char *jr_lcore_level_name(int64_t level);
void jr_lcore_set_int(lua_State *L, const char *k, int64_t v);
void jr_lcore_set_str(lua_State *L, const char *k, const char *v);
void jr_lcore_set_time(lua_State *L, const char *k, int64_t ms);
int jr_lcore_job_row(void *arg, const struct jr_job_rec *j);
int jr_lcore_push_full_job(lua_State *L, struct core *c, const char *id);
void jr_lcore_push_submitted_job(lua_State *L, const struct jr_job_spec *spec, const char *id,
                                 int kept);
int64_t jr_lcore_seq_of(struct core *c, const char *id, struct jr_err *e);
/* core_answer.c: push the JSON text of the job jr_sched_submit just stored
 * from spec (created_at set): what encoding push_submitted_job's table,
 * waiting reasons included, gives. May raise (memory). */
void jr_lcore_push_submitted_json(lua_State *L, struct core *c, const struct jr_job_spec *spec,
                                  const char *id);

/* core_waiting.c: set `waiting` on the job table at idx and on its tasks
 * (Lua tables as push_full_job makes them) that wait. May raise (memory). */
void jr_lcore_set_waiting(lua_State *L, struct core *c, int idx);

/* core_conv.c: the job table at idx -> spec (strings anchored in cv's
 * table). what (may be NULL) receives the JR_UPD_* mask of the fields
 * present. -1 with cv->err on a bad field. */
int jr_lcore_conv_job(struct conv *cv, int idx, struct jr_job_spec *spec, int *what);

/* core_jobs.c, core_watch.c: the module's functions by concern. */
extern const luaL_Reg jr_lcore_job_funcs[];
extern const luaL_Reg jr_lcore_wait_funcs[];
/* core_body.c: submit_body, a native document from its JSON text. */
extern const luaL_Reg jr_lcore_body_funcs[];
/* core_metrics.c: metrics, rejected. */
extern const luaL_Reg jr_lcore_metrics_funcs[];
/* core_watch.c: the watcher's metatable. */
void jr_lcore_watch_class(lua_State *L);

#endif
