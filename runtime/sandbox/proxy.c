/* The allow-list proxy of network mode `allow`, run by the supervising
 * helper in the host network namespace. pid 1 makes the listening socket on
 * 127.0.0.1:PORT inside the task's namespace and passes it here over a
 * socketpair; each connection's request head is read (bounded in size and
 * time), its host checked against --allow-domain, resolved and connected
 * from the host side, and then bytes are relayed both ways. Everything else
 * gets a 4xx/5xx and is closed. Driven by the supervisor's poll loop:
 * nothing here blocks (names resolve with getaddrinfo_a). */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sandbox/internal.h"

#define HEAD_MAX 8192
#define HEAD_MS 10000
#define CONNECT_MS 15000
#define RESOLVE_TICK_MS 10
#define BUF_SIZE 16384

enum { C_HEAD, C_RESOLVE, C_CONNECT, C_RELAY };

struct buf {
    char d[BUF_SIZE];
    size_t off, len;
};

struct jr_sb_pconn {
    int state;
    int cfd, ufd;                /* the task's side, the upstream */
    int64_t deadline;
    char head[HEAD_MAX + 1];
    size_t hlen;
    char method[16], host[256], port[8];
    struct gaicb gcb;
    struct addrinfo hints, *ai, *next;
    struct buf up, down;         /* task -> upstream, upstream -> task */
    int c_eof, u_eof, c_shut, u_shut;
    int match;                   /* JR_SB_MATCH_*: how the host was allowed */
    int internal;                /* addresses skipped as host-internal */
    int connect_err;             /* the last failed connect's errno */
};

static void plog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void plog(const char *fmt, ...)
{
    va_list ap;
    char line[512];
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "jobrt sandbox: proxy: %s\n", line);
    fflush(stderr);
}

void jr_sb_proxy_init(struct jr_sb_proxy *px, const struct jr_sandbox_opts *o, int ctl_fd)
{
    memset(px, 0, sizeof(*px));
    px->o = o;
    px->ctl_fd = ctl_fd;
    px->lfd = -1;
}

/* Frees c unless a lookup still runs in glibc's thread: then it is left
 * (the helper exits soon; at most MAX_CONNS of them). */
static void conn_free(struct jr_sb_proxy *px, int i)
{
    struct jr_sb_pconn *c = px->c[i];
    int leak = 0;
    if (c->state == C_RESOLVE && gai_error(&c->gcb) == EAI_INPROGRESS)
        leak = gai_cancel(&c->gcb) == EAI_NOTCANCELED;
    if (c->cfd >= 0)
        close(c->cfd);
    if (c->ufd >= 0)
        close(c->ufd);
    if (c->ai)
        freeaddrinfo(c->ai);
    else if (!leak && c->gcb.ar_result)
        freeaddrinfo(c->gcb.ar_result);
    if (!leak)
        free(c);
    px->c[i] = NULL;
    px->nconns--;
}

