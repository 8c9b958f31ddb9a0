/* Importing an archive: an OCI image layout (oci-layout, index.json,
 * blobs/sha256/...) or a `docker save` one (manifest.json, configs, layer
 * tars), gzip'ed or not. One pass stores every file of it as a blob
 * (those named blobs/sha256/<hex> must hash to their name); then the
 * image is found (for docker save, its OCI manifest is written from
 * manifest.json) and installed. Blobs the import added and the image does
 * not use are removed again, and all of them if it fails. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/internal.h"

#define DOC_MAX (4 << 20)
#define MAX_FILES 100000

struct afile {
    char *path;              /* cleaned path in the archive */
    char digest[JR_DIGEST_LEN + 1];
    char *link;              /* a symlink's target (digest unset) */
    int added;               /* this import put the blob in the store */
};

struct imp {
    struct jr_image_store *s;
    struct afile *f;
    int n, cap;
    int64_t budget;          /* bytes of blobs still allowed, < 0 = none */
};

static void clean(char *p)
{
    while (p[0] == '.' && p[1] == '/')
        memmove(p, p + 2, strlen(p + 2) + 1);
    while (p[0] == '/')
        memmove(p, p + 1, strlen(p));
}

static struct afile *find(struct imp *im, const char *path, int depth)
{
    for (int i = 0; i < im->n; i++) {
        if (strcmp(im->f[i].path, path))
            continue;
        if (!im->f[i].link)
            return &im->f[i];
        if (depth > 8)
            return NULL;
        /* docker save links a layer seen before: "../<id>/layer.tar". */
        char target[JR_TAR_PATH_MAX * 2];
        const char *slash = strrchr(path, '/');
        if (im->f[i].link[0] == '/')
            snprintf(target, sizeof target, "%s", im->f[i].link + 1);
        else
            snprintf(target, sizeof target, "%.*s%s", slash ? (int)(slash - path + 1) : 0,
                     path, im->f[i].link);
        /* fold "dir/../x" */
        char *dd;
        while ((dd = strstr(target, "/../")) != NULL) {
            char *start = dd;
            while (start > target && start[-1] != '/')
                start--;
            memmove(start, dd + 4, strlen(dd + 4) + 1);
        }
        if (strncmp(target, "../", 3) == 0)
            return NULL;
        clean(target);
        return find(im, target, depth + 1);
    }
    return NULL;
}

static struct afile *add(struct imp *im, const char *path, struct jr_err *e)
{
    if (im->n >= MAX_FILES) {
        jr_err_set(e, JR_E_INVALID, "the archive has more than %d files", MAX_FILES);
        return NULL;
    }
    if (im->n == im->cap) {
        int cap = im->cap ? im->cap * 2 : 64;
        struct afile *f = realloc(im->f, (size_t)cap * sizeof *f);
        if (!f) {
            jr_err_set(e, JR_E_SYSTEM, "out of memory");
            return NULL;
        }
        im->f = f;
        im->cap = cap;
    }
    struct afile *a = &im->f[im->n];
    memset(a, 0, sizeof *a);
    if (!(a->path = strdup(path))) {
        jr_err_set(e, JR_E_SYSTEM, "out of memory");
        return NULL;
    }
    im->n++;
    return a;
}

/* The entry's data into a temp file, hashed, then into the store. */
static int store_file(struct imp *im, struct jr_tar *t, struct afile *a, struct jr_err *e)
{
    char tmp[PATH_MAX], buf[65536];
    struct jr_sha256 *h = jr_sha256_new();
    int fd, rc = JR_OK;
    ssize_t r;

    if (!h)
        return jr_err_set(e, JR_E_SYSTEM, "out of memory");
    if (jr_image_tmp_name(im->s, "import", tmp, sizeof tmp) ||
        (fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0) {
        jr_sha256_free(h);
        return jr_err_set(e, JR_E_SYSTEM, "temp file: %s", strerror(errno));
    }
    while ((r = jr_tar_data(t, buf, sizeof buf)) > 0) {
        const char *p = buf;
        jr_sha256_update(h, buf, (size_t)r);
        if (im->budget >= 0 && (im->budget -= r) < 0) {
            rc = jr_err_set(e, JR_E_FULL, "the archive does not fit in the image store"
                            " (images.max_store_size)");
            goto done;
        }
        while (r > 0) {
            ssize_t w = write(fd, p, (size_t)r);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                rc = jr_err_set(e, errno == ENOSPC ? JR_E_FULL : JR_E_SYSTEM,
                                "writing a blob: %s", strerror(errno));
                goto done;
            }
            p += w;
            r -= w;
        }
    }
    if (r < 0) {
        rc = jr_err_set(e, JR_E_INVALID, "the archive: %s", t->err);
        goto done;
    }
    jr_sha256_final(h, a->digest);
    h = NULL;
    if (strncmp(a->path, "blobs/sha256/", 13) == 0 && strcmp(a->path + 13, a->digest + 7)) {
        rc = jr_err_set(e, JR_E_INVALID, "%.200s in the archive hashes to %s, not to its"
                        " name (refused)", a->path, a->digest);
        goto done;
    }
    if (jr_image_blob_has(im->s, a->digest))
        goto done;
    if (fsync(fd)) {
        rc = jr_err_set(e, JR_E_SYSTEM, "fsync: %s", strerror(errno));
        goto done;
    }
    close(fd);
    fd = -1;
    if ((rc = jr_image_blob_adopt(im->s, tmp, a->digest, e)) == JR_OK)
        a->added = 1;
done:
    jr_sha256_free(h);
    if (fd >= 0)
        close(fd);
    unlink(tmp); /* gone already when adopted */
    return rc;
}

