/* The sandbox inside a Slurm allocation (executor.sandbox): the wrapper on
 * the node runs the task under the sandbox helper (jobrt-sandbox beside
 * the daemon's binary, which the nodes must see at the same path). The
 * sandbox executor's own spec reader checks and stages a task (image,
 * inputs, network) and builds the helper's argv; here that argv loses what
 * only a helper of this daemon has (the gate, the status pipe) and says
 * its outcome on fd 3, which the wrapper keeps as run/outcome. What needs
 * the daemon beside the task (url downloads, the allow-list proxy) is
 * refused at submit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exec/sandbox_internal.h"
#include "exec/slurm_sandbox.h"

int sl_sandbox_open(uv_loop_t *loop, const struct jr_exec_sandbox_opts *o,
                    struct jr_executor *sb, struct jr_err *e)
{
    return jr_exec_sandbox_open(loop, o, sb, e);
}

void sl_sandbox_close(struct jr_executor *sb)
{
    if (sb->ops)
        sb->ops->close(sb->self);
    sb->ops = NULL;
}

int sl_sandbox_check(struct jr_executor *x, const char *alias,
                     const struct jr_task_setup *setup, const char *const *deps, size_t ndeps,
                     struct jr_err *e)
{
    const struct sb_exec *sb = x->self;
    const char *net;
    int rc = x->ops->check(x->self, alias, setup, deps, ndeps, e);

    if (rc || !setup)
        return rc;
    for (size_t i = 0; setup->inputs_kind == JR_SPEC_OK && i < setup->ninputs; i++)
        if (setup->inputs[i].source && strcmp(setup->inputs[i].source, "url") == 0)
            return jr_err_set(e, JR_E_INVALID, "task '%s': inputs[%zu] (url): the slurm"
                              " executor does not download inputs; stage the file on the"
                              " shared filesystem and give it as a path", alias, i);
    net = setup->network_mode ? setup->network_mode : sb->network;
    if (net && strcmp(net, "allow") == 0)
        return jr_err_set(e, JR_E_INVALID, "task '%s': network: \"allow\" needs the daemon's"
                          " proxy beside the task; the slurm executor offers none or full",
                          alias);
    return JR_OK;
}

int sl_sandbox_argv(struct jr_executor *x, const struct jr_exec_spec *spec, char ***out,
                    struct jr_err *e)
{
    struct sb_exec *sb = x->self;
    struct sb_task t;
    struct argv_b a = { NULL, 0, 0, 0 };
    int url_fd[MAX_INPUTS], rc;
    size_t k = 0;

    *out = NULL;
    for (int i = 0; i < MAX_INPUTS; i++)
        url_fd[i] = -1;
    if ((rc = jr_sbexec_read_task(sb, spec, &t, e)))
        return rc;
    rc = jr_sbexec_build_args(sb, spec, &t, "", "", url_fd, &a, e);
    jr_sbexec_task_free(&t);
    for (int i = 0; i < MAX_INPUTS; i++)
        if (url_fd[i] >= 0)
            close(url_fd[i]);
    if (rc) {
        jr_sbexec_free_list(a.v);
        return rc;
    }
    /* The flags of a helper this daemon spawns and watches go (its gate,
     * spool, control socket): on the node the wrapper is its daemon, its
     * output goes to the run folder, and the outcome line is the wrapper's
     * fd 3. */
    for (size_t i = 0, opts = 1; i < a.n; i++) {
        static const char *const drop[] = {
            "--gate-fd=", "--spool=", "--control=", "--log-cap=", "--orphan-timeout=", NULL
        };
        int gone = 0;
        /* Only the helper's options: the task's argv follows "--". */
        if (strcmp(a.v[i], "--") == 0)
            opts = 0;
        for (int d = 0; opts && drop[d] && !gone; d++)
            gone = i > 0 && strncmp(a.v[i], drop[d], strlen(drop[d])) == 0;
        if (gone) {
            free(a.v[i]);
            continue;
        }
        if (opts && strcmp(a.v[i], "--status-fd=4") == 0)
            a.v[i][12] = '3';
        a.v[k++] = a.v[i];
    }
    a.v[k] = NULL;
    *out = a.v;
    return JR_OK;
}
