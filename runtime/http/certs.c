/* `jobrt certs DIR`: writes a throwaway certificate authority, a server
 * certificate for localhost/127.0.0.1/::1 and a client certificate, all
 * signed by that CA, for trying TLS and mutual TLS locally. Not for
 * production: the keys are unencrypted and valid for 30 days. */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define VALID_DAYS 30

static EVP_PKEY *new_key(void)
{
    return EVP_EC_gen("P-256");
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext)
        return -1;
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

/* A certificate for key, named cn, signed by (issuer, issuer_key); a
 * self-signed CA when issuer is NULL. Returns NULL on failure. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
                       long serial, int kind)
{
    X509 *cert = X509_new();
    if (!cert)
        return NULL;
    int ok = X509_set_version(cert, 2);
    ok &= ASN1_INTEGER_set(X509_get_serialNumber(cert), serial);
    ok &= X509_gmtime_adj(X509_getm_notBefore(cert), -60) != NULL;
    ok &= X509_gmtime_adj(X509_getm_notAfter(cert), 60L * 60 * 24 * VALID_DAYS) != NULL;
    ok &= X509_set_pubkey(cert, key);
    X509_NAME *name = X509_get_subject_name(cert);
    ok &= X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"jobrt", -1, -1, 0);
    ok &= X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    ok &= X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer) : name);
    X509 *signer = issuer ? issuer : cert;
    if (ok && kind == 0) {
        ok &= add_ext(cert, signer, NID_basic_constraints, "critical,CA:TRUE") == 0;
        ok &= add_ext(cert, signer, NID_key_usage, "critical,keyCertSign,cRLSign") == 0;
    } else if (ok) {
        ok &= add_ext(cert, signer, NID_basic_constraints, "critical,CA:FALSE") == 0;
        ok &= add_ext(cert, signer, NID_key_usage, "critical,digitalSignature") == 0;
        ok &= add_ext(cert, signer, NID_ext_key_usage, kind == 1 ? "serverAuth" : "clientAuth") == 0;
        if (kind == 1)
            ok &= add_ext(cert, signer, NID_subject_alt_name,
                          "DNS:localhost,IP:127.0.0.1,IP:::1") == 0;
    }
    ok &= add_ext(cert, signer, NID_subject_key_identifier, "hash") == 0;
    if (ok && X509_sign(cert, issuer_key ? issuer_key : key, EVP_sha256()) > 0)
        return cert;
    X509_free(cert);
    return NULL;
}

static int write_pem(const char *dir, const char *file, EVP_PKEY *key, X509 *cert)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "jobrt certs: %s: %s\n", path, strerror(errno));
        return -1;
    }
    int ok = key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)
                 : PEM_write_X509(f, cert);
    if (key)
        fchmod(fileno(f), 0600);
    if (fclose(f) != 0 || !ok) {
        fprintf(stderr, "jobrt certs: cannot write %s\n", path);
        return -1;
    }
    printf("wrote %s\n", path);
    return 0;
}

int jr_certs_main(int argc, char **argv)
{
    if (argc != 3 || argv[2][0] == '-') {
        fprintf(stderr, "usage: jobrt certs DIR\n"
                        "writes ca.crt, server.crt/key (localhost, 127.0.0.1, ::1) and\n"
                        "client.crt/key (CN=client), for trying TLS and mTLS locally\n");
        return 2;
    }
    const char *dir = argv[2];
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "jobrt certs: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    int rc = 1;
    EVP_PKEY *ca_key = new_key(), *srv_key = new_key(), *cli_key = new_key();
    X509 *ca = NULL, *srv = NULL, *cli = NULL;
    if (!ca_key || !srv_key || !cli_key)
        goto done;
    ca = make_cert(ca_key, "jobrt throwaway CA", NULL, NULL, 1, 0);
    srv = ca ? make_cert(srv_key, "localhost", ca, ca_key, 2, 1) : NULL;
    cli = ca ? make_cert(cli_key, "client", ca, ca_key, 3, 2) : NULL;
    if (!ca || !srv || !cli)
        goto done;
    if (write_pem(dir, "ca.crt", NULL, ca) || write_pem(dir, "ca.key", ca_key, NULL) ||
        write_pem(dir, "server.crt", NULL, srv) || write_pem(dir, "server.key", srv_key, NULL) ||
        write_pem(dir, "client.crt", NULL, cli) || write_pem(dir, "client.key", cli_key, NULL))
        goto done;
    rc = 0;
done:
    if (rc != 0 && ERR_peek_error()) {
        char msg[256];
        ERR_error_string_n(ERR_get_error(), msg, sizeof(msg));
        fprintf(stderr, "jobrt certs: %s\n", msg);
    }
    X509_free(ca);
    X509_free(srv);
    X509_free(cli);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(srv_key);
    EVP_PKEY_free(cli_key);
    return rc;
}
