/* The OCI image store under DATA/images: content-addressed blobs, each
 * layer unpacked once into its own read-only folder, images as names
 * pointing at manifests, and what a task's root is made of. Plain C, no
 * Lua and no loop: the CLI calls it directly, the daemon from its thread
 * pool; the sandbox executor resolves names through it. */
#ifndef JR_IMAGE_H
#define JR_IMAGE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "store/err.h"

struct jr_image_store;

/* How a task's root is made from the layers. */
enum {
    JR_IMAGE_ROOT_AUTO,      /* overlay when the probe says this machine can */
    JR_IMAGE_ROOT_OVERLAY,   /* layers stacked with overlayfs in the task's userns */
    JR_IMAGE_ROOT_COPY       /* one merged copy per image, made once */
};

struct jr_image_opts {
    int64_t max_image;       /* bytes of one image's unpacked layers, 0 = none */
    int64_t max_total;       /* bytes of the whole store, 0 = none */
    int root;                /* JR_IMAGE_ROOT_* */
};

/* Opens (making it if missing) DATA/images. o may be NULL (defaults).
 * Returns JR_OK with *out, or an error in e. */
int jr_image_store_open(const char *data_dir, const struct jr_image_opts *o,
                        struct jr_image_store **out, struct jr_err *e);
void jr_image_store_close(struct jr_image_store *s);
/* JR_IMAGE_ROOT_OVERLAY or _COPY: what this store gives tasks (auto is
 * probed at the first call). why: a sentence saying why (may be NULL). */
int jr_image_store_strategy(struct jr_image_store *s, char *why, size_t whylen);

/* A valid image name ("bb:1", "registry:5000/team/app:v2",
 * "app@sha256:..."): lower-case path components of [a-z0-9._-], an
 * optional registry host[:port] first, a tag of [A-Za-z0-9_.-] (at most
 * 128) or a digest; at most 255 bytes in all; never "host". 1 or 0. */
int jr_image_name_valid(const char *name);
/* The registry host a reference names into out: its first component when
 * that has a '.' or ':' or is "localhost", else "docker.io". -1 when out
 * is too small. */
int jr_image_ref_host(const char *name, char *out, size_t size);
/* name with ":latest" added when it has neither tag nor digest, into
 * out. -1 when it does not fit. */
int jr_image_name_normal(const char *name, char *out, size_t size);

/* ---- what the store holds ---- */
struct jr_image_info {
    char name[256];
    char manifest[80];       /* sha256:... */
    char config[80];
    int nlayers;
    int64_t size;            /* unpacked bytes of its layers */
    int64_t blob_size;       /* bytes of its blobs (manifest, config, layers) */
    int64_t created_ms;      /* when it was added */
    char source[320];        /* "import FILE" / "pull REF" */
    int in_use;              /* running tasks hold it */
};

/* Every image, sorted by name (*out malloc'ed, free it). JR_OK or e. */
int jr_image_list(struct jr_image_store *s, struct jr_image_info **out, size_t *n,
                  struct jr_err *e);
/* One image by name (tag :latest implied). JR_E_NOT_FOUND when absent. */
int jr_image_get(struct jr_image_store *s, const char *name, struct jr_image_info *out,
                 struct jr_err *e);
/* Bytes the store uses now (blobs, layers, merged roots). */
int64_t jr_image_store_usage(struct jr_image_store *s);

/* Removes the name; refused (JR_E_CONFLICT) while a task uses its image.
 * What no other name keeps is collected at once. */
int jr_image_remove(struct jr_image_store *s, const char *name, struct jr_err *e);

struct jr_image_gc_stats {
    int blobs, layers, roots, temps; /* removed */
    int64_t bytes;                   /* freed */
};
/* Removes blobs, layers and merged roots no image names and no running
 * task uses, and what interrupted imports or pulls left. */
int jr_image_gc(struct jr_image_store *s, struct jr_image_gc_stats *st, struct jr_err *e);

/* ---- import ---- */
/* Imports an OCI image layout archive (as `skopeo copy ... oci-archive:`
 * writes it, optionally gzip'ed) or a `docker save` archive under name
 * (NULL: the archive's own single tag). Every blob is verified, every
 * layer unpacked and checked against the config's diff_ids; the name
 * appears only once all of it is in place (never half-imported).
 * Refuses with JR_E_INVALID a malformed archive or a layer that escapes,
 * holds a device node, ...; JR_E_FULL when a size limit would be passed. */
int jr_image_import(struct jr_image_store *s, const char *archive, const char *name,
                    struct jr_image_info *out, struct jr_err *e);

/* ---- pull (the HTTP side is the caller's) ---- */
/* 1 if the blob is in the store (verified when it was written). */
int jr_image_blob_has(struct jr_image_store *s, const char *digest);
/* The blob's bytes (manifests, configs: at most max bytes), malloc'ed. */
int jr_image_blob_read(struct jr_image_store *s, const char *digest, size_t max,
                       char **out, size_t *len, struct jr_err *e);

struct jr_image_blob_w;
/* Starts (or resumes, *offset > 0: the bytes kept of an earlier try,
 * already hashed) writing the blob digest into the store's temp folder. */
int jr_image_blob_begin(struct jr_image_store *s, const char *digest, int64_t max_size,
                        struct jr_image_blob_w **out, int64_t *offset, struct jr_err *e);
/* Appends n bytes. JR_E_FULL past max_size. */
int jr_image_blob_write(struct jr_image_blob_w *w, const void *buf, size_t n,
                        struct jr_err *e);
/* Verifies the digest and moves the blob into the store (JR_E_INVALID on
 * a mismatch: the partial file is discarded). Frees w either way. */
int jr_image_blob_commit(struct jr_image_blob_w *w, struct jr_err *e);
/* Stops: keep = 1 leaves the partial file for a resume, 0 removes it.
 * Frees w. */
void jr_image_blob_abort(struct jr_image_blob_w *w, int keep);

/* Held (shared) by a pull while it downloads, so that gc leaves its
 * partial files and fresh blobs alone: a fd to close when done, or -1. */
int jr_image_pull_hold(struct jr_image_store *s, struct jr_err *e);

/* Installs an image whose manifest, config and layer blobs are in the
 * store: unpacks the layers and names it. source says where it came from. */
int jr_image_install(struct jr_image_store *s, const char *name, const char *manifest,
                     const char *source, struct jr_image_info *out, struct jr_err *e);

/* ---- a task's root ---- */
#define JR_IMAGE_MAX_LAYERS 127

struct jr_image_use {
    char manifest[80];
    char lock[PATH_MAX];     /* the use lock a running task holds (shared) */
    int nlayers;             /* overlay: the layer folders, bottom first */
    char **layers;
    char *rootfs;            /* copy: the merged root (else NULL) */
    /* the image config's defaults (NULL-terminated lists, NULL = unset) */
    char **entrypoint, **cmd, **env;
    char *workdir, *user;
    void *owned;
};

/* Resolves name for a task. JR_E_NOT_FOUND when the store has no such
 * image (the caller may then try sandbox.images). */
int jr_image_resolve(struct jr_image_store *s, const char *name, struct jr_image_use *u,
                     struct jr_err *e);
void jr_image_use_free(struct jr_image_use *u);

/* Looks user ("name", "uid", "name:group", "uid:gid") up in the image's
 * etc/passwd and etc/group (the top-most layer that has them). 0 with
 * *uid, *gid, or -1 with a message in why. */
int jr_image_user(const struct jr_image_use *u, const char *user, int *uid, int *gid,
                  char *why, size_t whylen);

#endif
