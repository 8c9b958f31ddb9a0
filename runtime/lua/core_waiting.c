/* jobrt.core: why a job and its tasks wait, added to the job tables read
 * back as `waiting = {reason, message, resources?, dependencies?,
 * behind?}`: from the scheduler's memory for queued and running jobs
 * (Dependency, Resources, MaxParallelism, Priority), from the job's state
 * for the others (Approval, with the policy's reason from the job's event;
 * Held for created and suspended jobs). */
#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

#include "lua/core_internal.h"
#include "lua/json.h"

/* Push {"cpu", "memory", ...} for the JR_WAIT_* bits in res. */
static void push_resources(lua_State *L, unsigned res, char *text, size_t size)
{
    int n = 0;
    size_t off = 0;

    lua_newtable(L);
    text[0] = 0;
    for (unsigned bit = 1; bit <= JR_WAIT_MAX_TASKS; bit <<= 1) {
        const char *name = jr_wait_resource_name(bit);
        if (!(res & bit) || !name)
            continue;
        lua_pushstring(L, name);
        lua_rawseti(L, -2, ++n);
        off += (size_t)snprintf(text + off, off < size ? size - off : 0, "%s%s",
                                n > 1 ? ", " : "", name);
    }
    jr_json_array(L, -1);
}

/* Push the waiting table of w; max_par is the job's, for the message. */
static void push_wait(lua_State *L, const struct jr_wait *w, int64_t max_par)
{
    char msg[600], list[200];
    size_t off = 0;

    lua_createtable(L, 0, 4);
    lua_pushstring(L, jr_wait_reason_name(w->reason));
    lua_setfield(L, -2, "reason");
    switch (w->reason) {
    case JR_WAIT_DEPENDENCY:
        lua_createtable(L, w->ndeps, 0);
        off = (size_t)snprintf(msg, sizeof msg, "waits for %s ", w->ndeps + w->more_deps > 1
                               ? "tasks" : "task");
        for (int i = 0; i < w->ndeps; i++) {
            lua_pushstring(L, w->deps[i]);
            lua_rawseti(L, -2, i + 1);
            if (off < sizeof msg)
                off += (size_t)snprintf(msg + off, sizeof msg - off, "%s%s", i ? ", " : "",
                                        w->deps[i]);
        }
        if (w->more_deps && off < sizeof msg)
            snprintf(msg + off, sizeof msg - off, " and %d more", w->more_deps);
        jr_json_array(L, -1);
        lua_setfield(L, -2, "dependencies");
        break;
    case JR_WAIT_RESOURCES:
        push_resources(L, w->resources, list, sizeof list);
        lua_setfield(L, -2, "resources");
        if (w->resources == JR_WAIT_MAX_TASKS)
            snprintf(msg, sizeof msg, "waits for a free task slot (node.max_tasks)");
        else
            snprintf(msg, sizeof msg, "waits for the node's %s to be free", list);
        break;
    case JR_WAIT_MAX_PARALLELISM:
        snprintf(msg, sizeof msg, "its job runs as many tasks as its max_parallelism (%lld)"
                 " allows", (long long)max_par);
        break;
    case JR_WAIT_PRIORITY:
        push_resources(L, w->resources, list, sizeof list);
        lua_setfield(L, -2, "resources");
        if (w->behind) {
            lua_pushstring(L, w->behind);
            lua_setfield(L, -2, "behind");
        }
        snprintf(msg, sizeof msg, "behind job %s, ahead in the queue (by priority, then"
                 " age), which waits for the node's %s first", w->behind ? w->behind : "(gone)",
                 list);
        break;
    default:
        msg[0] = 0;
    }
    lua_pushstring(L, msg);
    lua_setfield(L, -2, "message");
}

struct annotate {
    lua_State *L;
    int job, tasks;          /* stack indexes; tasks 0 without a task list */
    int64_t max_par;
};

