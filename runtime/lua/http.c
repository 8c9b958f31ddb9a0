/* jobrt.http: the HTTP server offered to Lua. A listening server calls one
 * Lua handler per request with a request table and an exchange userdata
 * ("jobrt.http_exchange") through which the answer is given, at once or
 * later from a coroutine. */
#include <lauxlib.h>
#include <string.h>

#include "http/server.h"
#include "lua/http_ws.h"
#include "lua/runtime.h"
#include "metrics.h"

struct lua_server {
    struct jr_http_server *server; /* NULL once shut down and freed */
    lua_State *L;
    int handler_ref;               /* the Lua handler */
    int self_ref;                  /* keeps this userdata alive while serving */
    int done_ref;                  /* shutdown callback, or LUA_NOREF */
    int shutting_down;
};

static struct lua_server *check_server(lua_State *L, int i)
{
    return luaL_checkudata(L, i, "jobrt.http_server");
}

static struct lua_exchange *check_exchange(lua_State *L, int i)
{
    return luaL_checkudata(L, i, "jobrt.http_exchange");
}

static void push_request(lua_State *L, struct jr_http_exchange *ex)
{
    const struct jr_http_request *r = jr_http_exchange_request(ex);
    lua_createtable(L, 0, 10);
    lua_pushstring(L, r->method);
    lua_setfield(L, -2, "method");
    const char *url = r->url.data;
    const char *q = strchr(url, '?');
    lua_pushstring(L, url);
    lua_setfield(L, -2, "target");
    if (q) {
        lua_pushlstring(L, url, (size_t)(q - url));
        lua_setfield(L, -2, "path");
        lua_pushstring(L, q + 1);
        lua_setfield(L, -2, "query_string");
    } else {
        lua_pushstring(L, url);
        lua_setfield(L, -2, "path");
        lua_pushliteral(L, "");
        lua_setfield(L, -2, "query_string");
    }
    lua_pushfstring(L, "%d.%d", r->http_major, r->http_minor);
    lua_setfield(L, -2, "version");
    lua_pushstring(L, jr_http_exchange_peer(ex));
    lua_setfield(L, -2, "peer");
    lua_pushlstring(L, r->body.data, r->body.len);
    lua_setfield(L, -2, "body");
    lua_createtable(L, 0, (int)r->nheaders);
    for (size_t i = 0; i < r->nheaders; i++) {
        const struct jr_http_header *h = &r->headers[i];
        lua_pushlstring(L, r->hbuf.data + h->name_off, h->name_len);
        lua_pushvalue(L, -1);
        /* Repeated fields are joined as RFC 9110 §5.3 allows. */
        if (lua_rawget(L, -3) == LUA_TSTRING) {
            lua_pushliteral(L, ", ");
            lua_pushlstring(L, r->hbuf.data + h->value_off, h->value_len);
            lua_concat(L, 3);
        } else {
            lua_pop(L, 1);
            lua_pushlstring(L, r->hbuf.data + h->value_off, h->value_len);
        }
        lua_rawset(L, -3);
    }
    lua_setfield(L, -2, "headers");
    const char *subject, *issuer, *version, *cipher;
    if (jr_http_exchange_tls(ex, &subject, &issuer, &version, &cipher)) {
        lua_createtable(L, 0, 5);
        lua_pushstring(L, subject);
        lua_setfield(L, -2, "subject");
        lua_pushstring(L, issuer);
        lua_setfield(L, -2, "issuer");
        /* The handshake refuses unverifiable certificates, so one that is
         * present here was verified against the listener's client CA. */
        lua_pushboolean(L, subject[0] != '\0');
        lua_setfield(L, -2, "verified");
        lua_pushstring(L, version);
        lua_setfield(L, -2, "version");
        lua_pushstring(L, cipher);
        lua_setfield(L, -2, "cipher");
        lua_setfield(L, -2, "tls");
    }
}

/* Runs protected: builds the request and calls the handler. */
static int dispatch(lua_State *L)
{
    struct lua_server *s = lua_touserdata(L, 1);
    struct jr_http_exchange *ex = lua_touserdata(L, 2);
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->handler_ref);
    push_request(L, ex);
    struct lua_exchange *lx = lua_newuserdatauv(L, sizeof(*lx), 0);
    lx->ex = NULL;
    luaL_setmetatable(L, "jobrt.http_exchange");
    jr_http_exchange_ref(ex);
    lx->ex = ex;
    lua_call(L, 2, 0);
    return 0;
}

