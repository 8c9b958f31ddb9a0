/* State names of jobs and tasks, and the node's capacity detected from the
 * machine when the deployment does not state it. */
#include <string.h>
#include <unistd.h>

#include "sched/internal.h"

const char *const jr_jstate_names[J_NSTATES] = {
    "created", "awaiting_approval", "rejected", "queued", "running", "succeeded",
    "failed", "canceled", "suspended"
};

const char *const jr_tstate_names[T_NSTATES] = {
    "pending", "ready", "running", "succeeded", "failed", "canceled", "skipped"
};

int jr_jstate_parse(const char *name)
{
    int i;

    for (i = 0; name && i < J_NSTATES; i++)
        if (strcmp(name, jr_jstate_names[i]) == 0)
            return i;
    return -1;
}

int jr_tstate_parse(const char *name)
{
    int i;

    for (i = 0; name && i < T_NSTATES; i++)
        if (strcmp(name, jr_tstate_names[i]) == 0)
            return i;
    return -1;
}

int jr_job_state_valid(const char *state)
{
    return jr_jstate_parse(state) >= 0;
}

int jr_task_state_valid(const char *state)
{
    return jr_tstate_parse(state) >= 0;
}

const char *jr_job_state_name(int i)
{
    return i >= 0 && i < J_NSTATES ? jr_jstate_names[i] : NULL;
}

void jr_node_detect(struct jr_node *n)
{
    int64_t cpus = (int64_t)uv_available_parallelism();
    uint64_t mem = uv_get_constrained_memory();

    if (cpus < 1)
        cpus = 1;
    if (mem == 0 || mem > uv_get_total_memory())
        mem = uv_get_total_memory();
    if (n->cpu <= 0)
        n->cpu = cpus * 1000;
    if (n->memory <= 0)
        n->memory = (int64_t)mem;
    if (n->gpu < 0)
        n->gpu = 0;
    if (n->max_tasks <= 0)
        n->max_tasks = cpus * 8;
}
