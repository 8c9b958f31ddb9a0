/* The PostgreSQL backend's connection: one libpq connection in nonblocking
 * pipeline mode, its socket polled on the loop. Writes are sent without
 * waiting for their answers; the open batch's COMMIT is sent once per loop
 * iteration and its waiters run when the server has answered it (so a 2xx
 * follows a durable commit, and concurrent requests share one commit).
 * Reads wait for their rows, bounded by the store's timeout. A lost
 * connection fails the batches in flight (their waiters get JR_E_STORE,
 * nothing of them is kept) and is made again with backoff; until then
 * every call fails at once with JR_E_STORE, which surfaces answer 503. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "store/pg.h"



int64_t jr_pg_mono_ms(void)
{
    return (int64_t)(uv_hrtime() / 1000000);
}

int jr_pg_unavailable(struct jr_pg *g, struct jr_err *e)
{
    return jr_err_set(e, JR_E_STORE, "the job store is unavailable (PostgreSQL: %s);"
                      " reconnecting", g->down_msg[0] ? g->down_msg : "not connected");
}

/* ---- the queue of expected results ---- */

static struct pg_item *push_item(struct jr_pg *g, enum pg_kind kind, struct pg_batch *b)
{
    struct pg_item *it = calloc(1, sizeof *it);

    if (!it)
        return NULL;
    it->kind = kind;
    it->id = ++g->next_id;
    it->batch = b;
    if (g->tail)
        g->tail->next = it;
    else
        g->head = it;
    g->tail = it;
    return it;
}

static struct pg_item *pop_item(struct jr_pg *g)
{
    struct pg_item *it = g->head;

    if (it) {
        g->head = it->next;
        if (!g->head)
            g->tail = NULL;
    }
    g->got_result = 0;
    return it;
}

static void batch_done(struct jr_pg *g, struct pg_batch *b, int status)
{
    if (b->done)
        return;
    b->done = 1;
    b->status = status;
    if (g->attached)
        uv_idle_start(&g->idle, jr_pg_on_idle);
}

static void free_events(struct pg_batch *b, size_t from)
{
    while (b->nevents > from)
        free(b->events[--b->nevents]);
}

/* ---- losing and making the connection ---- */

void jr_pg_set_down_msg(struct jr_pg *g, const char *why)
{
    char *p;
    size_t n;

    snprintf(g->down_msg, sizeof g->down_msg, "%s", why && *why ? why : "connection lost");
    for (p = g->down_msg; *p; p++)
        if (*p == '\n' || *p == '\t' || *p == '\r')
            *p = ' ';
    n = strlen(g->down_msg);
    while (n && g->down_msg[n - 1] == ' ')
        g->down_msg[--n] = 0;
}

void jr_pg_drop_items(struct jr_pg *g)
{
    struct pg_item *it;

    while ((it = pop_item(g))) {
        PQclear(it->res);
        free(it);
    }
}

void jr_pg_lost(struct jr_pg *g, const char *why)
{
    struct pg_batch *b;

    if (!g->conn)
        return;
    jr_pg_set_down_msg(g, why);
    jr_pg_poll_stop(g);
    PQfinish(g->conn);
    g->conn = NULL;
    g->up = 0;
    jr_pg_drop_items(g);
    for (b = g->flying; b; b = b->next)
        batch_done(g, b, JR_E_STORE);
    if (g->open)
        batch_done(g, g->open, JR_E_STORE);
    g->was_down = 1;
    g->backoff_ms = 100;
    g->next_try_ms = jr_pg_mono_ms() + g->backoff_ms;
    if (g->attached)
        uv_idle_start(&g->idle, jr_pg_on_idle);
}

/* libpq's notices (a server shutting down, ...) are not ours to print:
 * a lost connection is reported through the calls that fail. */
static void quiet(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

static int exec_plain(PGconn *c, const char *sql, struct jr_err *e)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType s = PQresultStatus(r);

    PQclear(r);
    if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK)
        return JR_OK;
    return jr_err_set(e, JR_E_STORE, "postgres: %s", PQerrorMessage(c));
}

/* Connect, migrate on the first connection, LISTEN, read the newest event,
 * then switch to nonblocking pipeline mode on the loop. Blocks for at most
 * the URL's connect_timeout (2 s unless it says). */
