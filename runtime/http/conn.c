/* One HTTP connection: reads and parses requests, queues their exchanges
 * so answers leave in request order, enforces the read and idle timeouts,
 * and closes cleanly on every error path. Once upgraded to a WebSocket its
 * bytes go to the session (ws_session.c) and its timer becomes the ping. */
#include <stdlib.h>
#include <string.h>

#include "http/internal.h"
#include "http/ws_internal.h"
#include "loop.h"

enum { TIMER_NONE, TIMER_IDLE, TIMER_READ, TIMER_PING };

struct write_req {
    uv_write_t req;
    char *data;
};

static void exchange_detach(struct jr_http_exchange *ex)
{
    ex->conn = NULL;
    jr_http_exchange_unref(ex);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct jr_http_conn *c = h->data;
    if (--c->handles_open > 0)
        return;
    jr_http_parse_free(&c->parse);
    jr_http_ws_free(c->ws);
    jr_tls_conn_free(c->tls);
    jr_http_server_conn_gone(c->server, c);
    free(c);
}

void jr_http_conn_close(struct jr_http_conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    while (c->head) {
        struct jr_http_exchange *ex = c->head;
        c->head = ex->next;
        exchange_detach(ex);
    }
    c->tail = NULL;
    c->queued = 0;
    if (c->ws)
        jr_ws_gone(c->ws);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

static void on_timer(uv_timer_t *t);

static void set_timer(struct jr_http_conn *c, int kind)
{
    if (c->closing || c->timer_kind == kind)
        return;
    c->timer_kind = kind;
    uv_timer_stop(&c->timer);
    const struct jr_http_limits *l = &c->server->limits;
    if (kind == TIMER_IDLE)
        uv_timer_start(&c->timer, on_timer, l->idle_ms, 0);
    else if (kind == TIMER_READ)
        uv_timer_start(&c->timer, on_timer, l->read_ms, 0);
    else if (kind == TIMER_PING)
        uv_timer_start(&c->timer, on_timer, c->ws->opt.ping_ms, 0);
}

/* Choose the timer that fits what the connection is doing now. */
static void update_timer(struct jr_http_conn *c)
{
    if (c->ws)
        set_timer(c, TIMER_PING);
    else if (jr_http_parse_partial(&c->parse))
        set_timer(c, TIMER_READ);
    else if (!c->head && c->writes_pending == 0)
        set_timer(c, TIMER_IDLE);
    else
        set_timer(c, TIMER_NONE);
}

static void queue_exchange(struct jr_http_conn *c, struct jr_http_exchange *ex)
{
    ex->conn = c;
    if (c->tail)
        c->tail->next = ex;
    else
        c->head = ex;
    c->tail = ex;
    c->queued++;
}

/* Answer a protocol error from C (no handler runs) and end the connection.
 * The answer gets a request id of the server's ("<pid>-c<n>", apart from
 * those jobrt.server makes), which the log line written here carries. */
static void error_answer(struct jr_http_conn *c, int level, int status, const char *reason)
{
    struct jr_log_fields f;
    char h[128];
    memset(&f, 0, sizeof f);
    snprintf(f.request_id, sizeof f.request_id, "%x-c%llx", (unsigned)uv_os_getpid(),
             ++c->server->refused);
    jr_log_with(c->server->loop, level, &f, NULL, "%s http: %s: %d %s", f.request_id, c->peer,
                status, reason);
    struct jr_http_exchange *ex = calloc(1, sizeof(*ex));
    if (!ex) {
        jr_http_conn_close(c);
        return;
    }
    ex->refs = 1;
    ex->req = NULL;
    ex->arrived_ns = uv_hrtime();
    queue_exchange(c, ex);
    c->no_more_requests = 1;
    struct jr_buf body = {0};
    jr_buf_addf(&body, "{\"code\":\"%s\",\"message\":\"%s\"}\n",
                status == 408 ? "RequestTimeout" : status == 413 ? "PayloadTooLarge"
                : status == 431 ? "HeaderTooLarge" : status >= 500 ? "ServerError"
                : "BadRequest", reason);
    snprintf(h, sizeof h, "Content-Type: application/json\r\nX-Request-Id: %s\r\n", f.request_id);
    jr_http_exchange_respond(ex, status, h, strlen(h), body.data ? body.data : "", body.len);
    jr_buf_free(&body);
}

static void on_timer(uv_timer_t *t)
{
    struct jr_http_conn *c = t->data;
    int kind = c->timer_kind;
    c->timer_kind = TIMER_NONE;
    if (kind == TIMER_PING) {
        if (jr_ws_tick(c->ws) != 0)
            jr_http_conn_close(c);
        else
            update_timer(c);
        return;
    }
    if (kind == TIMER_READ && !c->no_more_requests) {
        if (c->reading) {
            uv_read_stop((uv_stream_t *)&c->tcp);
            c->reading = 0;
        }
        error_answer(c, JR_LOG_INFO, 408, "request not received in time");
        /* Do not wait on a client that does not read either. */
        uv_timer_start(&c->timer, on_timer, c->server->limits.read_ms, 0);
        c->timer_kind = TIMER_NONE;
        c->no_more_requests = 2;
        return;
    }
    jr_http_conn_close(c);
}

static void on_write(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    struct jr_http_conn *c = req->data;
    free(w->data);
    free(w);
    c->writes_pending--;
    if (c->closing)
        return;
    if (status < 0) {
        jr_http_conn_close(c);
        return;
    }
    if (c->ws)
        jr_ws_written(c->ws);
    if (c->closing)
        return;
    if (!c->head && c->writes_pending == 0 && c->no_more_requests) {
        jr_http_conn_close(c);
        return;
    }
    update_timer(c);
}

/* Hands the bytes of out to libuv (encrypted first on TLS); out is left
 * empty either way. */
static int write_out(struct jr_http_conn *c, struct jr_buf *out)
{
    struct jr_buf cipher = {0};
    if (c->tls) {
        int rc = jr_tls_encrypt(c->tls, out->data, out->len, &cipher);
        jr_buf_reset(out);
        if (rc != 0) {
            jr_buf_free(&cipher);
            return -1;
        }
        out = &cipher;
    }
    /* Nothing queued: write now. A request's answer then costs one write
     * and no allocation, where uv_write would also re-arm the socket in
     * epoll once its queue drained (a third of the syscalls per request).
     * The WebSocket session is told of its writes by on_write, so its
     * frames keep going through the queue. */
    if (c->writes_pending == 0 && !c->ws && out->len) {
        uv_buf_t now = uv_buf_init(out->data, (unsigned)out->len);
        int n = uv_try_write((uv_stream_t *)&c->tcp, &now, 1);
        if (n == (int)out->len) {
            jr_buf_reset(out);
            jr_buf_free(&cipher);
            return 0;
        }
        if (n < 0 && n != UV_EAGAIN) {
            jr_buf_reset(out);
            jr_buf_free(&cipher);
            return -1;
        }
        if (n > 0) {
            memmove(out->data, out->data + n, out->len - (size_t)n);
            out->len -= (size_t)n;
        }
    }
    struct write_req *w = malloc(sizeof(*w));
    if (!w) {
        jr_buf_free(&cipher);
        return -1;
    }
    size_t len;
    w->data = jr_buf_detach(out, &len);
    w->req.data = c;
    uv_buf_t buf = uv_buf_init(w->data, (unsigned)len);
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_write);
    if (rc != 0) {
        free(w->data);
        free(w);
        return -1;
    }
    c->writes_pending++;
    return 0;
}

