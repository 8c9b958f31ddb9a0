/* Can a task's user namespace stack layer folders with overlayfs here?
 * Tried the way the sandbox does it: two small layers made in the store's
 * temp folder (a whiteout in one, an opaque folder), cloned as detached
 * mounts by this process, attached inside a new user and mount namespace
 * and mounted as overlayfs with userxattr; the view must hide what the
 * whiteout and the opaque folder hide. */
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "image/internal.h"

static int put(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ssize_t n;

    if (fd < 0)
        return -1;
    n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

static int make_layers(const char *d, int64_t base, char *why, size_t len)
{
    char p[PATH_MAX + 64];
    const char *dirs[] = {"l1", "l1/d", "l2", "l2/d"};

    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", d, dirs[i]);
        if (mkdir(p, 0755))
            return snprintf(why, len, "mkdir: %s", strerror(errno)), -1;
    }
    snprintf(p, sizeof p, "%s/l1/gone", d);
    if (put(p, "x"))
        return snprintf(why, len, "write: %s", strerror(errno)), -1;
    snprintf(p, sizeof p, "%s/l1/d/hidden", d);
    if (put(p, "x"))
        return snprintf(why, len, "write: %s", strerror(errno)), -1;
    snprintf(p, sizeof p, "%s/l2/d/kept", d);
    if (put(p, "x"))
        return snprintf(why, len, "write: %s", strerror(errno)), -1;
    snprintf(p, sizeof p, "%s/l2/gone", d);
    if (mknod(p, S_IFCHR | 0, makedev(0, 0)))
        return snprintf(why, len, "a whiteout node: %s", strerror(errno)), -1;
    snprintf(p, sizeof p, "%s/l2/d", d);
    if (setxattr(p, "user.overlay.opaque", "y", 1, 0))
        return snprintf(why, len, "user extended attributes: %s", strerror(errno)), -1;
    if (base >= 0) {
        const char *all[] = {"l1", "l1/d", "l1/gone", "l1/d/hidden", "l2", "l2/d",
                             "l2/d/kept", "l2/gone"};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
            snprintf(p, sizeof p, "%s/%s", d, all[i]);
            if (lchown(p, (uid_t)base, (gid_t)base)) {
                /* the probe then says what fails */
            }
        }
    }
    return 0;
}

static int clone_tree(const char *path)
{
    struct mount_attr a;
    int fd = (int)syscall(SYS_open_tree, AT_FDCWD, path,
                          OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);

    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof a);
    a.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
    a.propagation = MS_PRIVATE;
    if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof a)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The child: exit 0 when the overlay shows what it should. */
static _Noreturn void child(int sync_fd, int l1, int l2)
{
    char b;
    struct stat st;

    if (read(sync_fd, &b, 1) != 1 || setresgid(0, 0, 0) || setresuid(0, 0, 0))
        _exit(10);
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
        mount("jobrt-probe", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=256k") ||
        mkdir("/tmp/1", 0755) || mkdir("/tmp/2", 0755) || mkdir("/tmp/u", 0755) ||
        mkdir("/tmp/w", 0755) || mkdir("/tmp/r", 0755))
        _exit(11);
    if (syscall(SYS_move_mount, l1, "", AT_FDCWD, "/tmp/1", MOVE_MOUNT_F_EMPTY_PATH) ||
        syscall(SYS_move_mount, l2, "", AT_FDCWD, "/tmp/2", MOVE_MOUNT_F_EMPTY_PATH))
        _exit(12);
    if (mount("overlay", "/tmp/r", "overlay", 0,
              "lowerdir=/tmp/2:/tmp/1,upperdir=/tmp/u,workdir=/tmp/w,userxattr"))
        _exit(13);
    if (lstat("/tmp/r/gone", &st) == 0 || lstat("/tmp/r/d/hidden", &st) == 0)
        _exit(14);
    if (lstat("/tmp/r/d/kept", &st) != 0)
        _exit(15);
    _exit(0);
}

static int write_map(pid_t pid, const char *file, const char *text)
{
    char path[64];

    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
    return put(path, text);
}

int jr_image_probe_overlay(const char *dir, int64_t base, char *why, size_t len)
{
    char d[PATH_MAX], p[PATH_MAX + 64], map[64];
    int sync_p[2] = {-1, -1}, l1 = -1, l2 = -1, ok = 0, st;
    pid_t pid = -1;

    snprintf(d, sizeof d, "%s/probe-%d", dir, (int)getpid());
    jr_image_rmtree(d, NULL);
    if (mkdir(d, 0700)) {
        snprintf(why, len, "mkdir %s: %s", d, strerror(errno));
        return 0;
    }
    if (make_layers(d, base, why, len))
        goto done;
    snprintf(p, sizeof p, "%s/l1", d);
    l1 = clone_tree(p);
    snprintf(p, sizeof p, "%s/l2", d);
    l2 = clone_tree(p);
    if (l1 < 0 || l2 < 0) {
        snprintf(why, len, "detached mounts: %s", strerror(errno));
        goto done;
    }
    if (pipe2(sync_p, O_CLOEXEC)) {
        snprintf(why, len, "pipe: %s", strerror(errno));
        goto done;
    }
    pid = (pid_t)syscall(SYS_clone, CLONE_NEWUSER | CLONE_NEWNS | SIGCHLD, NULL, NULL, NULL,
                         NULL);
    if (pid == 0) {
        close(sync_p[1]);
        child(sync_p[0], l1, l2);
    }
    if (pid < 0) {
        snprintf(why, len, "a user namespace: %s", strerror(errno));
        goto done;
    }
    close(sync_p[0]);
    sync_p[0] = -1;
    if (base >= 0)
        snprintf(map, sizeof map, "0 %lld 65536\n", (long long)base);
    else
        snprintf(map, sizeof map, "0 %d 1\n", (int)geteuid());
    if ((base < 0 && write_map(pid, "setgroups", "deny")) || write_map(pid, "uid_map", map)) {
        snprintf(why, len, "uid map: %s", strerror(errno));
        kill(pid, SIGKILL);
    } else {
        if (base < 0)
            snprintf(map, sizeof map, "0 %d 1\n", (int)getegid());
        if (write_map(pid, "gid_map", map) || write(sync_p[1], "g", 1) != 1)
            kill(pid, SIGKILL);
    }
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        ok = 1;
    } else if (!why[0]) {
        static const char *const stage[] = {"setup", "tmpfs", "attaching layers",
                                            "mounting overlayfs with userxattr",
                                            "whiteouts not honoured",
                                            "upper content missing"};
        int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        snprintf(why, len, "%s", code >= 10 && code <= 15 ? stage[code - 10] : "killed");
    }
done:
    if (sync_p[0] >= 0)
        close(sync_p[0]);
    if (sync_p[1] >= 0)
        close(sync_p[1]);
    if (l1 >= 0)
        close(l1);
    if (l2 >= 0)
        close(l2);
    jr_image_rmtree(d, NULL);
    return ok;
}
