/* The daemon's one context: the libuv loop and what the services running
 * on it share (the log, the metrics). No other global mutable state. The
 * script layer keeps its own state beside it (runtime/lua/runtime.h). */
#ifndef JR_LOOP_H
#define JR_LOOP_H

#include <uv.h>

struct jr_metrics;

/* What a log line is about, beside its message; "" = not known. */
struct jr_log_fields {
    char request_id[72];
    char surface[64];
    char principal[128];
    char job[80];
    char task[72];
};

struct jr_loop {
    uv_loop_t *uv;
    int log_level;        /* JR_LOG_* */
    int log_json;         /* 1: one JSON object per line (log: {format: json}) */
    /* The fields of the request being handled now (set while its handler
     * runs, runtime/lua/resume.c), added to every line; NULL outside one. */
    const struct jr_log_fields *log_context;
    struct jr_metrics *metrics;  /* counted here; NULL = not counted */
};

enum { JR_LOG_DEBUG, JR_LOG_INFO, JR_LOG_WARN, JR_LOG_ERROR };

/* Log one line to stderr: "time level message", or with log_json the
 * object {"time", "level", "message", and the context's fields}. */
void jr_log(struct jr_loop *loop, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* jr_log with fields of its own (NULL = none), which win over the
 * context's, and extra members for the JSON object (NULL, or members as
 * JSON text without braces: "\"status\":200,\"path\":\"/x\""). In text
 * format only the message is written. */
void jr_log_with(struct jr_loop *loop, int level, const struct jr_log_fields *fields,
                 const char *extra_json, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Append s to out (size bytes, out[*len] the end) as a JSON string body:
 * quotes, backslashes and control characters escaped, invalid UTF-8
 * replaced by U+FFFD; stops before a character that would not fit (the
 * result stays valid). Returns 0, or -1 when s was cut. */
int jr_log_json_escape(char *out, size_t size, size_t *len, const char *s);

#endif
