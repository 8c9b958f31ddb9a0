/* The Slurm executor's use of the sandbox executor (exec/slurm_sandbox.c),
 * apart from exec/slurm.h because each side has its own struct
 * jr_exec_proc. sb is the sandbox executor opened for its spec reader and
 * argv builder; it starts nothing itself. */
#ifndef JR_EXEC_SLURM_SANDBOX_H
#define JR_EXEC_SLURM_SANDBOX_H

#include "exec/exec.h"

int sl_sandbox_open(uv_loop_t *loop, const struct jr_exec_sandbox_opts *o,
                    struct jr_executor *sb, struct jr_err *e);
void sl_sandbox_close(struct jr_executor *sb);
/* The sandbox executor's check, then what the nodes cannot do: url
 * inputs, network "allow". */
int sl_sandbox_check(struct jr_executor *sb, const char *alias,
                     const struct jr_task_setup *setup, const char *const *deps, size_t ndeps,
                     struct jr_err *e);
/* The helper's argv for spec (its inputs staged in the task's folder),
 * saying its outcome on fd 3: NULL-terminated, each string and the array
 * malloc'ed. */
int sl_sandbox_argv(struct jr_executor *sb, const struct jr_exec_spec *spec, char ***out,
                    struct jr_err *e);

#endif
