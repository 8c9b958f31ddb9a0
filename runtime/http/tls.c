/* TLS sessions over memory BIOs for the HTTP server and client (see tls.h). */
#include "http/tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct jr_tls_ctx {
    SSL_CTX *ssl_ctx;
};

struct jr_tls_conn {
    SSL *ssl;
    BIO *rbio; /* ciphertext in, owned by ssl */
    BIO *wbio; /* ciphertext out, owned by ssl */
    int established;
    int client;
    char reason[256];
    char subject[512];
    char issuer[512];
};

static void openssl_error(char *err, size_t errlen, const char *what, const char *file)
{
    unsigned long e = ERR_get_error();
    char msg[256] = "unknown error";
    if (e)
        ERR_error_string_n(e, msg, sizeof(msg));
    snprintf(err, errlen, "%s%s%s: %s", what, file ? " " : "", file ? file : "", msg);
    ERR_clear_error();
}

int jr_tls_ctx_new(const struct jr_tls_options *o, struct jr_tls_ctx **out, char *err,
                   size_t errlen)
{
    struct jr_tls_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    SSL_CTX *s = SSL_CTX_new(TLS_server_method());
    ctx->ssl_ctx = s;
    if (!s) {
        openssl_error(err, errlen, "cannot create TLS context", NULL);
        goto fail;
    }
    SSL_CTX_set_min_proto_version(s, TLS1_2_VERSION);
    SSL_CTX_set_options(s, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                               SSL_OP_NO_COMPRESSION);
    /* TLS 1.2: forward-secret AEAD suites only; 1.3 suites are all modern. */
    if (!SSL_CTX_set_cipher_list(s, "ECDHE+AESGCM:ECDHE+CHACHA20")) {
        openssl_error(err, errlen, "cannot set ciphers", NULL);
        goto fail;
    }
    SSL_CTX_set_mode(s, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(s, o->cert) != 1) {
        openssl_error(err, errlen, "cannot load certificate", o->cert);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(s, o->key, SSL_FILETYPE_PEM) != 1) {
        openssl_error(err, errlen, "cannot load private key", o->key);
        goto fail;
    }
    if (SSL_CTX_check_private_key(s) != 1) {
        openssl_error(err, errlen, "private key does not match certificate", o->key);
        goto fail;
    }
    if (o->client_ca) {
        if (SSL_CTX_load_verify_locations(s, o->client_ca, NULL) != 1) {
            openssl_error(err, errlen, "cannot load client CA", o->client_ca);
            goto fail;
        }
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->client_ca);
        if (names)
            SSL_CTX_set_client_CA_list(s, names);
        int mode = SSL_VERIFY_PEER;
        if (o->require_client_cert)
            mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        SSL_CTX_set_verify(s, mode, NULL);
    } else if (o->require_client_cert) {
        snprintf(err, errlen, "require_client_cert needs client_ca");
        goto fail;
    }
    *out = ctx;
    return 0;
fail:
    jr_tls_ctx_free(ctx);
    return -1;
}