/* Answers with a short error and closes the connection. */
static void refuse(struct jr_sb_proxy *px, int i, int status, const char *why)
{
    struct jr_sb_pconn *c = px->c[i];
    const char *text = status == 403 ? "Forbidden" : status == 400 ? "Bad Request"
                     : status == 502 ? "Bad Gateway" : status == 504 ? "Gateway Timeout"
                     : "Service Unavailable";
    char msg[600];
    int n = snprintf(msg, sizeof(msg), "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
                     "Connection: close\r\nContent-Length: %zu\r\n\r\njobrt proxy: %s\n",
                     status, text, strlen(why) + 13, why);
    if (n > 0 && (size_t)n < sizeof(msg))
        (void)send(c->cfd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    conn_free(px, i);
}

static void lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

/* "host:port", "[v6]:port" or "host" (port = def) into c->host/c->port.
 * 0 or -1 when malformed. */
static int split_authority(struct jr_sb_pconn *c, const char *a, size_t n, const char *def)
{
    const char *colon = NULL, *h = a, *end = a + n;
    size_t hl;
    if (n == 0 || memchr(a, '@', n))
        return -1; /* no userinfo */
    if (a[0] == '[') {
        const char *rb = memchr(a, ']', n);
        if (!rb)
            return -1;
        h = a + 1;
        hl = (size_t)(rb - h);
        if (rb + 1 < end && rb[1] != ':')
            return -1;
        colon = rb + 1 < end ? rb + 1 : NULL;
    } else {
        colon = memchr(a, ':', n);
        hl = colon ? (size_t)(colon - a) : n;
    }
    if (hl == 0 || hl >= sizeof(c->host))
        return -1;
    memcpy(c->host, h, hl);
    c->host[hl] = '\0';
    lower(c->host);
    for (const char *p = c->host; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' ||
              *p == '-' || *p == '_' || *p == ':'))
            return -1;
    if (colon) {
        size_t pl = (size_t)(end - colon - 1);
        long v = 0;
        if (pl == 0 || pl > 5)
            return -1;
        for (size_t k = 0; k < pl; k++) {
            if (colon[1 + k] < '0' || colon[1 + k] > '9')
                return -1;
            v = v * 10 + (colon[1 + k] - '0');
        }
        if (v < 1 || v > 65535)
            return -1;
        snprintf(c->port, sizeof(c->port), "%ld", v);
    } else if (def) {
        snprintf(c->port, sizeof(c->port), "%s", def);
    } else {
        return -1;
    }
    return 0;
}

static int hdr_is(const char *line, size_t n, const char *name)
{
    size_t k = strlen(name);
    return n > k && strncasecmp(line, name, k) == 0 && line[k] == ':';
}

static void buf_put(struct buf *b, const char *d, size_t n)
{
    if (n > BUF_SIZE - b->len)
        n = BUF_SIZE - b->len; /* cannot happen: heads are < BUF_SIZE / 2 */
    memcpy(b->d + b->len, d, n);
    b->len += n;
}

/* The head is complete (ends at end, "\r\n\r\n" included): decide. */
static void on_head(struct jr_sb_proxy *px, int i, size_t end)
{
    struct jr_sb_pconn *c = px->c[i];
    char *line_end = strstr(c->head, "\r\n"), *sp1, *sp2, why[400];
    int connect;
    const char *target, *ver;
    c->head[end - 2] = '\0'; /* the head's lines, the last one ending in \r\n */
    *line_end = '\0';
    sp1 = strchr(c->head, ' ');
    sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || (size_t)(sp1 - c->head) >= sizeof(c->method) ||
        strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
        plog("refused a malformed request");
        refuse(px, i, 400, "malformed request line");
        return;
    }
    *sp1 = *sp2 = '\0';
    memcpy(c->method, c->head, (size_t)(sp1 - c->head) + 1);
    target = sp1 + 1;
    ver = sp2 + 1;
    connect = strcmp(c->method, "CONNECT") == 0;
    if (connect) {
        if (split_authority(c, target, strlen(target), NULL)) {
            plog("refused CONNECT %.200s: not host:port", target);
            refuse(px, i, 400, "CONNECT needs host:port");
            return;
        }
    } else {
        size_t al;
        if (strncasecmp(target, "http://", 7) != 0) {
            plog("refused %s %.200s: not an absolute http:// URL", c->method, target);
            refuse(px, i, 400, "a proxy request needs an absolute http:// URL"
                   " (use CONNECT for https)");
            return;
        }
        target += 7;
        al = strcspn(target, "/?#");
        if (split_authority(c, target, al, "80")) {
            plog("refused %s http://%.200s: bad host", c->method, target);
            refuse(px, i, 400, "bad host in the URL");
            return;
        }
        target += al;
    }
    c->match = jr_sandbox_domain_allowed(px->o->domains, px->o->ndomains, c->host);
    if (!c->match) {
        plog("refused %s %s:%s: not in the network allow-list", c->method, c->host, c->port);
        snprintf(why, sizeof(why), "%s is not in this task's network allow-list", c->host);
        refuse(px, i, 403, why);
        return;
    }
    /* What goes upstream first: nothing for CONNECT (the 200 goes back once
     * connected); for http, the head in origin form with "Connection: close"
     * (one request per proxied connection), then whatever followed it. */
    if (!connect) {
        char *p = line_end + 2;
        int has_host = 0;
        char first[HEAD_MAX + 32];
        int n = snprintf(first, sizeof(first), "%s %s%s %s\r\n", c->method,
                         *target == '/' ? "" : "/", target, ver);
        buf_put(&c->up, first, (size_t)n);
        while (*p) {
            char *nl = strstr(p, "\r\n");
            size_t ll = nl ? (size_t)(nl - p) : strlen(p);
            if (!hdr_is(p, ll, "proxy-connection") && !hdr_is(p, ll, "connection") &&
                !hdr_is(p, ll, "proxy-authorization") && !hdr_is(p, ll, "keep-alive")) {
                has_host |= hdr_is(p, ll, "host");
                buf_put(&c->up, p, ll);
                buf_put(&c->up, "\r\n", 2);
            }
            p += ll + (nl ? 2 : 0);
        }
        if (!has_host) {
            n = snprintf(first, sizeof(first), "Host: %s\r\n", c->host);
            buf_put(&c->up, first, (size_t)n);
        }
        buf_put(&c->up, "Connection: close\r\n\r\n", 21);
    }
    buf_put(&c->up, c->head + end, c->hlen - end);
    c->hints.ai_family = AF_UNSPEC;
    c->hints.ai_socktype = SOCK_STREAM;
    c->gcb.ar_name = c->host;
    c->gcb.ar_service = c->port;
    c->gcb.ar_request = &c->hints;
    struct gaicb *list[1] = {&c->gcb};
    if (getaddrinfo_a(GAI_NOWAIT, list, 1, NULL)) {
        refuse(px, i, 502, "name lookup failed to start");
        return;
    }
    c->state = C_RESOLVE;
    c->deadline = px->now + CONNECT_MS;
}