static void on_request(void *ud, struct jr_http_exchange *ex)
{
    struct lua_server *s = ud;
    lua_State *L = s->L;
    lua_pushcfunction(L, dispatch);
    lua_pushlightuserdata(L, s);
    lua_pushlightuserdata(L, ex);
    if (jr_pcall(L, 2, 0) != LUA_OK && jr_http_exchange_alive(ex)) {
        static const char body[] = "{\"code\":\"InternalError\",\"message\":\"request dispatch failed\"}";
        static const char hdr[] = "Content-Type: application/json\r\n";
        jr_http_exchange_respond(ex, 500, hdr, sizeof(hdr) - 1, body, sizeof(body) - 1);
    }
}

static unsigned opt_uint(lua_State *L, int t, const char *key, unsigned dflt)
{
    lua_getfield(L, t, key);
    lua_Integer v = lua_isnil(L, -1) ? (lua_Integer)dflt : luaL_checkinteger(L, -1);
    lua_pop(L, 1);
    if (v < 0)
        luaL_error(L, "%s must not be negative", key);
    return (unsigned)v;
}

/* listen{host=, port=, handler=, limits={...}} -> server, or nil, err */
/* The TLS options of the table at t. File names are Lua strings the table
 * keeps alive for the call. */
static void read_tls(lua_State *L, int t, struct jr_tls_options *tls)
{
    lua_getfield(L, t, "cert");
    tls->cert = luaL_checkstring(L, -1);
    lua_getfield(L, t, "key");
    tls->key = luaL_checkstring(L, -1);
    lua_getfield(L, t, "client_ca");
    tls->client_ca = luaL_optstring(L, -1, NULL);
    lua_getfield(L, t, "require_client_cert");
    tls->require_client_cert = lua_toboolean(L, -1);
    lua_pop(L, 4);
}

/* http.check_tls{cert =, key = [, client_ca =]} -> true | nil, message:
 * builds (and frees) the server TLS context a listener with these files
 * would have, so a certificate or key that does not parse, a key that does
 * not match the certificate or a client CA that does not load is found
 * before serving (`jobrt check`). */
static int l_check_tls(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    struct jr_tls_options tls = {0};
    read_tls(L, 1, &tls);
    struct jr_tls_ctx *ctx = NULL;
    char err[512];
    if (jr_tls_ctx_new(&tls, &ctx, err, sizeof(err)) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    jr_tls_ctx_free(ctx);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_listen(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "host");
    const char *host = luaL_checkstring(L, -1);
    lua_getfield(L, 1, "port");
    int port = (int)luaL_checkinteger(L, -1);
    lua_getfield(L, 1, "handler");
    luaL_checktype(L, -1, LUA_TFUNCTION);
    struct jr_http_limits limits = {
        .max_header = 16 * 1024,
        .max_body = 16 * 1024 * 1024,
        .max_connections = 1024,
        .max_pipeline = 64,
        .idle_ms = 60000,
        .read_ms = 30000,
    };
    if (lua_getfield(L, 1, "limits") == LUA_TTABLE) {
        int t = lua_gettop(L);
        limits.max_header = opt_uint(L, t, "max_header", (unsigned)limits.max_header);
        limits.max_body = opt_uint(L, t, "max_body", (unsigned)limits.max_body);
        limits.max_connections = opt_uint(L, t, "max_connections", limits.max_connections);
        limits.max_pipeline = opt_uint(L, t, "max_pipeline", limits.max_pipeline);
        limits.idle_ms = opt_uint(L, t, "idle_ms", limits.idle_ms);
        limits.read_ms = opt_uint(L, t, "read_ms", limits.read_ms);
    }
    lua_pop(L, 1);

    struct jr_tls_options tls = {0};
    int use_tls = lua_getfield(L, 1, "tls") == LUA_TTABLE;
    if (use_tls)
        read_tls(L, lua_gettop(L), &tls);

    struct lua_server *s = lua_newuserdatauv(L, sizeof(*s), 0);
    memset(s, 0, sizeof(*s));
    s->handler_ref = s->self_ref = s->done_ref = LUA_NOREF;
    luaL_setmetatable(L, "jobrt.http_server");
    s->L = jr_lua_of(L)->L;
    char err[256];
    if (jr_http_server_listen(jr_loop_of(L), host, port, &limits, use_tls ? &tls : NULL,
                              on_request, s, &s->server, err, sizeof(err)) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushvalue(L, 4); /* handler */
    s->handler_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, -1);
    s->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 1;
}

static int l_server_port(lua_State *L)
{
    struct lua_server *s = check_server(L, 1);
    if (!s->server)
        return 0;
    lua_pushinteger(L, jr_http_server_port(s->server));
    return 1;
}

static int l_server_connections(lua_State *L)
{
    struct lua_server *s = check_server(L, 1);
    lua_pushinteger(L, s->server ? (lua_Integer)jr_http_server_connections(s->server) : 0);
    return 1;
}

static void on_closed(void *ud)
{
    struct lua_server *s = ud;
    lua_State *L = s->L;
    s->server = NULL;
    int done = s->done_ref;
    s->done_ref = LUA_NOREF;
    luaL_unref(L, LUA_REGISTRYINDEX, s->handler_ref);
    s->handler_ref = LUA_NOREF;
    if (done != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, done);
        luaL_unref(L, LUA_REGISTRYINDEX, done);
        jr_pcall(L, 0, 0);
    }
    /* Last: this may let the userdata be collected. */
    luaL_unref(L, LUA_REGISTRYINDEX, s->self_ref);
    s->self_ref = LUA_NOREF;
}

