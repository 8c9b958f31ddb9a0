/* The job transitions of DESIGN §3 asked for by callers: start, restart,
 * stop, cancel, suspend, fail, approve, update, delete and set_state, each checked
 * against the job's state and written as one store operation plus an event. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "sched/internal.h"

#define BIT(x) (1u << (x))

static int copy_info(void *arg, const struct jr_job_rec *r)
{
    jr_sched_jobrow_read(arg, r);
    return 0;
}

static int get_info(struct jr_sched *s, const char *id, struct jr_sched_jobrow *i, struct jr_err *e)
{
    memset(i, 0, sizeof *i);
    if (!id)
        return jr_err_set(e, JR_E_INVALID, "no job id");
    return jr_store_job_get(s->st, id, copy_info, i, e);
}

/* "created, failed" from a mask of states. */
static void list_states(unsigned mask, char *out, size_t size)
{
    size_t off = 0;
    int i;

    out[0] = 0;
    for (i = 0; i < J_NSTATES && off < size; i++)
        if (mask & BIT(i))
            off += (size_t)snprintf(out + off, size - off, "%s%s", off ? ", " : "",
                                    jr_jstate_names[i]);
}

static int refuse(struct jr_err *e, const char *op, const struct jr_sched_jobrow *i, unsigned allowed)
{
    char list[200];

    list_states(allowed, list, sizeof list);
    return jr_err_set(e, JR_E_CONFLICT, "cannot %s job '%s': it is %s (%s needs %s)", op,
                      i->id, jr_jstate_names[i->state], op, list);
}

static int end_op(struct jr_sched *s, int rc, struct jr_err *e)
{
    int ok = rc == JR_OK;

    if (jr_store_op_end(s->st, ok, ok ? e : NULL) && ok)
        rc = JR_E_STORE;
    return rc;
}

/* Bring a queued job into memory and start what can start. */
static int activate(struct jr_sched *s, const struct jr_sched_jobrow *i, struct jr_err *e)
{
    struct sjob *j = jr_sched_load(s, i->seq, i->id, J_QUEUED, i->priority, i->max_par,
                                   i->created_at, 0, e);

    if (!j)
        return e ? e->code : JR_E_SYSTEM;
    jr_sched_settle(s, j, e);
    jr_sched_dispatch(s);
    return JR_OK;
}

static int still_stopping(struct jr_sched *s, const struct jr_sched_jobrow *i, const char *op,
                          struct jr_err *e)
{
    if (!jr_sched_find(s, i->id))
        return 0;
    return jr_err_set(e, JR_E_CONFLICT, "cannot %s job '%s': its tasks are still"
                      " stopping", op, i->id);
}

/* Move a job that is not in memory to queued / awaiting / rejected. */
static int launch_job(struct jr_sched *s, struct jr_sched_jobrow *i, int keep_succeeded,
                      const char *hold, const char *reject, const char *message, struct jr_err *e)
{
    char dir[4096];
    int target = reject ? J_REJECTED : hold ? J_AWAITING : J_QUEUED;
    int64_t now = jr_store_now_ms();
    int mine = 1, rc = jr_store_op_begin(s->st, e);

    if (rc)
        return rc;
    rc = jr_store_tasks_reset(s->st, i->seq, keep_succeeded, e);
    if (!rc && !keep_succeeded)
        rc = jr_store_assets_clear(s->st, i->seq, e);
    if (!rc)
        rc = jr_sched_write_job_state(s, i->seq, i->id, target, 0,
                                      target == J_REJECTED ? now : 0, reject, message, e);
    if (!rc && target == J_QUEUED)
        rc = jr_sched_shared_take(s, i->seq, &mine, e);
    rc = end_op(s, rc, e);
    if (rc)
        return rc;
    if (target == J_REJECTED)
        jr_metrics_count(s->opts.metrics, JR_M_REJECTIONS, i->surface, "policy", 1);
    if (!keep_succeeded && jr_sched_task_dir(s, i->id, NULL, NULL, dir, sizeof dir) == 0)
        jr_sched_rmtree(dir);
    i->state = target;
    return target == J_QUEUED && mine ? activate(s, i, e) : JR_OK;
}

