/* The store as a whole: its folders, names, locks (the store's own for
 * changes; a use lock per image that running tasks hold shared), list,
 * remove and garbage collection, and the bytes it uses. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "image/internal.h"

#define SANDBOX_ID_BASE 100000 /* the sandbox's map of a root helper (sandbox/run.c) */

int jr_image_path(const struct jr_image_store *s, char *out, size_t size, const char *sub,
                  const char *name)
{
    const char *parts[5] = {s->dir, sub ? "/" : "", sub ? sub : "", name ? "/" : "",
                            name ? name : ""};
    size_t off = 0;

    for (int i = 0; i < 5; i++) {
        size_t n = strlen(parts[i]);
        if (off + n >= size)
            return -1;
        memcpy(out + off, parts[i], n);
        off += n;
    }
    out[off] = 0;
    return 0;
}

int jr_image_tmp_name(const struct jr_image_store *s, const char *prefix, char *out,
                      size_t size)
{
    uint64_t r = 0;
    char name[64];

    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
        r = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)out;
    snprintf(name, sizeof name, "%s-%016llx", prefix, (unsigned long long)r);
    return jr_image_path(s, out, size, "tmp", name);
}

/* ---- names ---- */

static int host_like(const char *c, size_t n)
{
    if (n == 9 && memcmp(c, "localhost", 9) == 0)
        return 1;
    return memchr(c, '.', n) || memchr(c, ':', n);
}

static int valid_component(const char *c, size_t n)
{
    if (n == 0 || n > 128)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = c[i];
        int alnum = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
        if (!alnum && ch != '.' && ch != '_' && ch != '-')
            return 0;
        if (!alnum && (i == 0 || i == n - 1))
            return 0;
    }
    return 1;
}

static int valid_host(const char *c, size_t n)
{
    size_t i = 0;

    for (; i < n && c[i] != ':'; i++)
        if (!((c[i] >= 'a' && c[i] <= 'z') || (c[i] >= 'A' && c[i] <= 'Z') ||
              (c[i] >= '0' && c[i] <= '9') || c[i] == '.' || c[i] == '-'))
            return 0;
    if (i == 0)
        return 0;
    if (i < n) {
        size_t d = 0;
        for (i++; i < n; i++, d++)
            if (c[i] < '0' || c[i] > '9')
                return 0;
        if (d == 0 || d > 5)
            return 0;
    }
    return 1;
}

int jr_image_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0, repo_end;
    const char *at, *slash, *colon;

    if (n == 0 || n > 255 || strcmp(name, "host") == 0)
        return 0;
    if ((at = strchr(name, '@')) != NULL) {
        if (!jr_image_digest_valid(at + 1))
            return 0;
        n = (size_t)(at - name);
    }
    slash = memrchr(name, '/', n);
    colon = memrchr(name, ':', n);
    repo_end = n;
    if (colon && (!slash || colon > slash)) {
        size_t tl = n - (size_t)(colon - name) - 1;
        if (tl == 0 || tl > 128)
            return 0;
        for (const char *t = colon + 1; t < name + n; t++)
            if (!((*t >= 'a' && *t <= 'z') || (*t >= 'A' && *t <= 'Z') ||
                  (*t >= '0' && *t <= '9') || *t == '_' || (t > colon + 1 && (*t == '.' || *t == '-'))))
                return 0;
        repo_end = (size_t)(colon - name);
    }
    for (size_t i = 0, k = 0; i <= repo_end; i++) {
        if (i < repo_end && name[i] != '/')
            continue;
        const char *c = name + k;
        size_t cl = i - k;
        if (k == 0 && i < repo_end && host_like(c, cl)) {
            if (!valid_host(c, cl))
                return 0;
        } else if (!valid_component(c, cl)) {
            return 0;
        }
        k = i + 1;
    }
    return 1;
}

int jr_image_ref_host(const char *name, char *out, size_t size)
{
    const char *slash = strchr(name, '/');
    size_t n = slash ? (size_t)(slash - name) : 0;

    if (slash && host_like(name, n)) {
        if (n >= size)
            return -1;
        memcpy(out, name, n);
        out[n] = 0;
        return 0;
    }
    return snprintf(out, size, "docker.io") >= (int)size ? -1 : 0;
}

int jr_image_name_normal(const char *name, char *out, size_t size)
{
    const char *slash, *colon;

    if (!name)
        return -1;
    slash = strrchr(name, '/');
    colon = strrchr(name, ':');
    if (strchr(name, '@') || (colon && (!slash || colon > slash)))
        return snprintf(out, size, "%s", name) >= (int)size ? -1 : 0;
    return snprintf(out, size, "%s:latest", name) >= (int)size ? -1 : 0;
}

/* ---- open ---- */

