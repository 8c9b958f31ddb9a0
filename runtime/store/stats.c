/* Figures read from the store for the metrics exposition: jobs counted by
 * surface and state, from the counts the triggers of migration 5 keep
 * (schema.c). A statement of its own (not the cached ones): it runs once
 * per scrape. */
#include "store/internal.h"

int jr_store_jobs_by_state(struct jr_store *st, jr_store_state_count_cb cb, void *arg,
                           struct jr_err *e)
{
    static const char sql[] = "SELECT surface, state, n FROM job_counts"
                              " WHERE n > 0 AND state <> '" JR_STORE_DELETING "'"
                              " ORDER BY surface, state";
    sqlite3_stmt *s = NULL;
    int rc;

    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
        return jr_store_fail(st, e, "count jobs by state");
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *surface = (const char *)sqlite3_column_text(s, 0);
        const char *state = (const char *)sqlite3_column_text(s, 1);
        if (cb(arg, surface ? surface : "", state ? state : "", sqlite3_column_int64(s, 2)))
            break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        rc = jr_store_fail(st, e, "count jobs by state");
        sqlite3_finalize(s);
        return rc;
    }
    sqlite3_finalize(s);
    return JR_OK;
}
