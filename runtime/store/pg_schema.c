/* The PostgreSQL backend's schema: the same numbered migrations as the
 * SQLite store (schema.c), written for PostgreSQL and applied in order at
 * open under an advisory lock (several instances may start at once), and
 * the SQL of every statement the backend prepares. */
#include <stdio.h>
#include <stdlib.h>

#include "store/pg.h"

static const char *const migrations[] = {
    /* 1: jobs, tasks, events, logs, assets. Events are numbered at commit
     * from event_counter, in commit order across instances (pg_conn.c). */
    "CREATE TABLE jobs("
    " seq BIGSERIAL PRIMARY KEY,"
    " id TEXT NOT NULL UNIQUE,"
    " surface TEXT NOT NULL DEFAULT '',"
    " owner TEXT NOT NULL DEFAULT '',"
    " state TEXT NOT NULL,"
    " priority BIGINT NOT NULL DEFAULT 0,"
    " max_parallelism BIGINT NOT NULL DEFAULT 0,"
    " created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,"
    " started_at BIGINT, ended_at BIGINT,"
    " error TEXT, attrs TEXT NOT NULL DEFAULT '{}');"
    "CREATE INDEX jobs_by_owner ON jobs(owner, seq);"
    "CREATE INDEX jobs_by_surface ON jobs(surface, seq);"
    "CREATE INDEX jobs_by_state ON jobs(state, seq);"
    "CREATE TABLE tasks("
    " job_seq BIGINT NOT NULL, idx BIGINT NOT NULL,"
    " alias TEXT NOT NULL, deps TEXT NOT NULL DEFAULT '',"
    " state TEXT NOT NULL, priority BIGINT NOT NULL DEFAULT 0,"
    " tolerable BIGINT NOT NULL DEFAULT 0, retries BIGINT NOT NULL DEFAULT 0,"
    " attempt BIGINT NOT NULL DEFAULT 0,"
    " cpu BIGINT NOT NULL DEFAULT 0, memory BIGINT NOT NULL DEFAULT 0,"
    " gpu BIGINT NOT NULL DEFAULT 0, disk BIGINT NOT NULL DEFAULT 0,"
    " timeout_ms BIGINT NOT NULL DEFAULT 0,"
    " argv BYTEA, env BYTEA, workdir TEXT,"
    " exit_code BIGINT, signal BIGINT, outcome TEXT, error TEXT,"
    " started_at BIGINT, ended_at BIGINT, pid BIGINT, pid_start BIGINT,"
    " spec TEXT NOT NULL DEFAULT '{}',"
    " PRIMARY KEY(job_seq, idx));"
    "CREATE INDEX tasks_running ON tasks(job_seq) WHERE state = 'running';"
    "CREATE TABLE events(seq BIGINT PRIMARY KEY, time BIGINT NOT NULL,"
    " job TEXT NOT NULL, task TEXT, type TEXT NOT NULL, state TEXT, message TEXT);"
    "CREATE TABLE event_counter(one BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),"
    " last BIGINT NOT NULL);"
    "INSERT INTO event_counter(last) VALUES(0);"
    "CREATE TABLE logs(id BIGSERIAL PRIMARY KEY, job_seq BIGINT NOT NULL,"
    " task TEXT, level BIGINT NOT NULL, time BIGINT NOT NULL,"
    " message TEXT NOT NULL, data TEXT);"
    "CREATE INDEX logs_by_job ON logs(job_seq, id);"
    "CREATE TABLE assets(job_seq BIGINT NOT NULL, name TEXT NOT NULL,"
    " data TEXT NOT NULL, PRIMARY KEY(job_seq, name));",
    /* 2: resource usage of a task's last attempt (NULL = not measured) */
    "ALTER TABLE tasks ADD COLUMN cpu_ms BIGINT;"
    "ALTER TABLE tasks ADD COLUMN max_rss_bytes BIGINT;"
    "ALTER TABLE tasks ADD COLUMN wall_ms BIGINT;",
    /* 3: one job's events in order */
    "CREATE INDEX events_by_job ON events(job, seq);",
    /* 4: task groups */
    "ALTER TABLE tasks ADD COLUMN task_group TEXT;",
    /* 5: how many bytes of a running attempt's output spool are log rows */
    "ALTER TABLE tasks ADD COLUMN log_offset BIGINT NOT NULL DEFAULT 0;",
    /* 6: a running attempt's record (runtime/exec/record.h) */
    "ALTER TABLE tasks ADD COLUMN run_record TEXT;",
    /* 7: several instances on one database: the instance driving a job
     * (NULL = none: free to claim, FOR UPDATE SKIP LOCKED on the partial
     * index of claimable jobs) and each instance's heartbeat (server
     * time, so instances' clocks do not matter) */
    "ALTER TABLE jobs ADD COLUMN instance TEXT;"
    "CREATE INDEX jobs_claimable ON jobs(priority DESC, seq)"
    " WHERE instance IS NULL AND state IN ('queued', 'running');"
    "CREATE INDEX jobs_by_instance ON jobs(instance) WHERE instance IS NOT NULL;"
    "CREATE TABLE instances(id TEXT PRIMARY KEY, address TEXT NOT NULL DEFAULT '',"
    " pid BIGINT NOT NULL DEFAULT 0, started_at BIGINT NOT NULL,"
    " heartbeat_at BIGINT NOT NULL);",
};

