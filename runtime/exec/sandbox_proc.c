/* The sandbox executor starting an attempt: one `jobrt sandbox` helper,
 * forked by the sandbox server, held at its gate until the scheduler's go,
 * with a record for the store, its own spool and control socket (see
 * exec/record.h) so that it outlives this daemon; then its kill and, when
 * the daemon goes and leaves it running, its detach. What follows the
 * start is sandbox_watch.c's. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "exec/sandbox_internal.h"

static void on_server_exit(void *owner, struct jr_sbs *s, int32_t pid, int status);

/* The server that takes the starts; a lost one's notice may still be due,
 * and ends its attempts then. */
static int ensure_server(struct sb_exec *ex, struct jr_err *e)
{
    int rc;

    if (ex->server && jr_sbs_alive(ex->server))
        return JR_OK;
    ex->server = NULL;
    if ((rc = jr_sbs_spawn(ex->loop, ex->helper, ex->cgroup_parent, on_server_exit, ex,
                           &ex->server, e)))
        return rc;
    ex->nservers++;
    return JR_OK;
}

static void on_server_exit(void *owner, struct jr_sbs *s, int32_t pid, int status)
{
    struct sb_exec *ex = owner;
    struct jr_exec_proc *p, *next;

    if (pid > 0) {
        for (p = ex->procs; p; p = p->next)
            if (p->pid == pid && p->server == s) {
                jr_sbexec_helper_exited(p, status);
                return;
            }
        return;
    }
    /* Lost: a new server starts with the next task (which a done callback
     * below may already start). s frees itself after this returns. */
    if (ex->server == s)
        ex->server = NULL;
    for (p = ex->procs; p; p = next) {
        next = p->next;
        if (p->server == s)
            jr_sbexec_helper_exited(p, -1);
    }
    jr_sbs_close(s);
    ex->nservers--;
    jr_sbexec_maybe_free(ex);
}

/* A name no one can guess for the attempt (its control socket, an
 * abstract one: whoever took it first would only refuse the start; and its
 * spool, a file of its own that no other attempt's helper writes to). */
static void attempt_name(struct sb_exec *ex, char *out, size_t size)
{
    uint64_t r;

    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
        r = uv_hrtime() ^ ((uint64_t)getpid() << 32) ^ ++ex->counter;
    snprintf(out, size, "jobrt-%016llx", (unsigned long long)r);
}

int jr_sbexec_start(void *self, const struct jr_exec_spec *spec,
                    const struct jr_exec_cbs *cbs, void *arg,
                    struct jr_exec_proc **out_proc, int64_t *pid, int64_t *pid_start,
                    char *record, struct jr_err *e)
{
    struct sb_exec *ex = self;
    struct jr_exec_proc *p = NULL;
    struct jr_exec_record rec;
    struct sb_task t = { 0 };
    struct argv_b a = { NULL, 0, 0, 0 };
    char name[JR_SB_CONTROL_MAX + 1], spool[PATH_MAX];
    int gate[2] = { -1, -1 }, ctl[2] = { -1, -1 };
    int rc, url_fd[MAX_INPUTS];
    int32_t hpid;

    *out_proc = NULL;
    record[0] = 0;
    for (int i = 0; i < MAX_INPUTS; i++)
        url_fd[i] = -1;
    attempt_name(ex, name, sizeof name);
    if (snprintf(spool, sizeof spool, "%s/%s.log", spec->task_dir, name) >= (int)sizeof spool)
        return jr_err_set(e, JR_E_SYSTEM, "task directory path too long");
    if ((rc = jr_sbexec_read_task(ex, spec, &t, e)) ||
        (rc = jr_sbexec_build_args(ex, spec, &t, spool, name, url_fd, &a, e)) ||
        (rc = ensure_server(ex, e)))
        goto done;
    if (!(p = jr_sbexec_proc_new(ex, spool, cbs, arg, 0))) {
        rc = jr_err_set(e, JR_E_SYSTEM, "out of memory");
        goto done;
    }
    /* The helper's gate (3), stdout and stderr (1, 2: /dev/null, its task's
     * output goes to the spool) and control connection (4). */
    if (pipe2(gate, O_CLOEXEC) || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl)) {
        rc = jr_err_set(e, JR_E_SYSTEM, "pipes: %s", strerror(errno));
        goto done;
    }
    {
        int fds[4] = { gate[0], ex->devnull, ex->devnull, ctl[1] };
        if ((rc = jr_sbs_start(ex->server, a.v + 2, fds, &hpid, e)))
            goto done;
    }
    p->pid = hpid;
    p->server = ex->server;
    p->gate_fd = gate[1];
    gate[1] = -1;
    /* The store keeps it with the running row: whoever finds that row
     * finds the helper. */
    memset(&rec, 0, sizeof rec);
    snprintf(rec.job, sizeof rec.job, "%s", spec->job_id);
    snprintf(rec.task, sizeof rec.task, "%s", spec->task);
    rec.attempt = spec->attempt;
    rec.helper_pid = hpid;
    rec.helper_start = jr_exec_pid_start(hpid);
    {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        rec.started_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    }
    rec.log_cap = ex->log_cap;
    snprintf(rec.control, sizeof rec.control, "%s", name);
    snprintf(rec.spool, sizeof rec.spool, "%s.log", name);
    if (jr_exec_record_format(&rec, record, JR_EXEC_RECORD_SIZE) < 0) {
        rc = jr_err_set(e, JR_E_INVALID, "the attempt record of task '%s' is too long",
                        spec->task);
        goto done; /* the gate closes: the helper cancels and goes */
    }
    rc = jr_sbexec_watch(p, ctl[0], e);
    ctl[0] = -1; /* taken by watch, even when it failed */
    if (rc) {
        record[0] = 0;
        goto done;
    }
    jr_sbexec_start_fetches(ex, p, t.inputs, t.ninputs, url_fd);
    *pid = hpid;
    *pid_start = rec.helper_start;
    *out_proc = p;
    p = NULL;