static void read_head(struct jr_sb_proxy *px, int i)
{
    struct jr_sb_pconn *c = px->c[i];
    ssize_t n = recv(c->cfd, c->head + c->hlen, HEAD_MAX - c->hlen, MSG_DONTWAIT);
    char *e;
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        conn_free(px, i);
        return;
    }
    c->hlen += (size_t)n;
    c->head[c->hlen] = '\0';
    if (memchr(c->head, '\0', c->hlen)) {
        refuse(px, i, 400, "NUL in the request head");
        return;
    }
    if ((e = strstr(c->head, "\r\n\r\n")) != NULL)
        on_head(px, i, (size_t)(e - c->head) + 4);
    else if (c->hlen >= HEAD_MAX)
        refuse(px, i, 400, "request head too large");
}

/* Tries the next resolved address; refuses when none is left. */
static void try_connect(struct jr_sb_proxy *px, int i)
{
    struct jr_sb_pconn *c = px->c[i];
    char why[400];
    int err = c->connect_err;
    for (; c->next; c->next = c->next->ai_next) {
        struct addrinfo *a = c->next;
        if (c->match == JR_SB_MATCH_WILDCARD && jr_sandbox_addr_host_internal(a->ai_addr)) {
            c->internal++;
            continue;
        }
        if (c->ufd >= 0)
            close(c->ufd);
        c->ufd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        a->ai_protocol);
        if (c->ufd < 0) {
            err = errno;
            continue;
        }
        if (connect(c->ufd, a->ai_addr, a->ai_addrlen) == 0 || errno == EINPROGRESS) {
            c->state = C_CONNECT;
            c->next = a->ai_next;
            return;
        }
        err = errno;
    }
    if (c->internal && !err) {
        plog("refused %s %s:%s: it resolves to a host-internal address", c->method, c->host,
             c->port);
        snprintf(why, sizeof(why), "%s resolves to a loopback, link-local or other "
                 "host-internal address, which a *.suffix allow-list entry does not open "
                 "(list the name itself)", c->host);
        refuse(px, i, 403, why);
        return;
    }
    plog("%s %s:%s: connect failed: %s", c->method, c->host, c->port,
          strerror(err ? err : ECONNREFUSED));
    snprintf(why, sizeof(why), "cannot connect to %s:%s: %s", c->host, c->port,
             strerror(err ? err : ECONNREFUSED));
    refuse(px, i, 502, why);
}

