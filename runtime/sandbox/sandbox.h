/* The sandbox helper's public face: `jobrt sandbox` and `jobrt sandbox-check`
 * entry points, the parsed options, the outcome record and its JSON line, and
 * the start-up probe and stale-cgroup cleanup the daemon calls. */
#ifndef JR_SANDBOX_H
#define JR_SANDBOX_H

#include <stddef.h>
#include <stdint.h>

/* Entry points for runtime/main.c; argv[1] is "sandbox" / "sandbox-check".
 * Both run in a fresh single-threaded process (no Lua, no libuv). */
int jr_sandbox_main(int argc, char **argv);
int jr_sandbox_check_main(int argc, char **argv);
/* Runs the sandbox command argv[1] names (sandbox, sandbox-check,
 * sandbox-server; command.c): 1 with its exit status in *status, or 0
 * when argv names none of them. */
int jr_sandbox_command(int argc, char **argv, int *status);

/* ---- layers: one bit each, named as `sandbox.require` names them ---- */
enum {
    JR_SB_USERNS, JR_SB_MOUNTNS, JR_SB_PIDNS, JR_SB_IPCNS, JR_SB_UTSNS,
    JR_SB_CGROUPNS, JR_SB_NETNS, JR_SB_PIVOT_ROOT, JR_SB_NO_NEW_PRIVS,
    JR_SB_CAPS, JR_SB_SECCOMP, JR_SB_RLIMITS, JR_SB_CGROUP,
    JR_SB_MEMORY_LIMIT, JR_SB_PIDS_LIMIT, JR_SB_CPU_LIMIT, JR_SB_CGROUP_KILL,
    JR_SB_NLAYERS
};
/* "userns", "memory_limit", ...; NULL when out of range. */
const char *jr_sandbox_layer_name(int layer);
/* The layer's index, or -1 for an unknown name. */
int jr_sandbox_layer_find(const char *name);

/* ---- a task that outlives its daemon (--spool; runtime/exec/record.h) ---- */
#define JR_SB_CONTROL_MAX 64          /* bytes of a control socket's name */
/* A line longer than this is spooled in pieces of this size. */
#define JR_SB_LINE_MAX 65536

/* ---- options ---- */
#define JR_SB_MAX_BINDS 64
#define JR_SB_MAX_LAYERS 127
#define JR_SB_MAX_ENV 256
#define JR_SB_MAX_DOMAINS 64
#define JR_SB_PROXY_PORT 3128

enum { JR_SB_NET_NONE, JR_SB_NET_FULL, JR_SB_NET_ALLOW };

struct jr_sandbox_bind {
    const char *src, *dst;     /* point into argv */
    int rw;
};

struct jr_sandbox_opts {
    const char *image;         /* "host" or a root filesystem folder */
    const char *layers[JR_SB_MAX_LAYERS]; /* else: folders stacked with
                                * overlayfs as the root, bottom first */
    int nlayers;
    const char *image_lock;    /* held shared while the task runs (the image
                                * store's use lock), NULL = none */
    struct jr_sandbox_bind binds[JR_SB_MAX_BINDS];
    int nbinds;
    const char *workdir;       /* default /outputs */
    const char *env[JR_SB_MAX_ENV + 1]; /* NULL-terminated K=V list */
    int nenv;
    int64_t memory;            /* bytes, 0 = no limit */
    int64_t pids;              /* 0 = no limit */
    int64_t nproc;             /* RLIMIT_NPROC of the task (counted per user
                                * namespace), 0 = none: a cgroup-free cap */
    int lazy_cgroups;          /* v1 memory/pids leaves only for a limit */
    int64_t cpu;               /* millicores, 0 = no limit */
    int64_t tmp_size;          /* bytes of /tmp (and /dev/shm) */
    int64_t timeout_ms;        /* 0 = none */
    int64_t grace_ms;          /* SIGTERM -> SIGKILL */
    int network;               /* JR_SB_NET_* as requested */
    const char *domains[JR_SB_MAX_DOMAINS]; /* allow: "name", "*.suffix", IP */
    int ndomains;
    int proxy_port;            /* allow: the proxy's port on the task's lo */
    int status_fd;             /* with spool: the first control connection */
    int gate_fd;               /* -1: none; else wait for "go" before the clone */
    const char *spool;         /* NULL: output on stdout/stderr, outcome on
                                * status_fd; else the task outlives its
                                * daemon (exec/record.h): its output goes
                                * to this file (made at the first line) */
    const char *control;       /* spool: the abstract socket a later
                                * daemon attaches on (NULL = none) */
    int64_t log_cap;           /* spool: bytes of output spooled (default 1 MiB) */
    int64_t orphan_timeout_ms; /* spool: stop after this long without a
                                * daemon, 0 = never (default 10 min) */
    const char *cgroup_name;   /* NULL: "sandbox-<pid>" */
    const char *cgroup_parent; /* under each hierarchy's root; default jobrt */
    const char *hostname;
    int uid;                   /* the task's uid inside, default 1000 */
    int gid;                   /* its gid, default the uid */
    int help;
    char **argv;               /* the task's argv, NULL-terminated */
};

/* Parses args[0..n) (the words after "sandbox"). Returns 0, or -1 with a
 * message in err. Strings point into args. */
int jr_sandbox_parse(int n, char **args, struct jr_sandbox_opts *o,
                     char *err, size_t errlen);
