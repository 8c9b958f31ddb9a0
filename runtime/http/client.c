/* A small HTTP/1.1 GET client on libuv (see client.h). One struct per
 * download: resolve (uv_getaddrinfo), connect, (for https) a TLS client
 * session of http/tls.c, write the request, parse the response with
 * http-parser, write body bytes with uv_fs_write (reading pauses
 * meanwhile), follow redirects. The struct is freed once nothing of it is
 * pending: no handle open, no request queued. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "http/client_internal.h"

/* One write on the connection, with its bytes. */
struct wr {
    uv_write_t w;
    struct jr_http_get *f;
    char data[];
};

static void try_connect(struct jr_http_get *f);

void jr_http_get_maybe_free(struct jr_http_get *f)
{
    if (f->pending > 0 || !(f->finished || f->aborted))
        return;
    if (f->ai)
        uv_freeaddrinfo(f->ai);
    if (f->fd >= 0)
        close(f->fd);
    free(f->wbuf);
    jr_buf_free(&f->plain);
    jr_buf_free(&f->cipher);
    free(f);
}

static void on_closed(uv_handle_t *h)
{
    struct jr_http_get *f = h->data;

    f->pending--;
    jr_http_get_maybe_free(f);
}

static void on_conn_closed(uv_handle_t *h)
{
    struct conn *cx = h->data;
    struct jr_http_get *f = cx->f;

    jr_tls_conn_free(cx->tls);
    free(cx);
    f->pending--;
    jr_http_get_maybe_free(f);
}

static void close_tcp(struct jr_http_get *f)
{
    if (f->cx) {
        uv_close((uv_handle_t *)&f->cx->tcp, on_conn_closed);
        f->cx = NULL;
    }
}

void jr_http_get_finish(struct jr_http_get *f, int ok, const char *fmt, ...)
{
    char reason[300] = "";
    va_list ap;

    if (f->finished || f->aborted)
        return;
    f->finished = 1;
    if (fmt) {
        va_start(ap, fmt);
        vsnprintf(reason, sizeof reason, fmt, ap);
        va_end(ap);
    }
    close_tcp(f);
    uv_close((uv_handle_t *)&f->timer, on_closed);
    if (f->gai_active)
        uv_cancel((uv_req_t *)&f->gai);
    f->cb(f->arg, ok, reason);
    jr_http_get_maybe_free(f);
}

void jr_http_get_abort(struct jr_http_get *f)
{
    if (!f || f->finished || f->aborted)
        return;
    f->aborted = 1;
    f->finished = 1; /* so that finish() does nothing */
    close_tcp(f);
    uv_close((uv_handle_t *)&f->timer, on_closed);
    if (f->gai_active)
        uv_cancel((uv_req_t *)&f->gai);
    jr_http_get_maybe_free(f);
}

static void on_timeout(uv_timer_t *t)
{
    struct jr_http_get *f = t->data;

    jr_http_get_finish(f, 0, "timed out after %lld s", (long long)(f->timeout_ms / 1000));
}

/* ---- redirects ---- */

static void start_url(struct jr_http_get *f);

void jr_http_get_follow(struct jr_http_get *f)
{
    char next[2400], why[200];

    if (++f->redirects > JR_HTTP_GET_MAX_REDIRECTS) {
        jr_http_get_finish(f, 0, "more than %d redirects", JR_HTTP_GET_MAX_REDIRECTS);
        return;
    }
    const char *loc = f->resp.location;

    if (loc[0] == '/' && loc[1] != '/')
        snprintf(next, sizeof next, "%s://%s%s%s:%s%s", f->u.tls ? "https" : "http",
                 strchr(f->u.host, ':') ? "[" : "", f->u.host,
                 strchr(f->u.host, ':') ? "]" : "", f->u.port, loc);
    else
        snprintf(next, sizeof next, "%s", loc);
    if (jr_http_url_parse(next, &f->u, why, sizeof why)) {
        jr_http_get_finish(f, 0, "redirected to %.300s: %s", next, why);
        return;
    }
    if (strlen(next) >= sizeof f->url) {
        jr_http_get_finish(f, 0, "redirected to a URL that is too long");
        return;
    }
    memcpy(f->url, next, strlen(next) + 1);
    close_tcp(f);
    if (f->ai)
        uv_freeaddrinfo(f->ai);
    f->ai = f->next = NULL;
    start_url(f);
}

/* ---- reading and writing ---- */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    struct jr_http_get *f = ((struct conn *)h->data)->f;

    (void)hint;
    b->base = f->rbuf;
    b->len = ((struct conn *)h->data)->tls ? TLS_READ_SIZE : sizeof f->rbuf;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);

void jr_http_get_resume(struct jr_http_get *f)
{
    f->paused = 0;
    uv_read_start((uv_stream_t *)&f->cx->tcp, on_alloc, on_read);
}

