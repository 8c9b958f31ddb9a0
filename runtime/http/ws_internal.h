/* A WebSocket session without I/O: libwslay's event context fed from the
 * bytes its transport reads and writing through the transport. The HTTP
 * connection is one transport (websocket.c); the unit test and the fuzz
 * target use a memory one. Not for use outside http/, tests and fuzz/. */
#ifndef JR_HTTP_WS_INTERNAL_H
#define JR_HTTP_WS_INTERNAL_H

#include <stddef.h>
#include <wslay/wslay.h>

#include "http/websocket.h"

/* What a session needs of its transport; ud is jr_ws.io_ud. */
struct jr_ws_io {
    /* Take len bytes for the peer; 0, or -1 when the transport is gone. */
    int (*write)(void *ud, const char *data, size_t len);
    /* Written bytes are complete for now: push them out. */
    void (*flush)(void *ud);
    /* Bytes taken but not yet handed to the kernel. */
    size_t (*pending)(void *ud);
    /* Stop (0) or resume (1) delivering the peer's bytes. */
    void (*read)(void *ud, int on);
    /* The session is over (both close frames passed, or it failed): close
     * the transport once what was written has gone. */
    void (*done)(void *ud);
};

struct jr_ws {
    wslay_event_context_ptr ctx;
    const struct jr_ws_io *io;
    void *io_ud;
    struct jr_ws_handlers h;
    void *ud;
    struct jr_ws_options opt;
    const char *in;         /* bytes being fed, read by wslay's recv callback */
    size_t in_len;
    int in_recv;            /* inside wslay_event_recv: sends only queue */
    int gone;               /* on_closed was called (or is due) */
    int finished;           /* io->done was called */
    int closing;            /* jr_ws_close was called */
    int close_code;         /* our close, queued once the data before it
                               is sent (wslay sends control frames first) */
    size_t close_len;
    char close_reason[123];
    int full;               /* a send said JR_WS_FULL; on_writable is owed */
    int paused;             /* jr_ws_pause */
    int reading;            /* what io->read was last told */
    int heard;              /* input arrived since the last tick */
    int pinged;             /* a ping is unanswered */
};

/* Make a server session over io (opts already defaulted). Returns 0, or
 * -1 when out of memory. The caller owns *out (jr_ws_free). */
int jr_ws_new(const struct jr_ws_io *io, void *io_ud, const struct jr_ws_handlers *h, void *ud,
              const struct jr_ws_options *opts, struct jr_ws **out);
/* The peer's bytes. Returns 0, or -1 once the session is over. */
int jr_ws_feed(struct jr_ws *ws, const char *data, size_t len);
/* The ping timer fired: returns 0 (a ping went out, or the peer is fine),
 * or -1 when the transport should close now (no answer to the last ping,
 * or no answer to our close). */
int jr_ws_tick(struct jr_ws *ws);
/* The transport wrote some bytes: owed on_writable calls are made. */
void jr_ws_written(struct jr_ws *ws);
/* The transport closed: on_closed is called unless it was already. */
void jr_ws_gone(struct jr_ws *ws);
void jr_ws_free(struct jr_ws *ws);

#endif
