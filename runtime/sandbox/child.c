/* The clone3 child: pid 1 of the task's namespaces. It builds the new root
 * from the parent's detached mounts of the image and pivots into it, which
 * may be before its task is known (a warm sandbox); then, sent its task,
 * mounts its binds, /tmp and /dev/shm, starts the task (which drops every
 * privilege, installs seccomp and execs) and stays as its init. */
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/internal.h"
#include "sandbox/server.h"

/* The task's stack until its exec (task.c): its path buffer, and
 * jr_sb_fail's formatting on an error, with room to spare. */
#define TASK_STACK (64 * 1024)

_Noreturn void jr_sb_child_fail(const struct jr_sb_child *c, struct jr_sb_err *e)
{
    ssize_t n;
    do
        n = write(c->err_fd, e, sizeof(*e));
    while (n < 0 && errno == EINTR);
    _exit(126);
}

/* mkdir -p of the parents of path (relative), and path itself if dir. */
static int make_path(char *path, int dir)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int rc = mkdir(path, 0755);
        *p = '/';
        if (rc && errno != EEXIST)
            return -1;
    }
    if (dir)
        return mkdir(path, 0755) && errno != EEXIST ? -1 : 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return errno == EEXIST || errno == EISDIR ? 0 : -1;
    close(fd);
    return 0;
}

static int attach(int fd, const char *target, int dir, struct jr_sb_err *e)
{
    char path[256];
    snprintf(path, sizeof(path), "%s", target);
    if (make_path(path, dir))
        return jr_sb_fail(e, "bind", errno, "making /%s", target);
    if (syscall(SYS_move_mount, fd, "", AT_FDCWD, path, MOVE_MOUNT_F_EMPTY_PATH))
        return jr_sb_fail(e, "bind", errno, "move_mount /%s", target);
    return 0;
}

static int setattr(const char *path, uint64_t set, struct jr_sb_err *e)
{
    struct mount_attr a;
    memset(&a, 0, sizeof(a));
    a.attr_set = set;
    if (syscall(SYS_mount_setattr, AT_FDCWD, path, 0, &a, sizeof(a)))
        return jr_sb_fail(e, "mount_setattr", errno, "%s", path);
    return 0;
}

static int loopback_up(struct jr_sb_err *e)
{
    struct ifreq ifr;
    int rc = -1, s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return jr_sb_fail(e, "loopback", errno, "socket");
    memset(&ifr, 0, sizeof(ifr));
    strcpy(ifr.ifr_name, "lo");
    if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
        jr_sb_fail(e, "loopback", errno, "SIOCGIFFLAGS");
        goto done;
    }
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) {
        jr_sb_fail(e, "loopback", errno, "SIOCSIFFLAGS");
        goto done;
    }
    rc = 0;
done:
    close(s);
    return rc;
}

/* Network mode allow: a listener on 127.0.0.1:port of this namespace,
 * passed to the helper (which relays for allowed hosts). A failure is sent
 * as an errno instead: the task then runs with loopback only. */
static void pass_listener(const struct jr_sb_child *c)
{
    struct sockaddr_in sa;
    int one = 1, err = 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    char ctl[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {&err, sizeof(err)};
    struct msghdr m;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)c->o->proxy_port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
        bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 64))
        err = errno ? errno : EINVAL;
    memset(&m, 0, sizeof(m));
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    if (!err) {
        memset(ctl, 0, sizeof(ctl));
        m.msg_control = ctl;
        m.msg_controllen = sizeof(ctl);
        struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &fd, sizeof(int));
    }
    while (sendmsg(c->proxy_fd, &m, MSG_NOSIGNAL) < 0 && errno == EINTR)
        ;
    if (fd >= 0)
        close(fd);
    close(c->proxy_fd);
}

