/* Public keys and signature verification: parse a key given as PEM or DER
 * (SubjectPublicKeyInfo, or PKCS#1 RSAPublicKey when the caller allows),
 * check it fits the algorithm, then verify. Every failure names what was
 * wrong, in a status the caller can act on. Also the SHA-256 of an RSA
 * key's modulus. */
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"

enum alg { ALG_RSA_PKCS1, ALG_RSA_PSS, ALG_ECDSA_P256, ALG_ED25519, ALG_NONE };

static enum alg alg_of(const char *name)
{
    if (!strcmp(name, "rsa-pkcs1-sha256"))
        return ALG_RSA_PKCS1;
    if (!strcmp(name, "rsa-pss-sha256"))
        return ALG_RSA_PSS;
    if (!strcmp(name, "ecdsa-p256-sha256"))
        return ALG_ECDSA_P256;
    if (!strcmp(name, "ed25519"))
        return ALG_ED25519;
    return ALG_NONE;
}

/* DER -> key. Tries the formats fmt allows; names the one found when it is
 * not the one required. Returns NULL with a message in err. */
static EVP_PKEY *parse_der(const unsigned char *der, size_t len, int fmt, char *err, size_t errlen)
{
    const unsigned char *p = der;
    EVP_PKEY *k = NULL;
    if (len == 0 || len > 0x7fffffff) {
        jr_crypto_fail(0, err, errlen, "key is empty or too long");
        return NULL;
    }
    k = d2i_PUBKEY(NULL, &p, (long)len);
    if (k) {
        if (p != der + len) {
            EVP_PKEY_free(k);
            jr_crypto_fail(0, err, errlen, "key has %zu bytes of trailing data", len - (size_t)(p - der));
            return NULL;
        }
        if (fmt == JR_KEY_PKCS1) {
            EVP_PKEY_free(k);
            jr_crypto_fail(0, err, errlen,
                 "key is a SubjectPublicKeyInfo (SPKI); a PKCS#1 RSAPublicKey is required");
            return NULL;
        }
        ERR_clear_error();
        return k;
    }
    p = der;
    k = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, (long)len);
    if (k) {
        if (p != der + len) {
            EVP_PKEY_free(k);
            jr_crypto_fail(0, err, errlen, "key has %zu bytes of trailing data", len - (size_t)(p - der));
            return NULL;
        }
        if (fmt == JR_KEY_SPKI) {
            EVP_PKEY_free(k);
            jr_crypto_fail(0, err, errlen,
                 "key is a PKCS#1 RSAPublicKey; a SubjectPublicKeyInfo (SPKI) is required");
            return NULL;
        }
        ERR_clear_error();
        return k;
    }
    jr_crypto_fail(0, err, errlen, "key is not a DER %s",
         fmt == JR_KEY_PKCS1 ? "PKCS#1 RSAPublicKey"
         : fmt == JR_KEY_SPKI ? "SubjectPublicKeyInfo"
                              : "SubjectPublicKeyInfo or PKCS#1 RSAPublicKey");
    return NULL;
}

static int is_pem(const unsigned char *key, size_t len)
{
    size_t i = 0;
    while (i < len && (key[i] == ' ' || key[i] == '\t' || key[i] == '\r' || key[i] == '\n'))
        i++;
    return len - i >= 11 && !memcmp(key + i, "-----BEGIN ", 11);
}

