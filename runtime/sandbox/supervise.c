/* The sandbox helper's supervising parent, once the task runs: one poll
 * loop over pid 1's pidfd, the cancel signal, pid 1's setup-error and report
 * pipes, the allow-list proxy and (with --spool) the task's output pipes
 * and the control socket, enforcing the timeout (SIGTERM, SIGKILL after the
 * grace), the memory and pids limits and the orphan timeout; then the
 * outcome. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sandbox/internal.h"

#define LIMIT_CHECK_MS 100   /* how often oom and pids events are looked at */
/* The poll set: pidfd, signals, setup error, report; the spool's inputs;
 * the control socket (listener, connection); then the proxy's. */
#define SPOOL 4
#define SHIM (SPOOL + JR_SB_SPOOL_IN)
#define FIXED (SHIM + 2)

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

int64_t jr_sb_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void jr_sb_hard_kill(struct jr_sb_sup *s)
{
    syscall(SYS_pidfd_send_signal, s->pidfd, SIGKILL, NULL, 0);
    if (s->have_cg)
        jr_sb_cg_kill(&s->cg);
    s->kill_at = -1;
}

/* Ends the task for reason: SIGTERM (init passes it on), SIGKILL after the
 * grace; limits kill at once. The first reason is the one reported. */
static void stop(struct jr_sb_sup *s, int reason, int graceful)
{
    if (s->reason != R_NONE)
        return;
    s->reason = reason;
    if (!graceful || s->o->grace_ms == 0) {
        jr_sb_hard_kill(s);
        return;
    }
    syscall(SYS_pidfd_send_signal, s->pidfd, SIGTERM, NULL, 0);
    s->kill_at = jr_sb_now_ms() + s->o->grace_ms;
}

static void read_child_err(struct jr_sb_sup *s)
{
    ssize_t n;
    do
        n = read(s->err_r, &s->child_err, sizeof(s->child_err));
    while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof(s->child_err)) {
        s->have_child_err = 1;
        s->child_err.stage[sizeof(s->child_err.stage) - 1] = '\0';
        s->child_err.detail[sizeof(s->child_err.detail) - 1] = '\0';
    }
    if (n <= 0 || s->have_child_err) {
        close(s->err_r);
        s->err_r = -1;
    }
}

/* pid 1's report, or EOF (it ended without one): status_r closes. */
static void read_report(struct jr_sb_sup *s)
{
    ssize_t n;
    do
        n = read(s->status_r, &s->rep, sizeof(s->rep));
    while (n < 0 && errno == EINTR);
    s->have_rep = n == (ssize_t)sizeof(s->rep);
    close(s->status_r);
    s->status_r = -1;
}

/* Waits until pid 1 reports the main task's end (1: pid 1 may still be
 * exiting) or ends without a report (0, its siginfo in si). */
int jr_sb_supervise(struct jr_sb_sup *s, siginfo_t *si)
{
    const struct jr_sandbox_opts *o = s->o;
    int64_t deadline = o->timeout_ms ? s->t0 + o->timeout_ms : -1;
    int check = s->have_cg && (o->memory || o->pids);
    for (;;) {
        int64_t now = jr_sb_now_ms(), wait = -1;
        int np = 0;
        /* 4-6: the spool's inputs; 7, 8: the control socket. */
        struct pollfd p[FIXED + JR_SB_PROXY_MAX_FDS] = {
            {s->pidfd, POLLIN, 0}, {s->sigfd, POLLIN, 0}, {s->err_r, POLLIN, 0},
            {s->status_r, POLLIN, 0}, {-1, 0, 0}, {-1, 0, 0}, {-1, 0, 0}, {-1, 0, 0},
            {-1, 0, 0},
        };
        if (s->err_r < 0)
            p[2].fd = -1;
        for (int k = 0; s->spool && k < JR_SB_SPOOL_IN; k++) {
            p[SPOOL + k].fd = s->spool->in[k];
            p[SPOOL + k].events = POLLIN;
        }
        if (s->shim)
            jr_sb_shim_fds(s->shim, p + SHIM);
        if (deadline >= 0 && now >= deadline)
            stop(s, R_TIMEOUT, 1);
        if (s->shim && jr_sb_shim_check(s->shim, now, &wait))
            stop(s, R_ORPHAN, 1);
        if (s->kill_at >= 0 && now >= s->kill_at)
            jr_sb_hard_kill(s);
        if (check && s->reason == R_NONE) {
            struct jr_sb_cg_stats st;
            jr_sb_cg_stats(&s->cg, &st);
            if (st.oom_kills > 0)
                stop(s, R_OOM, 0);
            else if (st.pids_max > 0)
                stop(s, R_PIDS, 0);
        }
        if (s->reason != R_NONE)
            wait = -1; /* the orphan clock no longer counts */
        if (deadline >= 0 && s->reason == R_NONE && (wait < 0 || deadline - now < wait))
            wait = deadline - now;
        if (s->kill_at >= 0 && (wait < 0 || s->kill_at - now < wait))
            wait = s->kill_at - now;
        if (check && s->reason == R_NONE && (wait < 0 || wait > LIMIT_CHECK_MS))
            wait = LIMIT_CHECK_MS;
        if (s->proxy)
            np = jr_sb_proxy_fds(s->proxy, p + FIXED, JR_SB_PROXY_MAX_FDS, now, &wait);
        if (poll(p, (nfds_t)(FIXED + np), (int)(wait < 0 ? -1 : wait + 1)) < 0 &&
            errno != EINTR) {
            for (int k = 0; k < FIXED + np; k++)
                p[k].revents = 0; /* should not happen */
        }
        if (s->proxy)
            jr_sb_proxy_run(s->proxy, p + FIXED, np, jr_sb_now_ms());
        if (s->shim)
            jr_sb_shim_handle(s->shim, p + SHIM, jr_sb_now_ms());
        for (int k = 0; s->spool && k < JR_SB_SPOOL_IN; k++)
            if (p[SPOOL + k].fd >= 0 &&
                (p[SPOOL + k].revents & (POLLIN | POLLHUP | POLLERR)) &&
                jr_sb_spool_read(s->spool, k) && s->shim)
                jr_sb_shim_wake(s->shim);
        if (p[1].revents & POLLIN) {
            struct signalfd_siginfo ssi;
            if (read(s->sigfd, &ssi, sizeof(ssi)) > 0)
                stop(s, R_CANCEL, 1);
        }
        if (s->err_r >= 0 && (p[2].revents & (POLLIN | POLLHUP)))
            read_child_err(s);
        if (s->status_r >= 0 && (p[3].revents & (POLLIN | POLLHUP))) {
            read_report(s);
            if (s->have_rep)
                return 1;
        }
        if (p[0].revents & POLLIN) {
            memset(si, 0, sizeof(*si));
            if (syscall(SYS_waitid, P_PIDFD, s->pidfd, si, WEXITED, NULL) == 0)
                return 0;
        }
    }
}