static int make_dev(const struct jr_sb_child *c, struct jr_sb_err *e)
{
    static const char *const links[][2] = {
        {"/proc/self/fd", "dev/fd"}, {"/proc/self/fd/0", "dev/stdin"},
        {"/proc/self/fd/1", "dev/stdout"}, {"/proc/self/fd/2", "dev/stderr"},
        {"pts/ptmx", "dev/ptmx"},
    };
    if (mkdir("dev", 0755) && errno != EEXIST)
        return jr_sb_fail(e, "dev", errno, "mkdir /dev");
    if (mount("jobrt-dev", "dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k"))
        return jr_sb_fail(e, "dev", errno, "tmpfs /dev");
    for (int i = 0; i < JR_SB_NDEV; i++) {
        char target[32];
        if (c->plan->dev_fd[i] < 0)
            continue;
        snprintf(target, sizeof(target), "dev/%s", jr_sb_dev_names[i]);
        if (attach(c->plan->dev_fd[i], target, 0, e))
            return -1;
    }
    for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++)
        if (symlink(links[i][0], links[i][1]))
            return jr_sb_fail(e, "dev", errno, "symlink /%s", links[i][1]);
    if (mkdir("dev/pts", 0755) || mkdir("dev/shm", 01777))
        return jr_sb_fail(e, "dev", errno, "mkdir /dev/pts, /dev/shm");
    /* A private devpts is a convenience (ptys); go on without it. */
    mount("devpts", "dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
          "newinstance,ptmxmode=0666,mode=0620");
    return 0; /* /dev/shm is mounted with the task (its size is the task's) */
}

static int make_proc(struct jr_sb_err *e)
{
    static const char *const masked[] = {
        "proc/sys", "proc/sysrq-trigger", "proc/irq", "proc/bus",
    };
    if (mkdir("proc", 0555) && errno != EEXIST)
        return jr_sb_fail(e, "proc", errno, "mkdir /proc");
    if (mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL))
        return jr_sb_fail(e, "proc", errno, "mount /proc");
    /* Kernel knobs stay read-only even for a task that found a way up. */
    for (size_t i = 0; i < sizeof(masked) / sizeof(masked[0]); i++) {
        if (access(masked[i], F_OK))
            continue;
        if (mount(masked[i], masked[i], NULL, MS_BIND | MS_REC, NULL))
            return jr_sb_fail(e, "proc", errno, "bind /%s", masked[i]);
        if (setattr(masked[i], MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
                    MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, e))
            return -1;
    }
    return 0;
}

/* An image's layers as the root: attached under a staging tmpfs (the
 * layers' clones are the parent's, so this namespace can use them) and
 * stacked with overlayfs, top first, over a small upper folder that only
 * takes mount points (the root goes read-only after the pivot). The
 * whiteouts and opaque folders of the layers are honoured (userxattr).
 * Leaves the cwd at the overlay. */
static int overlay_root(const struct jr_sb_plan *p, struct jr_sb_err *e)
{
    char opts[3072], dir[32];
    size_t off;
    if (mkdir("l", 0755) || mkdir("u", 0755) || mkdir("w", 0755) || mkdir("r", 0755))
        return jr_sb_fail(e, "overlay", errno, "staging folders");
    off = (size_t)snprintf(opts, sizeof(opts), "lowerdir=");
    for (int i = p->nlayers - 1; i >= 0; i--) {
        snprintf(dir, sizeof(dir), "l/%d", i);
        if (attach(p->layer_fd[i], dir, 1, e))
            return -1;
        off += (size_t)snprintf(opts + off, sizeof(opts) - off, "%s/tmp/l/%d",
                                i == p->nlayers - 1 ? "" : ":", i);
    }
    snprintf(opts + off, sizeof(opts) - off, ",upperdir=/tmp/u,workdir=/tmp/w,userxattr");
    if (mount("jobrt-image", "r", "overlay", MS_NOSUID | MS_NODEV, opts))
        return jr_sb_fail(e, "overlay", errno, "mounting %d layers", p->nlayers);
    if (chdir("r"))
        return jr_sb_fail(e, "overlay", errno, "chdir");
    return 0;
}

