/* The store's schema: numbered migrations applied in order at open, the
 * version kept in meta('schema_version'), and the SQL of every cached
 * statement. */
#include <stdio.h>
#include <stdlib.h>

#include "store/internal.h"

static const char *const migrations[] = {
    /* 1: jobs, tasks, events, logs, assets */
    "CREATE TABLE jobs("
    " seq INTEGER PRIMARY KEY,"
    " id TEXT NOT NULL UNIQUE,"
    " surface TEXT NOT NULL DEFAULT '',"
    " owner TEXT NOT NULL DEFAULT '',"
    " state TEXT NOT NULL,"
    " priority INTEGER NOT NULL DEFAULT 0,"
    " max_parallelism INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
    " started_at INTEGER, ended_at INTEGER,"
    " error TEXT, attrs TEXT NOT NULL DEFAULT '{}');"
    "CREATE INDEX jobs_by_owner ON jobs(owner, seq);"
    "CREATE INDEX jobs_by_surface ON jobs(surface, seq);"
    "CREATE INDEX jobs_by_state ON jobs(state, seq);"
    "CREATE TABLE tasks("
    " job_seq INTEGER NOT NULL, idx INTEGER NOT NULL,"
    " alias TEXT NOT NULL, deps TEXT NOT NULL DEFAULT '',"
    " state TEXT NOT NULL, priority INTEGER NOT NULL DEFAULT 0,"
    " tolerable INTEGER NOT NULL DEFAULT 0, retries INTEGER NOT NULL DEFAULT 0,"
    " attempt INTEGER NOT NULL DEFAULT 0,"
    " cpu INTEGER NOT NULL DEFAULT 0, memory INTEGER NOT NULL DEFAULT 0,"
    " gpu INTEGER NOT NULL DEFAULT 0, disk INTEGER NOT NULL DEFAULT 0,"
    " timeout_ms INTEGER NOT NULL DEFAULT 0,"
    " argv BLOB, env BLOB, workdir TEXT,"
    " exit_code INTEGER, signal INTEGER, outcome TEXT, error TEXT,"
    " started_at INTEGER, ended_at INTEGER, pid INTEGER, pid_start INTEGER,"
    " spec TEXT NOT NULL DEFAULT '{}',"
    " PRIMARY KEY(job_seq, idx));"
    "CREATE INDEX tasks_running ON tasks(job_seq) WHERE state = 'running';"
    "CREATE TABLE events(seq INTEGER PRIMARY KEY, time INTEGER NOT NULL,"
    " job TEXT NOT NULL, task TEXT, type TEXT NOT NULL, state TEXT, message TEXT);"
    "CREATE TABLE logs(id INTEGER PRIMARY KEY, job_seq INTEGER NOT NULL,"
    " task TEXT, level INTEGER NOT NULL, time INTEGER NOT NULL,"
    " message TEXT NOT NULL, data TEXT);"
    "CREATE INDEX logs_by_job ON logs(job_seq, id);"
    "CREATE TABLE assets(job_seq INTEGER NOT NULL, name TEXT NOT NULL,"
    " data TEXT NOT NULL, PRIMARY KEY(job_seq, name));",
    /* 2: resource usage of a task's last attempt (NULL = not measured) */
    "ALTER TABLE tasks ADD COLUMN cpu_ms INTEGER;"
    "ALTER TABLE tasks ADD COLUMN max_rss_bytes INTEGER;"
    "ALTER TABLE tasks ADD COLUMN wall_ms INTEGER;",
    /* 3: one job's events in order (Bacalhau's job history, audits) */
    "CREATE INDEX events_by_job ON events(job, seq);",
    /* 4: task groups (tasks that count as one under max_parallelism, the
     * parties of one Kuscia task); NULL = a group of its own */
    "ALTER TABLE tasks ADD COLUMN task_group TEXT;",
    /* 5: how many bytes of a running attempt's output spool are log rows
     * (a daemon that reattaches replays the rest; runtime/exec/record.h) */
    "ALTER TABLE tasks ADD COLUMN log_offset INTEGER NOT NULL DEFAULT 0;",
    /* 6: a running attempt's record, what a daemon needs to reattach to it
     * (runtime/exec/record.h), written with its running row */
    "ALTER TABLE tasks ADD COLUMN run_record TEXT;",
};

