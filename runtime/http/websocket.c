/* The WebSocket opening handshake (RFC 6455 §4.2) and the session's
 * transport over an HTTP connection: frames go out through the upgraded
 * exchange's answer buffer, so they leave after earlier pipelined answers,
 * encrypted on TLS like any answer; the connection feeds the session what
 * it reads (conn.c) and owns it. */
#include <ctype.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "crypto/crypto.h"
#include "http/internal.h"
#include "http/ws_internal.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define DEFAULT_MAX_MESSAGE (1024 * 1024)
#define DEFAULT_MAX_QUEUED (1024 * 1024)
#define DEFAULT_PING_MS 30000

static void trim(const char **s, size_t *n)
{
    while (*n && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*n)--;
    }
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

/* True when a comma-separated list in any header named name holds token
 * (case-insensitive); repeated header lines count as one list. */
static int has_token(const struct jr_http_request *req, const char *name, const char *token)
{
    size_t nlen = strlen(name), tlen = strlen(token);
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct jr_http_header *h = &req->headers[i];
        if (h->name_len != nlen || memcmp(req->hbuf.data + h->name_off, name, nlen) != 0)
            continue;
        const char *v = req->hbuf.data + h->value_off, *end = v + h->value_len;
        while (v < end) {
            const char *comma = memchr(v, ',', (size_t)(end - v));
            const char *item = v;
            size_t n = (size_t)((comma ? comma : end) - v);
            trim(&item, &n);
            if (n == tlen && strncasecmp(item, token, n) == 0)
                return 1;
            v = comma ? comma + 1 : end;
        }
    }
    return 0;
}

static int refuse(int status, char *err, size_t errlen, const char *reason)
{
    snprintf(err, errlen, "%s", reason);
    return status;
}

int jr_ws_check_request(const struct jr_http_request *req, char *err, size_t errlen)
{
    if (strcmp(req->method, "GET") != 0)
        return refuse(400, err, errlen, "a WebSocket upgrade must be a GET request");
    if (req->http_major != 1 || req->http_minor < 1)
        return refuse(400, err, errlen, "a WebSocket upgrade needs HTTP/1.1");
    if (!has_token(req, "upgrade", "websocket"))
        return refuse(400, err, errlen,
                      "not a WebSocket upgrade: the Upgrade header must name websocket");
    if (!has_token(req, "connection", "upgrade"))
        return refuse(400, err, errlen,
                      "not a WebSocket upgrade: the Connection header must hold the upgrade token");
    size_t n;
    const char *v = jr_http_request_header(req, "sec-websocket-version", &n);
    if (v)
        trim(&v, &n);
    if (!v || n != 2 || memcmp(v, "13", 2) != 0)
        return refuse(426, err, errlen, "Sec-WebSocket-Version must be 13");
    const char *key = jr_http_request_header(req, "sec-websocket-key", &n);
    if (!key)
        return refuse(400, err, errlen, "the Sec-WebSocket-Key header is missing");
    trim(&key, &n);
    unsigned char raw[32];
    size_t rawlen = 0;
    char why[128];
    if (n != 24 || jr_crypto_b64_decode(key, n, raw, &rawlen, 0, why, sizeof(why)) != 0 ||
        rawlen != 16)
        return refuse(400, err, errlen, "Sec-WebSocket-Key must be the base64 of 16 bytes");
    return 0;
}

int jr_ws_accept_value(const char *key, size_t len, char out[29])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *md_ctx = EVP_MD_CTX_new();
    int ok = md_ctx && EVP_DigestInit_ex(md_ctx, EVP_sha1(), NULL) &&
             EVP_DigestUpdate(md_ctx, key, len) &&
             EVP_DigestUpdate(md_ctx, WS_GUID, sizeof(WS_GUID) - 1) &&
             EVP_DigestFinal_ex(md_ctx, md, &mdlen) && mdlen == 20;
    EVP_MD_CTX_free(md_ctx);
    if (!ok)
        return -1;
    size_t n = jr_crypto_b64_encode(md, 20, out, 0);
    out[n] = '\0';
    return 0;
}

/* ---- the session's transport: the upgraded exchange ---- */

static int io_write(void *ud, const char *data, size_t len)
{
    struct jr_http_exchange *ex = ud;
    if (!ex->conn || ex->conn->closing)
        return -1;
    return jr_buf_add(&ex->out, data, len);
}

