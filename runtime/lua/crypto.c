/* jobrt.crypto: signature verification, strict base64, digests, HMAC,
 * constant-time comparison, random ids and password hashes for Lua. Each
 * function takes all its arguments as Lua strings first (a wrong type
 * raises), then calls runtime/crypto, which frees what it allocates before
 * returning; results go into Lua-owned buffers. Operational failures return
 * nil, message, CODE. */
#include <lauxlib.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "lua/runtime.h"

#include "crypto/crypto.h"

#define MAX_RANDOM (1 << 20)

static int push_fail(lua_State *L, int status, const char *msg)
{
    lua_pushnil(L);
    lua_pushstring(L, msg);
    lua_pushstring(L, jr_crypto_code(status));
    return 3;
}

/* A string field of table t: required (raises when missing or not a
 * string) or optional (NULL when nil). The string stays anchored in t. */
static const char *string_field(lua_State *L, int t, const char *key, size_t *len, int required)
{
    int type = lua_getfield(L, t, key);
    const char *s = NULL;
    if (type == LUA_TSTRING) {
        s = lua_tolstring(L, -1, len);
    } else if (type != LUA_TNIL || required) {
        luaL_error(L, "verify: field \"%s\" must be a string (got %s)", key, lua_typename(L, type));
    }
    lua_pop(L, 1);
    return s;
}

static int key_format_of(lua_State *L, const char *s, const char *fn)
{
    if (!s || !strcmp(s, "any"))
        return JR_KEY_ANY;
    if (!strcmp(s, "pkcs1"))
        return JR_KEY_PKCS1;
    if (!strcmp(s, "spki"))
        return JR_KEY_SPKI;
    return luaL_error(L, "%s: key_format must be \"pkcs1\", \"spki\" or nil, got \"%s\"", fn, s);
}

/* verify{alg=, key=, sig=, data=, key_format=} -> true | nil, msg, CODE */
static int l_verify(lua_State *L)
{
    size_t keylen, siglen, datalen, alglen;
    char err[256];
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *alg = string_field(L, 1, "alg", &alglen, 1);
    const char *key = string_field(L, 1, "key", &keylen, 1);
    const char *sig = string_field(L, 1, "sig", &siglen, 1);
    const char *data = string_field(L, 1, "data", &datalen, 1);
    int fmt = key_format_of(L, string_field(L, 1, "key_format", NULL, 0), "verify");
    int st = jr_crypto_verify(alg, (const unsigned char *)key, keylen, fmt,
                              (const unsigned char *)sig, siglen, (const unsigned char *)data,
                              datalen, err, sizeof(err));
    if (st != JR_CRYPTO_OK)
        return push_fail(L, st, err);
    lua_pushboolean(L, 1);
    return 1;
}

/* rsa_modulus_sha256(key[, key_format]) -> 64 hex characters of SHA-256
 * over the RSA modulus | nil, msg, CODE */
static int l_rsa_modulus_sha256(lua_State *L)
{
    size_t keylen;
    char hex[65], err[256];
    const char *key = luaL_checklstring(L, 1, &keylen);
    int fmt = key_format_of(L, luaL_optstring(L, 2, NULL), "rsa_modulus_sha256");
    int st = jr_crypto_rsa_modulus_sha256((const unsigned char *)key, keylen, fmt, hex, err, sizeof(err));
    if (st != JR_CRYPTO_OK)
        return push_fail(L, st, err);
    lua_pushlstring(L, hex, 64);
    return 1;
}

static int decode(lua_State *L, int flags)
{
    size_t n, outlen;
    char err[128];
    luaL_Buffer b;
    const char *s = luaL_checklstring(L, 1, &n);
    unsigned char *out = (unsigned char *)luaL_buffinitsize(L, &b, jr_crypto_b64_decoded_max(n));
    if (jr_crypto_b64_decode(s, n, out, &outlen, flags, err, sizeof(err)) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        lua_pushliteral(L, "BAD_BASE64");
        return 3;
    }
    luaL_pushresultsize(&b, outlen);
    return 1;
}

/* base64_decode(s) -> bytes | nil, "... at offset N", "BAD_BASE64".
 * Standard alphabet, padding required. */
static int l_base64_decode(lua_State *L)
{
    return decode(L, 0);
}

/* base64url_decode(s): URL alphabet; padding optional (if present, exact). */
static int l_base64url_decode(lua_State *L)
{
    return decode(L, JR_B64_URL | JR_B64_PAD_OPTIONAL);
}

static int encode(lua_State *L, int flags)
{
    size_t n;
    luaL_Buffer b;
    const char *s = luaL_checklstring(L, 1, &n);
    luaL_argcheck(L, n < ((size_t)-1) / 2, 1, "string too long");
    char *out = luaL_buffinitsize(L, &b, jr_crypto_b64_encoded_len(n, flags) + 1);
    luaL_pushresultsize(&b, jr_crypto_b64_encode((const unsigned char *)s, n, out, flags));
    return 1;
}

