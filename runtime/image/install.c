/* Installing an image whose blobs are in the store: the manifest (or this
 * machine's entry of an index) and config are read and checked, each
 * layer not yet unpacked is unpacked into a temp folder, checked against
 * its diff_id and renamed into layers/, a merged root is made when tasks
 * get copies, and only then is the name written. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "image/internal.h"

#define DOC_MAX (4 << 20)

/* The unpacked size of a layer already in layers/: as an image records
 * it, else measured. */
static int64_t known_size(const struct jr_image_index *ix, const char *digest, const char *dir)
{
    for (int i = 0; i < ix->n; i++)
        for (int k = 0; k < ix->recs[i].nlayers; k++)
            if (!strcmp(ix->recs[i].layers[k], digest))
                return ix->recs[i].layer_size[k];
    return jr_image_du(dir);
}

/* Unpacks blob digest into folder dirfd (mode JR_UNPACK_*), checking the
 * uncompressed stream against diff_id (NULL: unchecked). */
static int unpack_blob(struct jr_image_store *s, const char *digest, const char *diff_id,
                       int mode, int dirfd, int64_t budget, int64_t *written,
                       struct jr_err *e)
{
    char path[PATH_MAX], got[JR_DIGEST_LEN + 1];
    struct jr_src src;
    struct jr_tar t;
    struct jr_unpack u;
    int fd, rc = JR_OK;