/* The new root, before its task is known: a small tmpfs holding the
 * image's mounts (or its layers stacked), /dev and /proc, pivoted into. */
static int build_base(const struct jr_sb_child *c, struct jr_sb_err *e)
{
    const struct jr_sb_plan *p = c->plan;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
        return jr_sb_fail(e, "mount_private", errno, "/");
    if (mount("jobrt-root", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV,
              "mode=0755,size=1m,nr_inodes=4096") || chdir("/tmp"))
        return jr_sb_fail(e, "root", errno, "tmpfs root");
    if (p->nlayers && overlay_root(p, e))
        return -1;
    for (int i = 0; i < p->nimage; i++) {
        const struct jr_sb_mount *m = &p->m[i];
        if (m->kind == JR_SB_M_BIND) {
            if (attach(m->fd, m->target, m->is_dir, e))
                return -1;
        } else if (symlink(m->link, m->target) && errno != EEXIST) {
            return jr_sb_fail(e, "symlink", errno, "/%s -> %s", m->target, m->link);
        }
    }
    if (mkdir("tmp", 01777) && errno != EEXIST)
        return jr_sb_fail(e, "tmp", errno, "mkdir /tmp");
    if (make_dev(c, e) || make_proc(e))
        return -1;
    /* Detached mounts still attach below the new root (finish_root). */
    if (syscall(SYS_pivot_root, ".", "."))
        return jr_sb_fail(e, "pivot_root", errno, "pivot_root");
    if (umount2(".", MNT_DETACH) || chdir("/"))
        return jr_sb_fail(e, "pivot_root", errno, "detaching the old root");
    return 0;
}

/* The task's part of the root: its binds (fds, in o's order; is_dir per
 * bind), /tmp and /dev/shm of its size, its workdir; then the root is
 * made read-only. */
