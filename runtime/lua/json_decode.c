/* The JSON decoder of jobrt.jsonc: text -> Lua values, arrays and objects
 * marked, integers exact, "invalid JSON at byte N: reason" on errors;
 * never raises (errors unwind to its own protected call). */
#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/json_codec.h"

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
    jr_json_out_add(o, u, n);
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
        jr_json_out_add(scratch, d->s + run, d->pos - run);
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
        jr_json_out_add(scratch, d->s + run, d->pos - run);
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
    /* sized for a few items: growing from empty rehashes at 1, 2 and 4 */
    lua_createtable(L, 4, 0);
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
    lua_createtable(L, 0, 4);
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
int jr_json_l_decode(lua_State *L)
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
    jr_json_out_free(L, 2);
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

