/* HTTP/1.1 request parsing glue over Debian's http-parser: turns a byte
 * stream into complete requests, enforcing the header and body limits. It
 * does no I/O, so the connection code and the fuzz target share it. */
#ifndef JR_HTTP_PARSE_H
#define JR_HTTP_PARSE_H

#include <http_parser.h>
#include <stddef.h>

#include "buf.h"

struct jr_http_limits {
    size_t max_header;       /* request line + headers, bytes */
    size_t max_body;         /* bytes, after de-chunking */
    unsigned max_connections;
    unsigned max_pipeline;   /* requests queued on one connection */
    unsigned idle_ms;        /* keep-alive connection with nothing to do */
    unsigned read_ms;        /* a whole request must arrive within this */
};

struct jr_http_header {
    size_t name_off, name_len;   /* into jr_http_request.hbuf; lower-case */
    size_t value_off, value_len;
};

/* One parsed request; owned by whoever the parser handed it to. */
struct jr_http_request {
    char method[16];
    unsigned short http_major, http_minor;
    struct jr_buf url;
    struct jr_buf hbuf;
    struct jr_http_header *headers;
    size_t nheaders, cap_headers;
    struct jr_buf body;
    int keep_alive;
    int expect_continue;
    int upgrade;                 /* Upgrade + Connection: upgrade: the last
                                    request of the HTTP stream */
};

/* Called for each complete request; takes ownership of req. */
typedef void (*jr_http_on_request)(void *ud, struct jr_http_request *req);
/* Called when a request's headers announced Expect: 100-continue. */
typedef void (*jr_http_on_continue)(void *ud);

struct jr_http_parse {
    http_parser parser;
    const struct jr_http_limits *limits;
    struct jr_http_request *cur;  /* being built, owned here */
    size_t header_bytes;
    int in_value;                 /* last header callback was a value */
    int error_status;             /* HTTP status to answer, once failed */
    const char *error_reason;
    jr_http_on_request on_request;
    jr_http_on_continue on_continue;
    void *ud;
    int upgraded;                 /* an upgrade request ended the stream */
    struct jr_buf rest;           /* bytes fed after it (another protocol's) */
};

void jr_http_parse_init(struct jr_http_parse *p, const struct jr_http_limits *limits,
                        jr_http_on_request on_request, jr_http_on_continue on_continue,
                        void *ud);
/* Feed bytes (never zero of them: to http-parser that means the end of
 * the stream). Returns 0, or the HTTP status (400, 413, 431, 501) to answer
 * before closing; error_reason then says why. After a request asking for a
 * protocol upgrade (req->upgrade) nothing more is parsed: the bytes that
 * follow it collect in rest, for the new protocol. */
int jr_http_parse_feed(struct jr_http_parse *p, const char *data, size_t len);
/* True while a request has started but not completed. */
int jr_http_parse_partial(const struct jr_http_parse *p);
void jr_http_parse_free(struct jr_http_parse *p);

void jr_http_request_free(struct jr_http_request *req);
/* The value of the first header with this lower-case name, or NULL. */
const char *jr_http_request_header(const struct jr_http_request *req, const char *name,
                                   size_t *len);

#endif
