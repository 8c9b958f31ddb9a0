/* A WebSocket session over an abstract transport (ws_internal.h): wslay's
 * event API reads the bytes fed to it and writes frames through the
 * transport; this file adds the output bound, the liveness pings and the
 * one on_closed call. Frames: client frames must be masked (1002), a
 * message over max_message closes 1009, invalid UTF-8 in a text message
 * 1007 (wslay checks each of these itself). */
#include <stdlib.h>
#include <string.h>

#include "http/ws_internal.h"

static void finish(struct jr_ws *ws)
{
    if (ws->finished)
        return;
    ws->finished = 1;
    ws->io->done(ws->io_ud);
}

size_t jr_ws_queued(const struct jr_ws *ws)
{
    if (ws->finished)
        return 0;
    return wslay_event_get_queued_msg_length(ws->ctx) + ws->io->pending(ws->io_ud);
}

int jr_ws_open(const struct jr_ws *ws)
{
    return !ws->gone && !ws->finished && !ws->closing && !wslay_event_get_close_received(ws->ctx);
}

/* Read while the handler wants input and the peer reads what we send: a
 * peer that floods pings without reading the pongs is not read either. */
static void update_reading(struct jr_ws *ws)
{
    if (ws->finished)
        return;
    int on = !ws->paused && jr_ws_queued(ws) <= ws->opt.max_queued &&
             wslay_event_want_read(ws->ctx);
    if (on != ws->reading) {
        ws->reading = on;
        ws->io->read(ws->io_ud, on);
    }
}

/* Send what wslay queued (unless wslay_event_recv is running: it is sent
 * when that returns), and end the session once neither side has more to
 * say. Returns 0, or -1 once the session is over. */
