/* Unpacking one layer's tar safely: every path is walked component by
 * component from the layer's folder with O_NOFOLLOW, so nothing lands
 * outside it and no write goes through a symbolic link; ".." is refused,
 * device nodes refused, setuid/setgid bits and extended attributes
 * dropped, owners mapped into the sandbox's id range. Whiteouts become
 * overlayfs whiteouts and opaque folders in a layer folder, or deletions
 * on a merged root. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "image/internal.h"

#define MAX_ENTRIES 2000000
#define MAX_DEPTH 128
#define OPAQUE_XATTR "user.overlay.opaque"

static int fail(struct jr_unpack *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct jr_unpack *u, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(u->err, sizeof u->err, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- paths made in this layer (merge mode: whiteouts spare them) ---- */
struct pathset {
    char **slot;
    size_t cap, n;
};

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static int set_has(const struct pathset *ps, const char *p)
{
    if (!ps->cap)
        return 0;
    for (size_t i = hash(p) & (ps->cap - 1);; i = (i + 1) & (ps->cap - 1)) {
        if (!ps->slot[i])
            return 0;
        if (strcmp(ps->slot[i], p) == 0)
            return 1;
    }
}

static int set_add(struct pathset *ps, const char *p)
{
    if (set_has(ps, p))
        return 0;
    if ((ps->n + 1) * 2 > ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 1024;
        char **ns = calloc(cap, sizeof *ns);
        if (!ns)
            return -1;
        for (size_t i = 0; i < ps->cap; i++) {
            if (!ps->slot[i])
                continue;
            size_t j = hash(ps->slot[i]) & (cap - 1);
            while (ns[j])
                j = (j + 1) & (cap - 1);
            ns[j] = ps->slot[i];
        }
        free(ps->slot);
        ps->slot = ns;
        ps->cap = cap;
    }
    size_t i = hash(p) & (ps->cap - 1);
    while (ps->slot[i])
        i = (i + 1) & (ps->cap - 1);
    if (!(ps->slot[i] = strdup(p)))
        return -1;
    ps->n++;
    return 0;
}

static void set_free(struct pathset *ps)
{
    for (size_t i = 0; i < ps->cap; i++)
        free(ps->slot[i]);
    free(ps->slot);
    memset(ps, 0, sizeof *ps);
}

/* ---- paths ---- */

/* Normalises an entry's path in place into "a/b/c" (no leading '/', no
 * "." parts, no empty parts). -1 for a ".." part. */
static int clean_path(char *p)
{
    char *out = p, *s = p;

    while (*s) {
        char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 2 && s[0] == '.' && s[1] == '.')
            return -1;
        if (n > 0 && !(n == 1 && s[0] == '.')) {
            if (out != p)
                *out++ = '/';
            memmove(out, s, n);
            out += n;
        }
        s += n;
        if (*s == '/')
            s++;
    }
    *out = 0;
    return 0;
}

static int is_whiteout_node(int dirfd, const char *name)
{
    struct stat st;

    return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISCHR(st.st_mode) &&
           st.st_rdev == makedev(0, 0);
}

