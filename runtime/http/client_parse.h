/* The HTTP client's response parser, apart from any socket: bytes in,
 * then what they say (more to read, a redirect and where to, the whole
 * response, or why it is refused). http/client_body.c drives it from the
 * connection; fuzz/fuzz_client.c drives it from bytes. */
#ifndef JR_HTTP_CLIENT_PARSE_H
#define JR_HTTP_CLIENT_PARSE_H

#include <http_parser.h>
#include <stddef.h>
#include <stdint.h>

enum jr_http_resp_state {
    JR_HTTP_RESP_MORE,     /* body bytes so far (maybe none), the rest to come */
    JR_HTTP_RESP_REDIRECT, /* a 3xx with a Location: see location */
    JR_HTTP_RESP_DONE,     /* the whole response was read */
    JR_HTTP_RESP_FAILED,   /* see why */
};

struct jr_http_resp {
    http_parser hp;
    int64_t max_bytes;     /* the cap on the body */
    int64_t taken;         /* body bytes handed over by earlier feeds */
    char *body;            /* this feed's body bytes go here ... */
    size_t body_len, body_cap; /* ... up to body_cap */
    char location[2048];
    size_t loc_len;
    char name[9];          /* the current header's name, its first bytes */
    size_t name_len;
    int in_value, redirect, done, failed;
    char why[300];
};

/* Ready for a response whose body may hold max_bytes, each feed's body
 * landing in body (cap bytes: a feed of at most cap bytes always fits). */
void jr_http_resp_init(struct jr_http_resp *r, int64_t max_bytes, char *body, size_t cap);

/* Parses len bytes of the response (len may be 0), then the end of the
 * stream if eof. Body bytes of this feed are r->body[0..r->body_len);
 * the caller takes them (and adds them to r->taken) before the next feed.
 * Once it returned REDIRECT, DONE or FAILED, the next feeds return the
 * same without reading. */
enum jr_http_resp_state jr_http_resp_feed(struct jr_http_resp *r, const char *data, size_t len,
                                          int eof);

#endif
