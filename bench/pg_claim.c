/* jobrt's claim of free jobs on the PostgreSQL store, as an instance's
 * scheduler makes it (jr_store_jobs_claim: FOR UPDATE SKIP LOCKED in the
 * batch, then the commit), one job per claim, for SECONDS:
 *   pg_claim URL SECONDS INSTANCE     prints "CLAIMS n seconds"
 * bench/pg.sh runs several at once against the raw claim of pgbench. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "store/store.h"

static int count(void *arg, const struct jr_job_rec *r)
{
    (void)r;
    ++*(int64_t *)arg;
    return 0;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    struct jr_store *st = NULL;
    struct jr_err e = { 0, "" };
    int64_t claimed = 0;
    double t0, secs;

    if (argc != 4) {
        fprintf(stderr, "usage: pg_claim URL SECONDS INSTANCE\n");
        return 2;
    }
    if (jr_store_open(argv[1], &st, &e) || jr_store_set_instance(st, argv[3], &e)) {
        fprintf(stderr, "pg_claim: %s\n", e.msg);
        return 1;
    }
    secs = atof(argv[2]);
    t0 = now_s();
    while (now_s() - t0 < secs) {
        int64_t before = claimed;
        if (jr_store_jobs_claim(st, 1, count, &claimed, &e) || jr_store_commit(st)) {
            fprintf(stderr, "pg_claim: %s\n", e.msg);
            break;
        }
        if (claimed == before)
            break;      /* nothing left to claim */
    }
    printf("CLAIMS %lld %.3f\n", (long long)claimed, now_s() - t0);
    jr_store_close(st);
    return 0;
}
