/* The store tests run on both backends: store_env_target() names the store
 * a test opens (a file in a temp dir for SQLite; a database of its own on a
 * throwaway PostgreSQL server for PostgreSQL, made empty at its first use).
 * store_env_pg_up() starts that server in a temp dir on a free loopback
 * port (tools/pg.sh; run from the repository root, as tests/run does) and
 * store_env_pg_down() stops it by its pid. */
#ifndef JR_TEST_STORE_ENV_H
#define JR_TEST_STORE_ENV_H

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char store_dir[256];
static int store_pg;             /* the suite runs on PostgreSQL now */
static char store_pg_dir[256];
static char store_pg_url[256];   /* the server's own database */
static char store_pg_made[64][40];
static int store_pg_nmade;

static int store_env_pg_up(void)
{
    char cmd[600];
    FILE *f;

    snprintf(store_pg_dir, sizeof store_pg_dir, "/tmp/jobrt-test-pg-XXXXXX");
    if (!mkdtemp(store_pg_dir))
        return -1;
    snprintf(cmd, sizeof cmd, "tools/pg.sh up %s", store_pg_dir);
    f = popen(cmd, "r");
    if (!f)
        return -1;
    if (!fgets(store_pg_url, sizeof store_pg_url, f))
        store_pg_url[0] = 0;
    pclose(f);
    store_pg_url[strcspn(store_pg_url, "\n")] = 0;
    return store_pg_url[0] ? 0 : -1;
}

static void store_env_pg_down(void)
{
    char cmd[600];

    if (!store_pg_dir[0])
        return;
    snprintf(cmd, sizeof cmd, "tools/pg.sh down %s && rm -rf %s", store_pg_dir, store_pg_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not stop the server in %s\n", store_pg_dir);
}

/* The URL of database db on the test server. */
static void store_env_pg_url(const char *db, char *out, size_t n)
{
    const char *slash = strrchr(store_pg_url, '/');
    int base = slash ? (int)(slash - store_pg_url) : (int)strlen(store_pg_url);

    snprintf(out, n, "%.*s/%s", base, store_pg_url, db);
}

static void store_env_quiet(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

/* Run sql on the server's own database; 0 when it worked. */
static int store_env_pg_exec(const char *sql)
{
    PGconn *c = PQconnectdb(store_pg_url);
    PGresult *r;
    int rc = -1;

    if (PQstatus(c) == CONNECTION_OK) {
        PQsetNoticeProcessor(c, store_env_quiet, NULL);
        r = PQexec(c, sql);
        rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -1;
        if (rc)
            fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
        PQclear(r);
    }
    PQfinish(c);
    return rc;
}

/* Where the store called name lives on the backend under test. */
static void store_env_target(const char *name, char *out, size_t n)
{
    char db[40], sql[128];
    size_t i, k = 0;
    int made = 0;

    if (!store_pg) {
        snprintf(out, n, "%s/%s", store_dir, name);
        return;
    }
    k = (size_t)snprintf(db, sizeof db, "t_");
    for (i = 0; name[i] && k < sizeof db - 1; i++)
        db[k++] = (name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9')
                  ? name[i] : '_';
    db[k] = 0;
    for (i = 0; i < (size_t)store_pg_nmade; i++)
        made |= strcmp(store_pg_made[i], db) == 0;
    if (!made && store_pg_nmade < 64) {
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", db);
        store_env_pg_exec(sql);
        snprintf(sql, sizeof sql, "CREATE DATABASE %s", db);
        store_env_pg_exec(sql);
        snprintf(store_pg_made[store_pg_nmade++], sizeof store_pg_made[0], "%s", db);
    }
    store_env_pg_url(db, out, n);
}

#endif
