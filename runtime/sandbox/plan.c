/* The mount plan, built by the parent as host root before the clone: every
 * image entry, bind and device node becomes a detached open_tree() clone,
 * already read-only/nosuid/nodev and private, that the child only attaches. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/internal.h"

const char *const jr_sb_dev_names[JR_SB_NDEV] = {
    "null", "zero", "full", "random", "urandom", "tty",
};

/* What of the host root makes the `host` image (merged-usr links included). */
static const char *const host_entries[] = {
    "usr", "etc", "bin", "sbin", "lib", "lib32", "lib64", "libx32",
};

/* Image entries the sandbox makes itself. */
static const char *const own_entries[] = {"proc", "dev", "sys", "tmp"};

static int in_list(const char *name, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(name, list[i]) == 0)
            return 1;
    return 0;
}

/* A detached recursive clone of path with attr set, or -1 with errno. */
static int clone_tree(const char *path, uint64_t attr)
{
    struct mount_attr a;
    int fd = (int)syscall(SYS_open_tree, AT_FDCWD, path,
                          OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof(a));
    a.attr_set = attr;
    a.propagation = MS_PRIVATE;
    if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof(a))) {
        int err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

static struct jr_sb_mount *add(struct jr_sb_plan *p, int kind, const char *target,
                               struct jr_sb_err *e)
{
    if (p->n >= JR_SB_MAX_MOUNTS) {
        jr_sb_fail(e, "mount_plan", E2BIG, "more than %d mounts", JR_SB_MAX_MOUNTS);
        return NULL;
    }
    while (*target == '/')
        target++;
    struct jr_sb_mount *m = &p->m[p->n];
    memset(m, 0, sizeof(*m));
    m->kind = kind;
    m->fd = -1;
    if (snprintf(m->target, sizeof(m->target), "%s", target) >= (int)sizeof(m->target)) {
        jr_sb_fail(e, "mount_plan", ENAMETOOLONG, "%s", target);
        return NULL;
    }
    p->n++;
    return m;
}

static int add_bind(struct jr_sb_plan *p, const char *src, const char *target,
                    int rw, const char *stage, struct jr_sb_err *e)
{
    struct stat st;
    uint64_t attr = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (rw ? 0 : MOUNT_ATTR_RDONLY);
    if (stat(src, &st))
        return jr_sb_fail(e, stage, errno, "%s", src);
    struct jr_sb_mount *m = add(p, JR_SB_M_BIND, target, e);
    if (!m)
        return -1;
    m->is_dir = S_ISDIR(st.st_mode);
    if ((m->fd = clone_tree(src, attr)) < 0)
        return jr_sb_fail(e, stage, errno, "open_tree %s", src);
    return 0;
}

/* Each top-level entry of root (only host_entries when host) becomes a
 * read-only bind or a copy of its symlink. */
static int add_image(struct jr_sb_plan *p, const char *root, int host,
                     struct jr_sb_err *e)
{
    int rc = -1;
    DIR *d = opendir(root);
    struct dirent *de;
    if (!d)
        return jr_sb_fail(e, "image", errno, "%s", root);
    while ((de = readdir(d)) != NULL) {
        char path[512];
        struct stat st;
        if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
            continue;
        if (host ? !in_list(de->d_name, host_entries, sizeof(host_entries) / sizeof(host_entries[0]))
                 : in_list(de->d_name, own_entries, sizeof(own_entries) / sizeof(own_entries[0])))
            continue;
        snprintf(path, sizeof(path), "%s/%s", strcmp(root, "/") ? root : "", de->d_name);
        if (lstat(path, &st))
            continue;
        if (S_ISLNK(st.st_mode)) {
            struct jr_sb_mount *m = add(p, JR_SB_M_SYMLINK, de->d_name, e);
            if (!m)
                goto done;
            ssize_t n = readlink(path, m->link, sizeof(m->link) - 1);
            if (n < 0) {
                jr_sb_fail(e, "image", errno, "readlink %s", path);
                goto done;
            }
            m->link[n] = '\0';
        } else if (S_ISDIR(st.st_mode) || S_ISREG(st.st_mode)) {
            if (add_bind(p, path, de->d_name, 0, "image", e))
                goto done;
        }
    }
    rc = 0;
done:
    closedir(d);
    return rc;
}

int jr_sb_plan_build(struct jr_sb_plan *p, const struct jr_sandbox_opts *o,
                     struct jr_sb_err *e)
{
    int host = strcmp(o->image, "host") == 0;
    memset(p, 0, sizeof(*p));
    for (int i = 0; i < JR_SB_NDEV; i++)
        p->dev_fd[i] = -1;
    /* Layers: the child stacks them with overlayfs as the root. */
    for (int i = 0; i < o->nlayers; i++) {
        p->layer_fd[i] = clone_tree(o->layers[i], MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
                                    MOUNT_ATTR_NODEV);
        if (p->layer_fd[i] < 0) {
            jr_sb_fail(e, "image", errno, "open_tree %s", o->layers[i]);
            goto fail;
        }
        p->nlayers = i + 1;
    }
    if (!o->nlayers && add_image(p, host ? "/" : o->image, host, e))
        goto fail;
    for (int i = 0; i < o->nbinds; i++)
        if (add_bind(p, o->binds[i].src, o->binds[i].dst, o->binds[i].rw,
                     o->binds[i].rw ? "bind_rw" : "bind_ro", e))
            goto fail;
    for (int i = 0; i < JR_SB_NDEV; i++) {
        char path[32];
        snprintf(path, sizeof(path), "/dev/%s", jr_sb_dev_names[i]);
        p->dev_fd[i] = clone_tree(path, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC);
        if (p->dev_fd[i] < 0 && errno != ENOENT) {
            jr_sb_fail(e, "dev", errno, "open_tree %s", path);
            goto fail;
        }
    }
    return 0;
fail:
    jr_sb_plan_close(p);
    return -1;
}

void jr_sb_plan_close(struct jr_sb_plan *p)
{
    for (int i = 0; i < p->n; i++)
        if (p->m[i].fd >= 0)
            close(p->m[i].fd);
    for (int i = 0; i < JR_SB_NDEV; i++)
        if (p->dev_fd[i] >= 0)
            close(p->dev_fd[i]);
    for (int i = 0; i < p->nlayers; i++)
        close(p->layer_fd[i]);
    p->nlayers = 0;
    p->n = 0;
    for (int i = 0; i < JR_SB_NDEV; i++)
        p->dev_fd[i] = -1;
}