/* shutdown([done]): stop accepting; done() runs once every connection
 * has closed. */
static int l_server_shutdown(lua_State *L)
{
    struct lua_server *s = check_server(L, 1);
    if (!s->server || s->shutting_down)
        return 0;
    s->shutting_down = 1;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TFUNCTION);
        lua_pushvalue(L, 2);
        s->done_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    jr_http_server_shutdown(s->server, on_closed, s);
    return 0;
}

static int l_server_abort(lua_State *L)
{
    struct lua_server *s = check_server(L, 1);
    if (s->server)
        jr_http_server_abort(s->server);
    return 0;
}

static int l_server_tostring(lua_State *L)
{
    struct lua_server *s = check_server(L, 1);
    if (s->server)
        lua_pushfstring(L, "jobrt.http_server(port %d)", jr_http_server_port(s->server));
    else
        lua_pushliteral(L, "jobrt.http_server(closed)");
    return 1;
}

/* Headers come as {name = value | {values}}; names and values are checked
 * so a handler can never split the response. May raise: only Lua-owned
 * memory is in use. */
static void check_header_part(lua_State *L, const char *s, size_t n, int is_name)
{
    if (n == 0 && is_name)
        luaL_error(L, "empty header name");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_name ? (c <= ' ' || c >= 127 || strchr("()<>@,;:\\\"/[]?={}", c))
                    : (c == '\r' || c == '\n' || c == '\0'))
            luaL_error(L, "invalid character in header %s \"%s\"", is_name ? "name" : "value", s);
    }
}

static void check_header(lua_State *L, int name_idx, int value_idx)
{
    size_t nl, vl;
    const char *name = lua_tolstring(L, name_idx, &nl);
    const char *value = luaL_tolstring(L, value_idx, &vl);
    check_header_part(L, name, nl, 1);
    check_header_part(L, value, vl, 0);
    lua_pop(L, 1);
}

/* Pushes the formatted header block for the table at idx. */
static const char *header_block(lua_State *L, int idx, size_t *len)
{
    lua_newtable(L); /* the formatted lines */
    int lines = lua_gettop(L);
    if (!lua_isnoneornil(L, idx)) {
        luaL_checktype(L, idx, LUA_TTABLE);
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            luaL_argcheck(L, lua_type(L, -2) == LUA_TSTRING, idx, "header names must be strings");
            int is_list = lua_istable(L, -1);
            int count = is_list ? (int)lua_rawlen(L, -1) : 1;
            for (int i = 1; i <= count; i++) {
                if (is_list)
                    lua_rawgeti(L, -1, i);
                else
                    lua_pushvalue(L, -1);
                int value = lua_gettop(L);
                check_header(L, value - 2, value);
                lua_pushvalue(L, value - 2);
                lua_pushliteral(L, ": ");
                luaL_tolstring(L, value, NULL);
                lua_pushliteral(L, "\r\n");
                lua_concat(L, 4);
                lua_rawseti(L, lines, (lua_Integer)lua_rawlen(L, lines) + 1);
                lua_pop(L, 1);
            }
            lua_pop(L, 1);
        }
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    lua_Integer n = (lua_Integer)lua_rawlen(L, lines);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, lines, i);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    lua_remove(L, lines);
    return lua_tolstring(L, -1, len);
}

static int check_status(lua_State *L, int i)
{
    lua_Integer status = luaL_checkinteger(L, i);
    luaL_argcheck(L, status >= 100 && status <= 599, i, "HTTP status out of range");
    return (int)status;
}

static int closed(lua_State *L)
{
    lua_pushnil(L);
    lua_pushliteral(L, "client has gone or the answer was already given");
    return 2;
}