static void check_resolved(struct jr_sb_proxy *px, int i)
{
    struct jr_sb_pconn *c = px->c[i];
    char why[400];
    int r = gai_error(&c->gcb);
    if (r == EAI_INPROGRESS)
        return;
    if (r != 0) {
        plog("%s %s:%s: name lookup failed: %s", c->method, c->host, c->port,
              gai_strerror(r));
        snprintf(why, sizeof(why), "cannot resolve %s: %s", c->host, gai_strerror(r));
        c->state = C_HEAD; /* the lookup is over: nothing to cancel */
        refuse(px, i, 502, why);
        return;
    }
    c->ai = c->next = c->gcb.ar_result;
    c->state = C_HEAD;
    try_connect(px, i);
}

static void check_connected(struct jr_sb_proxy *px, int i)
{
    struct jr_sb_pconn *c = px->c[i];
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c->ufd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
        c->connect_err = err ? err : errno;
        try_connect(px, i);
        return;
    }
    c->state = C_RELAY;
    if (strcmp(c->method, "CONNECT") == 0)
        buf_put(&c->down, "HTTP/1.1 200 Connection established\r\n\r\n", 39);
}

/* Moves bytes one step: from fd into b (unless its reader hit EOF), and from
 * b out to the other side. -1 when the connection is over. */
