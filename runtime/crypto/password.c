/* Password hashes for configured users and generated credentials:
 * "scrypt$N$r$p$salt$hash" made and checked with OpenSSL's EVP_PBE_scrypt,
 * and "pbkdf2-sha256$iterations$salt$hash" checked for hashes made
 * elsewhere. Salt and hash are standard base64. Parameters are bounded so
 * that a stored string cannot make a check take unbounded memory or time. */
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "crypto/crypto.h"

#define SALT_LEN 16
#define KEY_LEN 32
#define MAX_KEY 64
#define MAX_SALT 64
#define SCRYPT_MAX_NR (1UL << 21)     /* 128*N*r <= 256 MiB */
#define PBKDF2_MAX_ITER 10000000UL

static int scrypt_params_ok(unsigned long n, unsigned long r, unsigned long p, char *err,
                            size_t errlen)
{
    if (n < 2 || (n & (n - 1)) != 0 || n > (1UL << 20))
        return jr_crypto_fail(JR_CRYPTO_BAD_HASH, err, errlen, "scrypt N must be a power of 2 in 2..2^20");
    if (r < 1 || r > 64 || p < 1 || p > 16)
        return jr_crypto_fail(JR_CRYPTO_BAD_HASH, err, errlen, "scrypt r must be 1..64 and p 1..16");
    if (n * r > SCRYPT_MAX_NR)
        return jr_crypto_fail(JR_CRYPTO_BAD_HASH, err, errlen, "scrypt N*r needs more than 256 MiB");
    return JR_CRYPTO_OK;
}

static int scrypt(const char *pw, size_t pwlen, const unsigned char *salt, size_t saltlen,
                  unsigned long n, unsigned long r, unsigned long p, unsigned char *key,
                  size_t keylen)
{
    uint64_t maxmem = 128ULL * r * (n + p + 2) + (1ULL << 20);
    if (EVP_PBE_scrypt(pw, pwlen, salt, saltlen, n, r, p, maxmem, key, keylen) != 1) {
        ERR_clear_error();
        return -1;
    }
    return 0;
}

int jr_crypto_hash_password(const char *pw, size_t pwlen, unsigned long n, unsigned long r,
                            unsigned long p, char *out, size_t outlen, char *err, size_t errlen)
{
    unsigned char salt[SALT_LEN], key[KEY_LEN];
    char salt64[32], key64[64];
    int st;
    n = n ? n : JR_SCRYPT_N;
    r = r ? r : JR_SCRYPT_R;
    p = p ? p : JR_SCRYPT_P;
    if ((st = scrypt_params_ok(n, r, p, err, errlen)) != 0)
        return st;
    if (jr_crypto_random(salt, sizeof(salt)) != 0)
        return jr_crypto_fail(JR_CRYPTO_ERROR, err, errlen, "no random bytes");
    if (scrypt(pw, pwlen, salt, sizeof(salt), n, r, p, key, sizeof(key)) != 0)
        return jr_crypto_fail(JR_CRYPTO_ERROR, err, errlen, "scrypt failed");
    size_t sl = jr_crypto_b64_encode(salt, sizeof(salt), salt64, 0);
    size_t kl = jr_crypto_b64_encode(key, sizeof(key), key64, 0);
    OPENSSL_cleanse(key, sizeof(key));
    int w = snprintf(out, outlen, "scrypt$%lu$%lu$%lu$%.*s$%.*s", n, r, p, (int)sl, salt64,
                     (int)kl, key64);
    if (w < 0 || (size_t)w >= outlen)
        return jr_crypto_fail(JR_CRYPTO_ERROR, err, errlen, "output buffer too small");
    return JR_CRYPTO_OK;
}

/* Split s at '$' into at most max fields; returns their count. */
static int split(const char *s, size_t len, const char **f, size_t *fl, int max)
{
    int k = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '$') {
            if (k == max)
                return max + 1;
            f[k] = s + start;
            fl[k] = i - start;
            k++;
            start = i + 1;
        }
    }
    return k;
}

