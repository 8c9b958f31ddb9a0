/* What the codec's files (json.c: the encoder and the module, json_decode.c:
 * the decoder) share: the output buffer, a userdata that grows with the
 * state's allocator, and the marks as the closures' upvalues. Not included
 * outside runtime/lua/json*.c. */
#ifndef JR_LUA_JSON_CODEC_H
#define JR_LUA_JSON_CODEC_H

#include <lauxlib.h>
#include <string.h>

#define MAX_DEPTH 1000
/* upvalues of the encode and decode closures */
#define ARRAY_MT lua_upvalueindex(1)
#define OBJECT_MT lua_upvalueindex(2)

/* Not luaL_Buffer: that one must sit at the top of the stack, and the
 * table walk keeps keys and values there. */
struct out {
    char *p;
    size_t n, cap;
    lua_State *L;
};

/* Free the buffer of the userdata at idx (also its __gc). */
void jr_json_out_free(lua_State *L, int idx);
/* Append; raises on memory (the buffer is freed by its __gc). */
void jr_json_out_add(struct out *o, const char *s, size_t len);

static inline void out_char(struct out *o, char c)
{
    jr_json_out_add(o, &c, 1);
}

static inline void out_str(struct out *o, const char *s)
{
    jr_json_out_add(o, s, strlen(s));
}
/* decode(text) -> value | nil, "invalid JSON at byte N: reason", closed
 * over the marks and the buffer's metatable. */
int jr_json_l_decode(lua_State *L);

#endif
