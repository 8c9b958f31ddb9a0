/* The C core's one entry point: jr_core_open assembles the job store, the
 * scheduler, the executor and the sandbox layer for a data directory, and
 * jr_core_close undoes it. No Lua: the binding (runtime/lua/) fills the
 * options from its config table and calls these. */
#ifndef JR_CORE_H
#define JR_CORE_H

#include <stdint.h>

#include "image/image.h"
#include "loop.h"
#include "sched/sched.h"
#include "store/store.h"

struct jr_core_sandbox_opts {
    int enabled;                   /* 0: tasks run with plain spawn */
    const char *network;           /* default mode: none | full | allow (NULL = none) */
    const char *const *require;    /* NULL-terminated layer names that must be active */
    const char *const *images;     /* NULL-terminated name, root, name, root... */
    const char *const *allow_host_paths; /* NULL-terminated absolute prefixes */
    int64_t orphan_timeout_ms;     /* a helper with no daemon stops its task after
                                    * this; 0 = 10 min, < 0 = never */
};

/* store: the SQLite file in data_dir, or a shared PostgreSQL database */
struct jr_core_store_opts {
    const char *url;               /* NULL = DATA/jobrt.db; else postgresql://... */
    int64_t timeout_ms;            /* the longest wait for the server; 0 = 10 s */
    int64_t heartbeat_ms;          /* shared store: this instance's heartbeat */
    int64_t failover_ms;           /* shared store: a silent instance's tasks
                                    * are failed over after this */
    const char *address;           /* shared store: where this instance serves */
};

/* executor: {backend: slurm, ...}: tasks run as Slurm jobs. */
struct jr_core_slurm_opts {
    int enabled;                   /* 0: the local executor */
    const char *partition, *account; /* NULL: the cluster's default, none */
    const char *bin;               /* folder of sbatch, squeue, ...; NULL: PATH */
    const char *conf;              /* SLURM_CONF for them; NULL: Slurm's own */
    const char *const *sbatch_args; /* NULL-terminated extra sbatch arguments */
    int64_t poll_ms;               /* one squeue for all jobs this often */
    int64_t max_tasks;             /* tasks held in Slurm at once (the node's
                                    * limits do not apply: Slurm allocates) */
    int sandbox;                   /* 1: tasks run under the sandbox helper on
                                    * their node, with the sandbox options */
    int batch_max, batch_width;    /* see struct jr_exec_slurm_opts */
    int64_t batch_window_ms, batch_max_cpu, batch_max_memory;
};

struct jr_core_image_opts {
    int root;                      /* JR_IMAGE_ROOT_*: auto, overlay, copy */
    int64_t max_image, max_total;  /* bytes, 0 = no limit */
    const char *const *pull_hosts; /* NULL-terminated: registries pulled
                                    * from on demand */
};

struct jr_core_opts {
    struct jr_loop *loop;          /* the loop and the log */
    const char *data_dir;          /* NULL = "./jobrt-data"; made if missing */
    struct jr_core_store_opts store;
    struct jr_node node;           /* 0 (or < 0 for gpu) = detect */
    int64_t kill_grace_ms;         /* SIGTERM -> SIGKILL; 0 = 10 s */
    int keep_tasks;                /* close leaves sandboxed tasks running
                                    * (shutdown.tasks: keep) */
    struct jr_core_sandbox_opts sandbox;
    struct jr_core_slurm_opts slurm;
    struct jr_core_image_opts images;
};

/* The open core. The binding reads the fields; they stay valid until
 * jr_core_close. */
struct jr_core {
    struct jr_store *store;
    struct jr_sched *sched;
    struct jr_image_store *images; /* DATA/images, resolved before sandbox.images */
    int lock_fd;                   /* DATA/daemon.lock, held while open */
};

/* Lock DATA for this process (JR_E_CONFLICT naming the pid that holds it:
 * one data directory, one daemon), open the store (DATA/jobrt.db, creating
 * DATA, or store.url), the executor (with sandbox.enabled:
 * probe the layers and log them, refuse when sandbox.require names one that
 * is missing, remove cgroups a crashed daemon left under this data dir's
 * parent; test hook JOBRT_SANDBOX_PROBE_HIDE=layer,... reports layers as
 * missing; with slurm.enabled, the Slurm executor instead, the scheduler's
 * capacity then slurm.max_tasks tasks) and the scheduler, which recovers what a previous daemon left.
 * On failure *out is NULL and e says why (JR_E_INVALID for bad options). */
int jr_core_open(const struct jr_core_opts *o, struct jr_core **out, struct jr_err *e);

/* Kill running tasks, or with keep_tasks leave the sandboxed ones running
 * (their rows stay "running" for the next start), close the scheduler and
 * the store, unlock DATA, free c. Safe with NULL. */
void jr_core_close(struct jr_core *c);

#endif
