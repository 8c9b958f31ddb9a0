/* HTTP request parsing glue: http-parser callbacks that build
 * jr_http_request values and enforce the size limits. */
#include "http/parse.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static struct jr_http_parse *self(http_parser *hp)
{
    return hp->data;
}

/* Returns -1: any other non-zero value from on_headers_complete tells
 * http-parser to skip the body instead of failing. */
static int fail(struct jr_http_parse *p, int status, const char *reason)
{
    if (!p->error_status) {
        p->error_status = status;
        p->error_reason = reason;
    }
    return -1;
}

static int count_header(struct jr_http_parse *p, size_t n)
{
    p->header_bytes += n;
    if (p->header_bytes > p->limits->max_header)
        return fail(p, 431, "request header fields too large");
    return 0;
}

static int on_message_begin(http_parser *hp)
{
    struct jr_http_parse *p = self(hp);
    jr_http_request_free(p->cur);
    p->cur = calloc(1, sizeof(*p->cur));
    if (!p->cur)
        return fail(p, 503, "out of memory");
    p->header_bytes = 0;
    p->in_value = 0;
    return 0;
}

static int on_url(http_parser *hp, const char *at, size_t n)
{
    struct jr_http_parse *p = self(hp);
    if (count_header(p, n))
        return -1;
    if (jr_buf_add(&p->cur->url, at, n))
        return fail(p, 503, "out of memory");
    return 0;
}

/* Counts n more header bytes: -1 past the limit (failed), 1 for a piece
 * of a trailer, 0 for a header's. Trailer fields after a chunked body are
 * not headers (RFC 9110 §6.5.1): merging them would let a client slip
 * past a proxy that filters headers. They count and are dropped. */
static int header_piece(http_parser *hp, size_t n)
{
    if (count_header(self(hp), n))
        return -1;
    return (hp->flags & F_TRAILING) ? 1 : 0;
}

static int on_header_field(http_parser *hp, const char *at, size_t n)
{
    struct jr_http_parse *p = self(hp);
    struct jr_http_request *r = p->cur;
    int piece = header_piece(hp, n);
    if (piece)
        return piece < 0 ? -1 : 0;
    if (r->nheaders == 0 || p->in_value) {
        if (r->nheaders == r->cap_headers) {
            size_t cap = r->cap_headers ? r->cap_headers * 2 : 16;
            struct jr_http_header *h = realloc(r->headers, cap * sizeof(*h));
            if (!h)
                return fail(p, 503, "out of memory");
            r->headers = h;
            r->cap_headers = cap;
        }
        if (r->nheaders && jr_buf_add(&r->hbuf, "", 1))
            return fail(p, 503, "out of memory");
        struct jr_http_header *h = &r->headers[r->nheaders++];
        memset(h, 0, sizeof(*h));
        h->name_off = r->hbuf.len;
        p->in_value = 0;
    }
    size_t start = r->hbuf.len;
    if (jr_buf_add(&r->hbuf, at, n))
        return fail(p, 503, "out of memory");
    for (size_t i = start; i < r->hbuf.len; i++)
        r->hbuf.data[i] = (char)tolower((unsigned char)r->hbuf.data[i]);
    r->headers[r->nheaders - 1].name_len += n;
    return 0;
}

static int on_header_value(http_parser *hp, const char *at, size_t n)
{
    struct jr_http_parse *p = self(hp);
    struct jr_http_request *r = p->cur;
    int piece = header_piece(hp, n);
    if (piece)
        return piece < 0 ? -1 : 0;
    struct jr_http_header *h = &r->headers[r->nheaders - 1];
    if (!p->in_value) {
        /* Names and values share hbuf; a NUL keeps each one a C string. */
        if (jr_buf_add(&r->hbuf, "", 1))
            return fail(p, 503, "out of memory");
        h->value_off = r->hbuf.len;
        p->in_value = 1;
    }
    if (jr_buf_add(&r->hbuf, at, n))
        return fail(p, 503, "out of memory");
    h->value_len += n;
    return 0;
}

