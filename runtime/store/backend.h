/* What every store backend shares behind store.h: the table of operations
 * a backend fills (SQLite in store.c, PostgreSQL in pg.c), the part of the
 * store struct common to both (commit waiters, the event ring), and the
 * helpers the backends call. Not included outside runtime/store/. */
#ifndef JR_STORE_BACKEND_H
#define JR_STORE_BACKEND_H

#include "store/store.h"

struct jr_store_ops {
    const char *name;
    void (*close)(struct jr_store *st);
    int (*attach)(struct jr_store *st, uv_loop_t *loop);
    int (*pending)(const struct jr_store *st);
    int (*commit)(struct jr_store *st);
    int (*op_begin)(struct jr_store *st, struct jr_err *e);
    int (*op_end)(struct jr_store *st, int ok, struct jr_err *e);
    int (*job_insert)(struct jr_store *st, struct jr_job_rec *job, struct jr_err *e);
    int (*job_create)(struct jr_store *st, struct jr_job_rec *job, struct jr_task_rec *tasks,
                      size_t ntasks, const struct jr_event_rec *ev, int64_t *event_seq,
                      struct jr_err *e);
    int (*job_get)(struct jr_store *st, const char *id, jr_store_job_cb cb, void *arg,
                   struct jr_err *e);
    int (*job_get_seq)(struct jr_store *st, int64_t seq, jr_store_job_cb cb, void *arg,
                       struct jr_err *e);
    int (*job_set_state)(struct jr_store *st, const struct jr_job_rec *job,
                         struct jr_err *e);
    int (*job_set_attrs)(struct jr_store *st, const struct jr_job_rec *job,
                         struct jr_err *e);
    int (*job_set_approval)(struct jr_store *st, int64_t seq, const char *decision,
                            const char *by, const char *reason, const char *at,
                            struct jr_err *e);
    int (*job_delete_tasks)(struct jr_store *st, int64_t seq, struct jr_err *e);
    int (*job_delete)(struct jr_store *st, int64_t seq, struct jr_err *e);
    int (*job_mark_deleting)(struct jr_store *st, int64_t seq, struct jr_err *e);
    int (*jobs_deleting)(struct jr_store *st, jr_store_job_cb cb, void *arg,
                         struct jr_err *e);
    int (*jobs_list)(struct jr_store *st, const struct jr_job_filter *f,
                     jr_store_job_cb cb, void *arg, struct jr_err *e);
    int (*jobs_active)(struct jr_store *st, jr_store_job_cb cb, void *arg,
                       struct jr_err *e);
    int64_t (*jobs_count)(struct jr_store *st);
    int (*jobs_count_where)(struct jr_store *st, const struct jr_job_count *f,
                            int64_t *out, struct jr_err *e);
    int (*task_insert)(struct jr_store *st, const struct jr_task_rec *t, struct jr_err *e);
    int (*task_set_state)(struct jr_store *st, const struct jr_task_rec *t,
                          struct jr_err *e);
    int (*task_set_usage)(struct jr_store *st, int64_t job_seq, int64_t idx,
                          int64_t cpu_ms, int64_t max_rss_bytes, int64_t wall_ms,
                          struct jr_err *e);
    int (*task_set_log_offset)(struct jr_store *st, int64_t job_seq, int64_t idx,
                               int64_t offset, struct jr_err *e);
    int (*tasks_reset)(struct jr_store *st, int64_t job_seq, int keep_succeeded,
                       struct jr_err *e);
    int64_t (*tasks_count)(struct jr_store *st, int64_t job_seq);
    int (*tasks_each)(struct jr_store *st, int64_t job_seq, jr_store_task_cb cb,
                      void *arg, struct jr_err *e);
    int (*event_add)(struct jr_store *st, const struct jr_event_rec *ev, int64_t *seq_out,
                     struct jr_err *e);
    int (*events_after)(struct jr_store *st, int64_t after, int64_t limit,
                        jr_store_event_cb cb, void *arg, struct jr_err *e);
    int (*job_events)(struct jr_store *st, const char *job, int64_t after, int64_t limit,
                      jr_store_event_cb cb, void *arg, struct jr_err *e);
    int (*log_add)(struct jr_store *st, int64_t job_seq, const char *task, int64_t level,
                   const char *message, const char *data, struct jr_err *e);
    int (*logs)(struct jr_store *st, int64_t job_seq, int64_t after, int64_t min_level,
                int64_t limit, jr_store_log_cb cb, void *arg, struct jr_err *e);
    int (*asset_put)(struct jr_store *st, int64_t job_seq, const char *name,
                     const char *data, struct jr_err *e);
    int (*assets_clear)(struct jr_store *st, int64_t job_seq, struct jr_err *e);
    int (*assets)(struct jr_store *st, int64_t job_seq, jr_store_asset_cb cb, void *arg,
                  struct jr_err *e);
    /* shared stores only (NULL: a store of one instance) */
    int (*available)(const struct jr_store *st);
    int (*set_instance)(struct jr_store *st, const char *id, struct jr_err *e);
    int (*instance_up)(struct jr_store *st, const char *address, struct jr_err *e);
    int (*instance_beat)(struct jr_store *st, int *alive, struct jr_err *e);
    int (*instances_dead)(struct jr_store *st, int64_t ms,
                          int (*cb)(void *arg, const char *id), void *arg,
                          struct jr_err *e);
    int (*jobs_claim)(struct jr_store *st, int64_t n, jr_store_job_cb cb, void *arg,
                      struct jr_err *e);
    int (*jobs_adopt)(struct jr_store *st, const char *dead, jr_store_job_cb cb,
                      void *arg, struct jr_err *e);
    int (*job_set_driver)(struct jr_store *st, int64_t seq, int mine, struct jr_err *e);
    int (*jobs_by_state)(struct jr_store *st, jr_store_state_count_cb cb, void *arg,
                         struct jr_err *e);
};

/* The recent events (ring.c): every event with base < seq <= last, oldest
 * at head; n of cap slots used. */
#define JR_STORE_RING_SIZE 4096
struct jr_event_ring {
    struct ring_ev **v;
    size_t cap, head, n;
    int64_t base, last;
    int failed;                  /* a fill ran out of memory */
};

/* The head of every backend's store struct. */
struct jr_store {
    const struct jr_store_ops *ops;
    struct jr_store_waiter waiters;  /* list head */
    int64_t event_last;          /* the newest event this store sees */
    struct jr_event_ring ring;
    int64_t timeout_ms;          /* jr_store_set_timeout */
    struct jr_metrics *metrics;  /* commits counted here (may be NULL) */
    void (*on_change)(void *arg, int what);   /* jr_store_listen */
    void *change_arg;
};

/* Set up the common part (ops, empty waiter list). */
void jr_store_base_init(struct jr_store *st, const struct jr_store_ops *ops);

/* Run (and remove) every waiter registered so far with status. */
void jr_store_run_waiters(struct jr_store *st, int status);

/* ring.c: after a rollback, drop the ring's events above last (the newest
 * event left) and set event_last to it; at close, free the ring. */
void jr_store_ring_cut(struct jr_store *st, int64_t last);
void jr_store_ring_free(struct jr_store *st);
/* ring.c: an event just added (seq set), kept in the ring when the ring
 * holds every event before it, so readers need no query for it. */
void jr_store_ring_append(struct jr_store *st, const struct jr_event_rec *ev);

/* The backends' open functions: on failure *out is NULL and e says why. */
int jr_sqlite_open(const char *path, struct jr_store **out, struct jr_err *e);
int jr_pg_open(const char *url, struct jr_store **out, struct jr_err *e);

#endif
