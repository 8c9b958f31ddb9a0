/* One task's cgroups: leaves under <hierarchy>/<parent>/<name> for memory,
 * pids, cpu and cpu accounting (cgroup v2 where it has the controller, v1
 * otherwise) plus a cgroup2 leaf for cgroup.kill; limits, stats, kill,
 * removal, the start-up sweep of leaves a crashed daemon left behind, and
 * the sandbox server's own cgroup2 leaf. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sandbox/internal.h"

ssize_t jr_sb_read_file(const char *path, char *buf, size_t len)
{
    size_t pos = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    while (pos + 1 < len) {
        ssize_t n = read(fd, buf + pos, len - 1 - pos);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        pos += (size_t)n;
    }
    close(fd);
    buf[pos] = '\0';
    return (ssize_t)pos;
}

int jr_sb_write_file(const char *path, const char *s)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, s, strlen(s));
    int saved = errno;
    close(fd);
    errno = saved;
    return n == (ssize_t)strlen(s) ? 0 : -1;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The value after "key " in a flat-keyed file, or -1. */
static int64_t keyed(const char *dir, const char *file, const char *key)
{
    char path[400], buf[4096];
    size_t kl = strlen(key);
    if (!dir[0] || snprintf(path, sizeof(path), "%s/%s", dir, file) >= (int)sizeof(path) ||
        jr_sb_read_file(path, buf, sizeof(buf)) < 0)
        return -1;
    for (char *p = buf; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, key, kl) == 0 && p[kl] == ' ')
            return strtoll(p + kl + 1, NULL, 10);
    return -1;
}

static int64_t number(const char *dir, const char *file)
{
    char path[400], buf[64];
    if (!dir[0] || snprintf(path, sizeof(path), "%s/%s", dir, file) >= (int)sizeof(path) ||
        jr_sb_read_file(path, buf, sizeof(buf)) <= 0)
        return -1;
    return strtoll(buf, NULL, 10);
}

