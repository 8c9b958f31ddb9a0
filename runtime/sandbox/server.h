/* The wire between the daemon and `jobrt sandbox-server`, the long-lived
 * process that forks one sandbox helper per task attempt. The daemon talks
 * on two socketpairs: the control socket (fd 3 in the server) carries
 * requests and, for a start, one reply; the events socket (fd 4) carries
 * exit notices the server sends as it reaps its helpers. Both are
 * SOCK_STREAM, messages are fixed-size records in host byte order. */
#ifndef JR_SANDBOX_SERVER_H
#define JR_SANDBOX_SERVER_H

#include <stdint.h>

#define JR_SBS_CTL_FD 3
#define JR_SBS_EVENTS_FD 4
#define JR_SBS_MAX_ARGS (4u << 20)   /* bytes of one start request's words */

enum {
    /* Fork a helper. len bytes follow: the words after "sandbox", each
     * NUL-terminated. Four fds ride with the header (SCM_RIGHTS): the gate,
     * stdout, stderr and status, which become the helper's fds 3, 1, 2, 4.
     * The reply is a struct jr_sbs_reply. */
    JR_SBS_START = 1,
    /* Signal helper pid (arg = signal) if it is still the server's child:
     * the pid cannot have been reused. No reply. */
    JR_SBS_KILL = 2,
    /* The same to the helper's whole process group. */
    JR_SBS_KILL_GROUP = 3,
};

struct jr_sbs_req {
    uint32_t kind;
    int32_t pid;
    int32_t arg;
    uint32_t len;
};

struct jr_sbs_reply {
    int32_t pid;                /* > 0: the helper; else -errno */
    int32_t unused;
};

struct jr_sbs_exit {
    int32_t pid;
    int32_t status;             /* as from waitpid */
};

/* `jobrt sandbox-server [--cgroup-parent P]`: serves until the control
 * socket closes, then exits (its helpers run on). argv[0] is reused for
 * the helpers' process titles. */
int jr_sandbox_server_main(int argc, char **argv);

#endif
