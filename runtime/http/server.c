/* HTTP listeners: bind, accept within the connection limit, and shut down
 * gracefully (stop accepting, let in-flight requests finish). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/internal.h"
#include "loop.h"

static void on_connection(uv_stream_t *listener, int status)
{
    struct jr_http_server *s = listener->data;
    if (status < 0) {
        jr_log(s->loop, JR_LOG_WARN, "http: accept failed: %s", uv_strerror(status));
        return;
    }
    jr_http_conn_accept(s);
}

int jr_http_server_listen(struct jr_loop *loop, const char *host, int port,
                          const struct jr_http_limits *limits,
                          const struct jr_tls_options *tls, jr_http_handler handler,
                          void *ud, struct jr_http_server **out, char *err, size_t errlen)
{
    struct sockaddr_storage addr;
    int rc;
    if (strchr(host, ':'))
        rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr);
    else
        rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&addr);
    if (rc != 0) {
        snprintf(err, errlen, "bad listen address %s: %s", host, uv_strerror(rc));
        return -1;
    }
    struct jr_http_server *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (tls && jr_tls_ctx_new(tls, &s->tls, err, errlen) != 0) {
        free(s);
        return -1;
    }
    s->loop = loop;
    s->limits = *limits;
    s->handler = handler;
    s->ud = ud;
    uv_tcp_init(loop->uv, &s->listener);
    s->listener.data = s;
    s->listener_open = 1;
    rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
    if (rc != 0) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", host, port, uv_strerror(rc));
        /* The server frees itself once the listener handle is closed. */
        jr_http_server_shutdown(s, NULL, NULL);
        return -1;
    }
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &len);
    s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
    *out = s;
    return 0;
}

int jr_http_server_port(const struct jr_http_server *s)
{
    return s->port;
}

unsigned jr_http_server_connections(const struct jr_http_server *s)
{
    return s->nconns;
}

static void maybe_done(struct jr_http_server *s)
{
    if (!s->draining || s->listener_open || s->nconns)
        return;
    jr_http_closed done = s->on_closed;
    void *ud = s->closed_ud;
    jr_tls_ctx_free(s->tls);
    free(s->rbuf);
    free(s);
    if (done)
        done(ud);
}

static void on_listener_closed(uv_handle_t *h)
{
    struct jr_http_server *s = h->data;
    s->listener_open = 0;
    maybe_done(s);
}

void jr_http_server_shutdown(struct jr_http_server *s, jr_http_closed done, void *ud)
{
    if (s->draining)
        return;
    s->draining = 1;
    s->on_closed = done;
    s->closed_ud = ud;
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
    for (struct jr_http_conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        jr_http_conn_drain(c);
    }
}

void jr_http_server_abort(struct jr_http_server *s)
{
    for (struct jr_http_conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        jr_http_conn_close(c);
    }
}

void jr_http_server_conn_gone(struct jr_http_server *s, struct jr_http_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    if (s->loop->metrics)
        s->loop->metrics->http_connections--;
    maybe_done(s);
}

const char *jr_http_server_date(struct jr_http_server *s)
{
    time_t now = time(NULL);
    if (now != s->date_time) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(s->date, sizeof(s->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        s->date_time = now;
    }
    return s->date;
}