int jr_pg_connect(struct jr_pg *g, struct jr_err *e)
{
    static const char *const keys[] = { "dbname", "connect_timeout", "application_name",
                                        "options", NULL };
    const char *vals[] = { g->url, "2", "jobrt", "-c client_min_messages=warning", NULL };
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    PGresult *r;
    int rc;

    if (!c)
        return jr_err_set(e, JR_E_STORE, "postgres: out of memory");
    if (PQstatus(c) != CONNECTION_OK) {
        rc = jr_err_set(e, JR_E_STORE, "postgres: %s", PQerrorMessage(c));
        PQfinish(c);
        return rc;
    }
    PQsetNoticeProcessor(c, quiet, NULL);
    rc = g->migrated ? JR_OK : jr_pg_migrate(c, e);
    if (!rc)
        rc = exec_plain(c, "LISTEN jobrt_events", e);
    if (!rc) {
        r = PQexec(c, jr_pg_sql[P_EVENTS_LAST]);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
            int64_t last = jr_pg_int(r, 0, 0);
            if (last > g->base.event_last)
                g->base.event_last = last;
        } else {
            rc = jr_err_set(e, JR_E_STORE, "postgres: %s", PQerrorMessage(c));
        }
        PQclear(r);
    }
    if (!rc && (PQsetnonblocking(c, 1) != 0 || PQenterPipelineMode(c) != 1))
        rc = jr_err_set(e, JR_E_STORE, "postgres: cannot enter pipeline mode: %s",
                        PQerrorMessage(c));
    if (rc) {
        PQfinish(c);
        return rc;
    }
    g->migrated = 1;
    g->conn = c;
    g->up = 1;
    g->down_msg[0] = 0;
    memset(g->prepared, 0, sizeof g->prepared);
    if (g->attached && jr_pg_poll_start(g)) {
        g->conn = NULL;
        g->up = 0;
        PQfinish(c);
        return jr_err_set(e, JR_E_STORE, "postgres: cannot poll the connection");
    }
    return JR_OK;
}

/* ---- sending ---- */

static int flush_out(struct jr_pg *g)
{
    int r = PQflush(g->conn);

    if (r < 0) {
        jr_pg_lost(g, PQerrorMessage(g->conn));
        return -1;
    }
    if (r > 0)
        jr_pg_update_poll(g);
    return 0;
}

static int send_stmt(struct jr_pg *g, enum pg_stmt s, const struct pg_params *p,
                     enum pg_kind kind, struct pg_batch *b, struct pg_item **out)
{
    char name[16];
    struct pg_item *it;

    snprintf(name, sizeof name, "j%d", (int)s);
    if (!g->prepared[s]) {
        if (!PQsendPrepare(g->conn, name, jr_pg_sql[s], 0, NULL) ||
            !push_item(g, K_PREPARE, NULL)) {
            jr_pg_lost(g, PQerrorMessage(g->conn));
            return -1;
        }
        g->prepared[s] = 1;
    }
    if (!PQsendQueryPrepared(g->conn, name, p ? p->n : 0, p ? p->v : NULL,
                             p ? p->len : NULL, p ? p->fmt : NULL, 0) ||
        !(it = push_item(g, kind, b))) {
        jr_pg_lost(g, PQerrorMessage(g->conn));
        return -1;
    }
    if (out)
        *out = it;
    return 0;
}

/* The open batch, BEGIN sent; NULL with e filled when it cannot be. */
static struct pg_batch *open_batch(struct jr_pg *g, struct jr_err *e)
{
    struct pg_batch *b = g->open;

    if (b) {
        if (b->done) {
            jr_pg_unavailable(g, e);
            return NULL;
        }
        return b;
    }
    if (!g->up) {
        jr_pg_unavailable(g, e);
        return NULL;
    }
    b = calloc(1, sizeof *b);
    if (!b) {
        jr_err_set(e, JR_E_SYSTEM, "out of memory");
        return NULL;
    }
    b->waiters.next = b->waiters.prev = &b->waiters;
    if (send_stmt(g, P_BEGIN, NULL, K_WRITE, b, NULL)) {
        free(b);
        jr_pg_unavailable(g, e);
        return NULL;
    }
    g->open = b;
    if (g->attached)
        uv_idle_start(&g->idle, jr_pg_on_idle);
    return b;
}

