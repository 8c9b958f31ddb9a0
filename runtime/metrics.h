/* The daemon's Prometheus metrics: counters and fixed-bucket histograms
 * counted in C where things happen (HTTP server, scheduler, store commits,
 * task starts, Lua kills), held in one struct owned by the loop's context
 * (struct jr_loop), and rendered in the text exposition format 0.0.4 by
 * jr_metrics_render (metrics_render.c), which samples the gauges. */
#ifndef JR_METRICS_H
#define JR_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Counter families, each with at most two labels (see metrics.c). */
enum jr_metric_counter {
    JR_M_SUBMISSIONS,       /* {surface} */
    JR_M_TRANSITIONS,       /* {state}: jobs moved into state */
    JR_M_REJECTIONS,        /* {surface, reason}: invalid | policy | approver */
    JR_M_TASK_OUTCOMES,     /* {outcome, result}: succeeded | failed | canceled | retried */
    JR_M_LUA_KILLS,         /* {reason}: deadline | memory */
    JR_M_COMMIT_FAILURES,   /* {} */
    JR_M_NCOUNTERS
};

/* Histograms without labels, each with its fixed buckets (metrics.c). */
enum jr_metric_hist {
    JR_H_QUEUE_WAIT,        /* seconds a task was ready before it started */
    JR_H_RUN_TIME,          /* seconds a task attempt ran */
    JR_H_TASK_START,        /* seconds the executor took to start an attempt */
    JR_H_COMMIT_TIME,       /* seconds one group commit took */
    JR_H_COMMIT_WRITES,     /* writes in one group commit */
    JR_H_NHISTS
};

#define JR_METRICS_MAX_BUCKETS 16
/* Per-bucket counts (not cumulative); counts[nbuckets] is +Inf. */
struct jr_hist {
    uint64_t counts[JR_METRICS_MAX_BUCKETS + 1];
    uint64_t count;
    double sum;
};

/* One HTTP label set {surface, method, route}: answers by status class and
 * their latency. Made once by jr_metrics_route and kept until the metrics
 * are freed, so the router may hold the pointer. */
struct jr_metrics_route {
    struct jr_metrics_route *next;
    char *surface, *method, *route;
    uint64_t by_class[5];   /* 1xx..5xx */
    struct jr_hist latency;
};

/* One label set of a counter family and its count. */
struct jr_metrics_entry {
    struct jr_metrics_entry *next;
    char *v[2];             /* label values, NULL for a family with fewer */
    uint64_t n;
};

struct jr_metrics {
    int enabled;            /* 0: nothing is counted (metrics: {enabled: false}) */
    double start_time;      /* seconds since the epoch, for process_start_time_seconds */
    struct jr_metrics_entry *counters[JR_M_NCOUNTERS];
    unsigned ncounters[JR_M_NCOUNTERS];
    struct jr_hist hists[JR_H_NHISTS];
    struct jr_metrics_route *routes;
    unsigned nroutes;
    struct jr_metrics_route *unrouted;  /* answers no route was given for */
    int64_t http_connections;
};

/* Zero m and start counting. */
void jr_metrics_init(struct jr_metrics *m);
/* Free what m allocated (label sets, routes); m may be reused after init. */
void jr_metrics_free(struct jr_metrics *m);

/* Every counting function below does nothing when m is NULL or disabled,
 * and never fails: a label set that cannot be allocated (or one more than a
 * family's bound) is not counted. Label values are copied. */
void jr_metrics_count(struct jr_metrics *m, enum jr_metric_counter c, const char *l1,
                      const char *l2, uint64_t by);
void jr_metrics_observe(struct jr_metrics *m, enum jr_metric_hist h, double v);

/* The label set for HTTP answers of a route (NULL when out of memory or m is
 * NULL): the same pointer for the same three values. */
struct jr_metrics_route *jr_metrics_route(struct jr_metrics *m, const char *surface,
                                          const char *method, const char *route);
/* One answer of r (NULL: the request was refused before routing) with
 * status, sent seconds after its request arrived. */
void jr_metrics_http(struct jr_metrics *m, struct jr_metrics_route *r, int status,
                     double seconds);

/* The histogram bucket bounds of h (*n of them). */
const double *jr_metrics_buckets(enum jr_metric_hist h, int *n);

struct jr_core;
/* Append the exposition (format 0.0.4) of m (NULL: gauges only) and of the
 * gauges sampled now: jobs by surface and state, tasks, waiting reasons,
 * node capacity used and free (from core, when not NULL), the Lua heap
 * (lua_bytes, < 0 = unknown) and the process (RSS, fds, CPU). Returns 0, or
 * -1 when out of memory or the store could not be read (out then holds a
 * partial text the caller discards). */
int jr_metrics_render(const struct jr_metrics *m, struct jr_core *core, int64_t lua_bytes,
                      const char *version, struct jr_buf *out);

#endif