static void on_written_req(uv_write_t *w, int status)
{
    struct wr *r = w->data;
    struct jr_http_get *f = r->f;

    free(r);
    f->pending--;
    if (status && !f->finished && status != UV_ECANCELED)
        jr_http_get_finish(f, 0, "sending the request: %s", uv_strerror(status));
    jr_http_get_maybe_free(f);
}

/* Queues bytes on the current connection; 0 or -1 (then finished). */
static int send_bytes(struct jr_http_get *f, const char *data, size_t n)
{
    struct wr *r = malloc(sizeof *r + n);
    uv_buf_t b;
    int rc;

    if (!r) {
        jr_http_get_finish(f, 0, "out of memory");
        return -1;
    }
    memcpy(r->data, data, n);
    r->f = f;
    r->w.data = r;
    b = uv_buf_init(r->data, (unsigned)n);
    rc = uv_write(&r->w, (uv_stream_t *)&f->cx->tcp, &b, 1, on_written_req);
    if (rc) {
        free(r);
        jr_http_get_finish(f, 0, "sending the request: %s", uv_strerror(rc));
        return -1;
    }
    f->pending++;
    return 0;
}

static size_t format_request(struct jr_http_get *f)
{
    const char *dflt = f->u.tls ? "443" : "80";
    int v6 = strchr(f->u.host, ':') != NULL;
    int n = snprintf(f->req, sizeof f->req, "GET %s HTTP/1.1\r\nHost: %s%s%s%s%s\r\n"
                     "User-Agent: jobrt\r\nAccept: */*\r\nConnection: close\r\n\r\n",
                     f->u.path, v6 ? "[" : "", f->u.host, v6 ? "]" : "",
                     strcmp(f->u.port, dflt) ? ":" : "", strcmp(f->u.port, dflt) ? f->u.port : "");

    return n < 0 ? 0 : (size_t)n < sizeof f->req ? (size_t)n : sizeof f->req - 1;
}

/* ---- TLS (https) ---- */

/* Sends the ciphertext the session produced; 0 or -1 (finished). */
static int tls_flush(struct jr_http_get *f)
{
    int rc = f->cipher.len ? send_bytes(f, f->cipher.data, f->cipher.len) : 0;

    jr_buf_reset(&f->cipher);
    return rc;
}

static void tls_failed(struct jr_http_get *f, const char *what, const char *why)
{
    const char *verify = jr_tls_verify_error(f->cx->tls);

    tls_flush(f); /* the alert, if any */
    if (verify)
        jr_http_get_finish(f, 0, "certificate verify failed: %s", verify);
    else
        jr_http_get_finish(f, 0, "TLS %s with %s:%s failed: %s", what, f->u.host, f->u.port, why);
}

/* Starts the handshake on a connected stream: SNI and the name (or IP
 * address) the certificate must carry. 0 or -1 (finished). */
static int tls_begin(struct jr_http_get *f)
{
    char why[300];

    if (!*f->tls && jr_tls_client_ctx_new(getenv("JOBRT_CA_FILE"), f->tls, why, sizeof why)) {
        jr_http_get_finish(f, 0, "%s", why);
        return -1;
    }
    if (!(f->cx->tls = jr_tls_client_new(*f->tls, f->u.host, why, sizeof why))) {
        jr_http_get_finish(f, 0, "%s", why);
        return -1;
    }
    if (jr_tls_start(f->cx->tls, &f->cipher)) {
        tls_failed(f, "handshake", jr_tls_reason(f->cx->tls));
        return -1;
    }
    return tls_flush(f);
}

/* Ciphertext in (n bytes, or UV_EOF): drives the handshake, sends the
 * request once it is done, and delivers the plaintext. */
static void tls_read(struct jr_http_get *f, const char *data, ssize_t n)
{
    struct conn *cx = f->cx;
    int eof = n == UV_EOF, rc = 0;

    if (n > 0)
        rc = jr_tls_feed(cx->tls, data, (size_t)n, &f->plain, &f->cipher);
    if (rc < 0 || (!jr_tls_established(cx->tls) && (eof || rc > 0))) {
        jr_buf_reset(&f->plain);
        tls_failed(f, jr_tls_established(cx->tls) ? "read" : "handshake",
                   rc < 0 ? jr_tls_reason(cx->tls) : "the server closed the connection");
        return;
    }
    if (rc > 0)
        eof = 1; /* close_notify: the response ends here */
    if (jr_tls_established(cx->tls) && !cx->sent) {
        cx->sent = 1;
        if (jr_tls_encrypt(cx->tls, f->req, format_request(f), &f->cipher)) {
            tls_failed(f, "write", jr_tls_reason(cx->tls));
            return;
        }
    }
    if (tls_flush(f))
        return;
    jr_http_get_deliver(f, f->plain.data, f->plain.len, eof);
    jr_buf_reset(&f->plain);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct conn *cx = s->data;
    struct jr_http_get *f = cx->f;

    if (f->finished || cx != f->cx)
        return;
    if (n == 0)
        return;
    if (n < 0 && n != UV_EOF) {
        jr_http_get_finish(f, 0, "reading the response: %s", uv_strerror((int)n));
        return;
    }
    if (cx->tls)
        tls_read(f, b->base, n);
    else
        jr_http_get_deliver(f, n > 0 ? b->base : NULL, n > 0 ? (size_t)n : 0, n == UV_EOF);
}

