/* One task process as the plain executor sees it (exec/spawn.c): the gate
 * it waits on, its stdout/stderr pipes read into log lines (capped), and
 * the count of pipes and handles still open that tells its owner when the
 * attempt may be reported and when it may be freed. (The sandbox
 * executor's tasks outlive the daemon: their output goes through a spool,
 * exec/spool.h.) */
#ifndef JR_EXEC_CHILD_H
#define JR_EXEC_CHILD_H

#include <stdint.h>
#include <uv.h>

#include "exec/exec.h"
#include "exec/lines.h"
#include "store/err.h"

struct jr_exec_child;

/* The owner's hooks: a pipe reached its end (the attempt may be done) and a
 * handle finished closing (the owner may be freed once open_handles is 0). */
struct jr_exec_child_hooks {
    void (*ended)(void *owner);
    void (*closed)(void *owner);
};

/* Embedded in the owner's attempt; every field is the child's. */
struct jr_exec_child {
    void *owner;
    const struct jr_exec_child_hooks *hooks;
    uv_loop_t *loop;
    uv_pipe_t out, err;
    int gate_fd;                 /* write end of the gate pipe, -1 once used */
    int fds[3];                  /* the process's ends: gate, stdout, stderr */
    struct jr_exec_lines lines[2];
    struct jr_exec_cbs cbs;      /* the scheduler's log and done */
    void *arg;
    int64_t logged, log_cap;     /* log_cap 0: no cap */
    int truncated;
    int open_pipes;              /* pipes still being read */
    int open_handles;            /* handles not yet closed */
    uint64_t started;            /* uv_now once reading started */
};

/* Makes the gate pipe and the stdout/stderr pipes; the process's ends are
 * c->fds (gate read end, stdout and stderr write ends), to be passed to it
 * and then closed with jr_exec_child_started. The read ends are open in
 * c->out and c->err (counted in open_handles). On failure, handles
 * still closing are counted in open_handles (the closed hook follows for
 * each: the owner is freed from there); with open_handles 0, nothing is
 * left open. */
int jr_exec_child_open(struct jr_exec_child *c, uv_loop_t *loop, void *owner,
                       const struct jr_exec_child_hooks *hooks,
                       const struct jr_exec_cbs *cbs, void *arg, int64_t log_cap,
                       struct jr_err *e);

/* Opens one more pipe of the owner's on fd (taken on success), counted in
 * open_handles and open_pipes; its data points to the child. The owner
 * reads it and ends it with jr_exec_child_pipe_ended. */
int jr_exec_child_open_pipe(struct jr_exec_child *c, uv_pipe_t *h, int fd,
                            struct jr_err *e);

/* The process runs: closes its ends here and starts reading stdout and
 * stderr into log lines. */
void jr_exec_child_started(struct jr_exec_child *c);

/* An owner's pipe reached its end: closes it and calls the ended hook. */
void jr_exec_child_pipe_ended(struct jr_exec_child *c, uv_stream_t *s);

/* Closes one of the owner's handles through the loop (h->data becomes the
 * child); the closed hook follows. */
void jr_exec_child_close(struct jr_exec_child *c, uv_handle_t *h);

/* A start that failed after jr_exec_child_open: closes the pipes' handles
 * and the process's ends; the closed hook follows for each handle. */
void jr_exec_child_abandon(struct jr_exec_child *c);

/* Writes "go" through the gate and closes it. */
void jr_exec_child_go(struct jr_exec_child *c);

/* Closes the gate unopened (a cancel before the command ran); 1 if it was
 * still shut. */
int jr_exec_child_shut(struct jr_exec_child *c);

/* Calls the scheduler's done with r, its duration measured from the start. */
void jr_exec_child_done(struct jr_exec_child *c, struct jr_exec_result *r);

/* Frees what the child holds besides its handles (which must be closed). */
void jr_exec_child_free(struct jr_exec_child *c);

#endif
