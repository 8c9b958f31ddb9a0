/* The daemon's side of the sandbox server: see sbserver.h and, for the
 * wire, sandbox/server.h. Requests go out on a blocking control socket with
 * send and receive timeouts, so a wedged server costs one bounded wait and
 * is then given up; exit notices come in on a non-blocking events socket
 * watched by the loop. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "exec/sbserver.h"
#include "loop.h"
#include "sandbox/server.h"

#define IO_TIMEOUT_S 10
#define STOP_TIMEOUT_MS 5000

struct jr_sbs {
    uv_loop_t *loop;
    uv_process_t proc;
    uv_poll_t poll;
    uv_timer_t timer;            /* closing: a server that does not go is
                                  * killed; lost: the deferred notice */
    int ctl, events;             /* our ends; ctl -1 once closed */
    int open_handles;
    int lost;                    /* no more requests; the notice is due */
    int notified;                /* the owner was told (pid 0) */
    int closing;                 /* jr_sbs_close was called */
    int released;                /* the handles are closing: s goes with them */
    int exited;                  /* the server process was reaped */
    jr_sbs_exit_cb cb;
    void *owner;
    char buf[sizeof(struct jr_sbs_exit)];
    size_t have;
};

static void on_closed(uv_handle_t *h)
{
    struct jr_sbs *s = h->data;

    if (--s->open_handles > 0)
        return;
    if (s->ctl >= 0)
        close(s->ctl);
    close(s->events);
    free(s);
}

/* Told and closing: the poll and the timer close now, the process handle
 * once the server is reaped (on_server_exit). */
static void release(struct jr_sbs *s)
{
    if (s->released)
        return;
    s->released = 1;
    uv_close((uv_handle_t *)&s->poll, on_closed);
    uv_close((uv_handle_t *)&s->timer, on_closed);
    if (s->exited && !uv_is_closing((uv_handle_t *)&s->proc))
        uv_close((uv_handle_t *)&s->proc, on_closed);
}

static void on_lost_notice(uv_timer_t *t)
{
    struct jr_sbs *s = t->data;

    s->notified = 1;
    s->cb(s->owner, s, 0, -1);
    if (s->closing)
        release(s);
}

/* The server is gone, or must go: it is killed (so it cannot act on a
 * half-sent request later), and the owner is told once, from the loop
 * (never inside a start or a kill of its own), that no notice will come
 * for the helpers still running. */
static void lose(struct jr_sbs *s)
{
    if (s->lost)
        return;
    s->lost = 1;
    uv_poll_stop(&s->poll);
    if (!s->exited)
        uv_process_kill(&s->proc, SIGKILL);
    uv_timer_start(&s->timer, on_lost_notice, 0, 0);
}

/* Every exit notice that has arrived; at EOF or an error, lose. */
static void drain(struct jr_sbs *s)
{
    while (!s->lost) {
        ssize_t n = read(s->events, s->buf + s->have, sizeof(s->buf) - s->have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            lose(s);
            return;
        }
        s->have += (size_t)n;
        if (s->have == sizeof(s->buf)) {
            struct jr_sbs_exit ev;
            memcpy(&ev, s->buf, sizeof(ev));
            s->have = 0;
            if (ev.pid > 0)
                s->cb(s->owner, s, ev.pid, ev.status);
        }
    }
}

static void on_server_exit(uv_process_t *h, int64_t status, int signum)
{
    struct jr_sbs *s = h->data;

    s->exited = 1;
    if (!s->closing)
        jr_log(NULL, JR_LOG_WARN,
               "the sandbox server exited (status %lld, signal %d); a new one starts "
               "with the next task", (long long)status, signum);
    drain(s); /* the notices it sent before it went still count */
    lose(s);
    if (s->released && !uv_is_closing((uv_handle_t *)&s->proc))
        uv_close((uv_handle_t *)&s->proc, on_closed);
}

