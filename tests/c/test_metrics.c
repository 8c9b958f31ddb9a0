/* Unit tests of the metrics (runtime/metrics.c, metrics_render.c) and of
 * the JSON log line's escaping (runtime/loop.c): counting under label sets
 * and their bound, route label sets, a switched-off struct, the exposition's
 * histograms (cumulative buckets, +Inf equal to the count) and label
 * escaping, strings made valid JSON whatever bytes they hold, and the
 * store's jobs counted by surface and state: at the first read, then as
 * they are written (also across an undone operation and deletes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loop.h"
#include "metrics.h"
#include "store/store.h"
#include "unit.h"

static char dir[256];

static char *render(struct jr_metrics *m)
{
    struct jr_buf b = { NULL, 0, 0 };

    if (jr_metrics_render(m, NULL, -1, "1.2.3", &b) != 0) {
        jr_buf_free(&b);
        return NULL;
    }
    return jr_buf_detach(&b, NULL);
}

/* The value of the sample line that starts with series (then a space). */
static double value_of(const char *text, const char *series)
{
    size_t n = strlen(series);

    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    }
    return -1;
}

TEST(counters_by_label_set)
{
    struct jr_metrics m;
    char *text;

    jr_metrics_init(&m);
    jr_metrics_count(&m, JR_M_SUBMISSIONS, "native", NULL, 1);
    jr_metrics_count(&m, JR_M_SUBMISSIONS, "native", NULL, 2);
    jr_metrics_count(&m, JR_M_SUBMISSIONS, "openeo", NULL, 1);
    jr_metrics_count(&m, JR_M_REJECTIONS, "native", "invalid", 1);
    jr_metrics_count(&m, JR_M_TASK_OUTCOMES, "oom", "failed", 1);
    jr_metrics_count(&m, JR_M_LUA_KILLS, "deadline", NULL, 1);
    CHECK_INT(m.ncounters[JR_M_SUBMISSIONS], 2);
    text = render(&m);
    CHECK(text != NULL);
    CHECK(value_of(text, "jobrt_job_submissions_total{surface=\"native\"}") == 3);
    CHECK(value_of(text, "jobrt_job_submissions_total{surface=\"openeo\"}") == 1);
    CHECK(value_of(text, "jobrt_job_rejections_total{surface=\"native\",reason=\"invalid\"}") == 1);
    CHECK(value_of(text, "jobrt_task_outcomes_total{outcome=\"oom\",result=\"failed\"}") == 1);
    /* listed from the start, at 0 */
    CHECK(value_of(text, "jobrt_lua_kills_total{reason=\"deadline\"}") == 1);
    CHECK(value_of(text, "jobrt_lua_kills_total{reason=\"memory\"}") == 0);
    CHECK(value_of(text, "jobrt_store_commit_failures_total") == 0);
    CHECK(value_of(text, "jobrt_build_info{version=\"1.2.3\"}") == 1);
    CHECK(strstr(text, "# TYPE jobrt_job_submissions_total counter\n") != NULL);
    free(text);
    /* a family stops growing at its bound, the process does not */
    for (int i = 0; i < 1000; i++) {
        char name[16];
        snprintf(name, sizeof name, "s%d", i);
        jr_metrics_count(&m, JR_M_SUBMISSIONS, name, NULL, 1);
    }
    CHECK_INT(m.ncounters[JR_M_SUBMISSIONS], 256);
    jr_metrics_free(&m);
}

TEST(histograms_are_cumulative)
{
    struct jr_metrics m;
    char *text;

    jr_metrics_init(&m);
    jr_metrics_observe(&m, JR_H_QUEUE_WAIT, 0.001);   /* first bucket (0.01) */
    jr_metrics_observe(&m, JR_H_QUEUE_WAIT, 0.01);    /* le is inclusive */
    jr_metrics_observe(&m, JR_H_QUEUE_WAIT, 2);       /* le 5 */
    jr_metrics_observe(&m, JR_H_QUEUE_WAIT, 99999);   /* +Inf only */
    text = render(&m);
    CHECK(text != NULL);
    CHECK(value_of(text, "jobrt_task_queue_wait_seconds_bucket{le=\"0.01\"}") == 2);
    CHECK(value_of(text, "jobrt_task_queue_wait_seconds_bucket{le=\"1\"}") == 2);
    CHECK(value_of(text, "jobrt_task_queue_wait_seconds_bucket{le=\"5\"}") == 3);
    CHECK(value_of(text, "jobrt_task_queue_wait_seconds_bucket{le=\"3600\"}") == 3);
    CHECK(value_of(text, "jobrt_task_queue_wait_seconds_bucket{le=\"+Inf\"}") == 4);
    CHECK(value_of(text, "jobrt_task_queue_wait_seconds_count") == 4);
    CHECK(value_of(text, "jobrt_task_queue_wait_seconds_sum") > 100001 &&
          value_of(text, "jobrt_task_queue_wait_seconds_sum") < 100002);
    /* an empty one is there, at 0 */
    CHECK(value_of(text, "jobrt_store_commit_seconds_bucket{le=\"+Inf\"}") == 0);
    free(text);
    jr_metrics_free(&m);
}