/* base64_encode(bytes): standard alphabet with padding. */
static int l_base64_encode(lua_State *L)
{
    return encode(L, 0);
}

/* base64url_encode(bytes): URL alphabet, no padding (RFC 7515 style). */
static int l_base64url_encode(lua_State *L)
{
    return encode(L, JR_B64_URL | JR_B64_NOPAD);
}

/* The raw digest (len bytes) of the string argument, by fn. */
static int digest(lua_State *L, int (*fn)(const void *, size_t, unsigned char *), size_t len,
                  const char *name)
{
    size_t n;
    unsigned char out[JR_SHA512_LEN];
    const char *s = luaL_checklstring(L, 1, &n);
    if (fn(s, n, out) != 0)
        return push_fail(L, JR_CRYPTO_ERROR, name);
    lua_pushlstring(L, (const char *)out, len);
    return 1;
}

static int l_sha256(lua_State *L)
{
    return digest(L, jr_crypto_sha256, JR_SHA256_LEN, "SHA-256 failed");
}

static int l_sha512(lua_State *L)
{
    return digest(L, jr_crypto_sha512, JR_SHA512_LEN, "SHA-512 failed");
}

/* hmac_sha256(key, data) -> 32 raw bytes */
static int l_hmac_sha256(lua_State *L)
{
    size_t kl, n;
    unsigned char out[JR_SHA256_LEN];
    const char *key = luaL_checklstring(L, 1, &kl);
    const char *s = luaL_checklstring(L, 2, &n);
    if (jr_crypto_hmac_sha256(key, kl, s, n, out) != 0)
        return push_fail(L, JR_CRYPTO_ERROR, "HMAC-SHA256 failed");
    lua_pushlstring(L, (const char *)out, sizeof(out));
    return 1;
}

/* hex(bytes) -> lowercase hex */
static int l_hex(lua_State *L)
{
    size_t n;
    luaL_Buffer b;
    const char *s = luaL_checklstring(L, 1, &n);
    luaL_argcheck(L, n < ((size_t)-1) / 2, 1, "string too long");
    char *out = luaL_buffinitsize(L, &b, 2 * n + 1);
    jr_crypto_hex((const unsigned char *)s, n, out);
    luaL_pushresultsize(&b, 2 * n);
    return 1;
}

/* equal(a, b) -> boolean, in time independent of the contents. */
static int l_equal(lua_State *L)
{
    size_t al, bl;
    const char *a = luaL_checklstring(L, 1, &al);
    const char *b = luaL_checklstring(L, 2, &bl);
    lua_pushboolean(L, jr_crypto_equal(a, al, b, bl));
    return 1;
}

static size_t check_count(lua_State *L, int i)
{
    lua_Integer n = luaL_checkinteger(L, i);
    luaL_argcheck(L, n >= 0 && n <= MAX_RANDOM, i, "byte count out of range 0..1048576");
    return (size_t)n;
}

/* random_bytes(n) -> n bytes from the OpenSSL CSPRNG */
static int l_random_bytes(lua_State *L)
{
    luaL_Buffer b;
    size_t n = check_count(L, 1);
    unsigned char *out = (unsigned char *)luaL_buffinitsize(L, &b, n + 1);
    if (jr_crypto_random(out, n) != 0)
        return push_fail(L, JR_CRYPTO_ERROR, "the random generator failed");
    luaL_pushresultsize(&b, n);
    return 1;
}

/* random_id([n_bytes = 16]) -> 2*n lowercase hex characters */
static int l_random_id(lua_State *L)
{
    unsigned char raw[256];
    char hex[512];
    lua_Integer n = luaL_optinteger(L, 1, 16);
    luaL_argcheck(L, n >= 1 && n <= (lua_Integer)sizeof(raw), 1, "byte count out of range 1..256");
    if (jr_crypto_random(raw, (size_t)n) != 0)
        return push_fail(L, JR_CRYPTO_ERROR, "the random generator failed");
    jr_crypto_hex(raw, (size_t)n, hex);
    lua_pushlstring(L, hex, 2 * (size_t)n);
    return 1;
}

static unsigned long opt_param(lua_State *L, int t, const char *key)
{
    if (lua_isnoneornil(L, t))
        return 0;
    lua_getfield(L, t, key);
    lua_Integer v = lua_isnil(L, -1) ? 0 : luaL_checkinteger(L, -1);
    lua_pop(L, 1);
    if (v < 0 || v > 0x7fffffff)
        luaL_error(L, "hash_password: %s out of range", key);
    return (unsigned long)v;
}

