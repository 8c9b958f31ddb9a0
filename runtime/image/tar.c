/* A streaming tar reader of our own: ustar and GNU headers (octal or
 * base-256 numbers, checksums checked), pax extended headers (path,
 * linkpath, size, uid, gid, mtime) and GNU long names and link names.
 * Every length is bounded; anything it does not understand is an error
 * rather than a guess. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image/internal.h"

#define BLOCK 512
#define PAX_MAX (1 << 20)

void jr_tar_init(struct jr_tar *t, jr_tar_read_fn read, void *arg)
{
    memset(t, 0, sizeof *t);
    t->read = read;
    t->arg = arg;
}

static int fail(struct jr_tar *t, const char *fmt, const char *detail)
{
    snprintf(t->err, sizeof t->err, fmt, detail ? detail : "");
    return -1;
}

/* Exactly n bytes, or -1 (short: "ends early"). */
static int read_full(struct jr_tar *t, void *buf, size_t n)
{
    char *p = buf;

    while (n > 0) {
        ssize_t r = t->read(t->arg, p, n);
        if (r < 0)
            return fail(t, "reading the archive failed%s", NULL);
        if (r == 0)
            return fail(t, "the archive ends in the middle of an entry%s", NULL);
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int skip(struct jr_tar *t, int64_t n)
{
    char buf[4096];

    while (n > 0) {
        size_t k = n > (int64_t)sizeof buf ? sizeof buf : (size_t)n;
        if (read_full(t, buf, k))
            return -1;
        n -= (int64_t)k;
    }
    return 0;
}

/* A numeric field: octal (spaces/NULs around it) or GNU base-256. */
static int number(const unsigned char *f, size_t n, int64_t *out)
{
    int64_t v = 0;
    size_t i = 0;

    if (f[0] & 0x80) {
        if (f[0] & 0x40)
            return -1; /* negative */
        v = f[0] & 0x3f;
        for (i = 1; i < n; i++) {
            if (v > (INT64_MAX >> 8))
                return -1;
            v = (v << 8) | f[i];
        }
        *out = v;
        return 0;
    }
    while (i < n && (f[i] == ' ' || f[i] == 0))
        i++;
    if (i == n) {
        *out = 0;
        return 0;
    }
    for (; i < n && f[i] >= '0' && f[i] <= '7'; i++) {
        if (v > (INT64_MAX >> 3))
            return -1;
        v = v * 8 + (f[i] - '0');
    }
    for (; i < n; i++)
        if (f[i] != ' ' && f[i] != 0)
            return -1;
    *out = v;
    return 0;
}

static int checksum_ok(const unsigned char *h)
{
    int64_t want;
    long u = 0, s = 0;

    if (number(h + 148, 8, &want))
        return 0;
    for (int i = 0; i < BLOCK; i++) {
        unsigned char c = (i >= 148 && i < 156) ? ' ' : h[i];
        u += c;
        s += (signed char)c;
    }
    return want == u || want == s;
}

static void field(char *out, size_t size, const unsigned char *f, size_t n)
{
    size_t k = strnlen((const char *)f, n);

    if (k >= size)
        k = size - 1;
    memcpy(out, f, k);
    out[k] = 0;
}

struct pending {
    char *path, *link;       /* from pax or GNU long names (malloc'ed) */
    int64_t size, uid, gid, mtime;
    int has_size, has_uid, has_gid, has_mtime;
};

static void pending_free(struct pending *p)
{
    free(p->path);
    free(p->link);
    memset(p, 0, sizeof *p);
}

/* The data of a meta entry (pax header, long name) as a string. */
static char *meta_data(struct jr_tar *t, int64_t size, int64_t max)
{
    char *b;

    if (size < 0 || size > max) {
        fail(t, "an extended header is too large%s", NULL);
        return NULL;
    }
    if (!(b = malloc((size_t)size + 1))) {
        fail(t, "out of memory%s", NULL);
        return NULL;
    }
    if (read_full(t, b, (size_t)size) || skip(t, (BLOCK - size % BLOCK) % BLOCK)) {
        free(b);
        return NULL;
    }
    b[size] = 0;
    return b;
}

static int set_str(char **slot, const char *v, size_t n)
{
    char *c = malloc(n + 1);

    if (!c)
        return -1;
    memcpy(c, v, n);
    c[n] = 0;
    free(*slot);
    *slot = c;
    return 0;
}

static int dec(const char *v, size_t n, int64_t *out)
{
    int64_t x = 0;
    size_t i = 0;

    if (n == 0)
        return -1;
    /* mtime may carry a fraction: the whole seconds are enough. */
    for (; i < n && v[i] != '.'; i++) {
        if (v[i] < '0' || v[i] > '9' || x > (INT64_MAX - 9) / 10)
            return -1;
        x = x * 10 + (v[i] - '0');
    }
    *out = x;
    return 0;
}

/* "LEN key=value\n" records. Unknown keys (xattrs among them) are
 * dropped: they are neutralised, not applied. */
static int parse_pax(struct jr_tar *t, const char *b, size_t n, struct pending *p)
{
    size_t off = 0;

    while (off < n) {
        size_t len = 0, i = off;
        while (i < n && b[i] >= '0' && b[i] <= '9' && len < PAX_MAX)
            len = len * 10 + (size_t)(b[i++] - '0');
        if (i >= n || b[i] != ' ' || len == 0 || len > n - off || b[off + len - 1] != '\n')
            return fail(t, "a pax header record is malformed%s", NULL);
        const char *kv = b + i + 1, *end = b + off + len - 1;
        const char *eq = memchr(kv, '=', (size_t)(end - kv));
        if (!eq)
            return fail(t, "a pax header record has no '='%s", NULL);
        size_t kl = (size_t)(eq - kv), vl = (size_t)(end - eq - 1);
        const char *v = eq + 1;
        if (kl == 4 && memcmp(kv, "path", 4) == 0) {
            if (vl >= JR_TAR_PATH_MAX || memchr(v, 0, vl) || set_str(&p->path, v, vl))
                return fail(t, "a pax path is too long or has a NUL%s", NULL);
        } else if (kl == 8 && memcmp(kv, "linkpath", 8) == 0) {
            if (vl >= JR_TAR_PATH_MAX || memchr(v, 0, vl) || set_str(&p->link, v, vl))
                return fail(t, "a pax linkpath is too long or has a NUL%s", NULL);
        } else if (kl == 4 && memcmp(kv, "size", 4) == 0) {
            if (dec(v, vl, &p->size) || memchr(v, '.', vl))
                return fail(t, "a pax size is not a number%s", NULL);
            p->has_size = 1;
        } else if (kl == 3 && memcmp(kv, "uid", 3) == 0) {
            if (dec(v, vl, &p->uid))
                return fail(t, "a pax uid is not a number%s", NULL);
            p->has_uid = 1;
        } else if (kl == 3 && memcmp(kv, "gid", 3) == 0) {
            if (dec(v, vl, &p->gid))
                return fail(t, "a pax gid is not a number%s", NULL);
            p->has_gid = 1;
        } else if (kl == 5 && memcmp(kv, "mtime", 5) == 0) {
            if (v[0] != '-' && dec(v, vl, &p->mtime) == 0)
                p->has_mtime = 1;
        }
        off += len;
    }
    return 0;
}

static int is_zero(const unsigned char *h)
{
    for (int i = 0; i < BLOCK; i++)
        if (h[i])
            return 0;
    return 1;
}

int jr_tar_next(struct jr_tar *t, struct jr_tar_entry *en)
{
    unsigned char h[BLOCK];
    struct pending p;
    int rc = -1;

    if (t->ended)
        return 0;
    if (skip(t, t->left + t->pad))
        return -1;
    t->left = t->pad = 0;
    memset(&p, 0, sizeof p);
    for (int metas = 0;; metas++) {
        int64_t size, v;
        char type;
        ssize_t r = t->read(t->arg, h, 1);
        if (r == 0 && metas == 0) {
            t->ended = 1; /* an archive without its two zero blocks */
            rc = 0;
            goto done;
        }
        if (r != 1 || read_full(t, h + 1, BLOCK - 1)) {
            if (r < 0)
                fail(t, "reading the archive failed%s", NULL);
            else if (r == 0)
                fail(t, "the archive ends after an extended header%s", NULL);
            goto done;
        }
        if (is_zero(h)) {
            if (metas) {
                fail(t, "an extended header is followed by the end of the archive%s", NULL);
                goto done;
            }
            t->ended = 1;
            rc = 0;
            goto done;
        }
        if (!checksum_ok(h)) {
            fail(t, "a header's checksum is wrong (not a tar archive?)%s", NULL);
            goto done;
        }
        if (metas > 8) {
            fail(t, "too many extended headers in a row%s", NULL);
            goto done;
        }
        if (number(h + 124, 12, &size) || size < 0) {
            fail(t, "a header's size is not a number%s", NULL);
            goto done;
        }
        type = (char)h[156];
        if (type == 'x' || type == 'g') {
            char *b = meta_data(t, size, PAX_MAX);
            if (!b)
                goto done;
            int prc = type == 'x' ? parse_pax(t, b, (size_t)size, &p) : 0;
            free(b);
            if (prc)
                goto done;
            continue;
        }
        if (type == 'L' || type == 'K') {
            char *b = meta_data(t, size, JR_TAR_PATH_MAX);
            if (!b)
                goto done;
            size_t n = strnlen(b, (size_t)size);
            int src = set_str(type == 'L' ? &p.path : &p.link, b, n);
            free(b);
            if (src || n >= JR_TAR_PATH_MAX) {
                fail(t, "a long name is too long%s", NULL);
                goto done;
            }
            continue;
        }
        memset(en, 0, sizeof *en);
        switch (type) {
        case '0': case 0: case '7': en->type = JR_TAR_REG; break;
        case '1': en->type = JR_TAR_HARDLINK; break;
        case '2': en->type = JR_TAR_SYMLINK; break;
        case '3': en->type = JR_TAR_CHAR; break;
        case '4': en->type = JR_TAR_BLOCK; break;
        case '5': en->type = JR_TAR_DIR; break;
        case '6': en->type = JR_TAR_FIFO; break;
        default: {
            char d[8];
            snprintf(d, sizeof d, "%c", type >= 32 && type < 127 ? type : '?');
            fail(t, "an entry of type '%s' is not supported", d);
            goto done;
        }
        }
        if (p.path) {
            snprintf(en->path, sizeof en->path, "%s", p.path);
        } else {
            char name[101], prefix[156];
            field(name, sizeof name, h, 100);
            prefix[0] = 0;
            if (memcmp(h + 257, "ustar", 5) == 0 && h[262] == 0) /* POSIX, not GNU */
                field(prefix, sizeof prefix, h + 345, 155);
            snprintf(en->path, sizeof en->path, "%s%s%s", prefix, prefix[0] ? "/" : "", name);
        }
        if (p.link)
            snprintf(en->link, sizeof en->link, "%s", p.link);
        else
            field(en->link, sizeof en->link, h + 157, 100);
        if (number(h + 100, 8, &v)) {
            fail(t, "a header's mode is not a number%s", NULL);
            goto done;
        }
        en->mode = (unsigned)(v & 07777);
        if (number(h + 108, 8, &en->uid) || number(h + 116, 8, &en->gid) ||
            number(h + 136, 12, &en->mtime)) {
            fail(t, "a header's owner or time is not a number%s", NULL);
            goto done;
        }
        if (p.has_uid)
            en->uid = p.uid;
        if (p.has_gid)
            en->gid = p.gid;
        if (p.has_mtime)
            en->mtime = p.mtime;
        if (p.has_size)
            size = p.size;
        if (en->type == JR_TAR_CHAR || en->type == JR_TAR_BLOCK) {
            int64_t ma, mi;
            if (number(h + 329, 8, &ma) || number(h + 337, 8, &mi))
                ma = mi = -1;
            en->devmajor = (unsigned)ma;
            en->devminor = (unsigned)mi;
        }
        if (!en->path[0]) {
            fail(t, "an entry has an empty name%s", NULL);
            goto done;
        }
        /* Only regular files carry data; a size on the others is skipped. */
        en->size = en->type == JR_TAR_REG ? size : 0;
        t->left = size;
        t->pad = (BLOCK - size % BLOCK) % BLOCK;
        rc = 1;
        goto done;
    }
done:
    pending_free(&p);
    return rc;
}

ssize_t jr_tar_data(struct jr_tar *t, void *buf, size_t n)
{
    ssize_t r;

    if (t->left <= 0)
        return 0;
    if ((int64_t)n > t->left)
        n = (size_t)t->left;
    r = t->read(t->arg, buf, n);
    if (r < 0)
        return fail(t, "reading the archive failed%s", NULL);
    if (r == 0)
        return fail(t, "the archive ends in the middle of a file%s", NULL);
    t->left -= r;
    return r;
}
