/* libFuzzer target for the image store's JSON decoders (runtime/image/
 * docs.c): OCI and Docker manifests and indexes, image configs and docker
 * save's manifest.json, over exec/jv.c. Oracles: no crash or leak; a
 * parse that succeeds hands over only valid sha256 digests, non-negative
 * sizes, counts within the limits and NUL-terminated strings; a platform
 * pick is an index entry or -1 with a reason. */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "image/internal.h"

static void touch(const char *s)
{
    if (s)
        CHECK(strlen(s) < (size_t)1 << 30);
}

static void check_desc(const struct jr_image_desc *d)
{
    CHECK(jr_image_digest_valid(d->digest));
    CHECK(d->size >= 0);
    touch(d->media_type);
    touch(d->os);
    touch(d->arch);
    touch(d->variant);
    touch(d->ref_name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    char why[300];
    struct jr_image_manifest m;
    struct jr_image_config c;
    struct jr_image_save s;

    if (jr_image_manifest_parse(text, size, &m, why, sizeof why) == 0) {
        CHECK(m.nitems >= 0 && m.nitems <= 1024);
        CHECK(m.is_index || (m.nitems >= 1 && m.nitems <= JR_IMAGE_MAX_LAYERS));
        if (!m.is_index)
            check_desc(&m.config);
        for (int i = 0; i < m.nitems; i++)
            check_desc(&m.items[i]);
        if (m.is_index) {
            why[0] = 0;
            int k = jr_image_pick_platform(&m, why, sizeof why);
            CHECK(k >= -1 && k < m.nitems);
            CHECK(k >= 0 || why[0]);
        }
    } else {
        CHECK(why[0]);
    }
    jr_image_manifest_free(&m);
    if (jr_image_config_parse(text, size, &c, why, sizeof why) == 0) {
        CHECK(c.ndiff_ids >= 0 && c.ndiff_ids <= JR_IMAGE_MAX_LAYERS);
        for (int i = 0; i < c.ndiff_ids; i++)
            CHECK(jr_image_digest_valid(c.diff_ids[i]));
        for (char **l = c.env; l && *l; l++)
            CHECK(strchr(*l, '=') != NULL && **l != '=');
        for (char **l = c.entrypoint; l && *l; l++)
            touch(*l);
        for (char **l = c.cmd; l && *l; l++)
            touch(*l);
        CHECK(!c.workdir || !c.workdir[0] || c.workdir[0] == '/');
        touch(c.user);
    }
    jr_image_config_free(&c);
    if (jr_image_save_parse(text, size, &s, why, sizeof why) == 0) {
        CHECK(s.n >= 1);
        for (int i = 0; i < s.n; i++) {
            touch(s.images[i].config);
            CHECK(s.images[i].nlayers >= 1 && s.images[i].nlayers <= JR_IMAGE_MAX_LAYERS);
            for (int k = 0; k < s.images[i].nlayers; k++)
                touch(s.images[i].layers[k]);
            for (int k = 0; k < s.images[i].ntags; k++)
                touch(s.images[i].tags[k]);
        }
    }
    jr_image_save_free(&s);
    return 0;
}
