/* jobrt.jsonc: the JSON encoder (here) and decoder (json_decode.c) behind
 * lua/jobrt/json.lua, in C because every request and answer passes through
 * them; the other binding files call them directly through lua/json.h.
 * The decoder marks arrays and objects with the same metatables, keeps
 * integers exact and reports errors as "invalid JSON at byte N: reason";
 * never raises. The encoder follows Same rules as the Lua walk it replaces:
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

#include "lua/json.h"
#include "lua/json_codec.h"
#include "lua/runtime.h"

void jr_json_out_free(lua_State *L, int idx)
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
    jr_json_out_free(L, 1);
    return 0;
}

void jr_json_out_add(struct out *o, const char *s, size_t len)
{
    if (len == 0)
        return;
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


static void add_string(struct out *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    out_char(b, '"');
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != 0x7f && c != '"' && c != '\\')
            continue;
        jr_json_out_add(b, s + start, i - start);
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
    jr_json_out_add(b, s + start, len - start);
    out_char(b, '"');
}

/* The text of the number at idx (raises for NaN and infinity). */
static void number_text(lua_State *L, int idx, char text[40])
{
    if (lua_isinteger(L, idx)) {
        /* Without printf: integers are most of the numbers encoded. */
        lua_Integer v = lua_tointeger(L, idx);
        unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
        char tmp[24], *p = tmp + sizeof(tmp);
        do
            *--p = (char)('0' + u % 10);
        while ((u /= 10) > 0);
        if (v < 0)
            *--p = '-';
        memcpy(text, p, (size_t)(tmp + sizeof(tmp) - p));
        text[tmp + sizeof(tmp) - p] = 0;
    } else {
        double v = lua_tonumber(L, idx);
        if (isnan(v) || isinf(v))
            luaL_error(L, "json.encode: cannot encode %s (NaN and infinity are not JSON)",
                       isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
        for (int digits = 14; digits <= 17; digits++) {
            snprintf(text, 40, "%.*g", digits, v);
            if (strtod(text, NULL) == v)
                break;
        }
    }
}

static void add_number(lua_State *L, struct out *b, int idx)
{
    char text[40];
    number_text(L, idx, text);
    out_str(b, text);
}

static void encode(lua_State *L, struct out *b, int idx, int depth);

/* 1 when every key of the table at idx (absolute) is a positive integer,
 * with how many (*n) and the largest (*max); else 0. */
static int integer_keys(lua_State *L, int idx, lua_Integer *n, lua_Integer *max)
{
    *n = *max = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) {
            lua_pop(L, 1);
            return 0;
        }
        lua_Integer k = lua_tointeger(L, -1);
        ++*n;
        if (k > *max)
            *max = k;
    }
    return 1;
}

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
    lua_Integer n, max;
    if (!integer_keys(L, idx, &n, &max) || n == 0)
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

/* The output buffer is the state's one (upvalue 4), kept between calls:
 * no userdata to make and finalize per answer. encode calls no Lua code
 * and runs no collection step (so no finalizer) before it is done, so no
 * other encode can use the buffer meanwhile. */
#define KEEP_MAX (64 * 1024) /* a larger buffer goes after the call */

static int l_encode(lua_State *L)
{
    lua_settop(L, 1);
    lua_pushvalue(L, lua_upvalueindex(4));
    struct out *o = lua_touserdata(L, 2);
    o->n = 0;
    o->L = L;
    encode(L, o, 1, 0);
    lua_pushlstring(L, o->p ? o->p : "", o->n);
    if (o->cap > KEEP_MAX)
        jr_json_out_free(L, 2);
    return 1;
}

/* ---- copy: what decode(encode(v)) gives, without the text ---- */

/* A float as the decoder reads its text back: whole numbers within 2^53
 * (and integer texts) become integers. */
static void copy_float(lua_State *L, int idx)
{
    char text[40];
    number_text(L, idx, text);
    if (!strpbrk(text, ".eE") && lua_stringtonumber(L, text)) {
        if (lua_isinteger(L, -1))
            return;
        lua_pop(L, 1);
    }
    double v = strtod(text, NULL);
    if (v == floor(v) && v > -9007199254740992.0 && v < 9007199254740992.0)
        lua_pushinteger(L, (lua_Integer)v);
    else
        lua_pushnumber(L, v);
}

