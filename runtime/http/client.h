/* A small HTTP/1.1 GET client on the daemon's libuv loop (used for URL
 * inputs): resolves, connects, sends one request, follows up to three
 * redirects and writes the body (Content-Length, chunked or
 * close-delimited) into a file through the thread pool, within a size cap
 * and an overall timeout. https runs over http/tls.c (a client session on
 * the same stream, with SNI) and verifies the peer's chain and host name
 * against the system CA store, or against the PEM bundle named by the
 * environment variable JOBRT_CA_FILE (read once, at the first https
 * download; for tests and private CAs). Redirects may move between http
 * and https. Nothing here blocks the loop (the CA store is loaded once, on
 * first use). */
#ifndef JR_HTTP_CLIENT_H
#define JR_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "http/tls.h"
#include "store/err.h"

#define JR_HTTP_GET_MAX_REDIRECTS 3

struct jr_http_get;

/* Called once when the download ended, unless aborted first: ok = 1, or 0
 * with a reason ("HTTP 404 Not Found", "timed out after 30 s", "larger
 * than 100 bytes", ...). The download frees itself after the call. */
typedef void (*jr_http_get_cb)(void *arg, int ok, const char *reason);

/* A URL's parts; 0 or -1 with a reason in why (not http(s)://, no
 * host...). tls is 1 for https. */
struct jr_http_url {
    char host[256], port[8], path[2048];
    int tls;
};
int jr_http_url_parse(const char *url, struct jr_http_url *u, char *why, size_t whylen);

/* Starts downloading url into fd (taken: closed by the download).
 * max_bytes and timeout_ms > 0. *tls is the owner's slot for the TLS
 * client context https downloads share: built on first use, freed by the
 * owner with jr_tls_ctx_free once no download uses it. Returns 0 with
 * *out, or an error (bad URL) in e, and then fd is closed and cb is never
 * called. */
int jr_http_get_start(uv_loop_t *loop, struct jr_tls_ctx **tls, const char *url, int fd,
                      int64_t max_bytes, int64_t timeout_ms, jr_http_get_cb cb, void *arg,
                      struct jr_http_get **out, struct jr_err *e);

/* Stops the download; cb will not be called. It frees itself once its
 * handles are closed. */
void jr_http_get_abort(struct jr_http_get *g);

#endif
