/* The task's own process, from pid 1's vfork-like clone to its exec: a
 * session of its own, default signals, stdin from /dev/null, rlimits, every
 * privilege dropped (bounding set, ambient, uid, no_new_privs), the
 * workdir, the seccomp filter last, then execve over the sandbox's PATH;
 * and the sandbox's environment. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <linux/securebits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/internal.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

static int drop_privileges(const struct jr_sb_child *c, struct jr_sb_err *e)
{
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    uid_t uid = (uid_t)c->o->uid;
    gid_t gid = (gid_t)c->o->gid;
    for (int cap = 0; cap <= c->cap_last; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) && errno != EINVAL)
            return jr_sb_fail(e, "capabilities", errno, "bounding set");
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    if (c->rootless) {
        /* Only uid 0 is mapped: stay it, but with root's magic switched off. */
        if (prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED |
                  SECBIT_NO_SETUID_FIXUP | SECBIT_NO_SETUID_FIXUP_LOCKED |
                  SECBIT_KEEP_CAPS_LOCKED, 0, 0, 0))
            return jr_sb_fail(e, "capabilities", errno, "securebits");
    } else if (setgroups(0, NULL) || setresgid(gid, gid, gid) || setresuid(uid, uid, uid)) {
        return jr_sb_fail(e, "setuid", errno, "uid %d", (int)uid);
    }
    memset(data, 0, sizeof(data));
    if (syscall(SYS_capset, &hdr, data))
        return jr_sb_fail(e, "capabilities", errno, "capset");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
        return jr_sb_fail(e, "no_new_privs", errno, "prctl");
    return 0;
}

static void set_limit(int res, rlim_t soft, rlim_t hard)
{
    struct rlimit r;
    if (getrlimit(res, &r) == 0) {
        r.rlim_max = r.rlim_max < hard ? r.rlim_max : hard;
        r.rlim_cur = soft < r.rlim_max ? soft : r.rlim_max;
        setrlimit(res, &r);
    }
}

/* execve over the sandbox's PATH (execvpe would search the helper's). */
static int exec_path(const struct jr_sb_child *c, struct jr_sb_err *e)
{
    char *const *argv = c->o->argv;
    const char *name = argv[0], *p = c->path;
    int err = ENOENT, seen_eacces = 0;
    if (!*name)
        return jr_sb_fail(e, "exec", ENOENT, "empty program name");
    if (strchr(name, '/')) {
        execve(name, argv, c->envp);
        return jr_sb_fail(e, "exec", errno, "%s", name);
    }
    while (p && *p) {
        const char *end = strchr(p, ':');
        size_t dl = end ? (size_t)(end - p) : strlen(p);
        char full[4096];
        if (dl > 0 && dl + strlen(name) + 2 <= sizeof(full)) {
            memcpy(full, p, dl);
            full[dl] = '/';
            strcpy(full + dl + 1, name);
            execve(full, argv, c->envp);
            err = errno;
            if (err == EACCES)
                seen_eacces = 1;
            else if (err != ENOENT && err != ENOTDIR)
                break;
        }
        p = end ? end + 1 : NULL;
    }
    return jr_sb_fail(e, "exec", seen_eacces ? EACCES : err, "%s", name);
}

static _Noreturn void run_task(const struct jr_sb_child *c)
{
    struct jr_sb_err e;
    sigset_t all;
    memset(&e, 0, sizeof(e));
    setsid();
    for (int s = 1; s < NSIG; s++)
        signal(s, SIG_DFL);
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null < 0 || dup2(null, 0) < 0)
        jr_sb_child_fail(c, (jr_sb_fail(&e, "stdin", errno, "/dev/null"), &e));
    set_limit(RLIMIT_CORE, 0, 0);
    set_limit(RLIMIT_NOFILE, 1024, 65536);
    if (c->o->nproc)
        set_limit(RLIMIT_NPROC, (rlim_t)c->o->nproc, (rlim_t)c->o->nproc);
    if (drop_privileges(c, &e))
        jr_sb_child_fail(c, &e);
    /* After the uid change (which clears it): die with init. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) || getppid() != 1)
        _exit(125);
    if (chdir(c->o->workdir))
        jr_sb_child_fail(c, (jr_sb_fail(&e, "workdir", errno, "%s", c->o->workdir), &e));
    syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
    if (c->filter && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, c->filter, 0, 0))
        jr_sb_child_fail(c, (jr_sb_fail(&e, "seccomp", errno, "installing the filter"), &e));
    exec_path(c, &e);
    jr_sb_child_fail(c, &e);
}

static int env_has(const struct jr_sandbox_opts *o, const char *kv)
{
    size_t k = strcspn(kv, "=") + 1;
    for (int i = 0; i < o->nenv; i++)
        if (strncmp(o->env[i], kv, k) == 0)
            return 1;
    return 0;
}

void jr_sb_build_env(const struct jr_sandbox_opts *o, const char **envp,
                      const char **path, char (*proxy_kv)[48])
{
    int n = 0, has_path = 0, has_home = 0;
    *path = DEFAULT_PATH;
    for (int i = 0; i < o->nenv; i++) {
        if (strncmp(o->env[i], "PATH=", 5) == 0) {
            has_path = 1;
            *path = o->env[i] + 5;
        }
        has_home |= strncmp(o->env[i], "HOME=", 5) == 0;
        envp[n++] = o->env[i];
    }
    if (!has_path)
        envp[n++] = "PATH=" DEFAULT_PATH;
    if (!has_home)
        envp[n++] = "HOME=/tmp";
    if (o->network == JR_SB_NET_ALLOW) {
        static const char *const names[] = {"HTTP_PROXY", "HTTPS_PROXY", "http_proxy",
                                            "https_proxy"};
        for (int i = 0; i < 4; i++) {
            snprintf(proxy_kv[i], 48, "%s=http://127.0.0.1:%d", names[i], o->proxy_port);
            if (!env_has(o, proxy_kv[i]))
                envp[n++] = proxy_kv[i];
        }
        if (!env_has(o, "NO_PROXY="))
            envp[n++] = "NO_PROXY=localhost,127.0.0.1";
        if (!env_has(o, "no_proxy="))
            envp[n++] = "no_proxy=localhost,127.0.0.1";
    }
    envp[n] = NULL;
}

int jr_sb_task_main(void *c)
{
    run_task(c);
}

