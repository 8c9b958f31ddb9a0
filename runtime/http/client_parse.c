/* The HTTP client's response parser (see client_parse.h): status line and
 * headers with http-parser, a redirect's Location kept, the body checked
 * against the size cap as Content-Length announces it and as it arrives
 * (plain, chunked or until the connection closes). */
#include "http/client_parse.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static int fail(struct jr_http_resp *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int fail(struct jr_http_resp *r, const char *fmt, ...)
{
    va_list ap;

    if (!r->failed) {
        r->failed = 1;
        va_start(ap, fmt);
        vsnprintf(r->why, sizeof r->why, fmt, ap);
        va_end(ap);
    }
    return -1; /* stops http-parser */
}

/* Bytes after the whole response (a server ignoring Connection: close)
 * are not read: whether they arrived in the same read must not matter. */
static int on_message_begin(http_parser *hp)
{
    struct jr_http_resp *r = hp->data;

    return r->done ? -1 : 0;
}

/* A header's name may come in pieces (it straddles two reads): the first
 * nine bytes are kept, enough to tell "location" from longer names. */
static int on_header_field(http_parser *hp, const char *at, size_t n)
{
    struct jr_http_resp *r = hp->data;

    if (r->in_value) {
        r->in_value = 0;
        r->name_len = 0;
    }
    for (size_t i = 0; i < n && r->name_len < sizeof r->name; i++)
        r->name[r->name_len++] = at[i];
    return 0;
}

static int on_header_value(http_parser *hp, const char *at, size_t n)
{
    struct jr_http_resp *r = hp->data;

    r->in_value = 1;
    if (r->name_len == 8 && strncasecmp(r->name, "location", 8) == 0 &&
        r->loc_len + n < sizeof r->location) {
        memcpy(r->location + r->loc_len, at, n);
        r->loc_len += n;
        r->location[r->loc_len] = 0;
    }
    return 0;
}

static int on_headers_complete(http_parser *hp)
{
    struct jr_http_resp *r = hp->data;
    unsigned s = hp->status_code;

    if ((s == 301 || s == 302 || s == 303 || s == 307 || s == 308) && r->loc_len) {
        r->redirect = 1;
        return -1; /* stop parsing: go elsewhere */
    }
    if (s != 200)
        return fail(r, "HTTP %u %s", s, http_status_str((enum http_status)s));
    if (hp->content_length != ULLONG_MAX && hp->content_length > (uint64_t)r->max_bytes)
        return fail(r, "too large: %llu bytes, more than the limit of %lld",
                    (unsigned long long)hp->content_length, (long long)r->max_bytes);
    return 0;
}

static int on_body(http_parser *hp, const char *at, size_t n)
{
    struct jr_http_resp *r = hp->data;

    if (r->taken + (int64_t)r->body_len + (int64_t)n > r->max_bytes)
        return fail(r, "too large: more than the limit of %lld bytes", (long long)r->max_bytes);
    if (n > r->body_cap - r->body_len)
        return fail(r, "more body bytes in one read than the buffer holds");
    memcpy(r->body + r->body_len, at, n);
    r->body_len += n;
    return 0;
}

static int on_message_complete(http_parser *hp)
{
    struct jr_http_resp *r = hp->data;

    r->done = 1;
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void jr_http_resp_init(struct jr_http_resp *r, int64_t max_bytes, char *body, size_t cap)
{
    memset(r, 0, sizeof *r);
    http_parser_init(&r->hp, HTTP_RESPONSE);
    r->hp.data = r;
    r->max_bytes = max_bytes;
    r->body = body;
    r->body_cap = cap;
}

static enum jr_http_resp_state settled(const struct jr_http_resp *r)
{
    if (r->failed)
        return JR_HTTP_RESP_FAILED;
    if (r->redirect)
        return JR_HTTP_RESP_REDIRECT;
    return r->done ? JR_HTTP_RESP_DONE : JR_HTTP_RESP_MORE;
}

enum jr_http_resp_state jr_http_resp_feed(struct jr_http_resp *r, const char *data, size_t len,
                                          int eof)
{
    size_t used = 0;
    enum http_errno err;

    r->body_len = 0;
    if (r->failed || r->redirect || r->done)
        return settled(r);
    if (len > 0)
        used = http_parser_execute(&r->hp, &settings, data, len);
    if (eof && !r->failed && !r->redirect && used == len && HTTP_PARSER_ERRNO(&r->hp) == HPE_OK)
        http_parser_execute(&r->hp, &settings, NULL, 0);
    if (r->failed || r->redirect || r->done)
        return settled(r);
    /* HPE_INVALID_EOF_STATE is http-parser's word for a stream cut short
     * (said below). */
    err = HTTP_PARSER_ERRNO(&r->hp);
    if ((err != HPE_OK && err != HPE_INVALID_EOF_STATE) || used != len) {
        fail(r, "bad response: %s", http_errno_description(err));
        return JR_HTTP_RESP_FAILED;
    }
    if (eof && !r->done) {
        fail(r, "the connection closed before the whole response");
        return JR_HTTP_RESP_FAILED;
    }
    return settled(r);
}
