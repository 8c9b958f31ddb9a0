/* `jobrt sandbox`: the supervising parent. It takes a warm sandbox (made
 * before its task was known, box.c) when one fits, or prepares its own,
 * adds the task's binds and cgroups, sends pid 1 its task once the gate
 * opens, has supervise.c watch it, and reports the outcome as one JSON
 * line on the status fd, or with --spool through the shim (to the
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

#define ACK_WAIT_MS 10000    /* a daemon's 'k' for the outcome: then it is
                              * its to keep (its commit comes first) */

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

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

/* The options' words as pid 1 gets them, each NUL-terminated (taken before
 * they are parsed: parsing cuts binds at their ':'): *len bytes, or NULL. */
static char *join_words(int n, char **words, size_t *len)
{
    char *buf, *p;
    *len = 0;
    for (int i = 0; i < n; i++)
        *len += strlen(words[i]) + 1;
    if (*len == 0 || !(buf = malloc(*len)))
        return NULL;
    p = buf;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(words[i]) + 1;
        memcpy(p, words[i], l);
        p += l;
    }
    return buf;
}

/* Sets *emitted to 1 when the outcome went out, -1 when it could not. warm:
 * a sandbox prepared ahead (taken if it fits, else discarded), or NULL. */
static void run(const struct jr_sandbox_opts *o, const char *wbuf, size_t wlen,
                struct jr_sandbox_outcome *oc, char *title, size_t title_len,
                const struct jr_sb_host *host, struct jr_sb_box *warm, int *emitted)
{
    struct jr_sb_sup s;
    struct jr_sb_err e;
    struct jr_sb_box box;
    char name[64];
    struct jr_sb_proxy proxy;
    struct jr_sb_shim shim;
    struct jr_sb_spool spool;
    int out_w[JR_SB_SPOOL_IN] = {-1, -1, -1}, null = -1, pid1_live = 0;
    int rootless = geteuid() != 0, image_lock = -1;
    int netns = o->network != JR_SB_NET_FULL; /* allow fails closed to none */
    sigset_t sigs;
    siginfo_t si;

    memset(&s, 0, sizeof(s));
    memset(&e, 0, sizeof(e));
    memset(&box, 0, sizeof(box));
    box.pidfd = box.err_r = box.status_r = box.task_w = box.proxy_r = -1;
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
            if (warm)
                jr_sb_box_discard(warm);
            setup_error(oc, &e);
            *emitted = emit(o->status_fd, oc) == 0 ? 1 : -1;
            return;
        }
        s.shim = &shim;
        if (jr_sb_spool_open(&spool, o->spool, o->log_cap, &e))
            goto fail;
        s.spool = &spool;
    }
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
    if (!wbuf) {
        jr_sb_fail(&e, "memory", ENOMEM, "the options");
        goto fail;
    }
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
    /* The sandbox: the warm one if it fits, else one of its own. */
    if (warm && jr_sb_box_fits(warm, o)) {
        box = *warm;
    } else {
        int keep[] = {s.sigfd, s.shim ? shim.conn : o->status_fd, s.shim ? shim.lfd : -1,
                      o->gate_fd, image_lock};
        if (warm)
            jr_sb_box_discard(warm);
        if (jr_sb_box_prepare(&box, o->image, o->layers, o->nlayers, netns, o->cgroup_parent,
                              name, host, title, title_len, keep, 5, &e))
            goto fail;
    }
    if (warm)
        warm->pid = 0; /* b's now, or gone */
    /* pid 1 and its cgroup are the supervisor's from here. */
    pid1_live = 1;
    s.pid = box.pid;
    s.pidfd = box.pidfd;
    s.err_r = box.err_r;
    s.status_r = box.status_r;
    box.pidfd = box.err_r = box.status_r = -1;
    s.cg = box.cg;
    s.have_cg = 1;
    if (jr_sb_plan_binds(box.plan, o, &e))
        goto fail;
    for (int i = 0; !rootless && i < o->nbinds; i++) {
        uid_t id = (uid_t)(100000 + o->uid); /* box.c's mapping of o->uid */
        gid_t gid = (gid_t)(100000 + o->gid);
        if (o->binds[i].rw && chown(o->binds[i].src, id, gid)) {
            jr_sb_fail(&e, "bind_rw", errno, "chown %s", o->binds[i].src);
            goto fail;
        }
    }
    if (jr_sb_cg_setup(&s.cg, o, name, host, &e) ||
        jr_sb_cg_join(&s.cg, s.pid, box.into_cgroup, &e))
        goto fail;
    oc->layers |= s.cg.layers;
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

    /* The task writes its output to us, and we to the spool. */
    if (s.spool) {
        if ((null = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0 ||
            jr_sb_spool_pipes(&spool, out_w, &e)) {
            if (!e.stage[0])
                jr_sb_fail(&e, "spool", errno, "the task's output");
            goto fail;
        }
    }
    if (jr_sb_box_start(&box, wbuf, wlen, s.spool ? out_w[0] : 1, s.spool ? out_w[1] : 2,
                        &e))
        goto fail;
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
    if (box.proxy_r >= 0 && o->network == JR_SB_NET_ALLOW) {
        jr_sb_proxy_init(&proxy, o, box.proxy_r);
        box.proxy_r = -1;
        s.proxy = &proxy;
    }

    memset(&si, 0, sizeof(si));
    if (jr_sb_supervise(&s, &si)) {
        jr_sb_classify(&s, &si, oc);
        report_early(&s, oc, emitted);
        while (syscall(SYS_waitid, P_PIDFD, s.pidfd, &si, WEXITED, NULL) && errno == EINTR)
            ;
    } else {
        jr_sb_classify(&s, &si, oc);
    }
    pid1_live = 0;
    goto done;
fail:
    setup_error(oc, &e);
done:
    if (pid1_live) { /* it never ran a task: it goes */
        jr_sb_hard_kill(&s);
        while (syscall(SYS_waitid, P_PIDFD, s.pidfd, &si, WEXITED, NULL) && errno == EINTR)
            ;
    }
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
    jr_sb_box_close(&box);
    int fds[] = {s.err_r, s.status_r, s.pidfd, s.sigfd, out_w[0], out_w[1], out_w[2], null,
                 image_lock};
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        if (fds[i] >= 0)
            close(fds[i]);
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

    return jr_sandbox_run(argc, argv, title, title_len, NULL, NULL);
}

static int sandbox_run(int argc, char **argv, char *title, size_t title_len,
                       const struct jr_sb_host *host, struct jr_sb_box *warm,
                       const char *wbuf, size_t wlen)
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
    run(&o, wbuf, wlen, &oc, title, title_len, host, warm, &emitted);
    if (host == &own)
        jr_sb_host_free(&own);
    return emitted > 0 ? 0 : 1;
}

int jr_sandbox_run(int argc, char **argv, char *title, size_t title_len,
                   const struct jr_sb_host *host, struct jr_sb_box *warm)
{
    size_t wlen = 0;
    char *wbuf = join_words(argc - 2, argv + 2, &wlen);
    int rc = sandbox_run(argc, argv, title, title_len, host, warm, wbuf, wlen);

    if (warm && warm->pid > 0) /* not taken (the options were wrong) */
        jr_sb_box_discard(warm);
    free(wbuf);
    return rc;
}