static void on_stop_timeout(uv_timer_t *t)
{
    lose(t->data);
}

static void on_events(uv_poll_t *h, int status, int events)
{
    struct jr_sbs *s = h->data;

    (void)events;
    if (status < 0)
        lose(s);
    else
        drain(s);
}

int jr_sbs_spawn(uv_loop_t *loop, const char *helper, const char *cgroup_parent,
                 jr_sbs_exit_cb cb, void *owner, struct jr_sbs **out, struct jr_err *e)
{
    struct jr_sbs *s = calloc(1, sizeof(*s));
    int ctl[2] = {-1, -1}, ev[2] = {-1, -1}, r;
    struct timeval tv = {IO_TIMEOUT_S, 0};
    char *args[] = {(char *)helper, "sandbox-server", cgroup_parent ? "--cgroup-parent" : NULL,
                    (char *)cgroup_parent, NULL};
    char *env[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL};
    uv_process_options_t opt;
    uv_stdio_container_t stdio[5];

    *out = NULL;
    if (!s)
        return jr_err_set(e, JR_E_SYSTEM, "out of memory");
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl) ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, ev)) {
        r = errno;
        goto fail_errno;
    }
    if (setsockopt(ctl[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) ||
        setsockopt(ctl[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv))) {
        r = errno;
        goto fail_errno;
    }
    memset(stdio, 0, sizeof(stdio));
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_IGNORE;
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = 2;
    stdio[3].flags = UV_INHERIT_FD;
    stdio[3].data.fd = ctl[1];
    stdio[4].flags = UV_INHERIT_FD;
    stdio[4].data.fd = ev[1];
    memset(&opt, 0, sizeof(opt));
    opt.exit_cb = on_server_exit;
    opt.file = helper;
    opt.args = args;
    opt.env = env;
    /* Its own session: a ^C at the daemon's terminal is the daemon's. */
    opt.flags = UV_PROCESS_DETACHED;
    opt.stdio_count = 5;
    opt.stdio = stdio;
    s->proc.data = s->poll.data = s;
    r = uv_spawn(loop, &s->proc, &opt);
    close(ctl[1]);
    close(ev[1]);
    if (r != 0) {
        /* The handle must still be closed; then s goes. */
        s->ctl = ctl[0];
        s->events = ev[0];
        s->open_handles = 1;
        uv_close((uv_handle_t *)&s->proc, on_closed);
        return jr_err_set(e, JR_E_SYSTEM, "spawn %s sandbox-server: %s", helper,
                          uv_strerror(r));
    }
    s->loop = loop;
    s->ctl = ctl[0];
    s->events = ev[0];
    s->cb = cb;
    s->owner = owner;
    s->open_handles = 3;
    uv_poll_init(loop, &s->poll, s->events);
    uv_poll_start(&s->poll, UV_READABLE, on_events);
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    *out = s;
    return JR_OK;
fail_errno:
    for (int i = 0; i < 2; i++) {
        if (ctl[i] >= 0)
            close(ctl[i]);
        if (ev[i] >= 0)
            close(ev[i]);
    }
    free(s);
    return jr_err_set(e, JR_E_SYSTEM, "sandbox server sockets: %s", strerror(r));
}

