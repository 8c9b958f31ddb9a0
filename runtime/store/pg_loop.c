/* The PostgreSQL backend on the loop: open and close, the handles that
 * commit once per loop iteration (uv_prepare and uv_check) and read the
 * server's answers (uv_poll on the connection's socket), the tick that
 * reconnects with backoff and polls for other instances' events when no
 * notification came (once a second), and the store's batch operations. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/pg.h"

#define TICK_MS 100
#define POLL_EVERY_MS 1000
#define BACKOFF_MAX_MS 2000

/* A store with work in flight keeps the loop alive; an idle one does not. */
static void on_poll(uv_poll_t *h, int status, int events);

static void on_closed(uv_handle_t *h)
{
    struct jr_pg *g = h->data;

    if (h->type == UV_POLL)
        free(h);
    if (--g->open_handles == 0 && g->closed)
        free(g);
}

int jr_pg_poll_start(struct jr_pg *g)
{
    struct pg_poll *p = calloc(1, sizeof *p);

    if (!p || uv_poll_init(g->loop, &p->h, PQsocket(g->conn)) != 0) {
        free(p);
        return -1;
    }
    p->g = g;
    p->h.data = g;
    g->open_handles++;
    g->poll = p;
    g->poll_events = 0;
    jr_pg_update_poll(g);
    return 0;
}

void jr_pg_poll_stop(struct jr_pg *g)
{
    if (!g->poll)
        return;
    uv_close((uv_handle_t *)&g->poll->h, on_closed);
    g->poll = NULL;
}

void jr_pg_update_poll(struct jr_pg *g)
{
    uv_poll_t *h = g->poll ? &g->poll->h : NULL;
    int want = UV_READABLE, busy = g->head || g->open || g->flying;

    if (!h || !g->conn)
        return;
    if (PQflush(g->conn) > 0)
        want |= UV_WRITABLE;
    if (want != g->poll_events) {
        uv_poll_start(h, want, on_poll);
        g->poll_events = want;
    }
    if (busy)
        uv_ref((uv_handle_t *)h);
    else
        uv_unref((uv_handle_t *)h);
}

void jr_pg_on_idle(uv_idle_t *h)
{
    jr_pg_deliver(h->data);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct jr_pg *g = h->data;

    if (!g->conn)
        return;
    if ((events & UV_WRITABLE) && PQflush(g->conn) < 0)
        jr_pg_lost(g, PQerrorMessage(g->conn));
    if (status < 0 || (g->conn && !PQconsumeInput(g->conn)))
        jr_pg_lost(g, g->conn ? PQerrorMessage(g->conn) : "connection lost");
    if (g->conn) {
        PGnotify *n;
        while ((n = PQnotifies(g->conn))) {
            int64_t last = n->extra ? strtoll(n->extra, NULL, 10) : 0;
            if (last > g->base.event_last) {
                g->base.event_last = last;
                g->remote_news = 1;
            }
            PQfreemem(n);
        }
        jr_pg_pump(g, 0, NULL, 0);
    }
    jr_pg_update_poll(g);
    jr_pg_deliver(g);
}

static void commit_now(struct jr_pg *g)
{
    if (g->open && g->op_depth == 0) {
        jr_pg_send_commit(g);
        jr_pg_update_poll(g);
    }
    jr_pg_deliver(g);
}

static void on_prepare(uv_prepare_t *h)
{
    commit_now(h->data);
}

static void on_check(uv_check_t *h)
{
    commit_now(h->data);
}

static void on_tick(uv_timer_t *h)
{
    struct jr_pg *g = h->data;
    int64_t now = jr_pg_mono_ms();

    if (!g->up) {
        struct jr_err e = { 0, "" };
        if (now < g->next_try_ms || g->open || g->flying)
            return;
        if (jr_pg_connect(g, &e)) {
            jr_pg_set_down_msg(g, e.msg);
            g->backoff_ms = g->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
                                                               : g->backoff_ms * 2;
            g->next_try_ms = now + g->backoff_ms;
            return;
        }
        if (g->was_down) {
            g->was_down = 0;
            if (g->base.on_change)
                g->base.on_change(g->base.change_arg, JR_STORE_CHANGE_UP);
        }
        g->remote_news = 1;
        jr_pg_deliver(g);
        return;
    }
    if (now - g->last_poll_ms >= POLL_EVERY_MS && !g->head) {
        g->last_poll_ms = now;
        /* the newest event, in case a notification was missed */
        jr_pg_send_poll(g);
        jr_pg_update_poll(g);
    }
}


/* ---- the operations of pg_rows.c's table ---- */

