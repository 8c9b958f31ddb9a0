/* libFuzzer target for the WebSocket read path: an opening handshake is
 * parsed (http/parse.c hands the bytes after it over), checked and
 * accepted (http/websocket.c), then those bytes and the rest of the input,
 * cut into reads as the first byte says, feed a session (ws_session.c,
 * libwslay) whose handler echoes every message and sometimes closes. What
 * the server writes must be well-formed unmasked frames, nothing after its
 * close frame, every message within max_message and text valid UTF-8. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "buf.h"
#include "http/parse.h"
#include "http/websocket.h"
#include "http/ws_internal.h"

#define MAX_MESSAGE 2048
#define MAX_QUEUED 8192

static const struct jr_http_limits limits = {
    .max_header = 4096, .max_body = 65536, .max_connections = 1, .max_pipeline = 4,
    .idle_ms = 1000, .read_ms = 1000,
};

static const char handshake[] = "GET /ws HTTP/1.1\r\nHost: fuzz\r\nUpgrade: websocket\r\n"
                                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                "Sec-WebSocket-Version: 13\r\n\r\n";

struct peer {
    struct jr_ws *ws;
    struct jr_buf out;     /* what the server wrote */
    size_t pending;        /* pretended unsent bytes, for back-pressure */
    uint32_t seed;
    int done, messages, closed, closed_code;
    struct jr_http_request *req;
};

static int io_write(void *ud, const char *data, size_t len)
{
    struct peer *p = ud;
    CHECK(!p->done);
    CHECK(jr_buf_add(&p->out, data, len) == 0);
    return 0;
}
static void io_flush(void *ud) { (void)ud; }
static size_t io_pending(void *ud) { return ((struct peer *)ud)->pending; }
static void io_read(void *ud, int on) { (void)ud; (void)on; }
static void io_done(void *ud)
{
    struct peer *p = ud;
    CHECK(!p->done);
    p->done = 1;
}

static const struct jr_ws_io io = {io_write, io_flush, io_pending, io_read, io_done};

static void on_message(void *ud, int opcode, const char *data, size_t len)
{
    struct peer *p = ud;
    CHECK(!p->closed);
    CHECK(opcode == JR_WS_TEXT || opcode == JR_WS_BINARY);
    CHECK(len <= MAX_MESSAGE);
    if (opcode == JR_WS_TEXT)
        CHECK(jr_ws_utf8_valid((const unsigned char *)data, len));
    p->messages++;
    int r = (int)(fuzz_next_rand(&p->seed) % 16);
    int rc = opcode == JR_WS_TEXT ? jr_ws_send_text(p->ws, data, len)
                                  : jr_ws_send_binary(p->ws, data, len);
    CHECK(rc == 0 || rc == JR_WS_FULL || rc == -1);
    if (r == 0)
        jr_ws_close(p->ws, 1000 + (int)(fuzz_next_rand(&p->seed) % 16), "echo done");
    else if (r == 1)
        jr_ws_pause(p->ws, (int)(fuzz_next_rand(&p->seed) & 1));
}

static void on_writable(void *ud)
{
    CHECK(!((struct peer *)ud)->closed);
}

static void on_closed(void *ud, int code)
{
    struct peer *p = ud;
    CHECK(!p->closed);
    p->closed = 1;
    p->closed_code = code;
}

static const struct jr_ws_handlers handlers = {on_message, on_writable, on_closed};

static void keep_request(void *ud, struct jr_http_request *req)
{
    struct peer *p = ud;
    CHECK(p->req == NULL);
    p->req = req;
}

/* The server's bytes: whole unmasked frames with valid lengths, control
 * frames short and final, nothing after a close frame. */