done:
    if (p)
        jr_sbexec_release(p); /* its gate closes with it */
    for (int i = 0; i < MAX_INPUTS; i++)
        if (url_fd[i] >= 0)
            close(url_fd[i]);
    for (int i = 0; i < 2; i++) {
        if (gate[i] >= 0)
            close(gate[i]);
        if (ctl[i] >= 0)
            close(ctl[i]);
    }
    jr_sbexec_free_list(a.v);
    jr_sbexec_task_free(&t);
    return rc;
}

int jr_sbexec_gate(struct jr_exec_proc *p, int shut)
{
    ssize_t w;

    if (p->gate_fd < 0)
        return 0;
    if (!shut)
        do
            w = write(p->gate_fd, "go\n", 3);
        while (w < 0 && errno == EINTR);
    close(p->gate_fd);
    p->gate_fd = -1;
    return 1;
}

/* The scheduler's go: at once, or when the last url input is in. */
void jr_sbexec_go(struct jr_exec_proc *p)
{
    if (p->fetching > 0) {
        p->go_wanted = 1;
        return;
    }
    jr_sbexec_gate(p, 0);
}

void jr_sbexec_kill(struct jr_exec_proc *p, int signum)
{
    jr_sbexec_abort_fetches(p);
    p->go_wanted = 0;
    /* Still at its gate: closing it is the cancel, and the helper removes
     * what it prepared. */
    if (jr_sbexec_gate(p, 1) || p->reported || p->ctl_eof)
        return;
    /* SIGTERM: the helper passes it on and SIGKILLs the tree after its
     * grace. SIGKILL: the helper and its pid 1 (one process group) die, and
     * with pid 1 the whole pid namespace. Attached: through the pidfd whose
     * process was checked to be the helper. Started here: through the
     * server, which knows the pid is still its child; without it (lost),
     * directly. */
    if (p->pidfd >= 0) {
        syscall(SYS_pidfd_send_signal, p->pidfd, signum, NULL, 0);
        return;
    }
    if (p->server && jr_sbs_kill(p->server, (int32_t)p->pid, signum, signum == SIGKILL) == 0)
        return;
    if (signum == SIGKILL)
        kill(-(pid_t)p->pid, SIGKILL);
    else
        kill((pid_t)p->pid, signum);
}

void jr_sbexec_detach(struct jr_exec_proc *p)
{
    /* One still at its gate never runs: its helper cancels when the gate
     * closes, and the next daemon finds it never started. */
    jr_sbexec_gate(p, 1);
    jr_sbexec_release(p);
}
