/* jobrt.jsonc: the JSON encoder and decoder behind lua/jobrt/json.lua, in
 * C because every request and answer passes through them; the other
 * binding files call them directly through lua/json.h. The decoder
 * marks arrays and objects with the same metatables, keeps integers exact
 * and reports errors as "invalid JSON at byte N: reason"; never raises.
 * The encoder follows Same rules as the Lua walk it replaces:
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
#include "lua/runtime.h"

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

/* Decoding. Errors unwind with lua_error to the protected entry point;
 * only Lua-owned memory is in use. */
struct in {
    lua_State *L;
    const char *s;
    size_t len, pos; /* pos: 0-based */
};

static void fail_at(struct in *d, size_t at, const char *msg)
{
    luaL_error(d->L, "invalid JSON at byte %I: %s", (lua_Integer)at + 1, msg);
}

static void skip_space(struct in *d)
{
    while (d->pos < d->len) {
        char c = d->s[d->pos];
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
            break;
        d->pos++;
    }
}

static int hex4(struct in *d, size_t at, size_t err_at)
{
    if (at + 4 > d->len)
        fail_at(d, err_at, "invalid unicode escape code");
    int v = 0;
    for (size_t i = at; i < at + 4; i++) {
        char c = d->s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            fail_at(d, err_at, "invalid unicode escape code");
    }
    return v;
}

static void push_utf8(struct out *o, unsigned long cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    out_add(o, u, n);
}

/* Pushes the string that starts at the opening quote d->pos. Strings
 * without escapes (the common case) are pushed straight from the text. */
static void decode_string(struct in *d, struct out *scratch)
{
    size_t start = d->pos++;
    size_t run = d->pos;
    scratch->n = 0;
    int escaped = 0;
    for (;;) {
        if (d->pos >= d->len)
            fail_at(d, start, "unexpected end of string");
        unsigned char c = (unsigned char)d->s[d->pos];
        if (c == '"')
            break;
        if (c < 0x20)
            fail_at(d, d->pos, "control character in string (escape it)");
        if (c != '\\') {
            d->pos++;
            continue;
        }
        escaped = 1;
        out_add(scratch, d->s + run, d->pos - run);
        size_t bs = d->pos;
        char e = d->pos + 1 < d->len ? d->s[d->pos + 1] : 0;
        d->pos += 2;
        switch (e) {
        case '"': out_char(scratch, '"'); break;
        case '\\': out_char(scratch, '\\'); break;
        case '/': out_char(scratch, '/'); break;
        case 'b': out_char(scratch, '\b'); break;
        case 'f': out_char(scratch, '\f'); break;
        case 'n': out_char(scratch, '\n'); break;
        case 'r': out_char(scratch, '\r'); break;
        case 't': out_char(scratch, '\t'); break;
        case 'u': {
            unsigned long cp = (unsigned long)hex4(d, d->pos, bs);
            d->pos += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (d->pos + 1 >= d->len || d->s[d->pos] != '\\' || d->s[d->pos + 1] != 'u')
                    fail_at(d, bs, "invalid unicode escape code");
                unsigned long low = (unsigned long)hex4(d, d->pos + 2, bs);
                if (low < 0xDC00 || low > 0xDFFF)
                    fail_at(d, bs, "invalid unicode escape code");
                cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                d->pos += 6;
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                fail_at(d, bs, "invalid unicode escape code");
            }
            push_utf8(scratch, cp);
            break;
        }
        default:
            fail_at(d, bs, "invalid escape code");
        }
        run = d->pos;
    }
    if (escaped) {
        out_add(scratch, d->s + run, d->pos - run);
        lua_pushlstring(d->L, scratch->p, scratch->n);
    } else {
        lua_pushlstring(d->L, d->s + start + 1, d->pos - start - 1);
    }
    d->pos++;
}

static int is_digit(struct in *d, size_t i)
{
    return i < d->len && d->s[i] >= '0' && d->s[i] <= '9';
}

