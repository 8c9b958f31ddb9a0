/* The sandbox executor reading a task's spec (struct jr_task_setup): its
 * image, network mode and domains, and its inputs (shape, allow-list, deps,
 * targets). Used at submit (jr_sbexec_check) and again when an attempt
 * starts. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "exec/sandbox_internal.h"
#include "sandbox/sandbox.h"

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

static const char *net_mode(const struct sb_exec *ex, const struct jr_task_setup *spec,
                            int *bad)
{
    const char *mode = spec->network_mode;

    *bad = spec->network_kind == JR_SPEC_BAD;
    if (!mode)
        return ex->network ? ex->network : "none";
    if (strcmp(mode, "none") && strcmp(mode, "full") && strcmp(mode, "allow"))
        *bad = 1;
    return mode;
}

static int check_domains(const char *alias, const char *net, const struct jr_task_setup *spec,
                         struct jr_err *e)
{
    if (spec->domains_kind == JR_SPEC_ABSENT)
        return JR_OK;
    if (spec->domains_kind == JR_SPEC_BAD)
        return jr_err_set(e, JR_E_INVALID, "task '%s': network.domains must be a list"
                          " of host names", alias);
    if (strcmp(net, "allow") != 0 && spec->ndomains)
        return jr_err_set(e, JR_E_INVALID, "task '%s': network.domains needs"
                          " network.mode allow", alias);
    for (size_t n = 0; n < spec->ndomains; n++) {
        const char *d = spec->domains[n];
        if (!d || !jr_sandbox_domain_valid(d))
            return jr_err_set(e, JR_E_INVALID, "task '%s': network.domains[%d] must be a"
                              " host name, *.suffix or an IP address", alias, (int)n);
        if (n >= JR_SB_MAX_DOMAINS)
            return jr_err_set(e, JR_E_INVALID, "task '%s': more than %d network.domains",
                              alias, JR_SB_MAX_DOMAINS);
    }
    return JR_OK;
}

/* ---- inputs ---- */


/* Reads inputs[i] into in; checks shape, allow-list and deps. 0 or an
 * error in e naming the input. */
static int read_input(const struct sb_exec *ex, const char *alias, int i,
                      const struct jr_spec_input *v, const char *const *deps, size_t ndeps,
                      struct input *in, struct jr_err *e)
{
    const char *target;

