/* Unit tests of the job store, run on both backends (SQLite, then a
 * throwaway PostgreSQL server): migrations and reopen, group commit and its
 * waiters, all-or-nothing operations, keyset listing with filters, events,
 * logs and assets. */
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

static int64_t add_job(struct jr_store *st, const char *id, const char *owner,
                       const char *state)
{
    struct jr_job_rec r;
    struct jr_err e = { 0, "" };

    memset(&r, 0, sizeof r);
    r.id = id;
    r.owner = owner;
    r.surface = "native";
    r.state = state;
    r.created_at = r.updated_at = jr_store_now_ms();
    r.attrs = "{\"title\":\"t\"}";
    if (jr_store_job_insert(st, &r, &e))
        return -1;
    return r.seq;
}

struct seen {
    char ids[64][32];
    int n;
    int64_t last;
};

static int see_job(void *arg, const struct jr_job_rec *j)
{
    struct seen *s = arg;

    if (s->n < 64)
        snprintf(s->ids[s->n++], 32, "%s", j->id);
    s->last = j->seq;
    return 0;
}

TEST(open_migrate_reopen)
{
    struct jr_store *st = open_store("a.db");
    struct seen s = { .n = 0 };
    struct jr_err e = { 0, "" };

    CHECK(st != NULL);
    if (!st)
        return;
    CHECK(add_job(st, "j1", "alice", "created") > 0);
    CHECK(jr_store_pending(st));
    CHECK_INT(jr_store_commit(st), 0);
    CHECK(!jr_store_pending(st));
    jr_store_close(st);
    st = open_store("a.db");
    CHECK(st != NULL);
    if (!st)
        return;
    CHECK_INT(jr_store_job_get(st, "j1", see_job, &s, &e), 0);
    CHECK_INT(s.n, 1);
    CHECK_INT(jr_store_job_get(st, "nope", see_job, &s, &e), JR_E_NOT_FOUND);
    jr_store_close(st);
}

TEST(uncommitted_batch_is_lost_on_crash_like_close)
{
    /* Writes that were never committed must not survive: jr_store_close
     * commits, so emulate a crash by rolling back through an op. */
    struct jr_store *st = open_store("b.db");
    struct seen s = { .n = 0 };
    struct jr_err e = { 0, "" };

    if (!st)
        return;
    CHECK_INT(jr_store_op_begin(st, &e), 0);
    CHECK(add_job(st, "gone", "", "created") > 0);
    CHECK_INT(jr_store_op_end(st, 0, &e), 0);
    CHECK_INT(jr_store_job_get(st, "gone", see_job, &s, &e), JR_E_NOT_FOUND);
    CHECK_INT(jr_store_op_begin(st, &e), 0);
    CHECK(add_job(st, "kept", "", "created") > 0);
    CHECK_INT(jr_store_op_end(st, 1, &e), 0);
    CHECK_INT(jr_store_commit(st), 0);
    CHECK_INT(jr_store_job_get(st, "kept", see_job, &s, &e), 0);
    jr_store_close(st);
}

TEST(duplicate_id)
{
    struct jr_store *st = open_store("c.db");
    struct jr_job_rec r;
    struct jr_err e = { 0, "" };

    if (!st)
        return;
    CHECK(add_job(st, "dup", "", "created") > 0);
    memset(&r, 0, sizeof r);
    r.id = "dup";
    r.state = "created";
    CHECK_INT(jr_store_job_insert(st, &r, &e), JR_E_EXISTS);
    CHECK(strstr(e.msg, "dup") != NULL);
    /* the batch is still usable */
    CHECK(add_job(st, "other", "", "created") > 0);
    CHECK_INT(jr_store_commit(st), 0);
    jr_store_close(st);
}

struct waited {
    struct jr_store_waiter w;
    int calls, status;
};

static void on_commit(struct jr_store_waiter *w, int status)
{
    struct waited *x = (struct waited *)w;

    x->calls++;
    x->status = status;
}

static void on_prepare_write(uv_timer_t *t)
{
    struct jr_store *st = t->data;

    add_job(st, "from-timer", "", "created");
}

TEST(group_commit_on_loop)
{
    struct jr_store *st = open_store("d.db");
    struct waited a = { { 0 }, 0, -1 }, b = { { 0 }, 0, -1 };
    uv_loop_t loop;
    uv_timer_t t;
    int i;

    if (!st)
        return;
    uv_loop_init(&loop);
    jr_store_attach(st, &loop);
    for (i = 0; i < 100; i++) {
        char id[16];
        snprintf(id, sizeof id, "g%d", i);
        add_job(st, id, "", "created");
    }
    a.w.cb = on_commit;
    b.w.cb = on_commit;
    jr_store_wait(st, &a.w);
    jr_store_wait(st, &b.w);
    jr_store_unwait(&b.w);
    CHECK(jr_store_pending(st));
    /* committed at the end of the iteration; its answer may take more
     * (PostgreSQL answers through the loop) */
    uv_run(&loop, UV_RUN_NOWAIT);
    for (i = 0; i < 1000 && jr_store_pending(st); i++)
        uv_run(&loop, UV_RUN_ONCE);
    CHECK(!jr_store_pending(st));
    CHECK_INT(a.calls, 1);
    CHECK_INT(a.status, 0);
    CHECK_INT(b.calls, 0);
    /* A write from a timer callback is committed in the same iteration
     * (by the prepare/check handles), without waiting for poll. */
    uv_timer_init(&loop, &t);
    t.data = st;
    uv_timer_start(&t, on_prepare_write, 0, 0);
    uv_run(&loop, UV_RUN_ONCE);
    for (i = 0; i < 1000 && jr_store_pending(st); i++)
        uv_run(&loop, UV_RUN_ONCE);
    CHECK(!jr_store_pending(st));
    CHECK_INT(jr_store_jobs_count(st), 101);
    uv_close((uv_handle_t *)&t, NULL);
    jr_store_close(st);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&loop), 0);
}

