/* The image documents as JSON: OCI and Docker (schema 2) manifests,
 * indexes and manifest lists, image configs, and `docker save`'s
 * manifest.json; and the pick of an index's entry for this machine. Each
 * decoder checks shapes and digests and names the field at fault. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "image/internal.h"

#define MAX_ITEMS 1024
#define MAX_LIST 4096

static int bad(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int bad(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return -1;
}

static int count(const struct jr_jv *arr)
{
    int n = 0;

    for (const struct jr_jv *v = arr ? arr->child : NULL; v; v = v->next)
        n++;
    return n;
}

static const char *str_of(const struct jr_jv *obj, const char *key, int *badtype)
{
    const struct jr_jv *v = jr_jv_get(obj, key);

    if (v && v->type != JR_JV_STR && v->type != JR_JV_NULL)
        *badtype = 1;
    return v && v->type == JR_JV_STR ? v->str : NULL;
}

/* A descriptor object: mediaType, digest, size (+ platform, annotations). */
static int desc(const struct jr_jv *o, struct jr_image_desc *d, const char *where,
                char *why, size_t len)
{
    const struct jr_jv *size, *plat, *ann;
    const char *digest;
    int bt = 0;

    memset(d, 0, sizeof *d);
    if (!o || o->type != JR_JV_OBJ)
        return bad(why, len, "%s must be an object", where);
    d->media_type = str_of(o, "mediaType", &bt);
    digest = jr_jv_str(o, "digest");
    if (bt)
        return bad(why, len, "%s.mediaType must be a string", where);
    if (!digest)
        return bad(why, len, "%s.digest is missing", where);
    if (!jr_image_digest_valid(digest))
        return bad(why, len, "%s.digest %.80s is not sha256:<64 hex digits> (other algorithms"
                   " are not supported)", where, digest);
    snprintf(d->digest, sizeof d->digest, "%s", digest);
    size = jr_jv_get(o, "size");
    if (!size || size->type != JR_JV_NUM || size->num < 0 || size->num > 1e15 ||
        size->num != (double)(int64_t)size->num)
        return bad(why, len, "%s.size must be a whole number of bytes", where);
    d->size = (int64_t)size->num;
    if ((plat = jr_jv_get(o, "platform")) != NULL) {
        if (plat->type != JR_JV_OBJ)
            return bad(why, len, "%s.platform must be an object", where);
        d->os = str_of(plat, "os", &bt);
        d->arch = str_of(plat, "architecture", &bt);
        d->variant = str_of(plat, "variant", &bt);
        if (bt)
            return bad(why, len, "%s.platform's os, architecture and variant must be"
                       " strings", where);
    }
    if ((ann = jr_jv_get(o, "annotations")) != NULL) {
        if (ann->type != JR_JV_OBJ)
            return bad(why, len, "%s.annotations must be an object", where);
        d->ref_name = jr_jv_str(ann, "org.opencontainers.image.ref.name");
    }
    return 0;
}

static int known_layer_type(const char *mt)
{
    static const char *const ok[] = {
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "application/vnd.docker.image.rootfs.diff.tar",
        NULL,
    };
    if (!mt)
        return 1; /* told by its magic bytes when unpacked */
    for (int i = 0; ok[i]; i++)
        if (strcmp(mt, ok[i]) == 0)
            return 1;
    return 0;
}

int jr_image_manifest_parse(const char *text, size_t len, struct jr_image_manifest *m,
                            char *why, size_t whylen)
{
    const struct jr_jv *items, *sv;
    const char *list_key;
    char where[48];
    int bt = 0, n, i = 0;

    memset(m, 0, sizeof *m);
    if (!(m->root = jr_jv_parse(text, len)) || m->root->type != JR_JV_OBJ)
        return bad(why, whylen, "the manifest is not a JSON object");
    sv = jr_jv_get(m->root, "schemaVersion");
    if (sv && (sv->type != JR_JV_NUM || sv->num != 2))
        return bad(why, whylen, "schemaVersion %g is not supported (only 2)",
                   sv->type == JR_JV_NUM ? sv->num : -1);
    m->media_type = str_of(m->root, "mediaType", &bt);
    if (bt)
        return bad(why, whylen, "mediaType must be a string");
    if (m->media_type)
        m->is_index = !strcmp(m->media_type, JR_MT_OCI_INDEX) ||
                      !strcmp(m->media_type, JR_MT_DOCKER_LIST);
    else
        m->is_index = jr_jv_get(m->root, "manifests") != NULL;
    if (m->media_type && !m->is_index && strcmp(m->media_type, JR_MT_OCI_MANIFEST) &&
        strcmp(m->media_type, JR_MT_DOCKER_MANIFEST))
        return bad(why, whylen, "mediaType %.100s is not an image manifest or index",
                   m->media_type);
    list_key = m->is_index ? "manifests" : "layers";
    items = jr_jv_get(m->root, list_key);
    if (!items || items->type != JR_JV_ARR)
        return bad(why, whylen, "%s must be a list", list_key);
    n = count(items);
    if (n > (m->is_index ? MAX_ITEMS : JR_IMAGE_MAX_LAYERS))
        return bad(why, whylen, "%s has %d entries, more than the %d allowed", list_key, n,
                   m->is_index ? MAX_ITEMS : JR_IMAGE_MAX_LAYERS);
    if (!m->is_index) {
        if (desc(jr_jv_get(m->root, "config"), &m->config, "config", why, whylen))
            return -1;
        if (n == 0)
            return bad(why, whylen, "layers is empty: an image needs at least one layer");
    }
    if (n && !(m->items = calloc((size_t)n, sizeof *m->items)))
        return bad(why, whylen, "out of memory");
    for (const struct jr_jv *v = items->child; v; v = v->next, i++) {
        snprintf(where, sizeof where, "%s[%d]", list_key, i);
        if (desc(v, &m->items[i], where, why, whylen))
            return -1;
        if (!m->is_index && !known_layer_type(m->items[i].media_type))
            return bad(why, whylen, "%s.mediaType %.100s is not a layer type this store"
                       " unpacks (tar, tar+gzip)", where, m->items[i].media_type);
    }
    m->nitems = n;
    return 0;
}

