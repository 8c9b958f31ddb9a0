/* WebSockets for Lua handlers ("jobrt.http_websocket"): exchange:websocket()
 * upgrades and returns an object whose receive and send wait on the loop
 * like the other async calls (jr_lua_wait): receive for the next message
 * or a timeout, send while the output queue is over its bound. Messages
 * not yet received are kept here; past max_message bytes of them the peer
 * is not read until the handler catches up. The connection owns the C
 * session; this object keeps itself alive until the session's on_closed. */
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "http/websocket.h"
#include "lua/http_ws.h"
#include "lua/runtime.h"

#define WS_MT "jobrt.http_websocket"
#define DEFAULT_INBOX (1024 * 1024)

struct msg {
    struct msg *next;
    int opcode;
    size_t len;
    char data[];
};

struct lua_ws;

/* Outlives its lua_ws until the handle's close callback. */
struct ws_timer {
    uv_timer_t h;
    struct lua_ws *lw;   /* NULL once the object is collected */
};

struct lua_ws {
    struct jr_ws *ws;      /* NULL once the session ended (or detached) */
    lua_State *L;          /* the main thread, for callbacks */
    struct msg *head, *tail;
    size_t inbox, max_inbox;
    int close_code;
    int recv_ref, send_ref; /* wake functions of a waiting receive / send */
    int self_ref;          /* held while the session may call back */
    struct ws_timer *timer;
};

static struct lua_ws *check_ws(lua_State *L, int i)
{
    return luaL_checkudata(L, i, WS_MT);
}

/* Calls the wake function at *ref (if any) with one boolean. */
static void wake(struct lua_ws *lw, int *ref, int flag)
{
    if (*ref == LUA_NOREF)
        return;
    lua_State *L = lw->L;
    int r = *ref;
    *ref = LUA_NOREF;
    if (ref == &lw->recv_ref && lw->timer)
        uv_timer_stop(&lw->timer->h);
    lua_rawgeti(L, LUA_REGISTRYINDEX, r);
    luaL_unref(L, LUA_REGISTRYINDEX, r);
    lua_pushboolean(L, flag);
    jr_pcall(L, 1, 0);
}

static void on_message(void *ud, int opcode, const char *data, size_t len)
{
    struct lua_ws *lw = ud;
    struct msg *m = malloc(sizeof(*m) + len);
    if (!m) {
        jr_ws_close(lw->ws, 1011, "out of memory");
        return;
    }
    m->next = NULL;
    m->opcode = opcode;
    m->len = len;
    memcpy(m->data, data, len);
    if (lw->tail)
        lw->tail->next = m;
    else
        lw->head = m;
    lw->tail = m;
    lw->inbox += len;
    if (lw->inbox > lw->max_inbox)
        jr_ws_pause(lw->ws, 1);
    wake(lw, &lw->recv_ref, 0);
}

static void on_writable(void *ud)
{
    struct lua_ws *lw = ud;
    wake(lw, &lw->send_ref, 0);
}

static void on_closed(void *ud, int code)
{
    struct lua_ws *lw = ud;
    lw->ws = NULL;
    lw->close_code = code;
    wake(lw, &lw->recv_ref, 0);
    wake(lw, &lw->send_ref, 0);
    /* Last: this may let the object be collected. */
    int self = lw->self_ref;
    lw->self_ref = LUA_NOREF;
    luaL_unref(lw->L, LUA_REGISTRYINDEX, self);
}

static const struct jr_ws_handlers handlers = {on_message, on_writable, on_closed};

static size_t opt_size(lua_State *L, int t, const char *key)
{
    lua_getfield(L, t, key);
    lua_Integer v = lua_isnil(L, -1) ? 0 : luaL_checkinteger(L, -1);
    lua_pop(L, 1);
    if (v < 0)
        luaL_error(L, "websocket option %s must not be negative", key);
    return (size_t)v;
}

