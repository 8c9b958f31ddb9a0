/* `jobrt sandbox-server`: one long-lived process, spawned by the daemon,
 * that forks a sandbox helper per task attempt. Spawning the helper from
 * the daemon cost a fork of the daemon's whole address space, an exec and
 * the dynamic loader's start-up (which, in a VM, traps on cpuid) for every
 * task; a fork of this small process costs a fraction of that. A helper
 * runs jr_sandbox_run exactly as an exec'd `jobrt sandbox` would. The
 * server reaps its helpers, kills what is left of a helper's process group
 * with it, and sends each exit status on the events socket. When the
 * control socket closes (the daemon is gone, or closed it) it exits and
 * leaves its helpers running: their tasks outlive the daemon, which
 * reattaches to them or stops them itself (runtime/exec/record.h). Given
 * --cgroup-parent, it first moves itself (and so every helper it forks)
 * out of the daemon's cgroup2 into PARENT/shims, so that stopping the
 * daemon's cgroup (a service manager's stop) leaves them alone. The wire
 * is described in server.h. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/internal.h"
#include "sandbox/server.h"

#define MAX_HELPERS 4096

struct server {
    int ctl, events, sigfd;
    char *argv0;                 /* the helpers' argv[0] */
    char *title;                 /* our argv/environ block: pid 1's title */
    size_t title_len;
    const struct jr_sb_host *host; /* NULL: each helper learns it (and
                                    * reports why it could not) */
    pid_t helpers[MAX_HELPERS];  /* forked and not yet reaped */
    int n;
};

/* All len bytes in (out = 0) or out (1), across short reads and writes;
 * 0, or -1 on end of file or an error. */
static int io_full(int fd, char *p, size_t len, int out)
{
    while (len > 0) {
        ssize_t n = out ? write(fd, p, len) : read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int read_full(int fd, void *buf, size_t len)
{
    return io_full(fd, buf, len, 0);
}

static int write_full(int fd, const void *buf, size_t len)
{
    return io_full(fd, (char *)buf, len, 1); /* only written from */
}

/* The header of the next request and the fds riding with it (at most 4;
 * *nfds says how many). -1 on end of file or a broken stream. */
static int recv_req(int fd, struct jr_sbs_req *r, int fds[4], int *nfds)
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
        ((size_t)n < sizeof(*r) && read_full(fd, (char *)r + n, sizeof(*r) - (size_t)n)))
        return -1;
    return 0;
}

/* The forked helper: fds 0-4 as `jobrt sandbox` expects them from the
 * daemon (stdin /dev/null, stdout, stderr, gate, status), nothing else of
 * the server's (its sockets would let a task ask for more sandboxes), the
 * signal state of a fresh process, its own session. */
static _Noreturn void helper(const struct server *sv, const int fds[4], char *words,
                             uint32_t len)
{
    int src[5] = {open("/dev/null", O_RDWR | O_CLOEXEC), fds[1], fds[2], fds[0], fds[3]};
    int high[5], argc = 2;
    struct sigaction dfl;
    sigset_t none;
    char **argv;

    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGCHLD, &dfl, NULL);
    sigaction(SIGPIPE, &dfl, NULL);
    sigaction(SIGINT, &dfl, NULL);
    sigaction(SIGHUP, &dfl, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setsid();
    prctl(PR_SET_NAME, "jobrt-sandbox", 0, 0, 0);
    /* Above every target first, so no dup2 below lands on a source. */
    for (int i = 0; i < 5; i++)
        if (src[i] < 0 || (high[i] = fcntl(src[i], F_DUPFD, 16)) < 0)
            _exit(127);
    for (int i = 0; i < 5; i++)
        if (dup2(high[i], i) < 0)
            _exit(127);
    syscall(SYS_close_range, 5U, ~0U, 0U);
    for (uint32_t i = 0; i < len; i++)
        argc += words[i] == 0;
    if (!(argv = calloc((size_t)argc + 1, sizeof(*argv))))
        _exit(127);
    argv[0] = sv->argv0;
    argv[1] = "sandbox";
    for (uint32_t i = 0, k = 2; i < len; i += (uint32_t)strlen(words + i) + 1)
        argv[k++] = words + i;
    _exit(jr_sandbox_run(argc, argv, sv->title, sv->title_len, sv->host));
}

static void reply(struct server *sv, int32_t pid)
{
    struct jr_sbs_reply r = {pid, 0};

    write_full(sv->ctl, &r, sizeof(r)); /* a gone daemon shows as EOF next */
}

/* One start request, its header read. -1: the stream is broken. */
static int start(struct server *sv, const struct jr_sbs_req *r, int fds[4], int nfds)
{
    char *words = NULL;
    pid_t pid;
    int rc = 0;

    if (r->len == 0 || r->len > JR_SBS_MAX_ARGS || !(words = malloc(r->len)))
        rc = -1;
    else if (read_full(sv->ctl, words, r->len))
        rc = -1;
    else if (nfds != 4 || words[r->len - 1] != 0)
        reply(sv, -EBADMSG);
    else if (sv->n == MAX_HELPERS)
        reply(sv, -EAGAIN);
    else if ((pid = fork()) == 0)
        helper(sv, fds, words, r->len);
    else if (pid < 0)
        reply(sv, -errno);
    else {
        sv->helpers[sv->n++] = pid;
        reply(sv, pid);
    }
    for (int i = 0; i < nfds; i++)
        close(fds[i]);
    free(words);
    return rc;
}

