/* The WebSocket part of jobrt.http (http_ws.c), called by http.c: the
 * exchange userdata both files share, the upgrade and the class. */
#ifndef JR_LUA_HTTP_WS_H
#define JR_LUA_HTTP_WS_H

#include <lua.h>
#include <stddef.h>

struct jr_http_exchange;

struct lua_exchange {
    struct jr_http_exchange *ex;   /* one reference, released by __gc/__close */
};

/* Upgrade ex, the 101 carrying the formatted header lines; the options
 * table at index opts (or none). Pushes the WebSocket userdata, or nil,
 * status (400, 426, 503), reason. Returns the number of values pushed.
 * May raise (memory, a bad option). */
int jr_lua_ws_upgrade(lua_State *L, struct jr_http_exchange *ex, const char *headers,
                      size_t headers_len, int opts);
/* Make the "jobrt.http_websocket" metatable. May raise (memory). */
void jr_lua_ws_class(lua_State *L);

#endif
