/* A prepared sandbox: everything that does not depend on its task, made
 * before the task is known (or, without a warm one, as soon as it is): the
 * image's detached mounts, the cgroup2 leaf, pid 1 cloned into the new
 * namespaces (straight into that leaf) with its ids mapped, building the
 * root and waiting for its task; then the task sent to it in one message. */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/internal.h"

#define HOST_ID_BASE 100000  /* ns id 0 = host 100000 when we are root */

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static int write_map(pid_t pid, const char *file, const char *text, struct jr_sb_err *e)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
    if (jr_sb_write_file(path, text))
        return jr_sb_fail(e, "uid_map", errno, "%s", path);
    return 0;
}

static int map_ids(pid_t pid, int rootless, struct jr_sb_err *e)
{
    char map[64];
    if (!rootless) {
        snprintf(map, sizeof(map), "0 %d 65536\n", HOST_ID_BASE);
        return write_map(pid, "uid_map", map, e) || write_map(pid, "gid_map", map, e) ? -1 : 0;
    }
    if (write_map(pid, "setgroups", "deny", e))
        return -1;
    snprintf(map, sizeof(map), "0 %d 1\n", (int)geteuid());
    if (write_map(pid, "uid_map", map, e))
        return -1;
    snprintf(map, sizeof(map), "0 %d 1\n", (int)getegid());
    return write_map(pid, "gid_map", map, e);
}

static pid_t clone_child(struct clone_args *args, int *into_cgroup)
{
    pid_t pid = (pid_t)syscall(SYS_clone3, args, sizeof(*args));
    if (pid < 0 && (args->flags & CLONE_INTO_CGROUP)) {
        args->flags &= ~(uint64_t)CLONE_INTO_CGROUP; /* join by cgroup.procs */
        pid = (pid_t)syscall(SYS_clone3, args, sizeof(*args));
    }
    *into_cgroup = (args->flags & CLONE_INTO_CGROUP) != 0;
    return pid;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void box_init(struct jr_sb_box *b)
{
    memset(b, 0, sizeof(*b));
    b->pidfd = b->err_r = b->status_r = b->task_w = b->proxy_r = -1;
}

int jr_sb_box_prepare(struct jr_sb_box *b, const char *image, const char *const *layers,
                      int nlayers, int netns, const char *parent, const char *name,
                      const struct jr_sb_host *host, char *title, size_t title_len,
                      const int *close_fds, int n, struct jr_sb_err *e)
{
    int sync_p[2] = {-1, -1}, err_p[2] = {-1, -1}, status_p[2] = {-1, -1};
    int task_p[2] = {-1, -1}, proxy_p[2] = {-1, -1}, cgfd = -1;
    int rootless = geteuid() != 0;
    struct clone_args args;

    box_init(b);
    b->image = image;
    b->layers = layers;
    b->nlayers = nlayers;
    b->netns = netns;
    if (snprintf(b->parent, sizeof(b->parent), "%s", parent) >= (int)sizeof(b->parent)) {
        jr_sb_fail(e, "cgroup", ENAMETOOLONG, "%s", parent);
        goto fail;
    }
    if (!(b->plan = malloc(sizeof(*b->plan)))) { /* not touched whole */
        jr_sb_fail(e, "memory", ENOMEM, "mount plan");
        goto fail;
    }
    jr_sb_plan_init(b->plan);
    if (jr_sb_plan_image(b->plan, image, layers, nlayers, e) ||
        jr_sb_cg_prepare(&b->cg, parent, name, host, e))
        goto fail;
    if (pipe2(sync_p, O_CLOEXEC) || pipe2(err_p, O_CLOEXEC) || pipe2(status_p, O_CLOEXEC) ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, task_p)) {
        jr_sb_fail(e, "pipe", errno, "pipes");
        goto fail;
    }
    /* allow: pid 1 passes the proxy's listener back on this pair. */
    if (netns && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, proxy_p)) {
        jr_sb_fail(e, "proxy", errno, "socketpair");
        goto fail;
    }
    cgfd = jr_sb_cg_v2_fd(&b->cg);
    struct jr_sb_child c = {
        .plan = b->plan, .filter = &host->filter, .sync_fd = sync_p[0],
        .err_fd = err_p[1], .status_fd = status_p[1], .task_fd = task_p[0],
        .netns = netns, .proxy_fd = proxy_p[1], .rootless = rootless,
        .cap_last = host->cap_last, .title = title, .title_len = title_len,
        .close_fds = {sync_p[1], err_p[0], status_p[0], task_p[1], proxy_p[0], cgfd},
        .nclose = 6,
    };
    for (int i = 0; i < n && c.nclose < JR_SB_CHILD_CLOSE; i++)
        c.close_fds[c.nclose++] = close_fds[i];
    memset(&args, 0, sizeof(args));
    args.flags = CLONE_PIDFD | CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID |
                 CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP |
                 (netns ? CLONE_NEWNET : 0) | (cgfd >= 0 ? CLONE_INTO_CGROUP : 0);
    args.pidfd = (uint64_t)(uintptr_t)&b->pidfd;
    args.exit_signal = SIGCHLD;
    args.cgroup = cgfd >= 0 ? (uint64_t)cgfd : 0;
    b->pid = clone_child(&args, &b->into_cgroup);
    if (b->pid == 0)
        jr_sb_child_main(&c);
    if (b->pid < 0) {
        b->pid = 0;
        jr_sb_fail(e, "clone", errno, "clone3");
        goto fail;
    }
    close_fd(&sync_p[0]);
    close_fd(&err_p[1]);
    close_fd(&status_p[1]);
    close_fd(&task_p[0]);
    close_fd(&proxy_p[1]);
    close_fd(&cgfd);
    b->err_r = err_p[0];
    b->status_r = status_p[0];
    b->task_w = task_p[1];
    b->proxy_r = proxy_p[0];
    err_p[0] = status_p[0] = task_p[1] = proxy_p[0] = -1;
    if (map_ids(b->pid, rootless, e))
        goto fail;
    if (write(sync_p[1], "g", 1) != 1) {
        jr_sb_fail(e, "sync", errno, "releasing the child");
        goto fail;
    }
    close_fd(&sync_p[1]);
    return 0;
