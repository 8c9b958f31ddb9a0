/* Unit tests of runtime/crypto: RFC 4648 and 4231 vectors, strict base64
 * refusals, password hashes, and signature verification over keys the
 * openssl command line makes at test time (in a temp dir, removed after).
 * Run under ASan by `make asan`, these cover the key cache and every free. */
#include <stdlib.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "unit.h"

static char err[256];

static char *b64(const char *s, int flags, char *out)
{
    size_t n = jr_crypto_b64_encode((const unsigned char *)s, strlen(s), out, flags);
    out[n] = '\0';
    return out;
}

TEST(base64_rfc4648_vectors)
{
    static const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    char out[64];
    unsigned char dec[64];
    size_t n;
    for (int i = 0; i < 7; i++) {
        CHECK_STR(b64(plain[i], 0, out), enc[i]);
        CHECK_INT(jr_crypto_b64_encoded_len(strlen(plain[i]), 0), strlen(enc[i]));
        CHECK_INT(jr_crypto_b64_decode(enc[i], strlen(enc[i]), dec, &n, 0, err, sizeof(err)), 0);
        CHECK_INT(n, strlen(plain[i]));
        CHECK(memcmp(dec, plain[i], n) == 0);
    }
    CHECK_STR(b64("\xfb\xff", JR_B64_URL | JR_B64_NOPAD, out), "-_8");
}

TEST(base64_refusals_name_offsets)
{
    unsigned char dec[64];
    size_t n;
    CHECK_INT(jr_crypto_b64_decode("Zm9", 3, dec, &n, 0, err, sizeof(err)), -1);
    CHECK(strstr(err, "missing padding") != NULL);
    CHECK_INT(jr_crypto_b64_decode("Zm 9v", 5, dec, &n, 0, err, sizeof(err)), -1);
    CHECK_STR(err, "whitespace at offset 2");
    CHECK_INT(jr_crypto_b64_decode("Zh==", 4, dec, &n, 0, err, sizeof(err)), -1);
    CHECK(strstr(err, "unused bits in the final character at offset 1") != NULL);
    CHECK_INT(jr_crypto_b64_decode("Zg==", 4, dec, &n, JR_B64_URL | JR_B64_NOPAD, err, sizeof(err)), -1);
    CHECK(strstr(err, "not allowed") != NULL);
    CHECK_INT(jr_crypto_b64_decode("Zg", 2, dec, &n, JR_B64_URL | JR_B64_PAD_OPTIONAL, err, sizeof(err)), 0);
    CHECK_INT(n, 1);
}

TEST(digests_and_hmac)
{
    unsigned char d[64];
    char hex[129];
    CHECK_INT(jr_crypto_sha256("abc", 3, d), 0);
    jr_crypto_hex(d, 32, hex);
    hex[64] = '\0';
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    /* RFC 4231 test case 2 */
    CHECK_INT(jr_crypto_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, d), 0);
    jr_crypto_hex(d, 32, hex);
    hex[64] = '\0';
    CHECK_STR(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    CHECK(jr_crypto_equal("abc", 3, "abc", 3));
    CHECK(!jr_crypto_equal("abc", 3, "abd", 3));
    CHECK(!jr_crypto_equal("abc", 3, "ab", 2));
}

TEST(password_round_trip)
{
    char h[256];
    CHECK_INT(jr_crypto_hash_password("pw", 2, 1024, 8, 1, h, sizeof(h), err, sizeof(err)), JR_CRYPTO_OK);
    CHECK(strncmp(h, "scrypt$1024$8$1$", 16) == 0);
    CHECK_INT(jr_crypto_verify_password("pw", 2, h, strlen(h), err, sizeof(err)), JR_CRYPTO_OK);
    CHECK_INT(jr_crypto_verify_password("pW", 2, h, strlen(h), err, sizeof(err)), JR_CRYPTO_MISMATCH);
    CHECK_INT(jr_crypto_verify_password("pw", 2, "scrypt$3$8$1$YQ==$YQ==", 22, err, sizeof(err)),
              JR_CRYPTO_BAD_HASH);
    CHECK_INT(jr_crypto_hash_password("pw", 2, 1000, 8, 1, h, sizeof(h), err, sizeof(err)),
              JR_CRYPTO_BAD_HASH);
}

static unsigned char *slurp(const char *dir, const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char *buf = malloc(8192);
    *len = buf ? fread(buf, 1, 8192, f) : 0;
    fclose(f);
    return buf;
}

