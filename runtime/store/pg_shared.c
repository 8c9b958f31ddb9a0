/* The PostgreSQL backend's part in sharing one database between instances:
 * registration and heartbeats (server time), finding silent instances,
 * claiming free jobs with FOR UPDATE SKIP LOCKED and adopting a silent
 * instance's jobs. The scheduler's side is runtime/sched/shared.c. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/pg.h"

int jr_pg_available(const struct jr_store *st)
{
    return ((const struct jr_pg *)st)->up;
}

int jr_pg_set_instance(struct jr_store *st, const char *id, struct jr_err *e)
{
    struct jr_pg *g = PG(st);
    char *copy = strdup(id);

    if (!copy)
        return jr_err_set(e, JR_E_SYSTEM, "out of memory");
    free(g->instance);
    g->instance = copy;
    return JR_OK;
}

static int need_instance(struct jr_pg *g, struct jr_err *e)
{
    return g->instance ? JR_OK : jr_err_set(e, JR_E_INVALID, "no instance id set");
}

int jr_pg_instance_up(struct jr_store *st, const char *address, struct jr_err *e)
{
    struct jr_pg *g = PG(st);
    struct pg_params p = { 0 };
    PGresult *r;
    int rc = need_instance(g, e);

    if (rc)
        return rc;
    jr_pg_p_text(&p, g->instance);
    jr_pg_p_text(&p, address ? address : "");
    jr_pg_p_int(&p, (int64_t)getpid());
    /* in the batch: an answer means it is written, commit follows */
    rc = jr_pg_query(g, P_INSTANCE_UP, &p, 1, &r, e);
    PQclear(r);
    return rc;
}

int jr_pg_instance_beat(struct jr_store *st, int *alive, struct jr_err *e)
{
    struct jr_pg *g = PG(st);
    struct pg_params p = { 0 };
    PGresult *r;
    int rc = need_instance(g, e);

    *alive = 1;
    if (rc)
        return rc;
    jr_pg_p_text(&p, g->instance);
    rc = jr_pg_query(g, P_INSTANCE_BEAT, &p, 1, &r, e);
    if (!rc)
        *alive = PQntuples(r) > 0;
    PQclear(r);
    return rc;
}

int jr_pg_instances_dead(struct jr_store *st, int64_t ms,
                         int (*cb)(void *arg, const char *id), void *arg,
                         struct jr_err *e)
{
    struct jr_pg *g = PG(st);
    struct pg_params p = { 0 };
    PGresult *r;
    int i, n, rc = need_instance(g, e);

    if (rc)
        return rc;
    jr_pg_p_text(&p, g->instance);
    jr_pg_p_int(&p, ms);
    rc = jr_pg_query(g, P_INSTANCES_DEAD, &p, 0, &r, e);
    if (rc)
        return rc;
    n = PQntuples(r);
    for (i = 0; i < n; i++)
        if (cb(arg, PQgetvalue(r, i, 0)))
            break;
    PQclear(r);
    return JR_OK;
}

int jr_pg_jobs_claim(struct jr_store *st, int64_t n, jr_store_job_cb cb, void *arg,
                     struct jr_err *e)
{
    struct jr_pg *g = PG(st);
    struct pg_params p = { 0 };
    PGresult *r;
    int rc = need_instance(g, e);

    if (rc || n <= 0)
        return rc;
    jr_pg_p_text(&p, g->instance);
    jr_pg_p_int(&p, n);
    rc = jr_pg_query(g, P_JOBS_CLAIM, &p, 1, &r, e);
    return rc ? rc : jr_pg_each_job(r, cb, arg);
}

int jr_pg_jobs_adopt(struct jr_store *st, const char *dead, jr_store_job_cb cb,
                     void *arg, struct jr_err *e)
{
    struct jr_pg *g = PG(st);
    struct pg_params p = { 0 };
    PGresult *r;
    int rc = need_instance(g, e);

    if (rc)
        return rc;
    jr_pg_p_text(&p, dead);
    jr_pg_p_text(&p, g->instance);
    rc = jr_pg_query(g, P_JOBS_ADOPT, &p, 1, &r, e);
    if (rc)
        return rc;
    rc = jr_pg_each_job(r, cb, arg);
    memset(&p, 0, sizeof p);
    jr_pg_p_text(&p, dead);
    return rc ? rc : jr_pg_write(g, P_INSTANCE_DROP, &p, e);
}

int jr_pg_job_set_driver(struct jr_store *st, int64_t seq, int mine, struct jr_err *e)
{
    struct jr_pg *g = PG(st);
    struct pg_params p = { 0 };

    jr_pg_p_int(&p, seq);
    jr_pg_p_text(&p, mine ? g->instance : NULL);
    return jr_pg_write(g, P_JOB_SET_DRIVER, &p, e);
}