#define JOB_COLS "seq, id, surface, owner, state, priority, max_parallelism," \
    " created_at, updated_at, started_at, ended_at, error, attrs"
#define TASK_COLS "job_seq, idx, alias, deps, state, priority, tolerable, retries," \
    " attempt, cpu, memory, gpu, disk, timeout_ms, argv, env, workdir," \
    " exit_code, signal, outcome, error, started_at, ended_at, pid, pid_start, spec"
#define TASK_READ_COLS TASK_COLS ", cpu_ms, max_rss_bytes, wall_ms, task_group, log_offset," \
    " run_record"
/* Up to JR_STORE_COUNT_STATES states in ?3..; unused ones stay NULL. */
#define COUNT_STATES " state IN (?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
#define LIST_TAIL " AND (?2 IS NULL OR owner = ?2) AND (?3 IS NULL OR surface = ?3)" \
    " AND (?4 IS NULL OR state = ?4) AND state != '" JR_STORE_DELETING "'" \
    " ORDER BY seq LIMIT ?5"
/* A job being deleted (JR_STORE_DELETING) is counted out through the state
 * index, which holds few of them: the counts keep their cost. */
#define DELETING_ROWS " FROM jobs INDEXED BY jobs_by_state WHERE state = '" \
    JR_STORE_DELETING "'"