static int read_archive(struct imp *im, struct jr_tar *t, struct jr_err *e)
{
    struct jr_tar_entry *en = malloc(sizeof *en);
    int r, rc = JR_OK;

    if (!en)
        return jr_err_set(e, JR_E_SYSTEM, "out of memory");
    while ((r = jr_tar_next(t, en)) == 1) {
        struct afile *a;
        clean(en->path);
        if (en->type != JR_TAR_REG && en->type != JR_TAR_SYMLINK &&
            en->type != JR_TAR_HARDLINK)
            continue;
        if (!(a = add(im, en->path, e))) {
            rc = e ? e->code : JR_E_SYSTEM;
            break;
        }
        if (en->type == JR_TAR_REG) {
            if ((rc = store_file(im, t, a, e)))
                break;
        } else {
            char l[JR_TAR_PATH_MAX];
            snprintf(l, sizeof l, "%s", en->link);
            if (en->type == JR_TAR_HARDLINK) {
                clean(l);
                memmove(l + 1, l, strlen(l) + 1);
                l[0] = '/'; /* a hard link names a path from the top */
            }
            if (!(a->link = strdup(l))) {
                rc = jr_err_set(e, JR_E_SYSTEM, "out of memory");
                break;
            }
        }
    }
    if (r < 0 && rc == JR_OK)
        rc = jr_err_set(e, JR_E_INVALID, "the archive: %s", t->err);
    free(en);
    return rc;
}

static int doc(struct imp *im, const char *path, char **text, size_t *len, struct jr_err *e)
{
    struct afile *a = find(im, path, 0);

    if (!a)
        return jr_err_set(e, JR_E_INVALID, "the archive has no %.200s", path);
    return jr_image_blob_read(im->s, a->digest, DOC_MAX, text, len, e);
}

/* The tag part of a name ("bb:1" -> "1"), for OCI ref.name matches. */
static const char *tag_of(const char *name)
{
    const char *slash = strrchr(name, '/'), *colon = strrchr(name, ':');

    return colon && (!slash || colon > slash) ? colon + 1 : NULL;
}

/* OCI layout: the manifest index.json names (by ref.name when several). */
static int oci_pick(struct imp *im, const char *name, char manifest[JR_DIGEST_LEN + 1],
                    char *found_name, size_t fnlen, struct jr_err *e)
{
    struct jr_image_manifest idx;
    char *text = NULL, why[300];
    size_t len;
    int rc, pick = -1;

    if ((rc = doc(im, "index.json", &text, &len, e)))
        return rc;
    if (jr_image_manifest_parse(text, len, &idx, why, sizeof why) || !idx.is_index) {
        rc = jr_err_set(e, JR_E_INVALID, "index.json: %s", idx.is_index ? why :
                        "not an image index");
        goto done;
    }
    for (int i = 0; i < idx.nitems && name; i++) {
        const char *ref = idx.items[i].ref_name, *tag = tag_of(name);
        if (ref && (!strcmp(ref, name) || (tag && !strcmp(ref, tag))))
            pick = i;
    }
    if (pick < 0 && idx.nitems == 1)
        pick = 0;
    if (pick < 0) {
        char refs[200] = "";
        for (int i = 0; i < idx.nitems; i++) {
            size_t o = strlen(refs);
            snprintf(refs + o, sizeof refs - o, "%s%s", o ? ", " : "",
                     idx.items[i].ref_name ? idx.items[i].ref_name : "(unnamed)");
        }
        rc = jr_err_set(e, JR_E_INVALID, "index.json lists %d images (%s): name the one"
                        " to import with --name NAME:TAG", idx.nitems, refs);
        goto done;
    }
    snprintf(manifest, JR_DIGEST_LEN + 1, "%s", idx.items[pick].digest);
    if (idx.items[pick].ref_name && jr_image_name_valid(idx.items[pick].ref_name))
        snprintf(found_name, fnlen, "%s", idx.items[pick].ref_name);
    /* The manifest and what it names must be in the archive. */
    if (!jr_image_blob_has(im->s, manifest))
        rc = jr_err_set(e, JR_E_INVALID, "index.json names %s, which the archive does not"
                        " hold", manifest);
done:
    jr_image_manifest_free(&idx);
    free(text);
    return rc;
}

