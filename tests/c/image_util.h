/* Test helpers for the image store: a tar writer into memory (ustar, pax
 * for long names), gzip through zlib, sha256 digests, and an OCI layout or
 * docker save archive of given layers written to a file. */
#ifndef JR_TEST_IMAGE_UTIL_H
#define JR_TEST_IMAGE_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "image/internal.h"

struct tbuf {
    unsigned char *p;
    size_t n, cap;
};

static void tb_put(struct tbuf *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 4096;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

static void tb_pad(struct tbuf *b)
{
    static const unsigned char z[512];
    if (b->n % 512)
        tb_put(b, z, 512 - b->n % 512);
}

static void tar_header(struct tbuf *b, const char *name, char type, size_t size,
                       unsigned mode, const char *link)
{
    unsigned char h[512];
    unsigned sum = 0;

    memset(h, 0, sizeof h);
    snprintf((char *)h, 100, "%s", name);
    snprintf((char *)h + 100, 8, "%07o", mode);
    snprintf((char *)h + 108, 8, "%07o", 0);
    snprintf((char *)h + 116, 8, "%07o", 0);
    snprintf((char *)h + 124, 12, "%011zo", size);
    snprintf((char *)h + 136, 12, "%011o", 0);
    memset(h + 148, ' ', 8);
    h[156] = (unsigned char)type;
    if (link)
        snprintf((char *)h + 157, 100, "%s", link);
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    for (int i = 0; i < 512; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    tb_put(b, h, 512);
}

/* One entry; long names go in a pax header first. */
static void tar_add(struct tbuf *b, const char *name, char type, const void *data,
                    size_t size, unsigned mode, const char *link)
{
    if (strlen(name) >= 100) {
        char rec[5000], digits[16];
        int body = (int)strlen(name) + 7, n = body + 1;
        while (snprintf(digits, sizeof digits, "%d", n) + body != n)
            n = (int)strlen(digits) + body;
        snprintf(rec, sizeof rec, "%d path=%s\n", n, name);
        tar_header(b, "pax", 'x', (size_t)n, 0644, NULL);
        tb_put(b, rec, (size_t)n);
        tb_pad(b);
    }
    tar_header(b, name, type, size, mode, link);
    if (size) {
        tb_put(b, data, size);
        tb_pad(b);
    }
}

static void tar_end(struct tbuf *b)
{
    static const unsigned char z[1024];
    tb_put(b, z, 1024);
}

static struct tbuf gzip_of(const struct tbuf *in)
{
    struct tbuf out = {NULL, 0, 0};
    z_stream z;

    memset(&z, 0, sizeof z);
    deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
    out.cap = deflateBound(&z, in->n) + 64;
    out.p = malloc(out.cap);
    z.next_in = in->p;
    z.avail_in = (uInt)in->n;
    z.next_out = out.p;
    z.avail_out = (uInt)out.cap;
    deflate(&z, Z_FINISH);
    out.n = out.cap - z.avail_out;
    deflateEnd(&z);
    return out;
}

static void digest_of(const void *p, size_t n, char out[JR_DIGEST_LEN + 1])
{
    struct jr_sha256 *h = jr_sha256_new();
    jr_sha256_update(h, p, n);
    jr_sha256_final(h, out);
}

/* An OCI layout archive at path holding the layers (plain tars, gzip'ed
 * here), a config with env/workdir, named ref (org...ref.name). */
static void write_oci_archive(const char *path, struct tbuf *layers, int n, const char *ref,
                              int corrupt)
{
    struct tbuf arch = {NULL, 0, 0};
    char cfg[8192], man[8192], idx[2048], d[JR_DIGEST_LEN + 1], cd[JR_DIGEST_LEN + 1],
        md[JR_DIGEST_LEN + 1], diffs[4096] = "", lays[6144] = "", name[128];
    FILE *f;

    tar_add(&arch, "oci-layout", '0', "{\"imageLayoutVersion\":\"1.0.0\"}", 30, 0644, NULL);
    for (int i = 0; i < n; i++) {
        struct tbuf gz = gzip_of(&layers[i]);
        digest_of(layers[i].p, layers[i].n, d);
        snprintf(diffs + strlen(diffs), sizeof diffs - strlen(diffs), "%s\"%s\"", i ? "," : "", d);
        digest_of(gz.p, gz.n, d);
        snprintf(lays + strlen(lays), sizeof lays - strlen(lays),
                 "%s{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\","
                 "\"digest\":\"%s\",\"size\":%zu}", i ? "," : "", d, gz.n);
        snprintf(name, sizeof name, "blobs/sha256/%s", d + 7);
        if (corrupt && i == 0)
            gz.p[gz.n / 2] ^= 0x55;
        tar_add(&arch, name, '0', gz.p, gz.n, 0644, NULL);
        free(gz.p);
    }
    snprintf(cfg, sizeof cfg, "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{"
             "\"Env\":[\"PATH=/bin\",\"GREETING=hello\"],\"WorkingDir\":\"/data\","
             "\"Cmd\":[\"/bin/sh\"]},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[%s]}}", diffs);
    digest_of(cfg, strlen(cfg), cd);
    snprintf(name, sizeof name, "blobs/sha256/%s", cd + 7);
    tar_add(&arch, name, '0', cfg, strlen(cfg), 0644, NULL);
    snprintf(man, sizeof man, "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{"
             "\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu},\"layers\":[%s]}",
             JR_MT_OCI_MANIFEST, JR_MT_OCI_CONFIG, cd, strlen(cfg), lays);
    digest_of(man, strlen(man), md);
    snprintf(name, sizeof name, "blobs/sha256/%s", md + 7);
    tar_add(&arch, name, '0', man, strlen(man), 0644, NULL);
    snprintf(idx, sizeof idx, "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"%s\","
             "\"digest\":\"%s\",\"size\":%zu,\"annotations\":{"
             "\"org.opencontainers.image.ref.name\":\"%s\"}}]}", JR_MT_OCI_MANIFEST, md,
             strlen(man), ref);
    tar_add(&arch, "index.json", '0', idx, strlen(idx), 0644, NULL);
    tar_end(&arch);
    f = fopen(path, "wb");
    fwrite(arch.p, 1, arch.n, f);
    fclose(f);
    free(arch.p);
}

/* A docker save archive (plain layer tars at <n>/layer.tar). */
static void write_docker_archive(const char *path, struct tbuf *layers, int n, const char *tag)
{
    struct tbuf arch = {NULL, 0, 0};
    char cfg[8192], man[4096], d[JR_DIGEST_LEN + 1], diffs[4096] = "", lays[2048] = "",
        name[128];
    FILE *f;

    for (int i = 0; i < n; i++) {
        digest_of(layers[i].p, layers[i].n, d);
        snprintf(diffs + strlen(diffs), sizeof diffs - strlen(diffs), "%s\"%s\"", i ? "," : "", d);
        snprintf(name, sizeof name, "layer%d/layer.tar", i);
        snprintf(lays + strlen(lays), sizeof lays - strlen(lays), "%s\"%s\"", i ? "," : "", name);
        tar_add(&arch, name, '0', layers[i].p, layers[i].n, 0644, NULL);
    }
    snprintf(cfg, sizeof cfg, "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{"
             "\"Env\":[\"PATH=/bin\"],\"Entrypoint\":[\"/bin/echo\"]},"
             "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[%s]}}", diffs);
    digest_of(cfg, strlen(cfg), d);
    snprintf(name, sizeof name, "%s.json", d + 7);
    tar_add(&arch, name, '0', cfg, strlen(cfg), 0644, NULL);
    snprintf(man, sizeof man, "[{\"Config\":\"%s\",\"RepoTags\":[\"%s\"],\"Layers\":[%s]}]",
             name, tag, lays);
    tar_add(&arch, "manifest.json", '0', man, strlen(man), 0644, NULL);
    tar_end(&arch);
    f = fopen(path, "wb");
    fwrite(arch.p, 1, arch.n, f);
    fclose(f);
    free(arch.p);
}

#endif
