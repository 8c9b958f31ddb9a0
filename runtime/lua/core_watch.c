/* jobrt.core: waiting on the store. durable() waits for the group commit
 * holding the caller's writes; watchers read the event sequence and wait
 * for the next event. Both suspend the running coroutine. */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/core_internal.h"
#include "lua/json.h"

/* ---- commit waits ---- */

/* One wait for the next commit, owned by the store's list until it fires or
 * is cancelled; wake_ref is the jr_lua_wait wake function. */
struct commit_wait {
    struct jr_store_waiter w;
    lua_State *L;
    int wake_ref;
};

static void on_commit(struct jr_store_waiter *w, int status)
{
    struct commit_wait *cw = (struct commit_wait *)w;
    lua_State *L = cw->L;
    int ref = cw->wake_ref;

    free(cw);
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
    if (status == 0) {
        lua_pushboolean(L, 1);
        jr_pcall(L, 1, 0);
    } else {
        lua_pushnil(L);
        lua_pushstring(L, "the store could not commit");
        jr_pcall(L, 2, 0);
    }
}

/* The register function given to jr_lua_wait: upvalue 1 is the core. */
static int register_commit(lua_State *L)
{
    struct core *c = luaL_checkudata(L, lua_upvalueindex(1), JR_LCORE_MT);
    struct commit_wait *cw;
    int ref;

    luaL_checktype(L, 1, LUA_TFUNCTION);
    if (!c->core) {
        lua_pushvalue(L, 1);
        lua_pushnil(L);
        lua_pushliteral(L, "the store is closed");
        lua_call(L, 2, 0);
        return 0;
    }
    /* take the reference first: nothing may raise once cw is allocated */
    lua_pushvalue(L, 1);
    ref = luaL_ref(L, LUA_REGISTRYINDEX);
    cw = malloc(sizeof *cw);
    if (!cw) {
        luaL_unref(L, LUA_REGISTRYINDEX, ref);
        return luaL_error(L, "out of memory");
    }
    cw->wake_ref = ref;
    cw->L = c->L;
    cw->w.cb = on_commit;
    jr_store_wait(c->core->store, &cw->w);
    return 0;
}

static int results_k(lua_State *L, int status, lua_KContext base)
{
    (void)status;
    return lua_gettop(L) - (int)base;
}


/* durable() -> true | nil, err: wait for the commit holding our writes. */
static int l_durable(lua_State *L)
{
    struct core *c = jr_lcore_check(L);
    int base;

    if (!c->core || !jr_store_pending(c->core->store)) {
        lua_pushboolean(L, 1);
        return 1;
    }
    if (!lua_isyieldable(L)) {
        if (jr_store_commit(c->core->store))
            return jr_lcore_fail(L, JR_E_STORE, "the store could not commit");
        lua_pushboolean(L, 1);
        return 1;
    }
    base = lua_gettop(L);
    lua_pushcfunction(L, jr_lua_wait);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushcclosure(L, register_commit, 1);
    lua_callk(L, 1, LUA_MULTRET, base, results_k);
    return results_k(L, LUA_OK, base);
}

/* ---- events and watch ---- */

static void push_event(lua_State *L, const struct jr_event_rec *ev)
{
    lua_createtable(L, 0, 7);
    jr_lcore_set_int(L, "seq", ev->seq);
    jr_lcore_set_time(L, "time", ev->time);
    jr_lcore_set_str(L, "job", ev->job);
    jr_lcore_set_str(L, "task", ev->task);
    jr_lcore_set_str(L, "type", ev->type);
    jr_lcore_set_str(L, "state", ev->state);
    jr_lcore_set_str(L, "message", ev->message);
}

static int event_row(void *arg, const struct jr_event_rec *ev)
{
    struct push_ctx *p = arg;

    push_event(p->L, ev);
    p->last = ev->seq;
    lua_rawseti(p->L, -2, ++p->n);
    return 0;
}

/* events(after, limit[, job]) -> list, last_seq: every job's events, or
 * one job's. */
