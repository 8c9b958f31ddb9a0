/* The core assembled: the data directory's lock, store, executor, sandbox
 * layer and scheduler opened in order for one data directory, and closed
 * in reverse. */
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox/sandbox.h"

/* The probe's layers minus those JOBRT_SANDBOX_PROBE_HIDE names (a test
 * hook: a machine without a layer, on one that has it). */
static uint32_t visible_layers(uint32_t layers)
{
    const char *hide = getenv("JOBRT_SANDBOX_PROBE_HIDE");

    for (int i = 0; hide && i < JR_SB_NLAYERS; i++) {
        const char *name = jr_sandbox_layer_name(i), *p = strstr(hide, name);
        size_t nl = strlen(name);
        if (p && (p == hide || p[-1] == ',') && (p[nl] == ',' || !p[nl]))
            layers &= ~(1u << i);
    }
    return layers;
}

static void log_layers(struct jr_loop *loop, uint32_t layers)
{
    char have[512] = "", missing[512] = "";

    for (int i = 0; i < JR_SB_NLAYERS; i++) {
        char *buf = layers & (1u << i) ? have : missing;
        size_t off = strlen(buf);
        snprintf(buf + off, sizeof have - off, "%s%s", off ? " " : "", jr_sandbox_layer_name(i));
    }
    jr_log(loop, JR_LOG_INFO, "sandbox: active layers: %s%s%s", have[0] ? have : "none",
           missing[0] ? "; missing: " : "", missing);
}

/* JR_E_INVALID naming every required layer this machine does not allow. */
static int check_required(const char *const *req, uint32_t layers, struct jr_err *e)
{
    char missing[512] = "";
    int n = 0;

    for (int i = 0; req && req[i]; i++) {
        int layer = jr_sandbox_layer_find(req[i]);
        size_t off = strlen(missing);
        if (layer >= 0 && (layers & (1u << layer)))
            continue;
        snprintf(missing + off, sizeof missing - off, "%s%s", n++ ? ", " : "", req[i]);
    }
    if (!n)
        return JR_OK;
    return jr_err_set(e, JR_E_INVALID, "sandbox.require lists %s that this machine"
                      " does not allow: %s (see `jobrt sandbox-check`)",
                      n > 1 ? "layers" : "a layer", missing);
}

/* DATA/daemon.lock, held (flock) for as long as the core is open, with the
 * holder's pid in it: a second daemon on the same store is refused, saying
 * which process has it. The fd is close-on-exec, so no child keeps it. */
static int lock_data_dir(const char *data, int *out, struct jr_err *e)
{
    char path[4096], pid[32] = "";
    int fd, n;

    *out = -1;
    if (snprintf(path, sizeof path, "%s/daemon.lock", data) >= (int)sizeof path)
        return jr_err_set(e, JR_E_INVALID, "data_dir is too long");
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return jr_err_set(e, JR_E_SYSTEM, "cannot open %s: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        n = (int)pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = 0;
        pid[strcspn(pid, "\n")] = 0;
        close(fd);
        if (err == EWOULDBLOCK)
            return jr_err_set(e, JR_E_CONFLICT, "the data directory %s is in use by another"
                              " jobrt (pid %s, holding %s): one store, one daemon", data,
                              pid[0] ? pid : "unknown", path);
        return jr_err_set(e, JR_E_SYSTEM, "cannot lock %s: %s", path, strerror(err));
    }
    n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        /* The lock holds without it; only the message would lack the pid. */
    }
    *out = fd;
    return JR_OK;
}

/* This instance's id on a shared store, kept in DATA/instance so that a
 * restart on the same data directory recovers the same jobs: the host's
 * name and 8 random hex digits, made at the first start. */
static int instance_id(const char *data, char *out, size_t size, struct jr_err *e)
{
    char path[4096], host[64] = "jobrt";
    unsigned char rnd[4];
    FILE *f;
    size_t n = 0;

    snprintf(path, sizeof path, "%s/instance", data);
    if ((f = fopen(path, "r"))) {
        if (fgets(out, (int)size, f))
            n = strcspn(out, "\n");
        fclose(f);
        out[n] = 0;
        if (n)
            return JR_OK;
    }
    if (gethostname(host, sizeof host - 1) != 0 || !host[0])
        snprintf(host, sizeof host, "jobrt");
    host[strcspn(host, ".")] = 0;
    if (getentropy(rnd, sizeof rnd) != 0)
        return jr_err_set(e, JR_E_SYSTEM, "no random bytes for an instance id");
    snprintf(out, size, "%.40s-%02x%02x%02x%02x", host, rnd[0], rnd[1], rnd[2], rnd[3]);
    if (!(f = fopen(path, "w")) || fprintf(f, "%s\n", out) < 0 || fclose(f) != 0)
        return jr_err_set(e, JR_E_SYSTEM, "cannot write %s: %s", path, strerror(errno));
    return JR_OK;
}

