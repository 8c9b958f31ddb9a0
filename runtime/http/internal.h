/* Structures shared by the HTTP server's listener (server.c), connection
 * (conn.c) and response (response.c) code; not for use outside http/. */
#ifndef JR_HTTP_INTERNAL_H
#define JR_HTTP_INTERNAL_H

#include <time.h>
#include <uv.h>

#include "buf.h"
#include "metrics.h"
#include "http/server.h"
#include "http/tls.h"
#include "loop.h"

struct jr_http_conn;
struct jr_ws;

/* EX_UPGRADED: answered 101; the WebSocket session writes to out until it
 * ends (websocket.c), then EX_DONE. */
enum exchange_state { EX_PENDING, EX_STREAMING, EX_UPGRADED, EX_DONE };

struct jr_http_exchange {
    struct jr_http_conn *conn;      /* NULL once the connection is gone */
    struct jr_http_exchange *next;  /* in the connection's answer queue */
    struct jr_http_request *req;    /* owned */
    struct jr_buf out;              /* answer bytes not yet handed to libuv */
    int refs;
    enum exchange_state state;
    int keep_alive;                 /* decided when the answer starts */
    int chunked;
    int head_only;
    uint64_t arrived_ns;            /* uv_hrtime when the request was read */
    struct jr_metrics_route *route; /* its metrics' labels (NULL: none given) */
};

struct jr_http_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    struct jr_http_server *server;
    struct jr_http_conn *prev, *next;
    struct jr_http_parse parse;
    struct jr_http_exchange *head, *tail;
    unsigned queued;
    unsigned writes_pending;
    int handles_open;
    int closing;
    int reading;
    int no_more_requests;           /* a final request or an error was seen */
    int draining;                   /* the server is shutting down */
    int timer_kind;
    struct jr_tls_conn *tls;        /* NULL on a plain listener */
    struct jr_ws *ws;               /* once upgraded; owned, freed on close */
    int in_parse;                   /* inside jr_http_parse_feed */
    char peer[64];
};

struct jr_http_server {
    struct jr_loop *loop;
    uv_tcp_t listener;
    int port;
    struct jr_http_limits limits;
    struct jr_tls_ctx *tls;         /* NULL on a plain listener */
    jr_http_handler handler;
    void *ud;
    struct jr_http_conn *conns;
    unsigned nconns;
    int draining;
    int listener_open;
    jr_http_closed on_closed;
    void *closed_ud;
    time_t date_time;
    char date[40];
    unsigned long long refused;     /* answers of its own: their request ids */
    /* The read buffer lent to each read in turn (conn.c), NULL until the
     * first; busy while a read's bytes are being consumed. */
    char *rbuf;
    int rbuf_busy;
};

void jr_http_conn_accept(struct jr_http_server *s);
void jr_http_conn_drain(struct jr_http_conn *c);
void jr_http_conn_close(struct jr_http_conn *c);
void jr_http_conn_flush(struct jr_http_conn *c);
/* Start (1) or stop (0) reading the socket, for the WebSocket session. */
void jr_http_conn_reading(struct jr_http_conn *c, int on);
/* c->ws was just set: hand it the bytes read after the upgrade request. */
void jr_http_conn_upgraded(struct jr_http_conn *c);
/* Free a session made by jr_http_exchange_websocket (websocket.c). */
void jr_http_ws_free(struct jr_ws *ws);
/* Called by conn.c when a connection is fully closed. */
void jr_http_server_conn_gone(struct jr_http_server *s, struct jr_http_conn *c);
const char *jr_http_server_date(struct jr_http_server *s);

#endif
