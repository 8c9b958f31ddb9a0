/* What the image store's files share: the byte source (a file or memory,
 * gunzipped when it is gzip, hashed as read), the tar reader, the layer
 * unpacker, the manifest/index/config decoders and the store's layout.
 * Not for use outside runtime/image/ (the fuzz targets excepted). */
#ifndef JR_IMAGE_INTERNAL_H
#define JR_IMAGE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "exec/jv.h"
#include "image/image.h"

/* ---- digests (blob.c) ---- */
#define JR_DIGEST_LEN 71     /* "sha256:" + 64 hex */

/* 1 if d is "sha256:" and 64 lower-case hex digits. */
int jr_image_digest_valid(const char *d);

struct jr_sha256;            /* an OpenSSL digest in progress */
struct jr_sha256 *jr_sha256_new(void);
void jr_sha256_update(struct jr_sha256 *h, const void *p, size_t n);
/* Writes "sha256:<hex>" (JR_DIGEST_LEN + 1 bytes) and frees h. */
void jr_sha256_final(struct jr_sha256 *h, char out[JR_DIGEST_LEN + 1]);
void jr_sha256_free(struct jr_sha256 *h);

/* ---- a byte source (source.c) ---- */
struct jr_src {
    int fd;                  /* -1: memory */
    const unsigned char *mem;
    size_t memlen, mempos;
    int gzip;                /* 1: inflating */
    void *z;                 /* z_stream */
    unsigned char *in;       /* compressed bytes read ahead */
    size_t inlen, inpos;
    int zend;                /* the last gzip member ended */
    struct jr_sha256 *raw;   /* hash of the bytes as stored (NULL = none) */
    struct jr_sha256 *plain; /* hash of the bytes as read (after gunzip) */
    int64_t plain_total;
    char err[160];
};

/* Opens a source on fd (not taken) or on memory; detect = 1 looks at the
 * first bytes: gzip is inflated, zstd refused. hash_raw/hash_plain turn
 * on the two hashes. 0 or -1 with src->err. */
int jr_src_open_fd(struct jr_src *src, int fd, int detect, int hash_raw, int hash_plain);
int jr_src_open_mem(struct jr_src *src, const void *p, size_t n, int detect);
/* Reads up to n bytes: how many (0 at the end) or -1 with src->err. */
ssize_t jr_src_read(struct jr_src *src, void *buf, size_t n);
/* Reads to the end (so the hashes cover everything). 0 or -1. */
int jr_src_drain(struct jr_src *src);
void jr_src_close(struct jr_src *src);

/* ---- the tar reader (tar.c) ---- */
enum { JR_TAR_REG, JR_TAR_DIR, JR_TAR_SYMLINK, JR_TAR_HARDLINK, JR_TAR_CHAR,
       JR_TAR_BLOCK, JR_TAR_FIFO };

#define JR_TAR_PATH_MAX 4096

struct jr_tar_entry {
    int type;                /* JR_TAR_* */
    char path[JR_TAR_PATH_MAX];
    char link[JR_TAR_PATH_MAX]; /* symlink or hard link target */
    int64_t size;            /* regular files: bytes of data */
    int64_t uid, gid, mtime;
    unsigned mode;           /* permission bits as stored (07777) */
    unsigned devmajor, devminor;
};

typedef ssize_t (*jr_tar_read_fn)(void *arg, void *buf, size_t n);

struct jr_tar {
    jr_tar_read_fn read;
    void *arg;
    int64_t left;            /* data bytes of the current entry not read */
    int64_t pad;             /* then this much padding */
    int ended;
    char err[200];
};

void jr_tar_init(struct jr_tar *t, jr_tar_read_fn read, void *arg);
/* The next entry: 1, 0 at the end of the archive, -1 with t->err
 * (malformed: bad checksum, a size that is not a number, an unknown
 * type, a name longer than JR_TAR_PATH_MAX...). Data left unread of the
 * previous entry is skipped. */
