/* The HTTP client (http/client.c, http/url.c) against a loopback server in
 * the same loop, and the client side of http/tls.c against its server side
 * in memory, with a throwaway CA from `jobrt certs`. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "buf.h"
#include "http/client.h"
#include "http/tls.h"
#include "unit.h"

int jr_certs_main(int argc, char **argv);

static char certs[64];

/* ---- URLs ---- */

TEST(url_parse)
{
    struct jr_http_url u;
    char why[200];

    CHECK_INT(jr_http_url_parse("http://example.com/a/b?x=1#frag", &u, why, sizeof why), 0);
    CHECK_STR(u.host, "example.com");
    CHECK_STR(u.port, "80");
    CHECK_STR(u.path, "/a/b?x=1");
    CHECK_INT(u.tls, 0);
    CHECK_INT(jr_http_url_parse("HTTPS://[::1]:8443", &u, why, sizeof why), 0);
    CHECK_STR(u.host, "::1");
    CHECK_STR(u.port, "8443");
    CHECK_STR(u.path, "/");
    CHECK_INT(u.tls, 1);
    CHECK_INT(jr_http_url_parse("ftp://example.com/", &u, why, sizeof why), -1);
    CHECK_STR(why, "not an http:// or https:// URL");
    CHECK_INT(jr_http_url_parse("http://user:pw@example.com/", &u, why, sizeof why), -1);
    CHECK_STR(why, "credentials in URLs are not supported");
    CHECK_INT(jr_http_url_parse("http:///nohost", &u, why, sizeof why), -1);
}

/* ---- a loopback server: one canned response per path ---- */

struct server {
    uv_tcp_t tcp;
    int port;
    int requests;
};

struct client {
    uv_tcp_t tcp;
    struct server *srv;
    char req[4096];
    size_t len;
    int answered;
};

static void on_client_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_sent(uv_write_t *w, int status)
{
    struct client *c = w->data;

    (void)status;
    free(w);
    uv_close((uv_handle_t *)&c->tcp, on_client_closed);
}

static const char *response_for(const char *path, int port, char *buf, size_t size)
{
    if (strncmp(path, "/ok ", 4) == 0)
        return "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    if (strncmp(path, "/chunked ", 9) == 0)
        return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n";
    if (strncmp(path, "/redirect ", 10) == 0) {
        snprintf(buf, size, "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:%d/ok\r\n"
                 "Content-Length: 0\r\n\r\n", port);
        return buf;
    }
    if (strncmp(path, "/loop ", 6) == 0)
        return "HTTP/1.1 301 Moved\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n";
    if (strncmp(path, "/big ", 5) == 0)
        return "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
    return "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    struct client *c = h->data;

    (void)hint;
    b->base = c->req + c->len;
    b->len = sizeof c->req - 1 - c->len;
}

static void on_req(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct client *c = s->data;
    char buf[256];
    const char *resp;
    uv_write_t *w;
    uv_buf_t out;

    (void)b;
    if (n < 0) {
        if (!c->answered)
            uv_close((uv_handle_t *)s, on_client_closed);
        return;
    }
    c->len += (size_t)n;
    c->req[c->len] = 0;
    if (c->answered || !strstr(c->req, "\r\n\r\n"))
        return;
    c->answered = 1;
    c->srv->requests++;
    uv_read_stop(s);
    resp = response_for(c->req + 4, c->srv->port, buf, sizeof buf);
    w = malloc(sizeof *w);
    w->data = c;
    out = uv_buf_init((char *)resp, (unsigned)strlen(resp));
    uv_write(w, s, &out, 1, on_sent);
}

static void on_conn(uv_stream_t *s, int status)
{
    struct client *c = calloc(1, sizeof *c);

    (void)status;
    c->srv = s->data;
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(s, (uv_stream_t *)&c->tcp) == 0)
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_req);
    else
        uv_close((uv_handle_t *)&c->tcp, on_client_closed);
}

