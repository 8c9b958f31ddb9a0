/* jobrt.core: Lua job tables -> C job specs (struct jr_job_spec), one pass
 * over the table: the scheduler's fields, what the executor reads (struct
 * jr_task_setup) and the JSON to store; every bad field named. */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/core_internal.h"
#include "lua/json.h"

/* ---- Lua tables -> specs ---- */

static const char *anchor_top(struct conv *cv, size_t *len)
{
    lua_State *L = cv->L;
    const char *s = lua_tolstring(L, -1, len);

    lua_rawseti(L, cv->anchor, (lua_Integer)lua_rawlen(L, cv->anchor) + 1);
    return s;
}

static void *scratch(struct conv *cv, size_t size)
{
    void *p = lua_newuserdatauv(cv->L, size ? size : 1, 0);

    memset(p, 0, size ? size : 1);
    anchor_top(cv, NULL);
    return p;
}

static int bad(struct conv *cv, const char *fmt, const char *a, const char *b)
{
    snprintf(cv->err, sizeof cv->err, fmt, a, b);
    return -1;
}

/* Optional string field of the table at idx. */
static int get_str(struct conv *cv, int idx, const char *key, const char **out,
                   const char *where)
{
    lua_State *L = cv->L;
    int t = lua_getfield(L, idx, key);

    *out = NULL;
    if (t == LUA_TNIL || (t == LUA_TLIGHTUSERDATA)) {
        lua_pop(L, 1);
        return 0;
    }
    if (t != LUA_TSTRING) {
        lua_pop(L, 1);
        return bad(cv, "%s%s must be a string", where, key);
    }
    *out = anchor_top(cv, NULL);
    return 0;
}

static int get_int(struct conv *cv, int idx, const char *key, int64_t *out, int64_t def,
                   const char *where)
{
    lua_State *L = cv->L;
    int t = lua_getfield(L, idx, key), isnum = 0;
    lua_Integer v;

    *out = def;
    if (t == LUA_TNIL || t == LUA_TLIGHTUSERDATA) {
        lua_pop(L, 1);
        return 0;
    }
    if (t == LUA_TBOOLEAN) {
        *out = lua_toboolean(L, -1);
        lua_pop(L, 1);
        return 0;
    }
    v = lua_tointegerx(L, -1, &isnum);
    lua_pop(L, 1);
    if (t != LUA_TNUMBER || !isnum)
        return bad(cv, "%s%s must be an integer", where, key);
    *out = v;
    return 0;
}

/* Encode the table at idx without the listed keys as JSON (the filtered
 * table goes to cv->kept when there is one). */
static int encode_without(struct conv *cv, int idx, const char *const *skip,
                          const char **out)
{
    lua_State *L = cv->L;
    size_t i;

    idx = lua_absindex(L, idx);
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        int keep = lua_type(L, -2) == LUA_TSTRING;
        for (i = 0; keep && skip[i]; i++)
            keep = strcmp(lua_tostring(L, -2), skip[i]) != 0;
        if (keep) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, -4);
        } else {
            lua_pop(L, 1);
        }
    }
    if (cv->kept) {
        lua_pushvalue(L, -1);
        lua_rawseti(L, cv->kept, (lua_Integer)lua_rawlen(L, cv->kept) + 1);
    }
    if (jr_lcore_encode(L) != 0 || !lua_isstring(L, -1)) {
        snprintf(cv->err, sizeof cv->err, "cannot encode as JSON: %s",
                 lua_isstring(L, -1) ? lua_tostring(L, -1) : "?");
        lua_pop(L, 1);
        return -1;
    }
    *out = anchor_top(cv, NULL);
    return 0;
}

/* A NUL-separated list from a Lua array of strings (or one string, run by
 * /bin/sh -c), or from a string map ("K=V"). */