static void start_reading(struct jr_http_conn *c);

/* Ciphertext the TLS engine produced by itself (handshake, alerts). */
static int write_raw(struct jr_http_conn *c, struct jr_buf *cipher)
{
    if (cipher->len == 0)
        return 0;
    struct jr_tls_conn *tls = c->tls;
    c->tls = NULL; /* already encrypted */
    int rc = write_out(c, cipher);
    c->tls = tls;
    return rc;
}

void jr_http_conn_flush(struct jr_http_conn *c)
{
    if (c->closing)
        return;
    while (c->head) {
        struct jr_http_exchange *ex = c->head;
        if (ex->out.len && write_out(c, &ex->out) != 0) {
            jr_http_conn_close(c);
            return;
        }
        if (ex->state != EX_DONE)
            break;
        c->head = ex->next;
        if (!c->head)
            c->tail = NULL;
        c->queued--;
        if (!ex->keep_alive)
            c->no_more_requests = 1;
        exchange_detach(ex);
        if (c->no_more_requests) {
            /* Nothing after a closing answer is sent. */
            while (c->head) {
                struct jr_http_exchange *rest = c->head;
                c->head = rest->next;
                exchange_detach(rest);
            }
            c->tail = NULL;
            c->queued = 0;
        }
    }
    if (!c->head && c->no_more_requests && c->writes_pending == 0) {
        jr_http_conn_close(c);
        return;
    }
    if (!c->reading && !c->no_more_requests && c->queued < c->server->limits.max_pipeline)
        start_reading(c);
    update_timer(c);
}

