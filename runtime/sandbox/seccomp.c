/* The task's seccomp filter, built with libseccomp in the parent before the
 * clone and exported as raw BPF, so the child only needs one prctl. Default
 * allow; calls a batch task never needs fail with EPERM, host-attack calls
 * kill the process (reported as outcome "seccomp"). */
#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sandbox/internal.h"

/* Denied with EPERM: mounts, namespaces, tracing, kernel objects, keyrings,
 * clocks, io_uring (its operations bypass the filter). */
static const char *const eperm_calls[] = {
    "mount", "umount", "umount2", "pivot_root", "chroot", "fsopen", "fsconfig",
    "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
    "unshare", "setns",
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp",
    "bpf", "perf_event_open", "userfaultfd", "lookup_dcookie",
    "keyctl", "add_key", "request_key",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "stime",
    "syslog", "quotactl", "quotactl_fd", "vhangup", "name_to_handle_at",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "fanotify_init", "uselib", "ustat", "sysfs", "nfsservctl",
};

/* Killing calls: nothing legitimate in a task makes them. */
static const char *const kill_calls[] = {
    "kexec_load", "kexec_file_load", "init_module", "finit_module",
    "delete_module", "reboot", "swapon", "swapoff", "iopl", "ioperm",
    "open_by_handle_at", "acct",
};

static const unsigned long ns_flags[] = {
    CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWIPC,
    CLONE_NEWUTS, CLONE_NEWCGROUP, 0x00000080 /* CLONE_NEWTIME */,
};

static int add_list(scmp_filter_ctx ctx, uint32_t action,
                    const char *const *names, size_t n, struct jr_sb_err *e)
{
    for (size_t i = 0; i < n; i++) {
        int nr = seccomp_syscall_resolve_name(names[i]);
        if (nr == __NR_SCMP_ERROR)
            continue; /* not on this architecture */
        int rc = seccomp_rule_add(ctx, action, nr, 0);
        if (rc < 0 && rc != -EOPNOTSUPP)
            return jr_sb_fail(e, "seccomp", -rc, "rule for %s", names[i]);
    }
    return 0;
}

int jr_sb_seccomp_build(struct sock_fprog *prog, struct jr_sb_err *e)
{
    int rc = -1, fd = -1;
    struct sock_filter *code = NULL;
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    memset(prog, 0, sizeof(*prog));
    if (!ctx)
        return jr_sb_fail(e, "seccomp", ENOMEM, "seccomp_init");
    /* Other architectures (i386 via int 0x80, x32) are killed. */
    if (seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS) < 0 ||
        seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0) < 0) {
        jr_sb_fail(e, "seccomp", EINVAL, "attributes");
        goto done;
    }
    if (add_list(ctx, SCMP_ACT_ERRNO(EPERM), eperm_calls,
                 sizeof(eperm_calls) / sizeof(eperm_calls[0]), e) ||
        add_list(ctx, SCMP_ACT_KILL_PROCESS, kill_calls,
                 sizeof(kill_calls) / sizeof(kill_calls[0]), e))
        goto done;
    /* clone with any namespace flag fails; clone3's flags live in memory the
     * filter cannot read, so it reports ENOSYS and libc falls back to clone. */
    for (size_t i = 0; i < sizeof(ns_flags) / sizeof(ns_flags[0]); i++) {
        int r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                                 SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
        if (r < 0) {
            jr_sb_fail(e, "seccomp", -r, "clone rule");
            goto done;
        }
    }
    int r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    if (r < 0 && r != -EOPNOTSUPP) {
        jr_sb_fail(e, "seccomp", -r, "clone3 rule");
        goto done;
    }
    /* libseccomp 2.5 exports only to an fd: go through a memfd. */
    fd = memfd_create("jobrt-seccomp", MFD_CLOEXEC);
    if (fd < 0) {
        jr_sb_fail(e, "seccomp", errno, "memfd_create");
        goto done;
    }
    if ((r = seccomp_export_bpf(ctx, fd)) < 0) {
        jr_sb_fail(e, "seccomp", -r, "seccomp_export_bpf");
        goto done;
    }
    off_t size = lseek(fd, 0, SEEK_END);
    if (size <= 0 || size % (off_t)sizeof(struct sock_filter) ||
        size / (off_t)sizeof(struct sock_filter) > 65535) {
        jr_sb_fail(e, "seccomp", EINVAL, "filter of %lld bytes", (long long)size);
        goto done;
    }
    code = malloc((size_t)size);
    if (!code || pread(fd, code, (size_t)size, 0) != size) {
        jr_sb_fail(e, "seccomp", code ? errno : ENOMEM, "reading the filter");
        goto done;
    }
    prog->len = (unsigned short)(size / (off_t)sizeof(struct sock_filter));
    prog->filter = code;
    code = NULL;
    rc = 0;
done:
    free(code);
    if (fd >= 0)
        close(fd);
    seccomp_release(ctx);
    return rc;
}