    if (jr_image_blob_path(s, digest, path, sizeof path) ||
        (fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
        return jr_err_set(e, JR_E_NOT_FOUND, "layer %s is not in the store", digest);
    if (jr_src_open_fd(&src, fd, 1, 0, diff_id != NULL)) {
        rc = jr_err_set(e, JR_E_INVALID, "layer %s: %s", digest, src.err);
        goto done;
    }
    jr_tar_init(&t, (jr_tar_read_fn)jr_src_read, &src);
    memset(&u, 0, sizeof u);
    u.mode = mode;
    u.chown = s->id_base >= 0;
    u.id_base = s->id_base;
    u.budget = budget;
    int urc = jr_unpack_tar(&u, &t, dirfd);
    *written = u.written;
    if (urc) {
        if (src.err[0] && !u.full)
            rc = jr_err_set(e, JR_E_INVALID, "layer %s: %s", digest, src.err);
        else
            rc = jr_err_set(e, u.full ? JR_E_FULL : JR_E_INVALID, "layer %s: %s", digest,
                            u.err);
        goto done;
    }
    if (jr_src_drain(&src)) {
        rc = jr_err_set(e, JR_E_INVALID, "layer %s: %s", digest, src.err);
        goto done;
    }
    if (diff_id) {
        jr_sha256_final(src.plain, got);
        src.plain = NULL;
        if (strcmp(got, diff_id) != 0)
            rc = jr_err_set(e, JR_E_INVALID, "layer %s unpacks to %s, but the config says"
                            " its diff_id is %s (refused)", digest, got, diff_id);
    }
done:
    jr_src_close(&src);
    close(fd);
    return rc;
}

static int64_t remaining(const struct jr_image_store *s, int64_t used_image, int64_t usage)
{
    int64_t b = -1;

    if (s->o.max_image > 0)
        b = s->o.max_image - used_image;
    if (s->o.max_total > 0 && (b < 0 || s->o.max_total - usage < b))
        b = s->o.max_total - usage;
    return b < 0 && (s->o.max_image > 0 || s->o.max_total > 0) ? 0 : b;
}

static int full_error(const struct jr_image_store *s, int64_t used_image, int64_t usage,
                      const char *name, struct jr_err *e)
{
    if (s->o.max_image > 0 && used_image > s->o.max_image)
        return jr_err_set(e, JR_E_FULL, "image %.200s is larger than images.max_image_size"
                          " (%lld bytes)", name, (long long)s->o.max_image);
    return jr_err_set(e, JR_E_FULL, "the image store is full: images.max_store_size is %lld"
                      " bytes and %lld are used (remove images, then `jobrt images gc`)",
                      (long long)s->o.max_total, (long long)usage);
}

int jr_image_make_root(struct jr_image_store *s, const struct jr_image_rec *r,
                       struct jr_err *e)
{
    char final[PATH_MAX], tmp[PATH_MAX];
    struct stat st;
    int fd, rc = JR_OK;

    if (jr_image_path(s, final, sizeof final, "roots", r->manifest + 7) ||
        jr_image_tmp_name(s, "root", tmp, sizeof tmp))
        return jr_err_set(e, JR_E_INVALID, "path too long");
    if (stat(final, &st) == 0)
        return JR_OK;
    if (mkdir(tmp, 0755) || (fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return jr_err_set(e, JR_E_SYSTEM, "%s: %s", tmp, strerror(errno));
    if (s->id_base >= 0 && fchown(fd, (uid_t)s->id_base, (gid_t)s->id_base)) {
        /* cosmetic */
    }
    for (int i = 0; i < r->nlayers && rc == JR_OK; i++) {
        int64_t w = 0;
        rc = unpack_blob(s, r->layers[i], NULL, JR_UNPACK_MERGE, fd, -1, &w, e);
    }
    close(fd);
    if (rc == JR_OK && rename(tmp, final))
        rc = jr_err_set(e, JR_E_SYSTEM, "%s: %s", final, strerror(errno));
    if (rc)
        jr_image_rmtree(tmp, NULL);
    return rc;
}

/* Reads and parses the manifest; an index is resolved to this machine's
 * entry (which must be in the store too): its digest in chosen. */
static int load_manifest(struct jr_image_store *s, const char *digest, struct jr_image_manifest *m,
                         char chosen[JR_DIGEST_LEN + 1], char **text, size_t *len,
                         struct jr_err *e)
{
    char why[300];
    int rc;

    snprintf(chosen, JR_DIGEST_LEN + 1, "%s", digest);
    for (int depth = 0; depth < 3; depth++) {
        if ((rc = jr_image_blob_read(s, chosen, DOC_MAX, text, len, e)))
            return rc;
        if (jr_image_manifest_parse(*text, *len, m, why, sizeof why)) {
            jr_image_manifest_free(m);
            return jr_err_set(e, JR_E_INVALID, "manifest %s: %s", chosen, why);
        }
        if (!m->is_index)
            return JR_OK;
        int i = jr_image_pick_platform(m, why, sizeof why);
        if (i < 0) {
            jr_image_manifest_free(m);
            return jr_err_set(e, JR_E_INVALID, "%s", why);
        }
        snprintf(chosen, JR_DIGEST_LEN + 1, "%s", m->items[i].digest);
        jr_image_manifest_free(m);
        free(*text);
        *text = NULL;
    }
    return jr_err_set(e, JR_E_INVALID, "indexes nested too deep");
}

static int64_t file_size(struct jr_image_store *s, const char *digest)
{
    char path[PATH_MAX];
    struct stat st;

    return jr_image_blob_path(s, digest, path, sizeof path) == 0 && stat(path, &st) == 0
               ? st.st_size : 0;
}

int jr_image_install_locked(struct jr_image_store *s, const char *name, const char *manifest,
                            const char *source, struct jr_image_info *out, struct jr_err *e)
{
    struct jr_image_manifest m;
    struct jr_image_config cfg;
    struct jr_image_index ix;
    struct jr_image_rec rec;
    char chosen[JR_DIGEST_LEN + 1], norm[256], why[300], *text = NULL, *ctext = NULL;
    char (*made)[PATH_MAX] = NULL;
    const char *os, *arch, *variant;
    size_t len, clen;
    int nmade = 0, rc;
    int64_t usage, image_size = 0;
    struct timespec now;

    memset(&m, 0, sizeof m);
    memset(&cfg, 0, sizeof cfg);
    memset(&rec, 0, sizeof rec);
    memset(&ix, 0, sizeof ix);
    if (!(made = calloc(JR_IMAGE_MAX_LAYERS, sizeof *made)))
        return jr_err_set(e, JR_E_SYSTEM, "out of memory");
    if (!jr_image_name_valid(name) || jr_image_name_normal(name, norm, sizeof norm) ||
        strlen(norm) > 255) {
        free(made);
        return jr_err_set(e, JR_E_INVALID, "%.200s is not a valid image name (e.g. app:1 or"
                          " registry:5000/team/app:1)", name);
    }
    if ((rc = load_manifest(s, manifest, &m, chosen, &text, &len, e)))
        goto done;
    if ((rc = jr_image_blob_read(s, m.config.digest, DOC_MAX, &ctext, &clen, e)))
        goto done;
    if (jr_image_config_parse(ctext, clen, &cfg, why, sizeof why)) {
        rc = jr_err_set(e, JR_E_INVALID, "config %s: %s", m.config.digest, why);
        goto done;
    }
    jr_image_platform(&os, &arch, &variant);
    if ((cfg.os && cfg.os[0] && strcmp(cfg.os, os)) ||
        (cfg.arch && cfg.arch[0] && strcmp(cfg.arch, arch))) {
        rc = jr_err_set(e, JR_E_INVALID, "the image is for %s/%s; this machine is %s/%s",
                        cfg.os ? cfg.os : "?", cfg.arch ? cfg.arch : "?", os, arch);
        goto done;
    }
    if (cfg.ndiff_ids != m.nitems) {
        rc = jr_err_set(e, JR_E_INVALID, "the config lists %d diff_ids for %d layers",
                        cfg.ndiff_ids, m.nitems);
        goto done;
    }
    if ((rc = jr_image_index_read(s, &ix, e)))
        goto done;
    usage = jr_image_store_usage(s);
    rec.layers = calloc((size_t)m.nitems, sizeof *rec.layers);
    rec.layer_size = calloc((size_t)m.nitems, sizeof *rec.layer_size);
    if (!rec.layers || !rec.layer_size) {
        rc = jr_err_set(e, JR_E_SYSTEM, "out of memory");
        goto done;
    }
    rec.nlayers = m.nitems;
    for (int i = 0; i < m.nitems; i++) {
        const char *d = m.items[i].digest;
        char final[PATH_MAX], tmp[PATH_MAX];
        struct stat st;
        int64_t w = 0;
        int fd;
        snprintf(rec.layers[i], sizeof rec.layers[i], "%s", d);
        if (jr_image_path(s, final, sizeof final, "layers", d + 7) ||
            jr_image_tmp_name(s, "layer", tmp, sizeof tmp)) {
            rc = jr_err_set(e, JR_E_INVALID, "path too long");
            goto done;
        }
        if (stat(final, &st) == 0) {
            rec.layer_size[i] = known_size(&ix, d, final);
            image_size += rec.layer_size[i];
            if (s->o.max_image > 0 && image_size > s->o.max_image) {
                rc = full_error(s, image_size, usage, norm, e);
                goto done;
            }
            continue;
        }
        if (!jr_image_blob_has(s, d)) {
            rc = jr_err_set(e, JR_E_NOT_FOUND, "layer %s is not in the store", d);
            goto done;
        }
        if (mkdir(tmp, 0755) || (fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
            rc = jr_err_set(e, JR_E_SYSTEM, "%s: %s", tmp, strerror(errno));
            goto done;
        }
        if (s->id_base >= 0 && fchown(fd, (uid_t)s->id_base, (gid_t)s->id_base)) {
            /* cosmetic */
        }
        rc = unpack_blob(s, d, cfg.diff_ids[i], JR_UNPACK_LAYER, fd,
                         remaining(s, image_size, usage), &w, e);
        close(fd);
        if (rc == JR_E_FULL)
            rc = full_error(s, image_size + w + 1, usage + w + 1, norm, e);
        if (rc == JR_OK && rename(tmp, final))
            rc = jr_err_set(e, JR_E_SYSTEM, "%s: %s", final, strerror(errno));
        if (rc) {
            jr_image_rmtree(tmp, NULL);
            goto done;
        }
        snprintf(made[nmade++], PATH_MAX, "%s", final);
        rec.layer_size[i] = w;
        image_size += w;
        usage += w;
    }
    snprintf(rec.name, sizeof rec.name, "%s", norm);
    snprintf(rec.manifest, sizeof rec.manifest, "%s", chosen);
    snprintf(rec.config, sizeof rec.config, "%s", m.config.digest);
    snprintf(rec.source, sizeof rec.source, "%s", source ? source : "");
    rec.size = image_size;
    rec.blob_size = file_size(s, chosen) + file_size(s, m.config.digest);
    for (int i = 0; i < m.nitems; i++)
        rec.blob_size += file_size(s, m.items[i].digest);
    clock_gettime(CLOCK_REALTIME, &now);
    rec.created_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    if (jr_image_store_strategy(s, NULL, 0) == JR_IMAGE_ROOT_COPY) {
        if (s->o.max_total > 0 && usage + image_size > s->o.max_total) {
            rc = full_error(s, image_size, usage + image_size, norm, e);
            goto done;
        }
        if ((rc = jr_image_make_root(s, &rec, e)))
            goto done;
    }
    {
        char use[PATH_MAX];
        int fd;
        if (jr_image_path(s, use, sizeof use, "use", chosen + 7) ||
            (fd = open(use, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644)) < 0) {
            rc = jr_err_set(e, JR_E_SYSTEM, "the image's use lock: %s", strerror(errno));
            goto done;
        }
        close(fd);
    }
    if ((rc = jr_image_index_put(&ix, &rec, e)) || (rc = jr_image_index_write(s, &ix, e)))
        goto done;
    if (out) {
        struct jr_image_rec *r = jr_image_index_find(&ix, norm);
        memset(out, 0, sizeof *out);
        snprintf(out->name, sizeof out->name, "%s", norm);
        snprintf(out->manifest, sizeof out->manifest, "%s", chosen);
        snprintf(out->config, sizeof out->config, "%s", m.config.digest);
        snprintf(out->source, sizeof out->source, "%s", source ? source : "");
        out->nlayers = m.nitems;
        out->size = r ? r->size : image_size;
        out->blob_size = r ? r->blob_size : 0;
        out->created_ms = r ? r->created_ms : 0;
    }
    nmade = 0; /* they are the image's now */
done:
    for (int i = 0; i < nmade; i++)
        jr_image_rmtree(made[i], NULL);
    free(made);
    jr_image_rec_free(&rec);
    jr_image_index_free(&ix);
    jr_image_config_free(&cfg);
    jr_image_manifest_free(&m);
    free(text);
    free(ctext);
    return rc;
}

int jr_image_install(struct jr_image_store *s, const char *name, const char *manifest,
                     const char *source, struct jr_image_info *out, struct jr_err *e)
{
    int fd = jr_image_lock(s, e), rc;

    if (fd < 0)
        return e ? e->code : JR_E_SYSTEM;
    rc = jr_image_install_locked(s, name, manifest, source, out, e);
    jr_image_unlock(fd);
    return rc;
}
