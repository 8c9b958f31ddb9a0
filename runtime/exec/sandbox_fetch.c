/* The sandbox executor's url inputs: each is downloaded into its staged
 * file while the helper waits at its gate; the gate opens once all are in,
 * and a failed download fails the attempt with its reason. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exec/sandbox_internal.h"

/* Stops the downloads still running; their callbacks will not come. */
void jr_sbexec_abort_fetches(struct jr_exec_proc *p)
{
    for (int i = 0; i < p->nfetches; i++) {
        if (p->fetches[i].f) {
            jr_http_get_abort(p->fetches[i].f);
            p->fetches[i].f = NULL;
            p->fetching--;
        }
    }
}


/* A download failed: the attempt fails with its reason (the helper, whose
 * gate closes, reports only "canceled"). */
static void fetch_failed(struct jr_exec_proc *p, struct url_fetch *fs, const char *reason)
{
    if (!p->fetch_err[0])
        snprintf(p->fetch_err, sizeof p->fetch_err, "setup_error at stage inputs: inputs[%d]"
                 " (url %.200s): %s", fs->input, fs->url, reason);
    jr_sbexec_abort_fetches(p);
    p->go_wanted = 0;
    jr_sbexec_gate(p, 1);
}

static void on_fetched(void *arg, int ok, const char *reason)
{
    struct url_fetch *fs = arg;
    struct jr_exec_proc *p = fs->p;

    fs->f = NULL;
    p->fetching--;
    if (!ok)
        fetch_failed(p, fs, reason);
    else if (p->fetching == 0 && p->go_wanted) {
        p->go_wanted = 0;
        jr_sbexec_gate(p, 0);
    }
}

/* Starts a download per url input (fds are taken, -1 after). */
void jr_sbexec_start_fetches(struct sb_exec *ex, struct jr_exec_proc *p,
                             const struct input *inputs, int ninputs, int *url_fd)
{
    int n = 0;

    for (int i = 0; i < ninputs; i++)
        n += url_fd[i] >= 0;
    if (n == 0)
        return;
    p->fetches = calloc((size_t)n, sizeof *p->fetches);
    for (int i = 0; i < ninputs; i++) {
        struct url_fetch *fs;
        struct jr_err fe = { 0, "" };
        if (url_fd[i] < 0)
            continue;
        if (!p->fetches || p->fetch_err[0]) {
            close(url_fd[i]);
            url_fd[i] = -1;
            if (!p->fetch_err[0])
                snprintf(p->fetch_err, sizeof p->fetch_err, "setup_error at stage inputs:"
                         " out of memory");
            continue;
        }
        fs = &p->fetches[p->nfetches++];
        fs->p = p;
        fs->input = i;
        fs->url = strdup(inputs[i].url);
        p->fetching++; /* before the start: a failure may call back at once */
        if (jr_http_get_start(ex->loop, &ex->tls, inputs[i].url, url_fd[i],
                              inputs[i].max_bytes, URL_TIMEOUT_MS, on_fetched, fs, &fs->f,
                              &fe)) {
            p->fetching--;
            fetch_failed(p, fs, fe.msg);
        }
        url_fd[i] = -1;
    }
    if (p->fetch_err[0])
        jr_sbexec_gate(p, 1);
}