static void server_open(uv_loop_t *loop, struct server *srv)
{
    struct sockaddr_in a;
    struct sockaddr_storage got;
    int len = sizeof got;

    memset(srv, 0, sizeof *srv);
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(loop, &srv->tcp);
    srv->tcp.data = srv;
    CHECK_INT(uv_tcp_bind(&srv->tcp, (struct sockaddr *)&a, 0), 0);
    CHECK_INT(uv_listen((uv_stream_t *)&srv->tcp, 16, on_conn), 0);
    uv_tcp_getsockname(&srv->tcp, (struct sockaddr *)&got, &len);
    srv->port = ntohs(((struct sockaddr_in *)&got)->sin_port);
}

/* ---- downloads ---- */

struct result {
    int done, ok;
    char reason[300];
};

static void on_got(void *arg, int ok, const char *reason)
{
    struct result *r = arg;

    r->done++;
    r->ok = ok;
    snprintf(r->reason, sizeof r->reason, "%s", reason);
}

static void on_guard(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

/* GETs path from srv into a temporary file; returns what the file holds. */
static void get(uv_loop_t *loop, struct server *srv, const char *path, int64_t max,
                struct result *r, char *body, size_t size)
{
    char url[128], file[] = "/tmp/jobrt-get-XXXXXX";
    struct jr_http_get *g = NULL;
    struct jr_err e = { 0, "" };
    struct jr_tls_ctx *tls = NULL;
    uv_timer_t guard;
    int fd = mkstemp(file), expired = 0, rfd;
    ssize_t n;

    memset(r, 0, sizeof *r);
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", srv->port, path);
    CHECK_INT(jr_http_get_start(loop, &tls, url, fd, max, 5000, on_got, r, &g, &e), JR_OK);
    uv_timer_init(loop, &guard);
    guard.data = &expired;
    uv_timer_start(&guard, on_guard, 10000, 0);
    while (!r->done && !expired)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    for (int i = 0; i < 100 && uv_run(loop, UV_RUN_NOWAIT); i++)
        ; /* the download's closes */
    CHECK_INT(r->done, 1);
    CHECK(tls == NULL); /* plain http never builds the TLS context */
    rfd = open(file, O_RDONLY);
    n = read(rfd, body, size - 1);
    body[n > 0 ? n : 0] = 0;
    close(rfd);
    unlink(file);
}

TEST(get_bodies_redirects_and_failures)
{
    uv_loop_t loop;
    struct server srv;
    struct result r;
    char body[256];

    uv_loop_init(&loop);
    server_open(&loop, &srv);
    get(&loop, &srv, "/ok", 1000, &r, body, sizeof body);
    CHECK_INT(r.ok, 1);
    CHECK_STR(body, "hello");
    get(&loop, &srv, "/chunked", 1000, &r, body, sizeof body);
    CHECK_INT(r.ok, 1);
    CHECK_STR(body, "abcdefg");
    get(&loop, &srv, "/redirect", 1000, &r, body, sizeof body);
    CHECK_INT(r.ok, 1);
    CHECK_STR(body, "hello");
    get(&loop, &srv, "/missing", 1000, &r, body, sizeof body);
    CHECK_INT(r.ok, 0);
    CHECK_STR(r.reason, "HTTP 404 Not Found");
    get(&loop, &srv, "/big", 10, &r, body, sizeof body);
    CHECK_INT(r.ok, 0);
    CHECK_STR(r.reason, "too large: 100 bytes, more than the limit of 10");
    srv.requests = 0;
    get(&loop, &srv, "/loop", 1000, &r, body, sizeof body);
    CHECK_INT(r.ok, 0);
    CHECK_STR(r.reason, "more than 3 redirects");
    CHECK_INT(srv.requests, 4);
    uv_close((uv_handle_t *)&srv.tcp, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&loop), 0);
}