TEST(list_keyset_and_filters)
{
    struct jr_store *st = open_store("e.db");
    struct jr_job_filter f;
    struct seen s;
    struct jr_err e = { 0, "" };
    int i;

    if (!st)
        return;
    for (i = 0; i < 25; i++) {
        char id[16];
        snprintf(id, sizeof id, "l%02d", i);
        add_job(st, id, i % 2 ? "bob" : "alice", i % 5 ? "created" : "failed");
    }
    memset(&f, 0, sizeof f);
    f.limit = 10;
    memset(&s, 0, sizeof s);
    CHECK_INT(jr_store_jobs_list(st, &f, see_job, &s, &e), 0);
    CHECK_INT(s.n, 10);
    CHECK_STR(s.ids[0], "l00");
    f.after = s.last;
    memset(&s, 0, sizeof s);
    jr_store_jobs_list(st, &f, see_job, &s, &e);
    CHECK_STR(s.ids[0], "l10");
    /* owner filter with keyset */
    memset(&f, 0, sizeof f);
    f.owner = "bob";
    f.limit = 5;
    memset(&s, 0, sizeof s);
    jr_store_jobs_list(st, &f, see_job, &s, &e);
    CHECK_INT(s.n, 5);
    CHECK_STR(s.ids[0], "l01");
    CHECK_STR(s.ids[4], "l09");
    /* state + owner */
    memset(&f, 0, sizeof f);
    f.owner = "alice";
    f.state = "failed";
    memset(&s, 0, sizeof s);
    jr_store_jobs_list(st, &f, see_job, &s, &e);
    CHECK_INT(s.n, 3); /* l00 l10 l20 */
    memset(&f, 0, sizeof f);
    f.state = "failed";
    memset(&s, 0, sizeof s);
    jr_store_jobs_list(st, &f, see_job, &s, &e);
    CHECK_INT(s.n, 5);
    memset(&f, 0, sizeof f);
    f.surface = "other";
    memset(&s, 0, sizeof s);
    jr_store_jobs_list(st, &f, see_job, &s, &e);
    CHECK_INT(s.n, 0);
    jr_store_close(st);
}

struct evs {
    int n;
    int64_t last;
    char types[16][16];
};

static int see_event(void *arg, const struct jr_event_rec *ev)
{
    struct evs *x = arg;

    if (x->n < 16)
        snprintf(x->types[x->n], 16, "%s", ev->type);
    x->n++;
    x->last = ev->seq;
    return 0;
}

static int see_log(void *arg, const struct jr_log_rec *l)
{
    int *n = arg;

    (void)l;
    (*n)++;
    return 0;
}

static int see_asset(void *arg, const struct jr_asset_rec *a)
{
    int *n = arg;

    (*n) += strcmp(a->name, "out.tif") == 0;
    return 0;
}

