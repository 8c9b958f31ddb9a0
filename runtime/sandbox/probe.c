/* What this machine allows the sandbox to do, found by trying each layer in
 * a short-lived child: the daemon calls jr_sandbox_probe() at start-up to
 * enforce `sandbox.require`, and `jobrt sandbox-check` prints it as a table. */
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <linux/sched.h>
#include <sched.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/internal.h"

static struct jr_sandbox_probe_item *item(struct jr_sandbox_probe *p, const char *name,
                                          int ok, const char *fmt, ...)
{
    va_list ap;
    if (p->n >= (int)(sizeof(p->items) / sizeof(p->items[0])))
        return NULL;
    struct jr_sandbox_probe_item *it = &p->items[p->n++];
    it->name = name;
    it->ok = ok;
    va_start(ap, fmt);
    vsnprintf(it->detail, sizeof(it->detail), fmt, ap);
    va_end(ap);
    int layer = jr_sandbox_layer_find(name);
    if (ok && layer >= 0)
        p->layers |= 1u << layer;
    return it;
}

/* Runs what in a child (after unshare(USER | flags) if flags or user);
 * returns 0 or the errno the child reported. */
enum { T_UNSHARE, T_PIVOT, T_SECCOMP };

static int child_try(int test, int flags)
{
    pid_t pid = fork();
    int st;
    if (pid < 0)
        return errno;
    if (pid == 0) {
        int err = 0;
        if (unshare(CLONE_NEWUSER | flags))
            _exit(errno & 0xff);
        if (test == T_PIVOT) {
            if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
                mount("probe", "/tmp", "tmpfs", 0, NULL) || chdir("/tmp") ||
                syscall(SYS_pivot_root, ".", ".") || umount2(".", MNT_DETACH))
                err = errno;
        }
        _exit(err & 0xff);
    }
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return errno;
    return WIFEXITED(st) ? WEXITSTATUS(st) : EFAULT;
}

static int seccomp_works(char *why, size_t len)
{
    struct sock_fprog prog;
    struct jr_sb_err e;
    char avail[256] = "";
    jr_sb_read_file("/proc/sys/kernel/seccomp/actions_avail", avail, sizeof(avail));
    if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0) {
        snprintf(why, len, "kernel without seccomp (%s)", strerror(errno));
        return 0;
    }
    if (!strstr(avail, "errno") || !strstr(avail, "kill_process")) {
        snprintf(why, len, "actions: %.90s", avail);
        return 0;
    }
    if (jr_sb_seccomp_build(&prog, &e)) {
        snprintf(why, len, "libseccomp: %.50s (%.40s)", e.detail, strerror(e.err));
        return 0;
    }
    /* Install it for real in a child and check that unshare is refused. */
    pid_t pid = fork();
    int st = 0;
    if (pid == 0) {
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
            prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0))
            _exit(2);
        _exit(unshare(CLONE_NEWUTS) == -1 && errno == EPERM ? 0 : 3);
    }
    free(prog.filter);
    if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
        snprintf(why, len, "filter did not install or did not deny");
        return 0;
    }
    snprintf(why, len, "libseccomp %u.%u.%u, %u-instruction filter",
             seccomp_version()->major, seccomp_version()->minor,
             seccomp_version()->micro, (unsigned)prog.len);
    return 1;
}

static void probe_cgroups(struct jr_sandbox_probe *p, const char *parent)
{
    static const char *const role_name[] = {"memory", "pids", "cpu", "cpuacct", "cgroup2"};
    static const char *const layer_of[] = {"memory_limit", "pids_limit", "cpu_limit",
                                           "cpu_accounting", "cgroup_kill"};
    static char text[65536];
    struct jr_sandbox_cgmounts m;
    char ctls[256] = "", path[400], dir[320];
    int any = 0;
    if (jr_sb_read_file("/proc/self/mountinfo", text, sizeof(text)) < 0)
        text[0] = '\0';
    jr_sandbox_cg_parse_mountinfo(text, &m);
    if (m.path[JR_CG_V2][0]) {
        snprintf(path, sizeof(path), "%s/cgroup.controllers", m.path[JR_CG_V2]);
        jr_sb_read_file(path, ctls, sizeof(ctls));
        ctls[strcspn(ctls, "\n")] = '\0';
    }
    for (int r = 0; r < JR_CG_NROLES; r++) {
        const char *mount = m.path[r];
        const char *version = "v1";
        int v2 = r == JR_CG_V2;
        if (r < JR_CG_V2 && m.path[JR_CG_V2][0] && ctls[0]) {
            char word[32];
            snprintf(word, sizeof(word), " %s ", role_name[r == JR_CG_CPUACCT ? JR_CG_CPU : r]);
            char padded[300];
            snprintf(padded, sizeof(padded), " %s ", ctls);
            if (strstr(padded, word)) {
                mount = m.path[JR_CG_V2];
                version = "v2";
                v2 = 1;
            }
        }
        if (v2 && r == JR_CG_V2)
            version = "v2";
        if (!mount[0]) {
            item(p, layer_of[r], 0, "no %s hierarchy mounted", role_name[r]);
            continue;
        }
        jr_sandbox_cg_path(dir, sizeof(dir), mount, parent, NULL);
        int ok = (mkdir(dir, 0755) == 0 || errno == EEXIST) && access(dir, W_OK) == 0;
        if (ok && r == JR_CG_V2) {
            snprintf(path, sizeof(path), "%s/cgroup.kill", dir);
            ok = access(path, W_OK) == 0;
            item(p, "cgroup_kill", ok, "%s %s (%s)", version,
                 ok ? "cgroup.kill in" : "no cgroup.kill in", dir);
            continue;
        }
        any |= ok;
        item(p, layer_of[r], ok, "%s %s under %s", version, role_name[r], dir);
    }
    item(p, "cgroup", any, "v2 controllers: %s", ctls[0] ? ctls : "(none)");
}

