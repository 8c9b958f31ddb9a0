/* How long the reads of a GET and of a list page hold the loop: the store's
 * reads are synchronous (PostgreSQL: one round trip each, the loop waiting
 * in poll), so their time is time no other request is served. Seeds JOBS
 * jobs of 5 tasks, then times GETs of random jobs (the job's row, then its
 * tasks, as core.get reads them) and list pages of 100 jobs:
 *   pg_read TARGET JOBS N     prints "READS get_median get_p99 list_median
 *                             list_p99" in microseconds
 * TARGET is a PostgreSQL URL or an SQLite file (the baseline); bench/pg.sh
 * runs it on both. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store.h"

static double now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double at(double *v, int n, double q)
{
    int i = (int)(q * (n - 1) + 0.5);

    return v[i < n ? i : n - 1];
}

static int64_t last_seq;

static int job_seen(void *arg, const struct jr_job_rec *j)
{
    ++*(int *)arg;
    last_seq = j->seq;
    return 0;
}

static int task_seen(void *arg, const struct jr_task_rec *t)
{
    (void)t;
    ++*(int *)arg;
    return 0;
}

static int seed(struct jr_store *st, int jobs, struct jr_err *e)
{
    static const char *const aliases[] = { "a", "b", "c", "d", "e" };
    struct jr_task_rec t[5];
    struct jr_job_rec j;
    struct jr_event_rec ev;
    char id[32];
    int i, k, rc = 0;

    for (i = 0; i < jobs && !rc; i++) {
        snprintf(id, sizeof id, "read-%d", i);
        memset(&j, 0, sizeof j);
        j.id = id;
        j.surface = "native";
        j.owner = "bench";
        j.state = "succeeded";
        j.created_at = j.updated_at = jr_store_now_ms();
        j.attrs = "{\"title\":\"read bench\",\"labels\":{\"k\":\"v\"}}";
        memset(t, 0, sizeof t);
        for (k = 0; k < 5; k++) {
            t[k].idx = k;
            t[k].alias = aliases[k];
            t[k].deps = k ? "0" : "";
            t[k].state = "succeeded";
            t[k].argv = "sh\0-c\0true\0";
            t[k].argv_len = 12;
            t[k].env = "";
            t[k].exit_code = 0;
            t[k].spec = "{\"command\":[\"sh\",\"-c\",\"true\"]}";
        }
        ev = (struct jr_event_rec){ 0, 0, id, NULL, "job", "created", "submitted" };
        rc = jr_store_job_create(st, &j, t, 5, &ev, NULL, e);
        if (!rc && i % 100 == 99)
            rc = jr_store_commit(st);
    }
    return rc ? rc : jr_store_commit(st);
}

int main(int argc, char **argv)
{
    struct jr_store *st = NULL;
    struct jr_err e = { 0, "" };
    double *get, *list, t0;
    int jobs, n, i, rows;
    char id[32];

    if (argc != 4 || (jobs = atoi(argv[2])) < 200 || (n = atoi(argv[3])) < 1) {
        fprintf(stderr, "usage: pg_read TARGET JOBS(>=200) N\n");
        return 2;
    }
    if (jr_store_open(argv[1], &st, &e) || seed(st, jobs, &e)) {
        fprintf(stderr, "pg_read: %s\n", e.msg);
        return 1;
    }
    get = calloc((size_t)n, sizeof *get);
    list = calloc((size_t)n, sizeof *list);
    if (!get || !list)
        return 1;
    srand(1);
    for (i = 0; i < n; i++) {
        struct jr_job_filter f = { NULL, NULL, NULL, 0, 101 };
        snprintf(id, sizeof id, "read-%d", rand() % jobs);
        rows = 0;
        t0 = now_us();
        if (jr_store_job_get(st, id, job_seen, &rows, &e) ||
            jr_store_tasks_each(st, last_seq, task_seen, &rows, &e)) {
            fprintf(stderr, "pg_read: %s\n", e.msg);
            return 1;
        }
        get[i] = now_us() - t0;
        if (rows != 6)
            return 1;
        f.after = rand() % (jobs - 100);
        rows = 0;
        t0 = now_us();
        if (jr_store_jobs_list(st, &f, job_seen, &rows, &e)) {
            fprintf(stderr, "pg_read: %s\n", e.msg);
            return 1;
        }
        list[i] = now_us() - t0;
        if (rows < 100)
            return 1;
    }
    qsort(get, (size_t)n, sizeof *get, cmp);
    qsort(list, (size_t)n, sizeof *list, cmp);
    printf("READS %.0f %.0f %.0f %.0f\n", at(get, n, 0.5), at(get, n, 0.99), at(list, n, 0.5),
           at(list, n, 0.99));
    free(get);
    free(list);
    jr_store_close(st);
    return 0;
}
