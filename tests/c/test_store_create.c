/* Unit tests of jr_store_job_create, the submit path's one store call (a
 * job, its tasks and its first event), on both backends: what it writes,
 * a taken id writing nothing, a failure after the job's row undoing the
 * whole batch, and its waiters running only once the batch is durable (a
 * second connection sees the job then, not before). */
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

/* A job of ntasks tasks ("t0", "t1", ...; each after the one before),
 * created in the open batch. same_idx gives every task index 0 (a
 * conflict inside the job's own rows). */
static int create(struct jr_store *st, const char *id, int fresh, size_t ntasks,
                  int same_idx, int64_t *job_seq, int64_t *event_seq, struct jr_err *e)
{
    struct jr_task_rec t[4];
    struct jr_job_rec j;
    struct jr_event_rec ev = { 0, 0, id, NULL, "job", "created", "submitted" };
    static const char *const aliases[] = { "t0", "t1", "t2", "t3" };
    static const char *const deps[] = { "", "0", "1", "2" };
    size_t i;
    int rc;

    memset(&j, 0, sizeof j);
    j.id = id;
    j.surface = "native";
    j.owner = "alice";
    j.state = "created";
    j.created_at = j.updated_at = jr_store_now_ms();
    j.attrs = "{\"title\":\"t\"}";
    j.fresh_id = fresh;
    memset(t, 0, sizeof t);
    for (i = 0; i < ntasks && i < 4; i++) {
        t[i].idx = same_idx ? 0 : (int64_t)i;
        t[i].alias = aliases[i];
        t[i].deps = deps[i];
        t[i].state = "pending";
        t[i].argv = "true";
        t[i].argv_len = 5;
        t[i].env = "";
        t[i].exit_code = -1;
        t[i].spec = "{}";
    }
    rc = jr_store_job_create(st, &j, t, ntasks, &ev, event_seq, e);
    for (i = 0; !rc && i < ntasks; i++)
        if (t[i].job_seq != j.seq)
            rc = -1;
    *job_seq = j.seq;
    return rc;
}

static int see_job(void *arg, const struct jr_job_rec *j)
{
    int *n = arg;

    (void)j;
    (*n)++;
    return 0;
}

static int exists(struct jr_store *st, const char *id)
{
    struct jr_err e = { 0, "" };
    int n = 0;

    return jr_store_job_get(st, id, see_job, &n, &e) == JR_OK && n == 1;
}

struct tasks {
    int n;
    char aliases[64];
};

static int see_task(void *arg, const struct jr_task_rec *t)
{
    struct tasks *x = arg;
    size_t off = strlen(x->aliases);

    snprintf(x->aliases + off, sizeof x->aliases - off, "%s%s:%s", off ? " " : "",
             t->alias, t->deps);
    x->n++;
    return 0;
}

/* The events of job id: how many, the last one's seq and message. */
struct evs {
    const char *job;
    int n;
    int64_t last;
    char message[32];
};

static int see_event(void *arg, const struct jr_event_rec *ev)
{
    struct evs *x = arg;

    if (strcmp(ev->job, x->job) != 0)
        return 0;
    x->n++;
    x->last = ev->seq;
    snprintf(x->message, sizeof x->message, "%s", ev->message ? ev->message : "");
    return 0;
}

static struct evs events_of(struct jr_store *st, const char *job)
{
    struct evs x = { job, 0, 0, "" };

    jr_store_events_after(st, 0, 1000, see_event, &x, NULL);
    return x;
}

TEST(create_writes_job_tasks_and_event)
{
    struct jr_store *st = open_store("create.db");
    struct jr_err e = { 0, "" };
    struct tasks tk = { 0, "" };
    struct evs ev;
    int64_t seq = 0, seq2 = 0, es = -1, es2 = -1;

    if (!st)
        return;
    CHECK_INT(create(st, "given", 0, 3, 0, &seq, &es, &e), 0);
    CHECK(seq > 0);
    /* a generated id: PostgreSQL inserts it without a round trip */
    CHECK_INT(create(st, "generated", 1, 1, 0, &seq2, &es2, &e), 0);
    CHECK(seq2 > seq);
    /* SQLite numbers the event as it is written; PostgreSQL at commit */
    if (store_pg)
        CHECK(es == 0 && es2 == 0);
    else
        CHECK(es > 0 && es2 == es + 1);
    CHECK_INT(jr_store_commit(st), 0);
    CHECK(exists(st, "given"));
    CHECK(exists(st, "generated"));
    CHECK_INT(jr_store_tasks_count(st, seq), 3);
    CHECK_INT(jr_store_tasks_each(st, seq, see_task, &tk, &e), 0);
    CHECK_STR(tk.aliases, "t0: t1:0 t2:1");
    CHECK_INT(jr_store_tasks_count(st, seq2), 1);
    ev = events_of(st, "given");
    CHECK_INT(ev.n, 1);
    CHECK_STR(ev.message, "submitted");
    if (!store_pg)
        CHECK_INT(ev.last, es);
    CHECK_INT(events_of(st, "generated").last, ev.last + 1);
    CHECK_INT(jr_store_events_last(st), ev.last + 1);
    jr_store_close(st);
}

