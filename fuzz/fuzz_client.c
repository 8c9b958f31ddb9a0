/* libFuzzer target for the HTTP client's response parser
 * (runtime/http/client_parse.c): status line, headers, a redirect's
 * Location, Content-Length, chunked and close-delimited bodies, the size
 * cap. The first byte picks how the rest is cut into reads, the second the
 * cap. Each input is parsed in one read and cut into many; both must end
 * the same way (with the same body unless it failed), the body never
 * passes the cap, a body
 * read never overflows a buffer as large as the read, and an ended
 * response stays ended. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "buf.h"
#include "http/client_parse.h"

struct run {
    struct jr_http_resp r;
    struct jr_buf body;
    enum jr_http_resp_state st;
    char buf[8192];
};

/* One read of len bytes; the body it yields is taken as client_body.c
 * takes it. */
static void feed(struct run *run, const char *data, size_t len, int eof)
{
    enum jr_http_resp_state st;

    CHECK(len <= sizeof run->buf);
    run->r.body_cap = len; /* as large as the read, never more */
    st = jr_http_resp_feed(&run->r, data, len, eof);
    CHECK(st >= JR_HTTP_RESP_MORE && st <= JR_HTTP_RESP_FAILED);
    if (run->st != JR_HTTP_RESP_MORE) { /* ended: stays so, reads nothing */
        CHECK(st == run->st);
        CHECK(run->r.body_len == 0);
    }
    CHECK(run->r.body_len <= len);
    CHECK(st != JR_HTTP_RESP_FAILED || strstr(run->r.why, "buffer") == NULL);
    CHECK(st != JR_HTTP_RESP_FAILED || run->r.why[0] != '\0');
    CHECK(!eof || st != JR_HTTP_RESP_MORE);
    CHECK(jr_buf_add(&run->body, run->r.body, run->r.body_len) == 0);
    run->r.taken += (int64_t)run->r.body_len;
    CHECK(run->r.taken <= run->r.max_bytes);
    CHECK(run->r.loc_len < sizeof run->r.location);
    CHECK(run->r.location[run->r.loc_len] == '\0');
    CHECK(st != JR_HTTP_RESP_REDIRECT || run->r.loc_len > 0);
    run->st = st;
}

static void run_init(struct run *run, int64_t max_bytes)
{
    memset(run, 0, sizeof *run);
    jr_http_resp_init(&run->r, max_bytes, run->buf, sizeof run->buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size)
{
    static struct run whole, split;

    if (size < 2 || size - 2 > sizeof whole.buf)
        return 0;
    unsigned mode = input[0];
    int64_t max_bytes = 1 + (int64_t)input[1] * input[1];
    const char *data = (const char *)input + 2;
    size_t len = size - 2;

    run_init(&whole, max_bytes);
    feed(&whole, data, len, 1);

    /* Cut as mode says: fixed pieces, random pieces, or around line
     * endings; the end of the stream with the last piece or on its own. */
    run_init(&split, max_bytes);
    uint32_t seed = mode * 2654435761u + 1;
    size_t off = 0, fixed = (mode >> 3) + 1;
    while (off < len) {
        size_t n;
        switch (mode & 3) {
        case 0:
            n = fixed;
            break;
        case 1:
            n = 1 + fuzz_next_rand(&seed) % 61;
            break;
        default: {
            const char *lf = memchr(data + off, '\n', len - off);
            n = lf ? (size_t)(lf - (data + off)) + 1 : len - off;
            break;
        }
        }
        if (n > len - off)
            n = len - off;
        feed(&split, data + off, n, off + n == len && (mode & 4));
        off += n;
    }
    if (!(mode & 4) || len == 0)
        feed(&split, NULL, 0, 1);

    /* A failed download's bytes are thrown away: how many came first may
     * differ. */
    int same_body = whole.body.len == split.body.len &&
                    (!whole.body.len || !memcmp(whole.body.data, split.body.data, whole.body.len));
    if (whole.st != split.st || (whole.st != JR_HTTP_RESP_FAILED && !same_body) ||
        strcmp(whole.r.why, split.r.why) ||
        (whole.st == JR_HTTP_RESP_REDIRECT && strcmp(whole.r.location, split.r.location))) {
        fprintf(stderr, "whole: state %d, %zu body bytes, why '%s', location '%s'\n"
                        "split mode %u: state %d, %zu body bytes, why '%s', location '%s'\n",
                whole.st, whole.body.len, whole.r.why, whole.r.location, mode, split.st,
                split.body.len, split.r.why, split.r.location);
        CHECK(!"the outcome depends on how the response was cut");
    }
    if (whole.st == JR_HTTP_RESP_DONE && whole.r.hp.content_length != ULLONG_MAX)
        CHECK(whole.r.hp.content_length == 0); /* counted down to the end */
    jr_buf_free(&whole.body);
    jr_buf_free(&split.body);
    return 0;
}