TEST(get_refuses_a_bad_url_and_closes_the_fd)
{
    uv_loop_t loop;
    struct jr_http_get *g = (void *)1;
    struct jr_err e = { 0, "" };
    struct jr_tls_ctx *tls = NULL;
    struct result r;
    int fd = open("/dev/null", O_WRONLY);

    uv_loop_init(&loop);
    CHECK_INT(jr_http_get_start(&loop, &tls, "gopher://x/", fd, 10, 1000, on_got, &r, &g, &e),
              JR_E_INVALID);
    CHECK(g == NULL);
    CHECK(strstr(e.msg, "not an http") != NULL);
    CHECK(fcntl(fd, F_GETFD) == -1); /* taken and closed */
    CHECK_INT(uv_loop_close(&loop), 0);
}

/* ---- TLS: client against server, in memory ---- */

static struct jr_tls_ctx *server_ctx(void)
{
    char crt[128], key[128], err[300];
    struct jr_tls_options o = { crt, key, NULL, 0 };
    struct jr_tls_ctx *ctx = NULL;

    snprintf(crt, sizeof crt, "%s/server.crt", certs);
    snprintf(key, sizeof key, "%s/server.key", certs);
    CHECK_INT(jr_tls_ctx_new(&o, &ctx, err, sizeof err), 0);
    return ctx;
}

/* Passes flights between the two until neither has more to say (bounded).
 * Returns the client's last feed result. */
static int pump(struct jr_tls_conn *cli, struct jr_tls_conn *srv, struct jr_buf *to_srv,
                struct jr_buf *cli_plain, struct jr_buf *srv_plain)
{
    int rc = 0;

    for (int i = 0; i < 10 && to_srv->len; i++) {
        struct jr_buf to_cli = { 0 };
        int s = jr_tls_feed(srv, to_srv->data, to_srv->len, srv_plain, &to_cli);
        jr_buf_reset(to_srv);
        if (to_cli.len)
            rc = jr_tls_feed(cli, to_cli.data, to_cli.len, cli_plain, to_srv);
        jr_buf_free(&to_cli);
        if (s != 0 || rc != 0)
            break;
    }
    return rc;
}

TEST(tls_client_verifies_and_talks)
{
    char ca[128], err[300];
    struct jr_tls_ctx *sctx = server_ctx(), *cctx = NULL;
    struct jr_tls_conn *cli, *srv;
    struct jr_buf wire = { 0 }, cplain = { 0 }, splain = { 0 }, back = { 0 };

    snprintf(ca, sizeof ca, "%s/ca.crt", certs);
    CHECK_INT(jr_tls_client_ctx_new(ca, &cctx, err, sizeof err), 0);
    for (int k = 0; k < 2; k++) {
        const char *host = k ? "127.0.0.1" : "localhost";
        cli = jr_tls_client_new(cctx, host, err, sizeof err);
        srv = jr_tls_conn_new(sctx);
        CHECK(cli && srv);
        CHECK_INT(jr_tls_start(cli, &wire), 0);
        CHECK(wire.len > 0);
        CHECK_INT(pump(cli, srv, &wire, &cplain, &splain), 0);
        CHECK_INT(jr_tls_established(cli), 1);
        CHECK(jr_tls_verify_error(cli) == NULL);
        CHECK_INT(jr_tls_encrypt(cli, "GET /", 5, &wire), 0);
        pump(cli, srv, &wire, &cplain, &splain);
        CHECK_INT(splain.len, 5);
        /* the server answers and ends the session: the client sees 1 */
        CHECK_INT(jr_tls_encrypt(srv, "done", 4, &back), 0);
        jr_tls_close_notify(srv, &back);
        CHECK_INT(jr_tls_feed(cli, back.data, back.len, &cplain, &wire), 1);
        CHECK_INT(cplain.len, 4);
        CHECK(memcmp(cplain.data, "done", 4) == 0);
        jr_buf_reset(&wire);
        jr_buf_reset(&cplain);
        jr_buf_reset(&splain);
        jr_buf_reset(&back);
        jr_tls_conn_free(cli);
        jr_tls_conn_free(srv);
    }
    jr_buf_free(&wire);
    jr_buf_free(&cplain);
    jr_buf_free(&splain);
    jr_buf_free(&back);
    jr_tls_ctx_free(cctx);
    jr_tls_ctx_free(sctx);
}

