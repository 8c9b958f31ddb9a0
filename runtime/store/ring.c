/* The store's ring of recent events: the newest few thousand rows of the
 * events table in memory, filled by one read when a reader asks for what
 * was added since, so that hundreds of watchers following the sequence cost
 * one query per new batch instead of one each. It mirrors what the
 * store sees (as a direct read would), and is cut back on rollback. */
#include <stdlib.h>
#include <string.h>

#include "store/backend.h"

/* One event: its strings live in the same allocation, after the struct. */
struct ring_ev {
    struct jr_event_rec rec;
};

static struct ring_ev *ev_at(const struct jr_event_ring *r, size_t k)
{
    return r->v[(r->head + k) % r->cap];
}

static void drop_oldest(struct jr_event_ring *r)
{
    struct ring_ev *ev = r->v[r->head];

    r->base = ev->rec.seq;
    free(ev);
    r->v[r->head] = NULL;
    r->head = (r->head + 1) % r->cap;
    r->n--;
}

static void drop_newest(struct jr_event_ring *r)
{
    size_t k = (r->head + r->n - 1) % r->cap;

    free(r->v[k]);
    r->v[k] = NULL;
    r->n--;
}

/* Empty, holding nothing up to at. */
static void ring_reset(struct jr_event_ring *r, int64_t at)
{
    while (r->n)
        drop_newest(r);
    r->head = 0;
    r->base = r->last = at;
}

static size_t str_size(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

static const char *put_str(char **p, const char *s)
{
    size_t n = str_size(s);
    char *d = *p;

    if (!s)
        return NULL;
    memcpy(d, s, n);
    *p += n;
    return d;
}

/* Append a row read from the database (events_after's callback). */
static int ring_push(void *arg, const struct jr_event_rec *ev)
{
    struct jr_event_ring *r = arg;
    size_t size = sizeof(struct ring_ev) + str_size(ev->job) + str_size(ev->task) +
                  str_size(ev->type) + str_size(ev->state) + str_size(ev->message);
    struct ring_ev *e = malloc(size);
    char *p;

    if (!e) {
        r->failed = 1;
        return 1;
    }
    p = (char *)(e + 1);
    e->rec.seq = ev->seq;
    e->rec.time = ev->time;
    e->rec.job = put_str(&p, ev->job);
    e->rec.task = put_str(&p, ev->task);
    e->rec.type = put_str(&p, ev->type);
    e->rec.state = put_str(&p, ev->state);
    e->rec.message = put_str(&p, ev->message);
    if (r->n == r->cap)
        drop_oldest(r);
    r->v[(r->head + r->n) % r->cap] = e;
    r->n++;
    r->last = ev->seq;
    return 0;
}

/* Read what was added since the ring's newest, at most a ring's worth. */
static int ring_fill(struct jr_store *st, struct jr_err *e)
{
    struct jr_event_ring *r = &st->ring;
    int64_t newest = st->event_last;
    int rc;

    if (!r->v && !(r->v = calloc(JR_STORE_RING_SIZE, sizeof *r->v)))
        return jr_err_set(e, JR_E_SYSTEM, "out of memory");
    r->cap = JR_STORE_RING_SIZE;
    /* seqs are distinct integers: no more than newest - from rows follow */
    if (newest - r->last > (int64_t)r->cap)
        ring_reset(r, newest - (int64_t)r->cap);
    r->failed = 0;
    rc = jr_store_events_after(st, r->last, -1, ring_push, r, e);
    if (!rc && r->failed)
        rc = jr_err_set(e, JR_E_SYSTEM, "out of memory");
    /* A shared store's read may bring events another instance committed
     * after newest was heard of (still a prefix of the sequence: seqs are
     * taken in commit order): the ring keeps them, and r->last stays on the
     * newest held, so that the next fill does not push them again. */
    if (rc)
        ring_reset(r, newest);   /* holds nothing: readers go to the database */
    else if (r->last < newest)
        r->last = newest;
    return rc;
}

int jr_store_events_recent(struct jr_store *st, int64_t after, int64_t limit,
                           jr_store_event_cb cb, void *arg, struct jr_err *e)
{
    struct jr_event_ring *r = &st->ring;
    size_t lo, hi, k;
    int64_t sent = 0;

    if (after >= st->event_last)
        return JR_OK;
    if (r->last < st->event_last && ring_fill(st, NULL))
        return jr_store_events_after(st, after, limit, cb, arg, e);
    if (after < r->base)
        return jr_store_events_after(st, after, limit, cb, arg, e);
    /* the first held event newer than after */
    lo = 0;
    hi = r->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ev_at(r, mid)->rec.seq <= after)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (k = lo; k < r->n && (limit <= 0 || sent < limit); k++, sent++)
        if (cb(arg, &ev_at(r, k)->rec))
            break;
    return JR_OK;
}

void jr_store_ring_append(struct jr_store *st, const struct jr_event_rec *ev)
{
    struct jr_event_ring *r = &st->ring;

    /* Only onto a ring that holds everything before it; otherwise the next
     * read fills the gap from the table. */
    if (!r->v || r->last != ev->seq - 1 || ring_push(r, ev))
        return;
}

void jr_store_ring_cut(struct jr_store *st, int64_t last)
{
    struct jr_event_ring *r = &st->ring;

    st->event_last = last;
    while (r->n && ev_at(r, r->n - 1)->rec.seq > st->event_last)
        drop_newest(r);
    if (r->last > st->event_last)
        r->last = st->event_last;
    if (r->base > r->last)
        ring_reset(r, r->last);
}

void jr_store_ring_free(struct jr_store *st)
{
    struct jr_event_ring *r = &st->ring;

    if (r->v)
        ring_reset(r, 0);
    free(r->v);
    r->v = NULL;
}