/* PEM or DER -> key, or NULL with a message. */
static EVP_PKEY *parse_key(const unsigned char *key, size_t keylen, int fmt, char *err,
                           size_t errlen)
{
    if (!is_pem(key, keylen))
        return parse_der(key, keylen, fmt, err, errlen);
    EVP_PKEY *k = NULL;
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    long len = 0;
    BIO *bio = BIO_new_mem_buf(key, keylen > 0x7fffffff ? -1 : (int)keylen);
    if (!bio || keylen > 0x7fffffff) {
        jr_crypto_fail(0, err, errlen, "key too long or out of memory");
        goto done;
    }
    if (!PEM_read_bio(bio, &name, &header, &data, &len)) {
        jr_crypto_fail(0, err, errlen, "key is not valid PEM");
        goto done;
    }
    if (header && header[0]) {
        jr_crypto_fail(0, err, errlen, "PEM key has headers (encrypted?)");
        goto done;
    }
    int want;
    if (!strcmp(name, "PUBLIC KEY")) {
        want = JR_KEY_SPKI;
    } else if (!strcmp(name, "RSA PUBLIC KEY")) {
        want = JR_KEY_PKCS1;
    } else {
        jr_crypto_fail(0, err, errlen, "PEM block \"%s\" is not a public key", name);
        goto done;
    }
    if (fmt != JR_KEY_ANY && fmt != want) {
        jr_crypto_fail(0, err, errlen, "key is a PEM \"%s\"; %s is required", name,
             fmt == JR_KEY_PKCS1 ? "a PKCS#1 RSAPublicKey (\"RSA PUBLIC KEY\")"
                                 : "a SubjectPublicKeyInfo (\"PUBLIC KEY\")");
        goto done;
    }
    k = parse_der(data, (size_t)len, want, err, errlen);
done:
    BIO_free(bio);
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    return k;
}

/* Parsed keys, by SHA-256 of (format, key bytes): clients send the same key
 * with every request, and OpenSSL 3 is slow to decode a key (and to export
 * a fresh one to its provider) compared with one verification. Holds one
 * reference per entry; single-threaded like the rest of the daemon. */
#define KEY_CACHE 64
static struct {
    unsigned char id[JR_SHA256_LEN];
    EVP_PKEY *key;
    EVP_PKEY_CTX *rsa[2]; /* prepared verify contexts: PKCS#1 v1.5, PSS */
} key_cache[KEY_CACHE];
static unsigned key_cache_next;

/* Like parse_key, from the cache when it can; the caller frees the result. */
static EVP_PKEY *cached_key(const unsigned char *key, size_t keylen, int fmt, char *err,
                            size_t errlen)
{
    unsigned char id[JR_SHA256_LEN];
    unsigned char f = (unsigned char)fmt;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int hashed = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
                 EVP_DigestUpdate(md, &f, 1) == 1 && EVP_DigestUpdate(md, key, keylen) == 1 &&
                 EVP_DigestFinal_ex(md, id, NULL) == 1;
    EVP_MD_CTX_free(md);
    if (!hashed) {
        ERR_clear_error();
        return parse_key(key, keylen, fmt, err, errlen);
    }
    for (unsigned i = 0; i < KEY_CACHE; i++) {
        if (key_cache[i].key && !memcmp(key_cache[i].id, id, sizeof(id))) {
            EVP_PKEY_up_ref(key_cache[i].key);
            return key_cache[i].key;
        }
    }
    EVP_PKEY *k = parse_key(key, keylen, fmt, err, errlen);
    if (k && EVP_PKEY_up_ref(k) == 1) {
        unsigned slot = key_cache_next++ % KEY_CACHE;
        EVP_PKEY_free(key_cache[slot].key);
        EVP_PKEY_CTX_free(key_cache[slot].rsa[0]);
        EVP_PKEY_CTX_free(key_cache[slot].rsa[1]);
        key_cache[slot].rsa[0] = key_cache[slot].rsa[1] = NULL;
        memcpy(key_cache[slot].id, id, sizeof(id));
        key_cache[slot].key = k;
    }
    return k;
}

/* SHA-256 fetched once: an implicit fetch on every init costs more than
 * the hashing. Falls back to EVP_sha256() if the fetch fails. */
static const EVP_MD *sha256_md(void)
{
    static EVP_MD *md;
    if (!md) {
        md = EVP_MD_fetch(NULL, "SHA256", NULL);
        ERR_clear_error();
    }
    return md ? md : EVP_sha256();
}

