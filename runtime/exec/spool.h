/* The daemon's side of an attempt's output spool (format: exec/record.h):
 * whole records from a byte offset on become log lines, and the offset
 * they reach is reported with them, so the store can keep both in one
 * transaction and a daemon that reattaches replays nothing twice. */
#ifndef JR_EXEC_SPOOL_H
#define JR_EXEC_SPOOL_H

#include <stdint.h>

#include "exec/exec.h"

struct jr_exec_spool {
    int fd;                      /* -1 while not open (or not there yet) */
    int64_t offset;              /* bytes of whole line records passed on */
    char *buf;                   /* bytes read past offset; allocated on first read */
    size_t len;
    char *result;                /* the outcome line (record "R"), once read */
};

/* Starts at offset (nothing is opened yet). */
void jr_exec_spool_init(struct jr_exec_spool *sp, int64_t offset);
/* Passes every whole line record of path from sp->offset on to cbs->log,
 * then the new offset to cbs->progress (when it moved). An outcome record
 * (always the last) is kept in sp->result, and the offset stays before it:
 * a replay finds it again. A spool that does not exist yet has nothing.
 * With final (the writer is gone), a partial last record is passed on as
 * well. 0, or -1 with errno when reading failed. */
int jr_exec_spool_read(struct jr_exec_spool *sp, const char *path, int final,
                       const struct jr_exec_cbs *cbs, void *arg);
void jr_exec_spool_close(struct jr_exec_spool *sp);

#endif