static int pump(struct jr_ws *ws)
{
    if (ws->finished)
        return -1;
    if (ws->in_recv)
        return 0;
    int rc = wslay_event_send(ws->ctx);
    if (rc == 0 && ws->close_code && wslay_event_get_queued_msg_count(ws->ctx) == 0) {
        /* Refused when a close is already on its way (the peer's, or a
         * protocol error's): that one ends the session instead. */
        wslay_event_queue_close(ws->ctx, (uint16_t)ws->close_code,
                                (const uint8_t *)ws->close_reason, ws->close_len);
        ws->close_code = 0;
        rc = wslay_event_send(ws->ctx);
    }
    if (!ws->finished)
        ws->io->flush(ws->io_ud);
    if (rc != 0 || (!wslay_event_want_read(ws->ctx) && !wslay_event_want_write(ws->ctx))) {
        finish(ws);
        return -1;
    }
    update_reading(ws);
    return ws->finished ? -1 : 0;
}

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                       void *user_data)
{
    struct jr_ws *ws = user_data;
    (void)flags;
    if (ws->in_len == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = len < ws->in_len ? len : ws->in_len;
    memcpy(buf, ws->in, n);
    ws->in += n;
    ws->in_len -= n;
    return (ssize_t)n;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user_data)
{
    struct jr_ws *ws = user_data;
    (void)flags;
    if (ws->finished || ws->io->write(ws->io_ud, (const char *)data, len) != 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                   void *user_data)
{
    struct jr_ws *ws = user_data;
    (void)ctx;
    if (arg->opcode == WSLAY_PONG) {
        ws->pinged = 0;
        return;
    }
    if ((arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME) && !ws->gone &&
        ws->h.on_message)
        ws->h.on_message(ws->ud, arg->opcode == WSLAY_TEXT_FRAME ? JR_WS_TEXT : JR_WS_BINARY,
                         (const char *)arg->msg, arg->msg_length);
}

int jr_ws_new(const struct jr_ws_io *io, void *io_ud, const struct jr_ws_handlers *h, void *ud,
              const struct jr_ws_options *opts, struct jr_ws **out)
{
    static const struct wslay_event_callbacks cbs = {
        .recv_callback = recv_cb,
        .send_callback = send_cb,
        .on_msg_recv_callback = on_msg,
    };
    struct jr_ws *ws = calloc(1, sizeof(*ws));
    if (!ws)
        return -1;
    if (wslay_event_context_server_init(&ws->ctx, &cbs, ws) != 0) {
        free(ws);
        return -1;
    }
    ws->io = io;
    ws->io_ud = io_ud;
    if (h)
        ws->h = *h;
    ws->ud = ud;
    ws->opt = *opts;
    wslay_event_config_set_max_recv_msg_length(ws->ctx, ws->opt.max_message);
    *out = ws;
    return 0;
}

void jr_ws_free(struct jr_ws *ws)
{
    if (!ws)
        return;
    wslay_event_context_free(ws->ctx);
    free(ws);
}

int jr_ws_feed(struct jr_ws *ws, const char *data, size_t len)
{
    if (ws->finished)
        return -1;
    if (len)
        ws->heard = 1;
    ws->in = data;
    ws->in_len = len;
    ws->in_recv = 1;
    int rc = wslay_event_recv(ws->ctx);
    ws->in_recv = 0;
    ws->in = NULL;
    ws->in_len = 0;
    if (rc != 0) {
        finish(ws);
        return -1;
    }
    return pump(ws);
}

static int send_msg(struct jr_ws *ws, uint8_t opcode, const char *data, size_t len)
{
    if (ws->gone || ws->finished || ws->closing)
        return -1;
    if (jr_ws_queued(ws) >= ws->opt.max_queued) {
        ws->full = 1;
        return JR_WS_FULL;
    }
    struct wslay_event_msg m = {opcode, (const uint8_t *)data, len};
    if (wslay_event_queue_msg(ws->ctx, &m) != 0)
        return -1;
    return pump(ws) == 0 ? 0 : -1;
}

int jr_ws_send_text(struct jr_ws *ws, const char *data, size_t len)
{
    return send_msg(ws, WSLAY_TEXT_FRAME, data, len);
}

int jr_ws_send_binary(struct jr_ws *ws, const char *data, size_t len)
{
    return send_msg(ws, WSLAY_BINARY_FRAME, data, len);
}

int jr_ws_close_code_valid(int code)
{
    if (code >= 3000 && code <= 4999)
        return 1;
    return code >= 1000 && code <= 1014 && code != 1004 && code != 1005 && code != 1006;
}

int jr_ws_close(struct jr_ws *ws, int code, const char *reason)
{
    if (ws->gone || ws->finished || ws->closing)
        return -1;
    if (code == 0)
        code = 1000;
    if (!jr_ws_close_code_valid(code))
        return -1;
    size_t n = reason ? strlen(reason) : 0;
    if (n > 123) {
        n = 123;
        /* Not inside a UTF-8 sequence: continuation bytes are 10xxxxxx. */
        while (n > 0 && ((unsigned char)reason[n] & 0xC0) == 0x80)
            n--;
    }
    ws->closing = 1;
    ws->close_code = code;
    ws->close_len = n;
    if (n)
        memcpy(ws->close_reason, reason, n);
    pump(ws);
    return 0;
}

void jr_ws_pause(struct jr_ws *ws, int paused)
{
    ws->paused = paused != 0;
    update_reading(ws);
}

void jr_ws_detach(struct jr_ws *ws)
{
    memset(&ws->h, 0, sizeof(ws->h));
    ws->ud = NULL;
}

int jr_ws_tick(struct jr_ws *ws)
{
    if (ws->finished || ws->gone || ws->closing || wslay_event_get_close_received(ws->ctx))
        return -1;
    if (ws->pinged && !ws->heard && !ws->paused)
        return -1;
    ws->heard = 0;
    ws->pinged = 1;
    struct wslay_event_msg ping = {WSLAY_PING, (const uint8_t *)"", 0};
    if (wslay_event_queue_msg(ws->ctx, &ping) != 0)
        return -1;
    return pump(ws);
}

void jr_ws_written(struct jr_ws *ws)
{
    if (ws->finished)
        return;
    if (ws->full && jr_ws_queued(ws) < ws->opt.max_queued) {
        ws->full = 0;
        if (!ws->gone && ws->h.on_writable)
            ws->h.on_writable(ws->ud);
    }
    update_reading(ws);
}

void jr_ws_gone(struct jr_ws *ws)
{
    if (ws->gone)
        return;
    ws->gone = 1;
    int code = 1006;
    if (wslay_event_get_close_received(ws->ctx))
        code = wslay_event_get_status_code_received(ws->ctx);
    else if (wslay_event_get_close_sent(ws->ctx))
        code = wslay_event_get_status_code_sent(ws->ctx);
    if (ws->h.on_closed)
        ws->h.on_closed(ws->ud, code);
}