TEST(http_routes_and_escaping)
{
    struct jr_metrics m;
    struct jr_metrics_route *r, *again;
    char *text;

    jr_metrics_init(&m);
    r = jr_metrics_route(&m, "native", "GET", "/jobrt/v1/jobs/{job_id}");
    again = jr_metrics_route(&m, "native", "GET", "/jobrt/v1/jobs/{job_id}");
    CHECK(r != NULL && r == again);
    CHECK(jr_metrics_route(&m, "native", "POST", "/jobrt/v1/jobs/{job_id}") != r);
    jr_metrics_http(&m, r, 200, 0.002);
    jr_metrics_http(&m, r, 204, 0.2);
    jr_metrics_http(&m, r, 404, 0.001);
    jr_metrics_http(&m, NULL, 400, 0.0001);   /* refused before routing */
    jr_metrics_http(&m, jr_metrics_route(&m, "x\"y", "GET", "/a\\b\nc"), 503, 1);
    text = render(&m);
    CHECK(text != NULL);
    CHECK(value_of(text, "jobrt_http_requests_total{surface=\"native\",method=\"GET\","
                         "route=\"/jobrt/v1/jobs/{job_id}\",code=\"2xx\"}") == 2);
    CHECK(value_of(text, "jobrt_http_requests_total{surface=\"native\",method=\"GET\","
                         "route=\"/jobrt/v1/jobs/{job_id}\",code=\"4xx\"}") == 1);
    /* classes without answers are left out */
    CHECK(value_of(text, "jobrt_http_requests_total{surface=\"native\",method=\"GET\","
                         "route=\"/jobrt/v1/jobs/{job_id}\",code=\"5xx\"}") == -1);
    CHECK(value_of(text, "jobrt_http_requests_total{surface=\"\",method=\"\",route=\"\","
                         "code=\"4xx\"}") == 1);
    CHECK(value_of(text, "jobrt_http_requests_total{surface=\"x\\\"y\",method=\"GET\","
                         "route=\"/a\\\\b\\nc\",code=\"5xx\"}") == 1);
    CHECK(value_of(text, "jobrt_http_request_duration_seconds_bucket{surface=\"native\","
                         "method=\"GET\",route=\"/jobrt/v1/jobs/{job_id}\",le=\"0.005\"}") == 2);
    CHECK(value_of(text, "jobrt_http_request_duration_seconds_count{surface=\"native\","
                         "method=\"GET\",route=\"/jobrt/v1/jobs/{job_id}\"}") == 3);
    free(text);
    jr_metrics_free(&m);
}

TEST(switched_off_and_null)
{
    struct jr_metrics m;
    char *text;

    jr_metrics_init(&m);
    m.enabled = 0;
    jr_metrics_count(&m, JR_M_SUBMISSIONS, "native", NULL, 1);
    jr_metrics_observe(&m, JR_H_RUN_TIME, 1);
    jr_metrics_http(&m, jr_metrics_route(&m, "native", "GET", "/x"), 200, 0.1);
    CHECK_INT(m.ncounters[JR_M_SUBMISSIONS], 0);
    CHECK_INT(m.hists[JR_H_RUN_TIME].count, 0);
    /* NULL is no metrics at all: nothing happens, the gauges still render */
    jr_metrics_count(NULL, JR_M_SUBMISSIONS, "native", NULL, 1);
    jr_metrics_observe(NULL, JR_H_RUN_TIME, 1);
    jr_metrics_http(NULL, NULL, 200, 0);
    CHECK(jr_metrics_route(NULL, "a", "b", "c") == NULL);
    text = render(NULL);
    CHECK(text != NULL && strstr(text, "process_open_fds ") != NULL);
    free(text);
    jr_metrics_free(&m);
}

static const char *escaped(const char *in, size_t size)
{
    static char out[256];
    size_t len = 0;

    out[0] = 0;
    jr_log_json_escape(out, size, &len, in);
    return out;
}

