/* The sandbox executor preparing an attempt: inputs staged on the host
 * (inline data written, host paths resolved, url inputs' empty files made)
 * and the `jobrt sandbox` helper's argv built from the task. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exec/sandbox_internal.h"

static int mkdirs(const char *path)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);

    if (n >= sizeof buf)
        return -1;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != 0)
            continue;
        buf[i] = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
        if (i < n)
            buf[i] = '/';
    }
    return 0;
}

static int write_all(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    size_t off = 0;

    if (fd < 0)
        return -1;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int err = errno;
            close(fd);
            errno = err;
            return -1;
        }
        off += (size_t)w;
    }
    return close(fd);
}

struct spec_ctx {
    const struct jr_exec_spec *spec;
    const char *exe;             /* the daemon's binary, for "jobrt" inputs */
    int *url_fd;                 /* url inputs: the empty file's fd, per input */
};

/* The host source of input i into src (inline data is written first). */
static int stage_input(const struct spec_ctx *c, int i, const struct input *in,
                       char *src, size_t size, struct jr_err *e)
{
    const struct jr_exec_spec *s = c->spec;
    struct stat st;

    if (strcmp(in->source, "inline") == 0) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s/inputs", s->task_dir);
        if ((size_t)snprintf(src, size, "%s/inline-%d", dir, i + 1) >= size)
            return jr_err_set(e, JR_E_SYSTEM, "inputs[%d]: path too long", i);
        if (mkdirs(dir) || write_all(src, in->data, in->data_len))
            return jr_err_set(e, JR_E_SYSTEM, "setup_error: stage inputs: inputs[%d]"
                              " (inline): writing %s: %s", i, src, strerror(errno));
        return JR_OK;
    }
    if (strcmp(in->source, "path") == 0) {
        char real[PATH_MAX];
        if (!realpath(in->path, real))
            return jr_err_set(e, JR_E_SYSTEM, "setup_error: stage inputs: inputs[%d]"
                              " (path %s): %s", i, in->path, strerror(errno));
        /* The allow-list holds for what the path really is, not its links. */
        if (strcmp(real, in->path) != 0)
            return jr_err_set(e, JR_E_SYSTEM, "setup_error: stage inputs: inputs[%d]"
                              " (path %s) resolves to %s through a link; give the real"
                              " path", i, in->path, real);
        snprintf(src, size, "%s", real);
        return JR_OK;
    }
    if (strcmp(in->source, "jobrt") == 0) {
        if ((size_t)snprintf(src, size, "%s", c->exe) >= size)
            return jr_err_set(e, JR_E_SYSTEM, "inputs[%d]: path too long", i);
        return JR_OK;
    }
    if (strcmp(in->source, "url") == 0) {
        /* An empty file now (the helper binds it); the download fills the
         * same inode before the gate opens. */
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s/inputs", s->task_dir);
        if ((size_t)snprintf(src, size, "%s/url-%d", dir, i + 1) >= size)
            return jr_err_set(e, JR_E_SYSTEM, "inputs[%d]: path too long", i);
        if (mkdirs(dir) || (c->url_fd[i] = open(src, O_WRONLY | O_CREAT | O_TRUNC |
                                                O_CLOEXEC | O_NOFOLLOW, 0644)) < 0)
            return jr_err_set(e, JR_E_SYSTEM, "setup_error: stage inputs: inputs[%d]"
                              " (url): creating %s: %s", i, src, strerror(errno));
        return JR_OK;
    }
    /* task-output */
    if ((size_t)snprintf(src, size, "%s/%s/outputs%s%s", s->job_dir, in->task,
                         in->file ? "/" : "", in->file ? in->file : "") >= size)
        return jr_err_set(e, JR_E_SYSTEM, "inputs[%d]: path too long", i);
    if (lstat(src, &st) || S_ISLNK(st.st_mode))
        return jr_err_set(e, JR_E_SYSTEM, "setup_error: stage inputs: inputs[%d]: task '%s'"
                          " has no output%s%s (%s)", i, in->task, in->file ? " " : "s",
                          in->file ? in->file : "",
                          S_ISLNK(st.st_mode) ? "a symbolic link" : strerror(errno));
    return JR_OK;
}

/* ---- argv of the helper ---- */