/* hash_password(pw[, {N=, r=, p=}]) -> "scrypt$N$r$p$salt$hash" | nil, msg, CODE */
static int l_hash_password(lua_State *L)
{
    size_t n;
    char out[256], err[160];
    const char *pw = luaL_checklstring(L, 1, &n);
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TTABLE);
    unsigned long N = opt_param(L, 2, "N"), r = opt_param(L, 2, "r"), p = opt_param(L, 2, "p");
    int st = jr_crypto_hash_password(pw, n, N, r, p, out, sizeof(out), err, sizeof(err));
    if (st != JR_CRYPTO_OK)
        return push_fail(L, st, err);
    lua_pushstring(L, out);
    return 1;
}

/* verify_password(pw, stored) -> true | nil, msg, "MISMATCH"|"BAD_HASH"|... */
static int l_verify_password(lua_State *L)
{
    size_t n, sl;
    char err[200];
    const char *pw = luaL_checklstring(L, 1, &n);
    const char *stored = luaL_checklstring(L, 2, &sl);
    int st = jr_crypto_verify_password(pw, n, stored, sl, err, sizeof(err));
    if (st != JR_CRYPTO_OK)
        return push_fail(L, st, err);
    lua_pushboolean(L, 1);
    return 1;
}

/* Checking a scrypt hash takes about 0.1 s of CPU: off the loop, on
 * libuv's thread pool, so one login does not stall every other request. */
struct password_work {
    uv_work_t req;
    lua_State *L;
    int callback_ref;
    char *pw, *stored;
    size_t pwlen, storedlen;
    int status;
    char err[200];
};

static void password_work(uv_work_t *req)
{
    struct password_work *w = req->data;
    w->status = jr_crypto_verify_password(w->pw, w->pwlen, w->stored, w->storedlen, w->err,
                                          sizeof(w->err));
}

static void password_done(uv_work_t *req, int status)
{
    struct password_work *w = req->data;
    lua_State *L = w->L;
    int ref = w->callback_ref;
    int st = status == 0 ? w->status : JR_CRYPTO_ERROR;
    char err[200];
    snprintf(err, sizeof(err), "%s", status == 0 ? w->err : "password check canceled");
    OPENSSL_cleanse(w->pw, w->pwlen);
    free(w->pw);
    free(w->stored);
    free(w);
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
    if (st == JR_CRYPTO_OK) {
        lua_pushboolean(L, 1);
        jr_pcall(L, 1, 0);
    } else {
        int n = push_fail(L, st, err);
        jr_pcall(L, n, 0);
    }
}

/* verify_password_async(pw, stored, callback): callback(true) or
 * callback(nil, msg, CODE) later, from the loop. */
static int l_verify_password_async(lua_State *L)
{
    size_t n, sl;
    const char *pw = luaL_checklstring(L, 1, &n);
    const char *stored = luaL_checklstring(L, 2, &sl);
    luaL_checktype(L, 3, LUA_TFUNCTION);
    struct password_work *w = calloc(1, sizeof(*w));
    char *pw_copy = malloc(n + 1), *stored_copy = malloc(sl + 1);
    if (!w || !pw_copy || !stored_copy) {
        free(w);
        free(pw_copy);
        free(stored_copy);
        return luaL_error(L, "out of memory");
    }
    memcpy(pw_copy, pw, n);
    memcpy(stored_copy, stored, sl);
    w->pw = pw_copy;
    w->stored = stored_copy;
    w->pwlen = n;
    w->storedlen = sl;
    w->L = jr_lua_of(L)->L;
    w->req.data = w;
    lua_pushvalue(L, 3);
    w->callback_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if (uv_queue_work(jr_loop_of(L)->uv, &w->req, password_work, password_done) != 0) {
        luaL_unref(L, LUA_REGISTRYINDEX, w->callback_ref);
        free(w->pw);
        free(w->stored);
        free(w);
        return luaL_error(L, "cannot queue the password check");
    }
    return 0;
}

static const luaL_Reg funcs[] = {
    {"verify", l_verify},
    {"verify_password_async", l_verify_password_async},
    {"rsa_modulus_sha256", l_rsa_modulus_sha256},
    {"base64_decode", l_base64_decode},
    {"base64url_decode", l_base64url_decode},
    {"base64_encode", l_base64_encode},
    {"base64url_encode", l_base64url_encode},
    {"sha256", l_sha256},
    {"sha512", l_sha512},
    {"hmac_sha256", l_hmac_sha256},
    {"hex", l_hex},
    {"equal", l_equal},
    {"random_bytes", l_random_bytes},
    {"random_id", l_random_id},
    {"hash_password", l_hash_password},
    {"verify_password", l_verify_password},
    {NULL, NULL},
};

int luaopen_jobrt_crypto(lua_State *L)
{
    luaL_newlib(L, funcs);
    return 1;
}
