/* The C JSON codec (json.c) for the other binding files, without going
 * through Lua: the same encoder and decoder as jobrt.json, and the same
 * array/object marks (metatables owned by the registry). Not included
 * outside runtime/lua/. */
#ifndef JR_LUA_JSON_H
#define JR_LUA_JSON_H

#include <lua.h>
#include <stddef.h>

/* Push the value at idx as JSON text and return 0; or push the error
 * message (a function, NaN, a cycle...) and return -1. Never raises
 * except for memory. */
int jr_json_encode(lua_State *L, int idx);

/* Push the value of text (arrays and objects marked, integers exact, null
 * as json.null) and return 0; or push "invalid JSON at byte N: ..." and
 * return -1. Never raises except for memory. */
int jr_json_decode(lua_State *L, const char *text, size_t len);

/* Mark the table at idx as a JSON array ("[]" when empty). */
void jr_json_array(lua_State *L, int idx);

#endif
