/* The sandbox executor's preparation of a task before its start: with
 * images.root: copy, the merged root of its image when that is not made
 * yet (an image installed while tasks got overlays). Making it copies
 * every layer, so it runs on libuv's thread pool, never on the loop: one
 * work per image however many tasks want it at once, the image store
 * building it in a temp folder renamed into place under its lock. The
 * scheduler keeps those tasks waiting (reason Preparing) and asks again
 * when the work is done; the tasks that waited for a work that failed fail
 * with its reason, a later task tries again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/sandbox_internal.h"
#include "loop.h"

struct root_work {
    uv_work_t req;
    struct jr_image_store *store; /* the work's own handle (the executor's
                                  * may be closed before the work ends) */
    uint64_t queued_ns;          /* uv_hrtime when it was queued */
    struct sb_exec *ex;
    struct root_work *next;
    uint64_t id;                 /* the tickets of the tasks that wait for it */
    int running;                 /* on the pool; else it failed (kept for its
                                  * waiters to read why) */
    char manifest[80];
    char name[256];              /* the image as a task named it, for messages */
    int rc;
    struct jr_err e;
};

static void work_run(uv_work_t *req)
{
    struct root_work *w = req->data;

    w->rc = jr_image_root_make(w->store, w->manifest, &w->e);
}

static void unlink_work(struct sb_exec *ex, struct root_work *w)
{
    for (struct root_work **p = &ex->root_works; *p; p = &(*p)->next)
        if (*p == w) {
            *p = w->next;
            return;
        }
}

static void work_done(uv_work_t *req, int status)
{
    struct root_work *w = req->data;
    struct sb_exec *ex = w->ex;
    double secs;

    w->running = 0;
    ex->nworks--;
    jr_image_store_close(w->store);
    w->store = NULL;
    if (status != 0 && w->rc == JR_OK)
        w->rc = jr_err_set(&w->e, JR_E_SYSTEM, "the work was canceled");
    secs = (double)(uv_hrtime() - w->queued_ns) / 1e9;
    if (ex->log && w->rc == JR_OK)
        jr_log(ex->log, JR_LOG_INFO, "images: made the merged copy of image %s in %.2f s,"
               " off the loop", w->name, secs);
    else if (ex->log)
        jr_log(ex->log, JR_LOG_WARN, "images: making the merged copy of image %s failed"
               " after %.2f s: %s", w->name, secs, w->e.msg);
    if (w->rc == JR_OK) {
        unlink_work(ex, w);
        free(w);
    }
    /* Its waiters are asked again (a closed executor's scheduler is gone). */
    if (!ex->closing && ex->kick)
        ex->kick(ex->kick_arg);
    jr_sbexec_maybe_free(ex);
}

static struct root_work *find_work(struct sb_exec *ex, const char *manifest)
{
    for (struct root_work *w = ex->root_works; w; w = w->next)
        if (strcmp(w->manifest, manifest) == 0)
            return w;
    return NULL;
}

int jr_sbexec_prepare(void *self, const struct jr_task_setup *setup, uint64_t *ticket,
                      void (*kick)(void *arg), void *arg, char *why, size_t whylen)
{
    struct sb_exec *ex = self;
    struct jr_err e = { 0, "" };
    struct root_work *w;
    char manifest[80];
    const char *name;
    int missing = 0;

    if (!ex->image_store || !setup || setup->image_kind != JR_SPEC_OK)
        return 0;
    name = setup->image;
    if (strcmp(name, "host") == 0 || !jr_image_name_valid(name))
        return 0;
    /* An error here is the start's to report, with the task's name. */
    if (jr_image_root_needed(ex->image_store, name, manifest, sizeof manifest, &missing, &e) ||
        !missing)
        return 0;
    w = find_work(ex, manifest);
    if (w && !w->running && *ticket == w->id) {
        snprintf(why, whylen, "setup_error: image %s: making its merged copy (images.root:"
                 " copy) failed: %s", name, w->e.msg);
        return -1;
    }
    if (!w || !w->running) {
        /* None yet, or an earlier one failed before this task waited for
         * it: a new try. */
        if (!w) {
            if (!(w = calloc(1, sizeof *w))) {
                snprintf(why, whylen, "setup_error: out of memory");
                return -1;
            }
            w->ex = ex;
            w->next = ex->root_works;
            ex->root_works = w;
            snprintf(w->manifest, sizeof w->manifest, "%s", manifest);
        }
        w->id = ++ex->work_ids;
        w->rc = JR_OK;
        w->e.code = 0;
        w->e.msg[0] = 0;
        snprintf(w->name, sizeof w->name, "%s", name);
        w->req.data = w;
        w->queued_ns = uv_hrtime();
        if (!(w->store = jr_image_store_dup(ex->image_store)) ||
            uv_queue_work(ex->loop, &w->req, work_run, work_done) != 0) {
            jr_image_store_close(w->store);
            unlink_work(ex, w);
            free(w);
            snprintf(why, whylen, "setup_error: image %s: cannot queue the making of its"
                     " merged copy", name);
            return -1;
        }
        w->running = 1;
        ex->nworks++;
    }
    ex->kick = kick;
    ex->kick_arg = arg;
    *ticket = w->id;
    snprintf(why, whylen, "waits for the merged copy of image %s to be made (images.root:"
             " copy; once per image, off the loop)", w->name);
    return 1;
}

void jr_sbexec_free_works(struct sb_exec *ex)
{
    while (ex->root_works) {
        struct root_work *w = ex->root_works;
        ex->root_works = w->next;
        free(w);
    }
}