int jr_tar_next(struct jr_tar *t, struct jr_tar_entry *en);
/* Reads the current entry's data: bytes read, 0 at its end, -1. */
ssize_t jr_tar_data(struct jr_tar *t, void *buf, size_t n);

/* ---- unpacking a layer (unpack.c) ---- */
enum {
    JR_UNPACK_LAYER,         /* a layer folder: whiteouts as overlayfs
                              * whiteouts (0/0 char devices) and opaque
                              * folders (user.overlay.opaque) */
    JR_UNPACK_MERGE          /* onto a merged root: whiteouts delete */
};

struct jr_unpack {
    int mode;                /* JR_UNPACK_* */
    int chown;               /* 1: owners become id_base + the tar's ids */
    int64_t id_base;
    int64_t budget;          /* bytes of file data allowed, < 0 = none */
    int64_t written;         /* bytes of file data written */
    int64_t entries;
    char err[300];
    int full;                /* the budget ran out */
};

/* Unpacks the tar read from t into the folder dirfd (which must be
 * empty for a layer). Refuses (-1 with u->err) a path with "..", a write
 * through a symbolic link, a hard link to outside the layer or to
 * something not a regular file, a device node; setuid/setgid bits and
 * extended attributes are dropped, owners mapped. */
int jr_unpack_tar(struct jr_unpack *u, struct jr_tar *t, int dirfd);

/* rm -rf of path (writable first: a layer may have read-only folders).
 * Adds the bytes freed to *bytes when not NULL. 0 or -1 with errno. */
int jr_image_rmtree(const char *path, int64_t *bytes);
/* Bytes of files under path (apparent sizes), -1 on error. */
int64_t jr_image_du(const char *path);

/* ---- JSON documents (docs.c) ---- */
#define JR_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define JR_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define JR_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define JR_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define JR_MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define JR_MT_OCI_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"

struct jr_image_desc {
    const char *media_type;  /* may be NULL */
    char digest[JR_DIGEST_LEN + 1];
    int64_t size;
    const char *os, *arch, *variant; /* index entries' platform */
    const char *ref_name;    /* org.opencontainers.image.ref.name */
};

struct jr_image_manifest {
    int is_index;            /* an index (manifest list), else a manifest */
    const char *media_type;
    struct jr_image_desc config;
    struct jr_image_desc *items; /* layers, or the index's manifests */
    int nitems;
    struct jr_jv *root;
};

/* Parses a manifest or an index (told apart by mediaType, or by having
 * "manifests"). 0 or -1 with why. Free with jr_image_manifest_free. */
int jr_image_manifest_parse(const char *text, size_t len, struct jr_image_manifest *m,
                            char *why, size_t whylen);
void jr_image_manifest_free(struct jr_image_manifest *m);

struct jr_image_config {
    const char *os, *arch, *variant;
    char **entrypoint, **cmd, **env; /* NULL-terminated, NULL when unset */
    const char *workdir, *user;
    char (*diff_ids)[JR_DIGEST_LEN + 1];
    int ndiff_ids;
    struct jr_jv *root;
};

int jr_image_config_parse(const char *text, size_t len, struct jr_image_config *c,
                          char *why, size_t whylen);
void jr_image_config_free(struct jr_image_config *c);

/* One image of a `docker save` manifest.json. */
struct jr_image_saved {
    const char *config;      /* path in the archive */
    const char **tags;       /* RepoTags */
    int ntags;
    const char **layers;     /* paths in the archive, bottom first */
    int nlayers;
};

struct jr_image_save {
    struct jr_image_saved *images;
    int n;
    struct jr_jv *root;
};

int jr_image_save_parse(const char *text, size_t len, struct jr_image_save *s,
                        char *why, size_t whylen);
void jr_image_save_free(struct jr_image_save *s);