int jr_image_store_open(const char *data_dir, const struct jr_image_opts *o,
                        struct jr_image_store **out, struct jr_err *e)
{
    static const char *const subs[] = {"blobs", "blobs/sha256", "layers", "roots", "tmp",
                                       "use"};
    struct jr_image_store *s = calloc(1, sizeof *s);
    char path[PATH_MAX];

    *out = NULL;
    if (!s)
        return jr_err_set(e, JR_E_SYSTEM, "out of memory");
    if (o)
        s->o = *o;
    s->id_base = geteuid() == 0 ? SANDBOX_ID_BASE : -1;
    if (snprintf(s->dir, sizeof s->dir, "%s/images", data_dir) >= (int)sizeof s->dir - 200) {
        free(s);
        return jr_err_set(e, JR_E_INVALID, "data_dir is too long");
    }
    if (mkdir(data_dir, 0700) && errno != EEXIST) {
        int err = errno;
        free(s);
        return jr_err_set(e, JR_E_SYSTEM, "cannot create the data directory %s: %s",
                          data_dir, strerror(err));
    }
    if (mkdir(s->dir, 0700) && errno != EEXIST) {
        int err = errno;
        free(s);
        return jr_err_set(e, JR_E_SYSTEM, "cannot create %s/images: %s", data_dir,
                          strerror(err));
    }
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        jr_image_path(s, path, sizeof path, subs[i], NULL);
        if (mkdir(path, 0700) && errno != EEXIST) {
            int err = errno;
            free(s);
            return jr_err_set(e, JR_E_SYSTEM, "cannot create %s: %s", path, strerror(err));
        }
    }
    if (s->o.root == JR_IMAGE_ROOT_OVERLAY || s->o.root == JR_IMAGE_ROOT_COPY) {
        s->strategy = s->o.root;
        snprintf(s->strategy_why, sizeof s->strategy_why, "images.root: %s",
                 s->o.root == JR_IMAGE_ROOT_OVERLAY ? "overlay" : "copy");
    }
    *out = s;
    return JR_OK;
}

void jr_image_store_close(struct jr_image_store *s)
{
    free(s);
}

int jr_image_store_strategy(struct jr_image_store *s, char *why, size_t whylen)
{
    if (!s->strategy) {
        char tmp[PATH_MAX], reason[120] = "";
        int ok = jr_image_path(s, tmp, sizeof tmp, "tmp", NULL) == 0 &&
                 jr_image_probe_overlay(tmp, s->id_base, reason, sizeof reason);
        s->strategy = ok ? JR_IMAGE_ROOT_OVERLAY : JR_IMAGE_ROOT_COPY;
        if (ok)
            snprintf(s->strategy_why, sizeof s->strategy_why, "overlayfs works in a task's"
                     " user namespace here");
        else
            snprintf(s->strategy_why, sizeof s->strategy_why, "overlayfs is not usable in a"
                     " task's user namespace here (%s): merged copies", reason);
    }
    if (why)
        snprintf(why, whylen, "%s", s->strategy_why);
    return s->strategy;
}

/* ---- locks ---- */