static int pump(int from, int to, struct buf *b, int *eof, int *shut, short rev_from,
                short rev_to)
{
    if ((rev_from & (POLLIN | POLLHUP | POLLERR)) && !*eof && b->len < BUF_SIZE) {
        ssize_t n = recv(from, b->d + b->len, BUF_SIZE - b->len, MSG_DONTWAIT);
        if (n > 0)
            b->len += (size_t)n;
        else if (n == 0)
            *eof = 1;
        else if (errno != EAGAIN && errno != EINTR)
            return -1;
    }
    if (b->len > b->off && (rev_to & (POLLOUT | POLLERR | POLLHUP))) {
        ssize_t n = send(to, b->d + b->off, b->len - b->off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0)
            b->off += (size_t)n;
        else if (n < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        if (b->off == b->len)
            b->off = b->len = 0;
    }
    if (*eof && b->len == 0 && !*shut) {
        shutdown(to, SHUT_WR);
        *shut = 1;
    }
    return 0;
}

int jr_sb_proxy_fds(struct jr_sb_proxy *px, struct pollfd *p, int max, int64_t now,
                    int64_t *wait)
{
    int n = 0;
    px->now = now;
    px->npoll = 0;
#define ADD(fd_, ev_, who_, side_)                                             \
    do {                                                                       \
        if (n < max) {                                                         \
            p[n].fd = (ev_) ? (fd_) : -1; /* nothing wanted: no POLLHUP spin */\
            p[n].events = (short)(ev_);                                        \
            p[n].revents = 0;                                                  \
            px->who[n] = (who_);                                               \
            px->side[n] = (side_);                                             \
            n++;                                                               \
        }                                                                      \
    } while (0)
    if (px->ctl_fd >= 0)
        ADD(px->ctl_fd, POLLIN, -1, 0);
    if (px->lfd >= 0 && px->nconns < JR_SB_PROXY_MAX_CONNS)
        ADD(px->lfd, POLLIN, -1, 1);
    for (int i = 0; i < JR_SB_PROXY_MAX_CONNS; i++) {
        struct jr_sb_pconn *c = px->c[i];
        int64_t left;
        if (!c)
            continue;
        if (c->state == C_HEAD)
            ADD(c->cfd, POLLIN, i, 0);
        else if (c->state == C_CONNECT)
            ADD(c->ufd, POLLOUT, i, 1);
        else if (c->state == C_RELAY) {
            short ce = 0, ue = 0;
            if (!c->c_eof && c->up.len < BUF_SIZE)
                ce |= POLLIN;
            if (c->down.len > c->down.off)
                ce |= POLLOUT;
            if (!c->u_eof && c->down.len < BUF_SIZE)
                ue |= POLLIN;
            if (c->up.len > c->up.off)
                ue |= POLLOUT;
            ADD(c->cfd, ce, i, 0);
            ADD(c->ufd, ue, i, 1);
        }
        if (c->state == C_RESOLVE && (*wait < 0 || *wait > RESOLVE_TICK_MS))
            *wait = RESOLVE_TICK_MS;
        if (c->state != C_RELAY) {
            left = c->deadline > now ? c->deadline - now : 0;
            if (*wait < 0 || left < *wait)
                *wait = left;
        }
    }
#undef ADD
    px->npoll = n;
    return n;
}

static void receive_listener(struct jr_sb_proxy *px)
{
    int err = 0;
    char ctl[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {&err, sizeof(err)};
    struct msghdr m = {0};
    struct cmsghdr *cm;
    ssize_t n;
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctl;
    m.msg_controllen = sizeof(ctl);
    do
        n = recvmsg(px->ctl_fd, &m, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    cm = n > 0 ? CMSG_FIRSTHDR(&m) : NULL;
    if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
        memcpy(&px->lfd, CMSG_DATA(cm), sizeof(int));
        fcntl(px->lfd, F_SETFL, fcntl(px->lfd, F_GETFL) | O_NONBLOCK);
    } else {
        plog("no listening socket from the sandbox (%s): network allow runs as none",
              n == (ssize_t)sizeof(err) && err ? strerror(err) : "none sent");
    }
    close(px->ctl_fd);
    px->ctl_fd = -1;
}

static void accept_one(struct jr_sb_proxy *px)
{
    int fd = accept4(px->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    for (int i = 0; i < JR_SB_PROXY_MAX_CONNS; i++) {
        if (px->c[i])
            continue;
        struct jr_sb_pconn *c = calloc(1, sizeof(*c));
        if (!c)
            break;
        c->cfd = fd;
        c->ufd = -1;
        c->state = C_HEAD;
        c->deadline = px->now + HEAD_MS;
        px->c[i] = c;
        px->nconns++;
        return;
    }
    close(fd);
}

void jr_sb_proxy_run(struct jr_sb_proxy *px, const struct pollfd *p, int n, int64_t now)
{
    px->now = now;
    for (int k = 0; k < n && k < px->npoll; k++) {
        int i = px->who[k];
        short rev = p[k].revents;
        if (i < 0) {
            if (rev && px->side[k] == 0 && px->ctl_fd >= 0)
                receive_listener(px);
            else if (rev & POLLIN)
                accept_one(px);
            continue;
        }
        struct jr_sb_pconn *c = px->c[i];
        if (!c)
            continue;
        if (c->state == C_HEAD && rev)
            read_head(px, i);
        else if (c->state == C_CONNECT && rev)
            check_connected(px, i);
        else if (c->state == C_RELAY && px->side[k] == 0) {
            /* Both sides of a relay are adjacent: handle them together. */
            short urev = k + 1 < n && px->who[k + 1] == i ? p[k + 1].revents : 0;
            if (pump(c->cfd, c->ufd, &c->up, &c->c_eof, &c->u_shut, rev, urev) ||
                pump(c->ufd, c->cfd, &c->down, &c->u_eof, &c->c_shut, urev, rev) ||
                (c->c_eof && c->u_eof && c->up.len == 0 && c->down.len == 0))
                conn_free(px, i);
        }
    }
    for (int i = 0; i < JR_SB_PROXY_MAX_CONNS; i++) {
        struct jr_sb_pconn *c = px->c[i];
        if (c && c->state == C_RESOLVE)
            check_resolved(px, i);
        c = px->c[i];
        if (!c || c->state == C_RELAY || c->deadline > now)
            continue;
        if (c->state == C_HEAD) {
            refuse(px, i, 400, "timed out reading the request");
        } else {
            plog("%s %s:%s: timed out connecting", c->method, c->host, c->port);
            refuse(px, i, 504, "timed out connecting upstream");
        }
    }
}

void jr_sb_proxy_close(struct jr_sb_proxy *px)
{
    for (int i = 0; i < JR_SB_PROXY_MAX_CONNS; i++)
        if (px->c[i])
            conn_free(px, i);
    if (px->ctl_fd >= 0)
        close(px->ctl_fd);
    if (px->lfd >= 0)
        close(px->lfd);
    px->ctl_fd = px->lfd = -1;
}