static int l_events(lua_State *L)
{
    struct core *c = jr_lcore_open(L);
    struct push_ctx p = { L, 0, 0, 0, 0 };
    struct jr_err e = { 0, "" };
    int64_t after = (int64_t)luaL_optinteger(L, 1, 0);
    int64_t limit = (int64_t)luaL_optinteger(L, 2, 100);
    const char *job = luaL_optstring(L, 3, NULL);
    int rc;

    if (limit < 1 || limit > JR_LCORE_LIST_MAX)
        limit = limit < 1 ? 1 : JR_LCORE_LIST_MAX;
    lua_settop(L, 3);
    lua_newtable(L);
    p.last = after;
    rc = job ? jr_store_job_events(c->core->store, job, after, limit, event_row, &p, &e)
             : jr_store_events_recent(c->core->store, after, limit, event_row, &p, &e);
    if (rc)
        return jr_lcore_fail_err(L, &e);
    jr_json_array(L, -1);
    lua_pushinteger(L, p.last);
    return 2;
}

struct watch_timer {
    uv_timer_t h;
    struct watch *w;       /* NULL once the watcher let go */
};

/* A watcher: its position in the event sequence, and while waiting, one
 * commit waiter, one timer and the wake function's registry ref. */
struct watch {
    struct core *c;
    struct watch *next, **prevp; /* in c->waiting while waiting */
    int core_ref;          /* keeps the core alive */
    int64_t after;
    struct jr_store_waiter w;
    struct watch_timer *timer;
    int wake_ref;
    lua_State *L;
    /* The events it wants (watch's filter): of this type only ("" = any),
     * none whose state is among skip (a bit per job state). */
    char type[16];
    unsigned skip;
};

/* The watcher wants ev. */
static int wanted(const struct watch *w, const struct jr_event_rec *ev)
{
    if (w->type[0] && (!ev->type || strcmp(ev->type, w->type) != 0))
        return 0;
    if (w->skip && ev->state)
        for (int i = 0; jr_job_state_name(i); i++)
            if ((w->skip >> i & 1) && strcmp(ev->state, jr_job_state_name(i)) == 0)
                return 0;
    return 1;
}

/* The first event after the watcher's position that it wants: pushed
 * (with L) and its position moved onto it; the events passed over move
 * its position too. */
struct pick {
    struct watch *w;
    lua_State *L;          /* NULL: only find out */
    int found;
    int64_t seen;
};

static int pick_row(void *arg, const struct jr_event_rec *ev)
{
    struct pick *p = arg;

    p->seen = ev->seq;
    if (!wanted(p->w, ev))
        return 0;
    p->found = 1;
    if (p->L)
        push_event(p->L, ev);
    return 1;
}

#define PICK_BATCH 256

static int pick(struct watch *w, struct jr_store *st, lua_State *L)
{
    struct pick p = { w, L, 0, 0 };

    for (;;) {
        p.seen = w->after;
        if (jr_store_events_recent(st, w->after, PICK_BATCH, pick_row, &p, NULL) ||
            p.seen == w->after)
            return 0;
        w->after = p.seen;
        if (p.found)
            return 1;
    }
}

static void on_watch_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void watch_unlink(struct watch *w)
{
    if (!w->prevp)
        return;
    *w->prevp = w->next;
    if (w->next)
        w->next->prevp = w->prevp;
    w->next = NULL;
    w->prevp = NULL;
}

/* Stops waiting: off the core's list and the store's waiters, the timer
 * closed (it outlives us only until its close callback). */
static void watch_detach(struct watch *w)
{
    watch_unlink(w);
    jr_store_unwait(&w->w);
    if (w->timer) {
        w->timer->w = NULL;
        uv_close((uv_handle_t *)&w->timer->h, on_watch_timer_closed);
        w->timer = NULL;
    }
}

static void watch_settle(struct watch *w, int woke_by_commit)
{
    lua_State *L = w->L;
    int ref = w->wake_ref;

    watch_detach(w);
    w->wake_ref = LUA_NOREF;
    if (ref == LUA_NOREF)
        return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
    lua_pushboolean(L, woke_by_commit);
    jr_pcall(L, 1, 0);
}

