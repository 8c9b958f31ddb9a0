/* What the PostgreSQL backend's files share: its store struct, the queue of
 * results it expects from the server (one connection in pipeline mode),
 * its batches (one transaction each) and its statements. Not included
 * outside runtime/store/. */
#ifndef JR_STORE_PG_H
#define JR_STORE_PG_H

#include <libpq-fe.h>

#include "store/backend.h"

enum pg_stmt {
    P_JOB_INSERT, P_JOB_GET, P_JOB_GET_SEQ, P_JOB_SET_STATE, P_JOB_SET_ATTRS,
    P_JOB_SET_APPROVAL, P_JOB_MARK_DELETING, P_JOBS_DELETING,
    P_JOB_DELETE, P_JOB_DELETE_TASKS, P_JOB_DELETE_LOGS, P_JOB_DELETE_ASSETS,
    P_JOBS_ALL, P_JOBS_OWNER, P_JOBS_SURFACE, P_JOBS_STATE, P_JOBS_ACTIVE,
    P_JOBS_COUNT, P_COUNT_OWNER, P_COUNT_SURFACE, P_COUNT_OWNER_STATES, P_COUNT_STATES,
    P_TASK_INSERT, P_TASK_SET_STATE, P_TASKS_EACH, P_TASKS_RESET, P_TASKS_COUNT,
    P_TASK_SET_USAGE, P_TASK_SET_LOG_OFFSET,
    P_EVENT_COUNTER, P_EVENT_INSERT, P_EVENTS_AFTER, P_EVENTS_OF_JOB, P_EVENTS_LAST,
    P_LOG_ADD, P_LOGS, P_ASSET_PUT, P_ASSETS_CLEAR, P_ASSETS,
    P_BEGIN, P_COMMIT, P_ROLLBACK, P_SAVEPOINT, P_RELEASE, P_ROLLBACK_TO,
    P_JOBS_ACTIVE_MINE, P_JOBS_DELETING_MINE, P_INSTANCE_UP, P_INSTANCE_BEAT,
    P_INSTANCES_DEAD, P_JOBS_CLAIM, P_JOBS_ADOPT, P_INSTANCE_DROP, P_JOB_SET_DRIVER, P_JOBS_BY_STATE,
    P_SEQ_RESERVE, P_JOB_INSERT_SEQ,
    P_COUNT
};

extern const char *const jr_pg_sql[P_COUNT];

/* What a queued request's result is for. */
enum pg_kind {
    K_WRITE,      /* part of a batch: only an error matters (it fails the batch) */
    K_READ,       /* a caller waits for it (pg_query) */
    K_COUNTER,    /* the batch's event numbers: its newest seq */
    K_COMMIT,     /* the batch is durable once this answers (a doomed batch's
                   * ROLLBACK: it failed) */
    K_SYNC,       /* a pipeline sync point */
    K_PREPARE,    /* a statement prepared on this connection */
    K_POLL        /* the fallback poll of the newest event */
};

struct pg_batch;
struct jr_pg;

struct pg_poll {
    uv_poll_t h;
    struct jr_pg *g;
};

struct pg_item {
    struct pg_item *next;
    enum pg_kind kind;
    uint64_t id;
    struct pg_batch *batch;      /* K_WRITE, K_COUNTER, K_COMMIT */
    PGresult *res;               /* K_READ: kept for the caller */
    int failed;
};

/* An event of the open batch: numbered and inserted at commit, in commit
 * order across every instance (pg_conn.c). The strings follow the struct. */
struct pg_event {
    int64_t time;
    const char *job, *task, *type, *state, *message;
};

/* One transaction: open while writes are added, then committing until its
 * COMMIT answers; its waiters run after that, in batch order. */
struct pg_batch {
    struct pg_batch *next;
    struct jr_store_waiter waiters;  /* list head */
    int sent;                    /* COMMIT sent */
    int doomed;                  /* a write failed half done (jr_store_job_create):
                                  * the batch ends in ROLLBACK, its waiters get
                                  * JR_E_STORE */
    int done, status;            /* answered: 0 or JR_E_STORE */
    int64_t event_last;          /* the newest event seq once committed */
    struct pg_event **events;
    size_t nevents, cap_events;
    uint64_t writes, sent_ns;    /* for the commit metrics */
};

#define PG_OP_MAX 32
#define PG_SEQ_BLOCK 128