/* The sandbox executor: probe, require, sweep, then open. */
static int open_sandbox(const struct jr_core_opts *o, const char *data, int64_t grace_ms,
                        struct jr_image_store *images, struct jr_executor *ex,
                        struct jr_err *e)
{
    struct jr_sandbox_probe probe;
    struct jr_exec_sandbox_opts so;
    char exe[4096], real[PATH_MAX], parent[64];
    size_t exelen = sizeof exe;
    uint32_t h = 2166136261u;
    int rc, n;

    if (uv_exepath(exe, &exelen) != 0)
        return jr_err_set(e, JR_E_SYSTEM, "sandbox: cannot find the jobrt binary's path");
    if (!realpath(data, real))
        snprintf(real, sizeof real, "%s", data);
    for (const char *p = real; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    /* One cgroup parent per data dir: daemons on other data dirs keep theirs. */
    snprintf(parent, sizeof parent, "jobrt/d-%08x", h);
    jr_sandbox_probe(parent, &probe);
    probe.layers = visible_layers(probe.layers);
    log_layers(o->loop, probe.layers);
    if ((rc = check_required(o->sandbox.require, probe.layers, e)))
        return rc;
    n = jr_sandbox_cleanup_stale(parent);
    if (n > 0)
        jr_log(o->loop, JR_LOG_INFO, "sandbox: removed %d cgroups a previous run left", n);
    else if (n < 0)
        jr_log(o->loop, JR_LOG_WARN, "sandbox: cleaning cgroups a previous run left: %s",
               strerror(errno));
    memset(&so, 0, sizeof so);
    so.log = o->loop;
    so.exe = exe;
    so.cgroup_parent = parent;
    so.network = o->sandbox.network;
    so.images = o->sandbox.images;
    so.image_store = images;
    so.pull_hosts = o->images.pull_hosts;
    so.host_paths = o->sandbox.allow_host_paths;
    so.grace_ms = grace_ms * 3 / 4;
    so.orphan_timeout_ms = o->sandbox.orphan_timeout_ms;
    return jr_exec_sandbox_open(o->loop->uv, &so, ex, e);
}

/* The Slurm executor; the scheduler then holds up to max_tasks tasks in
 * Slurm, whatever they ask: the cluster allocates, not this machine. With
 * the sandbox on the nodes, tasks take their images from the image store
 * too: the nodes see data_dir at the same path (their task folders are
 * there), so they see its layers and merged copies. */
static int open_slurm(const struct jr_core_opts *o, const char *data,
                      struct jr_image_store *images, struct jr_executor *ex,
                      struct jr_sched_opts *so, struct jr_err *e)
{
    const struct jr_core_slurm_opts *s = &o->slurm;
    struct jr_exec_slurm_opts xo;
    struct jr_exec_sandbox_opts sb;
    char exe[4096];
    size_t exelen = sizeof exe;

