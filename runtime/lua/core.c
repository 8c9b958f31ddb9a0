/* jobrt.core: the job store and scheduler for Lua. Job tables in the core
 * model go in and come out; operational failures return nil, message, CODE.
 * This file opens and closes the C core (jr_core_open) and builds the
 * module from the functions of core_jobs.c and core_watch.c. */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/core_internal.h"

/* ---- helpers ---- */

struct core *jr_lcore_check(lua_State *L)
{
    return luaL_checkudata(L, lua_upvalueindex(1), JR_LCORE_MT);
}

struct core *jr_lcore_open(lua_State *L)
{
    struct core *c = jr_lcore_check(L);

    if (!c->core)
        luaL_error(L, "jobrt.core is not open (call core.open(cfg) first)");
    return c;
}

int jr_lcore_fail(lua_State *L, int code, const char *msg)
{
    lua_pushnil(L);
    lua_pushstring(L, msg);
    lua_pushstring(L, jr_err_name(code));
    return 3;
}

int jr_lcore_fail_err(lua_State *L, const struct jr_err *e)
{
    return jr_lcore_fail(L, e->code ? e->code : JR_E_SYSTEM, e->msg);
}

/* ---- open / close ---- */

static int64_t opt_field(lua_State *L, int idx, const char *k)
{
    int64_t v = 0;

    if (lua_getfield(L, idx, k) == LUA_TNUMBER)
        v = (int64_t)lua_tonumber(L, -1);
    lua_pop(L, 1);
    return v;
}

/* A string list field of the table at idx into a NULL-terminated array
 * of pointers into Lua strings (valid while the table is alive), in a
 * userdata left on the stack. With map, "name", "value" pairs. */
static const char **string_list(lua_State *L, int idx, const char *key, int map)
{
    const char **v;
    size_t n = 0, cap = 0;

    if (lua_getfield(L, idx, key) == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            cap += 2;
            lua_pop(L, 1);
        }
    }
    v = lua_newuserdatauv(L, (cap + 1) * sizeof *v, 0);
    lua_insert(L, -2);
    if (lua_istable(L, -1)) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            if (lua_type(L, -1) == LUA_TSTRING && (!map || lua_type(L, -2) == LUA_TSTRING)) {
                if (map)
                    v[n++] = lua_tostring(L, -2);
                v[n++] = lua_tostring(L, -1);
            }
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    v[n] = NULL;
    return v;
}

static const char *opt_string(lua_State *L, int idx, const char *k)
{
    const char *v = NULL;

    /* The string stays referenced by the table at idx. */
    if (lua_getfield(L, idx, k) == LUA_TSTRING)
        v = lua_tostring(L, -1);
    lua_pop(L, 1);
    return v;
}

static int64_t opt_ms(lua_State *L, int idx, const char *k)
{
    int64_t v = 0;

    if (lua_getfield(L, idx, k) == LUA_TNUMBER)
        v = (int64_t)(lua_tonumber(L, -1) * 1000);
    lua_pop(L, 1);
    return v;
}

/* cfg.executor with backend "slurm" into o->slurm (strings and lists stay
 * referenced by cfg; the list's array is a userdata left on the stack). */
static void slurm_opts(lua_State *L, int idx, struct jr_core_slurm_opts *o)
{
    const char *backend = opt_string(L, idx, "backend");

    if (!backend || strcmp(backend, "slurm") != 0)
        return;
    o->enabled = 1;
    o->partition = opt_string(L, idx, "partition");
    o->account = opt_string(L, idx, "account");
    o->bin = opt_string(L, idx, "bin");
    o->conf = opt_string(L, idx, "conf");
    o->poll_ms = opt_ms(L, idx, "poll");
    o->max_tasks = opt_field(L, idx, "max_tasks");
    lua_getfield(L, idx, "sandbox");
    o->sandbox = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (lua_getfield(L, idx, "batch") == LUA_TTABLE) {
        o->batch_max = (int)opt_field(L, -1, "max_tasks");
        o->batch_width = (int)opt_field(L, -1, "width");
        o->batch_window_ms = opt_ms(L, -1, "window");
        o->batch_max_cpu = opt_field(L, -1, "max_cpu");
        o->batch_max_memory = opt_field(L, -1, "max_memory");
    }
    lua_pop(L, 1);
    o->sbatch_args = string_list(L, idx, "sbatch_args", 0);
}

/* The hosts of cfg.images.registries when images.pull is on_demand, as a
 * NULL-terminated array in a userdata left on the stack; NULL if none. */