static int write_in(const char *dir, const char *file, const char *value)
{
    char path[400];
    if (snprintf(path, sizeof(path), "%s/%s", dir, file) >= (int)sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return jr_sb_write_file(path, value);
}

static int has_word(const char *text, const char *word)
{
    size_t wl = strlen(word);
    for (const char *p = text; (p = strstr(p, word)) != NULL; p += wl)
        if ((p == text || p[-1] == ' ') && (p[wl] == ' ' || p[wl] == '\n' || !p[wl]))
            return 1;
    return 0;
}

int jr_sb_cg_load_mounts(struct jr_sandbox_cgmounts *m)
{
    size_t len = 1 << 20;
    char *text = malloc(len);
    if (!text || jr_sb_read_file("/proc/self/mountinfo", text, len) < 0) {
        free(text);
        return -1;
    }
    jr_sandbox_cg_parse_mountinfo(text, m);
    free(text);
    return 0;
}

/* mkdir -p mount/parent, enabling v2 controllers on the way when asked. */
static int make_parent(const char *mount, const char *parent, const char *enable)
{
    char path[320];
    if (jr_sandbox_cg_path(path, sizeof(path), mount, parent, NULL)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (enable)
        write_in(mount, "cgroup.subtree_control", enable);
    for (char *p = path + strlen(mount) + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(path, 0755) && errno != EEXIST)
            return -1;
        if (enable)
            write_in(path, "cgroup.subtree_control", enable);
        *p = c;
        if (!c)
            return 0;
    }
}

static int role_is_new_dir(const struct jr_sb_cg *cg, int r)
{
    for (int i = 0; i < r; i++)
        if (cg->dir[i][0] && strcmp(cg->dir[i], cg->dir[r]) == 0)
            return 0;
    return 1;
}

static int limits(struct jr_sb_cg *cg, const struct jr_sandbox_opts *o,
                  struct jr_sb_err *e)
{
    char v[64];
    if (o->memory) {
        const char *d = cg->dir[JR_CG_MEMORY];
        snprintf(v, sizeof(v), "%lld", (long long)o->memory);
        if (cg->v2_role[JR_CG_MEMORY]) {
            if (write_in(d, "memory.max", v))
                return jr_sb_fail(e, "cgroup_memory", errno, "%s/memory.max", d);
            write_in(d, "memory.swap.max", "0");
            write_in(d, "memory.oom.group", "1");
        } else {
            if (write_in(d, "memory.limit_in_bytes", v))
                return jr_sb_fail(e, "cgroup_memory", errno, "%s/memory.limit_in_bytes", d);
            write_in(d, "memory.memsw.limit_in_bytes", v); /* only with swap accounting */
        }
        cg->layers |= 1u << JR_SB_MEMORY_LIMIT;
    }
    if (o->pids) {
        const char *d = cg->dir[JR_CG_PIDS];
        snprintf(v, sizeof(v), "%lld", (long long)o->pids);
        if (write_in(d, "pids.max", v))
            return jr_sb_fail(e, "cgroup_pids", errno, "%s/pids.max", d);
        cg->layers |= 1u << JR_SB_PIDS_LIMIT;
    }
    if (o->cpu) {
        const char *d = cg->dir[JR_CG_CPU];
        if (cg->v2_role[JR_CG_CPU]) {
            snprintf(v, sizeof(v), "%lld 100000", (long long)o->cpu * 100);
            if (write_in(d, "cpu.max", v))
                return jr_sb_fail(e, "cgroup_cpu", errno, "%s/cpu.max", d);
        } else {
            snprintf(v, sizeof(v), "%lld", (long long)o->cpu * 100);
            if (write_in(d, "cpu.cfs_period_us", "100000") ||
                write_in(d, "cpu.cfs_quota_us", v))
                return jr_sb_fail(e, "cgroup_cpu", errno, "%s/cpu.cfs_quota_us", d);
        }
        cg->layers |= 1u << JR_SB_CPU_LIMIT;
    }
    return 0;
}

/* mkdir of a leaf; an empty leftover of an earlier run goes, a busy one is
 * another task's and is left alone. 0 or -1 with e. */
static int make_leaf(const char *dir, struct jr_sb_err *e)
{
    if (mkdir(dir, 0755) == 0)
        return 0;
    int err = errno;
    if (err == EEXIST && rmdir(dir) == 0 && mkdir(dir, 0755) == 0)
        return 0;
    return jr_sb_fail(e, "cgroup", err, "%s %s", err == EEXIST ? "in use:" : "mkdir", dir);
}

int jr_sb_cg_prepare(struct jr_sb_cg *cg, const char *parent, const char *name,
                     const struct jr_sb_host *host, struct jr_sb_err *e)
{
    memset(cg, 0, sizeof(*cg));
    cg->mounts = host->mounts;
    const char *v2 = cg->mounts.path[JR_CG_V2];
    if (!v2[0])
        return 0;
    if (jr_sandbox_cg_path(cg->dir[JR_CG_V2], sizeof(cg->dir[JR_CG_V2]), v2, parent, name)) {
        cg->dir[JR_CG_V2][0] = '\0';
        return jr_sb_fail(e, "cgroup", ENAMETOOLONG, "%s", name);
    }
    cg->v2_role[JR_CG_V2] = 1;
    /* Not writable: the task goes without it (as jr_sb_cg_setup would). */
    if (make_parent(v2, parent, has_word(host->v2_controllers, "memory") ||
                    has_word(host->v2_controllers, "pids") ||
                    has_word(host->v2_controllers, "cpu") ? "+memory +pids +cpu" : NULL)) {
        cg->dir[JR_CG_V2][0] = '\0';
        return 0;
    }
    if (make_leaf(cg->dir[JR_CG_V2], e)) {
        cg->dir[JR_CG_V2][0] = '\0';
        return -1;
    }
    return 0;
}

int jr_sb_cg_setup(struct jr_sb_cg *cg, const struct jr_sandbox_opts *o,
                   const char *name, const struct jr_sb_host *host, struct jr_sb_err *e)
{
    static const char *const ctl[] = {"memory", "pids", "cpu", "cpu", NULL};
    const int64_t want[] = {o->memory, o->pids, o->cpu, 0, 0};
    const char *ctls = host->v2_controllers;
    int rc = -1;
    /* The cgroup2 leaf jr_sb_cg_prepare made stays (its pid 1 is in it). */
    char made[sizeof(cg->dir[0])];
    snprintf(made, sizeof(made), "%s", cg->mounts.path[JR_CG_V2][0] ? cg->dir[JR_CG_V2] : "");
    memset(cg, 0, sizeof(*cg));
    cg->mounts = host->mounts;
    const char *v2 = cg->mounts.path[JR_CG_V2];
    for (int r = 0; r < JR_CG_NROLES; r++) {
        const char *mount = cg->mounts.path[r];
        const char *enable = NULL;
        if (ctl[r] && v2[0] && has_word(ctls, ctl[r])) {
            mount = v2;
            cg->v2_role[r] = 1;
            enable = "+memory +pids +cpu";
        }
        if (r == JR_CG_V2)
            cg->v2_role[r] = 1;
        if (r == JR_CG_CPUACCT && (v2[0] || cg->v2_role[JR_CG_CPU]))
            continue; /* the cgroup2 leaf's cpu.stat counts cpu time */
        /* --lazy-cgroups: without a limit, a v1 memory or pids leaf is only a
         * cost: joining a
         * v1 hierarchy is a migration, which waits for an RCU grace period
         * (~10-20 ms here). The cgroup2 leaf (entered by CLONE_INTO_CGROUP)
         * still kills and counts cpu time; peak memory comes from rusage. */
        if (o->lazy_cgroups && (r == JR_CG_MEMORY || r == JR_CG_PIDS) && !want[r] &&
            !cg->v2_role[r] && v2[0])
            continue;
        if (!mount[0] || (r == JR_CG_CPU && !o->cpu)) {
            if (want[r]) {
                jr_sb_fail(e, "cgroup", ENOTSUP,
                           "no %s controller for the requested limit", ctl[r]);
                goto done;
            }
            continue;
        }
        if (mount == v2) {
            /* cgroup2's is the leaf made before the clone, whatever its
             * name (its pid 1 is in it), or none: it was not writable. */
            if (!made[0] && want[r]) {
                jr_sb_fail(e, "cgroup", EACCES, "%s/%s", v2, o->cgroup_parent);
                goto done;
            }
            snprintf(cg->dir[r], sizeof(cg->dir[r]), "%s", made);
            continue;
        }
        if (jr_sandbox_cg_path(cg->dir[r], sizeof(cg->dir[r]), mount,
                               o->cgroup_parent, name)) {
            jr_sb_fail(e, "cgroup", ENAMETOOLONG, "%s", name);
            cg->dir[r][0] = '\0';
            goto done;
        }
        if (!role_is_new_dir(cg, r))
            continue;
        if (make_parent(mount, o->cgroup_parent, enable)) {
            int err = errno;
            if (want[r]) {
                jr_sb_fail(e, "cgroup", err, "%s/%s", mount, o->cgroup_parent);
                goto done;
            }
            cg->dir[r][0] = '\0'; /* not writable: go without it */
            continue;
        }
        if (make_leaf(cg->dir[r], e)) {
            cg->dir[r][0] = '\0';
            goto done;
        }
    }
    if (limits(cg, o, e))
        goto done;
    for (int r = 0; r < JR_CG_NROLES; r++)
        if (cg->dir[r][0])
            cg->layers |= 1u << JR_SB_CGROUP;
    if (cg->dir[JR_CG_V2][0] && access(cg->dir[JR_CG_V2], F_OK) == 0) {
        char path[400];
        snprintf(path, sizeof(path), "%s/cgroup.kill", cg->dir[JR_CG_V2]);
        if (access(path, W_OK) == 0)
            cg->layers |= 1u << JR_SB_CGROUP_KILL;
    }
    rc = 0;
done:
    if (rc)
        jr_sb_cg_destroy(cg);
    return rc;
}

int jr_sb_cg_v2_fd(const struct jr_sb_cg *cg)
{
    if (!cg->dir[JR_CG_V2][0])
        return -1;
    return open(cg->dir[JR_CG_V2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

int jr_sb_cg_join(const struct jr_sb_cg *cg, pid_t pid, int skip_v2,
                  struct jr_sb_err *e)
{
    char v[32];
    snprintf(v, sizeof(v), "%d", (int)pid);
    for (int r = 0; r < JR_CG_NROLES; r++) {
        if (!cg->dir[r][0] || !role_is_new_dir(cg, r) || (skip_v2 && cg->v2_role[r]))
            continue;
        if (write_in(cg->dir[r], "cgroup.procs", v))
            return jr_sb_fail(e, "cgroup_join", errno, "%s", cg->dir[r]);
    }
    return 0;
}

void jr_sb_cg_stats(const struct jr_sb_cg *cg, struct jr_sb_cg_stats *s)
{
    int64_t v;
    s->cpu_ms = s->max_rss = -1;
    s->oom_kills = s->pids_max = 0;
    if ((v = keyed(cg->dir[JR_CG_V2], "cpu.stat", "usage_usec")) >= 0)
        s->cpu_ms = v / 1000;
    else if ((v = number(cg->dir[JR_CG_CPUACCT], "cpuacct.usage")) >= 0)
        s->cpu_ms = v / 1000000;
    const char *mem = cg->dir[JR_CG_MEMORY];
    if (cg->v2_role[JR_CG_MEMORY]) {
        s->max_rss = number(mem, "memory.peak");
        v = keyed(mem, "memory.events", "oom_kill");
    } else {
        s->max_rss = number(mem, "memory.max_usage_in_bytes");
        v = keyed(mem, "memory.oom_control", "oom_kill");
    }
    s->oom_kills = v > 0 ? v : 0;
    v = keyed(cg->dir[JR_CG_PIDS], "pids.events", "max");
    s->pids_max = v > 0 ? v : 0;
}

/* SIGKILLs the pids in dir/cgroup.procs; returns how many were listed. */
static int kill_listed(const char *dir)
{
    char path[400], buf[16384];
    int n = 0;
    snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
    if (jr_sb_read_file(path, buf, sizeof(buf)) <= 0)
        return 0;
    for (char *p = buf; *p;) {
        char *end;
        long pid = strtol(p, &end, 10);
        if (end == p)
            break;
        if (pid > 1) {
            kill((pid_t)pid, SIGKILL);
            n++;
        }
        p = end;
        while (*p == '\n')
            p++;
    }
    return n;
}

static void kill_dir(const char *dir, int is_v2)
{
    if (is_v2 && write_in(dir, "cgroup.kill", "1") == 0)
        return;
    kill_listed(dir);
}

void jr_sb_cg_kill(const struct jr_sb_cg *cg)
{
    for (int r = 0; r < JR_CG_NROLES; r++)
        if (cg->dir[r][0] && role_is_new_dir(cg, r))
            kill_dir(cg->dir[r], cg->v2_role[r]);
}

/* Kills what is in dir, waits up to ~2 s for it to empty, removes it. */
static int remove_dir(const char *dir, int is_v2)
{
    for (int i = 0; i < 400; i++) {
        if (rmdir(dir) == 0 || errno == ENOENT)
            return 0;
        if (errno != EBUSY)
            return -1;
        if (i % 20 == 0)
            kill_dir(dir, is_v2);
        sleep_ms(5);
    }
    return -1;
}

void jr_sb_cg_destroy(struct jr_sb_cg *cg)
{
    for (int r = JR_CG_NROLES - 1; r >= 0; r--)
        if (cg->dir[r][0] && role_is_new_dir(cg, r))
            remove_dir(cg->dir[r], cg->v2_role[r]);
    for (int r = 0; r < JR_CG_NROLES; r++)
        cg->dir[r][0] = '\0';
}

/* Does a sandbox's pid 1 (comm "jobrt-init", child.c) live in leaf? */
static int holds_init(const char *leaf)
{
    char path[700], procs[8192], comm[32];

    snprintf(path, sizeof(path), "%s/cgroup.procs", leaf);
    if (jr_sb_read_file(path, procs, sizeof(procs)) < 0)
        return 0;
    for (char *p = procs; *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p)) {
        long pid = strtol(p, NULL, 10);
        snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
        if (pid > 0 && jr_sb_read_file(path, comm, sizeof(comm)) > 0 &&
            strcmp(comm, "jobrt-init\n") == 0)
            return 1;
    }
    return 0;
}

int jr_sandbox_cleanup_stale(const char *parent)
{
    struct jr_sandbox_cgmounts m;
    int removed = 0, failed = 0, saved = 0;
    if (!parent)
        parent = "jobrt";
    if (!jr_sandbox_cg_valid_parent(parent)) {
        errno = EINVAL;
        return -1;
    }
    if (jr_sb_cg_load_mounts(&m))
        return -1;
    for (int r = 0; r < JR_CG_NROLES; r++) {
        char dir[320], leaf[600];
        int seen = 0;
        for (int i = 0; i < r; i++)
            seen |= strcmp(m.path[i], m.path[r]) == 0;
        if (!m.path[r][0] || seen ||
            jr_sandbox_cg_path(dir, sizeof(dir), m.path[r], parent, NULL))
            continue;
        DIR *d = opendir(dir);
        if (!d)
            continue;
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (de->d_type != DT_DIR || !jr_sandbox_cg_valid_name(de->d_name))
                continue;
            snprintf(leaf, sizeof(leaf), "%s/%s", dir, de->d_name);
            /* A leaf whose sandbox's pid 1 lives belongs to a helper that
             * is still running (pid 1 dies with it): the task outlived a
             * daemon and will be reattached, and its helper removes the
             * leaf. Anything else left in a task's leaf is stale. */
            if (rmdir(leaf) == 0) {
                removed++;
            } else if (errno == ENOENT || strcmp(de->d_name, JR_SB_SHIM_CGROUP) == 0 ||
                       holds_init(leaf)) {
                continue; /* live helpers (and the server) are in shims */
            } else if (remove_dir(leaf, r == JR_CG_V2) == 0) {
                removed++;
            } else if (!failed++) {
                saved = errno;
            }
        }
        closedir(d);
    }
    if (failed) {
        errno = saved;
        return -1;
    }
    return removed;
}

int jr_sb_cg_place_self(const char *parent, const char *name)
{
    struct jr_sandbox_cgmounts m;
    char dir[320], pid[24];

    if (jr_sb_cg_load_mounts(&m))
        return -1;
    if (!m.path[JR_CG_V2][0]) {
        errno = ENOENT;
        return -1;
    }
    if (make_parent(m.path[JR_CG_V2], parent, NULL) ||
        jr_sandbox_cg_path(dir, sizeof(dir), m.path[JR_CG_V2], parent, name))
        return -1;
    if (mkdir(dir, 0755) && errno != EEXIST)
        return -1;
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    return write_in(dir, "cgroup.procs", pid);
}