const char *const jr_store_sql[S_COUNT] = {
    [S_JOB_INSERT] = "INSERT INTO jobs(id, surface, owner, state, priority,"
        " max_parallelism, created_at, updated_at, started_at, ended_at, error, attrs)"
        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    [S_JOB_GET] = "SELECT " JOB_COLS " FROM jobs WHERE id = ?1"
        " AND state != '" JR_STORE_DELETING "'",
    [S_JOB_GET_SEQ] = "SELECT " JOB_COLS " FROM jobs WHERE seq = ?1"
        " AND state != '" JR_STORE_DELETING "'",
    [S_JOB_MARK_DELETING] = "UPDATE jobs SET state = '" JR_STORE_DELETING "',"
        " updated_at = ?2 WHERE seq = ?1",
    [S_JOBS_DELETING] = "SELECT " JOB_COLS DELETING_ROWS " ORDER BY seq",
    [S_JOB_SET_STATE] = "UPDATE jobs SET state = ?2, updated_at = ?3, started_at = ?4,"
        " ended_at = ?5, error = ?6 WHERE seq = ?1",
    [S_JOB_SET_ATTRS] = "UPDATE jobs SET priority = ?2, max_parallelism = ?3,"
        " attrs = coalesce(?4, attrs), updated_at = ?5 WHERE seq = ?1",
    [S_JOB_SET_APPROVAL] = "UPDATE jobs SET attrs = json_set(attrs, '$.approval',"
        " json_object('decision', ?2, 'by', ?3, 'reason', ?4, 'at', ?5)),"
        " updated_at = ?6 WHERE seq = ?1",
    [S_TASKS_RESET] = "UPDATE tasks SET state = 'pending', attempt = 0, exit_code = NULL,"
        " signal = NULL, outcome = NULL, error = NULL, started_at = NULL, ended_at = NULL,"
        " pid = NULL, pid_start = NULL, cpu_ms = NULL, max_rss_bytes = NULL, wall_ms = NULL"
        " WHERE job_seq = ?1 AND (?2 = 0 OR state != 'succeeded')",
    [S_TASKS_COUNT] = "SELECT count(*) FROM tasks WHERE job_seq = ?1",
    [S_JOB_DELETE] = "DELETE FROM jobs WHERE seq = ?1",
    [S_JOB_DELETE_TASKS] = "DELETE FROM tasks WHERE job_seq = ?1",
    [S_JOB_DELETE_LOGS] = "DELETE FROM logs WHERE job_seq = ?1",
    [S_JOB_DELETE_ASSETS] = "DELETE FROM assets WHERE job_seq = ?1",
    [S_JOBS_ALL] = "SELECT " JOB_COLS " FROM jobs WHERE seq > ?1" LIST_TAIL,
    [S_JOBS_OWNER] = "SELECT " JOB_COLS " FROM jobs INDEXED BY jobs_by_owner"
        " WHERE owner = ?2 AND seq > ?1" LIST_TAIL,
    [S_JOBS_SURFACE] = "SELECT " JOB_COLS " FROM jobs INDEXED BY jobs_by_surface"
        " WHERE surface = ?3 AND seq > ?1" LIST_TAIL,
    [S_JOBS_STATE] = "SELECT " JOB_COLS " FROM jobs INDEXED BY jobs_by_state"
        " WHERE state = ?4 AND seq > ?1" LIST_TAIL,
    [S_JOBS_ACTIVE] = "SELECT " JOB_COLS " FROM jobs WHERE state = 'queued'"
        " UNION ALL SELECT " JOB_COLS " FROM jobs WHERE state = 'running'"
        " UNION ALL SELECT " JOB_COLS " FROM jobs WHERE seq IN"
        " (SELECT job_seq FROM tasks WHERE state = 'running')"
        " AND state NOT IN ('queued', 'running', '" JR_STORE_DELETING "') ORDER BY 1",
    [S_JOBS_COUNT] = "SELECT (SELECT count(*) FROM jobs) - (SELECT count(*)" DELETING_ROWS ")",
    [S_COUNT_OWNER] = "SELECT (SELECT count(*) FROM jobs INDEXED BY jobs_by_owner"
        " WHERE owner = ?1 AND (?2 IS NULL OR surface = ?2)) - (SELECT count(*)"
        DELETING_ROWS " AND owner = ?1 AND (?2 IS NULL OR surface = ?2))",
    [S_COUNT_SURFACE] = "SELECT (SELECT count(*) FROM jobs INDEXED BY jobs_by_surface"
        " WHERE surface = ?2) - (SELECT count(*)" DELETING_ROWS " AND surface = ?2)",
    /* Through the jobs in the states asked, not an (owner, state) index:
     * policies count the few active jobs, and that index made every
     * durable submit about 15% dearer (one more B-tree written per commit). */
    [S_COUNT_OWNER_STATES] = "SELECT count(*) FROM jobs INDEXED BY jobs_by_state"
        " WHERE owner = ?1 AND" COUNT_STATES " AND (?2 IS NULL OR surface = ?2)",
    [S_COUNT_STATES] = "SELECT count(*) FROM jobs INDEXED BY jobs_by_state"
        " WHERE" COUNT_STATES " AND (?2 IS NULL OR surface = ?2)",
    [S_TASK_INSERT] = "INSERT INTO tasks(" TASK_COLS ", task_group) VALUES(?1, ?2, ?3,"
        " ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20,"
        " ?21, ?22, ?23, ?24, ?25, ?26, ?27)",
    /* A row set running is a new attempt: its output starts at offset 0. */
    [S_TASK_SET_STATE] = "UPDATE tasks SET state = ?3, attempt = ?4, exit_code = ?5,"
        " signal = ?6, outcome = ?7, error = ?8, started_at = ?9, ended_at = ?10,"
        " pid = ?11, pid_start = ?12, run_record = ?13,"
        " log_offset = CASE WHEN ?3 = 'running' THEN 0 ELSE log_offset END"
        " WHERE job_seq = ?1 AND idx = ?2",
    [S_TASK_SET_LOG_OFFSET] = "UPDATE tasks SET log_offset = ?3"
        " WHERE job_seq = ?1 AND idx = ?2",
    [S_TASK_SET_USAGE] = "UPDATE tasks SET cpu_ms = ?3, max_rss_bytes = ?4, wall_ms = ?5"
        " WHERE job_seq = ?1 AND idx = ?2",
    [S_TASKS_EACH] = "SELECT " TASK_READ_COLS " FROM tasks WHERE job_seq = ?1 ORDER BY idx",
    [S_EVENT_ADD] = "INSERT INTO events(time, job, task, type, state, message)"
        " VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    [S_EVENTS_AFTER] = "SELECT seq, time, job, task, type, state, message FROM events"
        " WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    [S_EVENTS_OF_JOB] = "SELECT seq, time, job, task, type, state, message FROM events"
        " INDEXED BY events_by_job WHERE job = ?3 AND seq > ?1 ORDER BY seq LIMIT ?2",
    [S_EVENTS_LAST] = "SELECT coalesce(max(seq), 0) FROM events",
    [S_LOG_ADD] = "INSERT INTO logs(job_seq, task, level, time, message, data)"
        " VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    [S_LOGS] = "SELECT id, time, level, task, message, data FROM logs"
        " WHERE job_seq = ?1 AND id > ?2 AND level >= ?3 ORDER BY id LIMIT ?4",
    [S_ASSET_PUT] = "INSERT OR REPLACE INTO assets(job_seq, name, data) VALUES(?1, ?2, ?3)",
    [S_ASSETS_CLEAR] = "DELETE FROM assets WHERE job_seq = ?1",
    [S_ASSETS] = "SELECT name, data FROM assets WHERE job_seq = ?1 ORDER BY name",
    [S_SAVEPOINT] = "SAVEPOINT op",
    [S_RELEASE] = "RELEASE op",
    [S_ROLLBACK_TO] = "ROLLBACK TO op",
    /* The batch's ends, prepared once: parsing them cost a tenth of a submit. */
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
};

