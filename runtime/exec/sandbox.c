/* The sandbox executor: each attempt is a `jobrt sandbox` helper forked by
 * the sandbox server (exec/sbserver.c), which is the slim
 * build/jobrt-sandbox when it sits next to the daemon's binary, else the
 * daemon's own binary. The helper prepares the sandbox, then waits on its
 * gate (fd 3) for "go", runs the task, spools its output into a file in
 * the task's folder (capped) and reports its outcome on its control
 * connection (fd 4); the task outlives the daemon, and a later
 * daemon reattaches to it (exec/record.h). Inputs are staged here before
 * the spawn: inline data into the task's inputs dir, allow-listed host
 * paths, the deps' outputs and the daemon's own binary (source "jobrt",
 * for tasks that run `jobrt eval`) as read-only binds. This file opens and
 * closes the executor; the task spec is read in sandbox_spec.c, inputs
 * staged and argv built in sandbox_args.c, attempts started in
 * sandbox_proc.c and watched in sandbox_watch.c, a previous daemon's
 * attempts attached in sandbox_attach.c, url inputs downloaded in
 * sandbox_fetch.c. */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exec/sandbox_internal.h"

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

void jr_sbexec_free_list(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

static char **copy_list(const char *const *v)
{
    size_t n = 0;
    char **out;

    while (v && v[n])
        n++;
    out = calloc(n + 1, sizeof *out);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!(out[i] = strdup(v[i]))) {
            jr_sbexec_free_list(out);
            return NULL;
        }
    return out;
}
/* The executor goes once its servers are lost and its attempts freed:
 * until then exit notices may still end attempts (the scheduler has
 * stopped or detached them all before closing us). The server exits when
 * its control socket closes; helpers still running run on. */
static void sb_close(void *self)
{
    struct sb_exec *ex = self;

    ex->closing = 1;
    if (ex->server)
        jr_sbs_close(ex->server);
    ex->server = NULL;
    jr_sbexec_maybe_free(ex);
}

void jr_sbexec_maybe_free(struct sb_exec *ex)
{
    if (ex->closing && ex->nservers == 0 && ex->nprocs == 0)
        jr_sbexec_free(ex);
}

void jr_sbexec_free(struct sb_exec *ex)
{
    if (ex->devnull >= 0)
        close(ex->devnull);
    if (ex->helper != ex->exe)
        free(ex->helper);
    free(ex->exe);
    free(ex->cgroup_parent);
    free(ex->network);
    jr_sbexec_free_list(ex->images);
    jr_sbexec_free_list(ex->pull_hosts);
    jr_sbexec_free_list(ex->host_paths);
    jr_tls_ctx_free(ex->tls);
    free(ex);
}

static const struct jr_exec_ops sandbox_ops = {
    .name = "sandbox",
    .start = jr_sbexec_start,
    .go = jr_sbexec_go,
    .kill = jr_sbexec_kill,
    .close = sb_close,
    .check = jr_sbexec_check,
    .attach = jr_sbexec_attach,
    .detach = jr_sbexec_detach,
    .sandboxed = 1,
};

/* The slim helper: <dir of exe>/jobrt-sandbox or <dir>/build/jobrt-sandbox,
 * a regular executable file with the same owner as exe and not writable by
 * group or others; NULL when there is none (exe itself is then spawned). */
static char *find_helper(const char *exe)
{
    static const char *const names[] = { "jobrt-sandbox", "build/jobrt-sandbox" };
    const char *slash = strrchr(exe, '/');
    struct stat xs, hs;
    char path[PATH_MAX];

    if (!slash || stat(exe, &xs))
        return NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (snprintf(path, sizeof path, "%.*s/%s", (int)(slash - exe), exe, names[i]) >=
            (int)sizeof path)
            continue;
        if (stat(path, &hs) == 0 && S_ISREG(hs.st_mode) && hs.st_uid == xs.st_uid &&
            !(hs.st_mode & (S_IWGRP | S_IWOTH)) && access(path, X_OK) == 0)
            return strdup(path);
    }
    return NULL;
}

int jr_exec_sandbox_open(uv_loop_t *loop, const struct jr_exec_sandbox_opts *o,
                         struct jr_executor *out, struct jr_err *e)
{
    struct sb_exec *ex = calloc(1, sizeof *ex);

    if (!ex)
        return jr_err_set(e, JR_E_SYSTEM, "out of memory");
    ex->loop = loop;
    ex->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    ex->counter = uv_hrtime() / 1000;
    ex->exe = xstrdup(o->exe);
    ex->helper = ex->exe && !getenv("JOBRT_SANDBOX_NO_HELPER") ? find_helper(ex->exe) : NULL;
    if (!ex->helper)
        ex->helper = ex->exe;
    ex->cgroup_parent = xstrdup(o->cgroup_parent ? o->cgroup_parent : "jobrt");
    ex->network = xstrdup(o->network ? o->network : "none");
    ex->images = copy_list(o->images);
    ex->image_store = o->image_store;
    ex->pull_hosts = copy_list(o->pull_hosts);
    ex->host_paths = copy_list(o->host_paths);
    ex->grace_ms = o->grace_ms > 0 ? o->grace_ms : 5000;
    ex->log_cap = o->log_cap > 0 ? o->log_cap : DEFAULT_LOG_CAP;
    ex->orphan_ms = o->orphan_timeout_ms > 0 ? o->orphan_timeout_ms
                  : o->orphan_timeout_ms < 0 ? 0 : DEFAULT_ORPHAN_MS;
    if (!ex->exe || !ex->cgroup_parent || !ex->network || !ex->images || !ex->host_paths ||
        ex->devnull < 0) {
        sb_close(ex);
        return jr_err_set(e, JR_E_SYSTEM, !o->exe
                          ? "the sandbox executor needs the jobrt binary's path"
                          : ex->devnull < 0 ? "cannot open /dev/null" : "out of memory");
    }
    out->ops = &sandbox_ops;
    out->self = ex;
    return JR_OK;
}