/* rm -rf of name inside dirfd, never following a link. */
static int remove_at(int dfd, const char *name, int depth)
{
    struct stat st;
    int fd, rc = 0;
    DIR *d;
    struct dirent *de;

    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW))
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode))
        return unlinkat(dfd, name, 0);
    if (depth > MAX_DEPTH * 2) {
        errno = ELOOP;
        return -1;
    }
    fchmodat(dfd, name, 0700, 0);
    if ((fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        return -1;
    if (!(d = fdopendir(fd))) {
        close(fd);
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (remove_at(dirfd(d), de->d_name, depth + 1))
            rc = -1;
    }
    closedir(d);
    if (rc)
        return -1;
    return unlinkat(dfd, name, AT_REMOVEDIR);
}

/* Marks the folder fd opaque: lower layers' content under it is hidden. */
static int set_opaque(struct jr_unpack *u, int fd, const char *path)
{
    if (fsetxattr(fd, OPAQUE_XATTR, "y", 1, 0) == 0)
        return 0;
    if (errno == ENOTSUP)
        return fail(u, "%s: this file system keeps no user extended attributes, which an"
                    " opaque folder needs (set images.root: copy)", path);
    return fail(u, "%s: marking it opaque: %s", path, strerror(errno));
}

static void own(struct jr_unpack *u, int dirfd, const char *name, int64_t uid, int64_t gid)
{
    if (!u->chown)
        return;
    if (uid < 0 || uid > 65535)
        uid = 65534;
    if (gid < 0 || gid > 65535)
        gid = 65534;
    if (fchownat(dirfd, name, (uid_t)(u->id_base + uid), (gid_t)(u->id_base + gid),
                 AT_SYMLINK_NOFOLLOW | (name[0] ? 0 : AT_EMPTY_PATH))) {
        /* The owner is cosmetic inside the sandbox; go on. */
    }
}

/* Opens the folder at comps[0..n) below root, making missing ones (0755,
 * owned by the image's root) when create. A symbolic link or a file on
 * the way is refused. In a layer, a whiteout on the way becomes an opaque
 * folder. Returns an fd or -1 with u->err. */
static int open_dir(struct jr_unpack *u, int root, char **comps, int n, int create,
                    const char *path)
{
    int fd = dup(root);

    if (fd < 0)
        return fail(u, "dup: %s", strerror(errno));
    for (int i = 0; i < n; i++) {
        int made = 0, next;
        for (int tries = 0;; tries++) {
            next = openat(fd, comps[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (next >= 0 || !create || tries > 1)
                break;
            if (errno == ENOENT) {
                if (mkdirat(fd, comps[i], 0755) && errno != EEXIST)
                    break;
                own(u, fd, comps[i], 0, 0);
                made = 1;
            } else if (errno == ENOTDIR && u->mode == JR_UNPACK_LAYER &&
                       is_whiteout_node(fd, comps[i])) {
                if (unlinkat(fd, comps[i], 0))
                    break;
                made = 2;
            } else {
                break;
            }
        }
        if (next < 0) {
            int err = errno;
            close(fd);
            if (err == ELOOP || err == ENOTDIR)
                return fail(u, "%s: goes through %s, which is a symbolic link or not a folder"
                            " (refused)", path, comps[i]);
            return fail(u, "%s: opening %s: %s", path, comps[i], strerror(err));
        }
        close(fd);
        fd = next;
        if (made == 2 && set_opaque(u, fd, path)) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

/* Splits clean path p (modified) into comps; returns how many, -1 if too deep. */
static int split(char *p, char **comps)
{
    int n = 0;

    if (!*p)
        return 0;
    for (char *s = p;; ) {
        if (n >= MAX_DEPTH)
            return -1;
        comps[n++] = s;
        char *e = strchr(s, '/');
        if (!e)
            break;
        *e = 0;
        s = e + 1;
    }
    return n;
}

struct dirmode {
    char *path;
    unsigned mode;
    int64_t mtime;
};

struct ctx {
    struct jr_unpack *u;
    int root;
    struct pathset made;     /* merge mode: paths this layer made */
    struct dirmode *dirs;
    size_t ndirs, capdirs;
};

/* Clears what is at name for an entry of type dir/other: a whiteout node,
 * a file, or a folder an entry that is not a folder replaces. In a layer
 * a folder replacing a whiteout must become opaque: *opaque = 1. */
static int make_room(struct ctx *c, int pfd, const char *name, int is_dir, int *opaque,
                     const char *path)
{
    struct stat st;

    *opaque = 0;
    if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW)) {
        if (errno == ENOENT)
            return 0;
        return fail(c->u, "%s: %s", path, strerror(errno));
    }
    if (is_dir && S_ISDIR(st.st_mode))
        return 0;
    if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0) && c->u->mode == JR_UNPACK_LAYER)
        *opaque = is_dir;
    if (remove_at(pfd, name, 0))
        return fail(c->u, "%s: replacing what was there: %s", path, strerror(errno));
    return 0;
}

static int write_file(struct ctx *c, struct jr_tar *t, int pfd, const char *name,
                      const struct jr_tar_entry *en, const char *path)
{
    struct jr_unpack *u = c->u;
    char buf[65536];
    int fd = openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    ssize_t r;

    if (fd < 0)
        return fail(u, "%s: %s", path, strerror(errno));
    while ((r = jr_tar_data(t, buf, sizeof buf)) > 0) {
        const char *p = buf;
        u->written += r;
        if (u->budget >= 0 && u->written > u->budget) {
            close(fd);
            u->full = 1;
            return fail(u, "the image is larger than the %lld bytes allowed",
                        (long long)u->budget);
        }
        while (r > 0) {
            ssize_t w = write(fd, p, (size_t)r);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                int err = errno;
                close(fd);
                if (err == ENOSPC)
                    u->full = 1;
                return fail(u, "%s: writing: %s", path, strerror(err));
            }
            p += w;
            r -= w;
        }
    }
    if (r < 0) {
        close(fd);
        return fail(u, "%s", t->err);
    }
    fchmod(fd, en->mode & 0777);
    struct timespec ts[2] = {{en->mtime, 0}, {en->mtime, 0}};
    futimens(fd, ts);
    close(fd);
    return 0;
}