static int is_gzip_blob(struct jr_image_store *s, const char *digest)
{
    char path[PATH_MAX];
    unsigned char m[2] = {0, 0};
    int fd;

    if (jr_image_blob_path(s, digest, path, sizeof path) ||
        (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return 0;
    if (read(fd, m, 2) != 2)
        m[0] = 0;
    close(fd);
    return m[0] == 0x1f && m[1] == 0x8b;
}

static int64_t blob_size(struct jr_image_store *s, const char *digest)
{
    char path[PATH_MAX];
    struct stat st;

    return jr_image_blob_path(s, digest, path, sizeof path) == 0 && stat(path, &st) == 0
               ? st.st_size : 0;
}

/* docker save: the OCI manifest of the chosen image, written as a blob. */
static int docker_pick(struct imp *im, const char *name, char manifest[JR_DIGEST_LEN + 1],
                       char *found_name, size_t fnlen, struct jr_err *e)
{
    struct jr_image_save sv;
    char *text = NULL, why[300], *out = NULL, tmp[PATH_MAX];
    size_t len, cap = 0, olen = 0;
    int rc = JR_OK, pick = -1, fd = -1;
    struct afile *cfg;
    struct jr_sha256 *h = NULL;

    if ((rc = doc(im, "manifest.json", &text, &len, e)))
        return rc;
    if (jr_image_save_parse(text, len, &sv, why, sizeof why)) {
        rc = jr_err_set(e, JR_E_INVALID, "manifest.json: %s", why);
        goto done;
    }
    for (int i = 0; i < sv.n && name && pick < 0; i++)
        for (int k = 0; k < sv.images[i].ntags; k++) {
            char a[300], b[300];
            if (!jr_image_name_normal(sv.images[i].tags[k], a, sizeof a) &&
                !jr_image_name_normal(name, b, sizeof b) && !strcmp(a, b))
                pick = i;
        }
    if (pick < 0 && sv.n == 1)
        pick = 0;
    if (pick < 0) {
        rc = jr_err_set(e, JR_E_INVALID, "manifest.json lists %d images: name the one to"
                        " import with --name (one of its RepoTags)", sv.n);
        goto done;
    }
    if (sv.images[pick].ntags > 0 && jr_image_name_valid(sv.images[pick].tags[0]))
        snprintf(found_name, fnlen, "%s", sv.images[pick].tags[0]);
    if (!(cfg = find(im, sv.images[pick].config, 0))) {
        rc = jr_err_set(e, JR_E_INVALID, "manifest.json names %.200s, which the archive"
                        " does not hold", sv.images[pick].config);
        goto done;
    }
    cap = 512 + (size_t)sv.images[pick].nlayers * 200;
    if (!(out = malloc(cap))) {
        rc = jr_err_set(e, JR_E_SYSTEM, "out of memory");
        goto done;
    }
    olen = (size_t)snprintf(out, cap, "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":"
                            "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%lld},"
                            "\"layers\":[", JR_MT_OCI_MANIFEST, JR_MT_OCI_CONFIG, cfg->digest,
                            (long long)blob_size(im->s, cfg->digest));
    for (int i = 0; i < sv.images[pick].nlayers; i++) {
        struct afile *l = find(im, sv.images[pick].layers[i], 0);
        if (!l) {
            rc = jr_err_set(e, JR_E_INVALID, "manifest.json names layer %.200s, which the"
                            " archive does not hold", sv.images[pick].layers[i]);
            goto done;
        }
        olen += (size_t)snprintf(out + olen, cap - olen, "%s{\"mediaType\":\"%s\",\"digest\":"
                                 "\"%s\",\"size\":%lld}", i ? "," : "",
                                 is_gzip_blob(im->s, l->digest) ? JR_MT_OCI_LAYER_GZIP
                                 : "application/vnd.oci.image.layer.v1.tar", l->digest,
                                 (long long)blob_size(im->s, l->digest));
    }
    olen += (size_t)snprintf(out + olen, cap - olen, "]}");
    if (!(h = jr_sha256_new())) {
        rc = jr_err_set(e, JR_E_SYSTEM, "out of memory");
        goto done;
    }
    jr_sha256_update(h, out, olen);
    jr_sha256_final(h, manifest);
    h = NULL;
    if (jr_image_blob_has(im->s, manifest))
        goto done;
    if (jr_image_tmp_name(im->s, "manifest", tmp, sizeof tmp) ||
        (fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0 ||
        write(fd, out, olen) != (ssize_t)olen || fsync(fd)) {
        rc = jr_err_set(e, JR_E_SYSTEM, "writing the manifest: %s", strerror(errno));
        goto done;
    }
    close(fd);
    fd = -1;
    if ((rc = jr_image_blob_adopt(im->s, tmp, manifest, e)) == JR_OK) {
        struct afile *a = add(im, "(manifest written for docker save)", e);
        if (a) {
            snprintf(a->digest, sizeof a->digest, "%s", manifest);
            a->added = 1;
        }
    }
done:
    if (fd >= 0) {
        close(fd);
        unlink(tmp);
    }
    jr_sha256_free(h);
    free(out);
    jr_image_save_free(&sv);
    free(text);
    return rc;
}

/* Removes the blobs this import added, but those the named image uses. */
static void drop_added(struct imp *im, const char *keep_name)
{
    struct jr_image_index ix;
    struct jr_image_rec *r = NULL;

    if (keep_name && jr_image_index_read(im->s, &ix, NULL) == JR_OK)
        r = jr_image_index_find(&ix, keep_name);
    else
        memset(&ix, 0, sizeof ix);
    for (int i = 0; i < im->n; i++) {
        char path[PATH_MAX];
        int used = 0;
        if (!im->f[i].added)
            continue;
        if (r) {
            used = !strcmp(r->manifest, im->f[i].digest) || !strcmp(r->config, im->f[i].digest);
            for (int k = 0; k < r->nlayers && !used; k++)
                used = !strcmp(r->layers[k], im->f[i].digest);
        }
        if (!used && jr_image_blob_path(im->s, im->f[i].digest, path, sizeof path) == 0)
            unlink(path);
    }
    jr_image_index_free(&ix);
}

int jr_image_import(struct jr_image_store *s, const char *archive, const char *name,
                    struct jr_image_info *out, struct jr_err *e)
{
    struct imp im;
    struct jr_src src;
    struct jr_tar t;
    char manifest[JR_DIGEST_LEN + 1] = "", found[256] = "", source[320];
    struct jr_image_info info;
    int fd, lock = -1, rc;

    memset(&im, 0, sizeof im);
    memset(&src, 0, sizeof src);
    im.s = s;
    im.budget = -1;
    if (name && !jr_image_name_valid(name))
        return jr_err_set(e, JR_E_INVALID, "--name %.200s is not a valid image name (e.g."
                          " app:1 or registry:5000/team/app:1)", name);
    if ((fd = open(archive, O_RDONLY | O_CLOEXEC)) < 0)
        return jr_err_set(e, errno == ENOENT ? JR_E_NOT_FOUND : JR_E_SYSTEM, "%.200s: %s",
                          archive, strerror(errno));
    if ((lock = jr_image_lock(s, e)) < 0) {
        rc = e ? e->code : JR_E_SYSTEM;
        goto done;
    }
    if (s->o.max_total > 0)
        im.budget = s->o.max_total - jr_image_store_usage(s);
    if (jr_src_open_fd(&src, fd, 1, 0, 0)) {
        rc = jr_err_set(e, JR_E_INVALID, "%.200s: %s", archive, src.err);
        goto done;
    }
    jr_tar_init(&t, (jr_tar_read_fn)jr_src_read, &src);
    if ((rc = read_archive(&im, &t, e)))
        goto done;
    if (find(&im, "oci-layout", 0) && find(&im, "index.json", 0))
        rc = oci_pick(&im, name, manifest, found, sizeof found, e);
    else if (find(&im, "manifest.json", 0))
        rc = docker_pick(&im, name, manifest, found, sizeof found, e);
    else
        rc = jr_err_set(e, JR_E_INVALID, "%.200s is neither an OCI image layout (oci-layout,"
                        " index.json) nor a docker save archive (manifest.json)", archive);
    if (rc)
        goto done;
    if (!name && !found[0]) {
        rc = jr_err_set(e, JR_E_INVALID, "the archive does not name its image: give"
                        " --name NAME:TAG");
        goto done;
    }
    snprintf(source, sizeof source, "import %.300s", archive);
    rc = jr_image_install_locked(s, name ? name : found, manifest, source, &info, e);
    if (rc == JR_OK && out)
        *out = info;
done:
    if (im.n)
        drop_added(&im, rc == JR_OK ? info.name : NULL);
    for (int i = 0; i < im.n; i++) {
        free(im.f[i].path);
        free(im.f[i].link);
    }
    free(im.f);
    jr_src_close(&src);
    jr_image_unlock(lock);
    close(fd);
    return rc;
}