static void add(struct argv_b *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add(struct argv_b *a, const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;

    if (a->failed)
        return;
    if (a->n + 2 > a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        char **v = realloc(a->v, cap * sizeof *v);
        if (!v) {
            a->failed = 1;
            return;
        }
        a->v = v;
        a->cap = cap;
    }
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    if (!s) {
        a->failed = 1;
        return;
    }
    a->v[a->n++] = s;
    a->v[a->n] = NULL;
}

static int has_env(char *const *env, const char *kv)
{
    size_t k = strcspn(kv, "=");

    for (; env && *env; env++)
        if (strncmp(*env, kv, k) == 0 && (*env)[k] == '=')
            return 1;
    return 0;
}

static uint32_t fnv(const char *a, const char *b)
{
    uint32_t h = 2166136261u;

    for (; *a; a++)
        h = (h ^ (unsigned char)*a) * 16777619u;
    h = (h ^ '/') * 16777619u;
    for (; *b; b++)
        h = (h ^ (unsigned char)*b) * 16777619u;
    return h;
}

int jr_sbexec_build_args(struct sb_exec *ex, const struct jr_exec_spec *s,
                         const struct sb_task *t, const char *spool, const char *control,
                         int *url_fd, struct argv_b *a, struct jr_err *e)
{
    const char *root = t->root, *net = t->net;
    const struct input *inputs = t->inputs;
    int ninputs = t->ninputs;
    struct spec_ctx c = { s, ex->exe, url_fd };
    const char *w = s->workdir;
    char src[PATH_MAX], base[8][PATH_MAX + 32];
    int i, nb = 0, rc;

    add(a, "%s", ex->helper);
    add(a, "sandbox");
    add(a, "--gate-fd=3");
    add(a, "--status-fd=4");
    add(a, "--spool=%s", spool);
    add(a, "--control=%s", control);
    add(a, "--log-cap=%lld", (long long)ex->log_cap);
    add(a, "--orphan-timeout=%lldms", (long long)ex->orphan_ms);
    if (t->has_use && !t->use.rootfs) {
        for (int l = 0; l < t->use.nlayers; l++)
            add(a, "--layer=%s", t->use.layers[l]);
    } else {
        add(a, "--image=%s", strcmp(root, "/") == 0 ? "host" : root);
    }
    if (t->has_use) {
        add(a, "--image-lock=%s", t->use.lock);
        if (t->use.user) {
            char why[200];
            int uid, gid;
            if (jr_image_user(&t->use, t->use.user, &uid, &gid, why, sizeof why))
                return jr_err_set(e, JR_E_INVALID, "setup_error: image %s: %s", t->image, why);
            add(a, "--uid=%d", uid);
            add(a, "--gid=%d", gid);
        } else {
            add(a, "--uid=0"); /* Docker's rule: no User is root (of the task's namespace) */
        }
    }
    add(a, "--bind-rw=%s/outputs:/outputs", s->task_dir);
    add(a, "--bind-rw=%s/work:/work", s->task_dir);
    for (i = 0; i < ninputs; i++) {
        if ((rc = stage_input(&c, i, &inputs[i], src, sizeof src, e)))
            return rc;
        add(a, "--bind-ro=%s:%s", src, inputs[i].target);
    }
    if ((!w || !*w) && t->has_use && t->use.workdir)
        add(a, "--workdir=%s", t->use.workdir);
    else if (!w || !*w)
        add(a, "--workdir=/outputs");
    else if (w[0] == '/')
        add(a, "--workdir=%s", w);
    else
        add(a, "--workdir=/%s", w);
    /* The image's Env first, where the task does not set the same name. */
    for (char **v = t->has_use ? t->use.env : NULL; v && *v; v++)
        if (!has_env(s->task_env, *v))
            add(a, "--env=%s", *v);
    for (char *const *v = s->task_env; v && *v; v++)
        add(a, "--env=%s", *v);
    snprintf(base[nb++], sizeof base[0], "HOME=/work");
    snprintf(base[nb++], sizeof base[0], "TMPDIR=/tmp");
    snprintf(base[nb++], sizeof base[0], "JOBRT_JOB_ID=%s", s->job_id);
    snprintf(base[nb++], sizeof base[0], "JOBRT_TASK=%s", s->task);
    snprintf(base[nb++], sizeof base[0], "JOBRT_ATTEMPT=%lld", (long long)s->attempt);
    snprintf(base[nb++], sizeof base[0], "JOBRT_OUTPUTS=/outputs");
    snprintf(base[nb++], sizeof base[0], "JOBRT_WORK=/work");
    snprintf(base[nb++], sizeof base[0], "JOBRT_INPUTS=/inputs");
    for (i = 0; i < nb; i++)
        if (!has_env(s->task_env, base[i]) &&
            !(i < 2 && t->has_use && has_env(t->use.env, base[i])))
            add(a, "--env=%s", base[i]);
    if (s->memory > 0)
        add(a, "--memory=%lld", (long long)s->memory);
    if (s->cpu > 0)
        add(a, "--cpu=%lld", (long long)s->cpu);
    /* The default process cap is an rlimit counted per user namespace: a
     * pids cgroup would cost a v1 migration per task on hybrid hosts. */
    add(a, "--nproc=%d", DEFAULT_PIDS);
    add(a, "--lazy-cgroups=yes");
    if (s->timeout_ms > 0)
        add(a, "--timeout=%lldms", (long long)s->timeout_ms);
    add(a, "--grace=%lldms", (long long)ex->grace_ms);
    add(a, "--network=%s", net);
    for (size_t d = 0; d < t->ndomains; d++)
        add(a, "--allow-domain=%s", t->domains[d]);
    add(a, "--cgroup-parent=%s", ex->cgroup_parent);
    /* The counter starts from the clock: a helper of a previous daemon may
     * still hold a leaf of the same job, task and attempt (one that never
     * passed its gate and runs again). */
    add(a, "--cgroup-name=t%08x-%.40s-%.24s-%lld-%llx", fnv(s->job_id, s->task), s->job_id,
        s->task, (long long)s->attempt, (unsigned long long)(++ex->counter & 0xffffffffffffULL));
    add(a, "--");
    /* Docker's rule: the entrypoint (the task's, else the image's), then
     * the task's command, or else the image's Cmd unless the task set its
     * own entrypoint. */
    {
        size_t before = a->n;
        if (t->entrypoint_set) {
            for (size_t k = 0; k < t->nentrypoint; k++)
                add(a, "%s", t->entrypoint[k]);
        } else if (t->has_use) {
            for (char **v = t->use.entrypoint; v && *v; v++)
                add(a, "%s", *v);
        }
        if (s->argv && s->argv[0]) {
            for (char *const *v = s->argv; *v; v++)
                add(a, "%s", *v);
        } else if (t->has_use && !t->entrypoint_set) {
            for (char **v = t->use.cmd; v && *v; v++)
                add(a, "%s", *v);
        }
        if (a->n == before && !a->failed)
            return jr_err_set(e, JR_E_INVALID, "setup_error: task '%s' has no command",
                              s->task);
    }
    if (a->failed)
        return jr_err_set(e, JR_E_SYSTEM, "out of memory");
    return JR_OK;
}
