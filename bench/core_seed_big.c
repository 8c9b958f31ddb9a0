/* Seeds the store of bench/core_store.sh with N jobs fast, in SQL, as a
 * long-running service's store looks: mostly finished jobs (95% succeeded,
 * 4% failed, 1% canceled) of four owners, each with its task and its
 * events (submitted, queued, the end), ids "seed-00000001"... The schema
 * must exist (the daemon's, made by `jobrt lua bench/core_seed.lua DIR 0`).
 * Usage: core_seed_big DB N. Built and run by the bench script. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>

#define CHUNK 500000

/* x, the job's number, is c.x; its state by x % 100. */
#define STATE "CASE WHEN x %% 100 < 95 THEN 'succeeded' WHEN x %% 100 < 99 THEN 'failed'" \
    " ELSE 'canceled' END"
#define T0 "1767225600000"  /* 2026-01-01, then one job per 10 ms */
#define CTE "WITH RECURSIVE c(x) AS (SELECT %lld UNION ALL SELECT x + 1 FROM c WHERE x < %lld) "

static const char *const fills[] = {
    CTE "INSERT INTO jobs(seq, id, surface, owner, state, priority, max_parallelism,"
    " created_at, updated_at, started_at, ended_at, error, attrs)"
    " SELECT x, printf('seed-%%08d', x), 'native',"
    " CASE x %% 4 WHEN 0 THEN 'alice' WHEN 1 THEN 'bob' WHEN 2 THEN 'carol' ELSE 'dave' END,"
    " " STATE ", 0, 0, " T0 " + x * 10, " T0 " + x * 10 + 900, " T0 " + x * 10 + 100,"
    " " T0 " + x * 10 + 900, CASE WHEN x %% 100 BETWEEN 95 AND 98 THEN 'task a failed' END,"
    " printf('{\"title\":\"seed %%d\",\"labels\":{\"kind\":\"seed\"}}', x) FROM c",
    CTE "INSERT INTO tasks(job_seq, idx, alias, deps, state, priority, tolerable, retries,"
    " attempt, cpu, memory, gpu, disk, timeout_ms, argv, env, workdir, exit_code, signal,"
    " outcome, error, started_at, ended_at, pid, pid_start, spec, cpu_ms, max_rss_bytes, wall_ms)"
    " SELECT x, 0, 'a', '', " STATE ", 0, 0, 0, 1, 100, 0, 0, 0, 0, X'7472756500', X'',"
    " NULL, CASE WHEN x %% 100 < 95 THEN 0 WHEN x %% 100 < 99 THEN 1 END, NULL,"
    " CASE WHEN x %% 100 < 99 THEN 'exited' ELSE 'canceled' END, NULL,"
    " " T0 " + x * 10 + 100, " T0 " + x * 10 + 900, NULL, NULL,"
    " '{\"alias\":\"a\",\"command\":[\"true\"],\"resources\":{\"cpu\":100}}', 3, 1048576, 800"
    " FROM c",
    CTE "INSERT INTO events(time, job, task, type, state, message)"
    " SELECT " T0 " + x * 10 + k * 400, printf('seed-%%08d', x), NULL, 'job',"
    " CASE k WHEN 0 THEN 'created' WHEN 1 THEN 'queued' ELSE " STATE " END,"
    " CASE k WHEN 0 THEN 'submitted' WHEN 1 THEN 'started' END"
    " FROM c, (SELECT 0 AS k UNION ALL SELECT 1 UNION ALL SELECT 2) ORDER BY x, k",
};

static int run(sqlite3 *db, const char *sql)
{
    char *err = NULL;

    if (sqlite3_exec(db, sql, NULL, NULL, &err) == SQLITE_OK)
        return 0;
    fprintf(stderr, "core_seed_big: %s\n", err ? err : sqlite3_errmsg(db));
    sqlite3_free(err);
    return 1;
}

int main(int argc, char **argv)
{
    sqlite3 *db;
    long long n, have, lo, hi;
    sqlite3_stmt *s;
    char sql[4096];

    if (argc < 3 || sqlite3_open(argv[1], &db) != SQLITE_OK)
        return 2;
    n = atoll(argv[2]);
    if (run(db, "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;"
                " PRAGMA cache_size = -262144"))
        return 1;
    if (sqlite3_prepare_v2(db, "SELECT coalesce(max(seq), 0) FROM jobs", -1, &s, NULL) ||
        sqlite3_step(s) != SQLITE_ROW)
        return 1;
    have = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    for (lo = have + 1; lo <= n; lo = hi + 1) {
        hi = lo + CHUNK - 1 < n ? lo + CHUNK - 1 : n;
        if (run(db, "BEGIN"))
            return 1;
        for (size_t i = 0; i < sizeof fills / sizeof fills[0]; i++) {
            snprintf(sql, sizeof sql, fills[i], lo, hi);
            if (run(db, sql))
                return 1;
        }
        if (run(db, "COMMIT"))
            return 1;
    }
    if (run(db, "PRAGMA journal_mode = WAL"))
        return 1;
    sqlite3_close(db);
    return 0;
}
