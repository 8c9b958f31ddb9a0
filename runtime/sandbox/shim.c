/* The helper as a shim that outlives its daemon (--run-dir): it listens on
 * its control socket (--control, an abstract name: no file to make or
 * remove) so that a later daemon can attach, keeps the newest connection
 * (its own uid only), wakes it when output was spooled, counts the time
 * with no daemon attached (the orphan timeout), and at the end appends its
 * outcome to the attempt's record before it lets the daemon go. The
 * contract: runtime/exec/record.h. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
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
    sh->dirfd = open(o->run_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (sh->dirfd < 0)
        return jr_sb_fail(e, "run_dir", errno, "%s", o->run_dir);
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
     * (ignored: run.c). */
    sh->conn = o->status_fd;
    fcntl(sh->conn, F_SETFL, fcntl(sh->conn, F_GETFL) | O_NONBLOCK);
    /* Only a socket tells that its daemon went (a file or pipe by hand is
     * only written to). */
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
        /* The daemon sends nothing: data is ignored, the end is its end. */
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

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Appends "result LINE" to the attempt's record if it names us: a daemon
 * writes it (with its helper's pid) before the task can start, so one
 * that names another pid means a later attempt has the folder (we never
 * ran: our gate closed with a daemon that went). Read and appended through
 * one fd, so a record replaced meanwhile is never written to. No record (a
 * `jobrt sandbox --run-dir` by hand): nothing is kept. */
static int append_result(const struct jr_sb_shim *sh, const char *line, size_t len)
{
    char text[2048], *p;
    ssize_t n;
    int fd = openat(sh->dirfd, JR_SB_RUN_RECORD, O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
    int rc = -1;

    if (fd < 0)
        return -1;
    do
        n = pread(fd, text, sizeof(text) - 1, 0);
    while (n < 0 && errno == EINTR);
    text[n > 0 ? n : 0] = 0;
    p = strstr(text, "\nhelper_pid ");
    if (p && strtol(p + 12, NULL, 10) == (long)getpid() &&
        write_all(fd, "result ", 7) == 0 && write_all(fd, line, len) == 0)
        rc = 0;
    close(fd);
    return rc;
}

int jr_sb_shim_finish(struct jr_sb_shim *sh, const char *line, size_t len)
{
    int rc;

    /* No daemon can attach any more: what it needs is in the record. */
    if (sh->lfd >= 0) {
        close(sh->lfd);
        sh->lfd = -1;
    }
    rc = append_result(sh, line, len);
    if (sh->conn >= 0) {
        /* The attached daemon reads it here without opening the record;
         * this blocks at most until the daemon reads or goes. */
        struct timeval tv = {2, 0};
        fcntl(sh->conn, F_SETFL, fcntl(sh->conn, F_GETFL) & ~O_NONBLOCK);
        setsockopt(sh->conn, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (write_all(sh->conn, line, len) == 0)
            rc = 0;
        close(sh->conn);
        sh->conn = -1;
    }
    return rc;
}

void jr_sb_shim_close(struct jr_sb_shim *sh)
{
    int fds[3] = { sh->lfd, sh->conn, sh->dirfd };

    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    sh->lfd = sh->conn = sh->dirfd = -1;
}
