/* The crypto core: strict base64, signature verification over public keys
 * in PEM or DER, digests, HMAC, random bytes and password hashes, on
 * OpenSSL 3. Plain C, no Lua: the binding is runtime/lua/crypto.c, and the
 * fuzz targets call these functions directly. Single-threaded: the only
 * state is a small cache of parsed public keys (verify.c). No function
 * leaves anything on OpenSSL's error queue. */
#ifndef JR_CRYPTO_H
#define JR_CRYPTO_H

#include <stddef.h>

/* Results of the operations that can fail for reasons of their input. */
enum jr_crypto_status {
    JR_CRYPTO_OK = 0,
    JR_CRYPTO_BAD_ALG,       /* unknown algorithm */
    JR_CRYPTO_BAD_KEY,       /* the key does not parse, is of another type
                                than the algorithm needs, or is too weak */
    JR_CRYPTO_BAD_SIGNATURE, /* the signature is malformed (length, DER) */
    JR_CRYPTO_MISMATCH,      /* well-formed, but does not verify / match */
    JR_CRYPTO_BAD_HASH,      /* a stored password hash does not parse */
    JR_CRYPTO_ERROR,         /* OpenSSL failed (out of memory, ...) */
};

/* "BAD_ALG", "BAD_KEY", ... for the Lua error channel; never NULL. */
const char *jr_crypto_code(int status);

/* Writes the message into err, clears OpenSSL's error queue and returns
 * status, so that a check can `return jr_crypto_fail(...)` (digest.c). */
int jr_crypto_fail(int status, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- base64 (base64.c) ---- */

enum jr_b64_flags {
    JR_B64_URL = 1,         /* alphabet "-_" instead of "+/" */
    JR_B64_NOPAD = 2,       /* encode: no '='; decode: '=' is an error */
    JR_B64_PAD_OPTIONAL = 4 /* decode: accept both padded and unpadded */
};

/* Length of the encoding of n bytes (without a terminating NUL). */
size_t jr_crypto_b64_encoded_len(size_t n, int flags);
/* Encode n bytes into out (room for jr_crypto_b64_encoded_len bytes);
 * returns the length written. Writes no NUL. */
size_t jr_crypto_b64_encode(const unsigned char *in, size_t n, char *out, int flags);
/* Upper bound of the decoded length of n characters. */
size_t jr_crypto_b64_decoded_max(size_t n);
/* Strict decoding: no whitespace, every character of the alphabet, padding
 * as flags require, length valid, unused trailing bits zero (so every text
 * has exactly one encoding). out has room for jr_crypto_b64_decoded_max(n).
 * Returns 0 with *outlen set, or -1 with a message naming the 0-based
 * offset of the fault in err. */
int jr_crypto_b64_decode(const char *in, size_t n, unsigned char *out, size_t *outlen,
                         int flags, char *err, size_t errlen);

/* ---- signatures and keys (verify.c) ---- */

enum jr_key_format {
    JR_KEY_ANY = 0,   /* SPKI, or PKCS#1 RSAPublicKey */
    JR_KEY_PKCS1,     /* RSAPublicKey only (as some protocols send a client's key) */
    JR_KEY_SPKI,      /* SubjectPublicKeyInfo only */
};

/* Smallest RSA modulus verify() and rsa_modulus_sha256() accept, in bits. */
#define JR_CRYPTO_RSA_MIN_BITS 2048

/* Verify sig over data with a public key given as PEM ("PUBLIC KEY",
 * "RSA PUBLIC KEY") or DER; for ed25519 also as the raw 32 bytes. alg is
 * "rsa-pkcs1-sha256", "rsa-pss-sha256" (any salt length), "ecdsa-p256-sha256"
 * (DER, or raw r||s of 64 bytes) or "ed25519". Returns a jr_crypto_status,
 * with a message in err unless OK. */
int jr_crypto_verify(const char *alg, const unsigned char *key, size_t keylen, int key_format,
                     const unsigned char *sig, size_t siglen, const unsigned char *data,
                     size_t datalen, char *err, size_t errlen);

/* Lowercase hex of SHA-256 over an RSA public key's modulus as minimal
 * big-endian bytes (what a surface may use to name a client by its key).
 * hex receives 64 characters and a NUL. */
int jr_crypto_rsa_modulus_sha256(const unsigned char *key, size_t keylen, int key_format, char hex[65],
                        char *err, size_t errlen);

/* ---- digests, MAC, randomness (digest.c) ---- */

#define JR_SHA256_LEN 32
#define JR_SHA512_LEN 64

/* Return 0, or -1 when OpenSSL fails (out of memory). */
int jr_crypto_sha256(const void *data, size_t n, unsigned char out[JR_SHA256_LEN]);
int jr_crypto_sha512(const void *data, size_t n, unsigned char out[JR_SHA512_LEN]);
int jr_crypto_hmac_sha256(const void *key, size_t keylen, const void *data, size_t n,
                          unsigned char out[JR_SHA256_LEN]);
/* Constant time in the contents (not in the lengths): 1 when equal. */
int jr_crypto_equal(const void *a, size_t alen, const void *b, size_t blen);
/* Fill out with n bytes from the OpenSSL CSPRNG; 0, or -1. */
int jr_crypto_random(void *out, size_t n);
/* Lowercase hex of n bytes into out (2n characters, no NUL). */
void jr_crypto_hex(const unsigned char *in, size_t n, char *out);

/* ---- password hashes (password.c) ---- */

/* Defaults of jr_crypto_hash_password: scrypt N=2^15, r=8, p=1 (32 MiB). */
#define JR_SCRYPT_N 32768
#define JR_SCRYPT_R 8
#define JR_SCRYPT_P 1

/* Hash pw as "scrypt$N$r$p$salt_b64$hash_b64" (16-byte random salt, 32-byte
 * key, standard base64 with padding) into out (256 bytes are enough).
 * N, r, p of 0 take the defaults. Returns OK, BAD_HASH for parameters out
 * of range, or ERROR. */
int jr_crypto_hash_password(const char *pw, size_t pwlen, unsigned long n, unsigned long r,
                            unsigned long p, char *out, size_t outlen, char *err, size_t errlen);
/* Check pw against "scrypt$N$r$p$salt$hash" or "pbkdf2-sha256$iter$salt$hash"
 * (salt and hash standard base64, padding optional); the final compare is
 * constant-time. Returns OK, MISMATCH, BAD_HASH or ERROR. */
int jr_crypto_verify_password(const char *pw, size_t pwlen, const char *stored, size_t storedlen,
                              char *err, size_t errlen);

#endif
