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

/* The key under which a request's headers table keeps its exchange (a
 * light userdata: no header name can be it). */
static const char headers_key;

/* The value of header name (lower case, as the parser stores names) of
 * the request, repeated fields joined as RFC 9110 §5.3 allows; pushes it,
 * or nothing (returns 0). */
static int push_header(lua_State *L, const struct jr_http_request *r, const char *name,
                       size_t nl)
{
    int found = 0;
    for (size_t i = 0; i < r->nheaders; i++) {
        const struct jr_http_header *h = &r->headers[i];
        if (h->name_len != nl || memcmp(r->hbuf.data + h->name_off, name, nl) != 0)
            continue;
        if (found++)
            lua_pushliteral(L, ", ");
        lua_pushlstring(L, r->hbuf.data + h->value_off, h->value_len);
        if (found > 1)
            lua_concat(L, 3);
    }
    return found > 0;
}

static const struct jr_http_request *headers_request(lua_State *L, int t)
{
    lua_rawgetp(L, t, &headers_key);
    struct lua_exchange *lx = luaL_testudata(L, -1, "jobrt.http_exchange");
    lua_pop(L, 1);
    return lx && lx->ex ? jr_http_exchange_request(lx->ex) : NULL;
}

/* headers[name]: decoded when first asked for, then kept in the table. */
static int l_headers_index(lua_State *L)
{
    size_t nl;
    const struct jr_http_request *r = headers_request(L, 1);
    const char *name = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &nl) : NULL;
    if (!r || !name || !push_header(L, r, name, nl))
        return 0;
    lua_pushvalue(L, 2);
    lua_pushvalue(L, -2);
    lua_rawset(L, 1);
    return 1;
}

static int headers_next(lua_State *L)
{
    lua_settop(L, 2);
    if (lua_next(L, 1))
        return 2;
    lua_pushnil(L);
    return 1;
}

/* pairs(headers): every header, decoded into a plain table walked by next. */
static int l_headers_pairs(lua_State *L)
{
    const struct jr_http_request *r = headers_request(L, 1);
    size_t n = r ? r->nheaders : 0;
    lua_pushcfunction(L, headers_next);
    lua_createtable(L, 0, (int)n);
    for (size_t i = 0; i < n; i++) {
        const struct jr_http_header *h = &r->headers[i];
        lua_pushlstring(L, r->hbuf.data + h->name_off, h->name_len);
        lua_pushvalue(L, -1);
        if (lua_rawget(L, -3) != LUA_TNIL) {
            lua_pop(L, 1);
            continue; /* joined already */
        }
        lua_pop(L, 1);
        push_header(L, r, r->hbuf.data + h->name_off, h->name_len);
        lua_rawset(L, -3);
    }
    lua_pushnil(L);
    return 3;
}

/* The request table of exchange ex, whose userdata is at index lx. Its
 * headers are decoded lazily: most handlers read two or three of them. */
static void push_request(lua_State *L, struct jr_http_exchange *ex, int lx)
{
    const struct jr_http_request *r = jr_http_exchange_request(ex);
    lua_createtable(L, 0, 10);
    lua_pushstring(L, r->method);
    lua_setfield(L, -2, "method");
    const char *url = r->url.data;
    const char *q = strchr(url, '?');
    lua_pushstring(L, url);
    if (q) {
        lua_setfield(L, -2, "target");
        lua_pushlstring(L, url, (size_t)(q - url));
        lua_setfield(L, -2, "path");
        lua_pushstring(L, q + 1);
        lua_setfield(L, -2, "query_string");
    } else { /* the path is the target: the same string */
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, "target");
        lua_setfield(L, -2, "path");
        lua_pushliteral(L, "");
        lua_setfield(L, -2, "query_string");
    }
    if (r->http_major == 1 && r->http_minor <= 1)
        lua_pushstring(L, r->http_minor ? "1.1" : "1.0");
    else
        lua_pushfstring(L, "%d.%d", r->http_major, r->http_minor);
    lua_setfield(L, -2, "version");
    lua_pushstring(L, jr_http_exchange_peer(ex));
    lua_setfield(L, -2, "peer");
    lua_pushlstring(L, r->body.data, r->body.len);
    lua_setfield(L, -2, "body");
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, lx);
    lua_rawsetp(L, -2, &headers_key);
    luaL_setmetatable(L, "jobrt.http_headers");
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
    struct lua_exchange *lx = lua_newuserdatauv(L, sizeof(*lx), 0);
    lx->ex = NULL;
    luaL_setmetatable(L, "jobrt.http_exchange");
    jr_http_exchange_ref(ex);
    lx->ex = ex;
    push_request(L, ex, lua_gettop(L));
    lua_insert(L, -2); /* handler(request, exchange) */
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
/* A character of a header name (RFC 9110's tchar). */
static int is_tchar(unsigned char c)
{
    if (c <= ' ' || c >= 127)
        return 0;
    switch (c) {
    case '(': case ')': case '<': case '>': case '@': case ',': case ';': case ':':
    case '\\': case '"': case '/': case '[': case ']': case '?': case '=': case '{':
    case '}':
        return 0;
    default:
        return 1;
    }
}

static void check_header_part(lua_State *L, const char *s, size_t n, int is_name)
{
    if (n == 0 && is_name)
        luaL_error(L, "empty header name");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_name ? !is_tchar(c) : (c == '\r' || c == '\n' || c == '\0'))
            luaL_error(L, "invalid character in header %s \"%s\"", is_name ? "name" : "value", s);
    }
}

/* A header block being written: in the caller's frame while it fits, else
 * in a userdata left on the stack until the caller returns (an error may
 * leave at any point, so nothing here is malloc'ed). */
struct header_out {
    char small[1024];
    char *buf;
    size_t len, cap;
};

