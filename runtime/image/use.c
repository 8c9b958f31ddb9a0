/* What a task needs of a stored image: its layer folders (or merged
 * root), its use lock and its config's defaults (entrypoint, cmd, env,
 * workdir, user), and the user's ids from the image's own passwd and
 * group files. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/internal.h"

#define DOC_MAX (4 << 20)

/* The use's strings: one block per list, all freed together. */
struct owned {
    struct jr_image_config cfg;
    char *text;
};

static char *dup_or_null(const char *s)
{
    return s && s[0] ? strdup(s) : NULL;
}

void jr_image_use_free(struct jr_image_use *u)
{
    struct owned *o = u->owned;

    for (int i = 0; i < u->nlayers; i++)
        free(u->layers[i]);
    free(u->layers);
    free(u->rootfs);
    free(u->workdir);
    free(u->user);
    if (o) {
        jr_image_config_free(&o->cfg);
        free(o->text);
        free(o);
    }
    memset(u, 0, sizeof *u);
}

int jr_image_resolve(struct jr_image_store *s, const char *name, struct jr_image_use *u,
                     struct jr_err *e)
{
    struct jr_image_index ix;
    struct jr_image_rec *r;
    struct owned *o = NULL;
    char why[300];
    size_t len;
    int rc, fd;

