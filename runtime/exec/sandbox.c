/* The sandbox executor: each attempt is a `jobrt sandbox` helper forked by
 * the sandbox server (exec/sbserver.c), which is the slim
 * build/jobrt-sandbox when it sits next to the daemon's binary, else the
 * daemon's own binary. The helper prepares the sandbox, then
 * waits on its gate (fd 3) for "go", runs the task and writes one JSON
 * outcome line on fd 4; stdout/stderr come back as log lines (capped).
 * Inputs are staged here before the spawn: inline data into the task's
 * inputs dir, allow-listed host paths, the deps' outputs and the daemon's
 * own binary (source "jobrt", for tasks that run `jobrt eval`) as
 * read-only binds. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec/exec.h"
#include "exec/fetch.h"
#include "exec/jv.h"
#include "exec/lines.h"
#include "exec/sbserver.h"
#include "sandbox/sandbox.h"

#define DEFAULT_LOG_CAP (1024 * 1024)
#define DEFAULT_PIDS 1024
#define MAX_INPUTS 48
#define STATUS_MAX 4096
#define URL_MAX_BYTES (1024LL * 1024 * 1024) /* default cap of a url input */
#define URL_TIMEOUT_MS (10 * 60 * 1000)

/* A url input being downloaded while the helper waits at its gate. */
struct url_fetch {
    struct jr_exec_proc *p;
    struct jr_fetch *f;          /* NULL once ended */
    char *url;
    int input;                   /* 1-based, for messages */
};

struct sb_exec {
    uv_loop_t *loop;
    char *exe, *cgroup_parent, *network;
    char *helper;                /* the server: jobrt-sandbox or exe */
    struct jr_sbs *server;       /* takes the starts; NULL until the first */
    int nservers;                /* servers not yet told lost (a replaced one
                                  * may still have attempts to end) */
    struct jr_exec_proc *procs;  /* attempts whose helper may not have exited */
    int closing;                 /* closed by the scheduler: goes with the server */
    char **images;               /* name, root, name, root, ..., NULL */
    char **host_paths;
    int64_t grace_ms, log_cap;
    uint64_t counter;
    struct jr_fetch_tls *tls;    /* https downloads' client context, lazily */
};

struct jr_exec_proc {
    uv_loop_t *loop;
    struct jr_exec_proc *next, **prevp; /* in ex->procs while linked */
    struct jr_sbs *server;       /* the helper's parent; NULL once lost */
    uv_pipe_t out, err, status;
    int gate_fd;                 /* write end of the gate pipe, -1 once used */
    struct jr_exec_lines lines[2];
    char status_line[STATUS_MAX];
    size_t status_len;
    int64_t logged, log_cap;
    int truncated;
    struct jr_exec_cbs cbs;
    void *arg;
    int64_t pid;
    uint64_t started;
    int exited, exit_signal, open_pipes, open_handles;
    int lost;                    /* its server went: no exit status */
    int status_eof;              /* the helper's status pipe has closed */
    int reported;                /* done was called: only the reap is left */
    int64_t exit_status;
    struct jr_exec_result result;
    struct url_fetch *fetches;   /* url inputs: go waits until all are in */
    int nfetches, fetching, go_wanted;
    char fetch_err[320];         /* a failed download: the attempt's error */
};

/* ---- small helpers ---- */

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void free_list(char **v)
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
            free_list(out);
            return NULL;
        }
    return out;
}

/* An absolute path without "." or ".." parts, "//" or a trailing '/'. */
static int clean_abs(const char *p)
{
    if (!p || p[0] != '/')
        return 0;
    for (const char *s = p; *s; s++) {
        if (s[0] != '/')
            continue;
        if (s[1] == '/' || (s[1] == 0 && s != p))
            return 0;
        if (s[1] == '.' && (s[2] == '/' || s[2] == 0))
            return 0;
        if (s[1] == '.' && s[2] == '.' && (s[3] == '/' || s[3] == 0))
            return 0;
    }
    return 1;
}

/* A relative file name inside a dir: no leading '/', no "..", no "//". */
static int clean_rel(const char *p)
{
    char buf[PATH_MAX];

    if (!p || !*p || p[0] == '/' || strlen(p) + 2 > sizeof buf)
        return 0;
    snprintf(buf, sizeof buf, "/%s", p);
    return clean_abs(buf);
}

static int under_prefix(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);

    while (n > 1 && prefix[n - 1] == '/')
        n--;
    if (n == 1 && prefix[0] == '/')
        return 1;
    return strncmp(path, prefix, n) == 0 && (path[n] == 0 || path[n] == '/');
}

static const char *image_root(const struct sb_exec *ex, const char *name)
{
    for (char **p = ex->images; p && p[0] && p[1]; p += 2)
        if (strcmp(p[0], name) == 0)
            return p[1];
    return strcmp(name, "host") == 0 ? "/" : NULL;
}

static const char *net_mode(const struct sb_exec *ex, const struct jr_jv *spec,
                            int *bad)
{
    const struct jr_jv *n = jr_jv_get(spec, "network");
    const char *mode = NULL;

    *bad = 0;
    if (n && n->type == JR_JV_STR)
        mode = n->str;
    else if (n && n->type == JR_JV_OBJ)
        mode = jr_jv_str(n, "mode");
    else if (n && n->type != JR_JV_NULL)
        *bad = 1;
    if (!mode)
        return ex->network ? ex->network : "none";
    if (strcmp(mode, "none") && strcmp(mode, "full") && strcmp(mode, "allow"))
        *bad = 1;
    return mode;
}

