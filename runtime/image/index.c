/* The store's names: DATA/images/index.json maps each image name to its
 * manifest, config and ordered layers. Read without a lock (it is only
 * ever replaced whole, by rename), written under the store's lock. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "image/internal.h"

#define INDEX_MAX (64 << 20)

void jr_image_rec_free(struct jr_image_rec *r)
{
    free(r->layers);
    free(r->layer_size);
    r->layers = NULL;
    r->layer_size = NULL;
    r->nlayers = 0;
}

void jr_image_index_free(struct jr_image_index *ix)
{
    for (int i = 0; i < ix->n; i++)
        jr_image_rec_free(&ix->recs[i]);
    free(ix->recs);
    ix->recs = NULL;
    ix->n = 0;
}

static int64_t num(const struct jr_jv *o, const char *key)
{
    const struct jr_jv *v = jr_jv_get(o, key);

    return v && v->type == JR_JV_NUM ? (int64_t)v->num : 0;
}

static int read_rec(const struct jr_jv *o, struct jr_image_rec *r)
{
    const struct jr_jv *layers = jr_jv_get(o, "layers");
    const char *m = jr_jv_str(o, "manifest"), *c = jr_jv_str(o, "config");
    const char *src = jr_jv_str(o, "source");
    int n = 0;

    memset(r, 0, sizeof *r);
    if (!o->key || !jr_image_name_valid(o->key) || !jr_image_digest_valid(m) ||
        !jr_image_digest_valid(c) || !layers || layers->type != JR_JV_ARR)
        return -1;
    snprintf(r->name, sizeof r->name, "%s", o->key);
    snprintf(r->manifest, sizeof r->manifest, "%s", m);
    snprintf(r->config, sizeof r->config, "%s", c);
    snprintf(r->source, sizeof r->source, "%s", src ? src : "");
    r->size = num(o, "size");
    r->blob_size = num(o, "blob_size");
    r->created_ms = num(o, "created");
    for (const struct jr_jv *l = layers->child; l; l = l->next)
        n++;
    if (n == 0 || n > JR_IMAGE_MAX_LAYERS)
        return -1;
    r->layers = calloc((size_t)n, sizeof *r->layers);
    r->layer_size = calloc((size_t)n, sizeof *r->layer_size);
    if (!r->layers || !r->layer_size)
        return jr_image_rec_free(r), -1;
    n = 0;
    for (const struct jr_jv *l = layers->child; l; l = l->next, n++) {
        const char *d = jr_jv_str(l, "digest");
        if (!jr_image_digest_valid(d))
            return jr_image_rec_free(r), -1;
        snprintf(r->layers[n], sizeof r->layers[n], "%s", d);
        r->layer_size[n] = num(l, "size");
    }
    r->nlayers = n;
    return 0;
}

int jr_image_index_read(struct jr_image_store *s, struct jr_image_index *ix, struct jr_err *e)
{
    char path[PATH_MAX], *text = NULL;
    struct jr_jv *root = NULL;
    const struct jr_jv *images;
    size_t len = 0, cap = 0;
    int fd, n = 0, rc = JR_OK;

    memset(ix, 0, sizeof *ix);
    if (jr_image_path(s, path, sizeof path, NULL, "index.json"))
        return jr_err_set(e, JR_E_INVALID, "the data directory's path is too long");
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return errno == ENOENT ? JR_OK
                               : jr_err_set(e, JR_E_SYSTEM, "%s: %s", path, strerror(errno));
    for (;;) {
        ssize_t r;
        if (len + 4096 > cap) {
            char *t;
            cap = cap ? cap * 2 : 16384;
            if (cap > INDEX_MAX || !(t = realloc(text, cap))) {
                rc = jr_err_set(e, JR_E_SYSTEM, "%s is too large", path);
                goto done;
            }
            text = t;
        }
        r = read(fd, text + len, cap - len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = jr_err_set(e, JR_E_SYSTEM, "%s: %s", path, strerror(errno));
            goto done;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    if (!(root = jr_jv_parse(text, len)) || !(images = jr_jv_get(root, "images")) ||
        images->type != JR_JV_OBJ) {
        rc = jr_err_set(e, JR_E_SYSTEM, "%s is damaged (not the store's index)", path);
        goto done;
    }
    for (const struct jr_jv *v = images->child; v; v = v->next)
        n++;
    if (n && !(ix->recs = calloc((size_t)n, sizeof *ix->recs))) {
        rc = jr_err_set(e, JR_E_SYSTEM, "out of memory");
        goto done;
    }
    for (const struct jr_jv *v = images->child; v; v = v->next) {
        if (v->type != JR_JV_OBJ || read_rec(v, &ix->recs[ix->n]))
            continue; /* a damaged entry is dropped, not fatal to the rest */
        ix->n++;
    }