static int get_list(struct conv *cv, int idx, const char *key, int map, const char **out,
                    size_t *len, const char *where)
{
    lua_State *L = cv->L;
    luaL_Buffer b;
    int t = lua_getfield(L, idx, key), n = 0;

    *out = NULL;
    *len = 0;
    if (t == LUA_TNIL || t == LUA_TLIGHTUSERDATA) {
        lua_pop(L, 1);
        return 0;
    }
    if (!map && t == LUA_TSTRING) {
        /* one string: run by the shell, as "/bin/sh\0-c\0CMD\0" */
        lua_pushliteral(L, "/bin/sh");
        lua_pushlstring(L, "\0-c\0", 4);
        lua_pushvalue(L, -3);
        lua_pushlstring(L, "\0", 1);
        lua_concat(L, 4);
        lua_remove(L, -2);
        *out = anchor_top(cv, len);
        return 0;
    }
    if (t != LUA_TTABLE) {
        lua_pop(L, 1);
        return bad(cv, "%s%s must be a list of strings", where, key);
    }
    if (map) {
        /* "K=V" strings into a list first: a luaL_Buffer may not share the
         * stack with lua_next's key and value (it grows into their slot). */
        lua_newtable(L);
        lua_pushnil(L);
        while (lua_next(L, -3)) {
            if (lua_type(L, -2) != LUA_TSTRING || !lua_isstring(L, -1)) {
                lua_pop(L, 4);
                return bad(cv, "%s%s must map names to strings", where, key);
            }
            lua_pushvalue(L, -2);
            lua_pushliteral(L, "=");
            lua_pushvalue(L, -3);
            lua_concat(L, 3);
            lua_rawseti(L, -4, ++n);
            lua_pop(L, 1);
        }
        lua_remove(L, -2);
    }
    luaL_buffinit(L, &b);
    lua_pushnil(L);
    while (!map && lua_next(L, -3)) {
        /* stack: tbl, [buffer], key, value */
        if (!lua_isinteger(L, -2) || lua_type(L, -1) != LUA_TSTRING) {
            lua_pop(L, 2);
            luaL_pushresult(&b);
            lua_pop(L, 2);
            return bad(cv, "%s%s must be a list of strings", where, key);
        }
        n++;
        lua_pop(L, 1);
    }
    if (map)
        lua_pop(L, 1);
    for (int i = 1; i <= n; i++) {
        if (lua_rawgeti(L, -2, i) != LUA_TSTRING) {
            lua_pop(L, 1);
            luaL_pushresult(&b);
            lua_pop(L, 2);
            return bad(cv, "%s%s must be a list of strings", where, key);
        }
        luaL_addvalue(&b);
        luaL_addchar(&b, '\0');
    }
    luaL_pushresult(&b);
    lua_remove(L, -2);
    *out = anchor_top(cv, len);
    return 0;
}

static const char *const job_columns[] = {
    "id", "surface", "owner", "state", "priority", "max_parallelism", "tasks", "start",
    "created_at", "updated_at", "started_at", "ended_at", "error", NULL
};

static const char *const task_run_fields[] = {
    "state", "attempt", "exit_code", "signal", "outcome", "error", "started_at",
    "ended_at", NULL
};

/* ---- what the executor reads: image, network, inputs ---- */

/* How the value at the top was given (JR_SPEC_*), for want: OK when want. */
static int kind_top(lua_State *L, int want)
{
    int t = lua_type(L, -1);

    if (t == LUA_TNIL || (t == LUA_TLIGHTUSERDATA && !lua_touserdata(L, -1)))
        return JR_SPEC_ABSENT;           /* missing or json.null */
    return want ? JR_SPEC_OK : JR_SPEC_BAD;
}

/* The string field key of the table at idx, NULL when missing or not a
 * string (as the executor reads it). */
static const char *opt_str(struct conv *cv, int idx, const char *key)
{
    if (lua_getfield(cv->L, idx, key) != LUA_TSTRING) {
        lua_pop(cv->L, 1);
        return NULL;
    }
    return anchor_top(cv, NULL);
}

/* Is the value at the top a table that encodes as a JSON object / array? */
static int is_object(lua_State *L)
{
    return lua_istable(L, -1) && !jr_json_is_array(L, -1);
}

static int is_list(lua_State *L)
{
    return lua_istable(L, -1) && jr_json_is_array(L, -1);
}

static void conv_input(struct conv *cv, struct jr_spec_input *in)
{
    lua_State *L = cv->L;
    int v = lua_gettop(L);

    if (!is_object(L))
        return;
    in->is_object = 1;
    in->source = opt_str(cv, v, "source");
    in->target = opt_str(cv, v, "target");
    in->path = opt_str(cv, v, "path");
    in->task = opt_str(cv, v, "task");
    in->file = opt_str(cv, v, "file");
    in->url = opt_str(cv, v, "url");
    if (lua_getfield(L, v, "data") == LUA_TNIL) {
        lua_pop(L, 1);
        lua_getfield(L, v, "content");
    }
    if (lua_type(L, -1) == LUA_TSTRING)
        in->data = anchor_top(cv, &in->data_len);
    else
        lua_pop(L, 1);
    lua_getfield(L, v, "max_bytes");
    in->max_bytes_kind = kind_top(L, lua_type(L, -1) == LUA_TNUMBER);
    in->max_bytes = lua_tonumber(L, -1);
    lua_pop(L, 1);
}