int jr_pg_write(struct jr_pg *g, enum pg_stmt s, const struct pg_params *p,
                struct jr_err *e)
{
    struct pg_batch *b = open_batch(g, e);

    if (!b)
        return e && e->code ? e->code : JR_E_STORE;
    /* sent with the batch's COMMIT (or a read's flush), not one by one */
    if (send_stmt(g, s, p, K_WRITE, b, NULL))
        return jr_pg_unavailable(g, e);
    b->writes++;
    return JR_OK;
}

int jr_pg_event(struct jr_pg *g, const struct jr_event_rec *ev, struct jr_err *e)
{
    struct pg_batch *b = open_batch(g, e);
    const char *strs[5] = { ev->job, ev->task, ev->type, ev->state, ev->message };
    const char **dst[5];
    struct pg_event *x;
    size_t size = sizeof *x, i;
    char *p;

    if (!b)
        return e && e->code ? e->code : JR_E_STORE;
    for (i = 0; i < 5; i++)
        size += strs[i] ? strlen(strs[i]) + 1 : 0;
    if (b->nevents == b->cap_events) {
        size_t cap = b->cap_events ? b->cap_events * 2 : 16;
        struct pg_event **v = realloc(b->events, cap * sizeof *v);
        if (!v)
            return jr_err_set(e, JR_E_SYSTEM, "out of memory");
        b->events = v;
        b->cap_events = cap;
    }
    if (!(x = malloc(size)))
        return jr_err_set(e, JR_E_SYSTEM, "out of memory");
    x->time = ev->time ? ev->time : jr_store_now_ms();
    dst[0] = &x->job;
    dst[1] = &x->task;
    dst[2] = &x->type;
    dst[3] = &x->state;
    dst[4] = &x->message;
    p = (char *)(x + 1);
    for (i = 0; i < 5; i++) {
        *dst[i] = NULL;
        if (strs[i]) {
            size_t n = strlen(strs[i]) + 1;
            memcpy(p, strs[i], n);
            *dst[i] = p;
            p += n;
        }
    }
    b->events[b->nevents++] = x;
    return JR_OK;
}

/* ---- answers ---- */

static void take_notifies(struct jr_pg *g)
{
    PGnotify *n;
    int news = 0;

    while (g->conn && (n = PQnotifies(g->conn))) {
        int64_t last = n->extra ? strtoll(n->extra, NULL, 10) : 0;
        if (last > g->base.event_last) {
            g->base.event_last = last;
            news = 1;
        }
        PQfreemem(n);
    }
    if (news) {
        g->remote_news = 1;
        if (g->attached)
            uv_idle_start(&g->idle, jr_pg_on_idle);
    }
}

/* Wait (poll) for the socket until deadline, sending what is buffered and
 * reading what came. -1 when the connection was lost or timed out. */
static int wait_io(struct jr_pg *g, int64_t deadline)
{
    struct pollfd pfd;
    int64_t left = deadline - jr_pg_mono_ms();
    int r, more;

    if (left <= 0) {
        jr_pg_lost(g, "the server did not answer in time");
        return -1;
    }
    more = PQflush(g->conn);
    if (more < 0) {
        jr_pg_lost(g, PQerrorMessage(g->conn));
        return -1;
    }
    pfd.fd = PQsocket(g->conn);
    pfd.events = (short)(POLLIN | (more ? POLLOUT : 0));
    pfd.revents = 0;
    r = poll(&pfd, 1, (int)(left > 1000 ? 1000 : left));
    if (r < 0)
        return 0;
    if (r > 0 && (pfd.revents & (POLLIN | POLLERR | POLLHUP))) {
        if (!PQconsumeInput(g->conn)) {
            jr_pg_lost(g, PQerrorMessage(g->conn));
            return -1;
        }
        take_notifies(g);
    }
    return 0;
}

