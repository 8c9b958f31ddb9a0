/* `jobrt sandbox`: the supervising parent. It prepares everything before the
 * clone (seccomp BPF, mount plan, cgroups), clones the namespaced child,
 * maps its ids, has supervise.c watch it, and reports the outcome as one
 * JSON line on the status fd, or with --spool through the shim (to the
 * attached daemon, or kept in the spool; shim.c). */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sandbox/internal.h"

#define HOST_ID_BASE 100000  /* ns id 0 = host 100000 when we are root */
#define ACK_WAIT_MS 10000    /* a daemon's 'k' for the outcome: then it is
                              * its to keep (its commit comes first) */
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static int env_has(const struct jr_sandbox_opts *o, const char *kv)
{
    size_t k = strcspn(kv, "=") + 1;
    for (int i = 0; i < o->nenv; i++)
        if (strncmp(o->env[i], kv, k) == 0)
            return 1;
    return 0;
}

/* envp: the user's entries, plus PATH and HOME unless given, and for
 * network allow the proxy variables (unless given). proxy_kv holds their
 * text: 4 * 48 bytes. */
static void build_env(const struct jr_sandbox_opts *o, const char **envp,
                      const char **path, char (*proxy_kv)[48])
{
    int n = 0, has_path = 0, has_home = 0;
    *path = DEFAULT_PATH;
    for (int i = 0; i < o->nenv; i++) {
        if (strncmp(o->env[i], "PATH=", 5) == 0) {
            has_path = 1;
            *path = o->env[i] + 5;
        }
        has_home |= strncmp(o->env[i], "HOME=", 5) == 0;
        envp[n++] = o->env[i];
    }
    if (!has_path)
        envp[n++] = "PATH=" DEFAULT_PATH;
    if (!has_home)
        envp[n++] = "HOME=/tmp";
    if (o->network == JR_SB_NET_ALLOW) {
        static const char *const names[] = {"HTTP_PROXY", "HTTPS_PROXY", "http_proxy",
                                            "https_proxy"};
        for (int i = 0; i < 4; i++) {
            snprintf(proxy_kv[i], 48, "%s=http://127.0.0.1:%d", names[i], o->proxy_port);
            if (!env_has(o, proxy_kv[i]))
                envp[n++] = proxy_kv[i];
        }
        if (!env_has(o, "NO_PROXY="))
            envp[n++] = "NO_PROXY=localhost,127.0.0.1";
        if (!env_has(o, "no_proxy="))
            envp[n++] = "no_proxy=localhost,127.0.0.1";
    }
    envp[n] = NULL;
}

static int write_map(pid_t pid, const char *file, const char *text,
                     struct jr_sb_err *e)
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

static void setup_error(struct jr_sandbox_outcome *oc, const struct jr_sb_err *e)
{
    oc->kind = JR_SB_SETUP_ERROR;
    snprintf(oc->stage, sizeof(oc->stage), "%s", e->stage);
    oc->err = e->err;
    snprintf(oc->message, sizeof(oc->message), "%s: %s", e->detail, strerror(e->err));
}

/* Blocks until "go\n" arrives on fd (0), or EOF, anything else or a
 * cancel signal on sigfd (-1): the daemon has not recorded the task as
 * running, so it must not start. */
