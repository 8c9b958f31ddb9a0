/* TLS for the HTTP server and client: OpenSSL over memory BIOs, so the
 * libuv stream carries ciphertext and the parser sees plaintext. TLS 1.2+.
 * Server: modern ciphers, optional client certificates verified against a
 * CA. Client: the peer's chain verified against a CA store, and its name
 * (or IP address) against the host asked for, with SNI. */
#ifndef JR_HTTP_TLS_H
#define JR_HTTP_TLS_H

#include <stddef.h>

#include "buf.h"

struct jr_tls_ctx;
struct jr_tls_conn;

struct jr_tls_options {
    const char *cert;        /* PEM chain */
    const char *key;         /* PEM private key */
    const char *client_ca;   /* PEM CA bundle for client certificates, or NULL */
    int require_client_cert; /* refuse the handshake without a valid one */
};

/* Returns 0, or -1 with the reason (file, OpenSSL message) in err. */
int jr_tls_ctx_new(const struct jr_tls_options *o, struct jr_tls_ctx **out, char *err,
                   size_t errlen);
void jr_tls_ctx_free(struct jr_tls_ctx *ctx);

/* A client context: peers are verified against the PEM bundle ca_file, or
 * the system CA store when ca_file is NULL or "". Returns 0, or -1 with the
 * reason in err. */
int jr_tls_client_ctx_new(const char *ca_file, struct jr_tls_ctx **out, char *err,
                          size_t errlen);

/* A client context presents this certificate chain and key (PEM files)
 * when the server asks for one (mutual TLS). Returns 0, or -1 with the
 * reason (file, OpenSSL message) in err. */
int jr_tls_ctx_use_cert(struct jr_tls_ctx *ctx, const char *cert, const char *key, char *err,
                        size_t errlen);

/* A server-side session of a server context. NULL when out of memory. */
struct jr_tls_conn *jr_tls_conn_new(struct jr_tls_ctx *ctx);
/* A client-side session of a client context for host (a name, sent as SNI
 * and checked against the certificate, or an IP address). NULL with the
 * reason in err. Start it with jr_tls_start. */
struct jr_tls_conn *jr_tls_client_new(struct jr_tls_ctx *ctx, const char *host, char *err,
                                      size_t errlen);
/* Client: the first handshake flight, appended to out. Returns 0 or -1. */
int jr_tls_start(struct jr_tls_conn *t, struct jr_buf *out);
void jr_tls_conn_free(struct jr_tls_conn *t);
/* Feed ciphertext read from the socket. Decrypted bytes are appended to
 * plain, bytes to send (handshake, alerts) to out. Returns 0; 1 when the
 * peer ended the session cleanly (close_notify: plain holds all it sent);
 * or -1 when the session failed (reason() says why; send out, then close). */
int jr_tls_feed(struct jr_tls_conn *t, const char *data, size_t len, struct jr_buf *plain,
                struct jr_buf *out);
/* Encrypt plaintext; ciphertext is appended to out. Returns 0 or -1. */
int jr_tls_encrypt(struct jr_tls_conn *t, const char *data, size_t len, struct jr_buf *out);
/* A close_notify alert for a clean end, appended to out. */
void jr_tls_close_notify(struct jr_tls_conn *t, struct jr_buf *out);
int jr_tls_established(const struct jr_tls_conn *t);
const char *jr_tls_reason(const struct jr_tls_conn *t);
/* Why the peer's certificate was refused, NULL when it was not. */
const char *jr_tls_verify_error(const struct jr_tls_conn *t);
/* After the handshake: the client certificate's subject ("" if none), and
 * the negotiated protocol and cipher. */
const char *jr_tls_peer_subject(const struct jr_tls_conn *t);
const char *jr_tls_peer_issuer(const struct jr_tls_conn *t);
const char *jr_tls_version(const struct jr_tls_conn *t);
const char *jr_tls_cipher(const struct jr_tls_conn *t);

#endif
