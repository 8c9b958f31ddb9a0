/* The blob store: DATA/images/blobs/sha256/<hex>, each file named by the
 * sha256 of its bytes, verified while it was written into a temp file and
 * then renamed into place, so a blob present is a blob whole. Resumable
 * writers keep their partial file under tmp/ named by the digest. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/internal.h"

int jr_image_digest_valid(const char *d)
{
    if (!d || strncmp(d, "sha256:", 7) != 0 || strlen(d) != JR_DIGEST_LEN)
        return 0;
    for (const char *p = d + 7; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

struct jr_sha256 {
    EVP_MD_CTX *ctx;
};

struct jr_sha256 *jr_sha256_new(void)
{
    struct jr_sha256 *h = calloc(1, sizeof *h);

    if (!h)
        return NULL;
    if (!(h->ctx = EVP_MD_CTX_new()) || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
        jr_sha256_free(h);
        return NULL;
    }
    return h;
}

void jr_sha256_update(struct jr_sha256 *h, const void *p, size_t n)
{
    if (h && n)
        EVP_DigestUpdate(h->ctx, p, n);
}

void jr_sha256_final(struct jr_sha256 *h, char out[JR_DIGEST_LEN + 1])
{
    unsigned char md[32];
    unsigned int n = 0;

    memcpy(out, "sha256:", 7);
    if (!h || EVP_DigestFinal_ex(h->ctx, md, &n) != 1 || n != 32)
        memset(md, 0, sizeof md);
    for (int i = 0; i < 32; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
    jr_sha256_free(h);
}

void jr_sha256_free(struct jr_sha256 *h)
{
    if (!h)
        return;
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

int jr_image_blob_path(const struct jr_image_store *s, const char *digest, char *out,
                       size_t size)
{
    if (!jr_image_digest_valid(digest))
        return -1;
    return snprintf(out, size, "%s/blobs/sha256/%s", s->dir, digest + 7) >= (int)size ? -1 : 0;
}

int jr_image_blob_has(struct jr_image_store *s, const char *digest)
{
    char path[PATH_MAX];
    struct stat st;

    return jr_image_blob_path(s, digest, path, sizeof path) == 0 && stat(path, &st) == 0 &&
           S_ISREG(st.st_mode);
}

int jr_image_blob_read(struct jr_image_store *s, const char *digest, size_t max,
                       char **out, size_t *len, struct jr_err *e)
{
    char path[PATH_MAX];
    struct stat st;
    char *buf = NULL;
    size_t got = 0;
    int fd;

    *out = NULL;
    *len = 0;
    if (jr_image_blob_path(s, digest, path, sizeof path))
        return jr_err_set(e, JR_E_INVALID, "%.80s is not a sha256 digest", digest);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
        return jr_err_set(e, errno == ENOENT ? JR_E_NOT_FOUND : JR_E_SYSTEM,
                          "blob %s: %s", digest, strerror(errno));
    if (fstat(fd, &st) || (size_t)st.st_size > max) {
        close(fd);
        return jr_err_set(e, JR_E_INVALID, "blob %s is larger than %zu bytes", digest, max);
    }
    if (!(buf = malloc((size_t)st.st_size + 1))) {
        close(fd);
        return jr_err_set(e, JR_E_SYSTEM, "out of memory");
    }
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (got != (size_t)st.st_size) {
        free(buf);
        return jr_err_set(e, JR_E_SYSTEM, "reading blob %s failed", digest);
    }
    buf[got] = 0;
    *out = buf;
    *len = got;
    return JR_OK;
}

int jr_image_blob_adopt(struct jr_image_store *s, const char *tmp, const char *digest,
                        struct jr_err *e)
{
    char path[PATH_MAX];

    if (jr_image_blob_path(s, digest, path, sizeof path))
        return jr_err_set(e, JR_E_INVALID, "%.80s is not a sha256 digest", digest);
    chmod(tmp, 0444);
    if (rename(tmp, path))
        return jr_err_set(e, JR_E_SYSTEM, "storing blob %s: %s", digest, strerror(errno));
    return JR_OK;
}

/* ---- the resumable writer ---- */