TEST(create_with_a_taken_id_writes_nothing)
{
    struct jr_store *st = open_store("taken.db");
    struct jr_err e = { 0, "" };
    int64_t seq = 0, again = 0;

    if (!st)
        return;
    CHECK_INT(create(st, "dup", 0, 2, 0, &seq, NULL, &e), 0);
    CHECK_INT(jr_store_commit(st), 0);
    e.code = 0;
    CHECK_INT(create(st, "dup", 0, 3, 0, &again, NULL, &e), JR_E_EXISTS);
    CHECK(strstr(e.msg, "'dup'") != NULL);
    /* in the same batch too */
    CHECK_INT(create(st, "dup2", 0, 1, 0, &again, NULL, &e), 0);
    CHECK_INT(create(st, "dup2", 0, 1, 0, &again, NULL, &e), JR_E_EXISTS);
    /* the batch goes on and commits */
    CHECK_INT(create(st, "after", 0, 1, 0, &again, NULL, &e), 0);
    CHECK_INT(jr_store_commit(st), 0);
    CHECK_INT(jr_store_tasks_count(st, seq), 2);
    CHECK_INT(events_of(st, "dup").n, 1);
    CHECK_INT(events_of(st, "dup2").n, 1);
    CHECK(exists(st, "after"));
    CHECK_INT(jr_store_jobs_count(st), 3);
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

TEST(create_failing_after_the_row_undoes_the_batch)
{
    struct jr_store *st = open_store("doomed.db");
    struct waited w = { { 0 }, 0, -1 };
    struct jr_err e = { 0, "" };
    int64_t seq = 0;
    int rc;

    if (!st)
        return;
    CHECK_INT(create(st, "before", 0, 1, 0, &seq, NULL, &e), 0);
    CHECK_INT(jr_store_commit(st), 0);
    /* a write of another request in the same batch, then a job whose two
     * tasks take one index: its row is in, its second task fails (SQLite
     * at once; PostgreSQL when the server answers the batch) */
    CHECK_INT(create(st, "bystander", 0, 1, 0, &seq, NULL, &e), 0);
    w.w.cb = on_commit;
    jr_store_wait(st, &w.w);
    rc = create(st, "half", 0, 2, 1, &seq, NULL, &e);
    if (!store_pg)
        CHECK(rc != 0);
    CHECK_INT(jr_store_commit(st), JR_E_STORE);
    CHECK_INT(w.calls, 1);
    CHECK_INT(w.status, JR_E_STORE);
    jr_store_close(st);
    /* nothing of the batch was kept (read on a new connection: a lost
     * PostgreSQL connection comes back from the loop only) */
    st = open_store("doomed.db");
    CHECK(st != NULL);
    if (!st)
        return;
    CHECK(exists(st, "before"));
    CHECK(!exists(st, "half"));
    CHECK(!exists(st, "bystander"));
    CHECK_INT(jr_store_jobs_count(st), 1);
    CHECK_INT(events_of(st, "half").n, 0);
    CHECK_INT(events_of(st, "bystander").n, 0);
    /* and the store takes the next batch */
    CHECK_INT(create(st, "next", 0, 1, 0, &seq, NULL, &e), 0);
    CHECK_INT(jr_store_commit(st), 0);
    CHECK(exists(st, "next"));
    jr_store_close(st);
}

TEST(create_waiters_run_once_durable)
{
    struct jr_store *st = open_store("durable.db"), *other;
    struct waited w[20];
    struct jr_err e = { 0, "" };
    uv_loop_t loop;
    int64_t seq = 0;
    int i, ok = 1;

    if (!st)
        return;
    other = open_store("durable.db");
    CHECK(other != NULL);
    if (!other) {
        jr_store_close(st);
        return;
    }
    uv_loop_init(&loop);
    jr_store_attach(st, &loop);
    /* twenty submits in one iteration: one batch */
    for (i = 0; i < 20; i++) {
        char id[16];
        snprintf(id, sizeof id, "d%02d", i);
        ok &= create(st, id, i % 2, 2, 0, &seq, NULL, &e) == 0;
        w[i] = (struct waited){ { 0 }, 0, -1 };
        w[i].w.cb = on_commit;
        jr_store_wait(st, &w[i].w);
    }
    CHECK(ok);
    /* not yet durable: no waiter ran, another connection sees nothing */
    CHECK_INT(w[0].calls, 0);
    CHECK(!exists(other, "d00"));
    for (i = 0; i < 1000 && w[19].calls == 0; i++)
        uv_run(&loop, UV_RUN_ONCE);
    for (i = 0; i < 20; i++) {
        CHECK_INT(w[i].calls, 1);
        CHECK_INT(w[i].status, 0);
    }
    /* once a waiter ran, every connection sees the job */
    CHECK(exists(other, "d00"));
    CHECK(exists(other, "d19"));
    CHECK_INT(jr_store_jobs_count(other), 20);
    jr_store_close(other);
    jr_store_close(st);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&loop), 0);
}

static void suite(void)
{
    RUN(create_writes_job_tasks_and_event);
    RUN(create_with_a_taken_id_writes_nothing);
    RUN(create_failing_after_the_row_undoes_the_batch);
    RUN(create_waiters_run_once_durable);
}

int main(void)
{
    char cmd[600];

    snprintf(store_dir, sizeof store_dir, "/tmp/jobrt-test-create-%d", (int)getpid());
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", store_dir, store_dir);
    if (system(cmd) != 0)
        return 1;
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
    snprintf(cmd, sizeof cmd, "rm -rf %s", store_dir);
    if (system(cmd) != 0)
        return 1;
    return UNIT_DONE();
}