static int on_headers_complete(http_parser *hp)
{
    struct jr_http_parse *p = self(hp);
    struct jr_http_request *r = p->cur;
    if (jr_buf_add(&r->hbuf, "", 1))
        return fail(p, 503, "out of memory");
    if (r->nheaders && !p->in_value) {
        /* A field name without a value: http-parser rejects this itself,
         * but keep the header table consistent if it does not. */
        r->headers[r->nheaders - 1].value_off = r->hbuf.len - 1;
    }
    const char *m = http_method_str(hp->method);
    snprintf(r->method, sizeof(r->method), "%s", m);
    r->http_major = hp->http_major;
    r->http_minor = hp->http_minor;
    if (hp->http_major != 1)
        return fail(p, 505, "HTTP version not supported");
    if ((hp->flags & F_CONTENTLENGTH) && hp->content_length > p->limits->max_body)
        return fail(p, 413, "request body too large");
    size_t len;
    const char *expect = jr_http_request_header(r, "expect", &len);
    if (expect) {
        if (len == 12 && strncasecmp(expect, "100-continue", 12) == 0)
            r->expect_continue = 1;
        else
            return fail(p, 417, "unsupported Expect header");
    }
    if (r->expect_continue && p->on_continue)
        p->on_continue(p->ud);
    return 0;
}

static int on_body(http_parser *hp, const char *at, size_t n)
{
    struct jr_http_parse *p = self(hp);
    if (p->cur->body.len + n > p->limits->max_body)
        return fail(p, 413, "request body too large");
    if (jr_buf_add(&p->cur->body, at, n))
        return fail(p, 503, "out of memory");
    return 0;
}

static int on_message_complete(http_parser *hp)
{
    struct jr_http_parse *p = self(hp);
    struct jr_http_request *r = p->cur;
    p->cur = NULL;
    /* After an upgrade request the stream is another protocol's, or, when
     * the handler declines, ends with the answer. */
    int keep_alive = hp->upgrade ? 0 : http_should_keep_alive(hp);
    r->keep_alive = keep_alive;
    r->upgrade = hp->upgrade;
    p->upgraded = hp->upgrade;
    if (!r->body.data)
        jr_buf_add(&r->body, "", 0);
    if (!r->url.data)
        jr_buf_add(&r->url, "", 0);
    p->on_request(p->ud, r); /* r is the callback's now, maybe already freed */
    /* Stop after a request that ends the connection; later bytes are not
     * part of any conversation we will answer. */
    if (!keep_alive)
        http_parser_pause(hp, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void jr_http_parse_init(struct jr_http_parse *p, const struct jr_http_limits *limits,
                        jr_http_on_request on_request, jr_http_on_continue on_continue,
                        void *ud)
{
    memset(p, 0, sizeof(*p));
    http_parser_init(&p->parser, HTTP_REQUEST);
    p->parser.data = p;
    p->limits = limits;
    p->on_request = on_request;
    p->on_continue = on_continue;
    p->ud = ud;
}

int jr_http_parse_feed(struct jr_http_parse *p, const char *data, size_t len)
{
    if (p->error_status)
        return p->error_status;
    if (p->upgraded)
        return jr_buf_add(&p->rest, data, len) ? fail(p, 503, "out of memory"), 503 : 0;
    if (HTTP_PARSER_ERRNO(&p->parser) == HPE_PAUSED)
        return 0; /* the connection is ending; ignore trailing bytes */
    size_t used = http_parser_execute(&p->parser, &settings, data, len);
    enum http_errno err = HTTP_PARSER_ERRNO(&p->parser);
    if (p->error_status)
        return p->error_status;
    if (p->upgraded) {
        if (used < len && jr_buf_add(&p->rest, data + used, len - used))
            return fail(p, 503, "out of memory"), 503;
        return 0;
    }
    if (err == HPE_PAUSED)
        return 0;
    if (err != HPE_OK || used != len) {
        if (err == HPE_HEADER_OVERFLOW)
            fail(p, 431, "request header fields too large");
        else
            fail(p, 400, http_errno_description(err));
        return p->error_status;
    }
    return 0;
}

int jr_http_parse_partial(const struct jr_http_parse *p)
{
    return p->cur != NULL;
}

void jr_http_parse_free(struct jr_http_parse *p)
{
    jr_http_request_free(p->cur);
    p->cur = NULL;
    jr_buf_free(&p->rest);
}

void jr_http_request_free(struct jr_http_request *req)
{
    if (!req)
        return;
    jr_buf_free(&req->url);
    jr_buf_free(&req->hbuf);
    jr_buf_free(&req->body);
    free(req->headers);
    free(req);
}

const char *jr_http_request_header(const struct jr_http_request *req, const char *name,
                                   size_t *len)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct jr_http_header *h = &req->headers[i];
        if (h->name_len == n && memcmp(req->hbuf.data + h->name_off, name, n) == 0) {
            if (len)
                *len = h->value_len;
            return req->hbuf.data + h->value_off;
        }
    }
    return NULL;
}
