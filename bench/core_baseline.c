/* Baseline for bench/core_store.sh: single-row transactions against SQLite
 * in WAL mode with synchronous=FULL (one fsync per commit), for N seconds;
 * prints commits per second. Built and run by the bench script. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    sqlite3 *db;
    sqlite3_stmt *ins;
    double secs = argc > 2 ? atof(argv[2]) : 3, t0;
    long n = 0;

    if (argc < 2 || sqlite3_open(argv[1], &db) != SQLITE_OK)
        return 2;
    sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                 "CREATE TABLE IF NOT EXISTS jobs(seq INTEGER PRIMARY KEY, id TEXT UNIQUE,"
                 " state TEXT, attrs TEXT)", NULL, NULL, NULL);
    sqlite3_prepare_v2(db, "INSERT INTO jobs(id, state, attrs) VALUES(hex(randomblob(16)),"
                       " 'created', '{\"title\":\"bench job with a small document\"}')",
                       -1, &ins, NULL);
    t0 = now();
    while (now() - t0 < secs) {
        sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        sqlite3_step(ins);
        sqlite3_reset(ins);
        if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            return 1;
        n++;
    }
    printf("%.0f\n", n / (now() - t0));
    sqlite3_finalize(ins);
    sqlite3_close(db);
    return 0;
}
