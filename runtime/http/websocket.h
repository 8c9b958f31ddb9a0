/* WebSocket (RFC 6455) on the HTTP server: a handler upgrades its exchange,
 * then exchanges messages over the same connection (TLS included) through
 * libwslay's event API. The connection owns the session and frees it when
 * it closes; on_closed is the owner's last word to the handler. Plain HTTP
 * timeouts stop applying once upgraded: the server pings an idle peer every
 * ping_ms and closes one that has not answered by the next ping. */
#ifndef JR_HTTP_WEBSOCKET_H
#define JR_HTTP_WEBSOCKET_H

#include <stddef.h>

#include "http/parse.h"

struct jr_ws;
struct jr_http_exchange;

enum { JR_WS_TEXT = 1, JR_WS_BINARY = 2 };

/* jr_ws_send's answer when the output queue is at its bound: the message
 * was not queued; wait for on_writable and send again. */
enum { JR_WS_FULL = 1 };

/* Called on the loop, never from inside another jr_ws call's callback
 * chain in a way that frees the session: it stays valid until the
 * connection's close completes, after on_closed. */
struct jr_ws_handlers {
    /* A complete message (JR_WS_TEXT, valid UTF-8, or JR_WS_BINARY). */
    void (*on_message)(void *ud, int opcode, const char *data, size_t len);
    /* The output queue fell below its bound after JR_WS_FULL. May be NULL. */
    void (*on_writable)(void *ud);
    /* The session ended: code is the peer's close code, the one we sent
     * when the peer sent none, or 1006 when the connection just dropped.
     * Called once; any jr_ws_* call after it fails. */
    void (*on_closed)(void *ud, int code);
};

/* Zero fields take the defaults given. */
struct jr_ws_options {
    size_t max_message;  /* received message bound; over it closes 1009.
                            Default: limits.max_body, at most 1 MiB */
    size_t max_queued;   /* output bytes queued before send says FULL;
                            default 1 MiB */
    unsigned ping_ms;    /* idle ping interval; default 30000 */
    const char *headers; /* extra "Name: value\r\n" lines for the 101 */
    size_t headers_len;
};

/* Checks that req is a WebSocket opening handshake: GET, HTTP/1.1,
 * Upgrade: websocket, Connection with the upgrade token,
 * Sec-WebSocket-Version: 13 and a Sec-WebSocket-Key of 16 base64 bytes.
 * Returns 0, or the status to answer (400; 426 for another version, to be
 * answered with Sec-WebSocket-Version: 13) with the reason in err. */
int jr_ws_check_request(const struct jr_http_request *req, char *err, size_t errlen);

/* The Sec-WebSocket-Accept value of a key: base64(SHA-1(key + GUID)), 28
 * characters and a NUL. Returns 0, or -1 when OpenSSL fails. */
int jr_ws_accept_value(const char *key, size_t len, char out[29]);

/* Upgrade the exchange: validate (as jr_ws_check_request), answer 101 and
 * hand the connection's bytes, those already read included, to a new
 * session. Returns 0 with *out set (owned by the connection), 400 or 426
 * with the reason in err, or -1 (the exchange was answered, the client has
 * gone, the server is shutting down, out of memory) with the reason. opts
 * may be NULL. */
int jr_http_exchange_websocket(struct jr_http_exchange *ex, const struct jr_ws_handlers *h,
                               const struct jr_ws_options *opts, void *ud, struct jr_ws **out,
                               char *err, size_t errlen);

/* Queue a message. Returns 0, JR_WS_FULL (not queued: the output queue is
 * at its bound), or -1 (closing or closed, or out of memory). */
int jr_ws_send_text(struct jr_ws *ws, const char *data, size_t len);
int jr_ws_send_binary(struct jr_ws *ws, const char *data, size_t len);
/* Start the closing handshake with code (1000 when 0) and a reason (cut to
 * 123 bytes at a character boundary). The connection closes once the peer
 * answers, or at the next ping tick. Returns 0, or -1 when already
 * closing. */
int jr_ws_close(struct jr_ws *ws, int code, const char *reason);
/* A code an endpoint may send: 1000-1003, 1007-1014, 3000-4999. */
int jr_ws_close_code_valid(int code);
/* Output bytes not yet handed to the kernel (queued and in libuv). */
size_t jr_ws_queued(const struct jr_ws *ws);
/* True until the closing handshake starts or the connection drops. */
int jr_ws_open(const struct jr_ws *ws);
/* Stop (1) or resume (0) reading the peer, for a handler that buffers
 * what it has not consumed. While paused the peer is not timed out. */
void jr_ws_pause(struct jr_ws *ws, int paused);
/* Forget the handlers: no callback is made from now on (their owner is
 * going away). The session closes as it would otherwise. */
void jr_ws_detach(struct jr_ws *ws);

/* True when s is well-formed UTF-8 (no overlongs, surrogates or code
 * points past U+10FFFF), as a text message must be. */
int jr_ws_utf8_valid(const unsigned char *s, size_t n);

#endif
