/* The sandbox executor taking over an attempt a previous daemon started
 * (exec/record.h): its record read, its helper recognised by pid and start
 * time and held by a pidfd (never a recycled pid), then connected to
 * through its control socket. What it spooled meanwhile is
 * replayed from the offset the store kept, and the outcome reported is its
 * real one; a helper that is gone without one is reported lost. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "exec/sandbox_internal.h"

/* A connection to the helper's control socket (abstract name), or -1. The
 * name is no secret kept by a file's permissions: the peer must be the
 * helper itself. */
static int connect_ctl(const char *name, int64_t pid)
{
    struct sockaddr_un a;
    struct ucred cr;
    socklen_t len = sizeof cr;
    int fd;

    if (!name[0])
        return -1;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    memcpy(a.sun_path + 1, name, strlen(name));
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd >= 0 && (connect(fd, (struct sockaddr *)&a,
                            (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
                                        strlen(name))) != 0 ||
                    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 ||
                    cr.pid != (pid_t)pid)) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* A pidfd of pid if it is still the process that started at start. */
static int open_helper(int64_t pid, int64_t start)
{
    int fd;

    if (pid <= 1 || start <= 0)
        return -1;
    fd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
    /* Checked after the pidfd is open: from now on it names that process,
     * whatever later takes its number. */
    if (fd >= 0 && jr_exec_pid_start(pid) != start) {
        close(fd);
        fd = -1;
    }
    if (fd >= 0)
        fcntl(fd, F_SETFD, FD_CLOEXEC);
    return fd;
}

int jr_sbexec_attach(void *self, const struct jr_exec_attach *a,
                     const struct jr_exec_cbs *cbs, void *arg, struct jr_exec_proc **out,
                     struct jr_err *e)
{
    struct sb_exec *ex = self;
    struct jr_exec_record rec;
    struct jr_exec_proc *p;
    struct jr_err re = { 0, "" };
    char spool[PATH_MAX];
    int rc, fd;

    *out = NULL;
    rc = a->record && a->record[0] ? jr_exec_record_parse(a->record, &rec, &re)
                                   : JR_E_NOT_FOUND;
    if (rc == JR_E_NOT_FOUND || (rc == JR_OK && (rec.attempt != a->attempt ||
                                                 rec.helper_pid != a->pid)) ||
        (rc != JR_OK && rec.format <= JR_EXEC_RECORD_FORMAT))
        return jr_err_set(e, JR_E_NOT_FOUND, "no record of attempt %lld of task '%s'%s%s",
                          (long long)a->attempt, a->task, rc == JR_E_NOT_FOUND ? "" : ": ",
                          rc == JR_E_NOT_FOUND ? "" : re.msg);
    if (snprintf(spool, sizeof spool, "%s/%s", a->task_dir,
                 rec.spool[0] ? rec.spool : "-") >= (int)sizeof spool)
        return jr_err_set(e, JR_E_SYSTEM, "task directory path too long");
    if (!(p = jr_sbexec_proc_new(ex, spool, cbs, arg, a->log_offset)))
        return jr_err_set(e, JR_E_SYSTEM, "out of memory");
    p->attached = 1;
    p->pid = a->pid;
    if (rc) {
        /* A record of a newer format: this daemon does not guess how to
         * speak to that helper, it stops it. */
        jr_exec_kill_stale(a->pid, a->pid_start);
        snprintf(p->gone_why, sizeof p->gone_why, "its helper could not be reattached: %.200s;"
                 " it was stopped", re.msg);
        p->gone = p->ctl_eof = 1;
        rc = JR_OK;
    } else if ((p->pidfd = open_helper(rec.helper_pid, rec.helper_start)) < 0) {
        p->gone = p->ctl_eof = 1; /* its outcome, if any, ends its spool */
    } else if ((fd = connect_ctl(rec.control, rec.helper_pid)) >= 0) {
        rc = jr_sbexec_watch(p, fd, e);
    } else {
        /* Alive but not listening: before its gate (it is about to cancel,
         * the gate having closed with the old daemon) or after its outcome
         * (it is tearing down). Either way its exit is the end. */
        rc = jr_sbexec_watch_exit(p, p->pidfd, e);
    }
    if (rc) {
        jr_sbexec_release(p);
        return rc;
    }
    jr_sbexec_kick(p); /* what was spooled meanwhile, from the loop */
    *out = p;
    return JR_OK;
}
