/* Unit tests of the task usage columns (migration 2) and the run record
 * and log offset (migration 5): usage written with an attempt's outcome is
 * read back with the task, cleared by a reset; the offset is kept until a
 * new attempt sets the row running, the record is written with the
 * running row and cleared with its end; a version-1 database gains the
 * columns when opened; on both backends. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "unit.h"
#include "store_env.h"

static struct jr_store *open_store(const char *name)
{
    char path[512];
    struct jr_store *st = NULL;
    struct jr_err e = { 0, "" };

    store_env_target(name, path, sizeof path);
    if (jr_store_open(path, &st, &e))
        fprintf(stderr, "open: %s\n", e.msg);
    return st;
}

static int64_t add_job_with_task(struct jr_store *st, const char *id)
{
    struct jr_job_rec j;
    struct jr_task_rec t;
    struct jr_err e = { 0, "" };

    memset(&j, 0, sizeof j);
    j.id = id;
    j.owner = "alice";
    j.surface = "native";
    j.state = "queued";
    j.created_at = j.updated_at = jr_store_now_ms();
    j.attrs = "{}";
    if (jr_store_job_insert(st, &j, &e))
        return -1;
    memset(&t, 0, sizeof t);
    t.job_seq = j.seq;
    t.alias = "a";
    t.deps = "";
    t.state = "pending";
    t.exit_code = -1;
    t.argv = "true";
    t.argv_len = 5;
    if (jr_store_task_insert(st, &t, &e))
        return -1;
    return j.seq;
}

struct usage {
    int n, has, grouped;
    int64_t cpu, rss, wall, offset;
    char record[64];
};

static int see_task(void *arg, const struct jr_task_rec *t)
{
    struct usage *u = arg;

    u->n++;
    u->has = t->has_usage;
    u->grouped = t->group != NULL;
    u->cpu = t->cpu_ms;
    u->rss = t->max_rss_bytes;
    u->wall = t->wall_ms;
    u->offset = t->log_offset;
    snprintf(u->record, sizeof u->record, "%s", t->run_record ? t->run_record : "(none)");
    return 0;
}

TEST(usage_roundtrip_and_reset)
{
    struct jr_store *st = open_store("u.db");
    struct jr_err e = { 0, "" };
    struct usage u = { 0, 0, 0, 0, 0, 0, 0, "" };
    int64_t seq;

    CHECK(st != NULL);
    if (!st)
        return;
    seq = add_job_with_task(st, "j1");
    CHECK(seq > 0);
    CHECK_INT(jr_store_tasks_each(st, seq, see_task, &u, &e), 0);
    CHECK_INT(u.n, 1);
    CHECK_INT(u.has, 0);
    CHECK_INT(jr_store_task_set_usage(st, seq, 0, 12, 3456789, 42, &e), 0);
    CHECK_INT(jr_store_commit(st), 0);
    jr_store_close(st);
    st = open_store("u.db");
    CHECK(st != NULL);
    if (!st)
        return;
    memset(&u, 0, sizeof u);
    CHECK_INT(jr_store_tasks_each(st, seq, see_task, &u, &e), 0);
    CHECK_INT(u.has, 1);
    CHECK_INT(u.cpu, 12);
    CHECK_INT(u.rss, 3456789);
    CHECK_INT(u.wall, 42);
    CHECK_INT(jr_store_tasks_reset(st, seq, 0, &e), 0);
    memset(&u, 0, sizeof u);
    CHECK_INT(jr_store_tasks_each(st, seq, see_task, &u, &e), 0);
    CHECK_INT(u.has, 0);
    jr_store_close(st);
}

#define V1_SQL "ALTER TABLE tasks DROP COLUMN cpu_ms;" \
    "ALTER TABLE tasks DROP COLUMN max_rss_bytes;" \
    "ALTER TABLE tasks DROP COLUMN wall_ms;" \
    "ALTER TABLE tasks DROP COLUMN task_group;" \
    "ALTER TABLE tasks DROP COLUMN log_offset;" \
    "ALTER TABLE tasks DROP COLUMN run_record;" \
    "DROP INDEX events_by_job;" \
    "ALTER TABLE jobs DROP COLUMN instance;" \
    "DROP TABLE instances;" \
    "UPDATE meta SET value = '1' WHERE key = 'schema_version';"

TEST(version_1_database_is_migrated)
{
    char path[512];
    sqlite3 *db = NULL;
    struct jr_store *st = open_store("old.db");
    struct jr_err e = { 0, "" };
    struct usage u = { 0, 0, 0, 0, 0, 0, 0, "" };
    int64_t seq;

    if (!st)
        return;
    seq = add_job_with_task(st, "old");
    CHECK_INT(jr_store_commit(st), 0);
    jr_store_close(st);
    /* Turn it back into a version-1 database. */
    store_env_target("old.db", path, sizeof path);
    if (store_pg) {
        PGconn *c = PQconnectdb(path);
        PGresult *r = PQexec(c, V1_SQL);
        CHECK_INT(PQresultStatus(r), PGRES_COMMAND_OK);
        PQclear(r);
        PQfinish(c);
    } else {
        CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
        CHECK_INT(sqlite3_exec(db, V1_SQL, NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
    }
    st = open_store("old.db");
    CHECK(st != NULL);
    if (!st)
        return;
    CHECK_INT(jr_store_tasks_each(st, seq, see_task, &u, &e), 0);
    CHECK_INT(u.n, 1);
    CHECK_INT(u.has, 0);
    CHECK_INT(u.grouped, 0);     /* migration 4: old rows have no group */
    CHECK_INT(u.offset, 0);      /* migration 5: nothing logged from a spool */
    CHECK_INT(jr_store_task_set_usage(st, seq, 0, 1, 2, 3, &e), 0);
    CHECK_INT(jr_store_commit(st), 0);
    jr_store_close(st);
}

TEST(log_offset_kept_until_a_new_attempt)
{
    struct jr_store *st = open_store("o.db");
    struct jr_err e = { 0, "" };
    struct usage u = { 0, 0, 0, 0, 0, 0, 0, "" };
    struct jr_task_rec r;
    int64_t seq;

    CHECK(st != NULL);
    if (!st)
        return;
    seq = add_job_with_task(st, "j1");
    CHECK_INT(jr_store_task_set_log_offset(st, seq, 0, 4242, &e), 0);
    CHECK_INT(jr_store_commit(st), 0);
    CHECK_INT(jr_store_tasks_each(st, seq, see_task, &u, &e), 0);
    CHECK_INT(u.offset, 4242);
    /* an attempt's end keeps it (the rows and the offset stay together) */
    memset(&r, 0, sizeof r);
    r.job_seq = seq;
    r.state = "failed";
    r.attempt = 1;
    r.exit_code = 1;
    CHECK_INT(jr_store_task_set_state(st, &r, &e), 0);
    memset(&u, 0, sizeof u);
    CHECK_INT(jr_store_tasks_each(st, seq, see_task, &u, &e), 0);
    CHECK_INT(u.offset, 4242);
    CHECK_STR(u.record, "(none)");
    /* the next attempt's spool starts empty; its record is kept with it */
    r.state = "running";
    r.attempt = 2;
    r.exit_code = -1;
    r.run_record = "jobrt-attempt 1\nattempt 2\n";
    CHECK_INT(jr_store_task_set_state(st, &r, &e), 0);
    memset(&u, 0, sizeof u);
    CHECK_INT(jr_store_tasks_each(st, seq, see_task, &u, &e), 0);
    CHECK_INT(u.offset, 0);
    CHECK_STR(u.record, "jobrt-attempt 1\nattempt 2\n");
    r.state = "succeeded";
    r.run_record = NULL;
    CHECK_INT(jr_store_task_set_state(st, &r, &e), 0);
    memset(&u, 0, sizeof u);
    CHECK_INT(jr_store_tasks_each(st, seq, see_task, &u, &e), 0);
    CHECK_STR(u.record, "(none)"); /* the attempt is over */
    jr_store_close(st);
}

int main(void)
{
    char cmd[600];

    snprintf(store_dir, sizeof store_dir, "/tmp/jobrt-test-usage-%d", (int)getpid());
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", store_dir, store_dir);
    if (system(cmd) != 0)
        return 1;
    for (;;) {
        RUN(usage_roundtrip_and_reset);
        RUN(version_1_database_is_migrated);
        RUN(log_offset_kept_until_a_new_attempt);
        if (store_pg)
            break;
        if (store_env_pg_up() != 0) {
            printf("not ok - %s: a PostgreSQL server for the suite\n", __FILE__);
            unit_tests_failed++;
            break;
        }
        store_pg = 1;
        unit_label = "postgres";
    }
    store_env_pg_down();
    snprintf(cmd, sizeof cmd, "rm -rf %s", store_dir);
    if (system(cmd) != 0)
        return 1;
    return UNIT_DONE();
}