/* The machine's platform as OCI names it ("linux", "amd64", variant or NULL). */
void jr_image_platform(const char **os, const char **arch, const char **variant);
/* Picks the index entry for this machine's platform: its position, or -1
 * with why. */
int jr_image_pick_platform(const struct jr_image_manifest *idx, char *why, size_t whylen);

/* ---- the store's layout (store.c) ---- */
struct jr_image_store {
    char dir[PATH_MAX];      /* DATA/images */
    struct jr_image_opts o;
    int strategy;            /* 0 = not probed yet */
    char strategy_why[200];
    int64_t id_base;         /* root: 100000 (the sandbox's map), else -1 */
};

/* dir/sub/name into out; -1 when it does not fit. */
int jr_image_path(const struct jr_image_store *s, char *out, size_t size, const char *sub,
                  const char *name);
/* The folder of a blob's file ("blobs/sha256/<hex>"). */
int jr_image_blob_path(const struct jr_image_store *s, const char *digest, char *out,
                       size_t size);
/* Takes the store's lock (DATA/images/lock): returns its fd, or -1 with e. */
int jr_image_lock(struct jr_image_store *s, struct jr_err *e);
void jr_image_unlock(int fd);
/* Adds the blob at path (a temp file whose digest was computed as
 * digest) to the store by rename. */
int jr_image_blob_adopt(struct jr_image_store *s, const char *tmp, const char *digest,
                        struct jr_err *e);
/* A fresh temp name under DATA/images/tmp (prefix-<random>). */
int jr_image_tmp_name(const struct jr_image_store *s, const char *prefix, char *out,
                      size_t size);

/* ---- the names (index.c) ---- */
struct jr_image_rec {
    char name[256];
    char manifest[JR_DIGEST_LEN + 1], config[JR_DIGEST_LEN + 1];
    int nlayers;
    char (*layers)[JR_DIGEST_LEN + 1]; /* layer blob digests, bottom first */
    int64_t *layer_size;     /* unpacked bytes of each */
    int64_t size, blob_size, created_ms;
    char source[320];
};

struct jr_image_index {
    struct jr_image_rec *recs;
    int n;
};

/* Reads DATA/images/index.json (missing = empty). */
int jr_image_index_read(struct jr_image_store *s, struct jr_image_index *ix, struct jr_err *e);
/* Writes it whole (temp file, fsync, rename). Call with the lock held. */
int jr_image_index_write(struct jr_image_store *s, const struct jr_image_index *ix,
                         struct jr_err *e);
void jr_image_index_free(struct jr_image_index *ix);
/* The record for name (normalised), or NULL. */
struct jr_image_rec *jr_image_index_find(struct jr_image_index *ix, const char *name);
/* Replaces or adds r (copied; r's arrays are taken). */
int jr_image_index_put(struct jr_image_index *ix, struct jr_image_rec *r, struct jr_err *e);
void jr_image_index_del(struct jr_image_index *ix, const char *name);
void jr_image_rec_free(struct jr_image_rec *r);

/* ---- the overlay probe (probe.c) ---- */
/* 1 if a task's user namespace can stack folders of dir's file system
 * with overlayfs (whiteouts and opaque folders honoured), else 0 with
 * why. */
int jr_image_probe_overlay(const char *dir, int64_t id_base, char *why, size_t whylen);

/* ---- use locks (store.c) ---- */
/* 1 if a running task holds the image's use lock (manifest digest). */
int jr_image_in_use(struct jr_image_store *s, const char *manifest);

/* ---- installing (install.c) ---- */
/* jr_image_install with the store's lock already held. */
int jr_image_install_locked(struct jr_image_store *s, const char *name, const char *manifest,
                            const char *source, struct jr_image_info *out, struct jr_err *e);
/* ---- merged roots (install.c) ---- */
/* Makes DATA/images/roots/<hex> for the record when missing. */
int jr_image_make_root(struct jr_image_store *s, const struct jr_image_rec *r,
                       struct jr_err *e);

#endif