    memset(&xo, 0, sizeof xo);
    if (s->sandbox) {
        /* The helper beside this binary, at the same path on the nodes. */
        if (uv_exepath(exe, &exelen) != 0)
            return jr_err_set(e, JR_E_SYSTEM, "sandbox: cannot find the jobrt binary's path");
        memset(&sb, 0, sizeof sb);
        sb.log = o->loop;
        sb.exe = exe;
        sb.cgroup_parent = "jobrt-slurm";
        sb.network = o->sandbox.network;
        sb.images = o->sandbox.images;
        sb.image_store = images;
        sb.pull_hosts = o->images.pull_hosts;
        sb.host_paths = o->sandbox.allow_host_paths;
        sb.grace_ms = (o->kill_grace_ms > 0 ? o->kill_grace_ms : 10000) * 3 / 4;
        xo.sandbox = &sb;
    }
    xo.log = o->loop;
    xo.data_dir = data;
    xo.partition = s->partition;
    xo.account = s->account;
    xo.sbatch_args = s->sbatch_args;
    xo.bin = s->bin;
    xo.conf = s->conf;
    xo.poll_ms = s->poll_ms;
    xo.grace_ms = o->kill_grace_ms;
    xo.batch_max = s->batch_max;
    xo.batch_width = s->batch_width;
    xo.batch_window_ms = s->batch_window_ms;
    xo.batch_max_cpu = s->batch_max_cpu;
    xo.batch_max_memory = s->batch_max_memory;
    so->node.cpu = 1000LL * 1000 * 1000;
    so->node.memory = 1LL << 60;
    so->node.gpu = 1000 * 1000;
    so->node.max_tasks = s->max_tasks > 0 ? s->max_tasks : 1000;
    jr_log(o->loop, JR_LOG_INFO, "executor: slurm (partition %s, up to %lld tasks in Slurm,"
           " batches of up to %d, %s)", s->partition ? s->partition : "default",
           (long long)so->node.max_tasks, s->batch_max > 1 ? s->batch_max : 1,
           s->sandbox ? "sandboxed on the nodes" : "plain processes on the nodes");
    return jr_exec_slurm_open(o->loop->uv, &xo, ex, e);
}

int jr_core_open(const struct jr_core_opts *o, struct jr_core **out, struct jr_err *e)
{
    const char *data = o->data_dir ? o->data_dir : "./jobrt-data";
    struct jr_core *c = NULL;
    struct jr_sched_opts so;
    struct jr_executor ex;
    char path[4096], instance[80] = "", address[100];
    int rc;

    *out = NULL;
    if (snprintf(path, sizeof path, "%s/jobrt.db", data) >= (int)sizeof path)
        return jr_err_set(e, JR_E_INVALID, "data_dir is too long");
    if (mkdir(data, 0700) != 0 && access(data, W_OK) != 0)
        return jr_err_set(e, JR_E_SYSTEM, "cannot create the data directory");
    if (!(c = calloc(1, sizeof *c)))
        return jr_err_set(e, JR_E_SYSTEM, "out of memory");
    c->lock_fd = -1;
    if ((rc = lock_data_dir(data, &c->lock_fd, e)) ||
        (rc = jr_store_open(o->store.url ? o->store.url : path, &c->store, e)))
        goto done;
    if (o->store.timeout_ms > 0)
        jr_store_set_timeout(c->store, o->store.timeout_ms);
    jr_store_attach(c->store, o->loop->uv);
    jr_store_set_metrics(c->store, o->loop->metrics);
    memset(&so, 0, sizeof so);
    so.metrics = o->loop->metrics;
    so.data_dir = data;
    so.node = o->node;
    so.kill_grace_ms = o->kill_grace_ms;
    so.keep_tasks = o->keep_tasks;
    if (jr_store_shared(c->store)) {
        if ((rc = instance_id(data, instance, sizeof instance, e)))
            goto done;
        snprintf(address, sizeof address, "%s", o->store.address ? o->store.address : "");
        so.instance = instance;
        so.address = address;
        so.heartbeat_ms = o->store.heartbeat_ms;
        so.failover_ms = o->store.failover_ms;
        jr_log(o->loop, JR_LOG_INFO, "store: PostgreSQL, shared; this instance is %s",
               instance);
    }
    /* The image store goes with the sandbox, here or on Slurm's nodes. */
    if (o->slurm.enabled ? o->slurm.sandbox : o->sandbox.enabled) {
        struct jr_image_opts io = {o->images.max_image, o->images.max_total, o->images.root};
        char why[200];
        if ((rc = jr_image_store_open(data, &io, &c->images, e)))
            goto done;
        jr_log(o->loop, JR_LOG_INFO, "images: task roots from %s (%s%s)",
               jr_image_store_strategy(c->images, why, sizeof why) == JR_IMAGE_ROOT_OVERLAY
               ? "overlayfs over the layers" : "a merged copy per image", why,
               o->slurm.enabled ? "; as probed here: images.root: copy where Slurm's nodes"
               " cannot stack them" : "");
    }
    if (o->slurm.enabled)
        rc = open_slurm(o, data, c->images, &ex, &so, e);
    else if (o->sandbox.enabled)
        rc = open_sandbox(o, data, o->kill_grace_ms > 0 ? o->kill_grace_ms : 10000, c->images,
                          &ex, e);
    else
        rc = jr_exec_spawn_open(o->loop->uv, &ex, e);
    if (!rc)
        rc = jr_sched_open(o->loop->uv, c->store, ex, &so, &c->sched, e);
done:
    if (rc) {
        jr_core_close(c);
        return rc;
    }
    *out = c;
    return JR_OK;
}

void jr_core_close(struct jr_core *c)
{
    if (!c)
        return;
    if (c->sched)
        jr_sched_close(c->sched);
    if (c->store)
        jr_store_close(c->store);
    jr_image_store_close(c->images);
    if (c->lock_fd >= 0)
        close(c->lock_fd);
    free(c);
}
