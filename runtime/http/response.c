/* Exchanges: reference counting and the answer's bytes (status line,
 * headers, fixed-length or chunked body), queued on the connection. */
#include <stdlib.h>
#include <string.h>

#include "http/internal.h"

const struct jr_http_request *jr_http_exchange_request(const struct jr_http_exchange *ex)
{
    return ex->req;
}

const char *jr_http_exchange_peer(const struct jr_http_exchange *ex)
{
    return ex->conn ? ex->conn->peer : "";
}

void jr_http_exchange_ref(struct jr_http_exchange *ex)
{
    ex->refs++;
}

void jr_http_exchange_unref(struct jr_http_exchange *ex)
{
    if (--ex->refs > 0)
        return;
    jr_http_request_free(ex->req);
    jr_buf_free(&ex->out);
    free(ex);
}

int jr_http_exchange_tls(const struct jr_http_exchange *ex, const char **subject,
                         const char **issuer, const char **version, const char **cipher)
{
    if (!ex->conn || !ex->conn->tls)
        return 0;
    *subject = jr_tls_peer_subject(ex->conn->tls);
    *issuer = jr_tls_peer_issuer(ex->conn->tls);
    *version = jr_tls_version(ex->conn->tls);
    *cipher = jr_tls_cipher(ex->conn->tls);
    return 1;
}

int jr_http_exchange_alive(const struct jr_http_exchange *ex)
{
    return ex->conn && !ex->conn->closing && ex->state != EX_DONE;
}

const char *jr_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 423: return "Locked";
    case 424: return "Failed Dependency";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

static int body_allowed(int status)
{
    return !(status < 200 || status == 204 || status == 304);
}

void jr_http_exchange_label(struct jr_http_exchange *ex, struct jr_metrics_route *route)
{
    ex->route = route;
}

/* Status line and the headers the server owns; the answer is counted. */
static int write_head(struct jr_http_exchange *ex, int status, const char *headers,
                      size_t headers_len)
{
    struct jr_http_conn *c = ex->conn;
    struct jr_http_server *s = c->server;
    jr_metrics_http(s->loop->metrics, ex->route, status,
                    (double)(uv_hrtime() - ex->arrived_ns) / 1e9);
    const struct jr_http_request *req = ex->req;
    ex->keep_alive = req && req->keep_alive && !c->draining && !s->draining;
    int minor = req ? req->http_minor : 1;
    struct jr_buf *b = &ex->out;
    int rc = jr_buf_addf(b, "HTTP/1.%d %d %s\r\n", minor ? 1 : 0, status, jr_http_reason(status));
    rc |= jr_buf_add(b, headers, headers_len);
    rc |= jr_buf_addf(b, "Date: %s\r\n", jr_http_server_date(s));
    if (!ex->keep_alive)
        rc |= jr_buf_addstr(b, "Connection: close\r\n");
    else if (minor == 0)
        rc |= jr_buf_addstr(b, "Connection: keep-alive\r\n");
    return rc ? -1 : 0;
}

int jr_http_exchange_respond(struct jr_http_exchange *ex, int status, const char *headers,
                             size_t headers_len, const char *body, size_t body_len)
{
    if (!ex->conn || ex->conn->closing || ex->state != EX_PENDING)
        return -1;
    int rc = write_head(ex, status, headers, headers_len);
    if (body_allowed(status))
        rc |= jr_buf_addf(&ex->out, "Content-Length: %zu\r\n", body_len);
    rc |= jr_buf_addstr(&ex->out, "\r\n");
    if (body_allowed(status) && !ex->head_only)
        rc |= jr_buf_add(&ex->out, body, body_len);
    ex->state = EX_DONE;
    if (rc) {
        jr_http_conn_close(ex->conn);
        return -1;
    }
    jr_http_conn_flush(ex->conn);
    return 0;
}

int jr_http_exchange_start(struct jr_http_exchange *ex, int status, const char *headers,
                           size_t headers_len)
{
    if (!ex->conn || ex->conn->closing || ex->state != EX_PENDING)
        return -1;
    int rc = write_head(ex, status, headers, headers_len);
    /* HTTP/1.0 has no chunked coding: the body ends when the connection does. */
    if (ex->req && ex->req->http_minor == 0) {
        ex->keep_alive = 0;
    } else {
        ex->chunked = 1;
        rc |= jr_buf_addstr(&ex->out, "Transfer-Encoding: chunked\r\n");
    }
    if (!ex->keep_alive && !strstr(ex->out.data, "Connection: close"))
        rc |= jr_buf_addstr(&ex->out, "Connection: close\r\n");
    rc |= jr_buf_addstr(&ex->out, "\r\n");
    ex->state = EX_STREAMING;
    if (rc) {
        jr_http_conn_close(ex->conn);
        return -1;
    }
    jr_http_conn_flush(ex->conn);
    return 0;
}

int jr_http_exchange_write(struct jr_http_exchange *ex, const char *data, size_t len)
{
    if (!ex->conn || ex->conn->closing || ex->state != EX_STREAMING)
        return -1;
    if (len == 0 || ex->head_only)
        return 0;
    int rc = 0;
    if (ex->chunked)
        rc |= jr_buf_addf(&ex->out, "%zx\r\n", len);
    rc |= jr_buf_add(&ex->out, data, len);
    if (ex->chunked)
        rc |= jr_buf_addstr(&ex->out, "\r\n");
    if (rc) {
        jr_http_conn_close(ex->conn);
        return -1;
    }
    jr_http_conn_flush(ex->conn);
    return 0;
}

int jr_http_exchange_finish(struct jr_http_exchange *ex)
{
    if (!ex->conn || ex->conn->closing || ex->state != EX_STREAMING)
        return -1;
    if (ex->chunked && !ex->head_only && jr_buf_addstr(&ex->out, "0\r\n\r\n") != 0) {
        jr_http_conn_close(ex->conn);
        return -1;
    }
    ex->state = EX_DONE;
    jr_http_conn_flush(ex->conn);
    return 0;
}