TEST(events_logs_assets)
{
    struct jr_store *st = open_store("f.db");
    struct jr_event_rec ev = { 0, 0, "j", NULL, "job", "created", NULL };
    struct evs x = { 0, 0, { { 0 } } };
    struct jr_err e = { 0, "" };
    int64_t seq1 = 0, seq2 = 0, job;
    int n = 0;

    if (!st)
        return;
    job = add_job(st, "j", "", "created");
    CHECK_INT(jr_store_event_add(st, &ev, &seq1, &e), 0);
    ev.type = "task";
    CHECK_INT(jr_store_event_add(st, &ev, &seq2, &e), 0);
    /* SQLite numbers events as they are added; PostgreSQL at commit, in
     * commit order across instances */
    if (store_pg)
        CHECK(seq1 == 0 && seq2 == 0);
    CHECK_INT(jr_store_commit(st), 0);
    CHECK_INT(jr_store_events_after(st, 0, 10, see_event, &x, &e), 0);
    CHECK_INT(x.n, 2);
    if (store_pg) {
        seq2 = x.last;
        seq1 = seq2 - 1;
    }
    CHECK(seq2 == seq1 + 1);
    x.n = 0;
    CHECK_INT(jr_store_events_after(st, seq1, 10, see_event, &x, &e), 0);
    CHECK_INT(x.n, 1);
    CHECK_STR(x.types[0], "task");
    CHECK_INT(jr_store_events_last(st), seq2);
    /* One job's events: another job's event in between is left out. */
    ev.job = "k";
    CHECK_INT(jr_store_event_add(st, &ev, NULL, &e), 0);
    ev.job = "j";
    ev.type = "done";
    CHECK_INT(jr_store_event_add(st, &ev, NULL, &e), 0);
    CHECK_INT(jr_store_commit(st), 0);
    x.n = 0;
    CHECK_INT(jr_store_job_events(st, "j", seq1, 10, see_event, &x, &e), 0);
    CHECK_INT(x.n, 2);
    CHECK_STR(x.types[0], "task");
    CHECK_STR(x.types[1], "done");
    x.n = 0;
    CHECK_INT(jr_store_job_events(st, "none", 0, 10, see_event, &x, &e), 0);
    CHECK_INT(x.n, 0);
    jr_store_log_add(st, job, "a", JR_LOG_LEVEL_INFO, "hello", NULL, &e);
    jr_store_log_add(st, job, "a", JR_LOG_LEVEL_ERROR, "bad", "{\"x\":1}", &e);
    jr_store_log_add(st, job, NULL, JR_LOG_LEVEL_DEBUG, "dbg", NULL, &e);
    CHECK_INT(jr_store_logs(st, job, 0, JR_LOG_LEVEL_INFO, 10, see_log, &n, &e), 0);
    CHECK_INT(n, 2);
    n = 0;
    jr_store_logs(st, job, 0, 0, 1, see_log, &n, &e);
    CHECK_INT(n, 1);
    CHECK_INT(jr_store_asset_put(st, job, "out.tif", "{\"href\":\"x\"}", &e), 0);
    n = 0;
    jr_store_assets(st, job, see_asset, &n, &e);
    CHECK_INT(n, 1);
    CHECK_INT(jr_store_job_delete(st, job, &e), 0);
    n = 0;
    jr_store_assets(st, job, see_asset, &n, &e);
    jr_store_logs(st, job, 0, 0, 10, see_log, &n, &e);
    CHECK_INT(n, 0);
    CHECK_INT(jr_store_commit(st), 0);
    jr_store_close(st);
}

static int64_t count(struct jr_store *st, const char *owner, const char *surface,
                     const char *const *states, size_t n)
{
    struct jr_job_count f = { owner, surface, states, n };
    struct jr_err e = { 0, "" };
    int64_t c = -1;

    if (jr_store_jobs_count_where(st, &f, &c, &e))
        return -100 - e.code;
    return c;
}

TEST(count_by_owner_state_surface)
{
    struct jr_store *st = open_store("count.db");
    static const char *const run_q[] = { "running", "queued" };
    static const char *const ten[] = { "a", "b", "c", "d", "e", "f", "g", "h", "i", "j" };
    struct jr_job_count f = { NULL, NULL, ten, 10 };
    struct jr_err e = { 0, "" };
    int64_t n;

    if (!st)
        return;
    add_job(st, "c1", "alice", "running");
    add_job(st, "c2", "alice", "queued");
    add_job(st, "c3", "alice", "succeeded");
    add_job(st, "c4", "bob", "running");
    add_job(st, "c5", "", "created");
    CHECK_INT(count(st, NULL, NULL, NULL, 0), 5);
    CHECK_INT(count(st, "alice", NULL, NULL, 0), 3);
    CHECK_INT(count(st, "alice", NULL, run_q, 2), 2);
    CHECK_INT(count(st, "alice", NULL, run_q, 1), 1);
    CHECK_INT(count(st, NULL, NULL, run_q, 2), 3);
    CHECK_INT(count(st, "bob", "native", run_q, 2), 1);
    CHECK_INT(count(st, "bob", "openeo", run_q, 2), 0);
    CHECK_INT(count(st, NULL, "native", NULL, 0), 5);
    CHECK_INT(count(st, NULL, "openeo", NULL, 0), 0);
    CHECK_INT(count(st, "carol", NULL, NULL, 0), 0);
    CHECK_INT(jr_store_jobs_count_where(st, &f, &n, &e), JR_E_INVALID);
    CHECK_INT(jr_store_commit(st), 0);
    jr_store_close(st);
}

static void suite(void)
{
    RUN(open_migrate_reopen);
    RUN(uncommitted_batch_is_lost_on_crash_like_close);
    RUN(duplicate_id);
    RUN(group_commit_on_loop);
    RUN(list_keyset_and_filters);
    RUN(events_logs_assets);
    RUN(count_by_owner_state_surface);
}

int main(void)
{
    char cmd[300];
    int rc;

    snprintf(store_dir, sizeof store_dir, "/tmp/jr_store_XXXXXX");
    if (!mkdtemp(store_dir))
        return 2;
    suite();
    if (store_env_pg_up() == 0) {
        store_pg = 1;
        unit_label = "postgres";
        suite();
    } else {
        printf("not ok - %s: a PostgreSQL server for the suite\n", __FILE__);
        unit_tests_failed++;
    }
    store_env_pg_down();
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", store_dir);
    rc = system(cmd);
    (void)rc;
    return UNIT_DONE();
}
