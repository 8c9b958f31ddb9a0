/* Shared by the HTTP client's files (http/client.c: connection, TLS,
 * redirects; http/client_body.c: the response and the body's file). Not for
 * use outside them. */
#ifndef JR_HTTP_CLIENT_INTERNAL_H
#define JR_HTTP_CLIENT_INTERNAL_H

#include "buf.h"
#include "http/client.h"
#include "http/client_parse.h"

#define READ_SIZE 65536         /* plaintext handled per read */
/* Ciphertext read per callback: with what a partial record left behind,
 * the plaintext it yields always fits one READ_SIZE buffer. */
#define TLS_READ_SIZE (READ_SIZE / 2)

/* One connection attempt: its own handle, requests and TLS session, freed
 * when the handle is closed, so a redirect never reuses memory libuv still
 * holds. */
struct conn {
    uv_tcp_t tcp;
    uv_connect_t conn;
    struct jr_tls_conn *tls;     /* https only */
    int sent;                    /* https: the request is on its way */
    struct jr_http_get *f;
};

/* One download, across its redirects. */
struct jr_http_get {
    uv_loop_t *loop;
    struct jr_tls_ctx **tls;     /* the owner's slot for the shared context */
    char url[2048];
    struct jr_http_url u;
    int fd;
    int64_t max_bytes, written, timeout_ms;
    int redirects;
    jr_http_get_cb cb;
    void *arg;
    int finished, aborted;
    int pending;                 /* open handles + queued requests */
    uv_timer_t timer;
    uv_getaddrinfo_t gai;
    int gai_active;
    struct addrinfo *ai, *next;
    struct conn *cx;             /* the current connection, NULL if none */
    int paused;                  /* reading stopped while the file is written */
    char req[2600];
    uv_fs_t fs;
    int writing;
    struct jr_http_resp resp;    /* the current connection's response */
    char rbuf[READ_SIZE];
    struct jr_buf plain, cipher; /* https: out of one read, to send */
    char *wbuf;                  /* body bytes waiting for the file */
    size_t wlen;
};


/* client.c */
/* Ends the download once: the callback, then everything is closed. */
void jr_http_get_finish(struct jr_http_get *f, int ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Frees f once nothing of it is pending. */
void jr_http_get_maybe_free(struct jr_http_get *f);
/* Goes to f->location (a redirect). */
void jr_http_get_follow(struct jr_http_get *f);
/* Reading the connection again, after the body was written. */
void jr_http_get_resume(struct jr_http_get *f);

/* client_body.c: plaintext response bytes (len may be 0, at most
 * READ_SIZE), then the end of the stream if eof: parse, follow a redirect,
 * or hand the body to the file. */
void jr_http_get_deliver(struct jr_http_get *f, const char *data, size_t len, int eof);

#endif