static void on_request(void *ud, struct jr_http_request *req)
{
    struct jr_http_conn *c = ud;
    struct jr_http_exchange *ex = calloc(1, sizeof(*ex));
    if (!ex) {
        jr_http_request_free(req);
        error_answer(c, JR_LOG_ERROR, 503, "out of memory");
        return;
    }
    ex->refs = 1; /* the connection's reference */
    ex->req = req;
    ex->arrived_ns = uv_hrtime();
    ex->head_only = strcmp(req->method, "HEAD") == 0;
    queue_exchange(c, ex);
    if (!req->keep_alive || c->server->draining)
        c->no_more_requests = 1;
    /* The handler may answer at once, which may flush and even close. */
    jr_http_exchange_ref(ex);
    c->server->handler(c->server->ud, ex);
    jr_http_exchange_unref(ex);
}

static void on_continue(void *ud)
{
    struct jr_http_conn *c = ud;
    if (c->head)
        return; /* earlier answers pending: the client will send anyway */
    struct jr_buf out = {0};
    if (jr_buf_addstr(&out, "HTTP/1.1 100 Continue\r\n\r\n") == 0)
        write_out(c, &out);
    jr_buf_free(&out);
}

#define READ_SIZE 65536

/* The server's one read buffer, lent to each read in turn: on_read has
 * consumed its bytes when it returns. A malloc of 64 KiB per read made
 * glibc consolidate its free lists each time (5% of the daemon's time
 * under concurrent submits). Another buffer only while it is lent. */
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct jr_http_server *s = ((struct jr_http_conn *)h->data)->server;

    (void)suggested;
    if (!s->rbuf_busy && (s->rbuf || (s->rbuf = malloc(READ_SIZE)))) {
        s->rbuf_busy = 1;
        buf->base = s->rbuf;
    } else {
        buf->base = malloc(READ_SIZE);
    }
    buf->len = buf->base ? READ_SIZE : 0;
}

static void release(struct jr_http_server *s, const uv_buf_t *buf)
{
    if (buf->base && buf->base == s->rbuf)
        s->rbuf_busy = 0;
    else
        free(buf->base);
}

/* Hands the bytes read after the upgrade request to the new session. */
static void feed_rest(struct jr_http_conn *c)
{
    size_t len;
    char *data = jr_buf_detach(&c->parse.rest, &len);
    jr_ws_feed(c->ws, data, len);
    free(data);
    if (!c->closing)
        update_timer(c);
}

void jr_http_conn_upgraded(struct jr_http_conn *c)
{
    c->no_more_requests = 1;
    /* Inside the parser, on_read feeds them once it returns. */
    if (!c->in_parse)
        feed_rest(c);
}

/* Plaintext read from the peer: the WebSocket session's, or the parser's.
 * Returns 0, or the HTTP status of a protocol error. */
static int consume(struct jr_http_conn *c, const char *data, size_t len)
{
    if (len == 0)
        return 0;
    if (c->ws) {
        jr_ws_feed(c->ws, data, len);
        return 0;
    }
    c->in_parse = 1;
    int status = jr_http_parse_feed(&c->parse, data, len);
    c->in_parse = 0;
    return status;
}