static void on_connect(uv_connect_t *c, int status)
{
    struct conn *cx = c->data;
    struct jr_http_get *f = cx->f;

    f->pending--;
    if (f->finished || cx != f->cx) {
        jr_http_get_maybe_free(f);
        return;
    }
    if (status) {
        close_tcp(f);
        if (f->next) {
            try_connect(f);
            return;
        }
        jr_http_get_finish(f, 0, "cannot connect to %s:%s: %s", f->u.host, f->u.port, uv_strerror(status));
        return;
    }
    jr_http_resp_init(&f->resp, f->max_bytes, f->wbuf, READ_SIZE);
    if (f->u.tls ? tls_begin(f) : send_bytes(f, f->req, format_request(f)))
        return;
    f->paused = 0;
    uv_read_start((uv_stream_t *)&cx->tcp, on_alloc, on_read);
}

static void try_connect(struct jr_http_get *f)
{
    struct addrinfo *a = f->next;
    struct conn *cx = calloc(1, sizeof *cx);
    int r;

    f->next = a->ai_next;
    if (!cx) {
        jr_http_get_finish(f, 0, "out of memory");
        return;
    }
    cx->f = f;
    uv_tcp_init(f->loop, &cx->tcp);
    cx->tcp.data = cx;
    f->cx = cx;
    f->pending++;
    cx->conn.data = cx;
    r = uv_tcp_connect(&cx->conn, &cx->tcp, a->ai_addr, on_connect);
    if (r == 0) {
        f->pending++;
        return;
    }
    close_tcp(f);
    if (f->next)
        try_connect(f);
    else
        jr_http_get_finish(f, 0, "cannot connect to %s:%s: %s", f->u.host, f->u.port, uv_strerror(r));
}

static void on_resolved(uv_getaddrinfo_t *g, int status, struct addrinfo *ai)
{
    struct jr_http_get *f = g->data;

    f->pending--;
    f->gai_active = 0;
    if (f->finished) {
        if (ai)
            uv_freeaddrinfo(ai);
        jr_http_get_maybe_free(f);
        return;
    }
    if (status || !ai) {
        jr_http_get_finish(f, 0, "cannot resolve %s: %s", f->u.host, uv_strerror(status));
        return;
    }
    f->ai = f->next = ai;
    try_connect(f);
}

static void start_url(struct jr_http_get *f)
{
    struct addrinfo hints;
    int r;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    f->gai.data = f;
    r = uv_getaddrinfo(f->loop, &f->gai, on_resolved, f->u.host, f->u.port, &hints);
    if (r) {
        jr_http_get_finish(f, 0, "cannot resolve %s: %s", f->u.host, uv_strerror(r));
        return;
    }
    f->gai_active = 1;
    f->pending++;
}

int jr_http_get_start(uv_loop_t *loop, struct jr_tls_ctx **tls, const char *url, int fd,
                      int64_t max_bytes, int64_t timeout_ms, jr_http_get_cb cb, void *arg,
                      struct jr_http_get **out, struct jr_err *e)
{
    struct jr_http_get *f;
    char why[200];

    *out = NULL;
    if (strlen(url) >= sizeof f->url) {
        close(fd);
        return jr_err_set(e, JR_E_INVALID, "URL too long");
    }
    f = calloc(1, sizeof *f);
    if (f)
        f->wbuf = malloc(READ_SIZE);
    if (!f || !f->wbuf) {
        if (f)
            free(f);
        close(fd);
        return jr_err_set(e, JR_E_SYSTEM, "out of memory");
    }
    if (jr_http_url_parse(url, &f->u, why, sizeof why)) {
        free(f->wbuf);
        free(f);
        close(fd);
        return jr_err_set(e, JR_E_INVALID, "%s: %s", url, why);
    }
    snprintf(f->url, sizeof f->url, "%s", url);
    f->loop = loop;
    f->tls = tls;
    f->fd = fd;
    f->max_bytes = max_bytes;
    f->timeout_ms = timeout_ms;
    f->cb = cb;
    f->arg = arg;
    uv_timer_init(loop, &f->timer);
    f->timer.data = f;
    f->pending++;
    uv_timer_start(&f->timer, on_timeout, (uint64_t)timeout_ms, 0);
    *out = f;
    start_url(f);
    return JR_OK;
}