int jr_pg_attach(struct jr_store *st, uv_loop_t *loop)
{
    struct jr_pg *g = PG(st);

    if (g->attached)
        return JR_OK;
    g->loop = loop;
    uv_prepare_init(loop, &g->prepare);
    uv_check_init(loop, &g->check);
    uv_idle_init(loop, &g->idle);
    uv_timer_init(loop, &g->timer);
    g->prepare.data = g->check.data = g->idle.data = g->timer.data = g;
    uv_prepare_start(&g->prepare, on_prepare);
    uv_check_start(&g->check, on_check);
    uv_timer_start(&g->timer, on_tick, TICK_MS, TICK_MS);
    uv_unref((uv_handle_t *)&g->prepare);
    uv_unref((uv_handle_t *)&g->check);
    uv_unref((uv_handle_t *)&g->timer);
    g->open_handles += 4;
    g->attached = 1;
    if (g->conn && jr_pg_poll_start(g))
        return JR_E_STORE;
    if (g->open)
        uv_idle_start(&g->idle, jr_pg_on_idle);
    return JR_OK;
}

int jr_pg_pending(const struct jr_store *st)
{
    const struct jr_pg *g = (const struct jr_pg *)st;

    return g->open != NULL || g->flying != NULL;
}

/* Commit and wait: what jr_store_commit promises (durable on return). */
int jr_pg_commit(struct jr_store *st)
{
    struct jr_pg *g = PG(st);
    int status = JR_OK;

    if (g->op_depth > 0)
        return JR_OK;
    if (g->open)
        jr_pg_send_commit(g);
    while (g->conn && g->flying && jr_pg_pump(g, 0, NULL, 1) == JR_OK && g->head)
        ;
    for (struct pg_batch *b = g->flying; b; b = b->next)
        if (b->done && b->status)
            status = b->status;
    if (!g->conn)
        status = g->flying ? JR_E_STORE : status;
    jr_pg_deliver(g);
    return status;
}

int jr_pg_op_begin(struct jr_store *st, struct jr_err *e)
{
    struct jr_pg *g = PG(st);
    int rc;

    if (g->op_depth >= PG_OP_MAX)
        return jr_err_set(e, JR_E_SYSTEM, "store operations nested too deep");
    rc = jr_pg_write(g, P_SAVEPOINT, NULL, e);
    if (rc)
        return rc;
    g->op_marks[g->op_depth++] = g->open ? g->open->nevents : 0;
    return JR_OK;
}

int jr_pg_op_end(struct jr_store *st, int ok, struct jr_err *e)
{
    struct jr_pg *g = PG(st);
    struct pg_batch *b = g->open;
    size_t mark;
    int rc = JR_OK;

    if (g->op_depth <= 0)
        return JR_OK;
    mark = g->op_marks[--g->op_depth];
    if (!b || b->done)
        return ok ? jr_pg_unavailable(g, e) : JR_OK;
    if (!ok) {
        while (b->nevents > mark)
            free(b->events[--b->nevents]);
        rc = jr_pg_write(g, P_ROLLBACK_TO, NULL, e);
    }
    if (!rc)
        rc = jr_pg_write(g, P_RELEASE, NULL, e);
    return rc;
}

void jr_pg_close(struct jr_store *st)
{
    struct jr_pg *g = PG(st);

    while (g->op_depth > 0)
        jr_pg_op_end(st, 0, NULL);
    jr_pg_commit(st);
    /* what could not be committed is lost: say so to its waiters */
    while (g->flying) {
        struct pg_batch *b = g->flying;
        if (!b->done)
            b->done = 1, b->status = JR_E_STORE;
        jr_pg_deliver(g);
        if (g->flying == b)
            break;
    }
    jr_store_run_waiters(st, JR_E_STORE);
    jr_store_ring_free(st);
    jr_pg_poll_stop(g);
    if (g->conn) {
        PQfinish(g->conn);
        g->conn = NULL;
    }
    /* what was still to come (a read's sync point, a poll) never will */
    jr_pg_drop_items(g);
    free(g->url);
    g->url = NULL;
    free(g->instance);
    g->instance = NULL;
    g->closed = 1;
    if (!g->attached) {
        if (g->open_handles == 0)
            free(g);
        return;
    }
    g->attached = 0;
    uv_close((uv_handle_t *)&g->prepare, on_closed);
    uv_close((uv_handle_t *)&g->check, on_closed);
    uv_close((uv_handle_t *)&g->idle, on_closed);
    uv_close((uv_handle_t *)&g->timer, on_closed);
}

int jr_pg_open(const char *url, struct jr_store **out, struct jr_err *e)
{
    struct jr_pg *g = calloc(1, sizeof *g);
    int rc;

    *out = NULL;
    if (!g || !(g->url = strdup(url))) {
        free(g);
        return jr_err_set(e, JR_E_SYSTEM, "out of memory");
    }
    jr_store_base_init(&g->base, &jr_pg_ops);
    g->base.timeout_ms = 10000;
    g->backoff_ms = 100;
    rc = jr_pg_connect(g, e);
    if (rc) {
        free(g->url);
        free(g);
        return rc;
    }
    *out = &g->base;
    return JR_OK;
}