/* network.domains (mode allow): NULL when not given. */
static const struct jr_jv *net_domains(const struct jr_jv *spec)
{
    const struct jr_jv *n = jr_jv_get(spec, "network");

    return n && n->type == JR_JV_OBJ ? jr_jv_get(n, "domains") : NULL;
}

static int check_domains(const char *alias, const char *net, const struct jr_jv *d,
                         struct jr_err *e)
{
    int n = 0;

    if (!d || d->type == JR_JV_NULL)
        return JR_OK;
    if (d->type != JR_JV_ARR)
        return jr_err_set(e, JR_E_INVALID, "task '%s': network.domains must be a list"
                          " of host names", alias);
    if (strcmp(net, "allow") != 0 && d->child)
        return jr_err_set(e, JR_E_INVALID, "task '%s': network.domains needs"
                          " network.mode allow", alias);
    for (d = d->child; d; d = d->next, n++) {
        if (d->type != JR_JV_STR || !jr_sandbox_domain_valid(d->str))
            return jr_err_set(e, JR_E_INVALID, "task '%s': network.domains[%d] must be a"
                              " host name, *.suffix or an IP address", alias, n + 1);
        if (n >= JR_SB_MAX_DOMAINS)
            return jr_err_set(e, JR_E_INVALID, "task '%s': more than %d network.domains",
                              alias, JR_SB_MAX_DOMAINS);
    }
    return JR_OK;
}

/* ---- inputs ---- */

struct input {
    const char *source;          /* inline, path, task-output, jobrt, url */
    const char *target;          /* absolute, in the sandbox */
    const char *data;            /* inline */
    size_t data_len;
    const char *path;            /* path: the host path */
    const char *task, *file;     /* task-output */
    const char *url;             /* url */
    int64_t max_bytes;
    char target_buf[PATH_MAX];
};

/* Reads inputs[i] into in; checks shape, allow-list and deps. 0 or an
 * error in e naming the input. */
static int read_input(const struct sb_exec *ex, const char *alias, int i,
                      const struct jr_jv *v, const char *const *deps, size_t ndeps,
                      struct input *in, struct jr_err *e)
{
    const char *target;
    const struct jr_jv *d;

    memset(in, 0, sizeof *in);
    if (!v || v->type != JR_JV_OBJ)
        return jr_err_set(e, JR_E_INVALID, "task '%s': inputs[%d] must be an object",
                          alias, i + 1);
    in->source = jr_jv_str(v, "source");
    if (!in->source)
        return jr_err_set(e, JR_E_INVALID, "task '%s': inputs[%d].source must be one of"
                          " inline, path, task-output, jobrt, url", alias, i + 1);
    target = jr_jv_str(v, "target");
    if (strcmp(in->source, "inline") == 0) {
        d = jr_jv_get(v, "data");
        if (!d)
            d = jr_jv_get(v, "content");
        if (!d || d->type != JR_JV_STR)
            return jr_err_set(e, JR_E_INVALID, "task '%s': inputs[%d] (inline) needs"
                              " \"data\", a string", alias, i + 1);
        in->data = d->str;
        in->data_len = d->len;
        if (!target)
            snprintf(in->target_buf, sizeof in->target_buf, "/inputs/input-%d", i + 1);
    } else if (strcmp(in->source, "path") == 0) {
        int allowed = 0;
        in->path = jr_jv_str(v, "path");
        if (!in->path || !clean_abs(in->path))
            return jr_err_set(e, JR_E_INVALID, "task '%s': inputs[%d].path must be an"
                              " absolute host path without '.', '..' or '//'", alias, i + 1);
        for (char **p = ex->host_paths; p && *p && !allowed; p++)
            allowed = under_prefix(in->path, *p);
        if (!allowed)
            return jr_err_set(e, JR_E_INVALID, "task '%s': inputs[%d].path %s is not under"
                              " sandbox.allow_host_paths", alias, i + 1, in->path);
        if (!target) {
            const char *base = strrchr(in->path, '/') + 1;
            snprintf(in->target_buf, sizeof in->target_buf, "/inputs/%s",
                     *base ? base : "root");
        }
    } else if (strcmp(in->source, "task-output") == 0) {
        size_t k;
        in->task = jr_jv_str(v, "task");
        in->file = jr_jv_str(v, "file");
        if (!in->task)
            return jr_err_set(e, JR_E_INVALID, "task '%s': inputs[%d] (task-output) needs"
                              " \"task\", a dependency's alias", alias, i + 1);
        for (k = 0; k < ndeps && strcmp(deps[k], in->task); k++)
            ;
        if (k == ndeps)
            return jr_err_set(e, JR_E_INVALID, "task '%s': inputs[%d] reads the outputs of"
                              " '%s', which is not in its deps", alias, i + 1, in->task);
        if (in->file && !clean_rel(in->file))
            return jr_err_set(e, JR_E_INVALID, "task '%s': inputs[%d].file must be a"
                              " relative path inside the outputs, without '..'", alias, i + 1);
        if (!target)
            snprintf(in->target_buf, sizeof in->target_buf, "/inputs/%s%s%s", in->task,
                     in->file ? "/" : "", in->file ? in->file : "");
    } else if (strcmp(in->source, "jobrt") == 0) {
        /* The daemon's own binary, e.g. for `jobrt eval` inside the task. */
        if (!target)
            snprintf(in->target_buf, sizeof in->target_buf, "/.jobrt/jobrt");
    } else if (strcmp(in->source, "url") == 0) {
        struct jr_fetch_url u;
        char why[200];
        const struct jr_jv *mb = jr_jv_get(v, "max_bytes");
        in->url = jr_jv_str(v, "url");
        if (!in->url)
            return jr_err_set(e, JR_E_INVALID, "task '%s': inputs[%d] (url) needs \"url\","
                              " a string", alias, i + 1);
        if (jr_fetch_parse_url(in->url, &u, why, sizeof why))
            return jr_err_set(e, JR_E_INVALID, "task '%s': inputs[%d].url %.200s: %s",
                              alias, i + 1, in->url, why);
        in->max_bytes = URL_MAX_BYTES;
        if (mb && mb->type != JR_JV_NULL) {
            if (mb->type != JR_JV_NUM || mb->num < 1 || mb->num > 1e15)
                return jr_err_set(e, JR_E_INVALID, "task '%s': inputs[%d].max_bytes must be"
                                  " a positive number", alias, i + 1);
            in->max_bytes = (int64_t)mb->num;
        }
        if (!target) {
            const char *base = strrchr(u.path, '/');
            base = base ? base + 1 : u.path;
            if (*base && strcspn(base, "?#") == strlen(base) && strcmp(base, ".") &&
                strcmp(base, ".."))
                snprintf(in->target_buf, sizeof in->target_buf, "/inputs/%s", base);
            else
                snprintf(in->target_buf, sizeof in->target_buf, "/inputs/input-%d", i + 1);
        }
    } else {
        return jr_err_set(e, JR_E_INVALID, "task '%s': inputs[%d].source '%s' is not one"
                          " of inline, path, task-output, jobrt, url", alias, i + 1,
                          in->source);
    }
    if (target) {
        if (!clean_abs(target) || strcmp(target, "/") == 0 ||
            strlen(target) >= sizeof in->target_buf)
            return jr_err_set(e, JR_E_INVALID, "task '%s': inputs[%d].target must be an"
                              " absolute path without '.', '..' or '//'", alias, i + 1);
        for (const char *const *r = (const char *const[]){ "/proc", "/dev", "/tmp",
                                                          "/outputs", "/work", NULL }; *r; r++)
            if (under_prefix(target, *r))
                return jr_err_set(e, JR_E_INVALID, "task '%s': inputs[%d].target cannot be"
                                  " under %s", alias, i + 1, *r);
        snprintf(in->target_buf, sizeof in->target_buf, "%s", target);
    }
    in->target = in->target_buf;
    return JR_OK;
}