struct jr_pg {
    struct jr_store base;        /* first: a struct jr_store * is one of these */
    char *url;
    char *instance;              /* this instance's id once set, else NULL */
    PGconn *conn;
    int up;                      /* connected, LISTENing, usable */
    int migrated;                /* the schema is current (first connection) */
    int remote_news;             /* another instance's events arrived */
    int was_down;                /* a connection was lost since the listener heard */
    char down_msg[200];          /* why the last connection ended */
    unsigned char prepared[P_COUNT];
    struct pg_item *head, *tail; /* results expected, in order */
    uint64_t next_id;
    int got_result;              /* the head item has had a result (its NULL follows) */
    struct pg_batch *open;       /* the batch writes go to (BEGIN sent), or NULL */
    struct pg_batch *flying, *flying_tail;  /* COMMIT sent, in order */
    int op_depth;
    size_t op_marks[PG_OP_MAX];  /* nevents at each open op */
    /* the loop */
    uv_loop_t *loop;
    uv_prepare_t prepare;
    uv_check_t check;
    struct pg_poll *poll;        /* on the connection's socket, while connected */
    uv_timer_t timer;            /* reconnect backoff, fallback poll */
    uv_idle_t idle;              /* keeps the loop from blocking with work left */
    int attached, closed, poll_events, open_handles;
    int64_t backoff_ms, next_try_ms, last_poll_ms;
    /* job seqs taken from the jobs' sequence ahead of need: a job with a
     * generated id is inserted without waiting for the server */
    int64_t seqs[PG_SEQ_BLOCK];
    int nseqs;
    int delivering;
};

#define PG(st) ((struct jr_pg *)(st))

/* Parameters of one statement: text values (NULL = SQL NULL) or binary
 * (bytea). */
#define PG_MAX_PARAMS 32
struct pg_params {
    int n;
    const char *v[PG_MAX_PARAMS];
    int len[PG_MAX_PARAMS];
    int fmt[PG_MAX_PARAMS];
    char num[PG_MAX_PARAMS][24];
};

void jr_pg_p_int(struct pg_params *p, int64_t v);
void jr_pg_p_text(struct pg_params *p, const char *s);
/* 0 -> NULL (unset times and pids) */
void jr_pg_p_time(struct pg_params *p, int64_t v);
void jr_pg_p_bytes(struct pg_params *p, const char *data, size_t len);

/* pg_conn.c */
/* Add a write of the open batch (opened if needed). JR_E_STORE while the
 * server is unreachable. */
int jr_pg_write(struct jr_pg *g, enum pg_stmt s, const struct pg_params *p,
                struct jr_err *e);
/* Run s and wait for its rows (in the open batch when there is one, so a
 * read sees this instance's uncommitted writes). *res is the caller's to
 * PQclear. in_batch: open the batch first (an insert that answers). */
int jr_pg_query(struct jr_pg *g, enum pg_stmt s, const struct pg_params *p,
                int in_batch, PGresult **res, struct jr_err *e);
/* Buffer an event of the open batch. */
int jr_pg_event(struct jr_pg *g, const struct jr_event_rec *ev, struct jr_err *e);
int jr_pg_connect(struct jr_pg *g, struct jr_err *e);
/* The connection is gone (why: for the 503s until it is back): fail
 * what is in flight and reconnect with backoff from the loop. */
void jr_pg_lost(struct jr_pg *g, const char *why);
/* Forget the results still expected (the connection is going away). */
void jr_pg_drop_items(struct jr_pg *g);
/* Keep why (on one line) as the reason the store is unavailable. */
void jr_pg_set_down_msg(struct jr_pg *g, const char *why);
/* JR_E_STORE saying the store is unreachable and why. */
int jr_pg_unavailable(struct jr_pg *g, struct jr_err *e);
/* Answers that came: see pg_conn.c. */
int jr_pg_pump(struct jr_pg *g, uint64_t until, PGresult **out, int block);
/* Ask for the newest event's seq (answered through the loop). */
int jr_pg_send_poll(struct jr_pg *g);
/* Send the open batch's events and COMMIT (unless an op is open). */
int jr_pg_send_commit(struct jr_pg *g);
/* Run the waiters of answered batches (never from inside a read). */
void jr_pg_deliver(struct jr_pg *g);
int64_t jr_pg_mono_ms(void);

