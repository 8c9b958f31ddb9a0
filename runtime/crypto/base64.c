/* Strict base64 (RFC 4648 §4) and base64url (§5). Decoding refuses
 * whitespace, characters outside the alphabet, misplaced or missing
 * padding, impossible lengths and non-zero unused bits, and says at which
 * offset; so a signature or a key has exactly one accepted spelling. */
#include <stdio.h>

#include "crypto/crypto.h"

static const char STD[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t jr_crypto_b64_encoded_len(size_t n, int flags)
{
    if (flags & JR_B64_NOPAD)
        return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
    return (n + 2) / 3 * 4;
}

size_t jr_crypto_b64_encode(const unsigned char *in, size_t n, char *out, int flags)
{
    const char *abc = (flags & JR_B64_URL) ? URL : STD;
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        unsigned long v = (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8 | in[i + 2];
        out[o++] = abc[v >> 18 & 63];
        out[o++] = abc[v >> 12 & 63];
        out[o++] = abc[v >> 6 & 63];
        out[o++] = abc[v & 63];
    }
    if (n - i == 1) {
        unsigned long v = (unsigned long)in[i] << 16;
        out[o++] = abc[v >> 18 & 63];
        out[o++] = abc[v >> 12 & 63];
        if (!(flags & JR_B64_NOPAD)) {
            out[o++] = '=';
            out[o++] = '=';
        }
    } else if (n - i == 2) {
        unsigned long v = (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8;
        out[o++] = abc[v >> 18 & 63];
        out[o++] = abc[v >> 12 & 63];
        out[o++] = abc[v >> 6 & 63];
        if (!(flags & JR_B64_NOPAD))
            out[o++] = '=';
    }
    return o;
}

size_t jr_crypto_b64_decoded_max(size_t n)
{
    return n / 4 * 3 + 3;
}

static int value_of(unsigned char c, int url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

static int fail(char *err, size_t errlen, const char *what, size_t at)
{
    snprintf(err, errlen, "%s at offset %zu", what, at);
    return -1;
}

int jr_crypto_b64_decode(const char *in, size_t n, unsigned char *out, size_t *outlen,
                         int flags, char *err, size_t errlen)
{
    int url = flags & JR_B64_URL;
    const unsigned char *s = (const unsigned char *)in;
    /* Split off the padding: at most two '=' at the very end. */
    size_t data = n, pad = 0;
    while (data > 0 && s[data - 1] == '=' && pad < 2) {
        data--;
        pad++;
    }
    for (size_t i = 0; i < data; i++) {
        if (value_of(s[i], url) < 0) {
            if (s[i] == '=')
                return fail(err, errlen, "misplaced padding '='", i);
            if (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')
                return fail(err, errlen, "whitespace", i);
            if (!url && (s[i] == '-' || s[i] == '_'))
                return fail(err, errlen, "base64url character in base64", i);
            if (url && (s[i] == '+' || s[i] == '/'))
                return fail(err, errlen, "base64 character in base64url", i);
            char what[64];
            snprintf(what, sizeof(what), "invalid character 0x%02x", s[i]);
            return fail(err, errlen, what, i);
        }
    }
    size_t rem = data % 4;
    if (rem == 1)
        return fail(err, errlen, "truncated input (a lone final character)", data - 1);
    if (pad > 0) {
        if (flags & JR_B64_NOPAD)
            return fail(err, errlen, "padding '=' is not allowed", data);
        if (rem == 0 || rem + pad != 4)
            return fail(err, errlen, "wrong amount of padding", data);
    } else if (rem != 0 && !(flags & (JR_B64_NOPAD | JR_B64_PAD_OPTIONAL))) {
        return fail(err, errlen, "missing padding (length is not a multiple of 4)", n);
    }
    size_t o = 0, i = 0;
    for (; i + 4 <= data; i += 4) {
        unsigned long v = (unsigned long)value_of(s[i], url) << 18 |
                          (unsigned long)value_of(s[i + 1], url) << 12 |
                          (unsigned long)value_of(s[i + 2], url) << 6 |
                          (unsigned long)value_of(s[i + 3], url);
        out[o++] = (unsigned char)(v >> 16);
        out[o++] = (unsigned char)(v >> 8);
        out[o++] = (unsigned char)v;
    }
    if (rem == 2) {
        unsigned long v = (unsigned long)value_of(s[i], url) << 18 |
                          (unsigned long)value_of(s[i + 1], url) << 12;
        if (v & 0xffff)
            return fail(err, errlen, "non-zero unused bits in the final character", i + 1);
        out[o++] = (unsigned char)(v >> 16);
    } else if (rem == 3) {
        unsigned long v = (unsigned long)value_of(s[i], url) << 18 |
                          (unsigned long)value_of(s[i + 1], url) << 12 |
                          (unsigned long)value_of(s[i + 2], url) << 6;
        if (v & 0xff)
            return fail(err, errlen, "non-zero unused bits in the final character", i + 2);
        out[o++] = (unsigned char)(v >> 16);
        out[o++] = (unsigned char)(v >> 8);
    }
    *outlen = o;
    return 0;
}