static void item_result(struct jr_pg *g, struct pg_item *it, PGresult *res)
{
    ExecStatusType s = PQresultStatus(res);

    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        it->failed = 1;
        snprintf(g->down_msg, sizeof g->down_msg, "%s", PQresultErrorMessage(res));
        PQclear(res);
        return;
    }
    switch (it->kind) {
    case K_READ:
        if (!it->res) {
            it->res = res;
            return;
        }
        break;
    case K_COUNTER:
        if (PQntuples(res) == 1)
            it->batch->event_last = jr_pg_int(res, 0, 0);
        break;
    case K_POLL:
        if (PQntuples(res) == 1) {
            int64_t last = jr_pg_int(res, 0, 0);
            if (last > g->base.event_last) {
                g->base.event_last = last;
                g->remote_news = 1;
            }
        }
        break;
    default:
        break;
    }
    PQclear(res);
}

/* Read answers: until the item `until` is complete (its rows in *out), or
 * with until = 0 until nothing is expected. Without block, only what has
 * arrived. JR_E_STORE when the connection was lost meanwhile. */
int jr_pg_pump(struct jr_pg *g, uint64_t until, PGresult **out, int block)
{
    int64_t deadline = jr_pg_mono_ms() + g->base.timeout_ms;
    PGresult *res;
    struct pg_item *it;

    for (;;) {
        if (!g->conn)
            return JR_E_STORE;
        if (!g->head)
            return until ? JR_E_STORE : JR_OK;
        if (PQisBusy(g->conn)) {
            if (!block)
                return JR_OK;
            if (wait_io(g, deadline))
                return JR_E_STORE;
            continue;
        }
        res = PQgetResult(g->conn);
        /* notifications parsed along with the results */
        take_notifies(g);
        it = g->head;
        if (it->kind == K_SYNC) {
            ExecStatusType s = PQresultStatus(res);
            PQclear(res);
            if (s != PGRES_PIPELINE_SYNC) {
                jr_pg_lost(g, "the pipeline lost its place");
                return JR_E_STORE;
            }
            free(pop_item(g));
            continue;
        }
        if (res) {
            g->got_result = 1;
            item_result(g, it, res);
            continue;
        }
        if (!g->got_result) {
            jr_pg_lost(g, "the pipeline lost its place");
            return JR_E_STORE;
        }
        pop_item(g);
        if (it->failed) {
            char why[200];
            snprintf(why, sizeof why, "%s", g->down_msg);
            PQclear(it->res);
            free(it);
            jr_pg_lost(g, why);
            return JR_E_STORE;
        }
        if (it->kind == K_COMMIT)
            batch_done(g, it->batch, it->batch->doomed ? JR_E_STORE : 0);
        if (it->id == until) {
            *out = it->res;
            free(it);
            return JR_OK;
        }
        PQclear(it->res);
        free(it);
    }
}

int jr_pg_query(struct jr_pg *g, enum pg_stmt s, const struct pg_params *p,
                int in_batch, PGresult **res, struct jr_err *e)
{
    struct pg_item *it;

    *res = NULL;
    if (in_batch && !open_batch(g, e))
        return e && e->code ? e->code : JR_E_STORE;
    if (g->open && g->open->done)
        return jr_pg_unavailable(g, e);
    if (!g->up)
        return jr_pg_unavailable(g, e);
    /* A sync point after the read, not a mere flush: outside a batch it
     * ends the implicit transaction the read opened, and a backend left in
     * a transaction holds back the notifications of other instances'
     * events (the server delivers them between transactions only). */
    if (send_stmt(g, s, p, K_READ, NULL, &it) || !PQpipelineSync(g->conn) ||
        !push_item(g, K_SYNC, NULL)) {
        jr_pg_lost(g, g->conn ? PQerrorMessage(g->conn) : NULL);
        return jr_pg_unavailable(g, e);
    }
    if (jr_pg_pump(g, it->id, res, 1))
        return jr_pg_unavailable(g, e);
    return JR_OK;
}

/* The fallback poll of the newest event (pg_loop.c's tick), answered
 * through the loop, with its sync point (see jr_pg_query). */
int jr_pg_send_poll(struct jr_pg *g)
{
    if (!g->up || send_stmt(g, P_EVENTS_LAST, NULL, K_POLL, NULL, NULL))
        return -1;
    if (!PQpipelineSync(g->conn) || !push_item(g, K_SYNC, NULL)) {
        jr_pg_lost(g, PQerrorMessage(g->conn));
        return -1;
    }
    return flush_out(g);
}

/* ---- commit and delivery ---- */