static int finish_root(const struct jr_sb_child *c, const int *fds,
                       const unsigned char *is_dir, struct jr_sb_err *e)
{
    const struct jr_sandbox_opts *o = c->o;
    char opts[64], wd[256];
    for (int i = 0; i < o->nbinds; i++) {
        const char *target = o->binds[i].dst;
        while (*target == '/')
            target++;
        if (attach(fds[i], target, is_dir[i], e))
            return -1;
    }
    snprintf(opts, sizeof(opts), "mode=1777,size=%lld", (long long)o->tmp_size);
    if (mount("jobrt-tmp", "tmp", "tmpfs", MS_NOSUID | MS_NODEV, opts))
        return jr_sb_fail(e, "tmp", errno, "tmpfs /tmp");
    if (mount("jobrt-shm", "dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, opts))
        return jr_sb_fail(e, "dev", errno, "tmpfs /dev/shm");
    snprintf(wd, sizeof(wd), "%s", o->workdir + 1);
    if (wd[0])
        make_path(wd, 1); /* chdir reports it if it is still missing */
    return setattr("/", MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, e);
}

/* pid 1 only gets signals it handles: SIGTERM from the helper is passed on
 * to every other process of the namespace (the cancel/timeout grace). */
static void forward_term(int sig)
{
    (void)sig;
    kill(-1, SIGTERM);
}

static int64_t tv_ms(struct timeval tv)
{
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* The main task has ended with status st: kill everything else in the
 * namespace and reap it all (orphans are ours, so ECHILD means none is
 * left: no background process can write to the outputs any more), then
 * report. The parent sends the outcome on at once, without waiting for the
 * namespaces' teardown that follows our exit. */
static _Noreturn void report(int fd, int st)
{
    struct jr_sb_report r;
    struct rusage self, kids;
    ssize_t n;
    memset(&r, 0, sizeof(r));
    r.status = st;
    kill(-1, SIGKILL); /* all but pid 1; a racing fork fails: its parent is dying */
    while (waitpid(-1, NULL, __WALL) > 0 || errno == EINTR)
        ;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &kids);
    r.cpu_ms = tv_ms(self.ru_utime) + tv_ms(self.ru_stime) + tv_ms(kids.ru_utime) +
               tv_ms(kids.ru_stime);
    r.max_rss = (self.ru_maxrss > kids.ru_maxrss ? self.ru_maxrss : kids.ru_maxrss) * 1024LL;
    do
        n = write(fd, &r, sizeof(r));
    while (n < 0 && errno == EINTR);
    _exit(0);
}

static _Noreturn void be_init(const struct jr_sb_child *c, pid_t task)
{
    struct sigaction sa;
    sigset_t all;
    int fd = c->status_fd;
    /* Keep only the status pipe: stdio (the task has its copies; ours would
     * keep the daemon's pipes open through the teardown) and everything
     * else go. status_fd > 2: stdio was open when the pipes were made. */
    syscall(SYS_close_range, 0U, (unsigned)fd - 1, 0U);
    syscall(SYS_close_range, (unsigned)fd + 1, ~0U, 0U);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = forward_term;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    for (;;) {
        int st;
        pid_t p = waitpid(-1, &st, __WALL);
        if (p == task)
            report(fd, st);
        if (p < 0 && errno == ECHILD)
            _exit(0);
    }
}

/* Waits for the task (box.c's message on task_fd): its header into m, its
 * fds (stdout, stderr, one per bind) into fds, its options parsed into o
 * (their strings in a buffer of ours). 0; -1 when the helper gave up (EOF);
 * else fails with e. */
static int receive_task(const struct jr_sb_child *c, struct jr_sb_task_msg *m,
                        int *fds, int *nfds, struct jr_sandbox_opts *o,
                        struct jr_sb_err *e)
{
    union {
        char buf[CMSG_SPACE((2 + JR_SB_MAX_BINDS) * sizeof(int))];
        struct cmsghdr align;
    } u;
    struct iovec iov = {m, sizeof(*m)};
    struct msghdr mh;
    char **args, *words, err[256];
    ssize_t n;
    int argc = 0;

    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = u.buf;
    mh.msg_controllen = sizeof(u.buf);
    *nfds = 0;
    do
        n = recvmsg(c->task_fd, &mh, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return -1;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
            *nfds = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            memcpy(fds, CMSG_DATA(cm), (size_t)*nfds * sizeof(int));
        }
    if ((size_t)n < sizeof(*m) && jr_sb_read_full(c->task_fd, (char *)m + n, sizeof(*m) - (size_t)n))
        return -1;
    if ((mh.msg_flags & MSG_CTRUNC) || m->len == 0 || m->len > JR_SBS_MAX_ARGS ||
        m->nbinds > JR_SB_MAX_BINDS || *nfds != 2 + (int)m->nbinds)
        return jr_sb_fail(e, "task", EPROTO, "a malformed task from the helper");
    if (!(words = malloc(m->len)))
        return jr_sb_fail(e, "task", ENOMEM, "the task's options");
    if (jr_sb_read_full(c->task_fd, words, m->len) || words[m->len - 1])
        return -1;
    close(c->task_fd);
    for (uint32_t i = 0; i < m->len; i++)
        argc += words[i] == 0;
    if (!(args = calloc((size_t)argc + 1, sizeof(*args))))
        return jr_sb_fail(e, "task", ENOMEM, "the task's options");
    for (uint32_t i = 0, k = 0; i < m->len; i += (uint32_t)strlen(words + i) + 1)
        args[k++] = words + i;
    /* The words the helper parsed: they parse the same here. */
    if (jr_sandbox_parse(argc, args, o, err, sizeof(err)) || o->nbinds != (int)m->nbinds)
        return jr_sb_fail(e, "task", EINVAL, "its options: %s", err);
    return 0;
}

_Noreturn void jr_sb_child_main(const struct jr_sb_child *c)
{
    struct jr_sb_err e;
    struct jr_sb_child t = *c;   /* with the task's options, once they come */
    struct jr_sandbox_opts o;
    struct jr_sb_task_msg m;
    int fds[2 + JR_SB_MAX_BINDS], nfds;
    const char *envp[JR_SB_MAX_ENV + 9];
    char proxy_kv[4][48];
    char b;
    ssize_t n;
    memset(&e, 0, sizeof(e));
    /* A stop (SIGTERM from the helper) may come from now on. pid 1 of a
     * namespace drops a signal it has no handler for, and the task does not
     * exist yet: with the handler set and SIGTERM blocked it stays pending,
     * and be_init passes it on once the task has started. */
    struct sigaction term_sa;
    sigset_t term;
    memset(&term_sa, 0, sizeof(term_sa));
    term_sa.sa_handler = forward_term;
    term_sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &term_sa, NULL);
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, NULL);
    for (int i = 0; i < c->nclose; i++)
        close(c->close_fds[i]);
    do
        n = read(c->sync_fd, &b, 1);
    while (n < 0 && errno == EINTR);
    if (n != 1)
        _exit(125); /* the parent gave up */
    close(c->sync_fd);
    if (setresgid(0, 0, 0) || setresuid(0, 0, 0))
        jr_sb_child_fail(c, (jr_sb_fail(&e, "setuid", errno, "becoming root in the user namespace"), &e));
    /* Die with the helper. Set after the uid change, which clears it; if the
     * helper is already gone, its end of the error pipe is closed. */
    struct pollfd gone = {c->err_fd, 0, 0};
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) ||
        (poll(&gone, 1, 0) == 1 && (gone.revents & POLLERR)))
        _exit(125);
    /* ps in the sandbox shows "jobrt-init", not the helper's command line
     * (host paths) or environment; the stale-cgroup sweep leaves a leaf
     * holding a "jobrt-init" alone, a warm one's too. */
    if (c->title && c->title_len > 1) {
        memset(c->title, 0, c->title_len);
        snprintf(c->title, c->title_len, "jobrt-init");
    }
    prctl(PR_SET_NAME, "jobrt-init", 0, 0, 0);
    if (c->netns && loopback_up(&e))
        jr_sb_child_fail(c, &e);
    if (build_base(c, &e))
        jr_sb_child_fail(c, &e);

    /* Ready: all that is left depends on the task. */
    if (receive_task(c, &m, fds, &nfds, &o, &e)) {
        if (e.stage[0])
            jr_sb_child_fail(c, &e);
        _exit(125); /* the helper let this sandbox go unused */
    }
    t.o = &o;
    if (sethostname(o.hostname, strlen(o.hostname)))
        jr_sb_child_fail(c, (jr_sb_fail(&e, "hostname", errno, "%s", o.hostname), &e));
    if (c->proxy_fd >= 0 && o.network == JR_SB_NET_ALLOW)
        pass_listener(&t);
    else if (c->proxy_fd >= 0)
        close(c->proxy_fd);
    if (finish_root(&t, fds + 2, m.is_dir, &e))
        jr_sb_child_fail(c, &e);
    if (dup2(fds[0], 1) < 0 || dup2(fds[1], 2) < 0)
        jr_sb_child_fail(c, (jr_sb_fail(&e, "stdio", errno, "the task's output"), &e));
    for (int i = 0; i < nfds; i++)
        close(fds[i]);
    jr_sb_build_env(&o, envp, &t.path, proxy_kv);
    t.envp = (char *const *)envp;
    /* The task shares our memory until its exec, as with vfork, and we
     * wait meanwhile: a copy of our pages (and the faults on them that
     * follow) costs more than the rest of the sandbox's start on a VM.
     * Its stack is this buffer, in our frame, which stays until we exit. */
    _Alignas(16) char task_stack[TASK_STACK];
    pid_t task = clone(jr_sb_task_main, task_stack + sizeof(task_stack),
                       CLONE_VM | CLONE_VFORK | SIGCHLD, (void *)&t);
    if (task < 0)
        jr_sb_child_fail(c, (jr_sb_fail(&e, "fork", errno, "the task"), &e));
    be_init(&t, task);
}
