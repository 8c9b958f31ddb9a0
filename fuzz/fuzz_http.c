/* libFuzzer target for the HTTP request parser glue (runtime/http/parse.c).
 * Each input is parsed twice, once in one piece and once cut as its first
 * byte says; both runs must hand over the same requests, and every request
 * and status must keep the invariants the connection code relies on. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "buf.h"
#include "http/parse.h"

static const struct jr_http_limits limits = {
    .max_header = 1024,
    .max_body = 4096,
    .max_connections = 1,
    .max_pipeline = 16,
    .idle_ms = 1000,
    .read_ms = 1000,
};

/* One parse of the input: the parser and a canonical record of what it
 * handed over, so two runs can be compared byte for byte. */
struct run {
    struct jr_http_parse p;
    struct jr_buf log;
    size_t nreq;
    int closed;   /* a request without keep-alive was delivered */
};

static void log_bytes(struct jr_buf *log, const char *tag, const char *s, size_t n)
{
    CHECK(jr_buf_addf(log, "%s %zu:", tag, n) == 0);
    CHECK(jr_buf_add(log, s, n) == 0);
    CHECK(jr_buf_add(log, "\n", 1) == 0);
}

static int is_status(int status)
{
    switch (status) {
    case 400: case 413: case 417: case 431: case 501: case 503: case 505:
        return 1;
    }
    return 0;
}

static void check_request(const struct jr_http_request *r)
{
    CHECK(memchr(r->method, '\0', sizeof(r->method)) != NULL);
    CHECK(r->method[0] != '\0');
    for (const char *m = r->method; *m; m++)
        CHECK(isupper((unsigned char)*m) || *m == '-');
    CHECK(r->http_major == 1);

    /* url: a C string (the binding uses strchr and lua_pushstring). */
    CHECK(r->url.data != NULL);
    CHECK(r->url.len <= limits.max_header);
    CHECK(r->url.data[r->url.len] == '\0');
    CHECK(strlen(r->url.data) == r->url.len);

    size_t header_bytes = r->url.len;
    CHECK(r->nheaders <= r->cap_headers);
    CHECK(r->nheaders == 0 || (r->headers != NULL && r->hbuf.data != NULL));
    for (size_t i = 0; i < r->nheaders; i++) {
        const struct jr_http_header *h = &r->headers[i];
        CHECK(h->name_len > 0);
        CHECK(h->name_off <= r->hbuf.len && h->name_len <= r->hbuf.len - h->name_off);
        CHECK(h->value_off <= r->hbuf.len && h->value_len <= r->hbuf.len - h->value_off);
        /* parse.h promises each name and value is NUL-terminated in hbuf. */
        CHECK(r->hbuf.data[h->name_off + h->name_len] == '\0');
        CHECK(r->hbuf.data[h->value_off + h->value_len] == '\0');
        const char *name = r->hbuf.data + h->name_off;
        for (size_t k = 0; k < h->name_len; k++)
            CHECK(name[k] != '\0' && name[k] == (char)tolower((unsigned char)name[k]));
        header_bytes += h->name_len + h->value_len;

        /* The lookup finds the first field of that name. */
        size_t len = 0;
        const char *v = jr_http_request_header(r, name, &len);
        CHECK(v != NULL);
        size_t first = 0;
        while (first < i && !(r->headers[first].name_len == h->name_len &&
                              memcmp(r->hbuf.data + r->headers[first].name_off, name,
                                     h->name_len) == 0))
            first++;
        CHECK(v == r->hbuf.data + r->headers[first].value_off);
        CHECK(len == r->headers[first].value_len);
    }
    CHECK(header_bytes <= limits.max_header);

    CHECK(r->body.data != NULL);
    CHECK(r->body.len <= limits.max_body);
    CHECK(r->body.data[r->body.len] == '\0');
    CHECK(r->keep_alive == 0 || r->keep_alive == 1);
    CHECK(r->expect_continue == 0 || r->expect_continue == 1);
}

static void on_request(void *ud, struct jr_http_request *req)
{
    struct run *run = ud;
    CHECK(req != NULL);
    /* Nothing is handed over once the parser has decided to fail, nor
     * after a request that ends the connection. */
    CHECK(run->p.error_status == 0);
    CHECK(!run->closed);
    CHECK(run->p.cur == NULL);
    check_request(req);

    struct jr_buf *log = &run->log;
    CHECK(jr_buf_addf(log, "request %zu %s HTTP/%u.%u keep-alive=%d continue=%d\n",
                      run->nreq, req->method, req->http_major, req->http_minor,
                      req->keep_alive, req->expect_continue) == 0);
    log_bytes(log, "url", req->url.data, req->url.len);
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct jr_http_header *h = &req->headers[i];
        log_bytes(log, "name", req->hbuf.data + h->name_off, h->name_len);
        log_bytes(log, "value", req->hbuf.data + h->value_off, h->value_len);
    }
    log_bytes(log, "body", req->body.data, req->body.len);
    run->nreq++;
    if (!req->keep_alive)
        run->closed = 1;
    jr_http_request_free(req);
}

