/* URL inputs: a small HTTP/1.1 GET client on libuv (see fetch.h). One
 * struct per download: resolve (uv_getaddrinfo), connect, (for https) a TLS
 * handshake through memory BIOs, write the request, parse the response with
 * http-parser, write body bytes with uv_fs_write (reading pauses
 * meanwhile), follow redirects. The struct is freed once nothing of it is
 * pending: no handle open, no request queued. */
#include <arpa/inet.h>
#include <errno.h>
#include <http_parser.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "exec/fetch.h"

#define READ_SIZE 65536
/* Ciphertext read per callback: with what a partial record left behind,
 * the plaintext it yields always fits one READ_SIZE buffer. */
#define TLS_READ_SIZE (READ_SIZE / 2)

/* One connection attempt: its own handle, requests and TLS session, freed
 * when the handle is closed, so a redirect never reuses memory libuv still
 * holds. */
struct conn {
    uv_tcp_t tcp;
    uv_connect_t conn;
    SSL *ssl;                    /* https only; owns its two memory BIOs */
    int hs_done;
    struct jr_fetch *f;
};

/* One write on the connection, with its bytes. */
struct wr {
    uv_write_t w;
    struct jr_fetch *f;
    char data[];
};

struct jr_fetch_tls {
    SSL_CTX *ctx;
};

struct jr_fetch {
    uv_loop_t *loop;
    struct jr_fetch_tls **tls;   /* the owner's slot for the shared context */
    char url[2048];
    struct jr_fetch_url u;
    int fd;
    int64_t max_bytes, written, timeout_ms;
    int redirects;
    jr_fetch_cb cb;
    void *arg;
    int finished, aborted;
    int pending;                 /* open handles + queued requests */
    uv_timer_t timer;
    uv_getaddrinfo_t gai;
    int gai_active;
    struct addrinfo *ai, *next;
    struct conn *cx;             /* the current connection, NULL if none */
    int paused;                  /* reading stopped while the file is written */
    char req[2600];
    uv_fs_t fs;
    int writing;
    http_parser hp;
    char location[2048];
    size_t loc_len;
    int in_location, redirect, done_msg;
    char rbuf[READ_SIZE];
    char pbuf[READ_SIZE];        /* https: plaintext out of one read */
    char *wbuf;                  /* body bytes waiting for the file */
    size_t wlen;
};

static void try_connect(struct jr_fetch *f);

int jr_fetch_parse_url(const char *url, struct jr_fetch_url *u, char *why, size_t whylen)
{
    struct http_parser_url pu;
    size_t n = strlen(url);

    memset(u, 0, sizeof *u);
    u->tls = strncasecmp(url, "https://", 8) == 0;
    if (!u->tls && strncasecmp(url, "http://", 7) != 0) {
        snprintf(why, whylen, "not an http:// or https:// URL");
        return -1;
    }
    http_parser_url_init(&pu);
    if (http_parser_parse_url(url, n, 0, &pu) || !(pu.field_set & (1 << UF_HOST))) {
        snprintf(why, whylen, "malformed URL");
        return -1;
    }
    if (pu.field_set & (1 << UF_USERINFO)) {
        snprintf(why, whylen, "credentials in URLs are not supported");
        return -1;
    }
    if (pu.field_data[UF_HOST].len == 0 || pu.field_data[UF_HOST].len >= sizeof u->host) {
        snprintf(why, whylen, "bad host");
        return -1;
    }
    memcpy(u->host, url + pu.field_data[UF_HOST].off, pu.field_data[UF_HOST].len);
    snprintf(u->port, sizeof u->port, "%u", pu.port ? pu.port : u->tls ? 443 : 80);
    if (pu.field_set & (1 << UF_PATH)) {
        size_t off = pu.field_data[UF_PATH].off, end = off + pu.field_data[UF_PATH].len;
        if (pu.field_set & (1 << UF_QUERY))
            end = pu.field_data[UF_QUERY].off + pu.field_data[UF_QUERY].len;
        if (end - off >= sizeof u->path) {
            snprintf(why, whylen, "URL too long");
            return -1;
        }
        memcpy(u->path, url + off, end - off);
    } else {
        snprintf(u->path, sizeof u->path, "/");
    }
    for (const char *p = u->path; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f) {
            snprintf(why, whylen, "control characters or spaces in the URL");
            return -1;
        }
    return 0;
}