#define JOB_COLS "seq, id, surface, owner, state, priority, max_parallelism," \
    " created_at, updated_at, started_at, ended_at, error, attrs"
#define TASK_COLS "job_seq, idx, alias, deps, state, priority, tolerable, retries," \
    " attempt, cpu, memory, gpu, disk, timeout_ms, argv, env, workdir," \
    " exit_code, signal, outcome, error, started_at, ended_at, pid, pid_start, spec"
#define TASK_READ_COLS TASK_COLS ", cpu_ms, max_rss_bytes, wall_ms, task_group, log_offset," \
    " run_record"
#define COUNT_STATES " state IN ($3, $4, $5, $6, $7, $8, $9, $10, $11)"
#define LIST_TAIL " AND ($2::text IS NULL OR owner = $2) AND ($3::text IS NULL OR" \
    " surface = $3) AND ($4::text IS NULL OR state = $4) AND state != '" \
    JR_STORE_DELETING "' ORDER BY seq LIMIT $5"
#define DELETING_ROWS " FROM jobs WHERE state = '" JR_STORE_DELETING "'"
#define EVENT_COLS "seq, time, job, task, type, state, message"
/* the server's clock in ms: heartbeats compare times of one clock */
#define SERVER_MS "(extract(epoch from clock_timestamp()) * 1000)::bigint"