static int lock_file(struct jr_image_store *s, const char *name, int how, struct jr_err *e)
{
    char path[PATH_MAX];
    int fd;

    if (jr_image_path(s, path, sizeof path, NULL, name))
        return jr_err_set(e, JR_E_INVALID, "path too long"), -1;
    if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
        jr_err_set(e, JR_E_SYSTEM, "%s: %s", path, strerror(errno));
        return -1;
    }
    while (flock(fd, how)) {
        if (errno == EINTR)
            continue;
        if (errno != EWOULDBLOCK)
            jr_err_set(e, JR_E_SYSTEM, "locking %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int jr_image_lock(struct jr_image_store *s, struct jr_err *e)
{
    return lock_file(s, "lock", LOCK_EX, e);
}

void jr_image_unlock(int fd)
{
    if (fd >= 0)
        close(fd);
}

int jr_image_in_use(struct jr_image_store *s, const char *manifest)
{
    char path[PATH_MAX];
    int fd, busy;

    if (!jr_image_digest_valid(manifest) ||
        jr_image_path(s, path, sizeof path, "use", manifest + 7) ||
        (fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
        return 0;
    busy = flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    close(fd);
    return busy;
}

/* ---- list, get ---- */

static void info_of(struct jr_image_store *s, const struct jr_image_rec *r,
                    struct jr_image_info *o)
{
    memset(o, 0, sizeof *o);
    snprintf(o->name, sizeof o->name, "%s", r->name);
    snprintf(o->manifest, sizeof o->manifest, "%s", r->manifest);
    snprintf(o->config, sizeof o->config, "%s", r->config);
    snprintf(o->source, sizeof o->source, "%s", r->source);
    o->nlayers = r->nlayers;
    o->size = r->size;
    o->blob_size = r->blob_size;
    o->created_ms = r->created_ms;
    o->in_use = jr_image_in_use(s, r->manifest);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct jr_image_info *)a)->name,
                  ((const struct jr_image_info *)b)->name);
}

int jr_image_list(struct jr_image_store *s, struct jr_image_info **out, size_t *n,
                  struct jr_err *e)
{
    struct jr_image_index ix;
    int rc;

    *out = NULL;
    *n = 0;
    if ((rc = jr_image_index_read(s, &ix, e)))
        return rc;
    if (ix.n && !(*out = calloc((size_t)ix.n, sizeof **out))) {
        jr_image_index_free(&ix);
        return jr_err_set(e, JR_E_SYSTEM, "out of memory");
    }
    for (int i = 0; i < ix.n; i++)
        info_of(s, &ix.recs[i], &(*out)[i]);
    *n = (size_t)ix.n;
    if (*n > 1)
        qsort(*out, *n, sizeof **out, by_name);
    jr_image_index_free(&ix);
    return JR_OK;
}

int jr_image_get(struct jr_image_store *s, const char *name, struct jr_image_info *out,
                 struct jr_err *e)
{
    struct jr_image_index ix;
    struct jr_image_rec *r;
    int rc;

    if ((rc = jr_image_index_read(s, &ix, e)))
        return rc;
    if ((r = jr_image_index_find(&ix, name)) != NULL)
        info_of(s, r, out);
    else
        rc = jr_err_set(e, JR_E_NOT_FOUND, "no image %.255s in the store", name);
    jr_image_index_free(&ix);
    return rc;
}

/* ---- usage ---- */

static int64_t dir_files_size(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *de;
    int64_t total = 0;

    if (!d)
        return 0;
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        if (de->d_name[0] != '.' && fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
            total += S_ISREG(st.st_mode) ? st.st_size : 0;
    }
    closedir(d);
    return total;
}

int64_t jr_image_store_usage(struct jr_image_store *s)
{
    struct jr_image_index ix;
    char path[PATH_MAX];
    int64_t total;

    jr_image_path(s, path, sizeof path, "blobs/sha256", NULL);
    total = dir_files_size(path);
    if (jr_image_index_read(s, &ix, NULL))
        return total;
    /* Each unpacked layer once, as recorded; each merged root as its image. */
    for (int i = 0; i < ix.n; i++) {
        const struct jr_image_rec *r = &ix.recs[i];
        struct stat st;
        for (int k = 0; k < r->nlayers; k++) {
            int seen = 0;
            for (int j = 0; j < i && !seen; j++)
                for (int m = 0; m < ix.recs[j].nlayers && !seen; m++)
                    seen = !strcmp(ix.recs[j].layers[m], r->layers[k]);
            for (int m = 0; m < k && !seen; m++)
                seen = !strcmp(r->layers[m], r->layers[k]);
            if (!seen)
                total += r->layer_size[k];
        }
        int dup = 0;
        for (int j = 0; j < i && !dup; j++)
            dup = !strcmp(ix.recs[j].manifest, r->manifest);
        if (!dup && jr_image_path(s, path, sizeof path, "roots", r->manifest + 7) == 0 &&
            stat(path, &st) == 0)
            total += r->size;
    }
    jr_image_index_free(&ix);
    return total;
}

/* ---- gc ---- */

struct live {
    char (*d)[JR_DIGEST_LEN + 1];
    int n, cap;
};

static int live_add(struct live *l, const char *digest)
{
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->d[i], digest))
            return 0;
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 64;
        void *p = realloc(l->d, (size_t)cap * sizeof *l->d);
        if (!p)
            return -1;
        l->d = p;
        l->cap = cap;
    }
    snprintf(l->d[l->n++], JR_DIGEST_LEN + 1, "%s", digest);
    return 0;
}

static int live_has(const struct live *l, const char *hex)
{
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->d[i] + 7, hex))
            return 1;
    return 0;
}

/* The manifest's config and layers (a use lock keeps an image whose name
 * is gone: its manifest tells what it needs). */
static void add_manifest_parts(struct jr_image_store *s, struct live *l, const char *manifest)
{
    struct jr_image_manifest m;
    char *text, why[64];
    size_t len;

    if (jr_image_blob_read(s, manifest, 4 << 20, &text, &len, NULL))
        return;
    if (jr_image_manifest_parse(text, len, &m, why, sizeof why) == 0 && !m.is_index) {
        live_add(l, m.config.digest);
        for (int i = 0; i < m.nitems; i++)
            live_add(l, m.items[i].digest);
    }
    jr_image_manifest_free(&m);
    free(text);
}