int jr_sandbox_probe(const char *parent, struct jr_sandbox_probe *p)
{
    static const struct { const char *name; int flag; } ns[] = {
        {"mountns", CLONE_NEWNS}, {"pidns", CLONE_NEWPID}, {"netns", CLONE_NEWNET},
        {"ipcns", CLONE_NEWIPC}, {"utsns", CLONE_NEWUTS}, {"cgroupns", CLONE_NEWCGROUP},
    };
    char why[112];
    int err;
    memset(p, 0, sizeof(*p));
    if (!parent)
        parent = "jobrt";
    err = child_try(T_UNSHARE, 0);
    item(p, "userns", !err, "%s", err ? strerror(err) : geteuid() ? "as a user" : "as root");
    for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
        err = child_try(T_UNSHARE, ns[i].flag);
        item(p, ns[i].name, !err, "%s", err ? strerror(err) : "inside the user namespace");
    }
    err = child_try(T_PIVOT, CLONE_NEWNS);
    item(p, "pivot_root", !err, "%s", err ? strerror(err) : "onto a tmpfs root");
    /* The mount plan needs the new mount API (Linux 5.12+). */
    err = syscall(SYS_mount_setattr, -1, "", AT_EMPTY_PATH, NULL, 0) < 0 && errno == ENOSYS;
    int ot = syscall(SYS_open_tree, AT_FDCWD, "/", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    if (ot >= 0)
        close(ot);
    item(p, "mount_api", !err && ot >= 0, "open_tree clone %s, mount_setattr %s",
         ot >= 0 ? "works" : strerror(errno), err ? "missing" : "present");
    item(p, "no_new_privs", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) >= 0, "prctl");
    item(p, "caps", prctl(PR_CAPBSET_READ, 0, 0, 0, 0) >= 0, "bounding set and capset");
    int sc = seccomp_works(why, sizeof(why));
    item(p, "seccomp", sc, "%s", why);
    item(p, "rlimits", 1, "core 0, nofile 1024/65536");
    int pidfd = syscall(SYS_pidfd_open, getpid(), 0);
    item(p, "pidfd", pidfd >= 0, "%s", pidfd >= 0 ? "pidfd_open, waitid(P_PIDFD)" : strerror(errno));
    if (pidfd >= 0)
        close(pidfd);
    probe_cgroups(p, parent);
    return 0;
}

int jr_sandbox_probe_require(const struct jr_sandbox_probe *p,
                             const char *const *names, const char **missing)
{
    for (; names && *names; names++) {
        int layer = jr_sandbox_layer_find(*names);
        if (layer < 0 || !(p->layers & (1u << layer))) {
            if (missing)
                *missing = *names;
            return 0;
        }
    }
    return 1;
}

int jr_sandbox_check_main(int argc, char **argv)
{
    struct jr_sandbox_probe p;
    const char *parent = "jobrt";
    int clean = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--cgroup-parent") == 0 && i + 1 < argc) {
            parent = argv[++i];
        } else if (strcmp(argv[i], "--clean-stale") == 0) {
            clean = 1;
        } else {
            printf("usage: jobrt sandbox-check [--cgroup-parent PATH] [--clean-stale]\n"
                   "Prints which sandbox layers this machine allows; exits 0.\n"
                   "--clean-stale first kills and removes every task cgroup left\n"
                   "under PATH (default jobrt), as the daemon does at start-up.\n");
            return strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    if (!jr_sandbox_cg_valid_parent(parent)) {
        fprintf(stderr, "jobrt sandbox-check: bad --cgroup-parent\n");
        return 2;
    }
    if (clean) {
        int n = jr_sandbox_cleanup_stale(parent);
        if (n < 0)
            printf("clean-stale: failed: %s\n", strerror(errno));
        else
            printf("clean-stale: removed %d cgroup(s) under %s\n", n, parent);
    }
    jr_sandbox_probe(parent, &p);
    printf("%-16s %-4s %s\n", "layer", "ok", "detail");
    for (int i = 0; i < p.n; i++)
        printf("%-16s %-4s %s\n", p.items[i].name, p.items[i].ok ? "yes" : "no",
               p.items[i].detail);
    printf("mode: %s%s%s\n", p.layers & (1u << JR_SB_USERNS) ? "namespaces" : "no user namespaces",
           p.layers & (1u << JR_SB_SECCOMP) ? " + seccomp" : "",
           p.layers & (1u << JR_SB_CGROUP) ? " + cgroup limits" : " (no cgroup limits)");
    return 0;
}
