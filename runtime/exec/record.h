/* The record of a task attempt that outlives its daemon, and the contract
 * between a daemon and a sandbox helper it (or an earlier daemon) started.
 *
 * Processes. The daemon spawns the sandbox server in its own session; the
 * server forks one helper per attempt in a session of its own (pid = its
 * process group), whose pid 1 dies with it (PR_SET_PDEATHSIG) and takes
 * the task's pid namespace along. Neither the server nor a helper dies
 * with the daemon: the server exits when its control socket closes and
 * leaves its helpers running (they are reparented), a helper writes
 * nothing to the daemon's pipes (the task's output goes to a file, the
 * helper's own stdout/stderr are /dev/null) and ignores SIGPIPE, and the
 * server moves itself (hence its helpers) out of the daemon's cgroup2
 * into <cgroup parent>/shims, so stopping the daemon's service cgroup
 * does not stop them. A helper with no daemon attached for the orphan
 * timeout (sandbox.orphan_timeout) stops its task as a cancel would and
 * records the outcome "orphaned".
 *
 * Files, in the task's folder DATA/jobs/<job>/<task>, one attempt at a
 * time (the daemon removes them before it starts the next attempt). Each
 * new file costs an inode, which a busy file system makes dear, so there
 * are two, and the second only when the task prints something:
 *   attempt.record  this record, written by the daemon after the helper was
 *            forked and before the task's "running" row is committed (so
 *            before the task can run: the helper waits at its gate for
 *            that commit); at the end the helper appends its outcome to it
 *            as the line "result <the JSON `jobrt sandbox` writes on its
 *            status fd>", once the task's processes are all gone and its
 *            output is all in the spool;
 *   attempt.log  the spool: the task's stdout and stderr as the helper cut
 *            them into lines, each a record "1<line>\n" (stdout) or
 *            "2<line>\n" (stderr), no newline inside a line (longer lines
 *            come in pieces of JR_EXEC_LINE_MAX bytes); bounded by the
 *            attempt's log cap (counted as before: the bytes of each line
 *            plus one), then one stderr note that the rest was dropped. The
 *            store keeps how many bytes of it are already log rows (tasks.
 *            log_offset), written in the same transaction as those rows: a
 *            daemon that reattaches replays from there, so no line is lost
 *            or logged twice.
 * The helper listens on an abstract unix socket (no file) whose random
 * name the daemon chose and put in the record (control).
 *
 * Protocol on a control connection (the helper's fd 4 from a socketpair
 * at the start, or a connection a later daemon makes to the control
 * socket; the helper accepts only its own uid and keeps the newest
 * connection, and the daemon checks that the peer is the helper's pid):
 * the helper sends one byte 'o' after it appended to the spool, then, at
 * the end, the outcome line (also appended to the record), and closes. The
 * daemon sends nothing: it starts the task through the gate pipe (fd 3)
 * and cancels it with SIGTERM to the helper (through the server, or
 * through a pidfd it opened after checking the helper's start time). EOF
 * on the connection means the helper is done with the files: the outcome
 * is in the record, or the helper died without one. A helper appends its
 * outcome only to a record that names its pid (one whose gate closed with
 * its daemon may end after a later attempt took the folder).
 *
 * The record is text: a first line "jobrt-attempt <format>", then
 * "<key> <value>" lines: job, task, attempt, helper_pid, helper_start
 * (clock ticks since boot, /proc/<pid>/stat field 22: with the pid it
 * names the helper, never a recycled pid), started_ms (the attempt's start,
 * ms since the epoch), log_cap, control (the socket's abstract name),
 * output (the spool's file name in the folder), and at the end result.
 * Compatibility: a reader takes every format up to
 * its own and ignores keys it does not know; a change that keeps the
 * meaning of the existing keys and of the protocol above adds keys without
 * a new format; any other change is a new format, and the daemon that
 * introduces it must still read (and speak to the helpers of) every older
 * one. A daemon that meets a newer format than its own does not guess: it
 * stops that helper and fails the attempt, saying so. Format 1 is the
 * first. */
#ifndef JR_EXEC_RECORD_H
#define JR_EXEC_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "sandbox/sandbox.h"
#include "store/err.h"

#define JR_EXEC_RECORD_FORMAT 1

/* The attempt's files in the task's folder (named in sandbox/sandbox.h,
 * which the helper shares). */
#define JR_EXEC_RUN_RECORD JR_SB_RUN_RECORD
#define JR_EXEC_RUN_OUTPUT JR_SB_RUN_OUTPUT

struct jr_exec_record {
    int format;
    char job[80], task[80];
    int64_t attempt;
    int64_t helper_pid, helper_start;
    int64_t started_ms;
    int64_t log_cap;
    char control[JR_SB_CONTROL_MAX + 1]; /* "" = none */
    char output[32];
    char result[2048];           /* the helper's outcome line, "" = none yet */
};

/* Writes r (format JR_EXEC_RECORD_FORMAT; not its result) as
 * dir/attempt.record. No rename: it is written before the attempt's row
 * is committed, so a record cut short by a crash is never read. JR_E_SYSTEM
 * naming the file on failure. */
int jr_exec_record_write(const char *dir, const struct jr_exec_record *r, struct jr_err *e);

/* Reads dir/attempt.record into r. JR_E_NOT_FOUND when there is none;
 * JR_E_INVALID when it is not a record or lacks helper_pid, helper_start
 * or attempt, and also (with r->format set to it) when its format is
 * newer than this daemon's. */
int jr_exec_record_read(const char *dir, struct jr_exec_record *r, struct jr_err *e);

/* The record's text; -1 when it did not fit in len (pure, for the tests). */
int jr_exec_record_format(const struct jr_exec_record *r, char *buf, size_t len);
/* Parses text into r: as jr_exec_record_read without the file. */
int jr_exec_record_parse(const char *text, struct jr_exec_record *r, struct jr_err *e);

#endif
