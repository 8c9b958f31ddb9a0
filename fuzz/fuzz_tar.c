/* libFuzzer target for the image store's byte source and tar reader
 * (runtime/image/source.c, tar.c): the input as a layer blob, gzip'ed or
 * not, read in pieces of random sizes. Oracles: no crash, leak or hang;
 * every entry has a non-empty NUL-terminated path and link shorter than
 * JR_TAR_PATH_MAX, a known type, permission bits only, a size only for
 * regular files; the data read of an entry never passes its size; after
 * an error the reader says why. */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "image/internal.h"

struct reader {
    struct jr_src src;
    uint32_t seed;
};

static ssize_t piecewise(void *arg, void *buf, size_t n)
{
    struct reader *r = arg;
    size_t k = 1 + fuzz_next_rand(&r->seed) % 1024;

    return jr_src_read(&r->src, buf, k < n ? k : n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct jr_tar_entry en;
    struct reader r;
    struct jr_tar t;
    char buf[700];
    int rc, n = 0;

    r.seed = 2463534242u ^ (uint32_t)size;
    if (jr_src_open_mem(&r.src, data, size, 1)) {
        CHECK(r.src.err[0]);
        jr_src_close(&r.src);
        return 0;
    }
    jr_tar_init(&t, piecewise, &r);
    while ((rc = jr_tar_next(&t, &en)) == 1 && n++ < 10000) {
        int64_t got = 0;
        ssize_t k;
        CHECK(en.path[0] && strlen(en.path) < JR_TAR_PATH_MAX);
        CHECK(strlen(en.link) < JR_TAR_PATH_MAX);
        CHECK(en.type >= JR_TAR_REG && en.type <= JR_TAR_FIFO);
        CHECK((en.mode & ~07777u) == 0);
        CHECK(en.type == JR_TAR_REG || en.size == 0);
        while ((k = jr_tar_data(&t, buf, sizeof buf)) > 0)
            got += k;
        CHECK(k == 0 || t.err[0] || r.src.err[0]);
        if (k == 0)
            CHECK(got == en.size || en.type != JR_TAR_REG);
        if (k < 0)
            break;
    }
    CHECK(rc != -1 || t.err[0]);
    jr_src_close(&r.src);
    return 0;
}