done:
    close(fd);
    free(text);
    jr_jv_free(root);
    if (rc)
        jr_image_index_free(ix);
    return rc;
}

/* JSON string of s (names, digests and sources: printable text). */
static void put_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

int jr_image_index_write(struct jr_image_store *s, const struct jr_image_index *ix,
                         struct jr_err *e)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    FILE *f;
    int fd, ok;

    if (jr_image_path(s, path, sizeof path, NULL, "index.json") ||
        jr_image_tmp_name(s, "index", tmp, sizeof tmp))
        return jr_err_set(e, JR_E_INVALID, "the data directory's path is too long");
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0)
        return jr_err_set(e, JR_E_SYSTEM, "%s: %s", tmp, strerror(errno));
    if (!(f = fdopen(fd, "w"))) {
        close(fd);
        unlink(tmp);
        return jr_err_set(e, JR_E_SYSTEM, "out of memory");
    }
    fputs("{\"version\":1,\"images\":{", f);
    for (int i = 0; i < ix->n; i++) {
        const struct jr_image_rec *r = &ix->recs[i];
        fputs(i ? ",\n" : "\n", f);
        put_str(f, r->name);
        fprintf(f, ":{\"manifest\":\"%s\",\"config\":\"%s\",\"size\":%lld,\"blob_size\":%lld,"
                "\"created\":%lld,\"source\":", r->manifest, r->config, (long long)r->size,
                (long long)r->blob_size, (long long)r->created_ms);
        put_str(f, r->source);
        fputs(",\"layers\":[", f);
        for (int k = 0; k < r->nlayers; k++)
            fprintf(f, "%s{\"digest\":\"%s\",\"size\":%lld}", k ? "," : "", r->layers[k],
                    (long long)r->layer_size[k]);
        fputs("]}", f);
    }
    fputs("\n}}\n", f);
    ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path)) {
        int err = errno;
        unlink(tmp);
        return jr_err_set(e, err == ENOSPC ? JR_E_FULL : JR_E_SYSTEM, "writing %s: %s", path,
                          strerror(err));
    }
    return JR_OK;
}

struct jr_image_rec *jr_image_index_find(struct jr_image_index *ix, const char *name)
{
    char norm[300];

    if (jr_image_name_normal(name, norm, sizeof norm))
        return NULL;
    for (int i = 0; i < ix->n; i++)
        if (strcmp(ix->recs[i].name, norm) == 0)
            return &ix->recs[i];
    return NULL;
}

int jr_image_index_put(struct jr_image_index *ix, struct jr_image_rec *r, struct jr_err *e)
{
    struct jr_image_rec *old = jr_image_index_find(ix, r->name), *recs;

    if (old) {
        jr_image_rec_free(old);
        *old = *r;
    } else {
        if (!(recs = realloc(ix->recs, (size_t)(ix->n + 1) * sizeof *recs)))
            return jr_err_set(e, JR_E_SYSTEM, "out of memory");
        ix->recs = recs;
        ix->recs[ix->n++] = *r;
    }
    r->layers = NULL;
    r->layer_size = NULL;
    return JR_OK;
}

void jr_image_index_del(struct jr_image_index *ix, const char *name)
{
    struct jr_image_rec *r = jr_image_index_find(ix, name);

    if (!r)
        return;
    jr_image_rec_free(r);
    *r = ix->recs[--ix->n];
}