TEST(tls_client_refuses_a_name_the_certificate_lacks_and_an_unknown_ca)
{
    char ca[128], err[300];
    struct jr_tls_ctx *sctx = server_ctx(), *cctx = NULL, *sys = NULL;
    struct jr_tls_conn *cli, *srv;
    struct jr_buf wire = { 0 }, cplain = { 0 }, splain = { 0 };

    snprintf(ca, sizeof ca, "%s/ca.crt", certs);
    CHECK_INT(jr_tls_client_ctx_new(ca, &cctx, err, sizeof err), 0);
    cli = jr_tls_client_new(cctx, "example.com", err, sizeof err);
    srv = jr_tls_conn_new(sctx);
    CHECK_INT(jr_tls_start(cli, &wire), 0);
    CHECK_INT(pump(cli, srv, &wire, &cplain, &splain), -1);
    CHECK_INT(jr_tls_established(cli), 0);
    CHECK(jr_tls_verify_error(cli) && strstr(jr_tls_verify_error(cli), "mismatch"));
    jr_tls_conn_free(cli);
    jr_tls_conn_free(srv);
    jr_buf_reset(&wire);
    /* the system store does not know the throwaway CA */
    CHECK_INT(jr_tls_client_ctx_new(NULL, &sys, err, sizeof err), 0);
    cli = jr_tls_client_new(sys, "localhost", err, sizeof err);
    srv = jr_tls_conn_new(sctx);
    CHECK_INT(jr_tls_start(cli, &wire), 0);
    CHECK_INT(pump(cli, srv, &wire, &cplain, &splain), -1);
    CHECK(jr_tls_verify_error(cli) != NULL);
    jr_tls_conn_free(cli);
    jr_tls_conn_free(srv);
    jr_buf_free(&wire);
    jr_buf_free(&cplain);
    jr_buf_free(&splain);
    jr_tls_ctx_free(sys);
    jr_tls_ctx_free(cctx);
    jr_tls_ctx_free(sctx);
}

TEST(tls_client_ctx_names_a_ca_file_it_cannot_load)
{
    char err[300] = "";
    struct jr_tls_ctx *ctx = NULL;

    CHECK_INT(jr_tls_client_ctx_new("/nonexistent/ca.pem", &ctx, err, sizeof err), -1);
    CHECK(ctx == NULL);
    CHECK(strstr(err, "cannot load the CA certificates from /nonexistent/ca.pem") != NULL);
}

int main(void)
{
    char dir[] = "/tmp/jobrt-certs-XXXXXX";
    char *argv[] = { "jobrt", "certs", dir, NULL };
    char cmd[128];
    int failed;

    signal(SIGPIPE, SIG_IGN);
    if (!mkdtemp(dir) || jr_certs_main(3, argv) != 0) {
        printf("not ok - %s: jobrt certs into %s\n", __FILE__, dir);
        return 1;
    }
    snprintf(certs, sizeof certs, "%s", dir);
    RUN(url_parse);
    RUN(get_bodies_redirects_and_failures);
    RUN(get_refuses_a_bad_url_and_closes_the_fd);
    RUN(tls_client_verifies_and_talks);
    RUN(tls_client_refuses_a_name_the_certificate_lacks_and_an_unknown_ca);
    RUN(tls_client_ctx_names_a_ca_file_it_cannot_load);
    failed = UNIT_DONE();
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return failed;
}