/* pg_loop.c */
void jr_pg_update_poll(struct jr_pg *g);
/* Poll the connection's socket (when attached) / stop polling it. */
int jr_pg_poll_start(struct jr_pg *g);
void jr_pg_poll_stop(struct jr_pg *g);
void jr_pg_on_idle(uv_idle_t *h);

/* pg_schema.c */
int jr_pg_migrate(PGconn *conn, struct jr_err *e);

/* pg_shared.c: the operations of a shared store */
int jr_pg_available(const struct jr_store *st);
int jr_pg_set_instance(struct jr_store *st, const char *id, struct jr_err *e);
int jr_pg_instance_up(struct jr_store *st, const char *address, struct jr_err *e);
int jr_pg_instance_beat(struct jr_store *st, int *alive, struct jr_err *e);
int jr_pg_instances_dead(struct jr_store *st, int64_t ms,
                         int (*cb)(void *arg, const char *id), void *arg,
                         struct jr_err *e);
int jr_pg_jobs_claim(struct jr_store *st, int64_t n, jr_store_job_cb cb, void *arg,
                     struct jr_err *e);
int jr_pg_jobs_adopt(struct jr_store *st, const char *dead, jr_store_job_cb cb,
                     void *arg, struct jr_err *e);
int jr_pg_job_set_driver(struct jr_store *st, int64_t seq, int mine, struct jr_err *e);

/* pg_rows.c: the operations table, job rows to a callback (r freed), and
 * helpers pg_tasks.c shares */
int jr_pg_each_job(PGresult *r, jr_store_job_cb cb, void *arg);
/* LIMIT: none for a limit <= 0 */
void jr_pg_p_limit(struct pg_params *p, int64_t limit);
/* A write of s with one integer parameter. */
int jr_pg_write_one(struct jr_store *st, enum pg_stmt s, int64_t a, struct jr_err *e);
/* The one integer s answers, in *out. */
int jr_pg_read_count(struct jr_store *st, enum pg_stmt s, struct pg_params *p,
                     int64_t *out, struct jr_err *e);

/* pg_tasks.c: the operations on tasks, events, logs and assets */
int jr_pg_task_insert(struct jr_store *st, const struct jr_task_rec *t, struct jr_err *e);
int jr_pg_task_set_state(struct jr_store *st, const struct jr_task_rec *t, struct jr_err *e);
int jr_pg_task_set_usage(struct jr_store *st, int64_t job_seq, int64_t idx, int64_t cpu_ms,
                         int64_t max_rss_bytes, int64_t wall_ms, struct jr_err *e);
int jr_pg_task_set_log_offset(struct jr_store *st, int64_t job_seq, int64_t idx,
                              int64_t offset, struct jr_err *e);
int jr_pg_tasks_reset(struct jr_store *st, int64_t job_seq, int keep_succeeded,
                      struct jr_err *e);
int64_t jr_pg_tasks_count(struct jr_store *st, int64_t job_seq);
int jr_pg_tasks_each(struct jr_store *st, int64_t job_seq, jr_store_task_cb cb, void *arg,
                     struct jr_err *e);
int jr_pg_event_add(struct jr_store *st, const struct jr_event_rec *ev, int64_t *seq_out,
                    struct jr_err *e);
int jr_pg_events_after(struct jr_store *st, int64_t after, int64_t limit,
                       jr_store_event_cb cb, void *arg, struct jr_err *e);
int jr_pg_job_events(struct jr_store *st, const char *job, int64_t after, int64_t limit,
                     jr_store_event_cb cb, void *arg, struct jr_err *e);
int jr_pg_log_add(struct jr_store *st, int64_t job_seq, const char *task, int64_t level,
                  const char *message, const char *data, struct jr_err *e);
int jr_pg_logs(struct jr_store *st, int64_t job_seq, int64_t after, int64_t min_level,
               int64_t limit, jr_store_log_cb cb, void *arg, struct jr_err *e);
int jr_pg_asset_put(struct jr_store *st, int64_t job_seq, const char *name,
                    const char *data, struct jr_err *e);
int jr_pg_assets_clear(struct jr_store *st, int64_t job_seq, struct jr_err *e);
int jr_pg_assets(struct jr_store *st, int64_t job_seq, jr_store_asset_cb cb, void *arg,
                 struct jr_err *e);
extern const struct jr_store_ops jr_pg_ops;

/* Column helpers for text results. */
static inline const char *jr_pg_str(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

int64_t jr_pg_int(const PGresult *r, int row, int col);

#endif