static int exec_sql(sqlite3 *db, const char *sql, struct jr_err *e)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);

    if (rc == SQLITE_OK)
        return JR_OK;
    jr_err_set(e, JR_E_STORE, "%s", msg ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
    return JR_E_STORE;
}

static int read_version(sqlite3 *db, int *version, struct jr_err *e)
{
    sqlite3_stmt *s = NULL;
    int rc = JR_OK;

    *version = 0;
    if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'schema_version'",
                           -1, &s, NULL) != SQLITE_OK) {
        rc = jr_err_set(e, JR_E_STORE, "%s", sqlite3_errmsg(db));
        goto done;
    }
    if (sqlite3_step(s) == SQLITE_ROW)
        *version = atoi((const char *)sqlite3_column_text(s, 0));
done:
    sqlite3_finalize(s);
    return rc;
}

int jr_store_migrate(sqlite3 *db, struct jr_err *e)
{
    int n = (int)(sizeof migrations / sizeof migrations[0]);
    int version, rc;
    char sql[128];

    rc = exec_sql(db, "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY,"
                      " value TEXT NOT NULL)", e);
    if (rc)
        return rc;
    rc = read_version(db, &version, e);
    if (rc)
        return rc;
    if (version > n)
        return jr_err_set(e, JR_E_STORE, "database schema version %d is newer than"
                          " this jobrt (%d)", version, n);
    for (; version < n; version++) {
        rc = exec_sql(db, "BEGIN IMMEDIATE", e);
        if (rc)
            return rc;
        snprintf(sql, sizeof sql, "INSERT OR REPLACE INTO meta(key, value)"
                 " VALUES('schema_version', '%d')", version + 1);
        rc = exec_sql(db, migrations[version], e);
        if (!rc)
            rc = exec_sql(db, sql, e);
        if (!rc)
            rc = exec_sql(db, "COMMIT", e);
        if (rc) {
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return rc;
        }
    }
    return JR_OK;
}