static void maybe_free(struct jr_fetch *f)
{
    if (f->pending > 0 || !(f->finished || f->aborted))
        return;
    if (f->ai)
        uv_freeaddrinfo(f->ai);
    if (f->fd >= 0)
        close(f->fd);
    free(f->wbuf);
    free(f);
}

static void on_closed(uv_handle_t *h)
{
    struct jr_fetch *f = h->data;

    f->pending--;
    maybe_free(f);
}

static void on_conn_closed(uv_handle_t *h)
{
    struct conn *cx = h->data;
    struct jr_fetch *f = cx->f;

    SSL_free(cx->ssl);
    free(cx);
    f->pending--;
    maybe_free(f);
}

static void close_tcp(struct jr_fetch *f)
{
    if (f->cx) {
        uv_close((uv_handle_t *)&f->cx->tcp, on_conn_closed);
        f->cx = NULL;
    }
}

/* Ends the download once: the callback, then everything is closed. */
static void finish(struct jr_fetch *f, int ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void finish(struct jr_fetch *f, int ok, const char *fmt, ...)
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
    maybe_free(f);
}

void jr_fetch_abort(struct jr_fetch *f)
{
    if (!f || f->finished || f->aborted)
        return;
    f->aborted = 1;
    f->finished = 1; /* so that finish() does nothing */
    close_tcp(f);
    uv_close((uv_handle_t *)&f->timer, on_closed);
    if (f->gai_active)
        uv_cancel((uv_req_t *)&f->gai);
    maybe_free(f);
}

static void on_timeout(uv_timer_t *t)
{
    struct jr_fetch *f = t->data;

    finish(f, 0, "timed out after %lld s", (long long)(f->timeout_ms / 1000));
}

/* ---- response parsing ---- */

static int on_header_field(http_parser *hp, const char *at, size_t n)
{
    struct jr_fetch *f = hp->data;

    f->in_location = n == 8 && strncasecmp(at, "location", 8) == 0;
    return 0;
}

static int on_header_value(http_parser *hp, const char *at, size_t n)
{
    struct jr_fetch *f = hp->data;

    if (f->in_location && f->loc_len + n < sizeof f->location) {
        memcpy(f->location + f->loc_len, at, n);
        f->loc_len += n;
        f->location[f->loc_len] = 0;
    }
    return 0;
}

static int on_headers_complete(http_parser *hp)
{
    struct jr_fetch *f = hp->data;
    unsigned s = hp->status_code;

    if ((s == 301 || s == 302 || s == 303 || s == 307 || s == 308) && f->loc_len) {
        f->redirect = 1;
        return -1; /* stop parsing: go elsewhere */
    }
    if (s != 200) {
        finish(f, 0, "HTTP %u %s", s, http_status_str((enum http_status)s));
        return -1;
    }
    if (hp->content_length != ULLONG_MAX && (int64_t)hp->content_length > f->max_bytes) {
        finish(f, 0, "too large: %llu bytes, more than the limit of %lld",
               (unsigned long long)hp->content_length, (long long)f->max_bytes);
        return -1;
    }
    return 0;
}

static int on_body(http_parser *hp, const char *at, size_t n)
{
    struct jr_fetch *f = hp->data;

    if (f->written + (int64_t)f->wlen + (int64_t)n > f->max_bytes) {
        finish(f, 0, "too large: more than the limit of %lld bytes", (long long)f->max_bytes);
        return -1;
    }
    memcpy(f->wbuf + f->wlen, at, n); /* one read's body fits: READ_SIZE */
    f->wlen += n;
    return 0;
}

static int on_message_complete(http_parser *hp)
{
    struct jr_fetch *f = hp->data;

    f->done_msg = 1;
    return 0;
}

