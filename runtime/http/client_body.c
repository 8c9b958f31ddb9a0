/* The response side of an HTTP GET (see client.h): the status and headers
 * parsed with http-parser (a redirect's Location kept), the body checked
 * against the size cap and written into the file with uv_fs_write while
 * reading pauses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/client_internal.h"

/* ---- response parsing ---- */

static int on_header_field(http_parser *hp, const char *at, size_t n)
{
    struct jr_http_get *f = hp->data;

    f->in_location = n == 8 && strncasecmp(at, "location", 8) == 0;
    return 0;
}

static int on_header_value(http_parser *hp, const char *at, size_t n)
{
    struct jr_http_get *f = hp->data;

    if (f->in_location && f->loc_len + n < sizeof f->location) {
        memcpy(f->location + f->loc_len, at, n);
        f->loc_len += n;
        f->location[f->loc_len] = 0;
    }
    return 0;
}

static int on_headers_complete(http_parser *hp)
{
    struct jr_http_get *f = hp->data;
    unsigned s = hp->status_code;

    if ((s == 301 || s == 302 || s == 303 || s == 307 || s == 308) && f->loc_len) {
        f->redirect = 1;
        return -1; /* stop parsing: go elsewhere */
    }
    if (s != 200) {
        jr_http_get_finish(f, 0, "HTTP %u %s", s, http_status_str((enum http_status)s));
        return -1;
    }
    if (hp->content_length != ULLONG_MAX && (int64_t)hp->content_length > f->max_bytes) {
        jr_http_get_finish(f, 0, "too large: %llu bytes, more than the limit of %lld",
               (unsigned long long)hp->content_length, (long long)f->max_bytes);
        return -1;
    }
    return 0;
}

static int on_body(http_parser *hp, const char *at, size_t n)
{
    struct jr_http_get *f = hp->data;

    if (f->written + (int64_t)f->wlen + (int64_t)n > f->max_bytes) {
        jr_http_get_finish(f, 0, "too large: more than the limit of %lld bytes", (long long)f->max_bytes);
        return -1;
    }
    memcpy(f->wbuf + f->wlen, at, n); /* one read's body fits: READ_SIZE */
    f->wlen += n;
    return 0;
}

static int on_message_complete(http_parser *hp)
{
    struct jr_http_get *f = hp->data;

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


/* ---- the body into the file ---- */

static void after_body(struct jr_http_get *f)
{
    if (f->finished)
        return;
    if (f->done_msg)
        jr_http_get_finish(f, 1, NULL);
    else if (f->cx && f->paused)
        jr_http_get_resume(f);
}

static void on_written(uv_fs_t *r)
{
    struct jr_http_get *f = r->data;
    ssize_t res = r->result;

    uv_fs_req_cleanup(r);
    f->writing = 0;
    f->pending--;
    if (res < 0)
        jr_http_get_finish(f, 0, "writing the file: %s", uv_strerror((int)res));
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
        jr_http_get_finish(f, 0, "writing the file failed");
    } else if (!f->finished) {
        f->written += res;
        f->wlen = 0;
        after_body(f);
    }
    jr_http_get_maybe_free(f);
}

static void flush_body(struct jr_http_get *f)
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
        jr_http_get_finish(f, 0, "writing the file: %s", uv_strerror(r));
        return;
    }
    f->writing = 1;
    f->pending++;
}

void jr_http_get_deliver(struct jr_http_get *f, const char *data, size_t len, int eof)
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
        jr_http_get_follow(f);
        return;
    }
    if (HTTP_PARSER_ERRNO(&f->hp) != HPE_OK || used != len) {
        jr_http_get_finish(f, 0, "bad response: %s", http_errno_description(HTTP_PARSER_ERRNO(&f->hp)));
        return;
    }
    if (eof && !f->done_msg) {
        jr_http_get_finish(f, 0, "the connection closed before the whole response");
        return;
    }
    flush_body(f);
}

