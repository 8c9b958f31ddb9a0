/* `jobrt sandbox-server`: one long-lived process, spawned by the daemon,
 * that forks a sandbox helper per task attempt, ahead of it where it can:
 * a few warm helpers (warm.c) wait with their sandbox prepared, and a
 * start request goes to the oldest, its replacement forked once no
 * request waits. Spawning the helper from
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
#define MAX_WARM 16
#define DEFAULT_WARM 2

struct server {
    int ctl, events, sigfd;
    char *argv0;                 /* the helpers' argv[0] */
    char *title;                 /* our argv/environ block: pid 1's title */
    size_t title_len;
    const struct jr_sb_host *host; /* NULL: each helper learns it (and
                                    * reports why it could not) */
    const char *parent;          /* the cgroup parent (warm sandboxes') */
    pid_t helpers[MAX_HELPERS];  /* forked and not yet reaped */
    int n;
    struct {
        pid_t pid;
        int sock;                /* where its start request goes */
    } warm[MAX_WARM];            /* warm helpers without a task, oldest first */
    int nwarm, want;             /* how many there are, should be */
    int refill_failed;           /* stop refilling until the next start */
};

static void reply(struct server *sv, int32_t pid)
{
    struct jr_sbs_reply r = {pid, 0};

    jr_sb_write_full(sv->ctl, &r, sizeof(r)); /* a gone daemon shows as EOF next */
}

/* The request (its header r, words and fds) to warm helper i, which then
 * runs it; 0, or -1 when it could not take it (it is gone). */
static int forward(struct server *sv, int i, const struct jr_sbs_req *r, const char *words,
                   const int fds[4])
{
    union {
        char buf[CMSG_SPACE(4 * sizeof(int))];
        struct cmsghdr align;
    } u;
    struct iovec iov = {(void *)r, sizeof(*r)};
    struct msghdr m;
    ssize_t n;
    int sock = sv->warm[i].sock;

    memset(&m, 0, sizeof(m));
    memset(&u, 0, sizeof(u));
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = u.buf;
    m.msg_controllen = sizeof(u.buf);
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(4 * sizeof(int));
    memcpy(CMSG_DATA(c), fds, 4 * sizeof(int));
    do
        n = sendmsg(sock, &m, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    int ok = n >= 0 && jr_sb_write_full(sock, (const char *)r + n, sizeof(*r) - (size_t)n) == 0 &&
             jr_sb_write_full(sock, words, r->len) == 0;
    /* Taken or not, it is no longer waiting: one request each. */
    close(sock);
    for (int k = i; k + 1 < sv->nwarm; k++) /* the oldest stays first */
        sv->warm[k] = sv->warm[k + 1];
    sv->nwarm--;
    return ok ? 0 : -1;
}

/* Forks a warm helper (warm.c). 0, or -1 with errno. */
static int refill(struct server *sv)
{
    int sp[2];
    pid_t pid;

    if (sv->nwarm == MAX_WARM || sv->n == MAX_HELPERS) {
        errno = EAGAIN;
        return -1;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp))
        return -1;
    if ((pid = fork()) == 0) {
        close(sp[0]);
        jr_sb_warm_main(sp[1], sv->parent, sv->argv0, sv->title, sv->title_len, sv->host);
    }
    close(sp[1]);
    if (pid < 0) {
        close(sp[0]);
        return -1;
    }
    sv->helpers[sv->n++] = pid;
    sv->warm[sv->nwarm].pid = pid;
    sv->warm[sv->nwarm++].sock = sp[0];
    return 0;
}

/* One start request, its header read. -1: the stream is broken. A warm
 * helper takes it (the oldest: the likeliest to be ready); else one is
 * forked for it. */