static int is_helper(const struct server *sv, pid_t pid)
{
    for (int i = 0; i < sv->n; i++)
        if (sv->helpers[i] == pid)
            return 1;
    return 0;
}

static int serve_one(struct server *sv)
{
    struct jr_sbs_req r;
    int fds[4], nfds;

    if (recv_req(sv->ctl, &r, fds, &nfds))
        return -1;
    if (r.kind == JR_SBS_START)
        return start(sv, &r, fds, nfds);
    for (int i = 0; i < nfds; i++)
        close(fds[i]);
    if (r.kind != JR_SBS_KILL && r.kind != JR_SBS_KILL_GROUP)
        return -1;
    /* Only an unreaped child: its pid cannot belong to anyone else yet. */
    if (r.pid > 0 && r.arg > 0 && r.arg < NSIG && is_helper(sv, r.pid))
        kill(r.kind == JR_SBS_KILL_GROUP ? -r.pid : r.pid, r.arg);
    return 0;
}

/* Every helper that has exited: its group's rest (the helper's pid 1 is
 * in it) is killed while the pid is still held, then it is reaped and its
 * status sent. */
static void reap(struct server *sv)
{
    for (;;) {
        siginfo_t si;
        struct jr_sbs_exit ev;
        int st;

        memset(&si, 0, sizeof(si));
        if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) || si.si_pid == 0)
            return;
        kill(-si.si_pid, SIGKILL);
        while (waitpid(si.si_pid, &st, 0) < 0 && errno == EINTR)
            ;
        for (int i = 0; i < sv->n; i++)
            if (sv->helpers[i] == si.si_pid)
                sv->helpers[i] = sv->helpers[--sv->n];
        ev.pid = si.si_pid;
        ev.status = st;
        write_full(sv->events, &ev, sizeof(ev));
    }
}

int jr_sandbox_server_main(int argc, char **argv)
{
    struct server *sv = calloc(1, sizeof(*sv));
    struct jr_sb_host host;
    struct jr_sb_err e;
    struct sigaction ign;
    sigset_t chld;
    int rc = 0;

    if (!sv)
        return 1;
    if (!(argc == 2 || (argc == 4 && strcmp(argv[2], "--cgroup-parent") == 0 &&
                        jr_sandbox_cg_valid_parent(argv[3]))) ||
        fcntl(JR_SBS_CTL_FD, F_GETFD) < 0 || fcntl(JR_SBS_EVENTS_FD, F_GETFD) < 0) {
        fprintf(stderr, "usage: jobrt sandbox-server [--cgroup-parent PARENT] (started by "
                        "the daemon, with its control socket on fd 3 and events socket on "
                        "fd 4)\n");
        free(sv);
        return 2;
    }
    if (argc == 4 && jr_sb_cg_place_self(argv[3], JR_SB_SHIM_CGROUP))
        fprintf(stderr, "jobrt sandbox-server: staying in the daemon's cgroup (moving to "
                        "%s/%s: %s)\n", argv[3], JR_SB_SHIM_CGROUP, strerror(errno));
    sv->ctl = JR_SBS_CTL_FD;
    sv->events = JR_SBS_EVENTS_FD;
    sv->argv0 = argv[0];
    sv->title_len = jr_sb_title_area(argc, argv, &sv->title);
    fcntl(sv->ctl, F_SETFD, FD_CLOEXEC);
    fcntl(sv->events, F_SETFD, FD_CLOEXEC);
    /* Notices wait for room rather than being dropped. */
    fcntl(sv->events, F_SETFL, fcntl(sv->events, F_GETFL) & ~O_NONBLOCK);
    /* The daemon decides when we stop: by closing the control socket. */
    memset(&ign, 0, sizeof(ign));
    ign.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ign, NULL);
    sigaction(SIGINT, &ign, NULL);
    sigaction(SIGHUP, &ign, NULL);
    prctl(PR_SET_NAME, "jobrt-sbserver", 0, 0, 0);
    memset(&e, 0, sizeof(e));
    if (jr_sb_host_init(&host, &e) == 0)
        sv->host = &host;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    if ((sv->sigfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
        perror("jobrt sandbox-server: signalfd");
        free(sv);
        return 1;
    }
    for (;;) {
        struct pollfd p[2] = {{sv->ctl, POLLIN, 0}, {sv->sigfd, POLLIN, 0}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            rc = 1;
            break;
        }
        if (p[1].revents & POLLIN) {
            struct signalfd_siginfo info;
            while (read(sv->sigfd, &info, sizeof(info)) > 0)
                ;
            reap(sv);
        }
        if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) && serve_one(sv))
            break;
    }
    close(sv->sigfd);
    jr_sb_host_free(&host);
    free(sv);
    return rc;
}