int jr_tls_client_ctx_new(const char *ca_file, struct jr_tls_ctx **out, char *err,
                          size_t errlen)
{
    struct jr_tls_ctx *ctx = calloc(1, sizeof(*ctx));
    int ok;

    ERR_clear_error();
    if (!ctx || !(ctx->ssl_ctx = SSL_CTX_new(TLS_client_method()))) {
        openssl_error(err, errlen, "cannot create TLS context", NULL);
        jr_tls_ctx_free(ctx);
        return -1;
    }
    SSL_CTX_set_min_proto_version(ctx->ssl_ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx->ssl_ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_verify(ctx->ssl_ctx, SSL_VERIFY_PEER, NULL);
    if (ca_file && *ca_file)
        ok = SSL_CTX_load_verify_locations(ctx->ssl_ctx, ca_file, NULL) == 1;
    else
        ok = SSL_CTX_set_default_verify_paths(ctx->ssl_ctx) == 1;
    if (!ok) {
        int named = ca_file && *ca_file;
        openssl_error(err, errlen, named ? "cannot load the CA certificates from"
                                         : "cannot load the CA certificates",
                      named ? ca_file : NULL);
        jr_tls_ctx_free(ctx);
        return -1;
    }
    *out = ctx;
    return 0;
}

int jr_tls_ctx_use_cert(struct jr_tls_ctx *ctx, const char *cert, const char *key, char *err,
                        size_t errlen)
{
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(ctx->ssl_ctx, cert) != 1) {
        openssl_error(err, errlen, "cannot load certificate", cert);
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx->ssl_ctx, key, SSL_FILETYPE_PEM) != 1) {
        openssl_error(err, errlen, "cannot load private key", key);
        return -1;
    }
    if (SSL_CTX_check_private_key(ctx->ssl_ctx) != 1) {
        openssl_error(err, errlen, "private key does not match certificate", key);
        return -1;
    }
    return 0;
}

void jr_tls_ctx_free(struct jr_tls_ctx *ctx)
{
    if (!ctx)
        return;
    SSL_CTX_free(ctx->ssl_ctx);
    free(ctx);
}

static struct jr_tls_conn *conn_new(struct jr_tls_ctx *ctx)
{
    struct jr_tls_conn *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->ssl = SSL_new(ctx->ssl_ctx);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->rbio || !t->wbio) {
        SSL_free(t->ssl);
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        free(t);
        return NULL;
    }
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    return t;
}

struct jr_tls_conn *jr_tls_conn_new(struct jr_tls_ctx *ctx)
{
    struct jr_tls_conn *t = conn_new(ctx);

    if (t)
        SSL_set_accept_state(t->ssl);
    return t;
}

struct jr_tls_conn *jr_tls_client_new(struct jr_tls_ctx *ctx, const char *host, char *err,
                                      size_t errlen)
{
    struct jr_tls_conn *t = conn_new(ctx);
    unsigned char addr[16];
    int ok;

    ERR_clear_error();
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    t->client = 1;
    if (inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1)
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), host) == 1;
    else
        ok = SSL_set_tlsext_host_name(t->ssl, host) == 1 && SSL_set1_host(t->ssl, host) == 1;
    if (!ok) {
        openssl_error(err, errlen, "TLS setup for", host);
        jr_tls_conn_free(t);
        return NULL;
    }
    SSL_set_connect_state(t->ssl);
    return t;
}

void jr_tls_conn_free(struct jr_tls_conn *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);
    free(t);
}

static int drain_out(struct jr_tls_conn *t, struct jr_buf *out)
{
    char buf[16384];
    int n;
    while ((n = BIO_read(t->wbio, buf, sizeof(buf))) > 0)
        if (jr_buf_add(out, buf, (size_t)n) != 0)
            return -1;
    return 0;
}

static void record_peer(struct jr_tls_conn *t)
{
    X509 *peer = SSL_get1_peer_certificate(t->ssl);
    if (!peer)
        return;
    /* RFC 2253 order and escaping: "CN=alice,O=Example". */
    BIO *b = BIO_new(BIO_s_mem());
    if (b) {
        X509_NAME_print_ex(b, X509_get_subject_name(peer), 0, XN_FLAG_RFC2253);
        int n = BIO_read(b, t->subject, sizeof(t->subject) - 1);
        t->subject[n > 0 ? n : 0] = '\0';
        (void)BIO_reset(b);
        X509_NAME_print_ex(b, X509_get_issuer_name(peer), 0, XN_FLAG_RFC2253);
        n = BIO_read(b, t->issuer, sizeof(t->issuer) - 1);
        t->issuer[n > 0 ? n : 0] = '\0';
        BIO_free(b);
    }
    X509_free(peer);
}