static int note_dir(struct ctx *c, const char *path, unsigned mode, int64_t mtime)
{
    if (c->ndirs == c->capdirs) {
        size_t cap = c->capdirs ? c->capdirs * 2 : 64;
        struct dirmode *d = realloc(c->dirs, cap * sizeof *d);
        if (!d)
            return fail(c->u, "out of memory");
        c->dirs = d;
        c->capdirs = cap;
    }
    if (!(c->dirs[c->ndirs].path = strdup(path)))
        return fail(c->u, "out of memory");
    c->dirs[c->ndirs].mode = mode;
    c->dirs[c->ndirs].mtime = mtime;
    c->ndirs++;
    return 0;
}

/* A whiteout ".wh.NAME" in folder comps[0..n): hides NAME of the layers
 * below. */
static int whiteout(struct ctx *c, char **comps, int n, const char *name, const char *path,
                    const char *dir_path)
{
    struct jr_unpack *u = c->u;
    struct stat st;
    int pfd = open_dir(u, c->root, comps, n, 1, path), rc = 0;
    char full[JR_TAR_PATH_MAX + 8];

    if (pfd < 0)
        return -1;
    snprintf(full, sizeof full, "%s%s%s", dir_path, dir_path[0] ? "/" : "", name);
    if (u->mode == JR_UNPACK_MERGE) {
        /* What this same layer made stays (the spec's rule). */
        if (!set_has(&c->made, full) && remove_at(pfd, name, 0))
            rc = fail(u, "%s: removing %s: %s", path, full, strerror(errno));
    } else if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISDIR(st.st_mode)) {
            int fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            rc = fd < 0 ? fail(u, "%s: %s", path, strerror(errno)) : set_opaque(u, fd, path);
            if (fd >= 0)
                close(fd);
        }
    } else if (mknodat(pfd, name, S_IFCHR | 0, makedev(0, 0))) {
        rc = fail(u, "%s: making the whiteout: %s", path, strerror(errno));
    } else {
        own(u, pfd, name, 0, 0);
    }
    close(pfd);
    return rc;
}

/* ".wh..wh..opq" in folder comps[0..n): the layers below have nothing there. */
static int opaque(struct ctx *c, char **comps, int n, const char *path, const char *dir_path)
{
    struct jr_unpack *u = c->u;
    int fd = open_dir(u, c->root, comps, n, 1, path), rc = 0;

    if (fd < 0)
        return -1;
    if (u->mode == JR_UNPACK_LAYER) {
        rc = set_opaque(u, fd, path);
    } else {
        DIR *d = fdopendir(fd);
        struct dirent *de;
        char full[JR_TAR_PATH_MAX + 260];
        if (!d) {
            close(fd);
            return fail(u, "%s: %s", path, strerror(errno));
        }
        while ((de = readdir(d)) != NULL) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            snprintf(full, sizeof full, "%s%s%s", dir_path, dir_path[0] ? "/" : "", de->d_name);
            if (!set_has(&c->made, full) && remove_at(dirfd(d), de->d_name, 0))
                rc = fail(u, "%s: removing %s: %s", path, full, strerror(errno));
        }
        closedir(d);
        return rc;
    }
    close(fd);
    return rc;
}