TEST(verify_openssl_signatures)
{
    char dir[] = "/tmp/jobrt-test-crypto-c-XXXXXX";
    char cmd[2048];
    if (!mkdtemp(dir)) {
        UNIT_FAIL("mkdtemp: %s", dir);
        return;
    }
    snprintf(cmd, sizeof(cmd),
             "cd %s && printf '{\"a\":1}' > data && "
             "openssl genrsa -traditional -out k.pem 2048 && "
             "openssl rsa -in k.pem -RSAPublicKey_out -outform DER -out k.der && "
             "openssl rsa -in k.pem -pubout -out k.spki.pem && "
             "openssl dgst -sha256 -sign k.pem -out sig data && "
             "openssl genpkey -algorithm ed25519 -out ed.pem && "
             "openssl pkey -in ed.pem -pubout -out ed.pub && "
             "openssl pkeyutl -sign -inkey ed.pem -rawin -in data -out ed.sig && "
             "openssl ecparam -name prime256v1 -genkey -noout -out ec.pem && "
             "openssl ec -in ec.pem -pubout -out ec.pub && "
             "openssl dgst -sha256 -sign ec.pem -out ec.sig data",
             dir);
    char quiet[2200];
    snprintf(quiet, sizeof(quiet), "(%s) >/dev/null 2>&1", cmd);
    CHECK_INT(system(quiet), 0);
    size_t kl = 0, sl = 0, spl = 0, el = 0, esl = 0, cl = 0, csl = 0;
    unsigned char *key = slurp(dir, "k.der", &kl), *sig = slurp(dir, "sig", &sl);
    unsigned char *spki = slurp(dir, "k.spki.pem", &spl);
    unsigned char *ed = slurp(dir, "ed.pub", &el), *edsig = slurp(dir, "ed.sig", &esl);
    unsigned char *ec = slurp(dir, "ec.pub", &cl), *ecsig = slurp(dir, "ec.sig", &csl);
    const unsigned char *data = (const unsigned char *)"{\"a\":1}";
    if (key && sig && spki && ed && edsig && ec && ecsig) {
        for (int round = 0; round < 3; round++) { /* cold, then from the key cache */
            CHECK_INT(jr_crypto_verify("rsa-pkcs1-sha256", key, kl, JR_KEY_PKCS1, sig, sl, data, 7,
                                       err, sizeof(err)), JR_CRYPTO_OK);
            CHECK_INT(jr_crypto_verify("rsa-pkcs1-sha256", key, kl, JR_KEY_PKCS1, sig, sl, data, 6,
                                       err, sizeof(err)), JR_CRYPTO_MISMATCH);
            CHECK_INT(jr_crypto_verify("rsa-pss-sha256", key, kl, 0, sig, sl, data, 7, err,
                                       sizeof(err)), JR_CRYPTO_MISMATCH);
            CHECK_INT(jr_crypto_verify("rsa-pkcs1-sha256", spki, spl, JR_KEY_PKCS1, sig, sl, data,
                                       7, err, sizeof(err)), JR_CRYPTO_BAD_KEY);
            CHECK_INT(jr_crypto_verify("rsa-pkcs1-sha256", spki, spl, JR_KEY_SPKI, sig, sl, data, 7,
                                       err, sizeof(err)), JR_CRYPTO_OK);
            CHECK_INT(jr_crypto_verify("rsa-pkcs1-sha256", key, kl, 0, sig, sl - 1, data, 7, err,
                                       sizeof(err)), JR_CRYPTO_BAD_SIGNATURE);
            CHECK_INT(jr_crypto_verify("ed25519", ed, el, 0, edsig, esl, data, 7, err, sizeof(err)),
                      JR_CRYPTO_OK);
            CHECK_INT(jr_crypto_verify("ecdsa-p256-sha256", ec, cl, 0, ecsig, csl, data, 7, err,
                                       sizeof(err)), JR_CRYPTO_OK);
            CHECK_INT(jr_crypto_verify("ecdsa-p256-sha256", ec, cl, 0, ecsig, csl, data, 6, err,
                                       sizeof(err)), JR_CRYPTO_MISMATCH);
        }
        char id1[65], id2[65];
        CHECK_INT(jr_crypto_rsa_modulus_sha256(key, kl, JR_KEY_PKCS1, id1, err, sizeof(err)), JR_CRYPTO_OK);
        CHECK_INT(jr_crypto_rsa_modulus_sha256(spki, spl, 0, id2, err, sizeof(err)), JR_CRYPTO_OK);
        CHECK_STR(id1, id2);
    } else {
        UNIT_FAIL("openssl did not make the fixtures in %s", dir);
    }
    CHECK_INT(jr_crypto_verify("rsa-md5", (const unsigned char *)"k", 1, 0, NULL, 0, data, 7, err,
                               sizeof(err)), JR_CRYPTO_BAD_ALG);
    CHECK_INT(jr_crypto_verify("ed25519", (const unsigned char *)"-----BEGIN PUBLIC KEY-----\nxx",
                               29, 0, (const unsigned char *)"", 0, data, 7, err, sizeof(err)),
              JR_CRYPTO_BAD_KEY);
    free(key);
    free(sig);
    free(spki);
    free(ed);
    free(edsig);
    free(ec);
    free(ecsig);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK_INT(system(cmd), 0);
}

int main(void)
{
    RUN(base64_rfc4648_vectors);
    RUN(base64_refusals_name_offsets);
    RUN(digests_and_hmac);
    RUN(password_round_trip);
    RUN(verify_openssl_signatures);
    return UNIT_DONE();
}