static void decode_number(struct in *d)
{
    size_t start = d->pos, i = d->pos;
    int integer = 1;
    if (i < d->len && d->s[i] == '-')
        i++;
    if (i < d->len && d->s[i] == '0')
        i++;
    else if (i < d->len && d->s[i] >= '1' && d->s[i] <= '9')
        while (is_digit(d, i))
            i++;
    else
        fail_at(d, start, "invalid number");
    if (i < d->len && d->s[i] == '.') {
        if (!is_digit(d, i + 1))
            fail_at(d, start, "invalid number");
        i++;
        while (is_digit(d, i))
            i++;
        integer = 0;
    }
    if (i < d->len && (d->s[i] == 'e' || d->s[i] == 'E')) {
        size_t j = i + 1;
        if (j < d->len && (d->s[j] == '-' || d->s[j] == '+'))
            j++;
        if (!is_digit(d, j))
            fail_at(d, start, "invalid number");
        while (is_digit(d, j))
            j++;
        i = j;
        integer = 0;
    }
    d->pos = i;
    char text[64];
    size_t n = i - start;
    /* Longer numbers than this cannot be exact integers; let Lua read them. */
    if (n >= sizeof(text)) {
        lua_pushlstring(d->L, d->s + start, n);
        lua_Number v = lua_tonumber(d->L, -1);
        lua_pop(d->L, 1);
        lua_pushnumber(d->L, v);
        return;
    }
    memcpy(text, d->s + start, n);
    text[n] = '\0';
    if (integer && lua_stringtonumber(d->L, text) && lua_isinteger(d->L, -1))
        return;
    if (integer)
        lua_pop(d->L, 1);
    double v = strtod(text, NULL);
    /* Whole numbers within 2^53 become integers, as 1.0 and 1e2 do in Lua's
     * own decoder, so they print back as integers. */
    if (v == floor(v) && v > -9007199254740992.0 && v < 9007199254740992.0)
        lua_pushinteger(d->L, (lua_Integer)v);
    else
        lua_pushnumber(d->L, v);
}

static void decode_value(struct in *d, struct out *scratch, int depth);

static void decode_array(struct in *d, struct out *scratch, int depth)
{
    lua_State *L = d->L;
    lua_newtable(L);
    lua_pushvalue(L, ARRAY_MT);
    lua_setmetatable(L, -2);
    d->pos++;
    skip_space(d);
    if (d->pos < d->len && d->s[d->pos] == ']') {
        d->pos++;
        return;
    }
    for (lua_Integer n = 1;; n++) {
        decode_value(d, scratch, depth);
        lua_rawseti(L, -2, n);
        skip_space(d);
        char c = d->pos < d->len ? d->s[d->pos] : 0;
        if (c == ']') {
            d->pos++;
            return;
        }
        if (c != ',')
            fail_at(d, d->pos, "expected ',' or ']'");
        d->pos++;
    }
}

static void decode_object(struct in *d, struct out *scratch, int depth)
{
    lua_State *L = d->L;
    lua_newtable(L);
    lua_pushvalue(L, OBJECT_MT);
    lua_setmetatable(L, -2);
    d->pos++;
    skip_space(d);
    if (d->pos < d->len && d->s[d->pos] == '}') {
        d->pos++;
        return;
    }
    for (;;) {
        skip_space(d);
        if (d->pos >= d->len || d->s[d->pos] != '"')
            fail_at(d, d->pos, "expected a string key");
        decode_string(d, scratch);
        skip_space(d);
        if (d->pos >= d->len || d->s[d->pos] != ':')
            fail_at(d, d->pos, "expected ':'");
        d->pos++;
        decode_value(d, scratch, depth);
        lua_rawset(L, -3);
        skip_space(d);
        char c = d->pos < d->len ? d->s[d->pos] : 0;
        if (c == '}') {
            d->pos++;
            return;
        }
        if (c != ',')
            fail_at(d, d->pos, "expected ',' or '}'");
        d->pos++;
    }
}

static void literal(struct in *d, const char *word)
{
    size_t n = strlen(word);
    if (d->len - d->pos < n || memcmp(d->s + d->pos, word, n) != 0)
        fail_at(d, d->pos, "invalid token");
    d->pos += n;
}