static int hardlink(struct ctx *c, int pfd, const char *name, const struct jr_tar_entry *en,
                    const char *path)
{
    struct jr_unpack *u = c->u;
    char target[JR_TAR_PATH_MAX], *comps[MAX_DEPTH];
    struct stat st;
    int n, tfd, rc = 0;

    snprintf(target, sizeof target, "%s", en->link);
    if (clean_path(target) || !target[0])
        return fail(u, "%s: a hard link to %s, outside the layer (refused)", path, en->link);
    if (u->mode == JR_UNPACK_MERGE && !set_has(&c->made, target))
        return fail(u, "%s: a hard link to %s, which this layer does not hold (refused)",
                    path, en->link);
    if ((n = split(target, comps)) < 1)
        return fail(u, "%s: the hard link's target is too deep", path);
    if ((tfd = open_dir(u, c->root, comps, n - 1, 0, path)) < 0)
        return -1;
    if (fstatat(tfd, comps[n - 1], &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode))
        rc = fail(u, "%s: a hard link to %s, which is not a regular file of this layer"
                  " (refused)", path, en->link);
    else if (linkat(tfd, comps[n - 1], pfd, name, 0))
        rc = fail(u, "%s: linking: %s", path, strerror(errno));
    close(tfd);
    return rc;
}

static int one_entry(struct ctx *c, struct jr_tar *t, struct jr_tar_entry *en)
{
    struct jr_unpack *u = c->u;
    char clean[JR_TAR_PATH_MAX], split_buf[JR_TAR_PATH_MAX], dir_path[JR_TAR_PATH_MAX];
    char *comps[MAX_DEPTH], *base;
    int n, pfd, rc = 0, op = 0;

    snprintf(clean, sizeof clean, "%s", en->path);
    if (clean_path(clean))
        return fail(u, "%s: a path with \"..\" (refused)", en->path);
    if (en->type == JR_TAR_CHAR || en->type == JR_TAR_BLOCK)
        return fail(u, "%s: a device node (refused)", en->path);
    if (!clean[0]) {
        if (en->type == JR_TAR_DIR)
            return 0; /* the layer's own root */
        return fail(u, "%s: not a folder at the root (refused)", en->path);
    }
    snprintf(split_buf, sizeof split_buf, "%s", clean);
    if ((n = split(split_buf, comps)) < 0)
        return fail(u, "%s: more than %d folders deep", en->path, MAX_DEPTH);
    base = comps[n - 1];
    snprintf(dir_path, sizeof dir_path, "%s", clean);
    {
        char *slash = strrchr(dir_path, '/');
        if (slash)
            *slash = 0;
        else
            dir_path[0] = 0;
    }
    if (strncmp(base, ".wh.", 4) == 0) {
        if (strcmp(base, ".wh..wh..opq") == 0)
            return opaque(c, comps, n - 1, en->path, dir_path);
        if (strncmp(base, ".wh..wh.", 8) == 0)
            return 0; /* aufs bookkeeping: nothing of the image */
        if (!base[4] || !strcmp(base + 4, ".") || !strcmp(base + 4, ".."))
            return fail(u, "%s: a whiteout of nothing", en->path);
        return whiteout(c, comps, n - 1, base + 4, en->path, dir_path);
    }
    if ((pfd = open_dir(u, c->root, comps, n - 1, 1, en->path)) < 0)
        return -1;
    if (make_room(c, pfd, base, en->type == JR_TAR_DIR, &op, en->path)) {
        close(pfd);
        return -1;
    }
    switch (en->type) {
    case JR_TAR_DIR:
        if (mkdirat(pfd, base, 0755) && errno != EEXIST) {
            rc = fail(u, "%s: %s", en->path, strerror(errno));
            break;
        }
        if (op) {
            int fd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            rc = fd < 0 ? fail(u, "%s: %s", en->path, strerror(errno))
                        : set_opaque(u, fd, en->path);
            if (fd >= 0)
                close(fd);
        }
        if (!rc)
            rc = note_dir(c, clean, en->mode & 01777, en->mtime);
        break;
    case JR_TAR_REG:
        rc = write_file(c, t, pfd, base, en, en->path);
        break;
    case JR_TAR_SYMLINK:
        if (!en->link[0])
            rc = fail(u, "%s: a symbolic link to nothing", en->path);
        else if (symlinkat(en->link, pfd, base))
            rc = fail(u, "%s: %s", en->path, strerror(errno));
        else {
            struct timespec ts[2] = {{en->mtime, 0}, {en->mtime, 0}};
            utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW);
        }
        break;
    case JR_TAR_HARDLINK:
        rc = hardlink(c, pfd, base, en, en->path);
        break;
    case JR_TAR_FIFO:
        if (mkfifoat(pfd, base, 0600) || fchmodat(pfd, base, en->mode & 0777, 0))
            rc = fail(u, "%s: %s", en->path, strerror(errno));
        break;
    }
    if (!rc && en->type != JR_TAR_HARDLINK)
        own(u, pfd, base, en->uid, en->gid);
    close(pfd);
    if (!rc && u->mode == JR_UNPACK_MERGE && set_add(&c->made, clean))
        rc = fail(u, "out of memory");
    return rc;
}

