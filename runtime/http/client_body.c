/* The response side of an HTTP GET (see client.h): the bytes go through
 * http/client_parse.c (status, headers, a redirect's Location, the size
 * cap), the body into the file with uv_fs_write while reading pauses. */
#include <string.h>

#include "http/client_internal.h"

/* ---- the body into the file ---- */

static void after_body(struct jr_http_get *f)
{
    if (f->finished)
        return;
    if (f->resp.done)
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
    enum jr_http_resp_state st;

    f->resp.taken = f->written;
    st = jr_http_resp_feed(&f->resp, data, len, eof);
    if (f->finished)
        return;
    if (st == JR_HTTP_RESP_REDIRECT) {
        jr_http_get_follow(f);
        return;
    }
    if (st == JR_HTTP_RESP_FAILED) {
        jr_http_get_finish(f, 0, "%s", f->resp.why);
        return;
    }
    f->wlen = f->resp.body_len;
    flush_body(f);
}