/* A decimal number without sign or leading zeros, at most 10 digits. */
static int number(const char *s, size_t len, unsigned long *v)
{
    if (len == 0 || len > 10 || (s[0] == '0' && len > 1))
        return -1;
    unsigned long x = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        x = x * 10 + (unsigned long)(s[i] - '0');
    }
    *v = x;
    return 0;
}

static int b64field(const char *s, size_t len, unsigned char *out, size_t max, size_t *outlen)
{
    char e[96];
    unsigned char tmp[MAX_KEY + 8];
    if (len == 0 || jr_crypto_b64_decoded_max(len) > sizeof(tmp))
        return -1;
    if (jr_crypto_b64_decode(s, len, tmp, outlen, JR_B64_PAD_OPTIONAL, e, sizeof(e)) != 0 ||
        *outlen > max || *outlen == 0)
        return -1;
    memcpy(out, tmp, *outlen);
    return 0;
}

int jr_crypto_verify_password(const char *pw, size_t pwlen, const char *stored, size_t storedlen,
                              char *err, size_t errlen)
{
    const char *f[7];
    size_t fl[7];
    unsigned char salt[MAX_SALT], want[MAX_KEY], got[MAX_KEY];
    size_t saltlen, wantlen;
    unsigned long a, b, c;
    int st, k = split(stored, storedlen, f, fl, 6);

    if (k == 6 && fl[0] == 6 && !memcmp(f[0], "scrypt", 6)) {
        if (number(f[1], fl[1], &a) || number(f[2], fl[2], &b) || number(f[3], fl[3], &c))
            return jr_crypto_fail(JR_CRYPTO_BAD_HASH, err, errlen, "scrypt hash: N, r and p must be numbers");
        if ((st = scrypt_params_ok(a, b, c, err, errlen)) != 0)
            return st;
        if (b64field(f[4], fl[4], salt, MAX_SALT, &saltlen) ||
            b64field(f[5], fl[5], want, MAX_KEY, &wantlen) || wantlen < 16)
            return jr_crypto_fail(JR_CRYPTO_BAD_HASH, err, errlen,
                        "scrypt hash: salt and hash must be base64 (hash 16..64 bytes)");
        if (scrypt(pw, pwlen, salt, saltlen, a, b, c, got, wantlen) != 0)
            return jr_crypto_fail(JR_CRYPTO_ERROR, err, errlen, "scrypt failed");
    } else if (k == 4 && fl[0] == 13 && !memcmp(f[0], "pbkdf2-sha256", 13)) {
        if (number(f[1], fl[1], &a) || a < 1 || a > PBKDF2_MAX_ITER)
            return jr_crypto_fail(JR_CRYPTO_BAD_HASH, err, errlen,
                        "pbkdf2-sha256 hash: iterations must be a number in 1..%lu",
                        PBKDF2_MAX_ITER);
        if (b64field(f[2], fl[2], salt, MAX_SALT, &saltlen) ||
            b64field(f[3], fl[3], want, MAX_KEY, &wantlen) || wantlen < 16)
            return jr_crypto_fail(JR_CRYPTO_BAD_HASH, err, errlen,
                        "pbkdf2-sha256 hash: salt and hash must be base64 (hash 16..64 bytes)");
        if (pwlen > 0x7fffffff ||
            PKCS5_PBKDF2_HMAC(pw, (int)pwlen, salt, (int)saltlen, (int)a, EVP_sha256(),
                              (int)wantlen, got) != 1)
            return jr_crypto_fail(JR_CRYPTO_ERROR, err, errlen, "PBKDF2 failed");
    } else {
        return jr_crypto_fail(JR_CRYPTO_BAD_HASH, err, errlen,
                    "not a password hash (\"scrypt$N$r$p$salt$hash\" or "
                    "\"pbkdf2-sha256$iterations$salt$hash\")");
    }
    st = CRYPTO_memcmp(got, want, wantlen) == 0 ? JR_CRYPTO_OK : JR_CRYPTO_MISMATCH;
    OPENSSL_cleanse(got, sizeof(got));
    if (st != JR_CRYPTO_OK)
        jr_crypto_fail(st, err, errlen, "password does not match");
    return st;
}