int jr_lua_ws_upgrade(lua_State *L, struct jr_http_exchange *ex, const char *headers,
                      size_t headers_len, int opts)
{
    struct jr_ws_options o = {.headers = headers, .headers_len = headers_len};
    if (opts && !lua_isnoneornil(L, opts)) {
        luaL_checktype(L, opts, LUA_TTABLE);
        o.max_message = opt_size(L, opts, "max_message");
        o.max_queued = opt_size(L, opts, "max_queued");
        lua_getfield(L, opts, "ping");
        lua_Number ping = lua_isnil(L, -1) ? 0 : luaL_checknumber(L, -1);
        lua_pop(L, 1);
        if (!(ping >= 0 && ping <= 86400))
            luaL_error(L, "websocket option ping must be between 0 and 86400 seconds");
        o.ping_ms = ping > 0 && ping < 0.001 ? 1 : (unsigned)(ping * 1000);
    }
    struct lua_ws *lw = lua_newuserdatauv(L, sizeof(*lw), 0);
    memset(lw, 0, sizeof(*lw));
    lw->recv_ref = lw->send_ref = lw->self_ref = LUA_NOREF;
    lw->L = jr_lua_of(L)->L;
    lw->max_inbox = o.max_message ? o.max_message : DEFAULT_INBOX;
    luaL_setmetatable(L, WS_MT);
    /* Before the upgrade: the bytes read with the request may end the
     * session (on_closed) before it returns. */
    lua_pushvalue(L, -1);
    lw->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    char err[256];
    int rc = jr_http_exchange_websocket(ex, &handlers, &o, lw, &lw->ws, err, sizeof(err));
    if (rc == 0)
        return 1;
    luaL_unref(L, LUA_REGISTRYINDEX, lw->self_ref);
    lw->self_ref = LUA_NOREF;
    lw->ws = NULL;
    lua_pushnil(L);
    lua_pushinteger(L, rc > 0 ? rc : 503);
    lua_pushstring(L, err);
    return 3;
}

static void on_timer(uv_timer_t *h)
{
    struct ws_timer *t = h->data;
    if (t->lw)
        wake(t->lw, &t->lw->recv_ref, 1);
}

static void on_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

/* register(wake) for jr_lua_wait: upvalue 1 the object, 2 the timeout in
 * ms (0 = none) or -1 for a send. */
static int register_wait(lua_State *L)
{
    struct lua_ws *lw = check_ws(L, lua_upvalueindex(1));
    lua_Integer ms = lua_tointeger(L, lua_upvalueindex(2));
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_pushvalue(L, 1);
    int ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if (ms < 0) {
        lw->send_ref = ref;
        return 0;
    }
    lw->recv_ref = ref;
    if (ms > 0) {
        if (!lw->timer) {
            lw->timer = calloc(1, sizeof(*lw->timer));
            if (!lw->timer)
                return luaL_error(L, "out of memory");
            uv_timer_init(jr_loop_of(L)->uv, &lw->timer->h);
            lw->timer->h.data = lw->timer;
            lw->timer->lw = lw;
        }
        uv_timer_start(&lw->timer->h, on_timer, (uint64_t)ms, 0);
    }
    return 0;
}

/* Waits (yields) with register_wait for ms, then continues with k. */
static int wait_for(lua_State *L, lua_Integer ms, lua_KFunction k)
{
    lua_pushcfunction(L, jr_lua_wait);
    lua_pushvalue(L, 1);
    lua_pushinteger(L, ms);
    lua_pushcclosure(L, register_wait, 2);
    lua_callk(L, 1, 1, 1, k);
    return k(L, LUA_OK, 1);
}

static int receive_k(lua_State *L, int status, lua_KContext ctx)
{
    struct lua_ws *lw = check_ws(L, 1);
    (void)status;
    int timed_out = 0;
    if (ctx) {
        /* back from a wait: its value (true for the timer) is on top */
        timed_out = lua_toboolean(L, -1);
        lua_settop(L, 2);
    }
    if (lw->head) {
        struct msg *m = lw->head;
        lw->head = m->next;
        if (!lw->head)
            lw->tail = NULL;
        lw->inbox -= m->len;
        lua_pushlstring(L, m->data, m->len);
        lua_pushstring(L, m->opcode == JR_WS_TEXT ? "text" : "binary");
        free(m);
        if (lw->ws && lw->inbox <= lw->max_inbox)
            jr_ws_pause(lw->ws, 0);
        return 2;
    }
    if (!lw->ws) {
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        lua_pushinteger(L, lw->close_code);
        return 3;
    }
    lua_Number secs = luaL_optnumber(L, 2, -1);
    if (timed_out || secs == 0 || !lua_isyieldable(L)) {
        lua_pushnil(L);
        lua_pushliteral(L, "timeout");
        return 2;
    }
    if (lw->recv_ref != LUA_NOREF)
        return luaL_error(L, "another coroutine is receiving on this WebSocket");
    lua_Integer ms = secs < 0 ? 0 : secs < 0.001 ? 1 : (lua_Integer)(secs * 1000);
    return wait_for(L, ms, receive_k);
}

/* ws:receive([timeout_s]) -> data, "text" | "binary"; nil, "timeout";
 * nil, "closed", code. Without a timeout it waits for a message or the
 * end; with 0, or outside a coroutine, it does not wait. */
static int l_receive(lua_State *L)
{
    check_ws(L, 1);
    if (!lua_isnoneornil(L, 2))
        luaL_argcheck(L, luaL_checknumber(L, 2) >= 0, 2, "timeout must not be negative");
    lua_settop(L, 2);
    return receive_k(L, LUA_OK, 0);
}

