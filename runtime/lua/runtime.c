/* jobrt.runtime: what Lua needs from the daemon itself: bounded resumption
 * of coroutines and the wait primitive (resume.c), logging (text or JSON,
 * with log contexts holding a request's fields), the metrics switch, the
 * clock, the memory figures and the embedded sources. */
#include <lauxlib.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "lua/embedded.h"
#include "lua/runtime.h"
#include "metrics.h"

#ifndef JOBRT_VERSION
#define JOBRT_VERSION "0.1.0"
#endif

/* ---- log contexts: the fields of a log line beside its message ---- */

static const struct {
    const char *name;
    size_t off, size;
} log_fields[] = {
#define F(x) {#x, offsetof(struct jr_log_fields, x), sizeof(((struct jr_log_fields *)0)->x)}
    F(request_id), F(surface), F(principal), F(job), F(task),
#undef F
};
#define NFIELDS (sizeof log_fields / sizeof log_fields[0])

static int field_index(const char *name)
{
    for (size_t i = 0; i < NFIELDS; i++)
        if (strcmp(log_fields[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* Set field i of f to v (NULL or "" clears it; cut to the field's size). */
static void set_field(struct jr_log_fields *f, int i, const char *v)
{
    char *dst = (char *)f + log_fields[i].off;
    size_t n = v ? strnlen(v, log_fields[i].size - 1) : 0;

    memcpy(dst, v ? v : "", n);
    dst[n] = 0;
}

/* log_context([fields]) or log_context(request_id[, surface]) -> a
 * context whose fields (request_id, surface, principal, job, task) the
 * lines logged by the task it is bound to carry (async.spawn's opts.log). */
static int l_log_context(lua_State *L)
{
    struct jr_log_fields *f = lua_newuserdatauv(L, sizeof *f, 0);
    memset(f, 0, sizeof *f);
    luaL_setmetatable(L, JR_LOG_CONTEXT_MT);
    if (lua_type(L, 1) == LUA_TSTRING) {
        set_field(f, field_index("request_id"), lua_tostring(L, 1));
        set_field(f, field_index("surface"), luaL_optstring(L, 2, NULL));
    } else if (lua_istable(L, 1)) {
        for (size_t i = 0; i < NFIELDS; i++) {
            if (lua_getfield(L, 1, log_fields[i].name) == LUA_TSTRING)
                set_field(f, (int)i, lua_tostring(L, -1));
            lua_pop(L, 1);
        }
    }
    return 1;
}

/* ctx:set(name, value): value a string, or nil to clear. */
static int l_context_set(lua_State *L)
{
    struct jr_log_fields *f = luaL_checkudata(L, 1, JR_LOG_CONTEXT_MT);
    int i = field_index(luaL_checkstring(L, 2));
    luaL_argcheck(L, i >= 0, 2, "not a log field (request_id, surface, principal, job, task)");
    set_field(f, i, luaL_optstring(L, 3, NULL));
    return 0;
}

/* ctx:get(name) -> value or nil */
static int l_context_get(lua_State *L)
{
    struct jr_log_fields *f = luaL_checkudata(L, 1, JR_LOG_CONTEXT_MT);
    int i = field_index(luaL_checkstring(L, 2));
    luaL_argcheck(L, i >= 0, 2, "not a log field (request_id, surface, principal, job, task)");
    const char *v = (const char *)f + log_fields[i].off;
    if (!v[0])
        return 0;
    lua_pushstring(L, v);
    return 1;
}

static int l_context_tostring(lua_State *L)
{
    struct jr_log_fields *f = luaL_checkudata(L, 1, JR_LOG_CONTEXT_MT);
    lua_pushfstring(L, "jobrt.log_context(%s)", f->request_id);
    return 1;
}

/* Extra members of the JSON line from the table at idx into out (size
 * bytes): keys that are not log fields, with string, number or boolean
 * values (16 at most; one that does not fit is left out). */
static void extra_members(lua_State *L, int idx, char *out, size_t size)
{
    size_t len = 0;
    int n = 0;

    out[0] = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        int t = lua_type(L, -1);
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        char tmp[1024];
        size_t tl = 0;
        if (k && field_index(k) < 0 && n < 16 &&
            (t == LUA_TSTRING || t == LUA_TNUMBER || t == LUA_TBOOLEAN)) {
            int w = snprintf(tmp, sizeof tmp, "%s\"", n ? "," : "");
            tl = (size_t)w;
            if (jr_log_json_escape(tmp, 200, &tl, k) == 0) {
                tl += (size_t)snprintf(tmp + tl, sizeof tmp - tl, "\":");
                if (t == LUA_TSTRING) {
                    tmp[tl++] = '"';
                    if (jr_log_json_escape(tmp, sizeof tmp - 2, &tl, lua_tostring(L, -1)) != 0)
                        tl = 0;
                    else
                        tmp[tl++] = '"';
                } else if (t == LUA_TBOOLEAN) {
                    tl += (size_t)snprintf(tmp + tl, sizeof tmp - tl, "%s",
                                           lua_toboolean(L, -1) ? "true" : "false");
                } else if (lua_isinteger(L, -1)) {
                    tl += (size_t)snprintf(tmp + tl, sizeof tmp - tl, "%lld",
                                           (long long)lua_tointeger(L, -1));
                } else {
                    double d = lua_tonumber(L, -1);
                    tl += (size_t)snprintf(tmp + tl, sizeof tmp - tl, "%.15g",
                                           d == d && d - d == 0 ? d : 0);
                }
                if (tl > 0 && len + tl < size) {
                    memcpy(out + len, tmp, tl);
                    len += tl;
                    out[len] = 0;
                    n++;
                }
            }
        }
        lua_pop(L, 1);
    }
}

/* log(level, message[, fields[, extra]]): fields a log context (then
 * extra, a table, gives the JSON line's extra members), or a table of
 * fields (request_id, surface, principal, job, task) and of extra members
 * (status = 200, ...); they win over the context of the running request. */
static int l_log(lua_State *L)
{
    static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
    int level = luaL_checkoption(L, 1, "info", levels);
    const char *msg = luaL_checkstring(L, 2);
    struct jr_loop *loop = jr_loop_of(L);
    if (lua_isnoneornil(L, 3)) {
        jr_log(loop, level, "%s", msg);
        return 0;
    }
    if (lua_isuserdata(L, 3)) {
        struct jr_log_fields *ctx = luaL_checkudata(L, 3, JR_LOG_CONTEXT_MT);
        char extra[4096];
        extra[0] = 0;
        if (level < loop->log_level)
            return 0;
        if (loop->log_json && lua_istable(L, 4))
            extra_members(L, 4, extra, sizeof extra);
        jr_log_with(loop, level, ctx, extra, "%s", msg);
        return 0;
    }
    luaL_checktype(L, 3, LUA_TTABLE);
    if (level < loop->log_level)
        return 0;
    struct jr_log_fields fields, *f = &fields;
    memset(f, 0, sizeof *f);
    for (size_t i = 0; i < NFIELDS; i++) {
        if (lua_getfield(L, 3, log_fields[i].name) == LUA_TSTRING)
            set_field(f, (int)i, lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    char extra[4096];
    extra[0] = 0;
    if (loop->log_json)
        extra_members(L, 3, extra, sizeof extra);
    jr_log_with(loop, level, f, extra, "%s", msg);
    return 0;
}

/* Append ,"name":"value" (value escaped) to out; -1 when it does not fit. */
static int add_member(char *out, size_t size, size_t *len, const char *name, const char *value)
{
    int n = snprintf(out + *len, size - *len, ",\"%s\":\"", name);

    if (n < 0 || *len + (size_t)n + 2 >= size)
        return -1;
    *len += (size_t)n;
    if (jr_log_json_escape(out, size - 1, len, value) != 0)
        return -1;
    out[(*len)++] = '"';
    out[*len] = 0;
    return 0;
}

/* log_access(ctx, method, target, status, ms[, peer]): a request's line
 * at level info: "ID METHOD TARGET -> STATUS (MS ms)" as text; as JSON the
 * message without the id, ctx's fields, and method, path, status,
 * duration_ms and peer as members. Made here in one go, without tables:
 * it is written for every request. status may be nil (no answer). */
static int l_log_access(lua_State *L)
{
    struct jr_log_fields *ctx = luaL_checkudata(L, 1, JR_LOG_CONTEXT_MT);
    const char *method = luaL_checkstring(L, 2);
    const char *target = luaL_checkstring(L, 3);
    int has_status = lua_isinteger(L, 4);
    long long status = has_status ? (long long)lua_tointeger(L, 4) : 0;
    double ms = luaL_checknumber(L, 5);
    const char *peer = luaL_optstring(L, 6, "");
    struct jr_loop *loop = jr_loop_of(L);
    char code[24], extra[2048];
    size_t len = 0;

    if (JR_LOG_INFO < loop->log_level)
        return 0;
    snprintf(code, sizeof code, has_status ? "%lld" : "nil", status);
    if (!loop->log_json) {
        jr_log(loop, JR_LOG_INFO, "%s %s %s -> %s (%.1f ms)", ctx->request_id, method, target,
               code, ms);
        return 0;
    }
    extra[0] = 0;
    add_member(extra, sizeof extra, &len, "method", method);
    add_member(extra, sizeof extra, &len, "path", target);
    len += (size_t)snprintf(extra + len, sizeof extra - len, ",\"status\":%s,\"duration_ms\":%.3f",
                            has_status ? code : "null", ms);
    if (len < sizeof extra && peer[0])
        add_member(extra, sizeof extra, &len, "peer", peer);
    /* without the leading comma: jr_log_with adds one */
    jr_log_with(loop, JR_LOG_INFO, ctx, extra[0] ? extra + 1 : extra, "%s %s -> %s (%.1f ms)",
                method, target, code, ms);
    return 0;
}

/* set_log_format("text" | "json") */
static int l_log_format(lua_State *L)
{
    static const char *const formats[] = {"text", "json", NULL};
    jr_loop_of(L)->log_json = luaL_checkoption(L, 1, NULL, formats) == 1;
    return 0;
}

/* set_metrics(on): count the metrics (the default) or not. */
static int l_set_metrics(lua_State *L)
{
    struct jr_loop *loop = jr_loop_of(L);
    if (loop->metrics)
        loop->metrics->enabled = lua_toboolean(L, 1);
    return 0;
}

static int l_log_level(lua_State *L)
{
    static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
    jr_loop_of(L)->log_level = luaL_checkoption(L, 1, "info", levels);
    return 0;
}

/* logs(level) -> whether a message at that level would be written, so
 * callers can skip formatting it. */
static int l_logs(lua_State *L)
{
    static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
    lua_pushboolean(L, luaL_checkoption(L, 1, "info", levels) >= jr_loop_of(L)->log_level);
    return 1;
}

static int l_hrtime(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)uv_hrtime());
    return 1;
}

static int l_memory(lua_State *L)
{
    struct jr_lua *lua = jr_lua_of(L);
    lua_pushinteger(L, (lua_Integer)lua->mem.used);
    lua_pushinteger(L, (lua_Integer)lua->mem.hard_limit);
    return 2;
}

static int l_set_memory_limit(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 0, 1, "must not be negative");
    jr_lua_of(L)->mem.hard_limit = (size_t)n;
    return 0;
}

/* embedded(path) -> source or nil */
static int l_embedded(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    for (int i = 0; jr_embedded_files[i].path; i++) {
        if (strcmp(jr_embedded_files[i].path, path) == 0) {
            lua_pushlstring(L, jr_embedded_files[i].source, jr_embedded_files[i].size);
            return 1;
        }
    }
    return 0;
}

static int l_embedded_paths(lua_State *L)
{
    lua_newtable(L);
    for (int i = 0; jr_embedded_files[i].path; i++) {
        lua_pushstring(L, jr_embedded_files[i].path);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int l_pid(lua_State *L)
{
    lua_pushinteger(L, uv_os_getpid());
    return 1;
}

static const luaL_Reg funcs[] = {
    {"log", l_log},
    {"log_context", l_log_context},
    {"log_access", l_log_access},
    {"set_log_level", l_log_level},
    {"set_log_format", l_log_format},
    {"set_metrics", l_set_metrics},
    {"logs", l_logs},
    {"hrtime", l_hrtime},
    {"memory", l_memory},
    {"set_memory_limit", l_set_memory_limit},
    {"embedded", l_embedded},
    {"embedded_paths", l_embedded_paths},
    {"pid", l_pid},
    {NULL, NULL},
};

static const luaL_Reg context_methods[] = {
    {"set", l_context_set},
    {"get", l_context_get},
    {NULL, NULL},
};

int luaopen_jobrt_runtime(lua_State *L)
{
    jr_lua_class(L, JR_LOG_CONTEXT_MT, context_methods, NULL, l_context_tostring);
    luaL_newlib(L, funcs);
    luaL_setfuncs(L, jr_lua_resume_funcs, 0);
    lua_pushliteral(L, JOBRT_VERSION);
    lua_setfield(L, -2, "version");
    return 1;
}