/* Is target under a top-level entry of the image (a read-only bind, where
 * no mount point can be made)? */
static int inside_image(const char *root, const char *target)
{
    static const char *const host[] = { "usr", "etc", "bin", "sbin", "lib", "lib32",
                                        "lib64", "libx32", NULL };
    char first[NAME_MAX + 1], path[PATH_MAX];
    size_t n = strcspn(target + 1, "/");
    struct stat st;

    if (n == 0 || n > NAME_MAX)
        return 0;
    memcpy(first, target + 1, n);
    first[n] = 0;
    if (strcmp(first, "inputs") == 0)
        return 0;
    if (strcmp(root, "/") == 0) {
        for (int i = 0; host[i]; i++)
            if (strcmp(first, host[i]) == 0)
                return 1;
        return 0;
    }
    snprintf(path, sizeof path, "%s/%s", root, first);
    return lstat(path, &st) == 0;
}

/* Everything about the task spec a start or a check needs. */
static int read_spec(const struct sb_exec *ex, const char *alias, const struct jr_jv *spec,
                     const char *const *deps, size_t ndeps, const char **root,
                     const char **net, struct input **inputs, int *ninputs, struct jr_err *e)
{
    const struct jr_jv *img = jr_jv_get(spec, "image"), *ins, *v;
    const char *name = "host";
    int bad, n = 0;

    *inputs = NULL;
    *ninputs = 0;
    if (img && img->type == JR_JV_STR)
        name = img->str;
    else if (img && img->type != JR_JV_NULL)
        return jr_err_set(e, JR_E_INVALID, "task '%s': image must be a name", alias);
    if (!(*root = image_root(ex, name)))
        return jr_err_set(e, JR_E_INVALID, "task '%s': unknown image '%s' (not in"
                          " sandbox.images)", alias, name);
    *net = net_mode(ex, spec, &bad);
    if (bad)
        return jr_err_set(e, JR_E_INVALID, "task '%s': network.mode must be none, full or"
                          " allow", alias);
    if ((bad = check_domains(alias, *net, net_domains(spec), e)) != JR_OK)
        return bad;
    ins = jr_jv_get(spec, "inputs");
    if (!ins || ins->type == JR_JV_NULL)
        return JR_OK;
    if (ins->type != JR_JV_ARR)
        return jr_err_set(e, JR_E_INVALID, "task '%s': inputs must be a list", alias);
    for (v = ins->child; v; v = v->next)
        n++;
    if (n > MAX_INPUTS)
        return jr_err_set(e, JR_E_INVALID, "task '%s': more than %d inputs", alias,
                          MAX_INPUTS);
    if (n == 0)
        return JR_OK;
    *inputs = calloc((size_t)n, sizeof **inputs);
    if (!*inputs)
        return jr_err_set(e, JR_E_SYSTEM, "out of memory");
    n = 0;
    for (v = ins->child; v; v = v->next, n++) {
        int rc = read_input(ex, alias, n, v, deps, ndeps, &(*inputs)[n], e);
        if (rc) {
            free(*inputs);
            *inputs = NULL;
            return rc;
        }
        if (inside_image(*root, (*inputs)[n].target))
            rc = jr_err_set(e, JR_E_INVALID, "task '%s': inputs[%d].target %s is inside"
                            " the image's read-only tree; use /inputs/... or a new"
                            " top-level folder", alias, n + 1, (*inputs)[n].target);
        for (int k = 0; !rc && k < n; k++)
            if (strcmp((*inputs)[k].target, (*inputs)[n].target) == 0)
                rc = jr_err_set(e, JR_E_INVALID, "task '%s': inputs[%d] and inputs[%d]"
                                " have the same target %s", alias, k + 1, n + 1,
                                (*inputs)[k].target);
        if (rc) {
            free(*inputs);
            *inputs = NULL;
            return rc;
        }
    }
    *ninputs = n;
    return JR_OK;
}