static int send_k(lua_State *L, int status, lua_KContext ctx)
{
    struct lua_ws *lw = check_ws(L, 1);
    (void)status;
    if (ctx)
        lua_settop(L, 3);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    static const char *const kinds[] = {"text", "binary", NULL};
    int binary = luaL_checkoption(L, 3, "text", kinds);
    if (!lw->ws) {
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        return 2;
    }
    if (!binary && !jr_ws_utf8_valid((const unsigned char *)data, len)) {
        lua_pushnil(L);
        lua_pushliteral(L, "a text message must be valid UTF-8");
        return 2;
    }
    int rc = binary ? jr_ws_send_binary(lw->ws, data, len) : jr_ws_send_text(lw->ws, data, len);
    if (rc == 0) {
        lua_pushboolean(L, 1);
        return 1;
    }
    if (rc < 0 || !lua_isyieldable(L)) {
        lua_pushnil(L);
        if (rc < 0)
            lua_pushliteral(L, "closed");
        else
            lua_pushliteral(L, "the output queue is full");
        return 2;
    }
    if (lw->send_ref != LUA_NOREF)
        return luaL_error(L, "another coroutine is sending on this WebSocket");
    return wait_for(L, -1, send_k);
}

/* ws:send(data[, "text" | "binary"]) -> true | nil, err. Waits while the
 * output queue is over its bound (outside a coroutine: nil, "the output
 * queue is full"); err "closed" once the session is closing or closed. */
static int l_send(lua_State *L)
{
    check_ws(L, 1);
    luaL_checkstring(L, 2);
    lua_settop(L, 3);
    return send_k(L, LUA_OK, 0);
}

/* ws:close([code[, reason]]) -> true | nil, "closed": start the closing
 * handshake (code 1000 by default). */
static int l_close(lua_State *L)
{
    struct lua_ws *lw = check_ws(L, 1);
    lua_Integer code = luaL_optinteger(L, 2, 1000);
    const char *reason = luaL_optstring(L, 3, NULL);
    luaL_argcheck(L, code >= 0 && code <= 4999 && jr_ws_close_code_valid((int)code), 2,
                  "not a close code an endpoint may send");
    if (!lw->ws || jr_ws_close(lw->ws, (int)code, reason) != 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* __close(ws, err): leaving the scope closes normally. */
static int l_close_scope(lua_State *L)
{
    struct lua_ws *lw = check_ws(L, 1);
    if (lw->ws)
        jr_ws_close(lw->ws, 1000, NULL);
    return 0;
}

/* ws:alive() -> true until the closing handshake starts or the peer goes. */
static int l_alive(lua_State *L)
{
    struct lua_ws *lw = check_ws(L, 1);
    lua_pushboolean(L, lw->ws && jr_ws_open(lw->ws));
    return 1;
}

/* ws:queued() -> output bytes not yet handed to the kernel. */
static int l_queued(lua_State *L)
{
    struct lua_ws *lw = check_ws(L, 1);
    lua_pushinteger(L, lw->ws ? (lua_Integer)jr_ws_queued(lw->ws) : 0);
    return 1;
}

/* __gc: reached while the session is open only when the state closes. */
static int l_gc(lua_State *L)
{
    struct lua_ws *lw = check_ws(L, 1);
    while (lw->head) {
        struct msg *m = lw->head;
        lw->head = m->next;
        free(m);
    }
    lw->tail = NULL;
    if (lw->timer) {
        lw->timer->lw = NULL;
        /* At exit the loop's last walk may have closed it already. */
        if (uv_is_closing((uv_handle_t *)&lw->timer->h))
            free(lw->timer);
        else
            uv_close((uv_handle_t *)&lw->timer->h, on_timer_closed);
        lw->timer = NULL;
    }
    if (lw->ws) {
        jr_ws_detach(lw->ws);
        jr_ws_close(lw->ws, 1001, NULL);
        lw->ws = NULL;
    }
    return 0;
}

static int l_tostring(lua_State *L)
{
    struct lua_ws *lw = check_ws(L, 1);
    lua_pushfstring(L, WS_MT "(%s)", lw->ws && jr_ws_open(lw->ws) ? "open" : "closed");
    return 1;
}

static const luaL_Reg methods[] = {
    {"receive", l_receive},
    {"send", l_send},
    {"close", l_close},
    {"alive", l_alive},
    {"queued", l_queued},
    {NULL, NULL},
};

void jr_lua_ws_class(lua_State *L)
{
    jr_lua_class(L, WS_MT, methods, l_gc, l_tostring);
    /* `local ws <close>` ends the session politely, not as a collection. */
    luaL_getmetatable(L, WS_MT);
    lua_pushcfunction(L, l_close_scope);
    lua_setfield(L, -2, "__close");
    lua_pop(L, 1);
}