struct jr_image_blob_w {
    struct jr_image_store *s;
    char digest[JR_DIGEST_LEN + 1];
    char tmp[PATH_MAX];
    int fd;
    int64_t size, max;
    struct jr_sha256 *h;
};

int jr_image_blob_begin(struct jr_image_store *s, const char *digest, int64_t max_size,
                        struct jr_image_blob_w **out, int64_t *offset, struct jr_err *e)
{
    struct jr_image_blob_w *w;
    char name[96], buf[65536];
    struct stat st;

    *out = NULL;
    *offset = 0;
    if (!jr_image_digest_valid(digest))
        return jr_err_set(e, JR_E_INVALID, "%.80s is not a sha256 digest", digest);
    if (!(w = calloc(1, sizeof *w)) || !(w->h = jr_sha256_new())) {
        free(w);
        return jr_err_set(e, JR_E_SYSTEM, "out of memory");
    }
    w->s = s;
    w->max = max_size;
    snprintf(w->digest, sizeof w->digest, "%s", digest);
    snprintf(name, sizeof name, "%s.partial", digest + 7);
    if (jr_image_path(s, w->tmp, sizeof w->tmp, "tmp", name) ||
        (w->fd = open(w->tmp, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644)) < 0) {
        int err = errno;
        jr_sha256_free(w->h);
        free(w);
        return jr_err_set(e, JR_E_SYSTEM, "temp file for %s: %s", digest, strerror(err));
    }
    /* What an earlier try kept counts once it is hashed again. */
    if (fstat(w->fd, &st) == 0 && st.st_size > 0 && (max_size <= 0 || st.st_size <= max_size)) {
        ssize_t r;
        while ((r = read(w->fd, buf, sizeof buf)) > 0) {
            jr_sha256_update(w->h, buf, (size_t)r);
            w->size += r;
        }
        if (r < 0 || w->size != st.st_size) {
            jr_image_blob_abort(w, 0);
            return jr_err_set(e, JR_E_SYSTEM, "reading the partial %s", digest);
        }
    } else if (ftruncate(w->fd, 0)) {
        jr_image_blob_abort(w, 0);
        return jr_err_set(e, JR_E_SYSTEM, "temp file for %s: %s", digest, strerror(errno));
    }
    *offset = w->size;
    *out = w;
    return JR_OK;
}

int jr_image_blob_write(struct jr_image_blob_w *w, const void *buf, size_t n,
                        struct jr_err *e)
{
    const char *p = buf;

    if (w->max > 0 && w->size + (int64_t)n > w->max)
        return jr_err_set(e, JR_E_FULL, "blob %s is larger than the %lld bytes allowed",
                          w->digest, (long long)w->max);
    jr_sha256_update(w->h, buf, n);
    while (n > 0) {
        ssize_t r = write(w->fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return jr_err_set(e, errno == ENOSPC ? JR_E_FULL : JR_E_SYSTEM,
                              "writing blob %s: %s", w->digest, strerror(errno));
        p += r;
        n -= (size_t)r;
        w->size += r;
    }
    return JR_OK;
}

int jr_image_blob_commit(struct jr_image_blob_w *w, struct jr_err *e)
{
    char got[JR_DIGEST_LEN + 1];
    int rc;

    jr_sha256_final(w->h, got);
    w->h = NULL;
    if (strcmp(got, w->digest) != 0) {
        rc = jr_err_set(e, JR_E_INVALID, "digest mismatch: expected %s, the %lld bytes"
                        " received hash to %s", w->digest, (long long)w->size, got);
        jr_image_blob_abort(w, 0);
        return rc;
    }
    if (fsync(w->fd)) {
        rc = jr_err_set(e, JR_E_SYSTEM, "fsync of blob %s: %s", w->digest, strerror(errno));
        jr_image_blob_abort(w, 0);
        return rc;
    }
    close(w->fd);
    w->fd = -1;
    rc = jr_image_blob_adopt(w->s, w->tmp, w->digest, e);
    jr_image_blob_abort(w, rc != JR_OK ? 0 : 1);
    return rc;
}

void jr_image_blob_abort(struct jr_image_blob_w *w, int keep)
{
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    if (!keep)
        unlink(w->tmp);
    jr_sha256_free(w->h);
    free(w);
}
