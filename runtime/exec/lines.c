/* Cutting a task's output stream into log lines (see lines.h). */
#include "exec/lines.h"

#include <stdlib.h>
#include <string.h>

#define SLACK 4096 /* read room beyond the longest line */

void jr_exec_lines_room(struct jr_exec_lines *b, uv_buf_t *buf)
{
    if (!b->data)
        b->data = malloc(JR_EXEC_LINE_MAX + SLACK);
    buf->base = b->data ? b->data + b->len : NULL;
    buf->len = b->data ? JR_EXEC_LINE_MAX + SLACK - b->len : 0;
}

void jr_exec_lines_add(struct jr_exec_lines *b, size_t n, int flush, jr_exec_line_cb cb,
                       void *arg, int stream)
{
    size_t start = 0;
    if (!b->data)
        return;
    b->len += n;
    for (size_t i = 0; i < b->len; i++) {
        if (b->data[i] == '\n') {
            cb(arg, stream, b->data + start, i - start);
            start = i + 1;
        }
    }
    if (flush || b->len - start >= JR_EXEC_LINE_MAX) {
        if (b->len > start)
            cb(arg, stream, b->data + start, b->len - start);
        start = b->len;
    }
    memmove(b->data, b->data + start, b->len - start);
    b->len -= start;
}

void jr_exec_lines_free(struct jr_exec_lines *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
}
