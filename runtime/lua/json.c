/* jobrt.jsonc: the JSON encoder behind lua/jobrt/json.lua, in C because
 * every answer passes through it. Same rules as the Lua walk it replaces:
 * tables marked with the array/object metatables encode as such, others by
 * their keys; integers stay exact; floats take the shortest text that reads
 * back the same; "/" is not escaped; NaN, infinity, cycles and functions
 * are errors. It may raise: its output buffer is a userdata on the stack,
 * allocated with the state's allocator (so the Lua memory cap applies)
 * and freed by __gc whatever happens. */
#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 1000

/* Not luaL_Buffer: that one must sit at the top of the stack, and the
 * table walk keeps keys and values there. */
struct out {
    char *p;
    size_t n, cap;
    lua_State *L;
};

static void out_gc_now(lua_State *L, int idx)
{
    struct out *o = lua_touserdata(L, idx);
    void *ud;
    lua_Alloc alloc = lua_getallocf(L, &ud);
    if (o->p)
        alloc(ud, o->p, o->cap, 0);
    o->p = NULL;
    o->cap = o->n = 0;
}

static int out_gc(lua_State *L)
{
    out_gc_now(L, 1);
    return 0;
}

static void out_add(struct out *o, const char *s, size_t len)
{
    if (o->cap - o->n < len) {
        size_t cap = o->cap ? o->cap : 256;
        while (cap - o->n < len) {
            if (cap > ((size_t)-1) / 2)
                luaL_error(o->L, "json.encode: output too large");
            cap *= 2;
        }
        void *ud;
        lua_Alloc alloc = lua_getallocf(o->L, &ud);
        char *p = alloc(ud, o->p, o->p ? o->cap : 0, cap);
        if (!p)
            luaL_error(o->L, "not enough memory");
        o->p = p;
        o->cap = cap;
    }
    memcpy(o->p + o->n, s, len);
    o->n += len;
}

static void out_char(struct out *o, char c)
{
    out_add(o, &c, 1);
}

static void out_str(struct out *o, const char *s)
{
    out_add(o, s, strlen(s));
}
#define ARRAY_MT lua_upvalueindex(1)
#define OBJECT_MT lua_upvalueindex(2)

static void add_string(struct out *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    out_char(b, '"');
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != 0x7f && c != '"' && c != '\\')
            continue;
        out_add(b, s + start, i - start);
        start = i + 1;
        switch (c) {
        case '"': out_str(b, "\\\""); break;
        case '\\': out_str(b, "\\\\"); break;
        case '\n': out_str(b, "\\n"); break;
        case '\r': out_str(b, "\\r"); break;
        case '\t': out_str(b, "\\t"); break;
        case '\b': out_str(b, "\\b"); break;
        case '\f': out_str(b, "\\f"); break;
        default: {
            char u[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
            out_str(b, u);
        }
        }
    }
    out_add(b, s + start, len - start);
    out_char(b, '"');
}

static void add_number(lua_State *L, struct out *b, int idx)
{
    char text[40];
    if (lua_isinteger(L, idx)) {
        snprintf(text, sizeof(text), LUA_INTEGER_FMT, lua_tointeger(L, idx));
    } else {
        double v = lua_tonumber(L, idx);
        if (isnan(v) || isinf(v))
            luaL_error(L, "json.encode: cannot encode %s (NaN and infinity are not JSON)",
                       isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
        for (int digits = 14; digits <= 17; digits++) {
            snprintf(text, sizeof(text), "%.*g", digits, v);
            if (strtod(text, NULL) == v)
                break;
        }
    }
    out_str(b, text);
}

static void encode(lua_State *L, struct out *b, int idx, int depth);

/* 0 for an object; else 1 and the length of an array. Unmarked tables
 * are arrays when every key is a positive integer (a few holes become
 * null, as cjson does). */
static int array_length(lua_State *L, int idx, lua_Integer *len)
{
    if (lua_getmetatable(L, idx)) {
        int is_array = lua_rawequal(L, -1, ARRAY_MT);
        int is_object = lua_rawequal(L, -1, OBJECT_MT);
        lua_pop(L, 1);
        if (is_array) {
            *len = (lua_Integer)lua_rawlen(L, idx);
            return 1;
        }
        if (is_object)
            return 0;
    }
    lua_Integer n = 0, max = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) {
            lua_pop(L, 1);
            return 0;
        }
        lua_Integer k = lua_tointeger(L, -1);
        n++;
        if (k > max)
            max = k;
    }
    if (n == 0)
        return 0;
    if (max > 10 && max > 2 * n)
        luaL_error(L, "json.encode: excessively sparse array (%I values up to index %I)", n, max);
    *len = max;
    return 1;
}

static void encode_table(lua_State *L, struct out *b, int idx, int depth)
{
    if (depth > MAX_DEPTH)
        luaL_error(L, "json.encode: nested deeper than %d (a cycle?)", MAX_DEPTH);
    luaL_checkstack(L, 6, "json.encode: nested too deep");
    lua_Integer len;
    if (array_length(L, idx, &len)) {
        out_char(b, '[');
        for (lua_Integer i = 1; i <= len; i++) {
            if (i > 1)
                out_char(b, ',');
            lua_rawgeti(L, idx, i);
            encode(L, b, lua_gettop(L), depth);
            lua_pop(L, 1);
        }
        out_char(b, ']');
        return;
    }
    int first = 1;
    out_char(b, '{');
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (!first)
            out_char(b, ',');
        first = 0;
        int type = lua_type(L, -2);
        if (type == LUA_TSTRING) {
            size_t kl;
            const char *k = lua_tolstring(L, -2, &kl);
            add_string(b, k, kl);
        } else if (type == LUA_TNUMBER) {
            out_char(b, '"');
            add_number(L, b, -2);
            out_char(b, '"');
        } else {
            luaL_error(L, "json.encode: cannot encode a %s key", lua_typename(L, type));
        }
        out_char(b, ':');
        encode(L, b, lua_gettop(L), depth);
        lua_pop(L, 1);
    }
    out_char(b, '}');
}

static void encode(lua_State *L, struct out *b, int idx, int depth)
{
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        add_string(b, s, len);
        break;
    }
    case LUA_TNUMBER:
        add_number(L, b, idx);
        break;
    case LUA_TBOOLEAN:
        out_str(b, lua_toboolean(L, idx) ? "true" : "false");
        break;
    case LUA_TNIL:
        out_str(b, "null");
        break;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) { /* json.null */
            out_str(b, "null");
            break;
        }
        luaL_error(L, "json.encode: cannot encode a userdata");
        break;
    case LUA_TTABLE:
        encode_table(L, b, idx, depth + 1);
        break;
    default:
        luaL_error(L, "json.encode: cannot encode a %s", luaL_typename(L, idx));
    }
}

static int l_encode(lua_State *L)
{
    lua_settop(L, 1);
    struct out *o = lua_newuserdatauv(L, sizeof(*o), 0);
    memset(o, 0, sizeof(*o));
    o->L = L;
    lua_pushvalue(L, lua_upvalueindex(3));
    lua_setmetatable(L, -2);
    encode(L, o, 1, 0);
    lua_pushlstring(L, o->p ? o->p : "", o->n);
    out_gc_now(L, 2);
    return 1;
}

/* encoder(array_mt, object_mt) -> encode(value) */
static int l_encoder(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, out_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcclosure(L, l_encode, 3);
    return 1;
}

int luaopen_jobrt_jsonc(lua_State *L)
{
    static const luaL_Reg funcs[] = {{"encoder", l_encoder}, {NULL, NULL}};
    luaL_newlib(L, funcs);
    return 1;
}
