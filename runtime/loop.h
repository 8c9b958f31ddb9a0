/* The daemon's one context: the libuv loop and what the services running
 * on it share (the log). No other global mutable state. The script layer
 * keeps its own state beside it (runtime/lua/runtime.h). */
#ifndef JR_LOOP_H
#define JR_LOOP_H

#include <uv.h>

struct jr_loop {
    uv_loop_t *uv;
    int log_level;        /* JR_LOG_* */
};

enum { JR_LOG_DEBUG, JR_LOG_INFO, JR_LOG_WARN, JR_LOG_ERROR };

/* Log one line to stderr: "time level message". */
void jr_log(struct jr_loop *loop, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