static void decode_value(struct in *d, struct out *scratch, int depth)
{
    luaL_checkstack(d->L, 4, "JSON nested too deep");
    skip_space(d);
    if (d->pos >= d->len)
        fail_at(d, d->pos, "expected a value but found the end of the text");
    char c = d->s[d->pos];
    if (c == '{' || c == '[') {
        if (depth >= MAX_DEPTH)
            fail_at(d, d->pos, "too many nested arrays or objects");
        if (c == '{')
            decode_object(d, scratch, depth + 1);
        else
            decode_array(d, scratch, depth + 1);
    } else if (c == '"') {
        decode_string(d, scratch);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        decode_number(d);
    } else if (c == 't') {
        literal(d, "true");
        lua_pushboolean(d->L, 1);
    } else if (c == 'f') {
        literal(d, "false");
        lua_pushboolean(d->L, 0);
    } else if (c == 'n') {
        literal(d, "null");
        lua_pushlightuserdata(d->L, NULL);
    } else {
        fail_at(d, d->pos, "expected a value");
    }
}

/* Protected: upvalues as the decoder's; argument 1 the text, 2 the
 * scratch buffer userdata. */
static int decode_protected(lua_State *L)
{
    struct in d = {L, NULL, 0, 0};
    d.s = lua_tolstring(L, 1, &d.len);
    struct out *scratch = lua_touserdata(L, 2);
    decode_value(&d, scratch, 0);
    skip_space(&d);
    if (d.pos < d.len)
        fail_at(&d, d.pos, "expected the end of the text");
    return 1;
}

/* decode(text) -> value | nil, "invalid JSON at byte N: reason" */
static int l_decode(lua_State *L)
{
    if (lua_type(L, 1) != LUA_TSTRING) {
        lua_pushnil(L);
        lua_pushfstring(L, "invalid JSON: expected a string, got %s", luaL_typename(L, 1));
        return 2;
    }
    lua_settop(L, 1);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_pushcclosure(L, decode_protected, 2);
    lua_pushvalue(L, 1);
    struct out *scratch = lua_newuserdatauv(L, sizeof(*scratch), 0);
    memset(scratch, 0, sizeof(*scratch));
    scratch->L = L;
    lua_pushvalue(L, lua_upvalueindex(3));
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_insert(L, 2); /* keep the scratch buffer to free it below */
    int rc = lua_pcall(L, 2, 1, 0);
    out_gc_now(L, 2);
    if (rc == LUA_OK)
        return 1;
    lua_pushnil(L);
    lua_insert(L, -2);
    if (rc == LUA_ERRMEM) {
        lua_pop(L, 1);
        lua_pushliteral(L, "invalid JSON: not enough memory to decode it");
    }
    return 2;
}

#define ARRAY_NAME "jobrt.json.array"
#define OBJECT_NAME "jobrt.json.object"
#define BUFFER_NAME "jobrt.json.buffer"
#define CODEC_KEY "jobrt.json.codec" /* registry: { encode, decode } */

/* Push fn closed over the marks and the output buffer's metatable. */
static void push_closure(lua_State *L, lua_CFunction fn)
{
    luaL_newmetatable(L, ARRAY_NAME);
    luaL_newmetatable(L, OBJECT_NAME);
    jr_lua_class(L, BUFFER_NAME, NULL, out_gc, NULL);
    luaL_getmetatable(L, BUFFER_NAME);
    lua_pushcclosure(L, fn, 3);
}

/* Push the codec's function i (1 encode, 2 decode), made once per state. */
static void push_codec(lua_State *L, int i)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, CODEC_KEY) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_createtable(L, 2, 0);
        push_closure(L, l_encode);
        lua_rawseti(L, -2, 1);
        push_closure(L, l_decode);
        lua_rawseti(L, -2, 2);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, CODEC_KEY);
    }
    lua_rawgeti(L, -1, i);
    lua_remove(L, -2);
}

int jr_json_encode(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    push_codec(L, 1);
    lua_pushvalue(L, idx);
    if (lua_pcall(L, 1, 1, 0) == LUA_OK)
        return 0;
    if (!lua_isstring(L, -1)) {
        lua_pop(L, 1);
        lua_pushliteral(L, "json.encode: cannot encode the value");
    }
    return -1;
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