    memset(u, 0, sizeof *u);
    if ((rc = jr_image_index_read(s, &ix, e)))
        return rc;
    if (!(r = jr_image_index_find(&ix, name))) {
        rc = jr_err_set(e, JR_E_NOT_FOUND, "no image %.200s in the store", name);
        goto done;
    }
    snprintf(u->manifest, sizeof u->manifest, "%s", r->manifest);
    if (jr_image_path(s, u->lock, sizeof u->lock, "use", r->manifest + 7)) {
        rc = jr_err_set(e, JR_E_INVALID, "path too long");
        goto done;
    }
    if ((fd = open(u->lock, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644)) >= 0)
        close(fd);
    if (!(o = calloc(1, sizeof *o))) {
        rc = jr_err_set(e, JR_E_SYSTEM, "out of memory");
        goto done;
    }
    u->owned = o;
    if ((rc = jr_image_blob_read(s, r->config, DOC_MAX, &o->text, &len, e)))
        goto done;
    if (jr_image_config_parse(o->text, len, &o->cfg, why, sizeof why)) {
        rc = jr_err_set(e, JR_E_INVALID, "image %.100s: config: %s", r->name, why);
        goto done;
    }
    u->entrypoint = o->cfg.entrypoint;
    u->cmd = o->cfg.cmd;
    u->env = o->cfg.env;
    u->workdir = dup_or_null(o->cfg.workdir);
    u->user = dup_or_null(o->cfg.user);
    if (jr_image_store_strategy(s, NULL, 0) == JR_IMAGE_ROOT_COPY) {
        char root[PATH_MAX];
        struct stat st;
        if (jr_image_path(s, root, sizeof root, "roots", r->manifest + 7)) {
            rc = jr_err_set(e, JR_E_INVALID, "path too long");
            goto done;
        }
        if (stat(root, &st)) {
            /* Installed while tasks got overlays: made now, once. */
            int lk = jr_image_lock(s, e);
            if (lk < 0) {
                rc = e ? e->code : JR_E_SYSTEM;
                goto done;
            }
            rc = jr_image_make_root(s, r, e);
            jr_image_unlock(lk);
            if (rc)
                goto done;
        }
        if (!(u->rootfs = strdup(root))) {
            rc = jr_err_set(e, JR_E_SYSTEM, "out of memory");
            goto done;
        }
    }
    /* The layers are also what the user lookup reads, in either strategy. */
    if (!(u->layers = calloc((size_t)r->nlayers, sizeof *u->layers))) {
        rc = jr_err_set(e, JR_E_SYSTEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < r->nlayers; i++) {
        char dir[PATH_MAX];
        struct stat st;
        if (jr_image_path(s, dir, sizeof dir, "layers", r->layers[i] + 7) ||
            stat(dir, &st) || !S_ISDIR(st.st_mode)) {
            rc = jr_err_set(e, JR_E_NOT_FOUND, "image %.100s is damaged: layer %s is"
                            " missing (remove it and import it again)", r->name, r->layers[i]);
            goto done;
        }
        if (!(u->layers[u->nlayers] = strdup(dir))) {
            rc = jr_err_set(e, JR_E_SYSTEM, "out of memory");
            goto done;
        }
        u->nlayers++;
    }
done:
    if (rc)
        jr_image_use_free(u);
    jr_image_index_free(&ix);
    return rc;
}

static int bad(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int bad(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return -1;
}

static int all_digits(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

/* The file etc/<file> as the task sees it: from the top-most layer that
 * has it (a whiteout or folder there hides it), read into buf. */
static int read_image_file(const struct jr_image_use *u, const char *file, char *buf, size_t size)
{
    for (int i = u->nlayers - 1; i >= 0; i--) {
        char path[PATH_MAX];
        struct stat st;
        int fd;
        ssize_t n;
        snprintf(path, sizeof path, "%s/etc/%s", u->rootfs ? u->rootfs : u->layers[i], file);
        if (lstat(path, &st))
            continue;
        if (!S_ISREG(st.st_mode) || (fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
            return -1;
        n = read(fd, buf, size - 1);
        close(fd);
        if (n < 0)
            return -1;
        buf[n] = 0;
        return 0;
    }
    return -1;
}

/* Field 3 (the id) and 4 (a passwd line's group) of the line named name. */
static int lookup(const char *text, const char *name, long *id, long *gid)
{
    size_t nl = strlen(name);

    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        const char *f2, *f3, *f4;
        if (strncmp(l, name, nl) || l[nl] != ':')
            continue;
        if (!(f2 = strchr(l + nl + 1, ':')) || !(f3 = f2 + 1))
            return -1;
        *id = strtol(f3, NULL, 10);
        f4 = strchr(f3, ':');
        if (gid)
            *gid = f4 ? strtol(f4 + 1, NULL, 10) : *id;
        return 0;
    }
    return -1;
}

int jr_image_user(const struct jr_image_use *u, const char *user, int *uid, int *gid,
                  char *why, size_t whylen)
{
    char name[128], group[128] = "", *colon, *text = malloc(1 << 20);
    long id = 0, g = 0;
    int rc = 0;

    if (!text)
        return bad(why, whylen, "out of memory");
    snprintf(name, sizeof name, "%s", user);
    if ((colon = strchr(name, ':')) != NULL) {
        snprintf(group, sizeof group, "%s", colon + 1);
        *colon = 0;
    }
    if (!name[0] || all_digits(name)) {
        id = name[0] ? strtol(name, NULL, 10) : 0;
        g = id;
        /* A numeric uid takes its group from passwd when it is there. */
        if (!group[0] && read_image_file(u, "passwd", text, 1 << 20) == 0) {
            for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
                const char *f = strchr(l, ':');
                long lid, lg;
                if (f && (f = strchr(f + 1, ':')) && sscanf(f + 1, "%ld:%ld", &lid, &lg) == 2 &&
                    lid == id) {
                    g = lg;
                    break;
                }
            }
        }
    } else if (read_image_file(u, "passwd", text, 1 << 20) || lookup(text, name, &id, &g)) {
        rc = bad(why, whylen, "the image's user %.100s is not in its /etc/passwd", name);
        goto done;
    }
    if (group[0]) {
        if (all_digits(group))
            g = strtol(group, NULL, 10);
        else if (read_image_file(u, "group", text, 1 << 20) || lookup(text, group, &g, NULL)) {
            rc = bad(why, whylen, "the image's group %.100s is not in its /etc/group", group);
            goto done;
        }
    }
    if (id < 0 || id > 65535 || g < 0 || g > 65535) {
        rc = bad(why, whylen, "the image's user %.100s maps to ids %ld:%ld, outside 0-65535",
                 user, id, g);
        goto done;
    }
    *uid = (int)id;
    *gid = (int)g;
done:
    free(text);
    return rc;
}