int jr_pg_send_commit(struct jr_pg *g)
{
    struct pg_batch *b = g->open;
    struct pg_params p;
    size_t k;

    if (!b || g->op_depth > 0)
        return 0;
    g->open = NULL;
    /* the waiters so far are this batch's */
    if (g->base.waiters.next != &g->base.waiters) {
        b->waiters.next = g->base.waiters.next;
        b->waiters.prev = g->base.waiters.prev;
        b->waiters.next->prev = &b->waiters;
        b->waiters.prev->next = &b->waiters;
        g->base.waiters.next = g->base.waiters.prev = &g->base.waiters;
    }
    if (g->flying_tail)
        g->flying_tail->next = b;
    else
        g->flying = b;
    g->flying_tail = b;
    if (b->done)
        return 0;
    if (b->doomed) {
        /* nothing of it is kept: no events numbered, the writes undone */
        free_events(b, 0);
        if (send_stmt(g, P_ROLLBACK, NULL, K_COMMIT, b, NULL))
            return -1;
    } else if (b->nevents) {
        memset(&p, 0, sizeof p);
        jr_pg_p_int(&p, (int64_t)b->nevents);
        if (send_stmt(g, P_EVENT_COUNTER, &p, K_COUNTER, b, NULL))
            return -1;
        for (k = 0; k < b->nevents; k++) {
            struct pg_event *x = b->events[k];
            memset(&p, 0, sizeof p);
            jr_pg_p_int(&p, (int64_t)(b->nevents - 1 - k));
            jr_pg_p_int(&p, x->time);
            jr_pg_p_text(&p, x->job);
            jr_pg_p_text(&p, x->task);
            jr_pg_p_text(&p, x->type);
            jr_pg_p_text(&p, x->state);
            jr_pg_p_text(&p, x->message);
            if (send_stmt(g, P_EVENT_INSERT, &p, K_WRITE, b, NULL))
                return -1;
        }
    }
    free_events(b, 0);
    if (!b->doomed && send_stmt(g, P_COMMIT, NULL, K_COMMIT, b, NULL))
        return -1;
    if (!PQpipelineSync(g->conn) || !push_item(g, K_SYNC, NULL)) {
        jr_pg_lost(g, PQerrorMessage(g->conn));
        return -1;
    }
    b->sent = 1;
    b->sent_ns = uv_hrtime();
    return flush_out(g);
}

static void free_batch(struct pg_batch *b)
{
    free_events(b, 0);
    free(b->events);
    free(b);
}

/* Run the waiters of every answered batch, in order; with nothing pending
 * here, news of another instance's events wakes the waiters too. */
void jr_pg_deliver(struct jr_pg *g)
{
    struct pg_batch *b;
    int status;

    if (g->attached)
        uv_idle_stop(&g->idle);
    if (g->delivering)
        return;
    g->delivering = 1;
    while ((b = g->flying) && b->done) {
        struct jr_store_waiter local, *w;
        g->flying = b->next;
        if (!g->flying)
            g->flying_tail = NULL;
        if (b->status == 0 && b->event_last > g->base.event_last)
            g->base.event_last = b->event_last;
        local.next = local.prev = &local;
        if (b->waiters.next != &b->waiters) {
            local.next = b->waiters.next;
            local.prev = b->waiters.prev;
            local.next->prev = &local;
            local.prev->next = &local;
        }
        status = b->status;
        if (status)
            jr_metrics_count(g->base.metrics, JR_M_COMMIT_FAILURES, NULL, NULL, 1);
        else if (b->sent_ns) {
            jr_metrics_observe(g->base.metrics, JR_H_COMMIT_TIME,
                               (double)(uv_hrtime() - b->sent_ns) / 1e9);
            jr_metrics_observe(g->base.metrics, JR_H_COMMIT_WRITES,
                               (double)(b->writes + b->nevents));
        }
        free_batch(b);
        while ((w = local.next) != &local) {
            jr_store_unwait(w);
            w->cb(w, status);
        }
    }
    if (g->remote_news && !g->open && !g->flying) {
        g->remote_news = 0;
        jr_store_run_waiters(&g->base, 0);
        if (g->base.on_change)
            g->base.on_change(g->base.change_arg, JR_STORE_CHANGE_EVENTS);
    }
    g->delivering = 0;
    if (g->attached && g->open)
        uv_idle_start(&g->idle, jr_pg_on_idle);
}
