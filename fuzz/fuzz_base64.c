/* libFuzzer target for the strict base64 decoder (runtime/crypto/base64.c).
 * The first byte picks the variant; the rest is decoded. Oracles: nothing
 * is written past the advertised bound, and whatever decodes re-encodes to
 * exactly the input (strictness means one spelling per byte string).
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -Iruntime \
 *        fuzz/fuzz_base64.c runtime/crypto/base64.c -o build-fuzz/fuzz_base64 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"

static const int variants[] = {
    0,                              /* base64, padding required */
    JR_B64_URL | JR_B64_PAD_OPTIONAL, /* base64url as jobrt.crypto decodes it */
    JR_B64_URL | JR_B64_NOPAD,
    JR_B64_PAD_OPTIONAL,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int flags = variants[data[0] % 4];
    const char *in = (const char *)data + 1;
    size_t n = size - 1;
    char err[128];
    size_t max = jr_crypto_b64_decoded_max(n), outlen = 0;
    /* Exactly the bound, so ASan catches one byte too many. */
    unsigned char *out = malloc(max ? max : 1);
    if (!out)
        return 0;
    if (jr_crypto_b64_decode(in, n, out, &outlen, flags, err, sizeof(err)) == 0) {
        if (outlen > max)
            abort();
        int padded = n > 0 && in[n - 1] == '=';
        int eflags = (flags & JR_B64_URL) | ((flags & JR_B64_NOPAD) || !padded ? JR_B64_NOPAD : 0);
        if ((flags & (JR_B64_NOPAD | JR_B64_PAD_OPTIONAL)) == 0)
            eflags = flags; /* padding required: the canonical form is padded */
        size_t elen = jr_crypto_b64_encoded_len(outlen, eflags);
        char *enc = malloc(elen ? elen : 1);
        if (!enc)
            abort();
        size_t w = jr_crypto_b64_encode(out, outlen, enc, eflags);
        if (w != elen || w != n || memcmp(enc, in, n) != 0)
            abort(); /* two spellings of one byte string were accepted */
        free(enc);
    } else if (strstr(err, "at offset") == NULL) {
        abort(); /* every refusal names its offset */
    }
    free(out);
    return 0;
}
