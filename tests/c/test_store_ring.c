/* Unit tests of the store's ring of recent events (jr_store_events_recent):
 * it answers what a read of the events table answers (in order, with limits,
 * old positions from the database), holds only the newest ring's worth, and
 * forgets events a rollback undid; on both backends. */
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

static int64_t add_event(struct jr_store *st, const char *job, const char *message)
{
    struct jr_event_rec ev = { 0, 0, job, NULL, "job", "running", message };
    int64_t seq = 0;

    if (jr_store_event_add(st, &ev, &seq, NULL))
        return -1;
    return seq;
}

/* What a read delivered: "seq:job:message" joined by spaces. */
struct got {
    char text[8192];
    int n;
};

static int see(void *arg, const struct jr_event_rec *ev)
{
    struct got *g = arg;
    size_t off = strlen(g->text);

    snprintf(g->text + off, sizeof g->text - off, "%s%lld:%s:%s", off ? " " : "",
             (long long)ev->seq, ev->job, ev->message ? ev->message : "-");
    g->n++;
    return 0;
}

/* The ring's answer and the table's must be the same. */
static int same(struct jr_store *st, int64_t after, int64_t limit)
{
    static struct got a, b;

    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    if (jr_store_events_recent(st, after, limit, see, &a, NULL) ||
        jr_store_events_after(st, after, limit, see, &b, NULL))
        return 0;
    if (strcmp(a.text, b.text) != 0) {
        fprintf(stderr, "    after %lld limit %lld:\n    ring:  %.300s\n    table: %.300s\n",
                (long long)after, (long long)limit, a.text, b.text);
        return 0;
    }
    return 1;
}

static const char *recent(struct jr_store *st, int64_t after, int64_t limit)
{
    static struct got g;

    memset(&g, 0, sizeof g);
    jr_store_events_recent(st, after, limit, see, &g, NULL);
    return g.text;
}

TEST(ring_answers_as_the_table)
{
    struct jr_store *st = open_store("a.db");
    int64_t i, last = 0;

    if (!st)
        return;
    CHECK_STR(recent(st, 0, 10), "");
    CHECK_INT(jr_store_events_last(st), 0);
    for (i = 0; i < 10; i++)
        last = add_event(st, i % 2 ? "odd" : "even", i == 3 ? NULL : "m");
    /* uncommitted events are seen, as a direct read sees them (SQLite);
     * PostgreSQL numbers and shows them at commit */
    CHECK_INT(jr_store_events_last(st), store_pg ? 0 : last);
    CHECK(same(st, 0, -1));
    CHECK(same(st, 4, 3));
    CHECK(same(st, 9, 1));
    CHECK_STR(recent(st, last, 10), "");
    CHECK_INT(jr_store_commit(st), 0);
    CHECK_INT(jr_store_events_last(st), 10);
    CHECK_STR(recent(st, 2, 2), "3:even:m 4:odd:-");
    /* added one by one, read one by one, as a watcher does */
    for (i = 0; i < 5; i++) {
        add_event(st, "next", "n");
        if (store_pg)
            jr_store_commit(st);
        CHECK(same(st, jr_store_events_last(st) - 1, 1));
        CHECK(same(st, 0, -1));
    }
    jr_store_commit(st);
    jr_store_close(st);
    /* a reopened store starts from what is on disk */
    st = open_store("a.db");
    if (!st)
        return;
    CHECK_INT(jr_store_events_last(st), 15);
    CHECK(same(st, 0, -1));
    CHECK(same(st, 12, 2));
    jr_store_close(st);
}

TEST(ring_holds_the_newest_and_reads_older_from_the_table)
{
    struct jr_store *st = open_store("b.db");
    int64_t i, n = 10000;
    char msg[32];

    if (!st)
        return;
    for (i = 0; i < n; i++) {
        snprintf(msg, sizeof msg, "e%lld", (long long)i);
        add_event(st, "big", msg);
        if (i == 100)
            CHECK(same(st, 50, 10)); /* fills the ring early */
    }
    jr_store_commit(st);
    /* a gap larger than the ring: only the newest are held, older reads
     * still answer from the table */
    CHECK(same(st, n - 5, -1));
    CHECK(same(st, 50, 10));
    CHECK(same(st, 0, 3));
    CHECK(same(st, n - 4096 - 1, 3));
    CHECK(same(st, n - 4096, 3));
    CHECK(same(st, n - 5000, 2000));
    jr_store_close(st);
}