/* A verify context for k with SHA-256 and the padding of alg, set up once
 * per cached key (as `openssl speed` does) or else made for this call
 * (*owned = 1: the caller frees it). NULL when OpenSSL fails. */
static EVP_PKEY_CTX *rsa_ctx(EVP_PKEY *k, enum alg alg, int *owned)
{
    int pss = alg == ALG_RSA_PSS;
    unsigned slot = KEY_CACHE;
    for (unsigned i = 0; i < KEY_CACHE; i++) {
        if (key_cache[i].key == k) {
            slot = i;
            break;
        }
    }
    if (slot < KEY_CACHE && key_cache[slot].rsa[pss]) {
        *owned = 0;
        return key_cache[slot].rsa[pss];
    }
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
    if (!c || EVP_PKEY_verify_init(c) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(c, pss ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING) != 1 ||
        EVP_PKEY_CTX_set_signature_md(c, sha256_md()) != 1 ||
        (pss && (EVP_PKEY_CTX_set_rsa_pss_saltlen(c, RSA_PSS_SALTLEN_AUTO) != 1 ||
                 EVP_PKEY_CTX_set_rsa_mgf1_md(c, sha256_md()) != 1))) {
        EVP_PKEY_CTX_free(c);
        ERR_clear_error();
        return NULL;
    }
    if (slot < KEY_CACHE) {
        key_cache[slot].rsa[pss] = c;
        *owned = 0;
    } else {
        *owned = 1;
    }
    return c;
}

/* Is k usable for alg? 0, or a status with a message. */
static int check_key(EVP_PKEY *k, enum alg alg, char *err, size_t errlen)
{
    int id = EVP_PKEY_get_base_id(k);
    switch (alg) {
    case ALG_RSA_PKCS1:
    case ALG_RSA_PSS:
        if (id != EVP_PKEY_RSA && !(alg == ALG_RSA_PSS && id == EVP_PKEY_RSA_PSS))
            return jr_crypto_fail(JR_CRYPTO_BAD_KEY, err, errlen, "key is %s, not RSA",
                        OBJ_nid2sn(id));
        if (EVP_PKEY_get_bits(k) < JR_CRYPTO_RSA_MIN_BITS)
            return jr_crypto_fail(JR_CRYPTO_BAD_KEY, err, errlen, "RSA key has %d bits; at least %d required",
                        EVP_PKEY_get_bits(k), JR_CRYPTO_RSA_MIN_BITS);
        return 0;
    case ALG_ECDSA_P256: {
        char group[64] = "";
        if (id != EVP_PKEY_EC)
            return jr_crypto_fail(JR_CRYPTO_BAD_KEY, err, errlen, "key is %s, not EC", OBJ_nid2sn(id));
        if (!EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                            NULL) ||
            strcmp(group, "prime256v1") != 0)
            return jr_crypto_fail(JR_CRYPTO_BAD_KEY, err, errlen, "EC key is on curve %s, not P-256",
                        group[0] ? group : "(unknown)");
        return 0;
    }
    case ALG_ED25519:
        if (id != EVP_PKEY_ED25519)
            return jr_crypto_fail(JR_CRYPTO_BAD_KEY, err, errlen, "key is %s, not ED25519",
                        OBJ_nid2sn(id));
        return 0;
    default:
        return jr_crypto_fail(JR_CRYPTO_BAD_ALG, err, errlen, "unknown algorithm");
    }
}

/* An ECDSA signature as strict DER; a 64-byte r||s is converted. Returns a
 * malloc'd DER (OPENSSL_free) in *der, or a status. */
