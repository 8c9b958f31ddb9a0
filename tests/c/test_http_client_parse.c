/* Unit tests of the HTTP client's response parser (http/client_parse.c),
 * fed bytes without a socket: the outcome does not depend on how the
 * response is cut into reads (regressions found by fuzz/fuzz_client.c). */
#include <string.h>

#include "http/client_parse.h"
#include "unit.h"

static char body[4096];

/* Feeds text in pieces of `piece` bytes (0: in one read), then the end of
 * the stream; the body taken as client_body.c takes it, into got. */
static enum jr_http_resp_state parse(struct jr_http_resp *r, const char *text, size_t piece,
                                     int64_t max_bytes, char *got, size_t *got_len)
{
    size_t len = strlen(text), off = 0;
    enum jr_http_resp_state st = JR_HTTP_RESP_MORE;

    jr_http_resp_init(r, max_bytes, body, sizeof body);
    *got_len = 0;
    while (off < len && st == JR_HTTP_RESP_MORE) {
        size_t n = piece && piece < len - off ? piece : len - off;
        st = jr_http_resp_feed(r, text + off, n, 0);
        memcpy(got + *got_len, r->body, r->body_len);
        *got_len += r->body_len;
        r->taken += (int64_t)r->body_len;
        off += n;
    }
    if (st == JR_HTTP_RESP_MORE)
        st = jr_http_resp_feed(r, NULL, 0, 1);
    got[*got_len] = 0;
    return st;
}

TEST(location_split_across_reads)
{
    static const char text[] = "HTTP/1.1 302 Found\r\nLocation: /next?a=1\r\n"
                               "Content-Length: 0\r\n\r\n";
    struct jr_http_resp r;
    char got[64];
    size_t n;

    for (size_t piece = 0; piece < 8; piece++) {
        CHECK_INT(parse(&r, text, piece, 100, got, &n), JR_HTTP_RESP_REDIRECT);
        CHECK_STR(r.location, "/next?a=1");
    }
    /* A longer name that starts like it is not a Location. */
    CHECK_INT(parse(&r, "HTTP/1.1 302 Found\r\nLocations: /x\r\n\r\n", 1, 100, got, &n),
              JR_HTTP_RESP_FAILED);
    CHECK_STR(r.why, "HTTP 302 Found");
}

TEST(bytes_after_the_response_are_not_read)
{
    static const char text[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA";
    struct jr_http_resp r;
    char got[64];
    size_t n;

    for (size_t piece = 0; piece < 4; piece++) {
        CHECK_INT(parse(&r, text, piece, 100, got, &n), JR_HTTP_RESP_DONE);
        CHECK_STR(got, "ok");
    }
}

TEST(bodies_and_the_cap)
{
    struct jr_http_resp r;
    char got[64];
    size_t n;

    CHECK_INT(parse(&r, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", 3, 5, got, &n),
              JR_HTTP_RESP_DONE);
    CHECK_STR(got, "abcde");
    CHECK_INT(parse(&r, "HTTP/1.0 200 OK\r\n\r\nuntil the end", 4, 100, got, &n),
              JR_HTTP_RESP_DONE);
    CHECK_STR(got, "until the end");
    CHECK_INT(parse(&r, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabcdef", 0, 5, got, &n),
              JR_HTTP_RESP_FAILED);
    CHECK_STR(r.why, "too large: 6 bytes, more than the limit of 5");
    CHECK_INT(parse(&r, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "4\r\nabcd\r\n2\r\nef\r\n0\r\n\r\n", 0, 5, got, &n),
              JR_HTTP_RESP_FAILED);
    CHECK_STR(r.why, "too large: more than the limit of 5 bytes");
    CHECK_INT(parse(&r, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort", 2, 100, got, &n),
              JR_HTTP_RESP_FAILED);
    CHECK_STR(r.why, "the connection closed before the whole response");
    CHECK_INT(parse(&r, "HTTP/1.1 404 Not Found\r\n\r\n", 0, 100, got, &n),
              JR_HTTP_RESP_FAILED);
    CHECK_STR(r.why, "HTTP 404 Not Found");
    CHECK_INT(parse(&r, "HTTP/1.1 2OO OK\r\n\r\n", 0, 100, got, &n), JR_HTTP_RESP_FAILED);
    CHECK(strncmp(r.why, "bad response: ", 14) == 0);
    /* Ended: further feeds read nothing. */
    CHECK_INT(jr_http_resp_feed(&r, "HTTP/1.1 200 OK\r\n", 17, 0), JR_HTTP_RESP_FAILED);
    CHECK_INT(r.body_len, 0);
}

int main(void)
{
    RUN(location_split_across_reads);
    RUN(bytes_after_the_response_are_not_read);
    RUN(bodies_and_the_cap);
    return UNIT_DONE();
}