/* Parses "123", "64M", "1GiB", "512k" into bytes; -1 on a bad value. */
int64_t jr_sandbox_parse_bytes(const char *s);
/* Parses "30", "0.5", "2s", "500ms" into milliseconds; -1 on a bad value. */
int64_t jr_sandbox_parse_seconds(const char *s);
/* 1 if s is a valid --allow-domain entry: a host name, "*.suffix" or an IP
 * literal (IPv6 without brackets), at most 253 characters. */
int jr_sandbox_domain_valid(const char *s);
/* Whether host (a name or an IP literal, brackets stripped) may be reached
 * under the allow-list: names match an entry exactly or a "*.suffix" one
 * (a subdomain, not the suffix itself), case-insensitively, ignoring one
 * trailing dot; IP literals only an identical entry. 0 when not allowed,
 * else how it matched. */
enum { JR_SB_MATCH_WILDCARD = 1, JR_SB_MATCH_EXACT = 2 };
int jr_sandbox_domain_allowed(const char *const *domains, int n, const char *host);
/* 1 for an address that reaches the host itself or its link rather than
 * the outside: loopback, unspecified ("this host"), link-local (where
 * cloud metadata services live), multicast and broadcast, also as IPv4
 * mapped into IPv6; and anything that is not IPv4 or IPv6. A name matched
 * only by a "*.suffix" entry is never connected to such an address: whoever
 * runs the suffix's DNS could otherwise point it at the host's loopback. */
struct sockaddr;
int jr_sandbox_addr_host_internal(const struct sockaddr *sa);
extern const char jr_sandbox_usage[];

/* ---- outcome ---- */
enum {
    JR_SB_EXITED, JR_SB_SIGNALED, JR_SB_OOM, JR_SB_TIMEOUT, JR_SB_PIDS,
    JR_SB_SECCOMP_KILL, JR_SB_SETUP_ERROR, JR_SB_CANCELED, JR_SB_ORPHANED
};

struct jr_sandbox_outcome {
    int kind;                  /* JR_SB_EXITED, ... */
    int exit_code;             /* exited */
    int signal;                /* signaled, seccomp; or the main task's end */
    char stage[64];            /* setup_error */
    int err;                   /* setup_error errno */
    char message[256];
    int64_t cpu_ms, max_rss_bytes, wall_ms; /* -1 = unknown, omitted */
    int64_t ended_ms;          /* wall clock (ms since the epoch), 0 = omitted */
    uint32_t layers;           /* bit per JR_SB_* layer */
};

const char *jr_sandbox_outcome_name(int kind);
/* Writes the one-line JSON (with '\n') into buf. Returns its length, or -1
 * if it did not fit. */
int jr_sandbox_outcome_json(const struct jr_sandbox_outcome *o, char *buf,
                            size_t len);

/* ---- cgroups: pure path handling ---- */
enum { JR_CG_MEMORY, JR_CG_PIDS, JR_CG_CPU, JR_CG_CPUACCT, JR_CG_V2, JR_CG_NROLES };

struct jr_sandbox_cgmounts {
    char path[JR_CG_NROLES][256]; /* "" when absent; JR_CG_V2 = cgroup2 */
};

/* Fills m from the text of /proc/self/mountinfo. Returns how many roles
 * were found. */
int jr_sandbox_cg_parse_mountinfo(const char *text,
                                  struct jr_sandbox_cgmounts *m);
/* A cgroup leaf name: 1-100 of [A-Za-z0-9._-], not "." or "..". */
int jr_sandbox_cg_valid_name(const char *name);
/* A parent: '/'-separated valid names, no leading '/', no empty part. */
int jr_sandbox_cg_valid_parent(const char *parent);
/* buf = mount/parent[/name] (name may be NULL). -1 if it did not fit. */
int jr_sandbox_cg_path(char *buf, size_t len, const char *mount,
                       const char *parent, const char *name);

/* ---- start-up services for the daemon ---- */
struct jr_sandbox_probe_item {
    const char *name;          /* a layer name or an informational item */
    int ok;
    char detail[112];
};

struct jr_sandbox_probe {
    struct jr_sandbox_probe_item items[32];
    int n;
    uint32_t layers;           /* layers this machine allows */
};

/* Probes what the machine allows (forks short-lived children; no state is
 * kept). cgroup_parent NULL = "jobrt". Returns 0; never fails as a whole. */
int jr_sandbox_probe(const char *cgroup_parent, struct jr_sandbox_probe *out);
/* 1 if the probe allows every layer named in names (NULL-terminated);
 * else 0 with the first missing name in *missing. */
int jr_sandbox_probe_require(const struct jr_sandbox_probe *p,
                             const char *const *names, const char **missing);

/* Removes every cgroup left under cgroup_parent (NULL = "jobrt") by a
 * previous run, in every hierarchy, killing what runs in it; but one with a
 * live sandbox pid 1 belongs to a helper still running (a task that
 * outlived its daemon) and is left to it. Call
 * at daemon start-up. Sandbox mounts live only in the tasks' private mount
 * namespaces, so there are no host mounts to clean. Returns how many
 * cgroups were removed, or -1 with errno on the first failure (the rest
 * are still tried). */
int jr_sandbox_cleanup_stale(const char *cgroup_parent);

#endif