/* ex:respond(status, headers, body) -> true | nil, err */
static int l_respond(lua_State *L)
{
    struct lua_exchange *lx = check_exchange(L, 1);
    int status = check_status(L, 2);
    size_t blen = 0;
    const char *body = luaL_optlstring(L, 4, "", &blen);
    size_t hlen;
    const char *headers = header_block(L, 3, &hlen);
    if (!lx->ex || jr_http_exchange_respond(lx->ex, status, headers, hlen, body, blen) != 0)
        return closed(L);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_start(lua_State *L)
{
    struct lua_exchange *lx = check_exchange(L, 1);
    int status = check_status(L, 2);
    size_t hlen;
    const char *headers = header_block(L, 3, &hlen);
    if (!lx->ex || jr_http_exchange_start(lx->ex, status, headers, hlen) != 0)
        return closed(L);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_write(lua_State *L)
{
    struct lua_exchange *lx = check_exchange(L, 1);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    if (!lx->ex || jr_http_exchange_write(lx->ex, data, len) != 0)
        return closed(L);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_finish(lua_State *L)
{
    struct lua_exchange *lx = check_exchange(L, 1);
    if (!lx->ex || jr_http_exchange_finish(lx->ex) != 0)
        return closed(L);
    lua_pushboolean(L, 1);
    return 1;
}

/* ex:websocket(headers[, opts]) -> ws | nil, status, reason: upgrade to a
 * WebSocket (http_ws.c); opts {max_message =, max_queued = (bytes),
 * ping = (seconds)}. */
static int l_websocket(lua_State *L)
{
    struct lua_exchange *lx = check_exchange(L, 1);
    size_t hlen;
    const char *headers = header_block(L, 2, &hlen);
    if (!lx->ex) {
        lua_pushnil(L);
        lua_pushinteger(L, 503);
        lua_pushliteral(L, "client has gone or the answer was already given");
        return 3;
    }
    return jr_lua_ws_upgrade(L, lx->ex, headers, hlen, 3);
}

static int l_alive(lua_State *L)
{
    struct lua_exchange *lx = check_exchange(L, 1);
    lua_pushboolean(L, lx->ex && jr_http_exchange_alive(lx->ex));
    return 1;
}

/* ex:label(route): count the answer under route, a label set from
 * http.metric_route (nil: unrouted). */
static int l_label(lua_State *L)
{
    struct lua_exchange *lx = check_exchange(L, 1);
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TLIGHTUSERDATA);
    if (lx->ex)
        jr_http_exchange_label(lx->ex, lua_touserdata(L, 2));
    return 0;
}

/* metric_route(surface, method, route) -> a label set for ex:label (a
 * light userdata, valid for the daemon's life), or nil when metrics are
 * not kept. */
static int l_metric_route(lua_State *L)
{
    const char *surface = luaL_checkstring(L, 1);
    const char *method = luaL_checkstring(L, 2);
    const char *route = luaL_checkstring(L, 3);
    struct jr_metrics_route *r = jr_metrics_route(jr_loop_of(L)->metrics, surface, method, route);
    if (!r)
        return 0;
    lua_pushlightuserdata(L, r);
    return 1;
}

static int l_exchange_gc(lua_State *L)
{
    struct lua_exchange *lx = check_exchange(L, 1);
    if (lx->ex) {
        jr_http_exchange_unref(lx->ex);
        lx->ex = NULL;
    }
    return 0;
}

static int l_exchange_tostring(lua_State *L)
{
    struct lua_exchange *lx = check_exchange(L, 1);
    lua_pushfstring(L, "jobrt.http_exchange(%s)", lx->ex && jr_http_exchange_alive(lx->ex) ? "open" : "closed");
    return 1;
}

static const luaL_Reg server_methods[] = {
    {"port", l_server_port},
    {"connections", l_server_connections},
    {"shutdown", l_server_shutdown},
    {"abort", l_server_abort},
    {NULL, NULL},
};

static const luaL_Reg exchange_methods[] = {
    {"respond", l_respond},
    {"start", l_start},
    {"write", l_write},
    {"finish", l_finish},
    {"alive", l_alive},
    {"websocket", l_websocket},
    {"label", l_label},
    {NULL, NULL},
};

static const luaL_Reg funcs[] = {
    {"listen", l_listen},
    {"check_tls", l_check_tls},
    {"metric_route", l_metric_route},
    {NULL, NULL},
};

int luaopen_jobrt_http(lua_State *L)
{
    jr_lua_class(L, "jobrt.http_server", server_methods, NULL, l_server_tostring);
    jr_lua_class(L, "jobrt.http_exchange", exchange_methods, l_exchange_gc,
                 l_exchange_tostring);
    jr_lua_ws_class(L);
    luaL_newlib(L, funcs);
    return 1;
}