void jr_image_manifest_free(struct jr_image_manifest *m)
{
    free(m->items);
    jr_jv_free(m->root);
    memset(m, 0, sizeof *m);
}

/* A list of strings into a NULL-terminated array of pointers into the
 * tree; a missing or null list leaves *out NULL. */
static int strings(const struct jr_jv *v, char ***out, const char *where, char *why,
                   size_t len)
{
    int n, i = 0;

    *out = NULL;
    if (!v || v->type == JR_JV_NULL)
        return 0;
    if (v->type != JR_JV_ARR)
        return bad(why, len, "%s must be a list of strings", where);
    if ((n = count(v)) > MAX_LIST)
        return bad(why, len, "%s has more than %d entries", where, MAX_LIST);
    if (!(*out = calloc((size_t)n + 1, sizeof **out)))
        return bad(why, len, "out of memory");
    for (const struct jr_jv *x = v->child; x; x = x->next) {
        if (x->type != JR_JV_STR || strlen(x->str) != x->len)
            return bad(why, len, "%s[%d] must be a string without NUL", where, i);
        (*out)[i++] = x->str;
    }
    return 0;
}

int jr_image_config_parse(const char *text, size_t len, struct jr_image_config *c,
                          char *why, size_t whylen)
{
    const struct jr_jv *cfg, *rootfs, *ids;
    int bt = 0, n, i = 0;

    memset(c, 0, sizeof *c);
    if (!(c->root = jr_jv_parse(text, len)) || c->root->type != JR_JV_OBJ)
        return bad(why, whylen, "the image config is not a JSON object");
    c->os = str_of(c->root, "os", &bt);
    c->arch = str_of(c->root, "architecture", &bt);
    c->variant = str_of(c->root, "variant", &bt);
    if (bt)
        return bad(why, whylen, "the config's os, architecture and variant must be strings");
    cfg = jr_jv_get(c->root, "config");
    if (cfg && cfg->type != JR_JV_OBJ && cfg->type != JR_JV_NULL)
        return bad(why, whylen, "config must be an object");
    if (cfg && cfg->type == JR_JV_OBJ) {
        if (strings(jr_jv_get(cfg, "Entrypoint"), &c->entrypoint, "config.Entrypoint", why,
                    whylen) ||
            strings(jr_jv_get(cfg, "Cmd"), &c->cmd, "config.Cmd", why, whylen) ||
            strings(jr_jv_get(cfg, "Env"), &c->env, "config.Env", why, whylen))
            return -1;
        for (int k = 0; c->env && c->env[k]; k++)
            if (!strchr(c->env[k], '=') || c->env[k][0] == '=')
                return bad(why, whylen, "config.Env[%d] is not NAME=value", k);
        c->workdir = str_of(cfg, "WorkingDir", &bt);
        c->user = str_of(cfg, "User", &bt);
        if (bt)
            return bad(why, whylen, "config.WorkingDir and config.User must be strings");
        if (c->workdir && c->workdir[0] && c->workdir[0] != '/')
            return bad(why, whylen, "config.WorkingDir %.100s is not an absolute path",
                       c->workdir);
    }
    rootfs = jr_jv_get(c->root, "rootfs");
    if (!rootfs || rootfs->type != JR_JV_OBJ)
        return bad(why, whylen, "rootfs must be an object");
    ids = jr_jv_get(rootfs, "diff_ids");
    if (!ids || ids->type != JR_JV_ARR)
        return bad(why, whylen, "rootfs.diff_ids must be a list");
    if ((n = count(ids)) > JR_IMAGE_MAX_LAYERS)
        return bad(why, whylen, "rootfs.diff_ids has more than %d entries",
                   JR_IMAGE_MAX_LAYERS);
    if (n && !(c->diff_ids = calloc((size_t)n, sizeof *c->diff_ids)))
        return bad(why, whylen, "out of memory");
    for (const struct jr_jv *x = ids->child; x; x = x->next, i++) {
        if (x->type != JR_JV_STR || !jr_image_digest_valid(x->str))
            return bad(why, whylen, "rootfs.diff_ids[%d] is not a sha256 digest", i);
        snprintf(c->diff_ids[i], sizeof c->diff_ids[i], "%s", x->str);
    }
    c->ndiff_ids = n;
    return 0;
}