static int parse_spec(const char *json, struct jr_jv **out, const char *alias,
                      struct jr_err *e)
{
    *out = jr_jv_parse(json ? json : "{}", json ? strlen(json) : 2);
    if (!*out || (*out)->type != JR_JV_OBJ)
        return jr_err_set(e, JR_E_INVALID, "task '%s': its stored spec is not a JSON"
                          " object", alias);
    return JR_OK;
}

static int sb_check(void *self, const char *alias, const char *spec_json,
                    const char *const *deps, size_t ndeps, struct jr_err *e)
{
    struct jr_jv *spec = NULL;
    struct input *inputs = NULL;
    const char *root, *net;
    int n, rc;

    rc = parse_spec(spec_json, &spec, alias, e);
    if (!rc)
        rc = read_spec(self, alias, spec, deps, ndeps, &root, &net, &inputs, &n, e);
    free(inputs);
    jr_jv_free(spec);
    return rc;
}

/* ---- staging ---- */

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
            return jr_err_set(e, JR_E_SYSTEM, "input %d: path too long", i + 1);
        if (mkdirs(dir) || write_all(src, in->data, in->data_len))
            return jr_err_set(e, JR_E_SYSTEM, "setup_error: stage inputs: input %d"
                              " (inline): writing %s: %s", i + 1, src, strerror(errno));
        return JR_OK;
    }
    if (strcmp(in->source, "path") == 0) {
        char real[PATH_MAX];
        if (!realpath(in->path, real))
            return jr_err_set(e, JR_E_SYSTEM, "setup_error: stage inputs: input %d"
                              " (path %s): %s", i + 1, in->path, strerror(errno));
        /* The allow-list holds for what the path really is, not its links. */
        if (strcmp(real, in->path) != 0)
            return jr_err_set(e, JR_E_SYSTEM, "setup_error: stage inputs: input %d"
                              " (path %s) resolves to %s through a link; give the real"
                              " path", i + 1, in->path, real);
        snprintf(src, size, "%s", real);
        return JR_OK;
    }
    if (strcmp(in->source, "jobrt") == 0) {
        if ((size_t)snprintf(src, size, "%s", c->exe) >= size)
            return jr_err_set(e, JR_E_SYSTEM, "input %d: path too long", i + 1);
        return JR_OK;
    }
    if (strcmp(in->source, "url") == 0) {
        /* An empty file now (the helper binds it); the download fills the
         * same inode before the gate opens. */
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s/inputs", s->task_dir);
        if ((size_t)snprintf(src, size, "%s/url-%d", dir, i + 1) >= size)
            return jr_err_set(e, JR_E_SYSTEM, "input %d: path too long", i + 1);
        if (mkdirs(dir) || (c->url_fd[i] = open(src, O_WRONLY | O_CREAT | O_TRUNC |
                                                O_CLOEXEC | O_NOFOLLOW, 0644)) < 0)
            return jr_err_set(e, JR_E_SYSTEM, "setup_error: stage inputs: input %d"
                              " (url): creating %s: %s", i + 1, src, strerror(errno));
        return JR_OK;
    }
    /* task-output */
    if ((size_t)snprintf(src, size, "%s/%s/outputs%s%s", s->job_dir, in->task,
                         in->file ? "/" : "", in->file ? in->file : "") >= size)
        return jr_err_set(e, JR_E_SYSTEM, "input %d: path too long", i + 1);
    if (lstat(src, &st) || S_ISLNK(st.st_mode))
        return jr_err_set(e, JR_E_SYSTEM, "setup_error: stage inputs: input %d: task '%s'"
                          " has no output%s%s (%s)", i + 1, in->task, in->file ? " " : "s",
                          in->file ? in->file : "",
                          S_ISLNK(st.st_mode) ? "a symbolic link" : strerror(errno));
    return JR_OK;
}

/* ---- the process ---- */

static void sb_free(struct sb_exec *ex);
static void on_server_exit(void *owner, struct jr_sbs *s, int32_t pid, int status);

/* The server that takes the starts; a lost one's notice may still be due,
 * and ends its attempts then. */
static int ensure_server(struct sb_exec *ex, struct jr_err *e)
{
    int rc;

    if (ex->server && jr_sbs_alive(ex->server))
        return JR_OK;
    ex->server = NULL;
    if ((rc = jr_sbs_spawn(ex->loop, ex->helper, on_server_exit, ex, &ex->server, e)))
        return rc;
    ex->nservers++;
    return JR_OK;
}

/* Stops the downloads still running; their callbacks will not come. */
static void abort_fetches(struct jr_exec_proc *p)
{
    for (int i = 0; i < p->nfetches; i++) {
        if (p->fetches[i].f) {
            jr_fetch_abort(p->fetches[i].f);
            p->fetches[i].f = NULL;
            p->fetching--;
        }
    }
}