/* The task table at idx -> st, in the same pass as the rest of the task.
 * Keeps the shape as given: the executor's check names bad fields. */
static void conv_setup(struct conv *cv, int idx, struct jr_task_setup *st)
{
    lua_State *L = cv->L;
    size_t k, n;

    memset(st, 0, sizeof *st);
    lua_getfield(L, idx, "image");
    st->image_kind = kind_top(L, lua_type(L, -1) == LUA_TSTRING);
    if (st->image_kind == JR_SPEC_OK)
        st->image = anchor_top(cv, NULL);
    else
        lua_pop(L, 1);
    lua_getfield(L, idx, "network");
    st->network_kind = kind_top(L, lua_type(L, -1) == LUA_TSTRING || is_object(L));
    if (lua_type(L, -1) == LUA_TSTRING) {
        st->network_mode = anchor_top(cv, NULL);
    } else {
        if (st->network_kind == JR_SPEC_OK) {
            int net = lua_gettop(L);
            st->network_mode = opt_str(cv, net, "mode");
            lua_getfield(L, net, "domains");
            st->domains_kind = kind_top(L, is_list(L));
            if (st->domains_kind == JR_SPEC_OK) {
                const char **d = scratch(cv, (n = lua_rawlen(L, -1)) * sizeof *d);
                for (k = 0; k < n; k++) {
                    if (lua_rawgeti(L, -1, (lua_Integer)k + 1) == LUA_TSTRING)
                        d[k] = anchor_top(cv, NULL);
                    else
                        lua_pop(L, 1);
                }
                st->domains = d;
                st->ndomains = n;
            }
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    lua_getfield(L, idx, "entrypoint");
    st->entrypoint_kind = kind_top(L, is_list(L));
    if (st->entrypoint_kind == JR_SPEC_OK) {
        const char **d = scratch(cv, ((n = lua_rawlen(L, -1)) + 1) * sizeof *d);
        for (k = 0; k < n; k++) {
            d[k] = NULL;
            if (lua_rawgeti(L, -1, (lua_Integer)k + 1) == LUA_TSTRING)
                d[k] = anchor_top(cv, NULL);
            else
                lua_pop(L, 1);
        }
        st->entrypoint = d;
        st->nentrypoint = n;
    }
    lua_pop(L, 1);
    lua_getfield(L, idx, "inputs");
    st->inputs_kind = kind_top(L, is_list(L));
    if (st->inputs_kind == JR_SPEC_OK) {
        struct jr_spec_input *in = scratch(cv, (n = lua_rawlen(L, -1)) * sizeof *in);
        for (k = 0; k < n; k++) {
            lua_rawgeti(L, -1, (lua_Integer)k + 1);
            conv_input(cv, &in[k]);
            lua_pop(L, 1);
        }
        st->inputs = in;
        st->ninputs = n;
    }
    lua_pop(L, 1);
}

static int conv_task(struct conv *cv, int idx, struct jr_task_spec *t,
                     struct jr_task_setup *st, int n)
{
    lua_State *L = cv->L;
    char where[96];
    double timeout = 0;
    int ty;
    lua_Integer i;

    snprintf(where, sizeof where, "tasks[%d].", n);
    if (get_str(cv, idx, "alias", &t->alias, where) ||
        get_str(cv, idx, "group", &t->group, where) ||
        get_int(cv, idx, "priority", &t->priority, 0, where) ||
        get_int(cv, idx, "tolerable", &t->tolerable, 0, where) ||
        get_int(cv, idx, "retries", &t->retries, 0, where) ||
        get_list(cv, idx, "command", 0, &t->argv, &t->argv_len, where) ||
        get_list(cv, idx, "env", 1, &t->env, &t->env_len, where) ||
        get_str(cv, idx, "workdir", &t->workdir, where))
        return -1;
    if (!t->alias) {
        snprintf(cv->err, sizeof cv->err, "tasks[%d] has no alias", n);
        return -1;
    }
    ty = lua_getfield(L, idx, "timeout");
    if (ty == LUA_TNUMBER) {
        timeout = lua_tonumber(L, -1);
    } else if (ty != LUA_TNIL) {
        lua_pop(L, 1);
        return bad(cv, "%s%s must be a number of seconds", where, "timeout");
    }
    lua_pop(L, 1);
    if (timeout < 0)
        return bad(cv, "%s%s cannot be negative", where, "timeout");
    t->timeout_ms = (int64_t)(timeout * 1000 + 0.5);
    ty = lua_getfield(L, idx, "resources");
    if (ty == LUA_TTABLE) {
        int r = lua_gettop(L);
        snprintf(where, sizeof where, "tasks[%d].resources.", n);
        if (get_int(cv, r, "cpu", &t->cpu, 0, where) ||
            get_int(cv, r, "memory", &t->memory, 0, where) ||
            get_int(cv, r, "gpu", &t->gpu, 0, where) ||
            get_int(cv, r, "disk", &t->disk, 0, where)) {
            lua_pop(L, 1);
            return -1;
        }
    } else if (ty != LUA_TNIL) {
        lua_pop(L, 1);
        return bad(cv, "%s%s must be a table", where, "resources");
    }
    lua_pop(L, 1);
    /* deps: list of aliases */
    ty = lua_getfield(L, idx, "deps");
    if (ty == LUA_TTABLE) {
        lua_Integer nd = (lua_Integer)lua_rawlen(L, -1);
        const char **deps = scratch(cv, (size_t)(nd + 1) * sizeof *deps);
        for (i = 1; i <= nd; i++) {
            if (lua_rawgeti(L, -1, i) != LUA_TSTRING) {
                lua_pop(L, 2);
                snprintf(where, sizeof where, "tasks[%d].", n);
                return bad(cv, "%s%s must be a list of task aliases", where, "deps");
            }
            deps[i - 1] = anchor_top(cv, NULL);
        }
        t->deps = deps;
        t->ndeps = (size_t)nd;
    } else if (ty != LUA_TNIL) {
        lua_pop(L, 1);
        snprintf(where, sizeof where, "tasks[%d].", n);
        return bad(cv, "%s%s must be a list of task aliases", where, "deps");
    }
    lua_pop(L, 1);
    conv_setup(cv, idx, st);
    t->setup = st;
    return encode_without(cv, idx, task_run_fields, &t->spec);
}

/* The job table at idx -> spec. what (may be NULL) receives the JR_UPD_*
 * mask of the fields present (for update). */
int jr_lcore_conv_job(struct conv *cv, int idx, struct jr_job_spec *spec, int *what)
{
    lua_State *L = cv->L;
    struct jr_task_spec *tasks;
    struct jr_task_setup *setups;
    lua_Integer n, i;
    int ty;

    memset(spec, 0, sizeof *spec);
    idx = lua_absindex(L, idx);
    if (get_str(cv, idx, "id", &spec->id, "") || get_str(cv, idx, "surface", &spec->surface, "")
        || get_str(cv, idx, "owner", &spec->owner, "") ||
        get_int(cv, idx, "priority", &spec->priority, 0, "") ||
        get_int(cv, idx, "max_parallelism", &spec->max_parallelism, 0, "") ||
        encode_without(cv, idx, job_columns, &spec->attrs))
        return -1;
    if (what) {
        *what = JR_UPD_ATTRS;
        if (lua_getfield(L, idx, "priority") != LUA_TNIL)
            *what |= JR_UPD_PRIORITY;
        if (lua_getfield(L, idx, "max_parallelism") != LUA_TNIL)
            *what |= JR_UPD_MAX_PAR;
        lua_pop(L, 2);
    }
    ty = lua_getfield(L, idx, "tasks");
    if (ty == LUA_TNIL) {
        lua_pop(L, 1);
        return 0;
    }
    if (ty != LUA_TTABLE) {
        lua_pop(L, 1);
        snprintf(cv->err, sizeof cv->err, "tasks must be a list");
        return -1;
    }
    if (what)
        *what |= JR_UPD_TASKS;
    n = (lua_Integer)lua_rawlen(L, -1);
    tasks = scratch(cv, (size_t)(n + 1) * sizeof *tasks);
    setups = scratch(cv, (size_t)(n + 1) * sizeof *setups);
    for (i = 1; i <= n; i++) {
        if (lua_rawgeti(L, -1, i) != LUA_TTABLE) {
            lua_pop(L, 2);
            snprintf(cv->err, sizeof cv->err, "tasks[%d] must be a table", (int)(i - 1));
            return -1;
        }
        if (conv_task(cv, lua_gettop(L), &tasks[i - 1], &setups[i - 1], (int)(i - 1))) {
            lua_pop(L, 2);
            return -1;
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    spec->tasks = tasks;
    spec->ntasks = (size_t)n;
    return 0;
}
