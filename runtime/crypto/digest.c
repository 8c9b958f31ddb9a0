/* Digests, HMAC, constant-time comparison and random bytes: thin wrappers
 * over OpenSSL's one-shot calls that keep its error queue clean, plus the
 * status names the binding reports. */
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

#include "crypto/crypto.h"

int jr_crypto_fail(int status, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    ERR_clear_error();
    return status;
}

const char *jr_crypto_code(int status)
{
    switch (status) {
    case JR_CRYPTO_OK: return "OK";
    case JR_CRYPTO_BAD_ALG: return "BAD_ALG";
    case JR_CRYPTO_BAD_KEY: return "BAD_KEY";
    case JR_CRYPTO_BAD_SIGNATURE: return "BAD_SIGNATURE";
    case JR_CRYPTO_MISMATCH: return "MISMATCH";
    case JR_CRYPTO_BAD_HASH: return "BAD_HASH";
    default: return "CRYPTO_ERROR";
    }
}

static int digest(const EVP_MD *md, const void *data, size_t n, unsigned char *out)
{
    if (EVP_Digest(data, n, out, NULL, md, NULL) != 1) {
        ERR_clear_error();
        return -1;
    }
    return 0;
}

/* SHA-256 fetched from the default provider once for the process (a
 * constant from then on): EVP_sha256() looks it up again on every digest,
 * which cost most of hashing a password for HTTP Basic on each request. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void fetch_sha256(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

int jr_crypto_sha256(const void *data, size_t n, unsigned char out[JR_SHA256_LEN])
{
    pthread_once(&sha256_once, fetch_sha256);
    return digest(sha256_md ? sha256_md : EVP_sha256(), data, n, out);
}

int jr_crypto_sha512(const void *data, size_t n, unsigned char out[JR_SHA512_LEN])
{
    return digest(EVP_sha512(), data, n, out);
}

int jr_crypto_hmac_sha256(const void *key, size_t keylen, const void *data, size_t n,
                          unsigned char out[JR_SHA256_LEN])
{
    static const unsigned char empty[1];
    unsigned int len = 0;
    /* HMAC() takes an int key length and rejects a NULL key. */
    if (keylen > 0x7fffffff)
        return -1;
    if (!HMAC(EVP_sha256(), keylen ? key : empty, (int)keylen, n ? data : empty, n, out, &len) ||
        len != JR_SHA256_LEN) {
        ERR_clear_error();
        return -1;
    }
    return 0;
}

int jr_crypto_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    if (alen != blen) {
        /* Spend the same time as a compare of a's length, then say no. */
        (void)CRYPTO_memcmp(a, a, alen);
        return 0;
    }
    return CRYPTO_memcmp(a, b, alen) == 0;
}

int jr_crypto_random(void *out, size_t n)
{
    if (n == 0)
        return 0;
    if (n > 0x7fffffff || RAND_bytes(out, (int)n) != 1) {
        ERR_clear_error();
        return -1;
    }
    return 0;
}

void jr_crypto_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
}
