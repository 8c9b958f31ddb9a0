/* Jobs counted by surface and state for the metrics exposition: counted
 * once from the table when first asked, then kept in memory as jobs are
 * inserted, change state or go (jobs.c calls in here), so a scrape costs a
 * few entries, not a scan. An undone write (a rolled back operation or
 * commit) drops the counts, and the next read counts again. Until the
 * first read nothing is kept, so a store nobody scrapes pays nothing. */
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"

struct count {
    char *surface, *state;
    int64_t n;
};

struct jr_store_counts {
    struct count *v;
    size_t n, cap;
    sqlite3_stmt *old;           /* a job's surface and state, by seq */
};

void jr_store_counts_forget(struct jr_store *st)
{
    struct jr_store_counts *c = SQ(st)->counts;

    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++) {
        free(c->v[i].surface);
        free(c->v[i].state);
    }
    free(c->v);
    sqlite3_finalize(c->old);
    free(c);
    SQ(st)->counts = NULL;
}

/* Add delta to (surface, state); 0, or -1 when out of memory. */
static int add(struct jr_store_counts *c, const char *surface, const char *state, int64_t delta)
{
    struct count *x;

    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->v[i].state, state) == 0 && strcmp(c->v[i].surface, surface) == 0) {
            c->v[i].n += delta;
            return 0;
        }
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 32;
        if (!(x = realloc(c->v, cap * sizeof *x)))
            return -1;
        c->v = x;
        c->cap = cap;
    }
    x = &c->v[c->n];
    x->surface = strdup(surface);
    x->state = strdup(state);
    x->n = delta;
    if (!x->surface || !x->state) {
        free(x->surface);
        free(x->state);
        return -1;
    }
    c->n++;
    return 0;
}

void jr_store_counts_add(struct jr_store *st, const char *surface, const char *state,
                         int64_t delta)
{
    if (SQ(st)->counts && add(SQ(st)->counts, surface ? surface : "", state ? state : "", delta))
        jr_store_counts_forget(st);
}

void jr_store_counts_move(struct jr_store *st, int64_t seq, const char *state)
{
    struct jr_store_counts *c = SQ(st)->counts;
    int rc;

    if (!c)
        return;
    if (!c->old && sqlite3_prepare_v2(SQ(st)->db, "SELECT surface, state FROM jobs WHERE seq = ?1",
                                      -1, &c->old, NULL) != SQLITE_OK) {
        jr_store_counts_forget(st);
        return;
    }
    sqlite3_bind_int64(c->old, 1, seq);
    rc = sqlite3_step(c->old);
    if (rc == SQLITE_ROW) {
        const char *surface = (const char *)sqlite3_column_text(c->old, 0);
        const char *old = (const char *)sqlite3_column_text(c->old, 1);
        surface = surface ? surface : "";
        if (add(c, surface, old ? old : "", -1) || (state && add(c, surface, state, 1)))
            rc = SQLITE_NOMEM;
    }
    sqlite3_reset(c->old);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        jr_store_counts_forget(st);
}

/* Count every job once (the slow path, at the first read). */
static int count_all(struct jr_store *st, struct jr_err *e)
{
    static const char sql[] = "SELECT surface, state, count(*) FROM jobs GROUP BY surface, state";
    struct jr_store_counts *c = calloc(1, sizeof *c);
    sqlite3_stmt *s = NULL;
    int rc;

    if (!c)
        return jr_err_set(e, JR_E_SYSTEM, "out of memory");
    SQ(st)->counts = c;
    if (sqlite3_prepare_v2(SQ(st)->db, sql, -1, &s, NULL) != SQLITE_OK) {
        rc = jr_store_fail(st, e, "count jobs by state");
        jr_store_counts_forget(st);
        return rc;
    }
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *surface = (const char *)sqlite3_column_text(s, 0);
        const char *state = (const char *)sqlite3_column_text(s, 1);
        if (add(c, surface ? surface : "", state ? state : "", sqlite3_column_int64(s, 2))) {
            rc = SQLITE_NOMEM;
            break;
        }
    }
    if (rc == SQLITE_DONE) {
        sqlite3_finalize(s);
        return JR_OK;
    }
    rc = rc == SQLITE_NOMEM ? jr_err_set(e, JR_E_SYSTEM, "out of memory")
                            : jr_store_fail(st, e, "count jobs by state");
    sqlite3_finalize(s);
    jr_store_counts_forget(st);
    return rc;
}

static int by_surface_state(const void *a, const void *b)
{
    const struct count *x = *(struct count *const *)a, *y = *(struct count *const *)b;
    int r = strcmp(x->surface, y->surface);

    return r ? r : strcmp(x->state, y->state);
}

int jr_sqlite_jobs_by_state(struct jr_store *st, jr_store_state_count_cb cb, void *arg,
                            struct jr_err *e)
{
    struct count **order;
    size_t i, k = 0;
    int rc;

    if (!SQ(st)->counts && (rc = count_all(st, e)))
        return rc;
    if (!(order = malloc((SQ(st)->counts->n + 1) * sizeof *order)))
        return jr_err_set(e, JR_E_SYSTEM, "out of memory");
    for (i = 0; i < SQ(st)->counts->n; i++)
        if (SQ(st)->counts->v[i].n > 0 && strcmp(SQ(st)->counts->v[i].state, JR_STORE_DELETING) != 0)
            order[k++] = &SQ(st)->counts->v[i];
    qsort(order, k, sizeof *order, by_surface_state);
    for (i = 0; i < k; i++)
        if (cb(arg, order[i]->surface, order[i]->state, order[i]->n))
            break;
    free(order);
    return JR_OK;
}