TEST(ring_forgets_what_a_rollback_undid)
{
    struct jr_store *st = open_store("c.db");
    struct jr_err e = { 0, "" };
    int64_t kept, undone, again;

    if (!st)
        return;
    kept = add_event(st, "j", "kept");
    jr_store_commit(st);
    if (store_pg) {
        /* numbered at commit: what the rollback undid never had a seq */
        CHECK_INT(jr_store_op_begin(st, &e), 0);
        add_event(st, "j", "undone");
        CHECK_INT(jr_store_op_end(st, 0, &e), 0);
        add_event(st, "j", "again");
        CHECK_INT(jr_store_commit(st), 0);
        CHECK_STR(recent(st, 0, 10), "1:j:kept 2:j:again");
        CHECK(same(st, 0, -1));
        jr_store_close(st);
        return;
    }
    CHECK_INT(jr_store_op_begin(st, &e), 0);
    undone = add_event(st, "j", "undone");
    /* a reader sees it while the operation is open */
    CHECK_STR(recent(st, kept, 10), "2:j:undone");
    CHECK_INT(jr_store_op_end(st, 0, &e), 0);
    CHECK_INT(jr_store_events_last(st), kept);
    CHECK_STR(recent(st, kept, 10), "");
    /* the seq is used again, by another event */
    again = add_event(st, "j", "again");
    CHECK_INT(again, undone);
    CHECK_STR(recent(st, kept, 10), "2:j:again");
    CHECK(same(st, 0, -1));
    jr_store_commit(st);
    CHECK(same(st, 0, -1));
    jr_store_close(st);
}

/* PostgreSQL: another instance's events committed after this store last
 * heard of the newest are read with it; the next fill must not hold them
 * twice (a watcher would see events at or before its position again). */
TEST(ring_holds_each_event_once_with_another_writer)
{
    struct jr_store *st, *other;

    if (!store_pg)
        return;
    st = open_store("d.db");
    other = open_store("d.db");
    CHECK(st && other);
    if (!st || !other) {
        jr_store_close(st);
        jr_store_close(other);
        return;
    }
    add_event(other, "x", "1");
    add_event(other, "x", "2");
    add_event(other, "x", "3");
    CHECK_INT(jr_store_commit(other), 0);
    /* a read on st takes in the notification: st sees up to 3 */
    for (int i = 0; i < 50 && jr_store_events_last(st) < 3; i++) {
        usleep(20000);
        jr_store_tasks_count(st, 1);
    }
    CHECK_INT(jr_store_events_last(st), 3);
    add_event(other, "x", "4");
    add_event(other, "x", "5");
    CHECK_INT(jr_store_commit(other), 0);
    /* the fill reads 1..5 while st has heard of 3 only */
    CHECK_STR(recent(st, 0, 3), "1:x:1 2:x:2 3:x:3");
    for (int i = 0; i < 50 && jr_store_events_last(st) < 5; i++) {
        usleep(20000);
        jr_store_tasks_count(st, 1);
    }
    CHECK_INT(jr_store_events_last(st), 5);
    CHECK_STR(recent(st, 3, 10), "4:x:4 5:x:5");
    CHECK_STR(recent(st, 0, 10), "1:x:1 2:x:2 3:x:3 4:x:4 5:x:5");
    add_event(other, "x", "6");
    CHECK_INT(jr_store_commit(other), 0);
    for (int i = 0; i < 50 && jr_store_events_last(st) < 6; i++) {
        usleep(20000);
        jr_store_tasks_count(st, 1);
    }
    CHECK_STR(recent(st, 4, 10), "5:x:5 6:x:6");
    CHECK(same(st, 0, -1));
    jr_store_close(other);
    jr_store_close(st);
}

static void suite(void)
{
    RUN(ring_answers_as_the_table);
    RUN(ring_holds_the_newest_and_reads_older_from_the_table);
    RUN(ring_forgets_what_a_rollback_undid);
    RUN(ring_holds_each_event_once_with_another_writer);
}

int main(void)
{
    char cmd[600];

    snprintf(store_dir, sizeof store_dir, "/tmp/jobrt-test-ring-%d", (int)getpid());
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
