/* The HTTP/1.1 server on the libuv loop: listeners, connections, ordered
 * (pipelined) responses, streaming, limits and graceful shutdown. Requests
 * are handed to one handler as exchanges; the handler answers them whenever
 * it likes, and answers go out in request order. */
#ifndef JR_HTTP_SERVER_H
#define JR_HTTP_SERVER_H

#include <stddef.h>

#include "http/parse.h"
#include "http/tls.h"

struct jr_loop;
struct jr_http_server;
struct jr_http_exchange;

/* Called once per complete request. The exchange is valid during the call;
 * take a reference (jr_http_exchange_ref) to answer it later. */
typedef void (*jr_http_handler)(void *ud, struct jr_http_exchange *ex);
typedef void (*jr_http_closed)(void *ud);

/* Bind and listen on host:port (port 0 picks a free one), speaking TLS
 * when tls is not NULL. Returns 0, or -1 with a message in err. */
int jr_http_server_listen(struct jr_loop *loop, const char *host, int port,
                          const struct jr_http_limits *limits,
                          const struct jr_tls_options *tls, jr_http_handler handler,
                          void *ud, struct jr_http_server **out, char *err, size_t errlen);
/* The port actually bound. */
int jr_http_server_port(const struct jr_http_server *s);
/* Stop accepting, close idle connections, let in-flight requests finish
 * (their answers carry Connection: close); once every connection is gone,
 * the server frees itself and calls done(ud). */
void jr_http_server_shutdown(struct jr_http_server *s, jr_http_closed done, void *ud);
/* Close every remaining connection now (after the grace period). */
void jr_http_server_abort(struct jr_http_server *s);
unsigned jr_http_server_connections(const struct jr_http_server *s);

const struct jr_http_request *jr_http_exchange_request(const struct jr_http_exchange *ex);
/* The labels its answer is counted under in the metrics (runtime/metrics.h:
 * surface, method and route template); without them it counts as
 * unrouted. */
struct jr_metrics_route;
void jr_http_exchange_label(struct jr_http_exchange *ex, struct jr_metrics_route *route);
/* The client's address "ip:port", or "" once the connection is gone. */
const char *jr_http_exchange_peer(const struct jr_http_exchange *ex);
void jr_http_exchange_ref(struct jr_http_exchange *ex);
void jr_http_exchange_unref(struct jr_http_exchange *ex);
/* On a TLS connection: fills the client certificate's subject and issuer
 * ("" without one), protocol and cipher, and returns 1; else returns 0. */
int jr_http_exchange_tls(const struct jr_http_exchange *ex, const char **subject,
                         const char **issuer, const char **version, const char **cipher);
/* True while the client is still connected and the answer not finished. */
int jr_http_exchange_alive(const struct jr_http_exchange *ex);

/* Answer in one piece. `headers` is preformatted "Name: value\r\n" lines
 * (validated by the caller). Returns 0, or -1 when the exchange is already
 * answered or the client has gone. */
int jr_http_exchange_respond(struct jr_http_exchange *ex, int status, const char *headers,
                             size_t headers_len, const char *body, size_t body_len);
/* Streaming answer: start, write chunks, finish. Same return convention. */
int jr_http_exchange_start(struct jr_http_exchange *ex, int status, const char *headers,
                           size_t headers_len);
int jr_http_exchange_write(struct jr_http_exchange *ex, const char *data, size_t len);
int jr_http_exchange_finish(struct jr_http_exchange *ex);

const char *jr_http_reason(int status);

#endif