static void io_flush(void *ud)
{
    struct jr_http_exchange *ex = ud;
    if (ex->conn)
        jr_http_conn_flush(ex->conn);
}

static size_t io_pending(void *ud)
{
    struct jr_http_exchange *ex = ud;
    if (!ex->conn || ex->conn->closing)
        return ex->out.len;
    return ex->out.len + uv_stream_get_write_queue_size((uv_stream_t *)&ex->conn->tcp);
}

static void io_read(void *ud, int on)
{
    struct jr_http_exchange *ex = ud;
    if (ex->conn)
        jr_http_conn_reading(ex->conn, on);
}

/* The answer is complete: the connection closes once it has gone out. */
static void io_done(void *ud)
{
    struct jr_http_exchange *ex = ud;
    ex->state = EX_DONE;
    ex->keep_alive = 0;
    if (ex->conn)
        jr_http_conn_flush(ex->conn);
}

static const struct jr_ws_io conn_io = {
    .write = io_write,
    .flush = io_flush,
    .pending = io_pending,
    .read = io_read,
    .done = io_done,
};

void jr_http_ws_free(struct jr_ws *ws)
{
    if (!ws)
        return;
    struct jr_http_exchange *ex = ws->io_ud;
    jr_ws_free(ws);
    jr_http_exchange_unref(ex);
}

int jr_http_exchange_websocket(struct jr_http_exchange *ex, const struct jr_ws_handlers *h,
                               const struct jr_ws_options *opts, void *ud, struct jr_ws **out,
                               char *err, size_t errlen)
{
    struct jr_http_conn *c = ex->conn;
    if (!c || c->closing || ex->state != EX_PENDING || !ex->req) {
        snprintf(err, errlen, "the client has gone or the answer was already given");
        return -1;
    }
    int status = jr_ws_check_request(ex->req, err, errlen);
    if (status)
        return status;
    if (!ex->req->upgrade || c->ws) {
        snprintf(err, errlen, "not a WebSocket upgrade: the request did not end the HTTP stream");
        return 400;
    }
    if (c->draining || c->server->draining) {
        snprintf(err, errlen, "the server is shutting down");
        return -1;
    }
    struct jr_ws_options o = {0};
    if (opts)
        o = *opts;
    size_t max_body = c->server->limits.max_body;
    if (!o.max_message)
        o.max_message = max_body < DEFAULT_MAX_MESSAGE ? max_body : DEFAULT_MAX_MESSAGE;
    if (o.max_message > max_body)
        o.max_message = max_body;
    if (!o.max_queued)
        o.max_queued = DEFAULT_MAX_QUEUED;
    if (!o.ping_ms)
        o.ping_ms = DEFAULT_PING_MS;
    size_t klen;
    const char *key = jr_http_request_header(ex->req, "sec-websocket-key", &klen);
    trim(&key, &klen);
    char accept[29];
    struct jr_ws *ws = NULL;
    if (jr_ws_accept_value(key, klen, accept) != 0 ||
        jr_ws_new(&conn_io, ex, h, ud, &o, &ws) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    struct jr_buf *b = &ex->out;
    int rc = jr_buf_addf(b, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                            "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n", accept);
    if (o.headers_len)
        rc |= jr_buf_add(b, o.headers, o.headers_len);
    rc |= jr_buf_addstr(b, "\r\n");
    if (rc) {
        jr_buf_reset(b);
        jr_ws_free(ws);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    ex->state = EX_UPGRADED;
    ex->keep_alive = 0;
    jr_metrics_http(c->server->loop->metrics, ex->route, 101,
                    (double)(uv_hrtime() - ex->arrived_ns) / 1e9);
    jr_http_exchange_ref(ex); /* the session's, dropped by jr_http_ws_free */
    c->ws = ws;
    *out = ws; /* before any callback: the bytes read already may end it */
    jr_http_conn_upgraded(c);
    return 0;
}

/* True when s is well-formed UTF-8 (no overlongs, surrogates or code
 * points past U+10FFFF), as a text message must be. */
int jr_ws_utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
                   : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (len == 0 || i + len > n)
            return 0;
        unsigned cp = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        static const unsigned min[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}