const char *const jr_pg_sql[P_COUNT] = {
    [P_JOB_INSERT] = "INSERT INTO jobs(id, surface, owner, state, priority,"
        " max_parallelism, created_at, updated_at, started_at, ended_at, error, attrs)"
        " VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        " ON CONFLICT (id) DO NOTHING RETURNING seq",
    /* seqs for jobs whose ids were generated here (no conflict possible) */
    [P_SEQ_RESERVE] = "SELECT nextval(pg_get_serial_sequence('jobs', 'seq'))"
        " FROM generate_series(1, $1)",
    [P_JOB_INSERT_SEQ] = "INSERT INTO jobs(seq, id, surface, owner, state, priority,"
        " max_parallelism, created_at, updated_at, started_at, ended_at, error, attrs)"
        " VALUES($13, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    [P_JOB_GET] = "SELECT " JOB_COLS " FROM jobs WHERE id = $1"
        " AND state != '" JR_STORE_DELETING "'",
    [P_JOB_GET_SEQ] = "SELECT " JOB_COLS " FROM jobs WHERE seq = $1"
        " AND state != '" JR_STORE_DELETING "'",
    [P_JOB_MARK_DELETING] = "UPDATE jobs SET state = '" JR_STORE_DELETING "',"
        " updated_at = $2 WHERE seq = $1",
    [P_JOBS_DELETING] = "SELECT " JOB_COLS DELETING_ROWS " ORDER BY seq",
    [P_JOB_SET_STATE] = "UPDATE jobs SET state = $2, updated_at = $3, started_at = $4,"
        " ended_at = $5, error = $6 WHERE seq = $1",
    [P_JOB_SET_ATTRS] = "UPDATE jobs SET priority = $2, max_parallelism = $3,"
        " attrs = coalesce($4, attrs), updated_at = $5 WHERE seq = $1",
    /* jsonb orders the keys of attrs anew; only approvals write it here */
    [P_JOB_SET_APPROVAL] = "UPDATE jobs SET attrs = jsonb_set(attrs::jsonb, '{approval}',"
        " jsonb_build_object('decision', $2::text, 'by', $3::text, 'reason', $4::text,"
        " 'at', $5::text))::text, updated_at = $6 WHERE seq = $1",
    [P_TASKS_RESET] = "UPDATE tasks SET state = 'pending', attempt = 0, exit_code = NULL,"
        " signal = NULL, outcome = NULL, error = NULL, started_at = NULL, ended_at = NULL,"
        " pid = NULL, pid_start = NULL, cpu_ms = NULL, max_rss_bytes = NULL, wall_ms = NULL"
        " WHERE job_seq = $1 AND ($2 = 0 OR state != 'succeeded')",
    [P_TASKS_COUNT] = "SELECT count(*) FROM tasks WHERE job_seq = $1",
    [P_JOB_DELETE] = "DELETE FROM jobs WHERE seq = $1",
    [P_JOB_DELETE_TASKS] = "DELETE FROM tasks WHERE job_seq = $1",
    [P_JOB_DELETE_LOGS] = "DELETE FROM logs WHERE job_seq = $1",
    [P_JOB_DELETE_ASSETS] = "DELETE FROM assets WHERE job_seq = $1",
    [P_JOBS_ALL] = "SELECT " JOB_COLS " FROM jobs WHERE seq > $1" LIST_TAIL,
    [P_JOBS_OWNER] = "SELECT " JOB_COLS " FROM jobs WHERE owner = $2 AND seq > $1" LIST_TAIL,
    [P_JOBS_SURFACE] = "SELECT " JOB_COLS " FROM jobs WHERE surface = $3 AND seq > $1"
        LIST_TAIL,
    [P_JOBS_STATE] = "SELECT " JOB_COLS " FROM jobs WHERE state = $4 AND seq > $1" LIST_TAIL,
    [P_JOBS_ACTIVE] = "SELECT " JOB_COLS " FROM jobs WHERE state IN ('queued', 'running')"
        " OR (seq IN (SELECT job_seq FROM tasks WHERE state = 'running')"
        " AND state != '" JR_STORE_DELETING "') ORDER BY seq",
    [P_JOBS_COUNT] = "SELECT (SELECT count(*) FROM jobs) - (SELECT count(*)"
        DELETING_ROWS ")",
    [P_COUNT_OWNER] = "SELECT count(*) FROM jobs WHERE owner = $1 AND ($2::text IS NULL"
        " OR surface = $2) AND state != '" JR_STORE_DELETING "'",
    [P_COUNT_SURFACE] = "SELECT count(*) FROM jobs WHERE $1::text IS NULL AND surface = $2"
        " AND state != '" JR_STORE_DELETING "'",
    [P_COUNT_OWNER_STATES] = "SELECT count(*) FROM jobs WHERE owner = $1 AND"
        COUNT_STATES " AND ($2::text IS NULL OR surface = $2)",
    [P_COUNT_STATES] = "SELECT count(*) FROM jobs WHERE $1::text IS NULL AND" COUNT_STATES
        " AND ($2::text IS NULL OR surface = $2)",
    [P_TASK_INSERT] = "INSERT INTO tasks(" TASK_COLS ", task_group) VALUES($1, $2, $3,"
        " $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,"
        " $21, $22, $23, $24, $25, $26, $27)",
    [P_TASK_SET_STATE] = "UPDATE tasks SET state = $3, attempt = $4, exit_code = $5,"
        " signal = $6, outcome = $7, error = $8, started_at = $9, ended_at = $10,"
        " pid = $11, pid_start = $12, run_record = $13,"
        " log_offset = CASE WHEN $3 = 'running' THEN 0 ELSE log_offset END"
        " WHERE job_seq = $1 AND idx = $2",
    [P_TASK_SET_LOG_OFFSET] = "UPDATE tasks SET log_offset = $3"
        " WHERE job_seq = $1 AND idx = $2",
    [P_TASK_SET_USAGE] = "UPDATE tasks SET cpu_ms = $3, max_rss_bytes = $4, wall_ms = $5"
        " WHERE job_seq = $1 AND idx = $2",
    [P_TASKS_EACH] = "SELECT " TASK_READ_COLS " FROM tasks WHERE job_seq = $1 ORDER BY idx",
    /* Taken just before COMMIT: the row lock orders commits that add
     * events, so seqs grow in commit order and a reader that has seen seq
     * n never finds a smaller one committed later. */
    [P_EVENT_COUNTER] = "WITH u AS (UPDATE event_counter SET last = last + $1"
        " RETURNING last) SELECT last, pg_notify('jobrt_events', last::text) FROM u",
    [P_EVENT_INSERT] = "INSERT INTO events(" EVENT_COLS ") VALUES((SELECT last FROM"
        " event_counter) - $1::bigint, $2, $3, $4, $5, $6, $7)",
    [P_EVENTS_AFTER] = "SELECT " EVENT_COLS " FROM events WHERE seq > $1"
        " ORDER BY seq LIMIT $2",
    [P_EVENTS_OF_JOB] = "SELECT " EVENT_COLS " FROM events WHERE job = $3 AND seq > $1"
        " ORDER BY seq LIMIT $2",
    [P_EVENTS_LAST] = "SELECT last FROM event_counter",
    [P_LOG_ADD] = "INSERT INTO logs(job_seq, task, level, time, message, data)"
        " VALUES($1, $2, $3, $4, $5, $6)",
    [P_LOGS] = "SELECT id, time, level, task, message, data FROM logs"
        " WHERE job_seq = $1 AND id > $2 AND level >= $3 ORDER BY id LIMIT $4",
    [P_ASSET_PUT] = "INSERT INTO assets(job_seq, name, data) VALUES($1, $2, $3)"
        " ON CONFLICT (job_seq, name) DO UPDATE SET data = EXCLUDED.data",
    [P_ASSETS_CLEAR] = "DELETE FROM assets WHERE job_seq = $1",
    [P_ASSETS] = "SELECT name, data FROM assets WHERE job_seq = $1 ORDER BY name",
    [P_BEGIN] = "BEGIN",
    [P_COMMIT] = "COMMIT",
    [P_ROLLBACK] = "ROLLBACK",
    [P_SAVEPOINT] = "SAVEPOINT op",
    [P_RELEASE] = "RELEASE SAVEPOINT op",
    [P_ROLLBACK_TO] = "ROLLBACK TO SAVEPOINT op",
    /* an instance recovers only the jobs it drives */
    [P_JOBS_ACTIVE_MINE] = "SELECT " JOB_COLS " FROM jobs WHERE instance = $1 AND"
        " (state IN ('queued', 'running') OR (seq IN (SELECT job_seq FROM tasks"
        " WHERE state = 'running') AND state != '" JR_STORE_DELETING "')) ORDER BY seq",
    [P_JOBS_DELETING_MINE] = "SELECT " JOB_COLS DELETING_ROWS " AND instance = $1"
        " ORDER BY seq",
    [P_INSTANCE_UP] = "INSERT INTO instances(id, address, pid, started_at, heartbeat_at)"
        " VALUES($1, $2, $3, " SERVER_MS ", " SERVER_MS ") ON CONFLICT (id) DO UPDATE SET"
        " address = EXCLUDED.address, pid = EXCLUDED.pid, started_at = EXCLUDED.started_at,"
        " heartbeat_at = EXCLUDED.heartbeat_at",
    [P_INSTANCE_BEAT] = "UPDATE instances SET heartbeat_at = " SERVER_MS " WHERE id = $1"
        " RETURNING id",
    [P_INSTANCES_DEAD] = "SELECT id FROM instances WHERE id != $1 AND heartbeat_at < "
        SERVER_MS " - $2::bigint ORDER BY id",
    [P_JOBS_CLAIM] = "UPDATE jobs SET instance = $1 WHERE seq IN (SELECT seq FROM jobs"
        " WHERE instance IS NULL AND state IN ('queued', 'running')"
        " ORDER BY priority DESC, seq LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING " JOB_COLS,
    [P_JOBS_ADOPT] = "UPDATE jobs SET instance = $2 WHERE seq IN (SELECT seq FROM jobs"
        " WHERE instance = $1 FOR UPDATE SKIP LOCKED) RETURNING " JOB_COLS,
    [P_INSTANCE_DROP] = "DELETE FROM instances WHERE id = $1",
    [P_JOB_SET_DRIVER] = "UPDATE jobs SET instance = $2 WHERE seq = $1",
    /* other instances write jobs too: counted from the table when asked */
    [P_JOBS_BY_STATE] = "SELECT surface, state, count(*) FROM jobs WHERE state != '"
        JR_STORE_DELETING "' GROUP BY surface, state ORDER BY surface, state",
};

