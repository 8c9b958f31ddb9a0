/* WebSocket: the handshake checks and accept value (http/websocket.c), the
 * parser's hand-over of the bytes after an upgrade request (http/parse.c),
 * and a session (http/ws_session.c) over a memory transport: frames in and
 * out, pings, closes with 1002, 1007 and 1009, and the output bound. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "http/parse.h"
#include "http/websocket.h"
#include "http/ws_internal.h"
#include "unit.h"

/* ---- the handshake ---- */

TEST(accept_value_of_the_rfc_example)
{
    char out[29];
    /* RFC 6455 §1.3 */
    CHECK_INT(jr_ws_accept_value("dGhlIHNhbXBsZSBub25jZQ==", 24, out), 0);
    CHECK_STR(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

struct parsed {
    struct jr_http_request *req;
    int count;
};

static void keep_request(void *ud, struct jr_http_request *req)
{
    struct parsed *p = ud;
    jr_http_request_free(p->req);
    p->req = req;
    p->count++;
}

static const struct jr_http_limits limits = {
    .max_header = 8192, .max_body = 1024, .max_connections = 8, .max_pipeline = 8,
    .idle_ms = 1000, .read_ms = 1000,
};

/* Parses text as one request and returns check_request's status. */
static int check(const char *text, char *err, size_t errlen)
{
    struct parsed p = {0};
    struct jr_http_parse parse;
    jr_http_parse_init(&parse, &limits, keep_request, NULL, &p);
    int rc = jr_http_parse_feed(&parse, text, strlen(text));
    int status = rc ? -rc : p.req ? jr_ws_check_request(p.req, err, errlen) : -1;
    jr_http_request_free(p.req);
    jr_http_parse_free(&parse);
    return status;
}

#define KEY "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
#define UPGRADE "Upgrade: websocket\r\nConnection: Upgrade\r\n"

TEST(handshake_refusals)
{
    char err[200];
    CHECK_INT(check("GET /ws HTTP/1.1\r\nHost: x\r\n" UPGRADE KEY
                    "Sec-WebSocket-Version: 13\r\n\r\n", err, sizeof err), 0);
    /* tokens in any case, among others, on repeated lines */
    CHECK_INT(check("GET /ws HTTP/1.1\r\nUpgrade: WebSocket\r\nConnection: keep-alive\r\n"
                    "Connection: foo, UPGRADE\r\n" KEY "Sec-WebSocket-Version: 13\r\n\r\n",
                    err, sizeof err), 0);
    CHECK_INT(check("POST /ws HTTP/1.1\r\nContent-Length: 0\r\n" UPGRADE KEY
                    "Sec-WebSocket-Version: 13\r\n\r\n", err, sizeof err), 400);
    CHECK_STR(err, "a WebSocket upgrade must be a GET request");
    CHECK_INT(check("GET /ws HTTP/1.1\r\nHost: x\r\n\r\n", err, sizeof err), 400);
    CHECK_STR(err, "not a WebSocket upgrade: the Upgrade header must name websocket");
    CHECK_INT(check("GET /ws HTTP/1.1\r\nUpgrade: h2c\r\nConnection: upgrade\r\n" KEY
                    "Sec-WebSocket-Version: 13\r\n\r\n", err, sizeof err), 400);
    CHECK_INT(check("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n" KEY
                    "Sec-WebSocket-Version: 13\r\n\r\n", err, sizeof err), 400);
    CHECK_STR(err, "not a WebSocket upgrade: the Connection header must hold the upgrade token");
    CHECK_INT(check("GET /ws HTTP/1.1\r\n" UPGRADE KEY "Sec-WebSocket-Version: 8\r\n\r\n",
                    err, sizeof err), 426);
    CHECK_STR(err, "Sec-WebSocket-Version must be 13");
    CHECK_INT(check("GET /ws HTTP/1.1\r\n" UPGRADE KEY "\r\n", err, sizeof err), 426);
    CHECK_INT(check("GET /ws HTTP/1.1\r\n" UPGRADE "Sec-WebSocket-Version: 13\r\n\r\n",
                    err, sizeof err), 400);
    CHECK_STR(err, "the Sec-WebSocket-Key header is missing");
    /* 15 bytes, not base64, unpadded */
    CHECK_INT(check("GET /ws HTTP/1.1\r\n" UPGRADE "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA\r\n"
                    "Sec-WebSocket-Version: 13\r\n\r\n", err, sizeof err), 400);
    CHECK_STR(err, "Sec-WebSocket-Key must be the base64 of 16 bytes");
    CHECK_INT(check("GET /ws HTTP/1.1\r\n" UPGRADE "Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!==\r\n"
                    "Sec-WebSocket-Version: 13\r\n\r\n", err, sizeof err), 400);
    CHECK_INT(check("GET /ws HTTP/1.0\r\n" UPGRADE KEY "Sec-WebSocket-Version: 13\r\n\r\n",
                    err, sizeof err), 400);
    CHECK_STR(err, "a WebSocket upgrade needs HTTP/1.1");
}

TEST(parser_keeps_the_bytes_after_an_upgrade)
{
    static const char text[] = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                               "GET /ws HTTP/1.1\r\n" UPGRADE KEY "Sec-WebSocket-Version: 13\r\n\r\n"
                               "\x81\x85" "abcdGET / HTTP/1.1\r\n\r\n";
    struct parsed p = {0};
    struct jr_http_parse parse;
    jr_http_parse_init(&parse, &limits, keep_request, NULL, &p);
    /* in two pieces, the second after the stream was handed over */
    size_t first = sizeof(text) - 1 - 10;
    CHECK_INT(jr_http_parse_feed(&parse, text, first), 0);
    CHECK_INT(jr_http_parse_feed(&parse, text + first, 10), 0);
    CHECK_INT(p.count, 2);
    CHECK(p.req && p.req->upgrade);
    CHECK_INT(p.req->keep_alive, 0);
    CHECK_INT(parse.upgraded, 1);
    CHECK_INT(parse.rest.len, 24);
    CHECK(parse.rest.len == 24 && memcmp(parse.rest.data, "\x81\x85" "abcdGET / HTTP/1.1\r\n\r\n", 24) == 0);
    jr_http_request_free(p.req);
    jr_http_parse_free(&parse);
}

/* ---- a session over memory ---- */

struct peer {
    struct jr_buf sent;      /* what the session wrote */
    size_t pending;          /* pretend this much is still unsent */
    int reading, done, flushes;
    struct jr_buf got;       /* messages received, "T:" / "B:" + data + "\n" */
    int writable, closed_code;
    struct jr_ws *ws;        /* set for reply_and_close */
    int reply_and_close;     /* on_message answers, then closes 4000 */
};

static int io_write(void *ud, const char *data, size_t len)
{
    return jr_buf_add(&((struct peer *)ud)->sent, data, len);
}
static void io_flush(void *ud) { ((struct peer *)ud)->flushes++; }
static size_t io_pending(void *ud) { return ((struct peer *)ud)->pending; }
static void io_read(void *ud, int on) { ((struct peer *)ud)->reading = on; }
static void io_done(void *ud) { ((struct peer *)ud)->done = 1; }

static const struct jr_ws_io memory_io = {io_write, io_flush, io_pending, io_read, io_done};

static void on_message(void *ud, int opcode, const char *data, size_t len)
{
    struct peer *p = ud;
    jr_buf_addstr(&p->got, opcode == JR_WS_TEXT ? "T:" : "B:");
    jr_buf_add(&p->got, data, len);
    jr_buf_addstr(&p->got, "\n");
    if (p->reply_and_close) {
        CHECK_INT(jr_ws_send_text(p->ws, "one", 3), 0);
        CHECK_INT(jr_ws_send_text(p->ws, "two", 3), 0);
        CHECK_INT(jr_ws_close(p->ws, 4000, "x"), 0);
    }
}
static void on_writable(void *ud) { ((struct peer *)ud)->writable++; }
static void on_closed(void *ud, int code) { ((struct peer *)ud)->closed_code = code; }

static const struct jr_ws_handlers handlers = {on_message, on_writable, on_closed};

static struct jr_ws *session(struct peer *p, size_t max_message, size_t max_queued)
{
    memset(p, 0, sizeof(*p));
    struct jr_ws_options o = {.max_message = max_message, .max_queued = max_queued,
                              .ping_ms = 1000};
    struct jr_ws *ws = NULL;
    CHECK_INT(jr_ws_new(&memory_io, p, &handlers, p, &o, &ws), 0);
    return ws;
}

static void end(struct jr_ws *ws, struct peer *p)
{
    jr_ws_gone(ws);
    jr_ws_free(ws);
    jr_buf_free(&p->sent);
    jr_buf_free(&p->got);
}

/* A client frame: masked unless mask is 0. */
static size_t frame(unsigned char *out, int fin, int opcode, const char *data, size_t len,
                    int mask)
{
    static const unsigned char key[4] = {0x37, 0xfa, 0x21, 0x3d};
    size_t n = 0;
    out[n++] = (unsigned char)((fin ? 0x80 : 0) | opcode);
    unsigned char m = mask ? 0x80 : 0;
    if (len < 126) {
        out[n++] = (unsigned char)(m | len);
    } else if (len < 65536) {
        out[n++] = m | 126;
        out[n++] = (unsigned char)(len >> 8);
        out[n++] = (unsigned char)len;
    } else {
        out[n++] = m | 127;
        for (int i = 7; i >= 0; i--)
            out[n++] = (unsigned char)((uint64_t)len >> (8 * i));
    }
    if (mask) {
        memcpy(out + n, key, 4);
        n += 4;
    }
    for (size_t i = 0; i < len; i++)
        out[n + i] = (unsigned char)data[i] ^ (mask ? key[i % 4] : 0);
    return n + len;
}

static int feed_frame(struct jr_ws *ws, int fin, int opcode, const char *data, size_t len,
                      int mask)
{
    unsigned char *buf = malloc(len + 14);
    size_t n = frame(buf, fin, opcode, data, len, mask);
    int rc = jr_ws_feed(ws, (const char *)buf, n);
    free(buf);
    return rc;
}

/* The close code of a server close frame at the end of what was sent. */
static int sent_close_code(const struct peer *p)
{
    const unsigned char *s = (const unsigned char *)p->sent.data;
    for (size_t i = 0; i + 1 < p->sent.len;) {
        size_t len = s[i + 1] & 0x7f, hdr = 2;
        if (len == 126) {
            len = ((size_t)s[i + 2] << 8) | s[i + 3];
            hdr = 4;
        }
        if ((s[i] & 0x0f) == 8 && len >= 2)
            return (s[i + hdr] << 8) | s[i + hdr + 1];
        i += hdr + len;
    }
    return -1;
}

TEST(frames_in_and_out)
{
    struct peer p;
    struct jr_ws *ws = session(&p, 1024, 4096);
    CHECK_INT(jr_ws_feed(ws, NULL, 0), 0);
    CHECK_INT(p.reading, 1);
    /* one byte at a time, then a fragmented binary message with a ping
     * between its fragments */
    unsigned char buf[64];
    size_t n = frame(buf, 1, 1, "hello", 5, 1);
    for (size_t i = 0; i < n; i++)
        CHECK_INT(jr_ws_feed(ws, (const char *)buf + i, 1), 0);
    CHECK_INT(feed_frame(ws, 0, 2, "ab", 2, 1), 0);
    CHECK_INT(feed_frame(ws, 1, 9, "hi", 2, 1), 0);
    CHECK_INT(feed_frame(ws, 1, 0, "c\0d", 3, 1), 0);
    CHECK_INT(p.got.len, 16);
    CHECK(p.got.len == 16 && memcmp(p.got.data, "T:hello\nB:abc\0d\n", 16) == 0);
    /* the pong, unmasked, echoing the ping's data */
    CHECK_INT(p.sent.len, 4);
    CHECK(p.sent.len == 4 && memcmp(p.sent.data, "\x8a\x02hi", 4) == 0);
    jr_buf_reset(&p.sent);
    CHECK_INT(jr_ws_send_text(ws, "out", 3), 0);
    CHECK_INT(jr_ws_send_binary(ws, "\x01\x02", 2), 0);
    CHECK_INT(p.sent.len, 9);
    CHECK(p.sent.len == 9 && memcmp(p.sent.data, "\x81\x03out\x82\x02\x01\x02", 9) == 0);
    char big[300];
    memset(big, 'x', sizeof big);
    jr_buf_reset(&p.sent);
    CHECK_INT(jr_ws_send_text(ws, big, sizeof big), 0);
    CHECK(p.sent.len == 304 && memcmp(p.sent.data, "\x81\x7e\x01\x2c", 4) == 0);
    /* the client closes; the server answers and is done */
    jr_buf_reset(&p.sent);
    CHECK_INT(feed_frame(ws, 1, 8, "\x03\xe8" "bye", 5, 1), -1);
    CHECK_INT(p.done, 1);
    CHECK_INT(sent_close_code(&p), 1000);
    CHECK_INT(jr_ws_send_text(ws, "late", 4), -1);
    jr_ws_gone(ws);
    CHECK_INT(p.closed_code, 1000);
    end(ws, &p);
}

TEST(unmasked_frame_closes_1002)
{
    struct peer p;
    struct jr_ws *ws = session(&p, 1024, 4096);
    CHECK_INT(feed_frame(ws, 1, 1, "hello", 5, 0), -1);
    CHECK_INT(sent_close_code(&p), 1002);
    CHECK_INT(p.got.len, 0);
    CHECK_INT(p.done, 1);
    jr_ws_gone(ws);
    CHECK_INT(p.closed_code, 1002);
    end(ws, &p);
}

TEST(invalid_utf8_closes_1007)
{
    struct peer p;
    struct jr_ws *ws = session(&p, 1024, 4096);
    CHECK_INT(feed_frame(ws, 1, 1, "ok \xc3\xa9", 5, 1), 0);
    CHECK_INT(feed_frame(ws, 1, 1, "bad \xc3\x28", 6, 1), -1);
    CHECK_INT(sent_close_code(&p), 1007);
    CHECK_INT(p.got.len, 8);
    end(ws, &p);
    /* binary messages are bytes: not checked */
    ws = session(&p, 1024, 4096);
    CHECK_INT(feed_frame(ws, 1, 2, "\xc3\x28", 2, 1), 0);
    CHECK_INT(p.got.len, 5);
    end(ws, &p);
}

TEST(oversized_message_closes_1009)
{
    struct peer p;
    struct jr_ws *ws = session(&p, 100, 4096);
    char data[101];
    memset(data, 'a', sizeof data);
    CHECK_INT(feed_frame(ws, 1, 1, data, 100, 1), 0);
    /* over the bound in fragments too */
    CHECK_INT(feed_frame(ws, 0, 1, data, 60, 1), 0);
    CHECK_INT(feed_frame(ws, 1, 0, data, 41, 1), -1);
    CHECK_INT(sent_close_code(&p), 1009);
    CHECK_INT(p.got.len, 103);
    end(ws, &p);
}

TEST(output_bound_and_writable)
{
    struct peer p;
    struct jr_ws *ws = session(&p, 1024, 100);
    p.pending = 100;
    CHECK_INT(jr_ws_send_text(ws, "x", 1), JR_WS_FULL);
    CHECK_INT(jr_ws_queued(ws), 100);
    jr_ws_written(ws);
    CHECK_INT(p.writable, 0);
    p.pending = 99;
    jr_ws_written(ws);
    CHECK_INT(p.writable, 1);
    CHECK_INT(jr_ws_send_text(ws, "x", 1), 0);
    /* a peer that does not read what it is sent is not read either */
    CHECK_INT(jr_ws_feed(ws, NULL, 0), 0);
    CHECK_INT(p.reading, 1);
    p.pending = 101;
    jr_ws_written(ws);
    CHECK_INT(p.reading, 0);
    p.pending = 0;
    jr_ws_written(ws);
    CHECK_INT(p.reading, 1);
    jr_ws_pause(ws, 1);
    CHECK_INT(p.reading, 0);
    jr_ws_pause(ws, 0);
    CHECK_INT(p.reading, 1);
    end(ws, &p);
}

TEST(pings_and_the_closing_handshake)
{
    struct peer p;
    struct jr_ws *ws = session(&p, 1024, 4096);
    CHECK_INT(jr_ws_tick(ws), 0);
    CHECK(p.sent.len == 2 && memcmp(p.sent.data, "\x89\x00", 2) == 0);
    CHECK_INT(feed_frame(ws, 1, 10, "", 0, 1), 0);
    CHECK_INT(jr_ws_tick(ws), 0);
    /* no answer to the second ping */
    CHECK_INT(jr_ws_tick(ws), -1);
    end(ws, &p);

    ws = session(&p, 1024, 4096);
    CHECK_INT(jr_ws_close(ws, 1005, NULL), -1);
    char reason[200];
    memset(reason, 'r', sizeof reason);
    memcpy(reason + 121, "\xc3\xa9", 2); /* a character across the cut */
    reason[199] = '\0';
    CHECK_INT(jr_ws_close(ws, 1001, reason), 0);
    CHECK_INT(jr_ws_open(ws), 0);
    CHECK_INT(p.sent.len, 2 + 2 + 121 + 2);
    CHECK_INT(sent_close_code(&p), 1001);
    CHECK_INT(jr_ws_close(ws, 1000, NULL), -1);
    CHECK_INT(jr_ws_send_text(ws, "x", 1), -1);
    CHECK_INT(p.done, 0);
    /* messages still arrive until the peer's close */
    CHECK_INT(feed_frame(ws, 1, 1, "late", 4, 1), 0);
    CHECK_INT(feed_frame(ws, 1, 8, "\x03\xe9", 2, 1), -1);
    CHECK_INT(p.done, 1);
    jr_ws_gone(ws);
    CHECK_INT(p.closed_code, 1001);
    CHECK_STR(p.got.data, "T:late\n");
    end(ws, &p);

    /* a peer that does not answer our close is dropped at the next tick */
    ws = session(&p, 1024, 4096);
    CHECK_INT(jr_ws_close(ws, 0, "done"), 0);
    CHECK_INT(sent_close_code(&p), 1000);
    CHECK_INT(jr_ws_tick(ws), -1);
    jr_ws_gone(ws);
    CHECK_INT(p.closed_code, 1000);
    end(ws, &p);
}

/* Inside on_message (wslay_event_recv) sends only queue; the close that
 * follows them must not overtake them, though wslay sends control frames
 * first. */
TEST(messages_queued_in_a_callback_precede_the_close)
{
    struct peer p;
    struct jr_ws *ws = session(&p, 1024, 4096);
    p.ws = ws;
    p.reply_and_close = 1;
    CHECK_INT(feed_frame(ws, 1, 1, "go", 2, 1), 0);
    CHECK_INT(p.sent.len, 5 + 5 + 5);
    CHECK(p.sent.len == 15 && memcmp(p.sent.data, "\x81\x03one\x81\x03two\x88\x03\x0f\xa0x", 15) == 0);
    end(ws, &p);
}

TEST(detached_handlers_are_not_called)
{
    struct peer p;
    struct jr_ws *ws = session(&p, 1024, 4096);
    jr_ws_detach(ws);
    CHECK_INT(feed_frame(ws, 1, 1, "x", 1, 1), 0);
    jr_ws_gone(ws);
    CHECK_INT(p.got.len, 0);
    CHECK_INT(p.closed_code, 0);
    end(ws, &p);
}

int main(void)
{
    RUN(accept_value_of_the_rfc_example);
    RUN(handshake_refusals);
    RUN(parser_keeps_the_bytes_after_an_upgrade);
    RUN(frames_in_and_out);
    RUN(unmasked_frame_closes_1002);
    RUN(invalid_utf8_closes_1007);
    RUN(oversized_message_closes_1009);
    RUN(output_bound_and_writable);
    RUN(pings_and_the_closing_handshake);
    RUN(messages_queued_in_a_callback_precede_the_close);
    RUN(detached_handlers_are_not_called);
    return UNIT_DONE();
}