void jr_image_config_free(struct jr_image_config *c)
{
    free(c->entrypoint);
    free(c->cmd);
    free(c->env);
    free(c->diff_ids);
    jr_jv_free(c->root);
    memset(c, 0, sizeof *c);
}

/* Strings of a list into a const char * array (count in *n). */
static int paths(const struct jr_jv *v, const char ***out, int *n, const char *where,
                 char *why, size_t len)
{
    char **tmp;

    *out = NULL;
    *n = 0;
    if (strings(v, &tmp, where, why, len))
        return free(tmp), -1;
    *out = (const char **)tmp;
    while (tmp && tmp[*n])
        (*n)++;
    return 0;
}

int jr_image_save_parse(const char *text, size_t len, struct jr_image_save *s,
                        char *why, size_t whylen)
{
    int n, i = 0;
    char where[64];

    memset(s, 0, sizeof *s);
    if (!(s->root = jr_jv_parse(text, len)) || s->root->type != JR_JV_ARR)
        return bad(why, whylen, "manifest.json is not a JSON list");
    if ((n = count(s->root)) == 0 || n > MAX_ITEMS)
        return bad(why, whylen, "manifest.json lists %d images", n);
    if (!(s->images = calloc((size_t)n, sizeof *s->images)))
        return bad(why, whylen, "out of memory");
    s->n = n;
    for (const struct jr_jv *v = s->root->child; v; v = v->next, i++) {
        struct jr_image_saved *im = &s->images[i];
        if (v->type != JR_JV_OBJ)
            return bad(why, whylen, "manifest.json[%d] must be an object", i);
        if (!(im->config = jr_jv_str(v, "Config")))
            return bad(why, whylen, "manifest.json[%d].Config is missing", i);
        snprintf(where, sizeof where, "manifest.json[%d].RepoTags", i);
        if (paths(jr_jv_get(v, "RepoTags"), &im->tags, &im->ntags, where, why, whylen))
            return -1;
        snprintf(where, sizeof where, "manifest.json[%d].Layers", i);
        if (paths(jr_jv_get(v, "Layers"), &im->layers, &im->nlayers, where, why, whylen))
            return -1;
        if (im->nlayers == 0 || im->nlayers > JR_IMAGE_MAX_LAYERS)
            return bad(why, whylen, "manifest.json[%d] has %d layers", i, im->nlayers);
    }
    return 0;
}

void jr_image_save_free(struct jr_image_save *s)
{
    for (int i = 0; i < s->n; i++) {
        free((void *)s->images[i].tags);
        free((void *)s->images[i].layers);
    }
    free(s->images);
    jr_jv_free(s->root);
    memset(s, 0, sizeof *s);
}

void jr_image_platform(const char **os, const char **arch, const char **variant)
{
    struct utsname u;

    *os = "linux";
    *variant = NULL;
    *arch = "amd64";
    if (uname(&u) != 0)
        return;
    if (!strcmp(u.machine, "aarch64")) {
        *arch = "arm64";
        *variant = "v8";
    } else if (!strncmp(u.machine, "armv7", 5)) {
        *arch = "arm";
        *variant = "v7";
    } else if (!strcmp(u.machine, "i686") || !strcmp(u.machine, "i386")) {
        *arch = "386";
    } else if (!strcmp(u.machine, "ppc64le")) {
        *arch = "ppc64le";
    } else if (!strcmp(u.machine, "s390x")) {
        *arch = "s390x";
    } else if (!strcmp(u.machine, "riscv64")) {
        *arch = "riscv64";
    }
}

int jr_image_pick_platform(const struct jr_image_manifest *idx, char *why, size_t whylen)
{
    const char *os, *arch, *variant;
    int best = -1, best_score = 0;

    jr_image_platform(&os, &arch, &variant);
    for (int i = 0; i < idx->nitems; i++) {
        const struct jr_image_desc *d = &idx->items[i];
        int score;
        if (d->media_type && strcmp(d->media_type, JR_MT_OCI_MANIFEST) &&
            strcmp(d->media_type, JR_MT_DOCKER_MANIFEST))
            continue; /* attestations, nested indexes */
        if (!d->os && !d->arch) {
            score = 1; /* no platform said: usable when nothing matches */
        } else {
            if (!d->os || strcmp(d->os, os) || !d->arch || strcmp(d->arch, arch))
                continue;
            score = 2;
            if (variant && d->variant && !strcmp(variant, d->variant))
                score = 3;
            else if (d->variant && variant && strcmp(variant, d->variant))
                continue;
        }
        if (score > best_score) {
            best = i;
            best_score = score;
        }
    }
    if (best < 0)
        bad(why, whylen, "the index has no manifest for %s/%s%s%s", os, arch,
            variant ? "/" : "", variant ? variant : "");
    return best;
}