int jr_sched_start(struct jr_sched *s, const char *id, const char *hold, const char *reject,
                   struct jr_err *e)
{
    const unsigned allowed = BIT(J_CREATED) | BIT(J_SUSPENDED) | BIT(J_SUCCEEDED) |
                             BIT(J_FAILED) | BIT(J_CANCELED) | BIT(J_REJECTED);
    struct jr_sched_jobrow i;
    int rc = get_info(s, id, &i, e), keep;

    if (rc)
        return rc;
    if (!(allowed & BIT(i.state)))
        return refuse(e, "start", &i, allowed);
    if (still_stopping(s, &i, "start", e))
        return JR_E_CONFLICT;
    /* A suspended job resumes; a finished one starts afresh. */
    keep = i.state == J_SUSPENDED || i.state == J_CREATED;
    return launch_job(s, &i, keep, hold, reject,
                      reject ? reject : hold ? hold : "started", e);
}

int jr_sched_restart(struct jr_sched *s, const char *id, struct jr_err *e)
{
    const unsigned allowed = BIT(J_FAILED) | BIT(J_CANCELED) | BIT(J_SUSPENDED);
    struct jr_sched_jobrow i;
    int rc = get_info(s, id, &i, e);

    if (rc)
        return rc;
    if (!(allowed & BIT(i.state)))
        return refuse(e, "restart", &i, allowed);
    if (still_stopping(s, &i, "restart", e))
        return JR_E_CONFLICT;
    return launch_job(s, &i, 1, NULL, NULL, "restarted", e);
}

/* Move the job to target and stop its tasks; error is the job's error (NULL
 * for none), reason the event's message. */
static int halt(struct jr_sched *s, const char *id, const char *op, unsigned allowed,
                int target, const char *reason, const char *error, struct jr_err *e)
{
    struct jr_sched_jobrow i;
    struct sjob *j;
    int rc = get_info(s, id, &i, e);

    if (rc)
        return rc;
    if (!(allowed & BIT(i.state)))
        return refuse(e, op, &i, allowed);
    rc = jr_store_op_begin(s->st, e);
    if (rc)
        return rc;
    rc = jr_sched_write_job_state(s, i.seq, i.id, target, i.started_at,
                                  target == J_SUSPENDED ? 0 : jr_store_now_ms(), error,
                                  reason ? reason : op, e);
    j = jr_sched_find(s, i.id);
    if (!rc && j) {
        j->state = target;
        rc = jr_sched_stop_tasks(s, j, e);
    }
    rc = end_op(s, rc, e);
    if (j)
        jr_sched_settle(s, j, NULL);
    jr_sched_dispatch(s);
    return rc;
}

int jr_sched_stop(struct jr_sched *s, const char *id, const char *reason,
                  struct jr_err *e)
{
    return halt(s, id, "stop", BIT(J_AWAITING) | BIT(J_QUEUED) | BIT(J_RUNNING),
                J_CANCELED, reason ? reason : "stopped", NULL, e);
}

int jr_sched_cancel(struct jr_sched *s, const char *id, const char *reason,
                    struct jr_err *e)
{
    return halt(s, id, "cancel", BIT(J_CREATED) | BIT(J_AWAITING) | BIT(J_QUEUED) |
                BIT(J_RUNNING) | BIT(J_SUSPENDED) | BIT(J_FAILED), J_CANCELED,
                reason ? reason : "canceled", NULL, e);
}

int jr_sched_suspend(struct jr_sched *s, const char *id, const char *reason,
                     struct jr_err *e)
{
    return halt(s, id, "suspend", BIT(J_QUEUED) | BIT(J_RUNNING), J_SUSPENDED,
                reason ? reason : "suspended", NULL, e);
}

int jr_sched_fail(struct jr_sched *s, const char *id, const char *reason, struct jr_err *e)
{
    if (!reason || !*reason)
        reason = "failed on request";
    /* created: a job that could never start (its image pull failed). */
    return halt(s, id, "fail", BIT(J_CREATED) | BIT(J_AWAITING) | BIT(J_QUEUED) |
                BIT(J_RUNNING) | BIT(J_SUSPENDED), J_FAILED, reason, reason, e);
}

