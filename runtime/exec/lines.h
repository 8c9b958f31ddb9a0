/* A task's stdout or stderr cut into log lines as bytes arrive: the plain
 * executor reads its pipes into one of these (the sandbox helper cuts
 * lines of the same length into its spool). */
#ifndef JR_EXEC_LINES_H
#define JR_EXEC_LINES_H

#include <stddef.h>
#include <uv.h>

/* A line longer than this is emitted in pieces of this size. */
#define JR_EXEC_LINE_MAX 65536

struct jr_exec_lines {
    char *data; /* allocated on first read, freed by jr_exec_lines_free */
    size_t len;
};

typedef void (*jr_exec_line_cb)(void *arg, int stream, const char *line, size_t len);

/* For a uv_alloc_cb: room after the bytes kept; len 0 when out of memory
 * (libuv then reports UV_ENOBUFS to the read callback). */
void jr_exec_lines_room(struct jr_exec_lines *b, uv_buf_t *buf);
/* Account n bytes just read, emit every complete line; with flush, also
 * what is left (end of stream). */
void jr_exec_lines_add(struct jr_exec_lines *b, size_t n, int flush, jr_exec_line_cb cb,
                       void *arg, int stream);
void jr_exec_lines_free(struct jr_exec_lines *b);

#endif