void jr_sb_classify(struct jr_sb_sup *s, const siginfo_t *si, struct jr_sandbox_outcome *oc)
{
    int st = 0, have_st = 0;
    struct jr_sb_cg_stats cs = {-1, -1, 0, 0};
    /* All writers are gone (pid 1 closed its copy before the task ended):
     * data or EOF. */
    if (s->err_r >= 0)
        read_child_err(s);
    if (s->status_r >= 0)
        read_report(s);
    have_st = s->have_rep;
    st = s->rep.status;
    if (s->have_cg)
        jr_sb_cg_stats(&s->cg, &cs);
    if (have_st && WIFSIGNALED(st))
        oc->signal = WTERMSIG(st);
    if (s->have_child_err) {
        oc->kind = JR_SB_SETUP_ERROR;
        snprintf(oc->stage, sizeof(oc->stage), "%s", s->child_err.stage);
        oc->err = s->child_err.err;
        snprintf(oc->message, sizeof(oc->message), "%s: %s", s->child_err.detail,
                 strerror(s->child_err.err));
    } else if (s->reason == R_CANCEL) {
        oc->kind = JR_SB_CANCELED;
    } else if (s->reason == R_ORPHAN) {
        oc->kind = JR_SB_ORPHANED;
        snprintf(oc->message, sizeof(oc->message), "stopped by its helper after %lld s with"
                 " no daemon attached (sandbox.orphan_timeout)",
                 (long long)(s->o->orphan_timeout_ms / 1000));
    } else if (s->reason == R_TIMEOUT) {
        oc->kind = JR_SB_TIMEOUT;
        snprintf(oc->message, sizeof(oc->message), "timed out after %lld ms",
                 (long long)s->o->timeout_ms);
    } else if (s->reason == R_OOM || cs.oom_kills > 0) {
        oc->kind = JR_SB_OOM;
        snprintf(oc->message, sizeof(oc->message), "memory limit of %lld bytes exceeded",
                 (long long)s->o->memory);
    } else if (s->reason == R_PIDS ||
               (cs.pids_max > 0 && !(have_st && WIFEXITED(st) && WEXITSTATUS(st) == 0))) {
        oc->kind = JR_SB_PIDS;
        snprintf(oc->message, sizeof(oc->message), "process limit of %lld reached",
                 (long long)s->o->pids);
    } else if (have_st && WIFEXITED(st)) {
        oc->kind = JR_SB_EXITED;
        oc->exit_code = WEXITSTATUS(st);
    } else if (have_st && WTERMSIG(st) == SIGSYS) {
        oc->kind = JR_SB_SECCOMP_KILL;
        snprintf(oc->message, sizeof(oc->message), "killed for a forbidden system call");
    } else if (have_st) {
        oc->kind = JR_SB_SIGNALED;
    } else if (si->si_code == CLD_KILLED || si->si_code == CLD_DUMPED) {
        oc->kind = JR_SB_SIGNALED; /* init itself was killed (e.g. by the OOM killer) */
        oc->signal = si->si_status;
    } else {
        oc->kind = JR_SB_SETUP_ERROR;
        snprintf(oc->stage, sizeof(oc->stage), "init");
        oc->err = 0;
        snprintf(oc->message, sizeof(oc->message),
                 "the sandbox init ended (status %d) without reporting", si->si_status);
    }
    if (cs.cpu_ms >= 0 && cs.max_rss >= 0) {
        oc->cpu_ms = cs.cpu_ms;
        oc->max_rss_bytes = cs.max_rss;
    } else if (s->have_rep) { /* pid 1 is not reaped yet: its own count */
        oc->cpu_ms = cs.cpu_ms >= 0 ? cs.cpu_ms : s->rep.cpu_ms;
        oc->max_rss_bytes = cs.max_rss >= 0 ? cs.max_rss : s->rep.max_rss;
    } else {
        struct rusage ru; /* init and what it reaped: good enough without cgroups */
        getrusage(RUSAGE_CHILDREN, &ru);
        oc->cpu_ms = cs.cpu_ms >= 0 ? cs.cpu_ms
                                    : (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000LL +
                                      (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
        oc->max_rss_bytes = cs.max_rss >= 0 ? cs.max_rss : ru.ru_maxrss * 1024LL;
    }
}