static void check_output(const struct peer *p)
{
    const unsigned char *s = (const unsigned char *)p->out.data;
    size_t i = 0, n = p->out.len;
    int closed = 0;
    while (i < n) {
        CHECK(!closed);
        CHECK(n - i >= 2);
        unsigned op = s[i] & 0x0f;
        CHECK((s[i] & 0x70) == 0);
        CHECK((s[i + 1] & 0x80) == 0); /* servers never mask */
        uint64_t len = s[i + 1] & 0x7f;
        size_t hdr = 2;
        if (len == 126) {
            CHECK(n - i >= 4);
            len = ((uint64_t)s[i + 2] << 8) | s[i + 3];
            hdr = 4;
        } else if (len == 127) {
            CHECK(n - i >= 10);
            len = 0;
            for (int k = 0; k < 8; k++)
                len = (len << 8) | s[i + 2 + k];
            hdr = 10;
        }
        CHECK(len <= n - i - hdr);
        CHECK(op == 1 || op == 2 || op == 8 || op == 9 || op == 10);
        if (op >= 8) {
            CHECK(len <= 125);
            CHECK(s[i] & 0x80);
        }
        if (op == 1)
            CHECK(jr_ws_utf8_valid(s + i + hdr, (size_t)len));
        if (op == 8) {
            closed = 1;
            CHECK(len != 1);
        }
        i += hdr + (size_t)len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size)
{
    if (size < 1)
        return 0;
    struct peer p;
    memset(&p, 0, sizeof(p));
    p.seed = input[0] * 2654435761u + 1;
    const char *data = (const char *)input + 1;
    size_t len = size - 1;

    /* The handshake and the input's first bytes arrive in one read, as a
     * client that does not wait for the 101 sends them. */
    size_t first = len < 64 ? len : input[0] % 64;
    if (first > len)
        first = len;
    struct jr_buf head = {0};
    CHECK(jr_buf_add(&head, handshake, sizeof(handshake) - 1) == 0);
    CHECK(jr_buf_add(&head, data, first) == 0);
    struct jr_http_parse parse;
    jr_http_parse_init(&parse, &limits, keep_request, NULL, &p);
    CHECK(jr_http_parse_feed(&parse, head.data, head.len) == 0);
    jr_buf_free(&head);
    CHECK(p.req && p.req->upgrade && parse.upgraded);
    CHECK(parse.rest.len == first);
    char err[128];
    CHECK(jr_ws_check_request(p.req, err, sizeof(err)) == 0);
    char accept[29];
    CHECK(jr_ws_accept_value("dGhlIHNhbXBsZSBub25jZQ==", 24, accept) == 0);

    struct jr_ws_options o = {.max_message = MAX_MESSAGE, .max_queued = MAX_QUEUED,
                              .ping_ms = 1000};
    CHECK(jr_ws_new(&io, &p, &handlers, &p, &o, &p.ws) == 0);
    int over = jr_ws_feed(p.ws, parse.rest.data, parse.rest.len);
    CHECK(over == 0 || p.done);
    size_t off = first;
    while (off < len && !over) {
        uint32_t r = fuzz_next_rand(&p.seed);
        size_t n = 1 + r % 300;
        if (n > len - off)
            n = len - off;
        over = jr_ws_feed(p.ws, data + off, n);
        CHECK(over == 0 || p.done); /* a session over has told its transport */
        off += n;
        /* Now and then time passes or the transport drains or clogs. */
        switch ((r >> 16) % 8) {
        case 0:
            if (jr_ws_tick(p.ws) != 0)
                over = 1;
            break;
        case 1:
            p.pending = (r >> 8) % (2 * MAX_QUEUED);
            jr_ws_written(p.ws);
            break;
        case 2:
            CHECK(jr_ws_queued(p.ws) >= (p.done ? 0 : p.pending));
            break;
        }
    }
    check_output(&p);
    jr_ws_gone(p.ws);
    CHECK(p.closed);
    CHECK(p.closed_code > 0 && p.closed_code <= 65535);
    jr_ws_gone(p.ws); /* once only */
    jr_ws_free(p.ws);
    jr_http_request_free(p.req);
    jr_http_parse_free(&parse);
    jr_buf_free(&p.out);
    return 0;
}