int jr_sched_approve(struct jr_sched *s, const char *id, int accept, const char *by,
                     const char *reason, struct jr_err *e)
{
    struct jr_sched_jobrow i;
    char at[40], message[600];
    int mine = 1, rc = get_info(s, id, &i, e);

    if (rc)
        return rc;
    /* The event says who decided and why, for surfaces that show a job's
     * history rather than its log. */
    snprintf(message, sizeof message, "%s%s%.200s%s%.300s", accept ? "approved" : "rejected",
             by ? " by " : "", by ? by : "", reason ? ": " : "", reason ? reason : "");
    if (i.state != J_AWAITING)
        return refuse(e, "approve", &i, BIT(J_AWAITING));
    jr_store_format_time(jr_store_now_ms(), at);
    rc = jr_store_op_begin(s->st, e);
    if (rc)
        return rc;
    rc = jr_store_job_set_approval(s->st, i.seq, accept ? "accept" : "reject", by,
                                   reason, at, e);
    if (!rc)
        rc = jr_sched_write_job_state(s, i.seq, i.id, accept ? J_QUEUED : J_REJECTED, 0,
                                      accept ? 0 : jr_store_now_ms(),
                                      accept ? NULL : (reason ? reason : "rejected"),
                                      message, e);
    if (!rc && accept)
        rc = jr_sched_shared_take(s, i.seq, &mine, e);
    rc = end_op(s, rc, e);
    if (!rc && !accept)
        jr_metrics_count(s->opts.metrics, JR_M_REJECTIONS, i.surface, "approver", 1);
    if (rc || !accept || !mine)
        return rc;
    i.state = J_QUEUED;
    return activate(s, &i, e);
}

int jr_sched_hold(struct jr_sched *s, const char *id, const char *by, const char *reason,
                  struct jr_err *e)
{
    struct jr_sched_jobrow i;
    char at[40];
    int rc = get_info(s, id, &i, e);

    if (rc)
        return rc;
    if (i.state != J_AWAITING)
        return refuse(e, "hold", &i, BIT(J_AWAITING));
    jr_store_format_time(jr_store_now_ms(), at);
    rc = jr_store_op_begin(s->st, e);
    if (rc)
        return rc;
    rc = jr_store_job_set_approval(s->st, i.seq, "wait", by, reason, at, e);
    return end_op(s, rc, e);
}

int jr_sched_update(struct jr_sched *s, const char *id, const struct jr_job_spec *spec,
                    int what, struct jr_err *e)
{
    struct jr_sched_jobrow i;
    struct jr_job_rec r;
    int rc = get_info(s, id, &i, e);

    if (rc)
        return rc;
    if (i.state == J_QUEUED || i.state == J_RUNNING || jr_sched_find(s, i.id))
        return jr_err_set(e, JR_E_LOCKED, "job '%s' is %s: it cannot be changed until it"
                          " ends", i.id, jr_jstate_names[i.state]);
    memset(&r, 0, sizeof r);
    r.seq = i.seq;
    r.priority = what & JR_UPD_PRIORITY ? spec->priority : i.priority;
    r.max_parallelism = what & JR_UPD_MAX_PAR ? spec->max_parallelism : i.max_par;
    if (r.max_parallelism < 0)
        return jr_err_set(e, JR_E_INVALID, "max_parallelism cannot be negative");
    r.attrs = what & JR_UPD_ATTRS ? spec->attrs : NULL;
    r.updated_at = jr_store_now_ms();
    rc = jr_store_op_begin(s->st, e);
    if (rc)
        return rc;
    if (what & (JR_UPD_PRIORITY | JR_UPD_MAX_PAR | JR_UPD_ATTRS))
        rc = jr_store_job_set_attrs(s->st, &r, e);
    if (!rc && (what & JR_UPD_TASKS))
        rc = jr_sched_replace_tasks(s, i.seq, spec, e);
    if (!rc)
        rc = jr_sched_event(s, i.id, NULL, "updated", jr_jstate_names[i.state], NULL, e);
    return end_op(s, rc, e);
}