static int start(struct server *sv, const struct jr_sbs_req *r, int fds[4], int nfds)
{
    char *words = NULL;
    pid_t pid;
    int rc = 0;

    sv->refill_failed = 0;
    if (r->len == 0 || r->len > JR_SBS_MAX_ARGS || !(words = malloc(r->len)))
        rc = -1;
    else if (jr_sb_read_full(sv->ctl, words, r->len))
        rc = -1;
    else if (nfds != 4 || words[r->len - 1] != 0)
        reply(sv, -EBADMSG);
    else {
        while (sv->nwarm > 0) {
            pid = sv->warm[0].pid;
            if (forward(sv, 0, r, words, fds) == 0) {
                reply(sv, pid);
                goto done;
            }
        }
        if (sv->n == MAX_HELPERS)
            reply(sv, -EAGAIN);
        else if ((pid = fork()) == 0)
            jr_sb_helper_main(fds, words, r->len, 1, sv->argv0, sv->title, sv->title_len,
                              sv->host, NULL);
        else if (pid < 0)
            reply(sv, -errno);
        else {
            sv->helpers[sv->n++] = pid;
            reply(sv, pid);
        }
    }
done:
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

    if (jr_sb_recv_req(sv->ctl, &r, fds, &nfds))
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
        for (int i = 0; i < sv->nwarm; i++)
            if (sv->warm[i].pid == si.si_pid) { /* it could not wait */
                close(sv->warm[i].sock);
                for (int k = i; k + 1 < sv->nwarm; k++)
                    sv->warm[k] = sv->warm[k + 1];
                sv->nwarm--;
                break;
            }
        ev.pid = si.si_pid;
        ev.status = st;
        jr_sb_write_full(sv->events, &ev, sizeof(ev));
    }
}

int jr_sandbox_server_main(int argc, char **argv)
{
    struct server *sv = calloc(1, sizeof(*sv));
    struct jr_sb_host host;
    struct jr_sb_err e;
    struct sigaction ign;
    sigset_t chld;
    int rc = 0, bad = 0;

    if (!sv)
        return 1;
    sv->parent = NULL;
    sv->want = DEFAULT_WARM;
    for (int i = 2; i + 1 < argc && !bad; i += 2) {
        char *end;
        if (strcmp(argv[i], "--cgroup-parent") == 0 && jr_sandbox_cg_valid_parent(argv[i + 1]))
            sv->parent = argv[i + 1];
        else if (strcmp(argv[i], "--warm") == 0 &&
                 (sv->want = (int)strtol(argv[i + 1], &end, 10)) >= 0 &&
                 sv->want <= MAX_WARM && !*end && end != argv[i + 1])
            ;
        else
            bad = 1;
    }
    if (bad || argc % 2 || fcntl(JR_SBS_CTL_FD, F_GETFD) < 0 ||
        fcntl(JR_SBS_EVENTS_FD, F_GETFD) < 0) {
        fprintf(stderr, "usage: jobrt sandbox-server [--cgroup-parent PARENT] [--warm N] "
                        "(started by the daemon, with its control socket on fd 3 and events "
                        "socket on fd 4; N sandboxes, default %d, are kept prepared)\n",
                DEFAULT_WARM);
        free(sv);
        return 2;
    }
    if (sv->parent && jr_sb_cg_place_self(sv->parent, JR_SB_SHIM_CGROUP))
        fprintf(stderr, "jobrt sandbox-server: staying in the daemon's cgroup (moving to "
                        "%s/%s: %s)\n", sv->parent, JR_SB_SHIM_CGROUP, strerror(errno));
    if (!sv->parent)
        sv->parent = "jobrt"; /* the sandbox's default */
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
        /* Warm helpers are forked while no request waits. */
        int refilling = sv->host && sv->nwarm < sv->want && !sv->refill_failed;
        int ready = poll(p, 2, refilling ? 0 : -1);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            rc = 1;
            break;
        }
        if (ready == 0) {
            if (refill(sv))
                sv->refill_failed = 1;
            continue;
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
    /* The warm helpers see their sockets close, and go. */
    for (int i = 0; i < sv->nwarm; i++)
        close(sv->warm[i].sock);
    close(sv->sigfd);
    jr_sb_host_free(&host);
    free(sv);
    return rc;
}
