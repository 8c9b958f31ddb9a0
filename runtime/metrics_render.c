/* The exposition: every metric in the Prometheus text format 0.0.4, with
 * the gauges sampled as it is written (jobs by surface and state from the
 * store, tasks and node capacity from the scheduler, the process from
 * /proc). One function writes it all, in a fixed order. */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core.h"
#include "metrics.h"

struct out {
    struct jr_buf *b;
    int failed;
};

static void put(struct out *o, const char *s)
{
    if (jr_buf_addstr(o->b, s))
        o->failed = 1;
}

static void putf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct out *o, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp || jr_buf_add(o->b, tmp, (size_t)n))
        o->failed = 1;
}

/* A label value: backslash, double quote and line feed escaped. */
static void put_value(struct out *o, const char *v)
{
    for (; v && *v; v++) {
        char c[3] = { *v, 0, 0 };
        if (*v == '\\' || *v == '"')
            c[0] = '\\', c[1] = *v;
        else if (*v == '\n')
            c[0] = '\\', c[1] = 'n';
        put(o, c);
    }
}

static void family(struct out *o, const char *name, const char *type, const char *help)
{
    putf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Up to four labels; a NULL name ends the list. */
struct labels {
    const char *k[4], *v[4];
};

static void put_labels(struct out *o, const struct labels *l, const char *le)
{
    int n = 0;

    for (int i = 0; l && i < 4 && l->k[i]; i++) {
        putf(o, "%s%s=\"", n++ ? "," : "{", l->k[i]);
        put_value(o, l->v[i]);
        put(o, "\"");
    }
    if (le)
        putf(o, "%sle=\"%s\"", n++ ? "," : "{", le);
    if (n)
        put(o, "}");
}

/* A number as Prometheus reads it: integers without a fraction. */
static void number(struct out *o, double v)
{
    if (v == (double)(int64_t)v && v < 9e15 && v > -9e15)
        putf(o, " %lld\n", (long long)v);
    else
        putf(o, " %.15g\n", v);
}

static void sample_l(struct out *o, const char *name, const struct labels *l, double v)
{
    put(o, name);
    put_labels(o, l, NULL);
    number(o, v);
}

static void sample(struct out *o, const char *name, const char *k1, const char *v1,
                   const char *k2, const char *v2, double v)
{
    struct labels l = { { k1, k1 ? k2 : NULL, NULL, NULL }, { v1, v2, NULL, NULL } };

    sample_l(o, name, &l, v);
}

/* The _bucket, _sum and _count lines of one histogram. */
static void hist(struct out *o, const char *name, const struct jr_hist *h, const double *b,
                 int nb, const struct labels *l)
{
    char le[32];
    uint64_t cum = 0;

    for (int i = 0; i <= nb; i++) {
        cum += h->counts[i];
        if (i < nb)
            snprintf(le, sizeof le, "%g", b[i]);
        else
            snprintf(le, sizeof le, "+Inf");
        put(o, name);
        put(o, "_bucket");
        put_labels(o, l, le);
        putf(o, " %llu\n", (unsigned long long)cum);
    }
    put(o, name);
    put(o, "_sum");
    put_labels(o, l, NULL);
    number(o, h->sum);
    put(o, name);
    put(o, "_count");
    put_labels(o, l, NULL);
    putf(o, " %llu\n", (unsigned long long)h->count);
}

/* ---- counters and histograms ---- */

static const struct {
    const char *name, *help, *l1, *l2;
} counter_info[JR_M_NCOUNTERS] = {
    [JR_M_SUBMISSIONS] = { "jobrt_job_submissions_total",
                           "Jobs stored by a submission, by surface.", "surface", NULL },
    [JR_M_TRANSITIONS] = { "jobrt_job_transitions_total",
                           "Job state changes, by the state entered.", "state", NULL },
    [JR_M_REJECTIONS] = { "jobrt_job_rejections_total",
                          "Submissions refused (invalid), jobs rejected by an approval policy"
                          " (policy) or by an administrator (approver), by surface.",
                          "surface", "reason" },
    [JR_M_TASK_OUTCOMES] = { "jobrt_task_outcomes_total",
                             "Task attempts ended, by outcome and the task's resulting state"
                             " (retried: another attempt follows).", "outcome", "result" },
    [JR_M_LUA_KILLS] = { "jobrt_lua_kills_total",
                         "Bounded Lua calls (handlers, policies, plugins) stopped at their"
                         " time or memory limit.", "reason", NULL },
    [JR_M_COMMIT_FAILURES] = { "jobrt_store_commit_failures_total",
                               "Group commits that failed and were rolled back.", NULL, NULL },
};

static const struct {
    const char *name, *help;
} hist_info[JR_H_NHISTS] = {
    [JR_H_QUEUE_WAIT] = { "jobrt_task_queue_wait_seconds",
                          "Time a task attempt waited ready (dependencies done) before it"
                          " started." },
    [JR_H_RUN_TIME] = { "jobrt_task_run_seconds", "Wall-clock time of task attempts." },
    [JR_H_TASK_START] = { "jobrt_sandbox_start_seconds",
                          "Time the executor took to start a task attempt's sandbox helper"
                          " (until it waits at its gate)." },
    [JR_H_COMMIT_TIME] = { "jobrt_store_commit_seconds",
                           "Time of one group commit of the job store (COMMIT with fsync)." },
    [JR_H_COMMIT_WRITES] = { "jobrt_store_commit_writes",
                             "Writes (rows and events) made durable by one group commit." },
};

static void counters(struct out *o, const struct jr_metrics *m)
{
    for (int c = 0; c < JR_M_NCOUNTERS; c++) {
        family(o, counter_info[c].name, "counter", counter_info[c].help);
        for (const struct jr_metrics_entry *e = m ? m->counters[c] : NULL; e; e = e->next)
            sample(o, counter_info[c].name, counter_info[c].l1, e->v[0], counter_info[c].l2,
                   e->v[1], (double)e->n);
    }
}

static void histograms(struct out *o, const struct jr_metrics *m)
{
    static const struct jr_hist empty;

    for (int h = 0; h < JR_H_NHISTS; h++) {
        int nb;
        const double *b = jr_metrics_buckets(h, &nb);
        family(o, hist_info[h].name, "histogram", hist_info[h].help);
        hist(o, hist_info[h].name, m ? &m->hists[h] : &empty, b, nb, NULL);
    }
}

static void http(struct out *o, const struct jr_metrics *m)
{
    static const char *const classes[5] = { "1xx", "2xx", "3xx", "4xx", "5xx" };
    const struct jr_metrics_route *routes[2] = { m ? m->routes : NULL, m ? m->unrouted : NULL };
    int nb;
    const double *b = jr_metrics_buckets(JR_H_NHISTS, &nb);

    family(o, "jobrt_http_requests_total", "counter",
           "HTTP answers by surface, method, route template and status class (route \"\":"
           " refused before routing).");
    for (int pass = 0; pass < 2; pass++) {
        for (const struct jr_metrics_route *r = routes[pass]; r; r = pass ? NULL : r->next) {
            for (int c = 0; c < 5; c++) {
                struct labels l = { { "surface", "method", "route", "code" },
                                    { r->surface, r->method, r->route, classes[c] } };
                if (r->by_class[c])
                    sample_l(o, "jobrt_http_requests_total", &l, (double)r->by_class[c]);
            }
        }
    }
    family(o, "jobrt_http_request_duration_seconds", "histogram",
           "Time from a request's arrival to its answer's head, by surface, method and route.");
    for (int pass = 0; pass < 2; pass++) {
        for (const struct jr_metrics_route *r = routes[pass]; r; r = pass ? NULL : r->next) {
            struct labels l = { { "surface", "method", "route", NULL },
                                { r->surface, r->method, r->route, NULL } };
            if (r->latency.count)
                hist(o, "jobrt_http_request_duration_seconds", &r->latency, b, nb, &l);
        }
    }
    family(o, "jobrt_http_connections", "gauge", "HTTP connections open now.");
    sample(o, "jobrt_http_connections", NULL, NULL, NULL, NULL,
           m ? (double)m->http_connections : 0);
}

/* ---- gauges sampled now ---- */

struct jobs_ctx {
    struct out *o;
    int have;                    /* a surface's rows are being summed */
    char surface[128];
    int64_t by_state[16];
};

/* One surface's line for every state (0 where it has none). */
static void flush_surface(struct jobs_ctx *c)
{
    const char *name;

    if (!c->have)
        return;
    for (int i = 0; i < 16 && (name = jr_job_state_name(i)); i++)
        sample(c->o, "jobrt_jobs", "surface", c->surface, "state", name, (double)c->by_state[i]);
    memset(c->by_state, 0, sizeof c->by_state);
    c->have = 0;
}

static int job_count(void *arg, const char *surface, const char *state, int64_t n)
{
    struct jobs_ctx *c = arg;
    const char *name;

    if (!c->have || strcmp(surface, c->surface) != 0) {
        flush_surface(c);
        snprintf(c->surface, sizeof c->surface, "%s", surface);
        c->have = 1;
    }
    for (int i = 0; i < 16 && (name = jr_job_state_name(i)); i++)
        if (strcmp(name, state) == 0)
            c->by_state[i] += n;
    return 0;
}

static int jobs(struct out *o, struct jr_core *core)
{
    struct jobs_ctx c;
    struct jr_err e = { 0, "" };

    memset(&c, 0, sizeof c);
    c.o = o;
    family(o, "jobrt_jobs", "gauge", "Jobs stored, by surface and state.");
    if (!core)
        return 0;
    if (jr_store_jobs_by_state(core->store, job_count, &c, &e))
        return -1;
    flush_surface(&c);
    return 0;
}

static void scheduler(struct out *o, struct jr_core *core)
{
    struct jr_node used = { 0, 0, 0, 0 }, cap = { 0, 0, 0, 0 };
    int64_t waiting[JR_WAIT_NREASONS], running = 0, ready = 0, active = 0;
    static const struct {
        const char *name, *help;
        double scale;
    } res[4] = {
        { "jobrt_node_cpu_cores", "The node's CPU for tasks, in cores: held by running tasks"
                                  " (used) and left (free).", 1000 },
        { "jobrt_node_memory_bytes", "The node's memory for tasks: used and free.", 1 },
        { "jobrt_node_gpus", "The node's GPUs for tasks: used and free.", 1 },
        { "jobrt_node_task_slots", "The node's task slots (node.max_tasks): used and free.", 1 },
    };

    memset(waiting, 0, sizeof waiting);
    if (core) {
        cap = *jr_sched_node(core->sched);
        jr_sched_usage(core->sched, &used, waiting);
        jr_sched_stats(core->sched, &running, &ready, &active);
    }
    family(o, "jobrt_tasks", "gauge", "Tasks of active jobs running now and ready to start.");
    sample(o, "jobrt_tasks", "state", "running", NULL, NULL, (double)running);
    sample(o, "jobrt_tasks", "state", "ready", NULL, NULL, (double)ready);
    family(o, "jobrt_tasks_waiting", "gauge",
           "Tasks of queued and running jobs that wait, by reason.");
    for (int r = JR_WAIT_DEPENDENCY; r <= JR_WAIT_PRIORITY; r++)
        sample(o, "jobrt_tasks_waiting", "reason", jr_wait_reason_name(r), NULL, NULL,
               (double)waiting[r]);
    family(o, "jobrt_active_jobs", "gauge", "Jobs the scheduler holds (queued or running).");
    sample(o, "jobrt_active_jobs", NULL, NULL, NULL, NULL, (double)active);
    const int64_t c[4] = { cap.cpu, cap.memory, cap.gpu, cap.max_tasks };
    const int64_t u[4] = { used.cpu, used.memory, used.gpu, used.max_tasks };
    for (int i = 0; i < 4; i++) {
        family(o, res[i].name, "gauge", res[i].help);
        sample(o, res[i].name, "state", "used", NULL, NULL, (double)u[i] / res[i].scale);
        sample(o, res[i].name, "state", "free", NULL, NULL,
               (double)(c[i] > u[i] ? c[i] - u[i] : 0) / res[i].scale);
    }
}

/* The process, as the Prometheus client libraries name it. */
static void process(struct out *o, const struct jr_metrics *m)
{
    char buf[2048], *p;
    unsigned long long utime = 0, stime = 0, vsize = 0;
    long long rss = 0;
    long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    FILE *f = fopen("/proc/self/stat", "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    struct rlimit rl;
    DIR *d;
    int fds = 0;

    if (f)
        fclose(f);
    buf[n] = 0;
    /* after "(comm)": state is field 3; utime 14, stime 15, vsize 23, rss 24 */
    if ((p = strrchr(buf, ')')))
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d"
                      " %*d %*d %*u %llu %lld", &utime, &stime, &vsize, &rss);
    if ((d = opendir("/proc/self/fd"))) {
        struct dirent *de;
        while ((de = readdir(d)))
            fds += de->d_name[0] != '.';
        closedir(d);
        fds--;   /* the directory's own */
    }
    family(o, "process_cpu_seconds_total", "counter", "User and system CPU time spent.");
    sample(o, "process_cpu_seconds_total", NULL, NULL, NULL, NULL,
           ticks > 0 ? (double)(utime + stime) / (double)ticks : 0);
    family(o, "process_resident_memory_bytes", "gauge", "Resident memory size.");
    sample(o, "process_resident_memory_bytes", NULL, NULL, NULL, NULL, (double)rss * (double)page);
    family(o, "process_virtual_memory_bytes", "gauge", "Virtual memory size.");
    sample(o, "process_virtual_memory_bytes", NULL, NULL, NULL, NULL, (double)vsize);
    family(o, "process_open_fds", "gauge", "Open file descriptors.");
    sample(o, "process_open_fds", NULL, NULL, NULL, NULL, fds > 0 ? fds : 0);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        family(o, "process_max_fds", "gauge", "The limit on open file descriptors.");
        sample(o, "process_max_fds", NULL, NULL, NULL, NULL, (double)rl.rlim_cur);
    }
    if (m) {
        family(o, "process_start_time_seconds", "gauge",
               "Start time of the process since the epoch, in seconds.");
        sample(o, "process_start_time_seconds", NULL, NULL, NULL, NULL, (double)(int64_t)m->start_time);
    }
}

int jr_metrics_render(const struct jr_metrics *m, struct jr_core *core, int64_t lua_bytes,
                      const char *version, struct jr_buf *out)
{
    struct out o = { out, 0 };

    family(&o, "jobrt_build_info", "gauge", "The running jobrt's version (always 1).");
    sample(&o, "jobrt_build_info", "version", version ? version : "", NULL, NULL, 1);
    if (jobs(&o, core))
        return -1;
    counters(&o, m);
    scheduler(&o, core);
    histograms(&o, m);
    http(&o, m);
    if (lua_bytes >= 0) {
        family(&o, "jobrt_lua_memory_bytes", "gauge", "Memory held by the Lua state.");
        sample(&o, "jobrt_lua_memory_bytes", NULL, NULL, NULL, NULL, (double)lua_bytes);
    }
    process(&o, m);
    return o.failed ? -1 : 0;
}
