/* libFuzzer target for the zstd side of the image store's byte source
 * (runtime/image/source.c). The input's first three bytes choose how, the
 * rest is the plain data: it is compressed into one to four frames (content
 * checksums or not, a skippable frame between them or not, random filler
 * added or not so that the stream spans several of the source's reads),
 * then read back through jr_src in pieces of random sizes. Oracles: the
 * bytes come back exactly, then the end (0); the stream cut anywhere
 * (past its magic) comes back as an error saying why unless the cut is
 * where a frame ends, and whatever was read before is a prefix of the
 * data. Raw, mutated zstd streams are fuzz_tar's (its corpus has some). */
#include <stdint.h>
#include <string.h>
#include <zstd.h>

#include "fuzz.h"
#include "image/internal.h"

#define MAX_FRAMES 4
#define FILLER_UNIT 40000

struct reader {
    struct jr_src src;
    uint32_t seed;
};

/* Reads everything from src in random pieces into out (cap bytes): how
 * many, or -1 (the source's error). */
static ssize_t read_all(struct reader *r, unsigned char *out, size_t cap)
{
    size_t got = 0;

    for (;;) {
        size_t k = 1 + fuzz_next_rand(&r->seed) % 4096;
        ssize_t n;
        if (k > cap - got)
            k = cap - got;
        if (k == 0) {
            unsigned char extra;
            /* Full: the stream must end here. */
            n = jr_src_read(&r->src, &extra, 1);
            return n == 0 ? (ssize_t)got : n < 0 ? -1 : (ssize_t)cap + 1;
        }
        n = jr_src_read(&r->src, out + got, k);
        if (n < 0)
            return -1;
        if (n == 0)
            return (ssize_t)got;
        CHECK((size_t)n <= k);
        got += (size_t)n;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *plain = NULL, *z = NULL, *back = NULL;
    size_t plen, zcap, zlen = 0, ends[2 * MAX_FRAMES], nends = 0, cut;
    int flags, frames;
    struct reader r;
    ZSTD_CCtx *c;
    ssize_t n;

    if (size < 3)
        return 0;
    flags = data[0];
    frames = 1 + (flags & 3);
    cut = (size_t)data[1] << 8 | data[2];
    data += 3;
    size -= 3;
    /* The plain data: the input, then random filler (incompressible) when
     * asked, so the compressed stream is longer than one read ahead. */
    plen = size + ((flags & 16) ? (size_t)((flags >> 5) + 1) * FILLER_UNIT : 0);
    plain = malloc(plen + 1);
    CHECK(plain);
    memcpy(plain, data, size);
    r.seed = 2463534242u ^ (uint32_t)plen;
    for (size_t i = size; i < plen; i++)
        plain[i] = (unsigned char)fuzz_next_rand(&r.seed);
    zcap = ZSTD_compressBound(plen) + MAX_FRAMES * (ZSTD_compressBound(0) + 32) + 64;
    z = malloc(zcap);
    back = malloc(plen + 1);
    c = ZSTD_createCCtx();
    CHECK(z && back && c);
    ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, (flags & 8) ? 1 : 0);
    for (int f = 0; f < frames; f++) {
        size_t from = plen * (size_t)f / (size_t)frames, to = plen * (size_t)(f + 1) / (size_t)frames;
        size_t w = ZSTD_compress2(c, z + zlen, zcap - zlen, plain + from, to - from);
        CHECK(!ZSTD_isError(w));
        zlen += w;
        ends[nends++] = zlen;
        if ((flags & 4) && f + 1 < frames) {
            /* A skippable frame: magic 0x184D2A50, 4-byte size, payload. */
            static const unsigned char skip[] = { 0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 'j', 'r', 't' };
            memcpy(z + zlen, skip, sizeof skip);
            zlen += sizeof skip;
            ends[nends++] = zlen;
        }
    }
    ZSTD_freeCCtx(c);

    /* Whole: the same bytes, then the end. */
    CHECK(jr_src_open_mem(&r.src, z, zlen, 1) == 0);
    CHECK(r.src.zstd);
    n = read_all(&r, back, plen);
    if (n < 0)
        fprintf(stderr, "zstd read failed: %s\n", r.src.err);
    CHECK(n == (ssize_t)plen);
    CHECK(memcmp(back, plain, plen) == 0);
    CHECK(r.src.plain_total == (int64_t)plen);
    jr_src_close(&r.src);

    /* Cut short (past the magic, which is what says zstd). */
    cut = 4 + cut % zlen;
    if (cut < zlen) {
        int at_end = 0;
        for (size_t i = 0; i < nends; i++)
            at_end |= ends[i] == cut;
        r.seed ^= (uint32_t)cut;
        CHECK(jr_src_open_mem(&r.src, z, cut, 1) == 0);
        n = read_all(&r, back, plen);
        if (at_end) {
            CHECK(n >= 0);
        } else {
            CHECK(n < 0);
            CHECK(strstr(r.src.err, "zstd") != NULL);
        }
        /* What came out before the end or the error is the data's start. */
        CHECK(r.src.plain_total <= (int64_t)plen);
        CHECK(memcmp(back, plain, (size_t)r.src.plain_total) == 0);
        jr_src_close(&r.src);
    }
    free(plain);
    free(z);
    free(back);
    return 0;
}
