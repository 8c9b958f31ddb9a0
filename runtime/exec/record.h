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
 * The record is kept in the store, in the task's row (tasks.run_record),
 * written with the "running" state in the same transaction: it is on disk
 * exactly when the attempt is, before the task can start (the helper waits
 * at its gate for that commit). It names the helper (pid and start time),
 * its control socket and its spool. No file is made for it: each new file
 * costs an inode, which a busy file system makes dear (measured here:
 * 0.3-0.7 ms each), and a daemon runs hundreds of tasks a second.
 *
 * The spool, DATA/jobs/<job>/<task>/<spool>, one per attempt under a name
 * of its own, made by the helper at the task's first line (a task that
 * prints nothing has none): the task's stdout and stderr cut into lines,
 * each a record "1<line>\n" (stdout) or "2<line>\n" (stderr), no newline
 * inside a line (longer lines come in pieces of JR_EXEC_LINE_MAX bytes);
 * bounded by the attempt's log cap (counted as before: the bytes of each
 * line plus one), then one stderr note that the rest was dropped; and, when
 * no daemon took the outcome (below), a last record "R<outcome line>". The
 * store keeps how many bytes of it are already log rows (tasks.log_offset),
 * written in the same transaction as those rows: a daemon that reattaches
 * replays from there, so no line is lost or logged twice. The daemon
 * removes the spool once the attempt's end is committed.
 *
 * The control socket is an abstract unix socket (no file) whose random
 * name the daemon chose. A control connection is the helper's fd 4 (a
 * socketpair end from the daemon that started it) or a later daemon's
 * connection to the control socket; the helper accepts its own uid only
 * and keeps the newest connection, the daemon checks that the peer is the
 * helper's pid. The helper sends one byte 'o' after each append to the
 * spool, then, at the end, the outcome line (the JSON `jobrt sandbox`
 * writes on its status fd) and shuts its side down. The daemon answers
 * 'k' once the outcome is committed; a helper that gets no 'k' (no daemon,
 * or one that went) appends the outcome to the spool before it exits. The
 * daemon sends nothing else: it starts the task through the gate pipe
 * (fd 3) and cancels it with SIGTERM to the helper (through the server, or
 * through a pidfd it opened after checking the helper's start time). EOF
 * without the outcome line: the daemon waits for the helper's exit (the
 * server's notice, or its pidfd), then reads the spool to its end, where
 * the outcome is, or the helper died without one.
 *
 * The record is text: a first line "jobrt-attempt <format>", then
 * "<key> <value>" lines: job, task, attempt, helper_pid, helper_start
 * (clock ticks since boot, /proc/<pid>/stat field 22: with the pid it
 * names the helper, never a recycled pid), started_ms (the attempt's start,
 * ms since the epoch), log_cap, control (the socket's abstract name),
 * spool (its file name in the task's folder). Compatibility: a reader
 * takes every format up to its own and ignores keys it does not know; a
 * change that keeps the meaning of the existing keys and of the protocol
 * above adds keys without a new format; any other change is a new format,
 * and the daemon that introduces it must still read (and speak to the
 * helpers of) every older one. A daemon that meets a newer format than its
 * own does not guess: it stops that helper and fails the attempt, saying
 * so. Format 1 is the first. */
#ifndef JR_EXEC_RECORD_H
#define JR_EXEC_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "sandbox/sandbox.h"
#include "store/err.h"

#define JR_EXEC_RECORD_FORMAT 1
#define JR_EXEC_RECORD_MAX 1024      /* bytes of a record's text */

struct jr_exec_record {
    int format;
    char job[80], task[80];
    int64_t attempt;
    int64_t helper_pid, helper_start;
    int64_t started_ms;
    int64_t log_cap;
    char control[JR_SB_CONTROL_MAX + 1]; /* "" = none */
    char spool[JR_SB_CONTROL_MAX + 8];   /* file name in the task's folder */
};

/* The record's text (format JR_EXEC_RECORD_FORMAT); -1 when it did not fit
 * in len. Pure. */
int jr_exec_record_format(const struct jr_exec_record *r, char *buf, size_t len);

/* Parses text into r. JR_E_INVALID when it is not a record or lacks
 * helper_pid, helper_start or attempt, and also (with r->format set to it)
 * when its format is newer than this daemon's. Pure. */
int jr_exec_record_parse(const char *text, struct jr_exec_record *r, struct jr_err *e);

#endif
