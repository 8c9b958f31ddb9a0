/* A byte source for the tar reader: a file or memory, inflated through
 * zlib when it starts as gzip (several members allowed), with optional
 * sha256 of the stored bytes and of the bytes as read (a layer's blob
 * digest and its diff_id). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "image/internal.h"

#define INBUF 65536

/* Raw bytes from the file or memory: how many, 0 at the end, -1. */
static ssize_t raw_read(struct jr_src *s, void *buf, size_t n)
{
    ssize_t r;

    if (s->fd < 0) {
        size_t left = s->memlen - s->mempos;
        if (n > left)
            n = left;
        memcpy(buf, s->mem + s->mempos, n);
        s->mempos += n;
        r = (ssize_t)n;
    } else {
        do
            r = read(s->fd, buf, n);
        while (r < 0 && errno == EINTR);
        if (r < 0) {
            snprintf(s->err, sizeof s->err, "read: %s", strerror(errno));
            return -1;
        }
    }
    if (r > 0)
        jr_sha256_update(s->raw, buf, (size_t)r);
    return r;
}

static int fill(struct jr_src *s)
{
    ssize_t r;

    if (s->inpos < s->inlen)
        return 1;
    s->inpos = s->inlen = 0;
    if ((r = raw_read(s, s->in, INBUF)) < 0)
        return -1;
    s->inlen = (size_t)r;
    return r > 0;
}

static int open_common(struct jr_src *s, int detect)
{
    unsigned char *m;

    if (!(s->in = malloc(INBUF))) {
        snprintf(s->err, sizeof s->err, "out of memory");
        return -1;
    }
    if (!detect)
        return 0;
    while (s->inlen < 4) {
        ssize_t r = raw_read(s, s->in + s->inlen, 4 - s->inlen);
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        s->inlen += (size_t)r;
    }
    m = s->in;
    if (s->inlen >= 4 && m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd) {
        snprintf(s->err, sizeof s->err, "zstd-compressed data is not supported (only gzip"
                 " and plain tar)");
        return -1;
    }
    if (s->inlen >= 2 && m[0] == 0x1f && m[1] == 0x8b) {
        z_stream *z = calloc(1, sizeof *z);
        if (!z || inflateInit2(z, 15 + 16) != Z_OK) {
            free(z);
            snprintf(s->err, sizeof s->err, "zlib: cannot start inflating");
            return -1;
        }
        s->z = z;
        s->gzip = 1;
    }
    return 0;
}

static void init(struct jr_src *s, int hash_raw, int hash_plain)
{
    memset(s, 0, sizeof *s);
    s->fd = -1;
    s->raw = hash_raw ? jr_sha256_new() : NULL;
    s->plain = hash_plain ? jr_sha256_new() : NULL;
}

int jr_src_open_fd(struct jr_src *s, int fd, int detect, int hash_raw, int hash_plain)
{
    init(s, hash_raw, hash_plain);
    s->fd = fd;
    if ((hash_raw && !s->raw) || (hash_plain && !s->plain)) {
        snprintf(s->err, sizeof s->err, "out of memory");
        return -1;
    }
    return open_common(s, detect);
}

int jr_src_open_mem(struct jr_src *s, const void *p, size_t n, int detect)
{
    init(s, 0, 0);
    s->mem = p;
    s->memlen = n;
    return open_common(s, detect);
}

static ssize_t inflate_some(struct jr_src *s, void *buf, size_t n)
{
    z_stream *z = s->z;

    for (;;) {
        int f, rc;
        if (s->zend) {
            /* After a member: another one, trailing zeros, or the end. */
            if ((f = fill(s)) < 0)
                return -1;
            if (f == 0)
                return 0;
            if (s->in[s->inpos] == 0) {
                s->inpos = s->inlen;
                continue;
            }
            inflateReset(z);
            s->zend = 0;
        }
        if ((f = fill(s)) < 0)
            return -1;
        z->next_in = s->in + s->inpos;
        z->avail_in = (uInt)(s->inlen - s->inpos);
        z->next_out = buf;
        z->avail_out = (uInt)(n > (1u << 30) ? (1u << 30) : n);
        if (f == 0 && z->avail_in == 0) {
            snprintf(s->err, sizeof s->err, "gzip data ends early");
            return -1;
        }
        rc = inflate(z, Z_NO_FLUSH);
        s->inpos = s->inlen - z->avail_in;
        if (rc == Z_STREAM_END)
            s->zend = 1;
        else if (rc != Z_OK && rc != Z_BUF_ERROR) {
            snprintf(s->err, sizeof s->err, "gzip: %s", z->msg ? z->msg : "corrupt data");
            return -1;
        }
        size_t got = (size_t)((unsigned char *)z->next_out - (unsigned char *)buf);
        if (got > 0)
            return (ssize_t)got;
    }
}

ssize_t jr_src_read(struct jr_src *s, void *buf, size_t n)
{
    ssize_t r;

    if (n == 0)
        return 0;
    if (s->gzip) {
        r = inflate_some(s, buf, n);
    } else if (s->inpos < s->inlen) {
        size_t k = s->inlen - s->inpos;
        if (k > n)
            k = n;
        memcpy(buf, s->in + s->inpos, k);
        s->inpos += k;
        r = (ssize_t)k;
    } else {
        r = raw_read(s, buf, n);
    }
    if (r > 0) {
        jr_sha256_update(s->plain, buf, (size_t)r);
        s->plain_total += r;
    }
    return r;
}

int jr_src_drain(struct jr_src *s)
{
    char buf[16384];
    ssize_t r;

    while ((r = jr_src_read(s, buf, sizeof buf)) > 0)
        ;
    return r < 0 ? -1 : 0;
}

void jr_src_close(struct jr_src *s)
{
    if (s->z) {
        inflateEnd(s->z);
        free(s->z);
    }
    free(s->in);
    jr_sha256_free(s->raw);
    jr_sha256_free(s->plain);
    s->z = NULL;
    s->in = NULL;
    s->raw = s->plain = NULL;
}