int jr_sched_remove(struct jr_sched *s, int64_t seq, const char *id, int event,
                    struct jr_err *e)
{
    char dir[4096];
    int rc = jr_store_op_begin(s->st, e);

    if (rc)
        return rc;
    rc = jr_store_job_delete(s->st, seq, e);
    if (!rc && event)
        rc = jr_sched_event(s, id, NULL, "deleted", NULL, NULL, e);
    rc = end_op(s, rc, e);
    if (!rc && jr_sched_task_dir(s, id, NULL, NULL, dir, sizeof dir) == 0)
        jr_sched_rmtree(dir);
    return rc;
}

/* Delete j, whose tasks run or may run: its row becomes the tombstone
 * readers skip, the event is written now, its tasks are stopped without
 * further rows or events, and jr_sched_settle removes it once the last
 * one has ended (at once when none runs). */
static int delete_active(struct jr_sched *s, const struct jr_sched_jobrow *i,
                         struct sjob *j, struct jr_err *e)
{
    int rc = jr_store_op_begin(s->st, e);

    if (rc)
        return rc;
    rc = jr_store_job_mark_deleting(s->st, i->seq, e);
    if (!rc)
        rc = jr_sched_event(s, i->id, NULL, "deleted", NULL, NULL, e);
    if (!rc) {
        j->deleting = 1;
        j->state = J_CANCELED;
        /* already stopping (canceled, suspended): its kills are under way */
        if (!j->stopping)
            rc = jr_sched_stop_tasks(s, j, e);
    }
    rc = end_op(s, rc, e);
    if (j->deleting)
        jr_sched_settle(s, j, NULL);
    jr_sched_dispatch(s);
    return rc;
}

int jr_sched_delete(struct jr_sched *s, const char *id, int force, struct jr_err *e)
{
    struct jr_sched_jobrow i;
    struct sjob *j;
    int rc = get_info(s, id, &i, e);

    if (rc)
        return rc;
    j = jr_sched_find(s, i.id);
    if (force && j)
        return delete_active(s, &i, j, e);
    if (i.state == J_QUEUED || i.state == J_RUNNING)
        return jr_err_set(e, JR_E_LOCKED, "job '%s' is %s: stop it before deleting it",
                          i.id, jr_jstate_names[i.state]);
    if (still_stopping(s, &i, "delete", e))
        return JR_E_CONFLICT;
    return jr_sched_remove(s, i.seq, i.id, 1, e);
}

int jr_sched_set_state(struct jr_sched *s, const char *id, const char *state,
                       const char *error, struct jr_err *e)
{
    const unsigned ended = BIT(J_REJECTED) | BIT(J_SUCCEEDED) | BIT(J_FAILED) |
                           BIT(J_CANCELED);
    struct jr_sched_jobrow i;
    int target = jr_jstate_parse(state), rc;
    int64_t now = jr_store_now_ms();

    if (target < 0)
        return jr_err_set(e, JR_E_INVALID, "'%s' is not a job state", state ? state : "");
    rc = get_info(s, id, &i, e);
    if (rc)
        return rc;
    if (jr_store_tasks_count(s->st, i.seq) != 0)
        return jr_err_set(e, JR_E_CONFLICT, "job '%s' has tasks: the scheduler drives its"
                          " state", i.id);
    if (target == J_RUNNING && !i.started_at)
        i.started_at = now;
    if (target == J_CREATED || target == J_QUEUED || target == J_AWAITING)
        i.started_at = 0;
    return jr_sched_write_job_state(s, i.seq, i.id, target, i.started_at,
                                    (ended & BIT(target)) ? now : 0, error, NULL, e);
}

int jr_sched_log(struct jr_sched *s, const char *id, const char *task, int64_t level,
                 const char *message, const char *data, struct jr_err *e)
{
    struct jr_sched_jobrow i;
    int rc = get_info(s, id, &i, e);

    if (rc)
        return rc;
    return jr_store_log_add(s->st, i.seq, task, level, message, data, e);
}