static const http_parser_settings settings = {
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- redirects ---- */

static void start_url(struct jr_fetch *f);

static void follow(struct jr_fetch *f)
{
    char next[2400], why[200];

    if (++f->redirects > JR_FETCH_MAX_REDIRECTS) {
        finish(f, 0, "more than %d redirects", JR_FETCH_MAX_REDIRECTS);
        return;
    }
    if (f->location[0] == '/' && f->location[1] != '/')
        snprintf(next, sizeof next, "%s://%s%s%s:%s%s", f->u.tls ? "https" : "http",
                 strchr(f->u.host, ':') ? "[" : "", f->u.host,
                 strchr(f->u.host, ':') ? "]" : "", f->u.port, f->location);
    else
        snprintf(next, sizeof next, "%s", f->location);
    if (jr_fetch_parse_url(next, &f->u, why, sizeof why)) {
        finish(f, 0, "redirected to %.300s: %s", next, why);
        return;
    }
    if (strlen(next) >= sizeof f->url) {
        finish(f, 0, "redirected to a URL that is too long");
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
    struct jr_fetch *f = ((struct conn *)h->data)->f;

    (void)hint;
    b->base = f->rbuf;
    b->len = ((struct conn *)h->data)->ssl ? TLS_READ_SIZE : sizeof f->rbuf;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);

static void after_body(struct jr_fetch *f)
{
    if (f->finished)
        return;
    if (f->done_msg)
        finish(f, 1, NULL);
    else if (f->cx && f->paused) {
        f->paused = 0;
        uv_read_start((uv_stream_t *)&f->cx->tcp, on_alloc, on_read);
    }
}

static void on_written(uv_fs_t *r)
{
    struct jr_fetch *f = r->data;
    ssize_t res = r->result;

    uv_fs_req_cleanup(r);
    f->writing = 0;
    f->pending--;
    if (res < 0)
        finish(f, 0, "writing the file: %s", uv_strerror((int)res));
    else if (!f->finished && (size_t)res < f->wlen) { /* short write: the rest */
        memmove(f->wbuf, f->wbuf + res, f->wlen - (size_t)res);
        f->written += res;
        f->wlen -= (size_t)res;
        uv_buf_t b = uv_buf_init(f->wbuf, (unsigned)f->wlen);
        f->fs.data = f;
        if (uv_fs_write(f->loop, &f->fs, f->fd, &b, 1, f->written, on_written) == 0) {
            f->writing = 1;
            f->pending++;
            return;
        }
        finish(f, 0, "writing the file failed");
    } else if (!f->finished) {
        f->written += res;
        f->wlen = 0;
        after_body(f);
    }
    maybe_free(f);
}

static void flush_body(struct jr_fetch *f)
{
    uv_buf_t b;
    int r;

    if (f->wlen == 0) {
        after_body(f);
        return;
    }
    uv_read_stop((uv_stream_t *)&f->cx->tcp);
    f->paused = 1;
    b = uv_buf_init(f->wbuf, (unsigned)f->wlen);
    f->fs.data = f;
    r = uv_fs_write(f->loop, &f->fs, f->fd, &b, 1, f->written, on_written);
    if (r) {
        finish(f, 0, "writing the file: %s", uv_strerror(r));
        return;
    }
    f->writing = 1;
    f->pending++;
}

/* Plaintext response bytes (len may be 0), then the end of the stream if
 * eof: parse, follow a redirect, or hand the body to the file. */
static void deliver(struct jr_fetch *f, const char *data, size_t len, int eof)
{
    size_t used = 0;

    if (len > 0)
        used = http_parser_execute(&f->hp, &settings, data, len);
    if (eof && !f->finished && !f->redirect && used == len &&
        HTTP_PARSER_ERRNO(&f->hp) == HPE_OK)
        http_parser_execute(&f->hp, &settings, NULL, 0);
    if (f->finished)
        return;
    if (f->redirect) {
        follow(f);
        return;
    }
    if (HTTP_PARSER_ERRNO(&f->hp) != HPE_OK || used != len) {
        finish(f, 0, "bad response: %s", http_errno_description(HTTP_PARSER_ERRNO(&f->hp)));
        return;
    }
    if (eof && !f->done_msg) {
        finish(f, 0, "the connection closed before the whole response");
        return;
    }
    flush_body(f);
}

static void on_written_req(uv_write_t *w, int status)
{
    struct wr *r = w->data;
    struct jr_fetch *f = r->f;

    free(r);
    f->pending--;
    if (status && !f->finished && status != UV_ECANCELED)
        finish(f, 0, "sending the request: %s", uv_strerror(status));
    maybe_free(f);
}

/* Queues bytes on the current connection; 0 or -1 (then finished). */
static int send_bytes(struct jr_fetch *f, const char *data, size_t n)
{
    struct wr *r = malloc(sizeof *r + n);
    uv_buf_t b;
    int rc;

    if (!r) {
        finish(f, 0, "out of memory");
        return -1;
    }
    memcpy(r->data, data, n);
    r->f = f;
    r->w.data = r;
    b = uv_buf_init(r->data, (unsigned)n);
    rc = uv_write(&r->w, (uv_stream_t *)&f->cx->tcp, &b, 1, on_written_req);
    if (rc) {
        free(r);
        finish(f, 0, "sending the request: %s", uv_strerror(rc));
        return -1;
    }
    f->pending++;
    return 0;
}

static size_t format_request(struct jr_fetch *f)
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

void jr_fetch_tls_free(struct jr_fetch_tls *tls)
{
    if (!tls)
        return;
    SSL_CTX_free(tls->ctx);
    free(tls);
}

/* The client context in the owner's slot, built on first use; NULL with a
 * reason if the CA store cannot be loaded. */
static SSL_CTX *client_ctx(struct jr_fetch_tls **slot, char *why, size_t whylen)
{
    const char *ca = getenv("JOBRT_CA_FILE");
    SSL_CTX *c;
    unsigned long e;
    char msg[200] = "out of memory";

    if (*slot)
        return (*slot)->ctx;
    ERR_clear_error();
    c = SSL_CTX_new(TLS_client_method());
    if (!c)
        goto fail;
    SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
    SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
    if (ca && *ca ? SSL_CTX_load_verify_locations(c, ca, NULL) != 1
                  : SSL_CTX_set_default_verify_paths(c) != 1)
        goto fail;
    *slot = malloc(sizeof **slot);
    if (!*slot)
        goto fail;
    (*slot)->ctx = c;
    return c;
fail:
    e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, msg, sizeof msg);
    snprintf(why, whylen, "cannot load the CA certificates%s%s: %s",
             ca && *ca ? " from JOBRT_CA_FILE " : "", ca && *ca ? ca : "", msg);
    ERR_clear_error();
    SSL_CTX_free(c);
    return NULL;
}

/* Sends what OpenSSL wrote into the outgoing BIO; 0 or -1 (finished). */
static int tls_flush(struct jr_fetch *f)
{
    char buf[16384];
    int n;

    while ((n = BIO_read(SSL_get_wbio(f->cx->ssl), buf, sizeof buf)) > 0)
        if (send_bytes(f, buf, (size_t)n))
            return -1;
    return 0;
}

static void tls_failed(struct jr_fetch *f, const char *what)
{
    long vr = SSL_get_verify_result(f->cx->ssl);
    unsigned long e = ERR_get_error();
    char msg[256] = "the server closed the connection";

    if (vr != X509_V_OK) {
        finish(f, 0, "certificate verify failed: %s", X509_verify_cert_error_string(vr));
    } else {
        if (e)
            ERR_error_string_n(e, msg, sizeof msg);
        finish(f, 0, "TLS %s with %s:%s failed: %s", what, f->u.host, f->u.port, msg);
    }
    ERR_clear_error();
}

/* Starts the handshake on a connected stream: SNI and the name (or IP
 * address) the certificate must carry. 0 or -1 (finished). */
static int tls_begin(struct jr_fetch *f)
{
    struct conn *cx = f->cx;
    unsigned char addr[16];
    char why[300];
    SSL_CTX *ctx = client_ctx(f->tls, why, sizeof why);
    BIO *rb, *wb;
    int ip, r;

    if (!ctx) {
        finish(f, 0, "%s", why);
        return -1;
    }
    cx->ssl = SSL_new(ctx);
    rb = BIO_new(BIO_s_mem());
    wb = BIO_new(BIO_s_mem());
    if (!cx->ssl || !rb || !wb) {
        BIO_free(rb);
        BIO_free(wb);
        ERR_clear_error();
        finish(f, 0, "out of memory");
        return -1;
    }
    SSL_set_bio(cx->ssl, rb, wb);
    ip = inet_pton(AF_INET, f->u.host, addr) == 1 || inet_pton(AF_INET6, f->u.host, addr) == 1;
    if (ip)
        r = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(cx->ssl), f->u.host) == 1;
    else
        r = SSL_set_tlsext_host_name(cx->ssl, f->u.host) == 1 &&
            SSL_set1_host(cx->ssl, f->u.host) == 1;
    if (!r) {
        tls_failed(f, "setup");
        return -1;
    }
    SSL_set_connect_state(cx->ssl);
    r = SSL_do_handshake(cx->ssl);
    if (r != 1 && SSL_get_error(cx->ssl, r) != SSL_ERROR_WANT_READ) {
        tls_failed(f, "handshake");
        return -1;
    }
    return tls_flush(f);
}