/* Removes the entries of sub not in live (by hex name); files or trees. */
static void sweep(struct jr_image_store *s, const char *sub, const struct live *l, int *count,
                  int64_t *bytes)
{
    char dir[PATH_MAX], path[PATH_MAX];
    DIR *d;
    struct dirent *de;

    if (jr_image_path(s, dir, sizeof dir, sub, NULL) || !(d = opendir(dir)))
        return;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (l && live_has(l, de->d_name))
            continue;
        if (snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= (int)sizeof path)
            continue;
        if (jr_image_rmtree(path, bytes) == 0 && count)
            (*count)++;
    }
    closedir(d);
}

/* With the store's lock held. */
static int gc_locked(struct jr_image_store *s, struct jr_image_gc_stats *st, struct jr_err *e)
{
    struct jr_image_index ix;
    struct live l = {NULL, 0, 0}, manifests = {NULL, 0, 0};
    char dir[PATH_MAX];
    DIR *d;
    struct dirent *de;
    int rc, pull_fd, held[256], nheld = 0;

    memset(st, 0, sizeof *st);
    if ((rc = jr_image_index_read(s, &ix, e)))
        return rc;
    for (int i = 0; i < ix.n; i++) {
        live_add(&manifests, ix.recs[i].manifest);
        live_add(&l, ix.recs[i].manifest);
        live_add(&l, ix.recs[i].config);
        for (int k = 0; k < ix.recs[i].nlayers; k++)
            live_add(&l, ix.recs[i].layers[k]);
    }
    /* Images a running task holds, named or not any more. The others'
     * use locks stay taken until the sweep is over: a helper starting on
     * one then finds it gone, never half-removed. */
    jr_image_path(s, dir, sizeof dir, "use", NULL);
    if ((d = opendir(dir)) != NULL) {
        while ((de = readdir(d)) != NULL) {
            char digest[JR_DIGEST_LEN + 8];
            int fd;
            snprintf(digest, sizeof digest, "sha256:%.64s", de->d_name);
            if (de->d_name[0] == '.' || !jr_image_digest_valid(digest) ||
                live_has(&manifests, de->d_name))
                continue;
            fd = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
            if (fd < 0)
                continue;
            if (flock(fd, LOCK_EX | LOCK_NB) == 0 && nheld < (int)(sizeof held / sizeof held[0])) {
                held[nheld++] = fd;
                continue;
            }
            close(fd);
            live_add(&manifests, digest);
            live_add(&l, digest);
            add_manifest_parts(s, &l, digest);
        }
        closedir(d);
    }
    jr_image_index_free(&ix);
    sweep(s, "layers", &l, &st->layers, &st->bytes);
    sweep(s, "roots", &manifests, &st->roots, &st->bytes);
    sweep(s, "use", &manifests, NULL, NULL);
    /* Blobs and temp files only while no pull is downloading into them. */
    pull_fd = lock_file(s, "pulling", LOCK_EX | LOCK_NB, NULL);
    if (pull_fd >= 0) {
        sweep(s, "blobs/sha256", &l, &st->blobs, &st->bytes);
        sweep(s, "tmp", NULL, &st->temps, &st->bytes);
        close(pull_fd);
    }
    for (int i = 0; i < nheld; i++)
        close(held[i]);
    free(l.d);
    free(manifests.d);
    return JR_OK;
}

int jr_image_gc(struct jr_image_store *s, struct jr_image_gc_stats *st, struct jr_err *e)
{
    int fd = jr_image_lock(s, e), rc;

    if (fd < 0)
        return e ? e->code : JR_E_SYSTEM;
    rc = gc_locked(s, st, e);
    jr_image_unlock(fd);
    return rc;
}

int jr_image_remove(struct jr_image_store *s, const char *name, struct jr_err *e)
{
    struct jr_image_index ix;
    struct jr_image_rec *r;
    struct jr_image_gc_stats st;
    int fd = jr_image_lock(s, e), rc;

    if (fd < 0)
        return e ? e->code : JR_E_SYSTEM;
    if ((rc = jr_image_index_read(s, &ix, e)))
        goto done;
    if (!(r = jr_image_index_find(&ix, name))) {
        rc = jr_err_set(e, JR_E_NOT_FOUND, "no image %.255s in the store", name);
    } else if (jr_image_in_use(s, r->manifest)) {
        rc = jr_err_set(e, JR_E_CONFLICT, "image %.200s is in use by a running task:"
                        " remove it once that task has ended", r->name);
    } else {
        jr_image_index_del(&ix, name);
        if ((rc = jr_image_index_write(s, &ix, e)) == JR_OK)
            gc_locked(s, &st, NULL);
    }
    jr_image_index_free(&ix);
done:
    jr_image_unlock(fd);
    return rc;
}

/* ---- pulls (held shared while downloading; see gc) ---- */

int jr_image_pull_hold(struct jr_image_store *s, struct jr_err *e)
{
    return lock_file(s, "pulling", LOCK_SH, e);
}
