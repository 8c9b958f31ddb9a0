/* The helper as a shim that outlives its daemon (--run-dir): it listens on
 * the run folder's control socket so that a later daemon can attach, keeps
 * the newest connection (its own uid only), wakes it when output was
 * spooled, counts the time with no daemon attached (the orphan timeout),
 * and at the end leaves its outcome in the run folder before it lets the
 * daemon go. The contract: runtime/exec/record.h. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "sandbox/internal.h"

/* Binds or connects through /proc/self/fd, so a deep data folder does not
 * run into sun_path's 108 bytes. */
static void ctl_addr(int dirfd, struct sockaddr_un *a)
{
    memset(a, 0, sizeof(*a));
    a->sun_family = AF_UNIX;
    snprintf(a->sun_path, sizeof(a->sun_path), "/proc/self/fd/%d/" JR_SB_RUN_CONTROL, dirfd);
}

int jr_sb_shim_open(struct jr_sb_shim *sh, const struct jr_sandbox_opts *o,
                    struct jr_sb_err *e)
{
    struct sockaddr_un a;

    memset(sh, 0, sizeof(*sh));
    sh->lfd = sh->conn = -1;
    sh->alone_since = -1;
    sh->orphan_ms = o->orphan_timeout_ms;
    sh->uid = geteuid();
    sh->dirfd = open(o->run_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (sh->dirfd < 0)
        return jr_sb_fail(e, "run_dir", errno, "%s", o->run_dir);
    sh->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (sh->lfd < 0)
        return jr_sb_fail(e, "control", errno, "socket");
    unlinkat(sh->dirfd, JR_SB_RUN_CONTROL, 0);
    ctl_addr(sh->dirfd, &a);
    if (bind(sh->lfd, (struct sockaddr *)&a, sizeof(a)) || listen(sh->lfd, 4))
        return jr_sb_fail(e, "control", errno, "%s/" JR_SB_RUN_CONTROL, o->run_dir);
    /* The first daemon's end, ours from now on. Our wakes must never block
     * the task's output, and a gone daemon is an error, not a SIGPIPE. */
    sh->conn = o->status_fd;
    fcntl(sh->conn, F_SETFL, fcntl(sh->conn, F_GETFL) | O_NONBLOCK);
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
    p[1].fd = sh->conn;
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
            n = recv(sh->conn, buf, sizeof(buf), MSG_DONTWAIT);
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
        n = send(sh->conn, "o", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    /* A full socket already holds a wake the daemon has not read. */
    if (n < 0 && errno != EAGAIN)
        drop_conn(sh, jr_sb_now_ms());
}

/* Is the run folder still ours? A daemon writes the attempt's record (with
 * its helper's pid) before the task can start; one that names another pid
 * means a later attempt has the folder (we never ran: our gate closed with
 * a daemon that went), and what we would leave there is not wanted. No
 * record (a `jobrt sandbox --run-dir` by hand) is ours. */
static int owned(const struct jr_sb_shim *sh)
{
    char text[2048], *p;
    ssize_t n;
    int fd = openat(sh->dirfd, JR_SB_RUN_RECORD, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

    if (fd < 0)
        return errno == ENOENT;
    do
        n = read(fd, text, sizeof(text) - 1);
    while (n < 0 && errno == EINTR);
    close(fd);
    text[n > 0 ? n : 0] = 0;
    p = strstr(text, "\nhelper_pid ");
    return p && strtol(p + 12, NULL, 10) == (long)getpid();
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

int jr_sb_shim_finish(struct jr_sb_shim *sh, const char *line, size_t len)
{
    int fd = -1, rc = -1, ours = owned(sh);

    /* No daemon can attach any more: what it needs is in the files. */
    if (sh->lfd >= 0) {
        if (ours)
            unlinkat(sh->dirfd, JR_SB_RUN_CONTROL, 0);
        close(sh->lfd);
        sh->lfd = -1;
    }
    if (ours)
        fd = openat(sh->dirfd, "." JR_SB_RUN_OUTCOME ".tmp",
                    O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0) {
        rc = write_all(fd, line, len);
        close(fd);
        if (rc == 0)
            rc = renameat(sh->dirfd, "." JR_SB_RUN_OUTCOME ".tmp", sh->dirfd,
                          JR_SB_RUN_OUTCOME);
    }
    if (sh->conn >= 0) {
        /* The attached daemon reads it here without opening the file; it
         * blocks at most until the daemon reads or goes. */
        size_t off = 0;
        fcntl(sh->conn, F_SETFL, fcntl(sh->conn, F_GETFL) & ~O_NONBLOCK);
        struct timeval tv = {2, 0};
        setsockopt(sh->conn, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        while (off < len) {
            ssize_t n = send(sh->conn, line + off, len - off, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            off += (size_t)n;
        }
        close(sh->conn);
        sh->conn = -1;
        if (off == len)
            rc = 0;
    }
    return rc == 0 ? 0 : -1;
}

void jr_sb_shim_close(struct jr_sb_shim *sh)
{
    if (sh->lfd >= 0) {
        if (owned(sh))
            unlinkat(sh->dirfd, JR_SB_RUN_CONTROL, 0);
        close(sh->lfd);
    }
    if (sh->conn >= 0)
        close(sh->conn);
    if (sh->dirfd >= 0)
        close(sh->dirfd);
    sh->lfd = sh->conn = sh->dirfd = -1;
}
