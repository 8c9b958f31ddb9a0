/* Counting: labelled counters kept as short lists of label sets, histograms
 * with fixed buckets, and the HTTP route label sets the router holds. Every
 * function here is cheap enough for the request path and never fails. */
#include "metrics.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Bounds on what label values may add: surfaces and states are few; a
 * family past its bound stops growing rather than the process. */
#define MAX_ENTRIES 256
#define MAX_ROUTES 1024

static const double http_buckets[] = { .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10 };
static const double wait_buckets[] = { .01, .05, .1, .5, 1, 5, 10, 30, 60, 300, 900, 3600 };
static const double run_buckets[] = { .1, .5, 1, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400 };
static const double fast_buckets[] = { .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1 };
static const double write_buckets[] = { 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000 };

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const struct { const double *b; int n; } hist_buckets[JR_H_NHISTS] = {
    [JR_H_QUEUE_WAIT] = { wait_buckets, N(wait_buckets) },
    [JR_H_RUN_TIME] = { run_buckets, N(run_buckets) },
    [JR_H_TASK_START] = { fast_buckets, N(fast_buckets) },
    [JR_H_COMMIT_TIME] = { fast_buckets, N(fast_buckets) },
    [JR_H_COMMIT_WRITES] = { write_buckets, N(write_buckets) },
};

const double *jr_metrics_buckets(enum jr_metric_hist h, int *n)
{
    if (h == JR_H_NHISTS) {   /* the HTTP latency's, shared by every route */
        *n = N(http_buckets);
        return http_buckets;
    }
    *n = hist_buckets[h].n;
    return hist_buckets[h].b;
}

void jr_metrics_init(struct jr_metrics *m)
{
    struct timespec ts;

    memset(m, 0, sizeof *m);
    m->enabled = 1;
    clock_gettime(CLOCK_REALTIME, &ts);
    m->start_time = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    /* Listed from the start at 0, so a rate sees the first one. */
    jr_metrics_count(m, JR_M_LUA_KILLS, "deadline", NULL, 0);
    jr_metrics_count(m, JR_M_LUA_KILLS, "memory", NULL, 0);
    jr_metrics_count(m, JR_M_COMMIT_FAILURES, NULL, NULL, 0);
}

static void free_route(struct jr_metrics_route *r)
{
    free(r->surface);
    free(r->method);
    free(r->route);
    free(r);
}

void jr_metrics_free(struct jr_metrics *m)
{
    for (int c = 0; c < JR_M_NCOUNTERS; c++) {
        struct jr_metrics_entry *e = m->counters[c], *next;
        for (; e; e = next) {
            next = e->next;
            free(e->v[0]);
            free(e->v[1]);
            free(e);
        }
        m->counters[c] = NULL;
    }
    for (struct jr_metrics_route *r = m->routes, *next; r; r = next) {
        next = r->next;
        free_route(r);
    }
    if (m->unrouted)
        free_route(m->unrouted);
    m->routes = m->unrouted = NULL;
    m->nroutes = 0;
}

static int same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static char *dup_or_null(const char *s, int *failed)
{
    char *d;

    if (!s)
        return NULL;
    if (!(d = strdup(s)))
        *failed = 1;
    return d;
}

void jr_metrics_count(struct jr_metrics *m, enum jr_metric_counter c, const char *l1,
                      const char *l2, uint64_t by)
{
    struct jr_metrics_entry *e;
    int failed = 0;

    if (!m || !m->enabled || c < 0 || c >= JR_M_NCOUNTERS)
        return;
    for (e = m->counters[c]; e; e = e->next) {
        if (same(e->v[0], l1) && same(e->v[1], l2)) {
            e->n += by;
            return;
        }
    }
    if (m->ncounters[c] >= MAX_ENTRIES || !(e = calloc(1, sizeof *e)))
        return;
    e->v[0] = dup_or_null(l1, &failed);
    e->v[1] = dup_or_null(l2, &failed);
    if (failed) {
        free(e->v[0]);
        free(e->v[1]);
        free(e);
        return;
    }
    e->n = by;
    /* At the end, so the exposition lists label sets in the order first seen. */
    struct jr_metrics_entry **p = &m->counters[c];
    while (*p)
        p = &(*p)->next;
    *p = e;
    m->ncounters[c]++;
}

static void hist_add(struct jr_hist *h, const double *b, int n, double v)
{
    int i = 0;

    while (i < n && v > b[i])
        i++;
    h->counts[i]++;
    h->count++;
    h->sum += v;
}

void jr_metrics_observe(struct jr_metrics *m, enum jr_metric_hist h, double v)
{
    if (!m || !m->enabled || h < 0 || h >= JR_H_NHISTS)
        return;
    hist_add(&m->hists[h], hist_buckets[h].b, hist_buckets[h].n, v);
}

static struct jr_metrics_route *new_route(const char *surface, const char *method,
                                          const char *route)
{
    struct jr_metrics_route *r = calloc(1, sizeof *r);
    int failed = 0;

    if (!r)
        return NULL;
    r->surface = dup_or_null(surface ? surface : "", &failed);
    r->method = dup_or_null(method ? method : "", &failed);
    r->route = dup_or_null(route ? route : "", &failed);
    if (failed) {
        free_route(r);
        return NULL;
    }
    return r;
}

struct jr_metrics_route *jr_metrics_route(struct jr_metrics *m, const char *surface,
                                          const char *method, const char *route)
{
    struct jr_metrics_route *r, **p;

    if (!m)
        return NULL;
    surface = surface ? surface : "";
    method = method ? method : "";
    route = route ? route : "";
    for (p = &m->routes; (r = *p); p = &r->next)
        if (strcmp(r->route, route) == 0 && strcmp(r->method, method) == 0 &&
            strcmp(r->surface, surface) == 0)
            return r;
    if (m->nroutes >= MAX_ROUTES || !(r = new_route(surface, method, route)))
        return NULL;
    *p = r;
    m->nroutes++;
    return r;
}

void jr_metrics_http(struct jr_metrics *m, struct jr_metrics_route *r, int status,
                     double seconds)
{
    int cls = status / 100 - 1;

    if (!m || !m->enabled)
        return;
    if (!r) {
        /* Refused by the server itself (a malformed request, a limit). */
        if (!m->unrouted && !(m->unrouted = new_route("", "", "")))
            return;
        r = m->unrouted;
    }
    if (cls < 0 || cls > 4)
        cls = 4;
    r->by_class[cls]++;
    hist_add(&r->latency, http_buckets, N(http_buckets), seconds);
}