/* The header block for the table at idx into out: "Name: value\r\n" per
 * header (a list value gives a line per element), each checked. */
static void header_block(lua_State *L, int idx, struct header_out *out)
{
    out->buf = out->small;
    out->cap = sizeof out->small;
    out->len = 0;
    if (lua_isnoneornil(L, idx))
        return;
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        luaL_argcheck(L, lua_type(L, -2) == LUA_TSTRING, idx, "header names must be strings");
        int is_list = lua_istable(L, -1);
        int count = is_list ? (int)lua_rawlen(L, -1) : 1;
        for (int i = 1; i <= count; i++) {
            size_t nl, vl;
            if (is_list)
                lua_rawgeti(L, -1, i);
            else
                lua_pushvalue(L, -1);
            int value = lua_gettop(L);
            const char *name = lua_tolstring(L, value - 2, &nl);
            const char *v = luaL_tolstring(L, value, &vl);
            check_header_part(L, name, nl, 1);
            check_header_part(L, v, vl, 0);
            size_t n = out->len;
            if (n + nl + vl + 4 > out->cap) {
                size_t want = n + nl + vl + 4;
                out->cap = out->cap * 2 > want ? out->cap * 2 : want;
                char *bigger = lua_newuserdatauv(L, out->cap, 0);
                memcpy(bigger, out->buf, n);
                /* Below the key, the value, its element and its text,
                 * so the traversal goes on; it stays until the return. */
                lua_insert(L, -5);
                out->buf = bigger;
            }
            memcpy(out->buf + n, name, nl);
            memcpy(out->buf + n + nl, ": ", 2);
            memcpy(out->buf + n + nl + 2, v, vl);
            memcpy(out->buf + n + nl + 2 + vl, "\r\n", 2);
            out->len = n + nl + vl + 4;
            lua_pop(L, 2);
        }
        lua_pop(L, 1);
    }
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
    struct header_out h;
    header_block(L, 3, &h);
    if (!lx->ex || jr_http_exchange_respond(lx->ex, status, h.buf, h.len, body, blen) != 0)
        return closed(L);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_start(lua_State *L)
{
    struct lua_exchange *lx = check_exchange(L, 1);
    int status = check_status(L, 2);
    struct header_out h;
    header_block(L, 3, &h);
    if (!lx->ex || jr_http_exchange_start(lx->ex, status, h.buf, h.len) != 0)
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
    struct header_out h;
    header_block(L, 2, &h);
    if (!lx->ex) {
        lua_pushnil(L);
        lua_pushinteger(L, 503);
        lua_pushliteral(L, "client has gone or the answer was already given");
        return 3;
    }
    return jr_lua_ws_upgrade(L, lx->ex, h.buf, h.len, 3);
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

static int hexval(unsigned char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Pushes s[0..n) with "+" as a space and %XX decoded (all well formed). */
static void push_decoded(lua_State *L, const char *s, size_t n)
{
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, n);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            out[k++] = ' ';
        } else if (s[i] == '%') {
            out[k++] = (char)(hexval((unsigned char)s[i + 1]) * 16 + hexval((unsigned char)s[i + 2]));
            i += 2;
        } else {
            out[k++] = s[i];
        }
    }
    luaL_pushresultsize(&b, k);
}

/* query(qs) -> {key = its first value} | nil, reason: the query string
 * decoded as jobrt.router's parse_query decodes it ("+" a space, %XX a
 * byte, "a" alone the value "", empty keys skipped), in C because every
 * request has one. */
static int l_query(lua_State *L)
{
    size_t n;
    const char *s = luaL_optlstring(L, 1, "", &n);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && !(i + 2 < n && hexval((unsigned char)s[i + 1]) >= 0 &&
                             hexval((unsigned char)s[i + 2]) >= 0)) {
            lua_pushnil(L);
            lua_pushliteral(L, "malformed percent-escape \"");
            lua_pushlstring(L, s + i, n - i < 3 ? n - i : 3);
            lua_pushfstring(L, "\" at byte %d in the query", (int)i + 1);
            lua_concat(L, 3);
            return 2;
        }
    }
    lua_createtable(L, 0, 4);
    for (size_t start = 0; start < n;) {
        const char *amp = memchr(s + start, '&', n - start);
        size_t end = amp ? (size_t)(amp - s) : n;
        const char *eq = memchr(s + start, '=', end - start);
        size_t kend = eq ? (size_t)(eq - s) : end;
        if (kend > start) {
            push_decoded(L, s + start, kend - start);
            lua_pushvalue(L, -1);
            if (lua_rawget(L, -3) == LUA_TNIL) {
                lua_pop(L, 1);
                if (eq)
                    push_decoded(L, eq + 1, end - kend - 1);
                else
                    lua_pushliteral(L, "");
                lua_rawset(L, -3);
            } else {
                lua_pop(L, 2); /* the first value stays */
            }
        }
        start = end + 1;
    }
    return 1;
}

static const luaL_Reg funcs[] = {
    {"listen", l_listen},
    {"query", l_query},
    {"check_tls", l_check_tls},
    {"metric_route", l_metric_route},
    {NULL, NULL},
};

int luaopen_jobrt_http(lua_State *L)
{
    jr_lua_class(L, "jobrt.http_server", server_methods, NULL, l_server_tostring);
    jr_lua_class(L, "jobrt.http_exchange", exchange_methods, l_exchange_gc,
                 l_exchange_tostring);
    luaL_newmetatable(L, "jobrt.http_headers");
    lua_pushcfunction(L, l_headers_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_headers_pairs);
    lua_setfield(L, -2, "__pairs");
    lua_pop(L, 1);
    jr_lua_ws_class(L);
    luaL_newlib(L, funcs);
    return 1;
}