/* All of the message, or -1 (a short send leaves the stream unusable). */
static int send_msg(struct jr_sbs *s, struct iovec *iov, int niov, const int *fds, int nfds)
{
    union {
        char buf[CMSG_SPACE(4 * sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr m;
    size_t total = 0, sent = 0;

    memset(&m, 0, sizeof(m));
    m.msg_iov = iov;
    m.msg_iovlen = (size_t)niov;
    if (nfds > 0) {
        memset(&u, 0, sizeof(u));
        m.msg_control = u.buf;
        m.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
    }
    for (int i = 0; i < niov; i++)
        total += iov[i].iov_len;
    while (sent < total) {
        ssize_t n = sendmsg(s->ctl, &m, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        sent += (size_t)n;
        /* The rest goes without the fds: skip what went. */
        m.msg_control = NULL;
        m.msg_controllen = 0;
        while (n > 0 && m.msg_iovlen > 0) {
            if ((size_t)n >= m.msg_iov->iov_len) {
                n -= (ssize_t)m.msg_iov->iov_len;
                m.msg_iov++;
                m.msg_iovlen--;
            } else {
                m.msg_iov->iov_base = (char *)m.msg_iov->iov_base + n;
                m.msg_iov->iov_len -= (size_t)n;
                n = 0;
            }
        }
    }
    return 0;
}

int jr_sbs_start(struct jr_sbs *s, char *const *words, const int fds[4], int32_t *pid,
                 struct jr_err *e)
{
    struct jr_sbs_req req = {JR_SBS_START, 0, 0, 0};
    struct jr_sbs_reply rep;
    struct iovec iov[2];
    size_t len = 0, got = 0;
    char *buf;

    if (s->lost || s->closing)
        return jr_err_set(e, JR_E_SYSTEM, "the sandbox server is gone");
    for (char *const *w = words; *w; w++)
        len += strlen(*w) + 1;
    if (len == 0 || len > JR_SBS_MAX_ARGS)
        return jr_err_set(e, JR_E_INVALID, "the task's command line and environment take "
                          "%zu bytes (at most %u)", len, JR_SBS_MAX_ARGS);
    if (!(buf = malloc(len)))
        return jr_err_set(e, JR_E_SYSTEM, "out of memory");
    for (char *const *w = words; *w; w++) {
        size_t n = strlen(*w) + 1;
        memcpy(buf + got, *w, n);
        got += n;
    }
    req.len = (uint32_t)len;
    iov[0].iov_base = &req;
    iov[0].iov_len = sizeof(req);
    iov[1].iov_base = buf;
    iov[1].iov_len = len;
    if (send_msg(s, iov, 2, fds, 4)) {
        free(buf);
        lose(s);
        return jr_err_set(e, JR_E_SYSTEM, "the sandbox server took no request: %s",
                          strerror(errno));
    }
    free(buf);
    got = 0;
    while (got < sizeof(rep)) {
        ssize_t n = read(s->ctl, (char *)&rep + got, sizeof(rep) - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int err = n < 0 ? errno : EPIPE;
            lose(s);
            return jr_err_set(e, JR_E_SYSTEM, "the sandbox server did not answer: %s",
                              err == EAGAIN ? "timed out" : strerror(err));
        }
        got += (size_t)n;
    }
    if (rep.pid <= 0)
        return jr_err_set(e, JR_E_SYSTEM, "the sandbox server could not start a helper: %s",
                          strerror(rep.pid < 0 ? -rep.pid : EINVAL));
    *pid = rep.pid;
    return JR_OK;
}

int jr_sbs_kill(struct jr_sbs *s, int32_t pid, int signum, int group)
{
    struct jr_sbs_req req = {group ? JR_SBS_KILL_GROUP : JR_SBS_KILL, pid, signum, 0};
    struct iovec iov = {&req, sizeof(req)};

    if (s->lost || s->closing)
        return -1;
    if (send_msg(s, &iov, 1, NULL, 0)) {
        lose(s);
        return -1;
    }
    return 0;
}

int jr_sbs_alive(const struct jr_sbs *s)
{
    return !s->lost && !s->closing;
}

void jr_sbs_close(struct jr_sbs *s)
{
    if (s->closing)
        return;
    s->closing = 1;
    /* EOF on its control socket is the server's signal to stop. */
    close(s->ctl);
    s->ctl = -1;
    if (s->notified)
        release(s);
    else if (!s->lost)
        uv_timer_start(&s->timer, on_stop_timeout, STOP_TIMEOUT_MS, 0);
    /* else the notice is due, and release follows it */
}