TEST(json_strings_are_always_valid)
{
    CHECK_STR(escaped("plain", 256), "plain");
    CHECK_STR(escaped("a\"b\\c\nd\te\x01\x7f", 256), "a\\\"b\\\\c\\nd\\te\\u0001\\u007f");
    CHECK_STR(escaped("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 256),
              "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    /* invalid UTF-8: a lone continuation, a cut sequence, an overlong, a surrogate */
    CHECK_STR(escaped("a\x80z", 256), "a\\ufffdz");
    CHECK_STR(escaped("\xe2\x82", 256), "\\ufffd\\ufffd");
    CHECK_STR(escaped("\xc0\xaf", 256), "\\ufffd\\ufffd");
    CHECK_STR(escaped("\xed\xa0\x80", 256), "\\ufffd\\ufffd\\ufffd");
    /* cut before a character that does not fit, never inside an escape */
    CHECK_STR(escaped("abc\"def", 5), "abc");
    CHECK_STR(escaped("ab\xc3\xa9", 4), "ab");
}

struct counts {
    char text[512];
};

static int add_count(void *arg, const char *surface, const char *state, int64_t n)
{
    struct counts *c = arg;
    size_t off = strlen(c->text);

    snprintf(c->text + off, sizeof c->text - off, "%s%s/%s=%lld", off ? " " : "", surface, state,
             (long long)n);
    return 0;
}

static const char *counts_of(struct jr_store *st)
{
    static struct counts c;
    struct jr_err e = { 0, "" };

    c.text[0] = 0;
    if (jr_store_jobs_by_state(st, add_count, &c, &e))
        snprintf(c.text, sizeof c.text, "error: %s", e.msg);
    return c.text;
}

static int64_t add_job(struct jr_store *st, const char *id, const char *surface, const char *state)
{
    struct jr_job_rec r;
    struct jr_err e = { 0, "" };

    memset(&r, 0, sizeof r);
    r.id = id;
    r.owner = "o";
    r.surface = surface;
    r.state = state;
    r.created_at = r.updated_at = jr_store_now_ms();
    r.attrs = "{}";
    return jr_store_job_insert(st, &r, &e) ? -1 : r.seq;
}

static int set_state(struct jr_store *st, int64_t seq, const char *state)
{
    struct jr_job_rec r;
    struct jr_err e = { 0, "" };

    memset(&r, 0, sizeof r);
    r.seq = seq;
    r.state = state;
    r.updated_at = jr_store_now_ms();
    return jr_store_job_set_state(st, &r, &e);
}

TEST(store_counts_jobs_as_they_are_written)
{
    char path[512];
    struct jr_store *st = NULL;
    struct jr_err e = { 0, "" };
    int64_t a, b, c, d;

    snprintf(path, sizeof path, "%s/counts.db", dir);
    if (jr_store_open(path, &st, &e)) {
        UNIT_FAIL("open: %s", e.msg);
        return;
    }
    /* Jobs written before the first read are counted by it. */
    a = add_job(st, "a", "native", "created");
    b = add_job(st, "b", "native", "created");
    CHECK_STR(counts_of(st), "native/created=2");
    /* From then on they are kept as jobs are written. */
    c = add_job(st, "c", "openeo", "created");
    d = add_job(st, "d", "openeo", "created");
    CHECK(a > 0 && b > 0 && c > 0 && d > 0);
    CHECK_STR(counts_of(st), "native/created=2 openeo/created=2");
    CHECK_INT(set_state(st, a, "queued"), 0);
    CHECK_INT(set_state(st, a, "running"), 0);
    CHECK_INT(set_state(st, b, "created"), 0);   /* no change */
    CHECK_INT(jr_store_commit(st), 0);
    CHECK_STR(counts_of(st), "native/created=1 native/running=1 openeo/created=2");
    /* an operation undone leaves the counts as they were */
    CHECK_INT(jr_store_op_begin(st, &e), 0);
    CHECK_INT(set_state(st, c, "queued"), 0);
    CHECK(add_job(st, "e", "kuscia", "created") > 0);
    CHECK_INT(jr_store_op_end(st, 0, &e), 0);
    CHECK_STR(counts_of(st), "native/created=1 native/running=1 openeo/created=2");
    /* deleted, and being deleted (not counted) */
    CHECK_INT(jr_store_job_delete(st, d, &e), 0);
    CHECK_INT(jr_store_job_mark_deleting(st, c, &e), 0);
    CHECK_INT(jr_store_commit(st), 0);
    CHECK_STR(counts_of(st), "native/created=1 native/running=1");
    CHECK_INT(jr_store_job_delete(st, c, &e), 0);
    CHECK_INT(set_state(st, b, "succeeded"), 0);
    CHECK_INT(jr_store_commit(st), 0);
    CHECK_STR(counts_of(st), "native/running=1 native/succeeded=1");
    jr_store_close(st);
    /* A new store counts what is on disk. */
    st = NULL;
    if (jr_store_open(path, &st, &e)) {
        UNIT_FAIL("reopen: %s", e.msg);
        return;
    }
    CHECK_STR(counts_of(st), "native/running=1 native/succeeded=1");
    jr_store_close(st);
}

int main(void)
{
    char cmd[300];
    int failed;

    snprintf(dir, sizeof dir, "/tmp/jobrt-test-metrics-%d", (int)getpid());
    mkdir(dir, 0700);
    RUN(counters_by_label_set);
    RUN(histograms_are_cumulative);
    RUN(http_routes_and_escaping);
    RUN(switched_off_and_null);
    RUN(json_strings_are_always_valid);
    RUN(store_counts_jobs_as_they_are_written);
    failed = UNIT_DONE();
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return failed;
}
