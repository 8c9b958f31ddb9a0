/* The daemon's context: logging, as text ("time level message") or as one
 * JSON object per line with the fields of the request being handled. */
#include "loop.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define LINE_MAX_TEXT 4096
#define LINE_MAX_JSON 16384

static const char *const level_names[] = {"debug", "info", "warn", "error"};

/* The length of the valid UTF-8 sequence at p (1-4), or 0 when invalid. */
static size_t utf8_len(const unsigned char *p)
{
    unsigned c = p[0];
    size_t n, i;
    unsigned cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, cp = c & 0x07;
    else
        return 0;
    for (i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    /* overlong forms, surrogates, past U+10FFFF */
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

int jr_log_json_escape(char *out, size_t size, size_t *len, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p) {
        char esc[8];
        const char *piece = esc;
        size_t n, adv = 1;

        if (*p == '"' || *p == '\\') {
            esc[0] = '\\', esc[1] = (char)*p, n = 2;
        } else if (*p == '\n') {
            memcpy(esc, "\\n", 2), n = 2;
        } else if (*p == '\t') {
            memcpy(esc, "\\t", 2), n = 2;
        } else if (*p < 0x20 || *p == 0x7f) {
            n = (size_t)snprintf(esc, sizeof esc, "\\u%04x", *p);
        } else if (*p < 0x80) {
            piece = (const char *)p, n = 1;
        } else if ((adv = utf8_len(p)) > 0) {
            piece = (const char *)p, n = adv;
        } else {
            memcpy(esc, "\\ufffd", 6), n = 6, adv = 1;
        }
        if (*len + n >= size)
            return -1;
        memcpy(out + *len, piece, n);
        *len += n;
        out[*len] = 0;
        p += adv;
    }
    return 0;
}

/* Append text as it is when it fits whole. */
static void add(char *out, size_t size, size_t *len, const char *text)
{
    size_t n = strlen(text);

    if (*len + n >= size)
        return;
    memcpy(out + *len, text, n + 1);
    *len += n;
}

static void add_field(char *out, size_t size, size_t *len, const char *name, const char *own,
                      const char *ctx)
{
    const char *v = own && own[0] ? own : ctx;

    if (!v || !v[0] || *len + strlen(name) + 8 >= size)
        return;
    add(out, size, len, ",\"");
    add(out, size, len, name);
    add(out, size, len, "\":\"");
    jr_log_json_escape(out, size - 1, len, v);
    add(out, size, len, "\"");
}

static void vlog(struct jr_loop *loop, int level, const struct jr_log_fields *f,
                 const char *extra, const char *fmt, va_list ap)
{
    const struct jr_log_fields *c = loop ? loop->log_context : NULL;
    const char *name = level_names[level < 0 ? 0 : level > 3 ? 3 : level];
    char when[32], msg[LINE_MAX_TEXT], line[LINE_MAX_JSON];
    struct timespec ts;
    struct tm tm;
    size_t len = 0;

    if (loop && level < loop->log_level)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (!loop || !loop->log_json) {
        /* One fprintf per line keeps lines whole when stderr is shared. */
        fprintf(stderr, "%s.%03ldZ %-5s %s\n", when, ts.tv_nsec / 1000000, name, msg);
        return;
    }
    len = (size_t)snprintf(line, sizeof line, "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"message\":\"",
                           when, ts.tv_nsec / 1000000, name);
    /* Room is kept for the fields and the closing brace. */
    jr_log_json_escape(line, sizeof line - 2048, &len, msg);
    add(line, sizeof line, &len, "\"");
    add_field(line, sizeof line - 2, &len, "request_id", f ? f->request_id : NULL,
              c ? c->request_id : NULL);
    add_field(line, sizeof line - 2, &len, "surface", f ? f->surface : NULL, c ? c->surface : NULL);
    add_field(line, sizeof line - 2, &len, "principal", f ? f->principal : NULL,
              c ? c->principal : NULL);
    add_field(line, sizeof line - 2, &len, "job", f ? f->job : NULL, c ? c->job : NULL);
    add_field(line, sizeof line - 2, &len, "task", f ? f->task : NULL, c ? c->task : NULL);
    if (extra && extra[0] && len + strlen(extra) + 3 < sizeof line) {
        add(line, sizeof line, &len, ",");
        add(line, sizeof line, &len, extra);
    }
    add(line, sizeof line, &len, "}");
    fprintf(stderr, "%s\n", line);
}

void jr_log(struct jr_loop *loop, int level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(loop, level, NULL, NULL, fmt, ap);
    va_end(ap);
}

void jr_log_with(struct jr_loop *loop, int level, const struct jr_log_fields *fields,
                 const char *extra_json, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(loop, level, fields, extra_json, fmt, ap);
    va_end(ap);
}