static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
    struct jr_http_conn *c = stream->data;
    struct jr_http_server *s = c->server;
    if (n < 0) {
        release(s, buf);
        /* A client that half-closes after its last request still gets
         * the answers it is owed. */
        if (n == UV_EOF && c->head && !c->ws && !jr_http_parse_partial(&c->parse)) {
            uv_read_stop(stream);
            c->reading = 0;
            c->no_more_requests = 1;
            return;
        }
        jr_http_conn_close(c);
        return;
    }
    if (n == 0 || (c->no_more_requests && !c->ws)) {
        release(s, buf);
        return;
    }
    int was_ws = c->ws != NULL, status;
    if (c->tls) {
        struct jr_buf plain = {0}, cipher = {0};
        int rc = jr_tls_feed(c->tls, buf->base, (size_t)n, &plain, &cipher);
        release(s, buf);
        write_raw(c, &cipher);
        jr_buf_free(&cipher);
        if (rc != 0) {
            jr_buf_free(&plain);
            jr_log(c->server->loop, JR_LOG_INFO, "http: %s: TLS: %s", c->peer,
                   jr_tls_reason(c->tls));
            uv_read_stop(stream);
            c->reading = 0;
            c->no_more_requests = 1;
            if (c->ws || (c->writes_pending == 0 && !c->head))
                jr_http_conn_close(c);
            return;
        }
        status = consume(c, plain.data, plain.len);
        jr_buf_free(&plain);
    } else {
        status = consume(c, buf->base, (size_t)n);
        release(s, buf);
    }
    if (c->closing)
        return;
    if (was_ws)
        return; /* the session's bytes; the session decides on reading */
    if (status) {
        uv_read_stop(stream);
        c->reading = 0;
        error_answer(c, JR_LOG_INFO, status, c->parse.error_reason);
        return;
    }
    if (c->ws) {
        /* Upgraded by the handler of the request just parsed: from now on
         * the session decides when to read. */
        feed_rest(c);
        return;
    }
    if (c->no_more_requests || c->queued >= c->server->limits.max_pipeline) {
        uv_read_stop(stream);
        c->reading = 0;
    }
    update_timer(c);
}

static void start_reading(struct jr_http_conn *c)
{
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
        c->reading = 1;
    else
        jr_http_conn_close(c);
}

void jr_http_conn_reading(struct jr_http_conn *c, int on)
{
    if (c->closing)
        return;
    if (on && !c->reading)
        start_reading(c);
    else if (!on && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
}

static void format_peer(struct jr_http_conn *c)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            uv_ip6_name(a, ip, sizeof(ip));
            port = ntohs(a->sin6_port);
        } else {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            uv_ip4_name(a, ip, sizeof(ip));
            port = ntohs(a->sin_port);
        }
    }
    snprintf(c->peer, sizeof(c->peer), "%s:%d", ip, port);
}

void jr_http_conn_accept(struct jr_http_server *s)
{
    struct jr_http_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->server = s;
    uv_tcp_init(s->loop->uv, &c->tcp);
    uv_timer_init(s->loop->uv, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->handles_open = 2;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    if (s->loop->metrics)
        s->loop->metrics->http_connections++;
    jr_http_parse_init(&c->parse, &s->limits, on_request, on_continue, c);
    if (uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)&c->tcp) != 0) {
        jr_http_conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    format_peer(c);
    if (s->tls && !(c->tls = jr_tls_conn_new(s->tls))) {
        jr_http_conn_close(c);
        return;
    }
    if (s->nconns > s->limits.max_connections) {
        error_answer(c, JR_LOG_WARN, 503, "too many connections (limits.max_connections)");
        return;
    }
    start_reading(c);
    update_timer(c);
}

void jr_http_conn_drain(struct jr_http_conn *c)
{
    if (c->closing)
        return;
    if (c->ws) {
        c->draining = 1;
        jr_ws_close(c->ws, 1001, "server is shutting down");
        return;
    }
    if (!c->head && !jr_http_parse_partial(&c->parse) && c->writes_pending == 0) {
        jr_http_conn_close(c);
        return;
    }
    /* Answers already queued go out; the last one closes the connection. */
    c->no_more_requests = 1;
    c->draining = 1;
}