/* Is there an event the filtered watcher wants? Its position moves over
 * the events it does not (the next read starts at the one it wants). */
static int peek(struct watch *w, struct jr_store *st)
{
    int64_t at = w->after;
    struct pick p = { w, NULL, 0, 0 };

    for (;;) {
        p.seen = at;
        if (jr_store_events_recent(st, at, PICK_BATCH, pick_row, &p, NULL) || p.seen == at)
            return 0;
        if (p.found) {
            w->after = at;
            return 1;
        }
        w->after = at = p.seen;
    }
}

static void on_watch_commit(struct jr_store_waiter *sw, int status)
{
    struct watch *w = (struct watch *)((char *)sw - offsetof(struct watch, w));
    struct jr_store *st = w->c->core ? w->c->core->store : NULL;

    /* A commit without a new event (log lines, usage) need not resume the
     * watcher's coroutine: it waits on for the next one, its timer running. */
    if (status == 0 && st && (w->after >= jr_store_events_last(st) ||
                              ((w->type[0] || w->skip) && !peek(w, st)))) {
        jr_store_wait(st, &w->w);
        return;
    }
    watch_settle(w, status == 0);
}

static void on_watch_timeout(uv_timer_t *h)
{
    struct watch_timer *t = h->data;

    if (t->w)
        watch_settle(t->w, 0);
}

static struct watch *check_watch(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, JR_LCORE_WATCH_MT);
}

/* register(wake) for jr_lua_wait: upvalue 1 is the watcher, upvalue 2 the
 * timeout in ms (0 = none). */
static int register_watch(lua_State *L)
{
    struct watch *w = check_watch(L, lua_upvalueindex(1));
    lua_Integer ms = lua_tointeger(L, lua_upvalueindex(2));

    luaL_checktype(L, 1, LUA_TFUNCTION);
    if (!w->c->core) {
        lua_pushvalue(L, 1);
        lua_pushboolean(L, 0);
        lua_call(L, 1, 0);
        return 0;
    }
    lua_pushvalue(L, 1);
    w->wake_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    w->L = w->c->L;
    w->next = w->c->waiting;
    w->prevp = &w->c->waiting;
    if (w->next)
        w->next->prevp = &w->next;
    w->c->waiting = w;
    w->w.cb = on_watch_commit;
    jr_store_wait(w->c->core->store, &w->w);
    if (ms > 0) {
        w->timer = calloc(1, sizeof *w->timer);
        if (w->timer) {
            uv_timer_init(jr_loop_of(L)->uv, &w->timer->h);
            w->timer->h.data = w->timer;
            w->timer->w = w;
            uv_timer_start(&w->timer->h, on_watch_timeout, (uint64_t)ms, 0);
        }
    }
    return 0;
}

static int watch_next_k(lua_State *L, int status, lua_KContext ctx);

/* w:next([timeout_ms]) -> event | nil (timed out, or closed) | nil,
 * "stopping" (core.stop_watchers: the daemon is stopping). Without a
 * timeout it waits for the next event; with 0 it does not wait. */
static int watch_next(lua_State *L)
{
    check_watch(L, 1);
    lua_settop(L, 2);
    return watch_next_k(L, LUA_OK, 0);
}

static int watch_next_k(lua_State *L, int status, lua_KContext ctx)
{
    struct watch *w = check_watch(L, 1);
    lua_Integer ms = luaL_optinteger(L, 2, 0);

    (void)status;
    if (w->c->watch_stopped) {
        lua_pushnil(L);
        lua_pushliteral(L, "stopping");
        return 2;
    }
    if (ctx) {
        /* back from a wait: its result is at the top */
        int by_commit = lua_toboolean(L, -1);
        lua_settop(L, 2);
        if (!by_commit)
            return 0;
    }
    if (!w->c->core)
        return 0;
    /* from the store's ring: hundreds of watchers share one read */
    if (pick(w, w->c->core->store, L))
        return 1;
    /* next(0) does not wait; nor can code outside a coroutine */
    if (!lua_isyieldable(L) || (!lua_isnoneornil(L, 2) && ms == 0))
        return 0;
    lua_pushcfunction(L, jr_lua_wait);
    lua_pushvalue(L, 1);
    lua_pushinteger(L, ms);
    lua_pushcclosure(L, register_watch, 2);
    lua_callk(L, 1, 1, 1, watch_next_k);
    return watch_next_k(L, LUA_OK, 1);
}