static const char *const *pull_hosts(lua_State *L, int images)
{
    const char **v;
    size_t n;
    int regs;

    lua_getfield(L, images, "pull");
    if (!lua_isstring(L, -1) || strcmp(lua_tostring(L, -1), "on_demand") != 0) {
        lua_pop(L, 1);
        return NULL;
    }
    lua_pop(L, 1);
    if (lua_getfield(L, images, "registries") != LUA_TTABLE) {
        lua_pop(L, 1);
        return NULL;
    }
    regs = lua_gettop(L);
    n = lua_rawlen(L, regs);
    v = lua_newuserdatauv(L, (n + 1) * sizeof *v, 1);
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, regs, (lua_Integer)i + 1);
        lua_getfield(L, -1, "host");
        v[i] = lua_tostring(L, -1);
        /* the strings live in the config table, which the caller keeps */
        lua_pop(L, 2);
    }
    v[n] = NULL;
    lua_remove(L, regs);
    return v;
}

/* open(cfg): cfg.data_dir, cfg.node {cpu, memory, gpu, max_tasks},
 * cfg.kill_grace (seconds), cfg.sandbox {network, require, images,
 * allow_host_paths, orphan_timeout (seconds)} (the daemon's normalised
 * config always has one; without it, embedders and tests, tasks run with
 * plain spawn), cfg.store {backend, url, timeout, heartbeat, failover,
 * address} (seconds; backend "postgres" opens url), cfg.shutdown.tasks ("keep": close leaves sandboxed tasks
 * running for the next daemon; else, and without it, close kills them),
 * cfg.executor {backend = "slurm", partition, account, bin, conf,
 * sbatch_args, poll (seconds), max_tasks, sandbox (with cfg.sandbox's
 * options then), batch {max_tasks, width, window (seconds), max_cpu,
 * max_memory}} (tasks run as Slurm jobs). The strings stay on the stack
 * while jr_core_open copies what it keeps. */