static int fail(struct jr_tls_conn *t, struct jr_buf *out)
{
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, t->reason, sizeof(t->reason));
    else if (!t->reason[0])
        snprintf(t->reason, sizeof(t->reason), "TLS session failed");
    long vr = SSL_get_verify_result(t->ssl);
    if (vr != X509_V_OK) {
        size_t len = strlen(t->reason);
        snprintf(t->reason + len, sizeof(t->reason) - len, " (%scertificate: %s)",
                 t->client ? "" : "client ", X509_verify_cert_error_string(vr));
    }
    ERR_clear_error();
    drain_out(t, out); /* the alert, so the client learns why */
    return -1;
}

int jr_tls_feed(struct jr_tls_conn *t, const char *data, size_t len, struct jr_buf *plain,
                struct jr_buf *out)
{
    ERR_clear_error(); /* what failed elsewhere on this thread is not ours */
    while (len > 0) {
        int n = BIO_write(t->rbio, data, (int)len);
        if (n <= 0)
            return fail(t, out);
        data += n;
        len -= (size_t)n;
        if (!t->established) {
            int r = SSL_do_handshake(t->ssl);
            if (r == 1) {
                t->established = 1;
                record_peer(t);
            } else {
                int e = SSL_get_error(t->ssl, r);
                if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                    return fail(t, out);
            }
        }
        if (t->established) {
            char buf[16384];
            for (;;) {
                int r = SSL_read(t->ssl, buf, sizeof(buf));
                if (r > 0) {
                    if (jr_buf_add(plain, buf, (size_t)r) != 0)
                        return -1;
                    continue;
                }
                int e = SSL_get_error(t->ssl, r);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                    break;
                if (e == SSL_ERROR_ZERO_RETURN) {
                    snprintf(t->reason, sizeof(t->reason), "peer closed the TLS session");
                    drain_out(t, out);
                    return 1;
                }
                return fail(t, out);
            }
        }
        if (drain_out(t, out) != 0)
            return -1;
    }
    return 0;
}

int jr_tls_start(struct jr_tls_conn *t, struct jr_buf *out)
{
    int r;

    ERR_clear_error();
    r = SSL_do_handshake(t->ssl);
    if (r != 1 && SSL_get_error(t->ssl, r) != SSL_ERROR_WANT_READ)
        return fail(t, out);
    return drain_out(t, out);
}

int jr_tls_encrypt(struct jr_tls_conn *t, const char *data, size_t len, struct jr_buf *out)
{
    while (len > 0) {
        int n = SSL_write(t->ssl, data, len > 1 << 30 ? 1 << 30 : (int)len);
        if (n <= 0)
            return fail(t, out);
        data += n;
        len -= (size_t)n;
    }
    return drain_out(t, out);
}

void jr_tls_close_notify(struct jr_tls_conn *t, struct jr_buf *out)
{
    if (t->established && SSL_shutdown(t->ssl) >= 0)
        drain_out(t, out);
    ERR_clear_error();
}

int jr_tls_established(const struct jr_tls_conn *t)
{
    return t->established;
}

const char *jr_tls_reason(const struct jr_tls_conn *t)
{
    return t->reason[0] ? t->reason : "TLS error";
}

const char *jr_tls_verify_error(const struct jr_tls_conn *t)
{
    long vr = SSL_get_verify_result(t->ssl);

    return vr == X509_V_OK ? NULL : X509_verify_cert_error_string(vr);
}

const char *jr_tls_peer_subject(const struct jr_tls_conn *t)
{
    return t->subject;
}

const char *jr_tls_peer_issuer(const struct jr_tls_conn *t)
{
    return t->issuer;
}

const char *jr_tls_version(const struct jr_tls_conn *t)
{
    return SSL_get_version(t->ssl);
}

const char *jr_tls_cipher(const struct jr_tls_conn *t)
{
    return SSL_get_cipher_name(t->ssl);
}