static int ecdsa_der(const unsigned char *sig, size_t siglen, unsigned char **der, size_t *derlen,
                     char *err, size_t errlen)
{
    const unsigned char *p = sig;
    ECDSA_SIG *es = NULL;
    BIGNUM *r = NULL, *s = NULL;
    int st = JR_CRYPTO_OK, n;
    if (siglen > 0 && siglen <= 72)
        es = d2i_ECDSA_SIG(NULL, &p, (long)siglen);
    if (es && p == sig + siglen) {
        unsigned char *re = NULL;
        n = i2d_ECDSA_SIG(es, &re);
        if (n > 0 && (size_t)n == siglen && !memcmp(re, sig, siglen)) {
            *der = re;
            *derlen = (size_t)n;
            goto done;
        }
        OPENSSL_free(re);
    }
    ECDSA_SIG_free(es);
    es = NULL;
    if (siglen != 64) {
        st = jr_crypto_fail(JR_CRYPTO_BAD_SIGNATURE, err, errlen,
                  "ECDSA signature is neither DER nor 64 bytes of r||s (%zu bytes)", siglen);
        goto done;
    }
    es = ECDSA_SIG_new();
    r = BN_bin2bn(sig, 32, NULL);
    s = BN_bin2bn(sig + 32, 32, NULL);
    if (!es || !r || !s || !ECDSA_SIG_set0(es, r, s)) {
        st = jr_crypto_fail(JR_CRYPTO_ERROR, err, errlen, "out of memory");
        goto done;
    }
    r = s = NULL; /* owned by es */
    *der = NULL;
    n = i2d_ECDSA_SIG(es, der);
    if (n <= 0) {
        st = jr_crypto_fail(JR_CRYPTO_ERROR, err, errlen, "cannot encode the ECDSA signature");
        goto done;
    }
    *derlen = (size_t)n;
done:
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    ERR_clear_error();
    return st;
}

int jr_crypto_verify(const char *alg_name, const unsigned char *key, size_t keylen, int key_format,
                     const unsigned char *sig, size_t siglen, const unsigned char *data,
                     size_t datalen, char *err, size_t errlen)
{
    enum alg alg = alg_of(alg_name);
    EVP_PKEY *k = NULL;
    EVP_MD_CTX *md = NULL;
    unsigned char *der = NULL;
    int st;
    if (alg == ALG_NONE)
        return jr_crypto_fail(JR_CRYPTO_BAD_ALG, err, errlen,
                    "unknown algorithm \"%.40s\" (rsa-pkcs1-sha256, rsa-pss-sha256, "
                    "ecdsa-p256-sha256, ed25519)", alg_name);
    if (key_format == JR_KEY_PKCS1 && alg != ALG_RSA_PKCS1 && alg != ALG_RSA_PSS)
        return jr_crypto_fail(JR_CRYPTO_BAD_KEY, err, errlen, "a PKCS#1 key can only be an RSA key");
    if (alg == ALG_ED25519 && keylen == 32 && key_format == JR_KEY_ANY) {
        k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, key, keylen);
        if (!k) {
            st = jr_crypto_fail(JR_CRYPTO_BAD_KEY, err, errlen, "not a raw Ed25519 public key");
            goto done;
        }
    } else {
        k = cached_key(key, keylen, key_format, err, errlen);
        if (!k) {
            st = JR_CRYPTO_BAD_KEY;
            goto done;
        }
    }
    if ((st = check_key(k, alg, err, errlen)) != 0)
        goto done;

    const unsigned char *s = sig;
    size_t slen = siglen;
    if (alg == ALG_RSA_PKCS1 || alg == ALG_RSA_PSS) {
        if (siglen != (size_t)EVP_PKEY_get_size(k)) {
            st = jr_crypto_fail(JR_CRYPTO_BAD_SIGNATURE, err, errlen,
                      "signature has %zu bytes; an RSA-%d signature has %d", siglen,
                      EVP_PKEY_get_bits(k), EVP_PKEY_get_size(k));
            goto done;
        }
    } else if (alg == ALG_ED25519) {
        if (siglen != 64) {
            st = jr_crypto_fail(JR_CRYPTO_BAD_SIGNATURE, err, errlen,
                      "signature has %zu bytes; an Ed25519 signature has 64", siglen);
            goto done;
        }
    } else {
        if ((st = ecdsa_der(sig, siglen, &der, &slen, err, errlen)) != 0)
            goto done;
        s = der;
    }

    if (alg == ALG_RSA_PKCS1 || alg == ALG_RSA_PSS) {
        unsigned char dg[JR_SHA256_LEN];
        int owned = 0;
        EVP_PKEY_CTX *c = rsa_ctx(k, alg, &owned);
        if (!c || EVP_Digest(data, datalen, dg, NULL, sha256_md(), NULL) != 1) {
            if (owned)
                EVP_PKEY_CTX_free(c);
            st = jr_crypto_fail(JR_CRYPTO_ERROR, err, errlen, "cannot set up the verification");
            goto done;
        }
        int rc = EVP_PKEY_verify(c, s, slen, dg, sizeof(dg));
        if (owned)
            EVP_PKEY_CTX_free(c);
        st = rc == 1 ? JR_CRYPTO_OK
                     : jr_crypto_fail(JR_CRYPTO_MISMATCH, err, errlen,
                            "signature does not match the data and key");
        goto done;
    }
    md = EVP_MD_CTX_new();
    if (!md) {
        st = jr_crypto_fail(JR_CRYPTO_ERROR, err, errlen, "out of memory");
        goto done;
    }
    const EVP_MD *digest = alg == ALG_ED25519 ? NULL : sha256_md();
    if (EVP_DigestVerifyInit(md, NULL, digest, NULL, k) != 1) {
        st = jr_crypto_fail(JR_CRYPTO_ERROR, err, errlen, "cannot set up the verification");
        goto done;
    }
    if (EVP_DigestVerify(md, s, slen, data, datalen) != 1) {
        st = jr_crypto_fail(JR_CRYPTO_MISMATCH, err, errlen, "signature does not match the data and key");
        goto done;
    }
    st = JR_CRYPTO_OK;