static int l_open(lua_State *L)
{
    struct core *c = jr_lcore_check(L);
    struct jr_core_opts o;
    struct jr_err e = { 0, "" };

    luaL_checktype(L, 1, LUA_TTABLE);
    if (c->core)
        return jr_lcore_fail(L, JR_E_CONFLICT, "jobrt.core is already open");
    memset(&o, 0, sizeof o);
    o.loop = jr_loop_of(L);
    lua_getfield(L, 1, "data_dir");
    o.data_dir = luaL_optstring(L, -1, "./jobrt-data");
    o.node.gpu = -1;
    if (lua_getfield(L, 1, "node") == LUA_TTABLE) {
        o.node.cpu = opt_field(L, -1, "cpu");
        o.node.memory = opt_field(L, -1, "memory");
        if (lua_getfield(L, -1, "gpu") == LUA_TNUMBER)
            o.node.gpu = (int64_t)lua_tonumber(L, -1);
        lua_pop(L, 1);
        o.node.max_tasks = opt_field(L, -1, "max_tasks");
    }
    o.kill_grace_ms = (int64_t)(opt_field(L, 1, "kill_grace") * 1000);
    if (lua_getfield(L, 1, "sandbox") == LUA_TTABLE) {
        int sb = lua_gettop(L);
        o.sandbox.enabled = 1;
        lua_getfield(L, sb, "network");
        o.sandbox.network = lua_tostring(L, -1);
        o.sandbox.require = string_list(L, sb, "require", 0);
        o.sandbox.images = string_list(L, sb, "images", 1);
        o.sandbox.allow_host_paths = string_list(L, sb, "allow_host_paths", 0);
        if (lua_getfield(L, sb, "orphan_timeout") == LUA_TNUMBER)
            o.sandbox.orphan_timeout_ms = lua_tonumber(L, -1) > 0
                ? (int64_t)(lua_tonumber(L, -1) * 1000) : -1;
        lua_pop(L, 1);
    }
    if (lua_getfield(L, 1, "store") == LUA_TTABLE) {
        int sti = lua_gettop(L);
        if (lua_getfield(L, sti, "backend") == LUA_TSTRING &&
            strcmp(lua_tostring(L, -1), "postgres") == 0) {
            lua_getfield(L, sti, "url");
            o.store.url = lua_tostring(L, -1);
        }
        o.store.timeout_ms = (int64_t)(opt_field(L, sti, "timeout") * 1000);
        o.store.heartbeat_ms = (int64_t)(opt_field(L, sti, "heartbeat") * 1000);
        o.store.failover_ms = (int64_t)(opt_field(L, sti, "failover") * 1000);
        lua_getfield(L, sti, "address");
        o.store.address = lua_tostring(L, -1);
    }
    if (lua_getfield(L, 1, "executor") == LUA_TTABLE)
        slurm_opts(L, lua_gettop(L), &o.slurm);
    if (lua_getfield(L, 1, "images") == LUA_TTABLE) {
        const char *root;
        lua_getfield(L, -1, "root");
        root = lua_tostring(L, -1);
        o.images.root = root && !strcmp(root, "overlay") ? JR_IMAGE_ROOT_OVERLAY
                      : root && !strcmp(root, "copy") ? JR_IMAGE_ROOT_COPY : JR_IMAGE_ROOT_AUTO;
        lua_pop(L, 1);
        o.images.max_image = (int64_t)opt_field(L, -1, "max_image_size");
        o.images.max_total = (int64_t)opt_field(L, -1, "max_store_size");
        /* The table and the hosts' array stay on the stack until the open. */
        o.images.pull_hosts = pull_hosts(L, lua_gettop(L));
    } else {
        lua_pop(L, 1);
    }
    if (lua_getfield(L, 1, "shutdown") == LUA_TTABLE) {
        lua_getfield(L, -1, "tasks");
        o.keep_tasks = lua_type(L, -1) == LUA_TSTRING &&
                       strcmp(lua_tostring(L, -1), "keep") == 0;
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    if (jr_core_open(&o, &c->core, &e))
        return jr_lcore_fail_err(L, &e);
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    c->L = lua_tothread(L, -1);
    lua_pop(L, 1);
    lua_pushboolean(L, 1);
    return 1;
}

static void core_shut(struct core *c)
{
    jr_core_close(c->core);
    c->core = NULL;
}

static int l_close(lua_State *L)
{
    core_shut(jr_lcore_check(L));
    lua_pushboolean(L, 1);
    return 1;
}

static int core_gc(lua_State *L)
{
    struct core *c = luaL_checkudata(L, 1, JR_LCORE_MT);

    core_shut(c);
    free(c->scratch);
    free(c->answer);
    c->scratch = c->answer = NULL;
    return 0;
}

static int core_tostring(lua_State *L)
{
    struct core *c = luaL_checkudata(L, 1, JR_LCORE_MT);

    lua_pushfstring(L, "jobrt.core (%s)", c->core ? "open" : "closed");
    return 1;
}

static int l_node(lua_State *L)
{
    struct core *c = jr_lcore_open(L);
    const struct jr_node *n = jr_sched_node(c->core->sched);
    int64_t running, ready, jobs;

    jr_sched_stats(c->core->sched, &running, &ready, &jobs);
    /* No count of the stored jobs here (core.count() gives it): counting
     * reads every row, seconds at ten million, and node() is polled (the
     * daemon's shutdown asks it until no task runs). */
    lua_createtable(L, 0, 7);
    jr_lcore_set_int(L, "cpu", n->cpu);
    jr_lcore_set_int(L, "memory", n->memory);
    jr_lcore_set_int(L, "gpu", n->gpu);
    jr_lcore_set_int(L, "max_tasks", n->max_tasks);
    jr_lcore_set_int(L, "running", running);
    jr_lcore_set_int(L, "ready", ready);
    jr_lcore_set_int(L, "active_jobs", jobs);
    return 1;
}

/* stop_tasks(): shutdown.tasks = stop. Nothing starts any more; running
 * tasks are stopped (their grace applies) and go back to ready for the
 * next start. Returns how many still run; node().running says when none
 * is left. */
static int l_stop_tasks(lua_State *L)
{
    struct core *c = jr_lcore_open(L);

    lua_pushinteger(L, (lua_Integer)jr_sched_stop_all(c->core->sched));
    return 1;
}

static int l_is_open(lua_State *L)
{
    lua_pushboolean(L, jr_lcore_check(L)->core != NULL);
    return 1;
}

static const luaL_Reg core_funcs[] = {
    { "open", l_open },
    { "close", l_close },
    { "is_open", l_is_open },
    { "node", l_node },
    { "stop_tasks", l_stop_tasks },
    { NULL, NULL },
};

int luaopen_jobrt_core(lua_State *L)
{
    struct core *c;

    jr_loop_standalone(L);
    jr_lcore_watch_class(L);
    jr_lua_class(L, JR_LCORE_MT, NULL, core_gc, core_tostring);
    c = lua_newuserdatauv(L, sizeof *c, 0);
    memset(c, 0, sizeof *c);
    luaL_setmetatable(L, JR_LCORE_MT);
    /* every function has the core as upvalue 1 */
    lua_newtable(L);
    lua_pushvalue(L, -2);
    luaL_setfuncs(L, jr_lcore_job_funcs, 1);
    lua_pushvalue(L, -2);
    luaL_setfuncs(L, jr_lcore_wait_funcs, 1);
    lua_pushvalue(L, -2);
    luaL_setfuncs(L, jr_lcore_metrics_funcs, 1);
    lua_pushvalue(L, -2);
    luaL_setfuncs(L, jr_lcore_body_funcs, 1);
    lua_pushvalue(L, -2);
    luaL_setfuncs(L, core_funcs, 1);
    lua_remove(L, -2);
    return 1;
}