static void on_wait(void *arg, int idx, const struct jr_wait *w)
{
    struct annotate *a = arg;
    lua_State *L = a->L;

    if (idx < 0) {
        push_wait(L, w, a->max_par);
        lua_setfield(L, a->job, "waiting");
        return;
    }
    if (!a->tasks || lua_rawgeti(L, a->tasks, (lua_Integer)idx + 1) != LUA_TTABLE) {
        if (a->tasks)
            lua_pop(L, 1);
        return;
    }
    push_wait(L, w, a->max_par);
    lua_setfield(L, -2, "waiting");
    lua_pop(L, 1);
}

struct last_hold {
    char message[512];
};

/* The message of the job's latest move to awaiting_approval: "awaiting
 * approval (policy: its reason)", as the submission pipeline words it. */
static int find_hold(void *arg, const struct jr_event_rec *ev)
{
    struct last_hold *h = arg;

    if (ev->type && strcmp(ev->type, "job") == 0 && ev->state &&
        strcmp(ev->state, "awaiting_approval") == 0)
        snprintf(h->message, sizeof h->message, "%s", ev->message ? ev->message : "");
    return 0;
}

/* Set waiting on the job table at index job (and on its pending and ready
 * tasks when it has a task list) for a job not in the scheduler's memory. */
static void by_state(lua_State *L, struct core *c, int job, int tasks, const char *id,
                     const char *state)
{
    struct last_hold h = { "" };
    struct jr_err e = { 0, "" };
    int n;

    if (strcmp(state, "awaiting_approval") == 0) {
        jr_store_job_events(c->core->store, id, 0, 0, find_hold, &h, &e);
        lua_createtable(L, 0, 2);
        lua_pushliteral(L, "Approval");
        lua_setfield(L, -2, "reason");
        lua_pushstring(L, h.message[0] ? h.message : "awaiting approval");
        lua_setfield(L, -2, "message");
    } else if (strcmp(state, "created") == 0 || strcmp(state, "suspended") == 0) {
        lua_createtable(L, 0, 2);
        lua_pushliteral(L, "Held");
        lua_setfield(L, -2, "reason");
        /* short: every plain submit's answer carries it, for the job and
         * each task */
        if (state[0] == 'c')
            lua_pushliteral(L, "not started yet");
        else
            lua_pushliteral(L, "suspended");
        lua_setfield(L, -2, "message");
    } else {
        return;
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, job, "waiting");
    n = tasks ? (int)lua_rawlen(L, tasks) : 0;
    for (int i = 1; i <= n; i++) {
        if (lua_rawgeti(L, tasks, i) == LUA_TTABLE) {
            lua_getfield(L, -1, "state");
            const char *ts = lua_tostring(L, -1);
            int waits = ts && (strcmp(ts, "pending") == 0 || strcmp(ts, "ready") == 0);
            lua_pop(L, 1);
            if (waits) {
                lua_pushvalue(L, -2);
                lua_setfield(L, -2, "waiting");
            }
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

void jr_lcore_set_waiting(lua_State *L, struct core *c, int job)
{
    struct annotate a = { L, lua_absindex(L, job), 0, 0 };
    const char *id, *state;
    int top = lua_gettop(L);

    if (!c->core)
        return;
    lua_getfield(L, a.job, "id");
    lua_getfield(L, a.job, "state");
    lua_getfield(L, a.job, "max_parallelism");
    a.max_par = lua_tointeger(L, -1);
    if (lua_getfield(L, a.job, "tasks") == LUA_TTABLE)
        a.tasks = lua_gettop(L);
    id = lua_tostring(L, top + 1);
    state = lua_tostring(L, top + 2);
    if (id && state) {
        if (strcmp(state, "queued") == 0 || strcmp(state, "running") == 0)
            jr_sched_waiting(c->core->sched, id, on_wait, &a);
        else
            by_state(L, c, a.job, a.tasks, id, state);
    }
    lua_settop(L, top);
}