done:
    OPENSSL_free(der);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(k);
    ERR_clear_error();
    return st;
}

int jr_crypto_rsa_modulus_sha256(const unsigned char *key, size_t keylen, int key_format, char hex[65],
                        char *err, size_t errlen)
{
    EVP_PKEY *k = NULL;
    BIGNUM *n = NULL;
    unsigned char *bytes = NULL, digest[JR_SHA256_LEN];
    int st = JR_CRYPTO_BAD_KEY;
    k = cached_key(key, keylen, key_format, err, errlen);
    if (!k)
        goto done;
    int id = EVP_PKEY_get_base_id(k);
    if (id != EVP_PKEY_RSA) {
        jr_crypto_fail(0, err, errlen, "key is %s, not RSA", OBJ_nid2sn(id));
        goto done;
    }
    if (!EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n)) {
        st = jr_crypto_fail(JR_CRYPTO_ERROR, err, errlen, "cannot read the RSA modulus");
        goto done;
    }
    int len = BN_num_bytes(n);
    bytes = malloc(len > 0 ? (size_t)len : 1);
    if (!bytes) {
        st = jr_crypto_fail(JR_CRYPTO_ERROR, err, errlen, "out of memory");
        goto done;
    }
    /* Minimal big-endian, no leading zero: Go's N.Bytes(). */
    BN_bn2bin(n, bytes);
    if (jr_crypto_sha256(bytes, (size_t)len, digest) != 0) {
        st = jr_crypto_fail(JR_CRYPTO_ERROR, err, errlen, "SHA-256 failed");
        goto done;
    }
    jr_crypto_hex(digest, sizeof(digest), hex);
    hex[64] = '\0';
    st = JR_CRYPTO_OK;
done:
    free(bytes);
    BN_free(n);
    EVP_PKEY_free(k);
    ERR_clear_error();
    return st;
}