/* Ciphertext in (n bytes, or UV_EOF): drives the handshake, sends the
 * request once it is done, and delivers the plaintext. */
static void tls_read(struct jr_fetch *f, const char *data, ssize_t n)
{
    struct conn *cx = f->cx;
    int eof = n == UV_EOF, r;
    size_t got = 0, len;

    ERR_clear_error();
    if (n > 0 && BIO_write(SSL_get_rbio(cx->ssl), data, (int)n) != (int)n) {
        finish(f, 0, "out of memory");
        return;
    }
    if (!cx->hs_done) {
        r = SSL_do_handshake(cx->ssl);
        if (r != 1) {
            if (SSL_get_error(cx->ssl, r) == SSL_ERROR_WANT_READ && !eof)
                tls_flush(f);
            else
                tls_failed(f, "handshake");
            return;
        }
        cx->hs_done = 1;
        len = format_request(f);
        if (SSL_write(cx->ssl, f->req, (int)len) != (int)len) {
            tls_failed(f, "write");
            return;
        }
    }
    while (got < sizeof f->pbuf) {
        r = SSL_read(cx->ssl, f->pbuf + got, (int)(sizeof f->pbuf - got));
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        r = SSL_get_error(cx->ssl, r);
        if (r == SSL_ERROR_ZERO_RETURN)
            eof = 1;
        else if (r != SSL_ERROR_WANT_READ) {
            tls_failed(f, "read");
            return;
        }
        break;
    }
    if (tls_flush(f))
        return;
    deliver(f, f->pbuf, got, eof);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct conn *cx = s->data;
    struct jr_fetch *f = cx->f;

    if (f->finished || cx != f->cx)
        return;
    if (n == 0)
        return;
    if (n < 0 && n != UV_EOF) {
        finish(f, 0, "reading the response: %s", uv_strerror((int)n));
        return;
    }
    if (cx->ssl)
        tls_read(f, b->base, n);
    else
        deliver(f, n > 0 ? b->base : NULL, n > 0 ? (size_t)n : 0, n == UV_EOF);
}

