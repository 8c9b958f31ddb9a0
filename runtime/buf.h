/* A growable byte buffer. The struct owns `data`; jr_buf_free releases it. */
#ifndef JR_BUF_H
#define JR_BUF_H

#include <stddef.h>

struct jr_buf {
    char *data;
    size_t len;
    size_t cap;
};

/* Append n bytes; returns 0, or -1 when out of memory (buffer unchanged). */
int jr_buf_add(struct jr_buf *b, const void *p, size_t n);
int jr_buf_addstr(struct jr_buf *b, const char *s);
int jr_buf_addf(struct jr_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Hand the bytes to the caller (who frees them) and empty the buffer. */
char *jr_buf_detach(struct jr_buf *b, size_t *len);
void jr_buf_reset(struct jr_buf *b);
void jr_buf_free(struct jr_buf *b);

#endif