    memset(in, 0, sizeof *in);
    if (!v->is_object)
        return jr_err_set(e, JR_E_INVALID, "task '%s': inputs[%d] must be an object",
                          alias, i);
    in->source = v->source;
    if (!in->source)
        return jr_err_set(e, JR_E_INVALID, "task '%s': inputs[%d].source must be one of"
                          " inline, path, task-output, jobrt, url", alias, i);
    target = v->target;
    if (strcmp(in->source, "inline") == 0) {
        if (!v->data)
            return jr_err_set(e, JR_E_INVALID, "task '%s': inputs[%d] (inline) needs"
                              " \"data\", a string", alias, i);
        in->data = v->data;
        in->data_len = v->data_len;
        if (!target)
            snprintf(in->target_buf, sizeof in->target_buf, "/inputs/input-%d", i + 1);
    } else if (strcmp(in->source, "path") == 0) {
        int allowed = 0;
        in->path = v->path;
        if (!in->path || !clean_abs(in->path))
            return jr_err_set(e, JR_E_INVALID, "task '%s': inputs[%d].path must be an"
                              " absolute host path without '.', '..' or '//'", alias, i);
        for (char **p = ex->host_paths; p && *p && !allowed; p++)
            allowed = under_prefix(in->path, *p);
        if (!allowed)
            return jr_err_set(e, JR_E_INVALID, "task '%s': inputs[%d].path %s is not under"
                              " sandbox.allow_host_paths", alias, i, in->path);
        if (!target) {
            const char *base = strrchr(in->path, '/') + 1;
            snprintf(in->target_buf, sizeof in->target_buf, "/inputs/%s",
                     *base ? base : "root");
        }
    } else if (strcmp(in->source, "task-output") == 0) {
        size_t k;
        in->task = v->task;
        in->file = v->file;
        if (!in->task)
            return jr_err_set(e, JR_E_INVALID, "task '%s': inputs[%d] (task-output) needs"
                              " \"task\", a dependency's alias", alias, i);
        for (k = 0; k < ndeps && strcmp(deps[k], in->task); k++)
            ;
        if (k == ndeps)
            return jr_err_set(e, JR_E_INVALID, "task '%s': inputs[%d] reads the outputs of"
                              " '%s', which is not in its deps", alias, i, in->task);
        if (in->file && !clean_rel(in->file))
            return jr_err_set(e, JR_E_INVALID, "task '%s': inputs[%d].file must be a"
                              " relative path inside the outputs, without '..'", alias, i);
        if (!target)
            snprintf(in->target_buf, sizeof in->target_buf, "/inputs/%s%s%s", in->task,
                     in->file ? "/" : "", in->file ? in->file : "");
    } else if (strcmp(in->source, "jobrt") == 0) {
        /* The daemon's own binary, e.g. for `jobrt eval` inside the task. */
        if (!target)
            snprintf(in->target_buf, sizeof in->target_buf, "/.jobrt/jobrt");
    } else if (strcmp(in->source, "url") == 0) {
        struct jr_http_url u;
        char why[200];
        in->url = v->url;
        if (!in->url)
            return jr_err_set(e, JR_E_INVALID, "task '%s': inputs[%d] (url) needs \"url\","
                              " a string", alias, i);
        if (jr_http_url_parse(in->url, &u, why, sizeof why))
            return jr_err_set(e, JR_E_INVALID, "task '%s': inputs[%d].url %.200s: %s",
                              alias, i, in->url, why);
        in->max_bytes = URL_MAX_BYTES;
        if (v->max_bytes_kind != JR_SPEC_ABSENT) {
            if (v->max_bytes_kind != JR_SPEC_OK || v->max_bytes < 1 || v->max_bytes > 1e15)
                return jr_err_set(e, JR_E_INVALID, "task '%s': inputs[%d].max_bytes must be"
                                  " a positive number", alias, i);
            in->max_bytes = (int64_t)v->max_bytes;
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
                          " of inline, path, task-output, jobrt, url", alias, i,
                          in->source);
    }
    if (target) {
        if (!clean_abs(target) || strcmp(target, "/") == 0 ||
            strlen(target) >= sizeof in->target_buf)
            return jr_err_set(e, JR_E_INVALID, "task '%s': inputs[%d].target must be an"
                              " absolute path without '.', '..' or '//'", alias, i);
        for (const char *const *r = (const char *const[]){ "/proc", "/dev", "/tmp",
                                                          "/outputs", "/work", NULL }; *r; r++)
            if (under_prefix(target, *r))
                return jr_err_set(e, JR_E_INVALID, "task '%s': inputs[%d].target cannot be"
                                  " under %s", alias, i, *r);
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

/* Whether name is on a registry images are pulled from on demand. */
static int pullable(const struct sb_exec *ex, const char *name)
{
    char host[256];

    if (!ex->pull_hosts || !jr_image_name_valid(name) ||
        jr_image_ref_host(name, host, sizeof host))
        return 0;
    for (char **h = ex->pull_hosts; *h; h++)
        if (strcmp(*h, host) == 0)
            return 1;
    return 0;
}

/* The image: the store's first (use filled, *root its merged copy or
 * NULL for layers), then sandbox.images. */
static int find_image(const struct sb_exec *ex, const char *alias, const char *name,
                      const struct jr_task_setup *spec, const char **root,
                      struct jr_image_use *use, int *has_use, struct jr_err *e)
{
    *has_use = 0;
    if (ex->image_store && strcmp(name, "host") != 0 && jr_image_name_valid(name)) {
        struct jr_err ie = { 0, "" };
        int rc = jr_image_resolve(ex->image_store, name, use, &ie);
        if (rc == JR_OK) {
            *has_use = 1;
            *root = use->rootfs;
            if (!spec->has_command && !use->cmd && !use->entrypoint &&
                !(spec->entrypoint_kind == JR_SPEC_OK && spec->nentrypoint)) {
                jr_image_use_free(use);
                *has_use = 0;
                return jr_err_set(e, JR_E_INVALID, "task '%s' has no command, and image"
                                  " '%s' has no Entrypoint or Cmd", alias, name);
            }
            return JR_OK;
        }
        if (rc != JR_E_NOT_FOUND)
            return jr_err_set(e, JR_E_INVALID, "task '%s': image '%s': %s", alias, name,
                              ie.msg);
    }
    if (!(*root = image_root(ex, name)) && spec->checking && pullable(ex, name)) {
        /* Accepted at submit: the pipeline starts the job once its pull
         * is done; at start it must be in the store. */
        *root = "/";
        return JR_OK;
    }
    if (!*root)
        return jr_err_set(e, JR_E_INVALID, "task '%s': unknown image '%s' (not in the image"
                          " store%s nor in sandbox.images)", alias, name,
                          ex->image_store ? "" : ", which is off,");
    if (!spec->has_command)
        return jr_err_set(e, JR_E_INVALID, "task '%s' has no command", alias);
    return JR_OK;
}

static int read_spec_rest(const struct sb_exec *ex, const char *alias,
                          const struct jr_task_setup *spec, const char *const *deps,
                          size_t ndeps, const char *root, const char **net,
                          struct input **inputs, int *ninputs, struct jr_err *e);

/* Everything about the task spec a start or a check needs. */
static int read_spec(const struct sb_exec *ex, const char *alias,
                     const struct jr_task_setup *spec, const char *const *deps, size_t ndeps,
                     const char **root, const char **net, struct input **inputs, int *ninputs,
                     struct jr_image_use *use, int *has_use, struct jr_err *e)
{
    const char *name = "host";
    int rc = JR_OK;

    *inputs = NULL;
    *ninputs = 0;
    *has_use = 0;
    if (spec->image_kind == JR_SPEC_OK)
        name = spec->image;
    else if (spec->image_kind == JR_SPEC_BAD)
        return jr_err_set(e, JR_E_INVALID, "task '%s': image must be a name", alias);
    if (spec->entrypoint_kind == JR_SPEC_BAD)
        return jr_err_set(e, JR_E_INVALID, "task '%s': entrypoint must be a list of"
                          " strings", alias);
    for (size_t k = 0; spec->entrypoint_kind == JR_SPEC_OK && k < spec->nentrypoint; k++)
        if (!spec->entrypoint[k])
            return jr_err_set(e, JR_E_INVALID, "task '%s': entrypoint[%d] must be a string",
                              alias, (int)k);
    if ((rc = find_image(ex, alias, name, spec, root, use, has_use, e)))
        return rc;
    if (spec->entrypoint_kind == JR_SPEC_OK && !*has_use)
        rc = jr_err_set(e, JR_E_INVALID, "task '%s': entrypoint is for images of the image"
                        " store; '%s' is not one: put the whole argv in command", alias, name);
    if ((rc = rc ? rc : read_spec_rest(ex, alias, spec, deps, ndeps, *root, net, inputs,
                                       ninputs, e)) && *has_use) {
        jr_image_use_free(use);
        *has_use = 0;
    }
    return rc;
}

/* The network and the inputs. */
static int read_spec_rest(const struct sb_exec *ex, const char *alias,
                          const struct jr_task_setup *spec, const char *const *deps,
                          size_t ndeps, const char *root, const char **net,
                          struct input **inputs, int *ninputs, struct jr_err *e)
{
    int bad, n;

    *net = net_mode(ex, spec, &bad);
    if (bad)
        return jr_err_set(e, JR_E_INVALID, "task '%s': network.mode must be none, full or"
                          " allow", alias);
    if ((bad = check_domains(alias, *net, spec, e)) != JR_OK)
        return bad;
    if (spec->inputs_kind == JR_SPEC_ABSENT)
        return JR_OK;
    if (spec->inputs_kind == JR_SPEC_BAD)
        return jr_err_set(e, JR_E_INVALID, "task '%s': inputs must be a list", alias);
    if (spec->ninputs > MAX_INPUTS)
        return jr_err_set(e, JR_E_INVALID, "task '%s': more than %d inputs", alias,
                          MAX_INPUTS);
    if (spec->ninputs == 0)
        return JR_OK;
    *inputs = calloc(spec->ninputs, sizeof **inputs);
    if (!*inputs)
        return jr_err_set(e, JR_E_SYSTEM, "out of memory");
    for (n = 0; n < (int)spec->ninputs; n++) {
        int rc = read_input(ex, alias, n, &spec->inputs[n], deps, ndeps, &(*inputs)[n], e);
        if (rc) {
            free(*inputs);
            *inputs = NULL;
            return rc;
        }
        if (root && inside_image(root, (*inputs)[n].target))
            rc = jr_err_set(e, JR_E_INVALID, "task '%s': inputs[%d].target %s is inside"
                            " the image's read-only tree; use /inputs/... or a new"
                            " top-level folder", alias, n, (*inputs)[n].target);
        for (int k = 0; !rc && k < n; k++)
            if (strcmp((*inputs)[k].target, (*inputs)[n].target) == 0)
                rc = jr_err_set(e, JR_E_INVALID, "task '%s': inputs[%d] and inputs[%d]"
                                " have the same target %s", alias, k, n,
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

int jr_sbexec_check(void *self, const char *alias, const struct jr_task_setup *spec,
                    const char *const *deps, size_t ndeps, struct jr_err *e)
{
    struct input *inputs = NULL;
    struct jr_image_use use;
    const char *root, *net;
    int n, rc, has_use;

    rc = read_spec(self, alias, spec, deps, ndeps, &root, &net, &inputs, &n, &use, &has_use,
                   e);
    if (has_use)
        jr_image_use_free(&use);
    free(inputs);
    return rc;
}

int jr_sbexec_read_task(const struct sb_exec *ex, const struct jr_exec_spec *spec,
                        struct sb_task *t, struct jr_err *e)
{
    struct jr_task_setup st;
    const char *deps[MAX_INPUTS + 1];
    int ndeps = 0, rc;

    memset(t, 0, sizeof *t);
    if (!spec->setup)
        return jr_err_set(e, JR_E_INVALID, "task '%s': no spec to start it from",
                          spec->task);
    st = *spec->setup;
    st.has_command = spec->argv && spec->argv[0];
    /* deps were checked at submit; here only the task-output names matter */
    for (size_t i = 0; i < st.ninputs && ndeps < MAX_INPUTS; i++)
        if (st.inputs[i].task)
            deps[ndeps++] = st.inputs[i].task;
    deps[ndeps] = NULL;
    if ((rc = read_spec(ex, spec->task, &st, deps, (size_t)ndeps, &t->root, &t->net,
                        &t->inputs, &t->ninputs, &t->use, &t->has_use, e)))
        return rc;
    t->image = st.image_kind == JR_SPEC_OK ? spec->setup->image : "host";
    t->entrypoint_set = st.entrypoint_kind == JR_SPEC_OK;
    t->entrypoint = st.entrypoint;
    t->nentrypoint = st.nentrypoint;
    t->domains = st.domains_kind == JR_SPEC_OK ? st.domains : NULL;
    t->ndomains = st.domains_kind == JR_SPEC_OK ? st.ndomains : 0;
    return JR_OK;
}

void jr_sbexec_task_free(struct sb_task *t)
{
    if (t->has_use)
        jr_image_use_free(&t->use);
    free(t->inputs);
    memset(t, 0, sizeof *t);
}
