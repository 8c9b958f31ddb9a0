/* The sandbox server's helpers, cold and warm. A cold one is forked for a
 * start request and runs it at once. A warm one is forked ahead, while no
 * task is known: it prepares a sandbox (box.c: pid 1 in its namespaces, the
 * host image mounted, its cgroup2 leaf) for the server's cgroup parent and
 * a network namespace, then waits for the one start request the server
 * forwards to it, and runs that in the prepared sandbox when it fits (else
 * as a cold one would). Either way the request's fds become 1-4, as
 * `jobrt sandbox` expects them from the daemon (stdout, stderr, gate,
 * status), and nothing else of the server's stays open (its sockets would
 * let a task ask for more sandboxes). The wire: server.h. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/internal.h"
#include "sandbox/server.h"

int jr_sb_recv_req(int fd, struct jr_sbs_req *r, int fds[4], int *nfds)
{
    union {
        char buf[CMSG_SPACE(8 * sizeof(int))];
        struct cmsghdr align;
    } u;
    struct iovec iov = {r, sizeof(*r)};
    struct msghdr m;
    ssize_t n;

    memset(&m, 0, sizeof(m));
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = u.buf;
    m.msg_controllen = sizeof(u.buf);
    *nfds = 0;
    do
        n = recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        int got[8];
        memcpy(got, CMSG_DATA(c), (k < 8 ? k : 8) * sizeof(int));
        for (size_t i = 0; i < k && i < 8; i++) {
            if (*nfds < 4)
                fds[(*nfds)++] = got[i];
            else
                close(got[i]);
        }
    }
    if ((m.msg_flags & MSG_CTRUNC) ||
        ((size_t)n < sizeof(*r) && jr_sb_read_full(fd, (char *)r + n, sizeof(*r) - (size_t)n)))
        return -1;
    return 0;
}

/* The signal state of a fresh process and a session of its own. */
static void fresh(const char *name)
{
    struct sigaction dfl;
    sigset_t none;

    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGCHLD, &dfl, NULL);
    sigaction(SIGPIPE, &dfl, NULL);
    sigaction(SIGINT, &dfl, NULL);
    sigaction(SIGHUP, &dfl, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setsid();
    prctl(PR_SET_NAME, name, 0, 0, 0);
}

_Noreturn void jr_sb_helper_main(const int fds[4], char *words, uint32_t len, int cold,
                                 char *argv0, char *title, size_t title_len,
                                 const struct jr_sb_host *host, struct jr_sb_box *warm)
{
    int src[5] = {open("/dev/null", O_RDWR | O_CLOEXEC), fds[1], fds[2], fds[0], fds[3]};
    int high[5], argc = 2;
    char **argv;

    if (cold)
        fresh("jobrt-sandbox");
    else
        prctl(PR_SET_NAME, "jobrt-sandbox", 0, 0, 0);
    /* Above every target first, so no dup2 below lands on a source. */
    for (int i = 0; i < 5; i++)
        if (src[i] < 0 || (high[i] = fcntl(src[i], F_DUPFD, 16)) < 0)
            _exit(127);
    for (int i = 0; i < 5; i++)
        if (dup2(high[i], i) < 0)
            _exit(127);
    if (cold) {
        syscall(SYS_close_range, 5U, ~0U, 0U);
    } else { /* the warm sandbox's fds stay */
        for (int i = 0; i < 5; i++) {
            close(high[i]);
            if (src[i] > 4)
                close(src[i]);
        }
    }
    for (uint32_t i = 0; i < len; i++)
        argc += words[i] == 0;
    if (!(argv = calloc((size_t)argc + 1, sizeof(*argv))))
        _exit(127);
    argv[0] = argv0;
    argv[1] = "sandbox";
    for (uint32_t i = 0, k = 2; i < len; i += (uint32_t)strlen(words + i) + 1)
        argv[k++] = words + i;
    _exit(jr_sandbox_run(argc, argv, title, title_len, host, warm));
}

_Noreturn void jr_sb_warm_main(int sock, const char *parent, char *argv0, char *title,
                               size_t title_len, const struct jr_sb_host *host)
{
    struct jr_sb_box box;
    struct jr_sb_err e;
    struct jr_sbs_req r;
    char name[64], *words = NULL;
    int fds[4], nfds = 0, have_box, s;

    fresh("jobrt-warm");
    /* Only our socket stays, above 0-4, which /dev/null holds until the
     * request's fds take them: the sandbox's own fds come after. */
    if ((s = fcntl(sock, F_DUPFD_CLOEXEC, 16)) < 0)
        _exit(127);
    for (int fd = 0; fd < 5; fd++)
        close(fd);
    for (int fd = 0; fd < 5; fd++)
        if (open("/dev/null", O_RDWR) != fd)
            _exit(127);
    if (s > 16)
        syscall(SYS_close_range, 16U, (unsigned)s - 1, 0U);
    syscall(SYS_close_range, (unsigned)s + 1, ~0U, 0U);
    syscall(SYS_close_range, 5U, 15U, 0U);
    snprintf(name, sizeof(name), "warm-%d", (int)getpid());
    memset(&e, 0, sizeof(e));
    /* A sandbox that cannot be prepared now will not be by the request
     * either: that one then reports why, as a cold helper would. */
    have_box = jr_sb_box_prepare(&box, "host", NULL, 0, 1, parent, name, host, title,
                                 title_len, &s, 1, &e) == 0;
    /* Until a task comes, ps shows a warm helper as one (not as the server
     * it was forked from, nor as a helper running a task). */
    char *saved = malloc(title_len);
    if (saved && title_len > 1) {
        char label[160];
        int n = snprintf(label, sizeof(label), "jobrt-warm%c--cgroup-parent%c%s", 0, 0, parent);
        memcpy(saved, title, title_len);
        memset(title, 0, title_len);
        memcpy(title, label, (size_t)n < title_len - 1 ? (size_t)n : title_len - 1);
    }
    if (jr_sb_recv_req(s, &r, fds, &nfds) || r.kind != JR_SBS_START || nfds != 4 ||
        r.len == 0 || r.len > JR_SBS_MAX_ARGS || !(words = malloc(r.len)) ||
        jr_sb_read_full(s, words, r.len) || words[r.len - 1] != 0) {
        /* The server is gone (or broke the wire): so is this sandbox. */
        if (have_box)
            jr_sb_box_discard(&box);
        _exit(0);
    }
    close(s);
    if (saved && title_len > 1)
        memcpy(title, saved, title_len); /* the helper's own, as a forked one has */
    free(saved);
    jr_sb_helper_main(fds, words, r.len, 0, argv0, title, title_len, host,
                      have_box ? &box : NULL);
}
