/* The daemon's side of `jobrt sandbox-server` (runtime/sandbox/server.c):
 * spawns the server, asks it to fork a helper per task attempt, passes on
 * kills, and turns its exit notices into callbacks on the loop. */
#ifndef JR_EXEC_SBSERVER_H
#define JR_EXEC_SBSERVER_H

#include <stdint.h>
#include <uv.h>

#include "store/err.h"

struct jr_sbs;

/* A helper of server s exited (status as from waitpid), or, with pid 0
 * and status -1, s is lost: no notice will come for the helpers it started
 * (they run on, reparented, and their pipes still report). Always called
 * from the loop, never inside jr_sbs_start or jr_sbs_kill. */
typedef void (*jr_sbs_exit_cb)(void *owner, struct jr_sbs *s, int32_t pid, int status);

/* Spawns `helper sandbox-server`, in its own session; with cgroup_parent
 * (may be NULL) it moves into that parent's shims cgroup (cgroup2), out of
 * the daemon's, so that it and its helpers outlive the daemon. */
int jr_sbs_spawn(uv_loop_t *loop, const char *helper, const char *cgroup_parent,
                 jr_sbs_exit_cb cb, void *owner, struct jr_sbs **out, struct jr_err *e);
/* Forks a helper running `jobrt sandbox words...` with fds (gate, stdout,
 * stderr, status) as its 3, 1, 2 and 4. The fds stay the caller's. Blocks
 * for the server's answer (a fork: well under a millisecond; bounded). */
int jr_sbs_start(struct jr_sbs *s, char *const *words, const int fds[4], int32_t *pid,
                 struct jr_err *e);
/* Sends signum to a helper (group: its whole process group) that the
 * server has not reaped yet. -1 when the server is lost. */
int jr_sbs_kill(struct jr_sbs *s, int32_t pid, int signum, int group);
/* 0 once the server is lost (its lost callback may still be due) or
 * closing. */
int jr_sbs_alive(const struct jr_sbs *s);
/* No more requests: the server sees its control socket close and exits
 * (or is killed after 5 s); its helpers run on. Notices still come until
 * the lost callback (pid 0), after which s frees itself; every server gets
 * that callback once. Safe inside callbacks. */
void jr_sbs_close(struct jr_sbs *s);

#endif