static int watch_close(lua_State *L)
{
    struct watch *w = check_watch(L, 1);

    if (w->wake_ref != LUA_NOREF) {
        luaL_unref(L, LUA_REGISTRYINDEX, w->wake_ref);
        w->wake_ref = LUA_NOREF;
    }
    watch_detach(w);
    if (w->core_ref != LUA_NOREF) {
        luaL_unref(L, LUA_REGISTRYINDEX, w->core_ref);
        w->core_ref = LUA_NOREF;
    }
    return 0;
}

static int watch_tostring(lua_State *L)
{
    lua_pushfstring(L, "jobrt.core.watch (after %I)", (lua_Integer)check_watch(L, 1)->after);
    return 1;
}

static int watch_position(lua_State *L)
{
    lua_pushinteger(L, check_watch(L, 1)->after);
    return 1;
}

/* watch([after[, filter]]) -> watcher; after defaults to the last event
 * now. filter {type = "job", skip = {states}}: only events of that type,
 * none whose state is listed (job states); the others never wake it. */
static int l_watch(lua_State *L)
{
    struct core *c = jr_lcore_open(L);
    int64_t after = lua_isnoneornil(L, 1) ? jr_store_events_last(c->core->store)
                  : (int64_t)luaL_checkinteger(L, 1);
    struct watch *w;
    const char *type = NULL;
    unsigned skip = 0;

    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        if (lua_getfield(L, 2, "type") != LUA_TNIL) {
            type = luaL_checkstring(L, -1);
            luaL_argcheck(L, strlen(type) < sizeof w->type, 2, "type: too long");
        }
        if (lua_getfield(L, 2, "skip") != LUA_TNIL) {
            luaL_checktype(L, -1, LUA_TTABLE);
            for (lua_Integer k = 1; lua_rawgeti(L, -1, k) != LUA_TNIL; k++) {
                const char *state = luaL_checkstring(L, -1);
                int i = 0;
                while (jr_job_state_name(i) && strcmp(jr_job_state_name(i), state) != 0)
                    i++;
                if (!jr_job_state_name(i))
                    return luaL_error(L, "watch: skip: unknown job state '%s'", state);
                skip |= 1u << i;
                lua_pop(L, 1);
            }
            lua_pop(L, 1);
        }
    }
    w = lua_newuserdatauv(L, sizeof *w, 0);
    memset(w, 0, sizeof *w);
    if (type)
        strcpy(w->type, type);
    w->skip = skip;
    w->wake_ref = LUA_NOREF;
    w->core_ref = LUA_NOREF;
    w->c = c;
    w->after = after;
    luaL_setmetatable(L, JR_LCORE_WATCH_MT);
    lua_pushvalue(L, lua_upvalueindex(1));
    w->core_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 1;
}

/* stop_watchers(): every watcher's next() returns nil, "stopping" from
 * now on, those waiting at once; so that event streams end when the
 * daemon stops instead of holding it for its whole shutdown grace. */
static int l_stop_watchers(lua_State *L)
{
    struct core *c = jr_lcore_check(L);

    c->watch_stopped = 1;
    while (c->waiting)
        watch_settle(c->waiting, 0);
    return 0;
}

static const luaL_Reg watch_methods[] = {
    { "next", watch_next },
    { "close", watch_close },
    { "position", watch_position },
    { NULL, NULL },
};

void jr_lcore_watch_class(lua_State *L)
{
    jr_lua_class(L, JR_LCORE_WATCH_MT, watch_methods, watch_close, watch_tostring);
}

const luaL_Reg jr_lcore_wait_funcs[] = {
    { "durable", l_durable },
    { "events", l_events },
    { "watch", l_watch },
    { "stop_watchers", l_stop_watchers },
    { NULL, NULL },
};