static int exec_ok(PGconn *conn, const char *sql, struct jr_err *e)
{
    PGresult *r = PQexec(conn, sql);
    ExecStatusType s = PQresultStatus(r);
    int rc = JR_OK;

    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
        rc = jr_err_set(e, JR_E_STORE, "postgres: %s", PQerrorMessage(conn));
    PQclear(r);
    return rc;
}

/* Runs before pipeline mode, with the connection blocking. */
int jr_pg_migrate(PGconn *conn, struct jr_err *e)
{
    int n = (int)(sizeof migrations / sizeof migrations[0]);
    int version = 0, rc;
    char sql[160];
    PGresult *r;

    /* One migrating instance at a time; the lock ends with the transaction. */
    rc = exec_ok(conn, "BEGIN", e);
    if (!rc)
        rc = exec_ok(conn, "SELECT pg_advisory_xact_lock(7306011)", e);
    if (!rc)
        rc = exec_ok(conn, "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY,"
                           " value TEXT NOT NULL)", e);
    if (rc)
        goto done;
    r = PQexec(conn, "SELECT value FROM meta WHERE key = 'schema_version'");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        rc = jr_err_set(e, JR_E_STORE, "postgres: %s", PQerrorMessage(conn));
        PQclear(r);
        goto done;
    }
    if (PQntuples(r) > 0)
        version = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    if (version > n) {
        rc = jr_err_set(e, JR_E_STORE, "database schema version %d is newer than this"
                        " jobrt (%d)", version, n);
        goto done;
    }
    for (; version < n && !rc; version++) {
        snprintf(sql, sizeof sql, "INSERT INTO meta(key, value) VALUES('schema_version',"
                 " '%d') ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                 version + 1);
        rc = exec_ok(conn, migrations[version], e);
        if (!rc)
            rc = exec_ok(conn, sql, e);
    }
done:
    if (!rc)
        return exec_ok(conn, "COMMIT", e);
    PQclear(PQexec(conn, "ROLLBACK"));
    return rc;
}