static int wait_gate(int fd, int sigfd)
{
    char buf[4];
    size_t got = 0;
    for (;;) {
        struct pollfd p[2] = {{fd, POLLIN, 0}, {sigfd, POLLIN, 0}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (p[1].revents & POLLIN)
            return -1;
        if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        ssize_t n = read(fd, buf + got, sizeof(buf) - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
        if (got >= 3)
            return memcmp(buf, "go\n", 3) == 0 ? 0 : -1;
    }
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

size_t jr_sb_title_area(int argc, char **argv, char **start)
{
    extern char **environ;
    char *end = argv[argc - 1] + strlen(argv[argc - 1]) + 1;
    for (char **e = environ; e && *e; e++)
        if (*e == end)
            end = *e + strlen(*e) + 1;
    *start = argv[0];
    return (size_t)(end - argv[0]);
}

static int emit(int fd, const struct jr_sandbox_outcome *oc);

static int64_t wall_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The outcome to whoever waits for it: 1 when it went out, -1 when not.
 * With a shim, the task's last output is spooled first (every writer is
 * gone by now), so the outcome follows all of it; settle() then waits for
 * the daemon's word that it has it. */
static int deliver(struct jr_sb_sup *s, struct jr_sandbox_outcome *oc)
{
    int n, rc;

    oc->ended_ms = wall_clock_ms();
    if (!s->shim) {
        rc = emit(s->o->status_fd, oc);
        close(s->o->status_fd);
        return rc == 0 ? 1 : -1;
    }
    if (s->spool) {
        /* Our messages' pipe ends here (our stderr is its write end). */
        int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (null < 0 || dup2(null, 2) < 0)
            close(2);
        if (null >= 0)
            close(null);
        jr_sb_spool_drain(s->spool, 2000);
    }
    n = jr_sandbox_outcome_json(oc, s->outcome, sizeof(s->outcome));
    s->outcome_len = n > 0 ? (size_t)n : 0;
    if (n <= 0)
        return -1;
    /* Even unsent it is not lost: settle() keeps it in the spool. */
    jr_sb_shim_send(s->shim, s->outcome, s->outcome_len);
    return 1;
}

/* The helper's last word with a shim, once its sandbox is torn down: a
 * daemon that acknowledged the outcome has it on disk; else it goes into
 * the spool for whichever daemon comes next. */
static void settle(struct jr_sb_sup *s)
{
    if (!s->shim)
        return;
    if (!jr_sb_shim_acked(s->shim, ACK_WAIT_MS) && s->spool && s->outcome_len)
        jr_sb_spool_result(s->spool, s->outcome, s->outcome_len);
    jr_sb_shim_close(s->shim);
    s->shim = NULL;
    if (s->spool)
        jr_sb_spool_close(s->spool);
    s->spool = NULL;
}

/* The outcome is final once pid 1 has reported (the task's processes are
 * all dead and reaped): send it now, then let the namespaces' teardown and
 * the cgroups' removal happen while the daemon goes on. The status fd and
 * our stdio close, so the daemon sees every pipe end; it still reaps us. */
static void report_early(struct jr_sb_sup *s, struct jr_sandbox_outcome *oc, int *emitted)
{
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (s->have_cg)
        jr_sb_cg_kill(&s->cg); /* belt and braces: a pid namespace escapee */
    oc->wall_ms = jr_sb_now_ms() - s->t0;
    *emitted = deliver(s, oc);
    if (s->proxy) {
        jr_sb_proxy_close(s->proxy);
        s->proxy = NULL;
    }
    if (null >= 0) {
        dup2(null, 1);
        dup2(null, 2);
        close(null);
    }
}

/* Sets *emitted to 1 when the outcome went out, -1 when it could not. */
static void run(const struct jr_sandbox_opts *o, struct jr_sandbox_outcome *oc,
                char *title, size_t title_len, const struct jr_sb_host *host,
                int *emitted)
{
    struct jr_sb_sup s;
    struct jr_sb_err e;
    struct jr_sb_plan *plan = calloc(1, sizeof(*plan));
    const char *envp[JR_SB_MAX_ENV + 9], *path;
    char name[64], proxy_kv[4][48];
    int sync_p[2] = {-1, -1}, err_p[2] = {-1, -1}, status_p[2] = {-1, -1};
    int proxy_p[2] = {-1, -1};
    struct jr_sb_proxy proxy;
    struct jr_sb_shim shim;
    struct jr_sb_spool spool;
    int out_w[JR_SB_SPOOL_IN] = {-1, -1, -1}, null = -1;
    int cgfd = -1, into_cgroup = 0, rootless = geteuid() != 0, image_lock = -1;
    int netns = o->network != JR_SB_NET_FULL; /* allow fails closed to none */
    sigset_t sigs;
    siginfo_t si;

    memset(&s, 0, sizeof(s));
    memset(&e, 0, sizeof(e));
    /* A gone reader (a daemon that died) is an error to handle, never our
     * end: the task gets every signal back at its exec. */
    signal(SIGPIPE, SIG_IGN);
    s.o = o;
    s.pidfd = s.sigfd = s.err_r = s.status_r = -1;
    s.kill_at = -1;
    s.t0 = jr_sb_now_ms();
    spool.fd = spool.in[0] = spool.in[1] = spool.in[2] = -1;
    /* First of all: with a spool the outcome goes through the shim. */
    if (o->spool) {
        if (jr_sb_shim_open(&shim, o, &e)) {
            jr_sb_shim_close(&shim);
            setup_error(oc, &e);
            *emitted = emit(o->status_fd, oc) == 0 ? 1 : -1;
            free(plan);
            return;
        }
        s.shim = &shim;
        if (jr_sb_spool_open(&spool, o->spool, o->log_cap, &e))
            goto fail;
        s.spool = &spool;
    }
    if (!plan) {
        jr_sb_fail(&e, "memory", ENOMEM, "mount plan");
        goto fail;
    }
    for (int i = 0; i < JR_SB_NDEV; i++)
        plan->dev_fd[i] = -1;
    oc->layers = 1u << JR_SB_USERNS | 1u << JR_SB_MOUNTNS | 1u << JR_SB_PIDNS |
                 1u << JR_SB_IPCNS | 1u << JR_SB_UTSNS | 1u << JR_SB_CGROUPNS |
                 (netns ? 1u << JR_SB_NETNS : 0) | 1u << JR_SB_PIVOT_ROOT |
                 1u << JR_SB_NO_NEW_PRIVS | 1u << JR_SB_CAPS | 1u << JR_SB_SECCOMP |
                 1u << JR_SB_RLIMITS;
    if (o->cgroup_name)
        snprintf(name, sizeof(name), "%s", o->cgroup_name);
    else
        snprintf(name, sizeof(name), "sandbox-%d", (int)getpid());

    /* SIGTERM/SIGINT/SIGHUP = cancel, read from a signalfd. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    sigprocmask(SIG_BLOCK, &sigs, NULL);
    if ((s.sigfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
        jr_sb_fail(&e, "signalfd", errno, "signalfd");
        goto fail;
    }
    build_env(o, envp, &path, proxy_kv);
    /* The image store's use lock: held for our whole life (close-on-exec,
     * and pid 1 closes its copy), so the image is not removed under the
     * task; an image removed before we got here is gone for good. */
    if (o->image_lock) {
        struct stat lst;
        image_lock = open(o->image_lock, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        while (image_lock >= 0 && flock(image_lock, LOCK_SH) && errno == EINTR)
            ;
        if (image_lock < 0 || fstat(image_lock, &lst) || lst.st_nlink == 0) {
            jr_sb_fail(&e, "image", image_lock < 0 ? errno : ENOENT,
                       "the image was removed from the store");
            goto fail;
        }
    }
    if (jr_sb_plan_build(plan, o, &e))
        goto fail;
    for (int i = 0; !rootless && i < o->nbinds; i++) {
        uid_t id = (uid_t)(HOST_ID_BASE + o->uid);
        gid_t gid = (gid_t)(HOST_ID_BASE + o->gid);
        if (o->binds[i].rw && chown(o->binds[i].src, id, gid)) {
            jr_sb_fail(&e, "bind_rw", errno, "chown %s", o->binds[i].src);
            goto fail;
        }
    }
    if (jr_sb_cg_setup(&s.cg, o, name, host, &e))
        goto fail;
    s.have_cg = 1;
    oc->layers |= s.cg.layers;
    if (pipe2(sync_p, O_CLOEXEC) || pipe2(err_p, O_CLOEXEC) || pipe2(status_p, O_CLOEXEC)) {
        jr_sb_fail(&e, "pipe", errno, "pipes");
        goto fail;
    }
    /* allow: pid 1 passes the proxy's listener back on this pair. */
    if (o->network == JR_SB_NET_ALLOW &&
        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, proxy_p)) {
        jr_sb_fail(&e, "proxy", errno, "socketpair");
        goto fail;
    }
    cgfd = jr_sb_cg_v2_fd(&s.cg);
    if (o->gate_fd >= 0) {
        int go = wait_gate(o->gate_fd, s.sigfd);
        close(o->gate_fd);
        if (go) {
            oc->kind = JR_SB_CANCELED;
            snprintf(oc->message, sizeof(oc->message),
                     "never started: the gate closed before \"go\"");
            goto done;
        }
        s.t0 = jr_sb_now_ms(); /* the timeout and wall time count from here */
    }

    /* The task writes its output to us, and we to the spool: stdout and
     * stderr are the pipes' write ends until the clone has its copies. */
    if (s.spool) {
        if ((null = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0 ||
            jr_sb_spool_pipes(&spool, out_w, &e) || dup2(out_w[0], 1) < 0 ||
            dup2(out_w[1], 2) < 0) {
            if (!e.stage[0])
                jr_sb_fail(&e, "spool", errno, "the task's output");
            goto fail;
        }
    }
    struct jr_sb_child c = {
        .o = o, .plan = plan, .filter = &host->filter, .envp = (char *const *)envp,
        .path = path, .sync_fd = sync_p[0], .err_fd = err_p[1],
        .status_fd = status_p[1], .netns = netns, .rootless = rootless,
        .proxy_fd = proxy_p[1], .cap_last = host->cap_last,
        .close_fds = {sync_p[1], err_p[0], status_p[0], s.sigfd, proxy_p[0], cgfd,
                      s.shim ? shim.conn : o->status_fd, s.shim ? shim.lfd : -1,
                      spool.in[0], spool.in[1], spool.in[2], out_w[2]},
        .nclose = 12,
    };
    c.title = title;
    c.title_len = title_len;
    struct clone_args args;
    memset(&args, 0, sizeof(args));
    args.flags = CLONE_PIDFD | CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID |
                 CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP |
                 (netns ? CLONE_NEWNET : 0) | (cgfd >= 0 ? CLONE_INTO_CGROUP : 0);
    args.pidfd = (uint64_t)(uintptr_t)&s.pidfd;
    args.exit_signal = SIGCHLD;
    args.cgroup = cgfd >= 0 ? (uint64_t)cgfd : 0;
    s.pid = clone_child(&args, &into_cgroup);
    if (s.pid == 0)
        jr_sb_child_main(&c);
    if (s.pid < 0) {
        jr_sb_fail(&e, "clone", errno, "clone3");
        goto fail;
    }
    if (s.spool) {
        /* The end of the task's output is the end of its copies; our own
         * messages (the proxy's) still reach the spool, as stderr. */
        dup2(null, 1);
        dup2(out_w[2], 2);
        for (int k = 0; k < JR_SB_SPOOL_IN; k++) {
            close(out_w[k]);
            out_w[k] = -1;
        }
    }
    close(sync_p[0]);
    close(err_p[1]);
    close(status_p[1]);
    sync_p[0] = err_p[1] = status_p[1] = -1;
    s.err_r = err_p[0];
    s.status_r = status_p[0];
    err_p[0] = status_p[0] = -1;
    if (proxy_p[0] >= 0) {
        close(proxy_p[1]);
        jr_sb_proxy_init(&proxy, o, proxy_p[0]);
        proxy_p[0] = proxy_p[1] = -1;
        s.proxy = &proxy;
    }
    if (map_ids(s.pid, rootless, &e) || jr_sb_cg_join(&s.cg, s.pid, into_cgroup, &e) ||
        write(sync_p[1], "g", 1) != 1) {
        if (!e.stage[0])
            jr_sb_fail(&e, "sync", errno, "releasing the child");
        jr_sb_hard_kill(&s);
        syscall(SYS_waitid, P_PIDFD, s.pidfd, &si, WEXITED, NULL);
        goto fail;
    }
    close(sync_p[1]);
    sync_p[1] = -1;

    memset(&si, 0, sizeof(si));
    if (jr_sb_supervise(&s, &si)) {
        jr_sb_classify(&s, &si, oc);
        report_early(&s, oc, emitted);
        while (syscall(SYS_waitid, P_PIDFD, s.pidfd, &si, WEXITED, NULL) && errno == EINTR)
            ;
    } else {
        jr_sb_classify(&s, &si, oc);
    }
    goto done;
fail:
    setup_error(oc, &e);
done:
    if (out_w[0] >= 0) { /* no task: our own copies would keep its output open */
        for (int fd = 1; fd <= 2; fd++)
            if (null < 0 || dup2(null, fd) < 0)
                close(fd);
        for (int k = 0; k < JR_SB_SPOOL_IN; k++) {
            close(out_w[k]);
            out_w[k] = -1;
        }
    }
    if (s.have_cg) {
        jr_sb_cg_kill(&s.cg);
        jr_sb_cg_destroy(&s.cg);
    }
    if (!*emitted) {
        oc->wall_ms = jr_sb_now_ms() - s.t0;
        *emitted = deliver(&s, oc);
    }
    settle(&s);
    if (s.proxy)
        jr_sb_proxy_close(s.proxy);
    int fds[] = {sync_p[0], sync_p[1], err_p[0], err_p[1], status_p[0], status_p[1],
                 proxy_p[0], proxy_p[1], s.err_r, s.status_r, s.pidfd, s.sigfd, cgfd,
                 out_w[0], out_w[1], out_w[2], null, image_lock};
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        if (fds[i] >= 0)
            close(fds[i]);
    if (plan)
        jr_sb_plan_close(plan);
    free(plan);
}

/* 0 when the whole line went out. */
static int emit(int fd, const struct jr_sandbox_outcome *oc)
{
    char buf[2048];
    int n = jr_sandbox_outcome_json(oc, buf, sizeof(buf));
    for (int off = 0; n > 0 && off < n;) {
        ssize_t w = write(fd, buf + off, (size_t)(n - off));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        off += (int)w;
    }
    return n > 0 ? 0 : -1;
}

int jr_sandbox_main(int argc, char **argv)
{
    char *title;
    size_t title_len = jr_sb_title_area(argc, argv, &title);

    return jr_sandbox_run(argc, argv, title, title_len, NULL);
}

int jr_sandbox_run(int argc, char **argv, char *title, size_t title_len,
                   const struct jr_sb_host *host)
{
    struct jr_sb_host own;
    struct jr_sandbox_opts o;
    struct jr_sandbox_outcome oc;
    char err[256];
    /* stdio must be open, or our own fds would take 0-2. */
    for (int fd = 0; fd < 3; fd++)
        if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
            return 1;
    memset(&oc, 0, sizeof(oc));
    oc.cpu_ms = oc.max_rss_bytes = oc.wall_ms = -1;
    if (jr_sandbox_parse(argc - 2, argv + 2, &o, err, sizeof(err))) {
        fprintf(stderr, "jobrt sandbox: %s (see jobrt sandbox --help)\n", err);
        oc.kind = JR_SB_SETUP_ERROR;
        snprintf(oc.stage, sizeof(oc.stage), "options");
        oc.err = EINVAL;
        snprintf(oc.message, sizeof(oc.message), "%s", err);
        return fcntl(o.status_fd, F_GETFD) >= 0 && emit(o.status_fd, &oc) == 0 ? 0 : 1;
    }
    if (o.help) {
        fputs(jr_sandbox_usage, stdout);
        return 0;
    }
    if (o.status_fd < 3 || fcntl(o.status_fd, F_SETFD, FD_CLOEXEC) < 0) {
        fprintf(stderr, "jobrt sandbox: status fd %d is not open (or is stdio)\n",
                o.status_fd);
        return 1;
    }
    if (o.gate_fd >= 0 && (o.gate_fd == o.status_fd ||
                           fcntl(o.gate_fd, F_SETFD, FD_CLOEXEC) < 0)) {
        fprintf(stderr, "jobrt sandbox: gate fd %d is not open (or is the status fd)\n",
                o.gate_fd);
        return 1;
    }
    int emitted = 0;
    if (!host) {
        struct jr_sb_err e;
        memset(&e, 0, sizeof(e));
        if (jr_sb_host_init(&own, &e)) {
            jr_sb_host_free(&own);
            setup_error(&oc, &e);
            return emit(o.status_fd, &oc) == 0 ? 0 : 1;
        }
        host = &own;
    }
    run(&o, &oc, title, title_len, host, &emitted);
    if (host == &own)
        jr_sb_host_free(&own);
    return emitted > 0 ? 0 : 1;
}