static void on_continue(void *ud)
{
    struct run *run = ud;
    CHECK(run->p.error_status == 0);
    CHECK(run->p.cur != NULL && run->p.cur->expect_continue);
    CHECK(jr_buf_addstr(&run->log, "continue\n") == 0);
}

/* Feeds one piece; once the parser has failed it must keep failing with
 * the same status. */
static void feed(struct run *run, const char *data, size_t len, int *status)
{
    int rc = jr_http_parse_feed(&run->p, data, len);
    CHECK(rc == 0 || is_status(rc));
    if (*status)
        CHECK(rc == *status);
    if (rc) {
        CHECK(run->p.error_reason != NULL);
        CHECK(rc == run->p.error_status);
    }
    *status = rc;
}

/* Cuts data as mode says: one byte at a time, fixed pieces, random
 * pieces, or around every line ending (CR and LF land in different reads). */
static int parse_split(struct run *run, unsigned mode, const char *data, size_t len)
{
    int status = 0;
    uint32_t seed = mode * 2654435761u + 1;
    size_t fixed = (mode >> 2) + 1;
    size_t off = 0;
    while (off < len) {
        size_t n;
        switch (mode & 3) {
        case 0:
            n = 1;
            break;
        case 1:
            n = fixed;
            break;
        case 2:
            n = 1 + fuzz_next_rand(&seed) % 97;
            break;
        default: {
            const char *cr = memchr(data + off, '\r', len - off);
            const char *lf = memchr(data + off, '\n', len - off);
            const char *cut = cr && (!lf || cr < lf) ? cr : lf;
            n = cut ? (size_t)(cut - (data + off)) + 1 : len - off;
            break;
        }
        }
        if (n > len - off)
            n = len - off;
        feed(run, data + off, n, &status);
        off += n;
    }
    /* No empty feed at the end: http-parser takes a zero-length read as
     * end of stream, which the connection code never passes on. */
    return status;
}

static void run_init(struct run *run)
{
    memset(run, 0, sizeof(*run));
    jr_http_parse_init(&run->p, &limits, on_request, on_continue, run);
}

static void run_free(struct run *run)
{
    CHECK(jr_http_parse_partial(&run->p) == (run->p.cur != NULL));
    jr_http_parse_free(&run->p);
    CHECK(!jr_http_parse_partial(&run->p));
    jr_buf_free(&run->log);
}

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size)
{
    if (size < 1)
        return 0;
    unsigned mode = input[0];
    const char *data = (const char *)input + 1;
    size_t len = size - 1;

    struct run whole, split;
    run_init(&whole);
    int whole_status = 0;
    feed(&whole, data, len, &whole_status);
    run_init(&split);
    int split_status = parse_split(&split, mode, data, len);

    /* How the bytes arrive must not change what is handed over. The
     * status may differ (a limit can trip at a read boundary before a
     * syntax error further on), but not whether the parse failed. */
    if (whole.log.len != split.log.len ||
        (whole.log.len && memcmp(whole.log.data, split.log.data, whole.log.len) != 0)) {
        fprintf(stderr, "--- whole (status %d)\n%s--- split mode %u (status %d)\n%s",
                whole_status, whole.log.data ? whole.log.data : "", mode, split_status,
                split.log.data ? split.log.data : "");
        CHECK(!"requests depend on how the input was split");
    }
    CHECK(!whole_status == !split_status);
    CHECK(whole.nreq == split.nreq);
    /* After an upgrade request the input's rest is the new protocol's,
     * byte for byte, however it arrived. */
    CHECK(whole.p.upgraded == split.p.upgraded);
    if (whole.p.upgraded) {
        size_t n = whole.p.rest.len;
        CHECK(n == split.p.rest.len && n <= len);
        CHECK(n == 0 || (memcmp(whole.p.rest.data, split.p.rest.data, n) == 0 &&
                         memcmp(whole.p.rest.data, data + len - n, n) == 0));
    }

    run_free(&whole);
    run_free(&split);
    return 0;
}