fail: {
        int fds[] = {sync_p[0], sync_p[1], err_p[0], err_p[1], status_p[0], status_p[1],
                     task_p[0], task_p[1], proxy_p[0], proxy_p[1], cgfd};
        for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
            if (fds[i] >= 0)
                close(fds[i]);
    }
    jr_sb_box_discard(b);
    return -1;
}

int jr_sb_box_fits(const struct jr_sb_box *b, const struct jr_sandbox_opts *o)
{
    /* Anything on the error pipe (or its end) means pid 1 failed. */
    struct pollfd p = {b->err_r, POLLIN, 0};
    if (b->nlayers != o->nlayers)
        return 0;
    for (int i = 0; i < b->nlayers; i++)
        if (strcmp(b->layers[i], o->layers[i]) != 0)
            return 0;
    return b->pid > 0 && strcmp(b->image, o->image) == 0 &&
           b->netns == (o->network != JR_SB_NET_FULL) &&
           strcmp(b->parent, o->cgroup_parent) == 0 && poll(&p, 1, 0) == 0;
}

/* pid 1's own setup error, if it reported one (it then exits), into e. */
static void child_error(const struct jr_sb_box *b, struct jr_sb_err *e)
{
    struct jr_sb_err ce;
    struct pollfd p = {b->err_r, POLLIN, 0};
    if (poll(&p, 1, 1000) == 1 && read(b->err_r, &ce, sizeof(ce)) == (ssize_t)sizeof(ce)) {
        ce.stage[sizeof(ce.stage) - 1] = '\0';
        ce.detail[sizeof(ce.detail) - 1] = '\0';
        *e = ce;
    }
}

int jr_sb_box_start(struct jr_sb_box *b, const char *words, size_t len, int out, int err,
                    struct jr_sb_err *e)
{
    union {
        char buf[CMSG_SPACE((2 + JR_SB_MAX_BINDS) * sizeof(int))];
        struct cmsghdr align;
    } u;
    struct jr_sb_task_msg m;
    struct iovec iov = {&m, sizeof(m)};
    struct msghdr mh;
    int nb = b->plan->n - b->plan->nimage, fds[2 + JR_SB_MAX_BINDS];
    ssize_t n;

    if (nb < 0 || nb > JR_SB_MAX_BINDS || len > UINT32_MAX)
        return jr_sb_fail(e, "task", E2BIG, "%d binds", nb);
    memset(&m, 0, sizeof(m));
    m.len = (uint32_t)len;
    m.nbinds = (uint32_t)nb;
    fds[0] = out;
    fds[1] = err;
    for (int i = 0; i < nb; i++) {
        fds[2 + i] = b->plan->m[b->plan->nimage + i].fd;
        m.is_dir[i] = (unsigned char)b->plan->m[b->plan->nimage + i].is_dir;
    }
    memset(&mh, 0, sizeof(mh));
    memset(&u, 0, sizeof(u));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = u.buf;
    mh.msg_controllen = CMSG_SPACE((size_t)(2 + nb) * sizeof(int));
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN((size_t)(2 + nb) * sizeof(int));
    memcpy(CMSG_DATA(cm), fds, (size_t)(2 + nb) * sizeof(int));
    do
        n = sendmsg(b->task_w, &mh, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    /* The rest of the header (rarely any) and the words follow as a stream. */
    if (n < 0 || jr_sb_send_full(b->task_w, (const char *)&m + n, sizeof(m) - (size_t)n) ||
        jr_sb_send_full(b->task_w, words, len)) {
        jr_sb_fail(e, "task", errno ? errno : EPIPE, "sending the sandbox its task");
        child_error(b, e); /* why pid 1 did not take it, when it said */
        return -1;
    }
    close_fd(&b->task_w);
    return 0;
}

void jr_sb_box_close(struct jr_sb_box *b)
{
    close_fd(&b->pidfd);
    close_fd(&b->err_r);
    close_fd(&b->status_r);
    close_fd(&b->task_w);
    close_fd(&b->proxy_r);
    if (b->plan) {
        jr_sb_plan_close(b->plan);
        free(b->plan);
        b->plan = NULL;
    }
}

void jr_sb_box_discard(struct jr_sb_box *b)
{
    if (b->pid > 0 && b->pidfd >= 0) {
        siginfo_t si;
        syscall(SYS_pidfd_send_signal, b->pidfd, SIGKILL, NULL, 0);
        while (syscall(SYS_waitid, P_PIDFD, b->pidfd, &si, WEXITED, NULL) && errno == EINTR)
            ;
    }
    b->pid = 0;
    jr_sb_cg_kill(&b->cg);
    jr_sb_cg_destroy(&b->cg);
    jr_sb_box_close(b);
}