/* Folders get their modes and times last: they must stay writable (and
 * their times would change) while entries go into them. */
static int finish_dirs(struct ctx *c)
{
    for (size_t i = c->ndirs; i-- > 0;) {
        char buf[JR_TAR_PATH_MAX], *comps[MAX_DEPTH];
        int n = split(strcpy(buf, c->dirs[i].path), comps);
        int fd = n > 0 ? open_dir(c->u, c->root, comps, n, 0, c->dirs[i].path) : -1;
        if (fd < 0)
            continue; /* removed again by a later entry */
        struct timespec ts[2] = {{c->dirs[i].mtime, 0}, {c->dirs[i].mtime, 0}};
        fchmod(fd, c->dirs[i].mode);
        futimens(fd, ts);
        close(fd);
    }
    return 0;
}

int jr_unpack_tar(struct jr_unpack *u, struct jr_tar *t, int dirfd)
{
    struct ctx c;
    struct jr_tar_entry *en = malloc(sizeof *en);
    int rc = -1, r;

    memset(&c, 0, sizeof c);
    c.u = u;
    c.root = dirfd;
    u->err[0] = 0;
    if (!en)
        return fail(u, "out of memory");
    while ((r = jr_tar_next(t, en)) == 1) {
        if (++u->entries > MAX_ENTRIES) {
            fail(u, "more than %d entries in one layer", MAX_ENTRIES);
            goto done;
        }
        if (one_entry(&c, t, en))
            goto done;
    }
    if (r < 0) {
        fail(u, "%s", t->err);
        goto done;
    }
    rc = finish_dirs(&c);
done:
    for (size_t i = 0; i < c.ndirs; i++)
        free(c.dirs[i].path);
    free(c.dirs);
    set_free(&c.made);
    free(en);
    return rc;
}

/* ---- whole trees ---- */

int jr_image_rmtree(const char *path, int64_t *bytes)
{
    int64_t n = bytes ? jr_image_du(path) : 0;
    char parent[PATH_MAX], *slash;
    int pfd, rc;

    snprintf(parent, sizeof parent, "%s", path);
    if (!(slash = strrchr(parent, '/')) || slash == parent)
        return -1;
    *slash = 0;
    if ((pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return -1;
    rc = remove_at(pfd, slash + 1, 0);
    close(pfd);
    if (rc == 0 && bytes && n > 0)
        *bytes += n;
    return rc;
}

static int64_t du_at(int dfd, const char *name, int depth)
{
    struct stat st;
    int64_t total = 0;
    DIR *d;
    struct dirent *de;
    int fd;

    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW))
        return 0;
    if (!S_ISDIR(st.st_mode))
        return S_ISREG(st.st_mode) ? st.st_size : 0;
    if (depth > MAX_DEPTH * 2)
        return 0;
    if ((fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        return 0;
    if (!(d = fdopendir(fd))) {
        close(fd);
        return 0;
    }
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            total += du_at(dirfd(d), de->d_name, depth + 1);
    closedir(d);
    return total;
}

int64_t jr_image_du(const char *path)
{
    return du_at(AT_FDCWD, path, 0);
}
