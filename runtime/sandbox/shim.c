/* The helper as a shim that outlives its daemon (--spool): it listens on
 * its control socket (--control, an abstract name: no file) so that a
 * later daemon can attach, keeps the newest connection (its own uid only),
 * wakes it when output was spooled, counts the time with no daemon
 * attached (the orphan timeout), sends it the outcome at the end and waits
 * for its acknowledgement. The contract: runtime/exec/record.h. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sandbox/internal.h"

int jr_sb_shim_open(struct jr_sb_shim *sh, const struct jr_sandbox_opts *o,
                    struct jr_sb_err *e)
{
    struct sockaddr_un a;
    socklen_t len;

    memset(sh, 0, sizeof(*sh));
    sh->lfd = sh->conn = -1;
    sh->alone_since = -1;
    sh->orphan_ms = o->orphan_timeout_ms;
    sh->uid = geteuid();
    if (o->control) {
        sh->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (sh->lfd < 0)
            return jr_sb_fail(e, "control", errno, "socket");
        memset(&a, 0, sizeof(a));
        a.sun_family = AF_UNIX;
        memcpy(a.sun_path + 1, o->control, strlen(o->control)); /* abstract */
        len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(o->control));
        if (bind(sh->lfd, (struct sockaddr *)&a, len) || listen(sh->lfd, 4))
            return jr_sb_fail(e, "control", errno, "@%s", o->control);
    }
    /* The first daemon's end, ours from now on. Our wakes must never block
     * the task's output, and a gone daemon is an error, not a SIGPIPE
     * (ignored: run.c). Only a socket tells that its daemon went; a file
     * or pipe given by hand is only written to. */
    sh->conn = o->status_fd;
    fcntl(sh->conn, F_SETFL, fcntl(sh->conn, F_GETFL) | O_NONBLOCK);
    sh->conn_watched = getsockopt(sh->conn, SOL_SOCKET, SO_TYPE, &(int){0},
                                  &(socklen_t){sizeof(int)}) == 0;
    return 0;
}

static void drop_conn(struct jr_sb_shim *sh, int64_t now)
{
    if (sh->conn < 0)
        return;
    close(sh->conn);
    sh->conn = -1;
    sh->alone_since = now;
}

void jr_sb_shim_fds(const struct jr_sb_shim *sh, struct pollfd *p)
{
    p[0].fd = sh->lfd;
    p[0].events = POLLIN;
    p[1].fd = sh->conn_watched ? sh->conn : -1;
    p[1].events = POLLIN;
}

/* A daemon connects: the newest one is the one attached. */
static void accept_one(struct jr_sb_shim *sh)
{
    struct ucred cr;
    socklen_t len = sizeof(cr);
    int fd = accept4(sh->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

    if (fd < 0)
        return;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) || cr.uid != sh->uid) {
        close(fd);
        return;
    }
    if (sh->conn >= 0)
        close(sh->conn);
    sh->conn = fd;
    sh->conn_watched = 1;
    sh->alone_since = -1;
    jr_sb_shim_wake(sh); /* whatever is spooled: read it from your offset */
}

void jr_sb_shim_handle(struct jr_sb_shim *sh, const struct pollfd *p, int64_t now)
{
    if (p[0].fd >= 0 && (p[0].revents & POLLIN))
        accept_one(sh);
    if (p[1].fd >= 0 && p[1].fd == sh->conn && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
        char buf[64];
        ssize_t n;
        do
            n = read(sh->conn, buf, sizeof(buf));
        while (n < 0 && errno == EINTR);
        /* The daemon sends nothing while the task runs: the end is its end. */
        if (n == 0 || (n < 0 && errno != EAGAIN))
            drop_conn(sh, now);
    }
}

int jr_sb_shim_check(struct jr_sb_shim *sh, int64_t now, int64_t *wait)
{
    if (sh->conn >= 0 || sh->orphan_ms <= 0)
        return 0;
    if (sh->alone_since < 0)
        sh->alone_since = now;
    if (now - sh->alone_since >= sh->orphan_ms)
        return 1;
    if (*wait < 0 || sh->alone_since + sh->orphan_ms - now < *wait)
        *wait = sh->alone_since + sh->orphan_ms - now;
    return 0;
}

void jr_sb_shim_wake(struct jr_sb_shim *sh)
{
    ssize_t n;

    if (sh->conn < 0)
        return;
    do
        n = write(sh->conn, "o", 1);
    while (n < 0 && errno == EINTR);
    /* A full socket already holds a wake the daemon has not read. */
    if (n < 0 && errno != EAGAIN)
        drop_conn(sh, jr_sb_now_ms());
}

int jr_sb_shim_send(struct jr_sb_shim *sh, const char *line, size_t len)
{
    int sent;

    /* No daemon can attach any more. */
    if (sh->lfd >= 0) {
        close(sh->lfd);
        sh->lfd = -1;
    }
    if (sh->conn < 0)
        return -1;
    sent = jr_sb_write_full_wait(sh->conn, line, len, 2000) == 0;
    if (sent && sh->conn_watched)
        shutdown(sh->conn, SHUT_WR); /* the daemon reads to EOF, then answers */
    else
        drop_conn(sh, jr_sb_now_ms());
    return sent ? 0 : -1;
}

int jr_sb_shim_acked(struct jr_sb_shim *sh, int64_t ms)
{
    int64_t end = jr_sb_now_ms() + ms;
    int acked = 0;

    while (sh->conn >= 0 && !acked) {
        struct pollfd p = {sh->conn, POLLIN, 0};
        char c;
        ssize_t n;
        int64_t left = end - jr_sb_now_ms();
        if (left <= 0 || (poll(&p, 1, (int)left) < 0 && errno != EINTR))
            break;
        do
            n = read(sh->conn, &c, 1);
        while (n < 0 && errno == EINTR);
        if (n == 1)
            acked = c == 'k';
        else if (n == 0 || errno != EAGAIN)
            break;
    }
    drop_conn(sh, jr_sb_now_ms());
    return acked;
}

void jr_sb_shim_close(struct jr_sb_shim *sh)
{
    if (sh->lfd >= 0)
        close(sh->lfd);
    if (sh->conn >= 0)
        close(sh->conn);
    sh->lfd = sh->conn = -1;
}
