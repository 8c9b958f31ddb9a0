/* libFuzzer target for the stored task spec decoder (runtime/spec.c,
 * jr_spec_decode, over exec/jv.c's JSON parser). Oracles: it never
 * crashes or leaks; a field marked OK has the type that kind promises;
 * every string it hands over is NUL-terminated inside the input's
 * decoding; counts match the lists; jr_spec_free leaves nothing behind. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "spec.h"

static int kind(int k)
{
    return k == JR_SPEC_ABSENT || k == JR_SPEC_OK || k == JR_SPEC_BAD;
}

/* Reads every byte of s, so that ASan sees an unterminated string. */
static void touch(const char *s)
{
    if (s)
        CHECK(strlen(s) < (size_t)1 << 30);
}

static void check(const struct jr_task_setup *s)
{
    CHECK(kind(s->image_kind) && kind(s->network_kind) && kind(s->domains_kind) &&
          kind(s->inputs_kind));
    CHECK((s->image_kind == JR_SPEC_OK) == (s->image != NULL));
    touch(s->image);
    touch(s->network_mode);
    CHECK(s->network_kind == JR_SPEC_OK || s->network_mode == NULL);
    CHECK(s->domains_kind == JR_SPEC_OK || s->ndomains == 0);
    CHECK(s->ndomains == 0 || s->domains != NULL);
    for (size_t i = 0; i < s->ndomains; i++)
        touch(s->domains[i]);
    CHECK(s->inputs_kind == JR_SPEC_OK || s->ninputs == 0);
    CHECK(s->ninputs == 0 || s->inputs != NULL);
    for (size_t i = 0; i < s->ninputs; i++) {
        const struct jr_spec_input *in = &s->inputs[i];
        CHECK(in->is_object == 0 || in->is_object == 1);
        CHECK(kind(in->max_bytes_kind));
        if (!in->is_object)
            CHECK(!in->source && !in->target && !in->path && !in->task && !in->file &&
                  !in->url && !in->data && in->data_len == 0);
        touch(in->source);
        touch(in->target);
        touch(in->path);
        touch(in->task);
        touch(in->file);
        touch(in->url);
        if (in->data) {
            volatile char sum = 0; /* the bytes are readable, NULs and all */
            for (size_t k = 0; k < in->data_len; k++)
                sum ^= in->data[k];
            (void)sum;
        }
        CHECK(in->data != NULL || in->data_len == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *json = malloc(size + 1);
    struct jr_task_setup s;

    if (!json)
        return 0;
    memcpy(json, data, size);
    json[size] = '\0';
    if (jr_spec_decode(json, &s) == 0)
        check(&s);
    jr_spec_free(&s);
    CHECK(s.owned == NULL && s.inputs == NULL && s.domains == NULL);
    free(json);
    return 0;
}