static void proc_free(struct jr_exec_proc *p)
{
    abort_fetches(p);
    for (int i = 0; i < p->nfetches; i++)
        free(p->fetches[i].url);
    free(p->fetches);
    jr_exec_lines_free(&p->lines[0]);
    jr_exec_lines_free(&p->lines[1]);
    if (p->gate_fd >= 0)
        close(p->gate_fd);
    free(p);
}

static void unlink_proc(struct jr_exec_proc *p)
{
    if (!p->prevp)
        return;
    *p->prevp = p->next;
    if (p->next)
        p->next->prevp = p->prevp;
    p->next = NULL;
    p->prevp = NULL;
}

/* Freed once reported, its helper gone and its pipes closed. */
static void maybe_free(struct jr_exec_proc *p)
{
    if (p->reported && p->exited && p->open_handles == 0) {
        unlink_proc(p);
        proc_free(p);
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    struct jr_exec_proc *p = h->data;

    p->open_handles--;
    maybe_free(p);
}

static int outcome_of(const char *name)
{
    for (int k = JR_OUT_EXITED; k <= JR_OUT_CANCELED; k++)
        if (strcmp(jr_exec_outcome_name(k), name) == 0)
            return k;
    return JR_OUT_NONE;
}

static int64_t num_of(const struct jr_jv *o, const char *key, int64_t def)
{
    const struct jr_jv *v = jr_jv_get(o, key);

    return v && v->type == JR_JV_NUM ? (int64_t)v->num : def;
}

/* The helper's outcome line into p->result; without one, what its exit
 * status says. */
static void read_outcome(struct jr_exec_proc *p)
{
    struct jr_exec_result *r = &p->result;
    struct jr_jv *o = NULL;
    const char *name, *msg, *stage;

    r->exit_code = -1;
    r->cpu_ms = r->max_rss_bytes = r->wall_ms = -1;
    if (p->status_len > 0)
        o = jr_jv_parse(p->status_line, p->status_len);
    name = o ? jr_jv_str(o, "outcome") : NULL;
    if (!name || outcome_of(name) == JR_OUT_NONE) {
        r->outcome = p->exit_signal ? JR_OUT_SIGNALED : JR_OUT_SETUP_ERROR;
        r->signal = p->exit_signal;
        if (p->lost)
            snprintf(r->message, sizeof r->message, "the sandbox helper ended without "
                     "reporting (its sandbox server was lost)");
        else
            snprintf(r->message, sizeof r->message, p->exit_signal
                     ? "the sandbox helper was killed by signal %d before reporting"
                     : "the sandbox helper exited with status %d without reporting",
                     p->exit_signal ? p->exit_signal : (int)p->exit_status);
        jr_jv_free(o);
        return;
    }
    r->outcome = outcome_of(name);
    r->exit_code = (int)num_of(o, "exit_code", -1);
    r->signal = (int)num_of(o, "signal", 0);
    r->cpu_ms = num_of(o, "cpu_ms", -1);
    r->max_rss_bytes = num_of(o, "max_rss_bytes", -1);
    r->wall_ms = num_of(o, "wall_ms", -1);
    msg = jr_jv_str(o, "message");
    stage = jr_jv_str(o, "stage");
    if (r->outcome == JR_OUT_SETUP_ERROR)
        snprintf(r->message, sizeof r->message, "setup_error at stage %s (errno %d): %s",
                 stage ? stage : "?", (int)num_of(o, "errno", 0), msg ? msg : "");
    else if (r->outcome == JR_OUT_EXITED && r->exit_code != 0)
        snprintf(r->message, sizeof r->message, "exit code %d", r->exit_code);
    else if (r->outcome == JR_OUT_SIGNALED)
        snprintf(r->message, sizeof r->message, "killed by signal %d", r->signal);
    else if (msg)
        snprintf(r->message, sizeof r->message, "%s", msg);
    jr_jv_free(o);
}

/* Has the helper sent a complete outcome line? It sends it once the task's
 * processes are all dead and reaped (before its namespaces are torn down
 * and its cgroups removed), then closes the status pipe. */
static int have_outcome(const struct jr_exec_proc *p)
{
    struct jr_jv *o;
    const char *name;
    int ok;

    if (!p->status_eof || p->status_len == 0 || p->status_line[p->status_len - 1] != '\n')
        return 0;
    o = jr_jv_parse(p->status_line, p->status_len);
    name = o ? jr_jv_str(o, "outcome") : NULL;
    ok = name && outcome_of(name) != JR_OUT_NONE;
    jr_jv_free(o);
    return ok;
}

/* The attempt ends when every pipe has closed and either the outcome line
 * is in or the helper has exited (without a line: its exit status says
 * what happened). A helper still tearing down is reaped later by the
 * server, whose notice lets the proc go (helper_exited). */
static void maybe_done(struct jr_exec_proc *p)
{
    if (p->reported || p->open_pipes > 0 || (!p->exited && !have_outcome(p)))
        return;
    p->reported = 1;
    abort_fetches(p);
    read_outcome(p);
    if (p->fetch_err[0]) { /* the helper only saw its gate close */
        p->result.outcome = JR_OUT_SETUP_ERROR;
        p->result.exit_code = -1;
        p->result.signal = 0;
        snprintf(p->result.message, sizeof p->result.message, "%s", p->fetch_err);
    }
    p->result.duration_ms = (int64_t)(uv_now(p->loop) - p->started);
    p->cbs.done(p->arg, &p->result);
    /* p stays: freed by the caller or by the last handle's close. */
}

static void log_line(void *arg, int stream, const char *line, size_t len)
{
    struct jr_exec_proc *p = arg;
    char note[96];

    if (p->truncated)
        return;
    if (p->logged + (int64_t)len > p->log_cap) {
        p->truncated = 1;
        snprintf(note, sizeof note, "[jobrt] output truncated: more than %lld bytes",
                 (long long)p->log_cap);
        p->cbs.log(p->arg, 2, note, strlen(note));
        return;
    }
    p->logged += (int64_t)len + 1;
    p->cbs.log(p->arg, stream, line, len);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct jr_exec_proc *p = h->data;

    (void)hint;
    if ((uv_pipe_t *)h == &p->status) {
        buf->base = p->status_line + p->status_len;
        buf->len = sizeof p->status_line - 1 - p->status_len;
        if (buf->len == 0) { /* an oversized line: keep reading, drop it */
            p->status_len = 0;
            buf->base = p->status_line;
            buf->len = sizeof p->status_line - 1;
        }
        return;
    }
    jr_exec_lines_room(&p->lines[(uv_pipe_t *)h == &p->out ? 0 : 1], buf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct jr_exec_proc *p = s->data;
    int stream = (uv_pipe_t *)s == &p->out ? 1 : (uv_pipe_t *)s == &p->err ? 2 : 3;

    (void)buf;
    if (n > 0) {
        if (stream == 3) {
            p->status_len += (size_t)n;
            p->status_line[p->status_len] = 0;
            return;
        }
        jr_exec_lines_add(&p->lines[stream - 1], (size_t)n, 0, log_line, p, stream);
        return;
    }
    if (n == 0)
        return;
    if (stream < 3)
        jr_exec_lines_add(&p->lines[stream - 1], 0, 1, log_line, p, stream);
    else
        p->status_eof = 1;
    uv_close((uv_handle_t *)s, on_handle_closed);
    p->open_pipes--;
    maybe_done(p);
}

/* The server reaped p's helper (and killed what was left of its process
 * group), or, with status -1, the server is lost: the helper runs on and
 * its pipes still tell the end. */
static void helper_exited(struct jr_exec_proc *p, int status)
{
    p->exited = 1;
    p->server = NULL;
    if (status < 0)
        p->lost = 1;
    else if (WIFSIGNALED(status))
        p->exit_signal = WTERMSIG(status);
    else
        p->exit_status = WEXITSTATUS(status);
    unlink_proc(p);
    maybe_done(p);
    maybe_free(p);
}

static void on_server_exit(void *owner, struct jr_sbs *s, int32_t pid, int status)
{
    struct sb_exec *ex = owner;
    struct jr_exec_proc *p, *next;

    if (pid > 0) {
        for (p = ex->procs; p; p = p->next)
            if (p->pid == pid && p->server == s) {
                helper_exited(p, status);
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
            helper_exited(p, -1);
    }
    jr_sbs_close(s);
    if (--ex->nservers == 0 && ex->closing)
        sb_free(ex);
}

/* ---- argv of the helper ---- */

struct argv_b {
    char **v;
    size_t n, cap;
    int failed;
};

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

static int build_args(struct sb_exec *ex, const struct jr_exec_spec *s, const char *root,
                      const char *net, const struct jr_jv *domains,
                      const struct input *inputs, int ninputs, int *url_fd,
                      struct argv_b *a, struct jr_err *e)
{
    struct spec_ctx c = { s, ex->exe, url_fd };
    const char *w = s->workdir;
    char src[PATH_MAX], base[8][PATH_MAX + 32];
    int i, nb = 0, rc;

    add(a, "%s", ex->helper);
    add(a, "sandbox");
    add(a, "--gate-fd=3");
    add(a, "--status-fd=4");
    add(a, "--image=%s", strcmp(root, "/") == 0 ? "host" : root);
    add(a, "--bind-rw=%s/outputs:/outputs", s->task_dir);
    add(a, "--bind-rw=%s/work:/work", s->task_dir);
    for (i = 0; i < ninputs; i++) {
        if ((rc = stage_input(&c, i, &inputs[i], src, sizeof src, e)))
            return rc;
        add(a, "--bind-ro=%s:%s", src, inputs[i].target);
    }
    if (!w || !*w)
        add(a, "--workdir=/outputs");
    else if (w[0] == '/')
        add(a, "--workdir=%s", w);
    else
        add(a, "--workdir=/%s", w);
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
        if (!has_env(s->task_env, base[i]))
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
    for (const struct jr_jv *d = domains ? domains->child : NULL; d; d = d->next)
        add(a, "--allow-domain=%s", d->str);
    add(a, "--cgroup-parent=%s", ex->cgroup_parent);
    add(a, "--cgroup-name=t%08x-%.40s-%.24s-%lld-%llu", fnv(s->job_id, s->task), s->job_id,
        s->task, (long long)s->attempt, (unsigned long long)++ex->counter);
    add(a, "--");
    for (char *const *v = s->argv; *v; v++)
        add(a, "%s", *v);
    if (a->failed)
        return jr_err_set(e, JR_E_SYSTEM, "out of memory");
    return JR_OK;
}

static void start_fetches(struct sb_exec *ex, struct jr_exec_proc *p,
                          const struct input *inputs, int ninputs, int *url_fd);

static int sb_start(void *self, const struct jr_exec_spec *spec,
                    const struct jr_exec_cbs *cbs, void *arg,
                    struct jr_exec_proc **out_proc, int64_t *pid, int64_t *pid_start,
                    struct jr_err *e)
{
    struct sb_exec *ex = self;
    struct jr_exec_proc *p = NULL;
    struct jr_jv *sj = NULL;
    struct input *inputs = NULL;
    struct argv_b a = { NULL, 0, 0, 0 };
    int gate[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
    int status[2] = { -1, -1 };
    const char *root, *net, *deps[MAX_INPUTS + 1];
    int ninputs = 0, ndeps = 0, rc, url_fd[MAX_INPUTS];

    *out_proc = NULL;
    for (int i = 0; i < MAX_INPUTS; i++)
        url_fd[i] = -1;
    if (!spec->argv[0])
        return jr_err_set(e, JR_E_INVALID, "empty command");
    if ((rc = parse_spec(spec->spec_json, &sj, spec->task, e)))
        goto done;
    /* deps were checked at submit; here only the task-output names matter */
    {
        const struct jr_jv *ins = jr_jv_get(sj, "inputs"), *v;
        for (v = ins && ins->type == JR_JV_ARR ? ins->child : NULL;
             v && ndeps < MAX_INPUTS; v = v->next) {
            const char *t = jr_jv_str(v, "task");
            if (t)
                deps[ndeps++] = t;
        }
        deps[ndeps] = NULL;
    }
    if ((rc = read_spec(ex, spec->task, sj, deps, (size_t)ndeps, &root, &net, &inputs,
                        &ninputs, e)))
        goto done;
    if ((rc = build_args(ex, spec, root, net, net_domains(sj), inputs, ninputs, url_fd,
                         &a, e)))
        goto done;
    if ((rc = ensure_server(ex, e)))
        goto done;
    p = calloc(1, sizeof *p);
    if (!p) {
        rc = jr_err_set(e, JR_E_SYSTEM, "out of memory");
        goto done;
    }
    p->gate_fd = -1;
    p->log_cap = ex->log_cap;
    p->loop = ex->loop;
    /* The helper's ends, passed to the server; the gate's write end and the
     * pipes' read ends stay here. */
    if (pipe2(gate, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC) ||
        pipe2(status, O_CLOEXEC)) {
        rc = jr_err_set(e, JR_E_SYSTEM, "pipes: %s", strerror(errno));
        goto done;
    }
    uv_pipe_init(ex->loop, &p->out, 0);
    uv_pipe_init(ex->loop, &p->err, 0);
    uv_pipe_init(ex->loop, &p->status, 0);
    p->out.data = p->err.data = p->status.data = p;
    p->open_handles = 3;
    {
        int fds[4] = { gate[0], out[1], err[1], status[1] };
        int32_t pid;
        int r = uv_pipe_open(&p->out, out[0]);
        if (r == 0 && (r = uv_pipe_open(&p->err, err[0])) == 0)
            r = uv_pipe_open(&p->status, status[0]);
        if (r == 0)
            out[0] = err[0] = status[0] = -1; /* the handles' now */
        rc = r ? jr_err_set(e, JR_E_SYSTEM, "pipes: %s", uv_strerror(r))
               : jr_sbs_start(ex->server, a.v + 2, fds, &pid, e);
        if (rc) {
            /* The pipes' handles close; the executor's server, if lost,
             * is replaced at the next start. */
            p->reported = p->exited = 1;
            uv_close((uv_handle_t *)&p->out, on_handle_closed);
            uv_close((uv_handle_t *)&p->err, on_handle_closed);
            uv_close((uv_handle_t *)&p->status, on_handle_closed);
            p = NULL;
            goto done;
        }
        p->pid = pid;
    }
    p->cbs = *cbs;
    p->arg = arg;
    p->server = ex->server;
    p->next = ex->procs;
    p->prevp = &ex->procs;
    if (ex->procs)
        ex->procs->prevp = &p->next;
    ex->procs = p;
    p->gate_fd = gate[1];
    gate[1] = -1;
    start_fetches(ex, p, inputs, ninputs, url_fd);
    p->started = uv_now(ex->loop);
    p->open_pipes = 3;
    uv_read_start((uv_stream_t *)&p->out, on_alloc, on_read);
    uv_read_start((uv_stream_t *)&p->err, on_alloc, on_read);
    uv_read_start((uv_stream_t *)&p->status, on_alloc, on_read);
    *pid = p->pid;
    *pid_start = jr_exec_pid_start(p->pid);
    *out_proc = p;
    p = NULL;
done:
    for (int i = 0; i < MAX_INPUTS; i++)
        if (url_fd[i] >= 0)
            close(url_fd[i]);
    for (int i = 0; i < 2; i++) {
        if (gate[i] >= 0)
            close(gate[i]);
        if (out[i] >= 0)
            close(out[i]);
        if (err[i] >= 0)
            close(err[i]);
        if (status[i] >= 0)
            close(status[i]);
    }
    if (p)
        proc_free(p);
    free_list(a.v);
    free(inputs);
    jr_jv_free(sj);
    return rc;
}

static void write_go(struct jr_exec_proc *p)
{
    ssize_t w;

    if (p->gate_fd < 0)
        return;
    do
        w = write(p->gate_fd, "go\n", 3);
    while (w < 0 && errno == EINTR);
    close(p->gate_fd);
    p->gate_fd = -1;
}

/* The scheduler's go: at once, or when the last url input is in. */
static void sb_go(struct jr_exec_proc *p)
{
    if (p->fetching > 0) {
        p->go_wanted = 1;
        return;
    }
    write_go(p);
}

/* A download failed: the attempt fails with its reason (the helper, whose
 * gate closes, reports only "canceled"). */
static void fetch_failed(struct jr_exec_proc *p, struct url_fetch *fs, const char *reason)
{
    if (!p->fetch_err[0])
        snprintf(p->fetch_err, sizeof p->fetch_err, "setup_error at stage inputs: input %d"
                 " (url %.200s): %s", fs->input, fs->url, reason);
    abort_fetches(p);
    p->go_wanted = 0;
    if (p->gate_fd >= 0) {
        close(p->gate_fd);
        p->gate_fd = -1;
    }
}

static void on_fetched(void *arg, int ok, const char *reason)
{
    struct url_fetch *fs = arg;
    struct jr_exec_proc *p = fs->p;

    fs->f = NULL;
    p->fetching--;
    if (!ok)
        fetch_failed(p, fs, reason);
    else if (p->fetching == 0 && p->go_wanted) {
        p->go_wanted = 0;
        write_go(p);
    }
}

/* Starts a download per url input (fds are taken, -1 after). */
static void start_fetches(struct sb_exec *ex, struct jr_exec_proc *p,
                          const struct input *inputs, int ninputs, int *url_fd)
{
    int n = 0;

    for (int i = 0; i < ninputs; i++)
        n += url_fd[i] >= 0;
    if (n == 0)
        return;
    p->fetches = calloc((size_t)n, sizeof *p->fetches);
    for (int i = 0; i < ninputs; i++) {
        struct url_fetch *fs;
        struct jr_err fe = { 0, "" };
        if (url_fd[i] < 0)
            continue;
        if (!p->fetches || p->fetch_err[0]) {
            close(url_fd[i]);
            url_fd[i] = -1;
            if (!p->fetch_err[0])
                snprintf(p->fetch_err, sizeof p->fetch_err, "setup_error at stage inputs:"
                         " out of memory");
            continue;
        }
        fs = &p->fetches[p->nfetches++];
        fs->p = p;
        fs->input = i + 1;
        fs->url = strdup(inputs[i].url);
        p->fetching++; /* before the start: a failure may call back at once */
        if (jr_fetch_start(ex->loop, &ex->tls, inputs[i].url, url_fd[i], inputs[i].max_bytes,
                           URL_TIMEOUT_MS, on_fetched, fs, &fs->f, &fe)) {
            p->fetching--;
            fetch_failed(p, fs, fe.msg);
        }
        url_fd[i] = -1;
    }
    if (p->fetch_err[0] && p->gate_fd >= 0) {
        close(p->gate_fd);
        p->gate_fd = -1;
    }
}

static void sb_kill(struct jr_exec_proc *p, int signum)
{
    abort_fetches(p);
    p->go_wanted = 0;
    /* Still at its gate: closing it is the cancel, and the helper removes
     * what it prepared. */
    if (p->gate_fd >= 0) {
        close(p->gate_fd);
        p->gate_fd = -1;
        return;
    }
    if (p->exited || p->reported)
        return;
    /* SIGTERM: the helper passes it on and SIGKILLs the tree after its
     * grace. SIGKILL: the helper and its init (one process group) die, and
     * with the init the whole pid namespace. Through the server, which
     * knows the pid is still its child; without it (lost), directly. */
    if (p->server && jr_sbs_kill(p->server, (int32_t)p->pid, signum, signum == SIGKILL) == 0)
        return;
    if (signum == SIGKILL)
        kill(-(pid_t)p->pid, SIGKILL);
    else
        kill((pid_t)p->pid, signum);
}

/* The executor goes once its server is lost: until then exit notices may
 * still end attempts (the scheduler kills them all before closing us). */
static void sb_close(void *self)
{
    struct sb_exec *ex = self;

    ex->closing = 1;
    if (ex->server)
        jr_sbs_close(ex->server);
    ex->server = NULL;
    if (ex->nservers == 0)
        sb_free(ex);
}

static void sb_free(struct sb_exec *ex)
{
    if (ex->helper != ex->exe)
        free(ex->helper);
    free(ex->exe);
    free(ex->cgroup_parent);
    free(ex->network);
    free_list(ex->images);
    free_list(ex->host_paths);
    jr_fetch_tls_free(ex->tls);
    free(ex);
}

static const struct jr_exec_ops sandbox_ops = {
    .name = "sandbox",
    .start = sb_start,
    .go = sb_go,
    .kill = sb_kill,
    .close = sb_close,
    .check = sb_check,
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
    ex->exe = xstrdup(o->exe);
    ex->helper = ex->exe && !getenv("JOBRT_SANDBOX_NO_HELPER") ? find_helper(ex->exe) : NULL;
    if (!ex->helper)
        ex->helper = ex->exe;
    ex->cgroup_parent = xstrdup(o->cgroup_parent ? o->cgroup_parent : "jobrt");
    ex->network = xstrdup(o->network ? o->network : "none");
    ex->images = copy_list(o->images);
    ex->host_paths = copy_list(o->host_paths);
    ex->grace_ms = o->grace_ms > 0 ? o->grace_ms : 5000;
    ex->log_cap = o->log_cap > 0 ? o->log_cap : DEFAULT_LOG_CAP;
    if (!ex->exe || !ex->cgroup_parent || !ex->network || !ex->images || !ex->host_paths) {
        sb_close(ex);
        return jr_err_set(e, JR_E_SYSTEM, o->exe ? "out of memory"
                          : "the sandbox executor needs the jobrt binary's path");
    }
    out->ops = &sandbox_ops;
    out->self = ex;
    return JR_OK;
}
