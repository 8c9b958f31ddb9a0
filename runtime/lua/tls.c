/* jobrt.tls: TLS client sessions for Lua (the command-line client's https,
 * lua/jobrt/http_client.lua). The same OpenSSL code as the daemon's
 * (http/tls.c) over memory: ciphertext in and out as strings, the socket is
 * the caller's. Peers are verified against the system CA store or a PEM
 * bundle, and against the host name asked for; a client certificate is
 * presented when given (mutual TLS). */
#include <lauxlib.h>
#include <string.h>

#include "buf.h"
#include "http/tls.h"

/* The buffers belong to the session, so a Lua error raised while their
 * bytes are pushed (out of memory) leaks nothing. */
struct lua_tls {
    struct jr_tls_ctx *ctx;   /* this session's own context */
    struct jr_tls_conn *conn; /* NULL once closed */
    struct jr_buf plain, out; /* what the last call produced */
};

static struct lua_tls *check_tls(lua_State *L, int i)
{
    return luaL_checkudata(L, i, "jobrt.tls");
}

static void release(struct lua_tls *t)
{
    jr_tls_conn_free(t->conn);
    jr_tls_ctx_free(t->ctx);
    jr_buf_free(&t->plain);
    jr_buf_free(&t->out);
    t->conn = NULL;
    t->ctx = NULL;
}

/* Pushes the bytes of one of the session's buffers (may raise). */
static void push_buf(lua_State *L, const struct jr_buf *b)
{
    lua_pushlstring(L, b->data ? b->data : "", b->len);
}

/* client(host[, ca_file[, cert, key]]) -> session, first handshake bytes |
 * nil, err. cert and key (PEM files) are presented when the server asks. */
static int l_client(lua_State *L)
{
    const char *host = luaL_checkstring(L, 1);
    const char *ca = luaL_optstring(L, 2, NULL);
    const char *cert = luaL_optstring(L, 3, NULL);
    const char *key = luaL_optstring(L, 4, cert);
    char err[300];
    struct lua_tls *t = lua_newuserdatauv(L, sizeof(*t), 0);

    memset(t, 0, sizeof(*t));
    luaL_setmetatable(L, "jobrt.tls");
    if (jr_tls_client_ctx_new(ca, &t->ctx, err, sizeof(err)))
        goto fail;
    if (cert && jr_tls_ctx_use_cert(t->ctx, cert, key, err, sizeof(err)))
        goto fail;
    if (!(t->conn = jr_tls_client_new(t->ctx, host, err, sizeof(err))))
        goto fail;
    if (jr_tls_start(t->conn, &t->out)) {
        snprintf(err, sizeof(err), "TLS handshake with %s failed: %s", host, jr_tls_reason(t->conn));
        goto fail;
    }
    push_buf(L, &t->out);
    return 2;
fail:
    release(t);
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
}

/* s:feed(ciphertext) -> plaintext, bytes to send, state: "ok", "closed"
 * (the peer ended the session) or "failed" (then the first value is why). */
static int l_feed(lua_State *L)
{
    struct lua_tls *t = check_tls(L, 1);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);

    luaL_argcheck(L, t->conn != NULL, 1, "closed TLS session");
    jr_buf_reset(&t->plain);
    jr_buf_reset(&t->out);
    int rc = jr_tls_feed(t->conn, data, len, &t->plain, &t->out);
    if (rc < 0) {
        const char *verify = jr_tls_verify_error(t->conn);
        if (verify)
            lua_pushfstring(L, "certificate verify failed: %s", verify);
        else
            lua_pushstring(L, jr_tls_reason(t->conn));
        push_buf(L, &t->out);
        lua_pushliteral(L, "failed");
        return 3;
    }
    push_buf(L, &t->plain);
    push_buf(L, &t->out);
    lua_pushstring(L, rc == 1 ? "closed" : "ok");
    return 3;
}

/* s:encrypt(plaintext) -> ciphertext | nil, err */
static int l_encrypt(lua_State *L)
{
    struct lua_tls *t = check_tls(L, 1);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);

    luaL_argcheck(L, t->conn != NULL, 1, "closed TLS session");
    jr_buf_reset(&t->out);
    if (jr_tls_encrypt(t->conn, data, len, &t->out)) {
        lua_pushnil(L);
        lua_pushstring(L, jr_tls_reason(t->conn));
        return 2;
    }
    push_buf(L, &t->out);
    return 1;
}

static int l_established(lua_State *L)
{
    struct lua_tls *t = check_tls(L, 1);
    lua_pushboolean(L, t->conn && jr_tls_established(t->conn));
    return 1;
}

static int l_close(lua_State *L)
{
    release(check_tls(L, 1));
    return 0;
}

static int l_tostring(lua_State *L)
{
    struct lua_tls *t = check_tls(L, 1);
    lua_pushfstring(L, "jobrt.tls (%s)", !t->conn ? "closed"
                                         : jr_tls_established(t->conn) ? jr_tls_version(t->conn)
                                                                       : "handshake");
    return 1;
}

static const luaL_Reg methods[] = {
    {"feed", l_feed},
    {"encrypt", l_encrypt},
    {"established", l_established},
    {"close", l_close},
    {NULL, NULL},
};

static const luaL_Reg meta[] = {
    {"__gc", l_close},
    {"__close", l_close},
    {"__tostring", l_tostring},
    {NULL, NULL},
};

static const luaL_Reg funcs[] = {
    {"client", l_client},
    {NULL, NULL},
};

int luaopen_jobrt_tls(lua_State *L)
{
    luaL_newmetatable(L, "jobrt.tls");
    luaL_setfuncs(L, meta, 0);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    luaL_newlib(L, funcs);
    return 1;
}