static void on_connect(uv_connect_t *c, int status)
{
    struct conn *cx = c->data;
    struct jr_fetch *f = cx->f;

    f->pending--;
    if (f->finished || cx != f->cx) {
        maybe_free(f);
        return;
    }
    if (status) {
        close_tcp(f);
        if (f->next) {
            try_connect(f);
            return;
        }
        finish(f, 0, "cannot connect to %s:%s: %s", f->u.host, f->u.port, uv_strerror(status));
        return;
    }
    http_parser_init(&f->hp, HTTP_RESPONSE);
    f->hp.data = f;
    f->loc_len = 0;
    f->location[0] = 0;
    f->redirect = f->done_msg = 0;
    if (f->u.tls ? tls_begin(f) : send_bytes(f, f->req, format_request(f)))
        return;
    f->paused = 0;
    uv_read_start((uv_stream_t *)&cx->tcp, on_alloc, on_read);
}

static void try_connect(struct jr_fetch *f)
{
    struct addrinfo *a = f->next;
    struct conn *cx = calloc(1, sizeof *cx);
    int r;

    f->next = a->ai_next;
    if (!cx) {
        finish(f, 0, "out of memory");
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
        finish(f, 0, "cannot connect to %s:%s: %s", f->u.host, f->u.port, uv_strerror(r));
}

static void on_resolved(uv_getaddrinfo_t *g, int status, struct addrinfo *ai)
{
    struct jr_fetch *f = g->data;

    f->pending--;
    f->gai_active = 0;
    if (f->finished) {
        if (ai)
            uv_freeaddrinfo(ai);
        maybe_free(f);
        return;
    }
    if (status || !ai) {
        finish(f, 0, "cannot resolve %s: %s", f->u.host, uv_strerror(status));
        return;
    }
    f->ai = f->next = ai;
    try_connect(f);
}

static void start_url(struct jr_fetch *f)
{
    struct addrinfo hints;
    int r;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    f->gai.data = f;
    r = uv_getaddrinfo(f->loop, &f->gai, on_resolved, f->u.host, f->u.port, &hints);
    if (r) {
        finish(f, 0, "cannot resolve %s: %s", f->u.host, uv_strerror(r));
        return;
    }
    f->gai_active = 1;
    f->pending++;
}

int jr_fetch_start(uv_loop_t *loop, struct jr_fetch_tls **tls, const char *url, int fd,
                   int64_t max_bytes, int64_t timeout_ms, jr_fetch_cb cb, void *arg,
                   struct jr_fetch **out, struct jr_err *e)
{
    struct jr_fetch *f;
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
    if (jr_fetch_parse_url(url, &f->u, why, sizeof why)) {
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