static void copy(lua_State *L, int idx, int depth)
{
    lua_Integer len;
    char text[40];

    switch (lua_type(L, idx)) {
    case LUA_TSTRING:
    case LUA_TBOOLEAN:
        lua_pushvalue(L, idx);
        return;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            lua_pushvalue(L, idx);
        else
            copy_float(L, idx);
        return;
    case LUA_TNIL:
        lua_pushlightuserdata(L, NULL);
        return;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) {
            lua_pushlightuserdata(L, NULL);
            return;
        }
        luaL_error(L, "json.encode: cannot encode a userdata");
        return;
    case LUA_TTABLE:
        break;
    default:
        luaL_error(L, "json.encode: cannot encode a %s", luaL_typename(L, idx));
        return;
    }
    if (++depth > MAX_DEPTH)
        luaL_error(L, "json.encode: nested deeper than %d (a cycle?)", MAX_DEPTH);
    luaL_checkstack(L, 8, "json.encode: nested too deep");
    if (array_length(L, idx, &len)) {
        lua_createtable(L, (int)len, 0);
        lua_pushvalue(L, ARRAY_MT);
        lua_setmetatable(L, -2);
        for (lua_Integer i = 1; i <= len; i++) {
            lua_rawgeti(L, idx, i);
            copy(L, lua_gettop(L), depth);
            lua_rawseti(L, -3, i);
            lua_pop(L, 1);
        }
        return;
    }
    lua_newtable(L);
    lua_pushvalue(L, OBJECT_MT);
    lua_setmetatable(L, -2);
    int out = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        int type = lua_type(L, -2);
        if (type == LUA_TNUMBER) {
            number_text(L, -2, text);
            lua_pushstring(L, text);
        } else if (type == LUA_TSTRING) {
            lua_pushvalue(L, -2);
        } else {
            luaL_error(L, "json.encode: cannot encode a %s key", lua_typename(L, type));
        }
        copy(L, lua_gettop(L) - 1, depth);
        lua_rawset(L, out);
        lua_pop(L, 1);
    }
}

/* copy(value) -> the value as decode(encode(value)) would give it. */
static int l_copy(lua_State *L)
{
    lua_settop(L, 1);
    copy(L, 1, 0);
    return 1;
}

#define ARRAY_NAME "jobrt.json.array"
#define OBJECT_NAME "jobrt.json.object"
#define BUFFER_NAME "jobrt.json.buffer"
#define CODEC_KEY "jobrt.json.codec" /* registry: { encode, decode } */

/* Push fn closed over the marks and the output buffer's metatable (and,
 * for encode, the buffer it reuses). */
static void push_closure(lua_State *L, lua_CFunction fn)
{
    luaL_newmetatable(L, ARRAY_NAME);
    luaL_newmetatable(L, OBJECT_NAME);
    jr_lua_class(L, BUFFER_NAME, NULL, out_gc, NULL);
    luaL_getmetatable(L, BUFFER_NAME);
    if (fn != l_encode) {
        lua_pushcclosure(L, fn, 3);
        return;
    }
    struct out *o = lua_newuserdatauv(L, sizeof(*o), 0);
    memset(o, 0, sizeof(*o));
    luaL_setmetatable(L, BUFFER_NAME);
    lua_pushcclosure(L, fn, 4);
}

/* Push the codec's function i (1 encode, 2 decode, 3 copy), made once per
 * state. */
static void push_codec(lua_State *L, int i)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, CODEC_KEY) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_createtable(L, 2, 0);
        push_closure(L, l_encode);
        lua_rawseti(L, -2, 1);
        push_closure(L, jr_json_l_decode);
        lua_rawseti(L, -2, 2);
        push_closure(L, l_copy);
        lua_rawseti(L, -2, 3);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, CODEC_KEY);
    }
    lua_rawgeti(L, -1, i);
    lua_remove(L, -2);
}

/* Calls codec function i (1 encode, 3 copy) on the value at idx, in
 * protected mode: 0 with the result pushed, or -1 with a message. */
static int call_codec(lua_State *L, int i, int idx)
{
    idx = lua_absindex(L, idx);
    push_codec(L, i);
    lua_pushvalue(L, idx);
    if (lua_pcall(L, 1, 1, 0) == LUA_OK)
        return 0;
    if (!lua_isstring(L, -1)) {
        lua_pop(L, 1);
        lua_pushliteral(L, "json.encode: cannot encode the value");
    }
    return -1;
}

int jr_json_encode(lua_State *L, int idx)
{
    return call_codec(L, 1, idx);
}

int jr_json_copy(lua_State *L, int idx)
{
    return call_codec(L, 3, idx);
}

int jr_json_decode(lua_State *L, const char *text, size_t len)
{
    push_codec(L, 2);
    lua_pushlstring(L, text, len);
    lua_call(L, 1, 2);
    if (lua_isnil(L, -2) && !lua_isnil(L, -1)) {
        lua_remove(L, -2);
        return -1;
    }
    lua_pop(L, 1);
    return 0;
}

int jr_json_is_array(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    if (lua_getmetatable(L, idx)) {
        luaL_getmetatable(L, ARRAY_NAME);
        luaL_getmetatable(L, OBJECT_NAME);
        int is_array = lua_rawequal(L, -3, -2), is_object = lua_rawequal(L, -3, -1);
        lua_pop(L, 3);
        if (is_array || is_object)
            return is_array;
    }
    lua_Integer n, max;
    return integer_keys(L, idx, &n, &max) && n > 0;
}

void jr_json_array(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    luaL_newmetatable(L, ARRAY_NAME);
    lua_setmetatable(L, idx);
}

/* The module: encode, decode and the marks, for lua/jobrt/json.lua. */
int luaopen_jobrt_jsonc(lua_State *L)
{
    lua_createtable(L, 0, 4);
    push_codec(L, 1);
    lua_setfield(L, -2, "encode");
    push_codec(L, 2);
    lua_setfield(L, -2, "decode");
    luaL_newmetatable(L, ARRAY_NAME);
    lua_setfield(L, -2, "array_mt");
    luaL_newmetatable(L, OBJECT_NAME);
    lua_setfield(L, -2, "object_mt");
    return 1;
}
