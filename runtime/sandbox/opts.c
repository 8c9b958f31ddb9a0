/* `jobrt sandbox` option parsing: the words between "sandbox" and "--" into
 * a jr_sandbox_opts, with sizes and durations in their usual units. Pure: no
 * I/O, so the unit tests call it directly. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox/sandbox.h"

const char jr_sandbox_usage[] =
"usage: jobrt sandbox [options] -- PROGRAM [ARGS...]\n"
"\n"
"Runs PROGRAM in a new user, mount, pid, ipc, uts, cgroup (and network)\n"
"namespace, on a read-only root built from IMAGE, as an unprivileged user\n"
"with no capabilities, no_new_privs and a seccomp filter, inside cgroups\n"
"with the given limits. Writes one JSON outcome line to the status fd.\n"
"\n"
"  --image DIR|host      root: 'host' = the host's /usr, /etc and merged-usr\n"
"                        links; else a root filesystem folder (default host)\n"
"  --layer DIR           an image layer (repeatable, bottom first): the root is\n"
"                        the layers stacked with overlayfs (whiteouts as 0/0\n"
"                        char devices, opaque folders as user.overlay.opaque)\n"
"  --image-lock FILE     hold FILE locked (shared) while the task runs\n"
"  --bind-ro SRC:DST     bind SRC read-only at DST (repeatable)\n"
"  --bind-rw SRC:DST     bind SRC read-write at DST (repeatable); SRC is\n"
"                        chowned to the task's mapped uid\n"
"  --workdir PATH        start directory (default /outputs)\n"
"  --env K=V             environment entry (repeatable); otherwise only\n"
"                        PATH and HOME=/tmp are set\n"
"  --memory BYTES        memory limit (k/M/G/KiB/MiB/GiB suffixes)\n"
"  --pids N              process limit (the sandbox's init counts)\n"
"  --nproc N             RLIMIT_NPROC of the task: processes of its user in\n"
"                        this sandbox, without a pids cgroup (cheaper)\n"
"  --lazy-cgroups yes    make v1 memory/pids cgroups only for a limit (joining\n"
"                        a v1 hierarchy waits for an RCU grace period); the\n"
"                        cgroup2 leaf still kills and counts cpu time\n"
"  --cpu MILLICORES      cpu quota, 1000 = one core\n"
"  --timeout SECONDS     wall-clock limit from start (0.5, 30s, 500ms)\n"
"  --grace SECONDS       SIGTERM -> SIGKILL delay on timeout/cancel (default 5)\n"
"  --network MODE        none (loopback only, default), full (host network),\n"
"                        allow (loopback only, plus an HTTP proxy on\n"
"                        127.0.0.1:PORT that reaches only --allow-domain\n"
"                        hosts: CONNECT host:port and http:// requests;\n"
"                        HTTP(S)_PROXY/http(s)_proxy and NO_PROXY are set)\n"
"  --allow-domain NAME   a host the allow proxy may reach (repeatable): an\n"
"                        exact name, *.suffix (its subdomains) or an exact\n"
"                        IP literal; none = every request is refused\n"
"  --proxy-port N        the allow proxy's port inside (default 3128)\n"
"  --tmp-size BYTES      size of the tmpfs /tmp (default 64MiB)\n"
"  --status-fd N         where the outcome line goes (default 3)\n"
"  --gate-fd N           prepare everything, then wait until \"go\" can be read\n"
"                        from fd N before starting the task; EOF = canceled\n"
"  --spool FILE          the task outlives whoever started it: its output goes\n"
"                        to FILE (line records, bounded by --log-cap, made at\n"
"                        the first line), the status fd gets 'o' per append,\n"
"                        then the outcome; unless 'k' comes back, the outcome\n"
"                        is appended to FILE too (runtime/exec/record.h)\n"
"  --control NAME        with --spool: listen on the abstract unix socket\n"
"                        NAME for a new status connection (its own uid only)\n"
"  --log-cap BYTES       with --spool: output kept (default 1MiB)\n"
"  --orphan-timeout SECONDS  with --spool: stop the task after this long\n"
"                        with no status connection (default 10m, 0 = never)\n"
"  --cgroup-name NAME    unique leaf name, e.g. job-task-attempt\n"
"  --cgroup-parent PATH  parent under each hierarchy root (default jobrt)\n"
"  --hostname NAME       host name inside (default jobrt)\n"
"  --uid N               task uid inside, 0-65535 (default 1000)\n"
"  --gid N               task gid inside, 0-65535 (default the uid)\n"
"  -h, --help            this text\n"
"\n"
"stdin is /dev/null; stdout/stderr are the helper's. SIGTERM (or SIGINT)\n"
"cancels: the tree gets SIGTERM, then SIGKILL after the grace period.\n"
"Outcome: {\"outcome\":\"exited|signaled|oom|timeout|pids_limit|seccomp|\n"
"setup_error|canceled|orphaned\",\"exit_code\":N,\"signal\":N,\"stage\":S,\"errno\":N,\n"
"\"message\":S,\"cpu_ms\":N,\"max_rss_bytes\":N,\"wall_ms\":N,\"ended_ms\":N,\n"
"\"layers\":[...]}\n"
"Exit status: 0 when an outcome was reported, 1 when not.\n";

int64_t jr_sandbox_parse_bytes(const char *s)
{
    static const struct { const char *suffix; int64_t mul; } units[] = {
        {"", 1}, {"b", 1}, {"k", 1024}, {"kb", 1024}, {"kib", 1024},
        {"m", 1024 * 1024}, {"mb", 1024 * 1024}, {"mib", 1024 * 1024},
        {"g", 1024LL * 1024 * 1024}, {"gb", 1024LL * 1024 * 1024},
        {"gib", 1024LL * 1024 * 1024},
    };
    char *end;
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(end, units[i].suffix) == 0) {
            if (v > (unsigned long long)INT64_MAX / (unsigned long long)units[i].mul)
                return -1;
            return (int64_t)v * units[i].mul;
        }
    }
    return -1;
}

int64_t jr_sandbox_parse_seconds(const char *s)
{
    char *end;
    double mul = 1000;
    if (!s || !(isdigit((unsigned char)*s) || *s == '.'))
        return -1;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s)
        return -1;
    if (strcmp(end, "ms") == 0)
        mul = 1;
    else if (strcmp(end, "m") == 0)
        mul = 60000;
    else if (*end && strcmp(end, "s") != 0)
        return -1;
    v *= mul;
    if (!isfinite(v) || v < 0 || v > 9e15)
        return -1;
    return (int64_t)(v + 0.5); /* v >= 0: llround without libm */
}

static int is_ip_literal(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

int jr_sandbox_domain_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    const char *p = s;
    if (n == 0 || n > 253)
        return 0;
    if (is_ip_literal(s))
        return 1;
    if (p[0] == '*' && p[1] == '.')
        p += 2;
    /* labels of [A-Za-z0-9_-], not starting or ending with '-', no empty ones */
    for (;;) {
        size_t l = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                             "0123456789-_");
        if (l == 0 || l > 63 || p[0] == '-' || p[l - 1] == '-')
            return 0;
        p += l;
        if (*p == '\0')
            return 1;
        if (*p != '.')
            return 0;
        p++;
    }
}

int jr_sandbox_domain_allowed(const char *const *domains, int n, const char *host)
{
    char h[256];
    size_t hl = host ? strlen(host) : 0;
    if (hl && host[hl - 1] == '.')
        hl--; /* "example.com." is "example.com" */
    if (hl == 0 || hl >= sizeof(h))
        return 0;
    memcpy(h, host, hl);
    h[hl] = '\0';
    int ip = is_ip_literal(h);
    for (int i = 0; i < n; i++) {
        const char *d = domains[i];
        if (strcasecmp(d, h) == 0)
            return JR_SB_MATCH_EXACT;
    }
    for (int i = 0; i < n && !ip; i++) {
        const char *d = domains[i];
        if (d[0] == '*' && d[1] == '.') {
            size_t sl = strlen(d + 1); /* ".suffix" */
            if (hl > sl && strcasecmp(h + hl - sl, d + 1) == 0)
                return JR_SB_MATCH_WILDCARD;
        }
    }
    return 0;
}

/* a in host order. */
static int v4_internal(uint32_t a)
{
    return (a >> 24) == 127 || (a >> 24) == 0 ||     /* loopback, "this host" */
           (a >> 16) == 0xA9FE ||                    /* 169.254/16 link-local */
           (a >> 28) == 0xE || a == 0xFFFFFFFFu;      /* multicast, broadcast */
}

int jr_sandbox_addr_host_internal(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return v4_internal(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a) || IN6_IS_ADDR_V4COMPAT(a))
            return v4_internal((uint32_t)a->s6_addr[12] << 24 | (uint32_t)a->s6_addr[13] << 16 |
                               (uint32_t)a->s6_addr[14] << 8 | a->s6_addr[15]);
        return IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_UNSPECIFIED(a) ||
               IN6_IS_ADDR_LINKLOCAL(a) || IN6_IS_ADDR_MULTICAST(a);
    }
    return 1; /* not an internet address at all */
}

static int parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    if (!s || !*s)
        return -1;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* "SRC:DST" with both absolute; DST must not be "/" or contain "..". */
static int parse_bind(char *arg, int rw, struct jr_sandbox_opts *o,
                      char *err, size_t errlen)
{
    char *colon = strchr(arg, ':');
    if (o->nbinds >= JR_SB_MAX_BINDS) {
        snprintf(err, errlen, "too many binds (max %d)", JR_SB_MAX_BINDS);
        return -1;
    }
    if (!colon || arg[0] != '/' || colon[1] != '/' || colon[2] == '\0') {
        snprintf(err, errlen, "bind \"%s\": want /SRC:/DST", arg);
        return -1;
    }
    *colon = '\0';
    const char *dst = colon + 1;
    for (const char *p = dst; (p = strstr(p, "..")) != NULL; p += 2) {
        if ((p == dst || p[-1] == '/') && (p[2] == '/' || p[2] == '\0')) {
            snprintf(err, errlen, "bind target \"%s\": no \"..\" allowed", dst);
            *colon = ':';
            return -1;
        }
    }
    o->binds[o->nbinds].src = arg;
    o->binds[o->nbinds].dst = dst;
    o->binds[o->nbinds].rw = rw;
    o->nbinds++;
    return 0;
}

static void set_defaults(struct jr_sandbox_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->image = "host";
    o->workdir = "/outputs";
    o->tmp_size = 64LL * 1024 * 1024;
    o->grace_ms = 5000;
    o->network = JR_SB_NET_NONE;
    o->proxy_port = JR_SB_PROXY_PORT;
    o->status_fd = 3;
    o->gate_fd = -1;
    o->cgroup_parent = "jobrt";
    o->hostname = "jobrt";
    o->uid = 1000;
    o->gid = -1;
    o->log_cap = 1024 * 1024;
    o->orphan_timeout_ms = 10 * 60 * 1000;
}

int jr_sandbox_parse(int n, char **args, struct jr_sandbox_opts *o,
                     char *err, size_t errlen)
{
    int i;
    set_defaults(o);
    for (i = 0; i < n; i++) {
        const char *a = args[i];
        char *v = NULL;
        int64_t num;
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            o->help = 1;
            return 0;
        }
        if (strncmp(a, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected \"%s\" (the command goes after --)", a);
            return -1;
        }
        /* Every option takes a value: "--opt VALUE" or "--opt=VALUE". */
        char name[32];
        const char *eq = strchr(a, '=');
        size_t nl = eq ? (size_t)(eq - a) : strlen(a);
        if (nl >= sizeof(name)) {
            snprintf(err, errlen, "unknown option \"%s\"", a);
            return -1;
        }
        memcpy(name, a, nl);
        name[nl] = '\0';
        if (eq) {
            v = (char *)eq + 1;
        } else if (i + 1 < n) {
            v = args[++i];
        } else {
            snprintf(err, errlen, "%s needs a value", name);
            return -1;
        }
        if (strcmp(name, "--image") == 0) {
            if (strcmp(v, "host") != 0 && v[0] != '/') {
                snprintf(err, errlen, "--image: \"host\" or an absolute folder");
                return -1;
            }
            o->image = v;
        } else if (strcmp(name, "--layer") == 0) {
            if (v[0] != '/') {
                snprintf(err, errlen, "--layer: an absolute folder");
                return -1;
            }
            if (o->nlayers >= JR_SB_MAX_LAYERS) {
                snprintf(err, errlen, "too many --layer (max %d)", JR_SB_MAX_LAYERS);
                return -1;
            }
            o->layers[o->nlayers++] = v;
        } else if (strcmp(name, "--image-lock") == 0) {
            if (v[0] != '/') {
                snprintf(err, errlen, "--image-lock: an absolute file name");
                return -1;
            }
            o->image_lock = v;
        } else if (strcmp(name, "--bind-ro") == 0 || strcmp(name, "--bind-rw") == 0) {
            if (parse_bind(v, strcmp(name, "--bind-rw") == 0, o, err, errlen))
                return -1;
        } else if (strcmp(name, "--workdir") == 0) {
            if (v[0] != '/') {
                snprintf(err, errlen, "--workdir: an absolute path");
                return -1;
            }
            o->workdir = v;
        } else if (strcmp(name, "--env") == 0) {
            if (o->nenv >= JR_SB_MAX_ENV) {
                snprintf(err, errlen, "too many --env (max %d)", JR_SB_MAX_ENV);
                return -1;
            }
            if (!strchr(v, '=') || v[0] == '=') {
                snprintf(err, errlen, "--env \"%s\": want K=V", v);
                return -1;
            }
            o->env[o->nenv++] = v;
        } else if (strcmp(name, "--memory") == 0 || strcmp(name, "--tmp-size") == 0) {
            if ((num = jr_sandbox_parse_bytes(v)) <= 0) {
                snprintf(err, errlen, "%s: bad size \"%s\"", name, v);
                return -1;
            }
            *(name[2] == 'm' ? &o->memory : &o->tmp_size) = num;
        } else if (strcmp(name, "--pids") == 0) {
            if (parse_int(v, 1, 4194304, &o->pids)) {
                snprintf(err, errlen, "--pids: bad count \"%s\"", v);
                return -1;
            }
        } else if (strcmp(name, "--lazy-cgroups") == 0) {
            if (strcmp(v, "yes") && strcmp(v, "no")) {
                snprintf(err, errlen, "--lazy-cgroups: yes or no");
                return -1;
            }
            o->lazy_cgroups = strcmp(v, "yes") == 0;
        } else if (strcmp(name, "--nproc") == 0) {
            if (parse_int(v, 1, 4194304, &o->nproc)) {
                snprintf(err, errlen, "--nproc: bad count \"%s\"", v);
                return -1;
            }
        } else if (strcmp(name, "--cpu") == 0) {
            if (parse_int(v, 1, 1000000, &o->cpu)) {
                snprintf(err, errlen, "--cpu: bad millicores \"%s\"", v);
                return -1;
            }
        } else if (strcmp(name, "--timeout") == 0 || strcmp(name, "--grace") == 0 ||
                   strcmp(name, "--orphan-timeout") == 0) {
            if ((num = jr_sandbox_parse_seconds(v)) < 0) {
                snprintf(err, errlen, "%s: bad duration \"%s\"", name, v);
                return -1;
            }
            *(name[2] == 't' ? &o->timeout_ms : name[2] == 'g' ? &o->grace_ms
                             : &o->orphan_timeout_ms) = num;
        } else if (strcmp(name, "--control") == 0) {
            if (!jr_sandbox_cg_valid_name(v) || strlen(v) > JR_SB_CONTROL_MAX) {
                snprintf(err, errlen, "--control: 1-%d of [A-Za-z0-9._-]", JR_SB_CONTROL_MAX);
                return -1;
            }
            o->control = v;
        } else if (strcmp(name, "--spool") == 0) {
            if (v[0] != '/') {
                snprintf(err, errlen, "--spool: an absolute file name");
                return -1;
            }
            o->spool = v;
        } else if (strcmp(name, "--log-cap") == 0) {
            if ((num = jr_sandbox_parse_bytes(v)) <= 0) {
                snprintf(err, errlen, "--log-cap: bad size \"%s\"", v);
                return -1;
            }
            o->log_cap = num;
        } else if (strcmp(name, "--network") == 0) {
            if (strcmp(v, "none") == 0)
                o->network = JR_SB_NET_NONE;
            else if (strcmp(v, "full") == 0)
                o->network = JR_SB_NET_FULL;
            else if (strcmp(v, "allow") == 0)
                o->network = JR_SB_NET_ALLOW;
            else {
                snprintf(err, errlen, "--network: none, full or allow");
                return -1;
            }
        } else if (strcmp(name, "--allow-domain") == 0) {
            if (o->ndomains >= JR_SB_MAX_DOMAINS) {
                snprintf(err, errlen, "too many --allow-domain (max %d)", JR_SB_MAX_DOMAINS);
                return -1;
            }
            if (!jr_sandbox_domain_valid(v)) {
                snprintf(err, errlen, "--allow-domain \"%s\": want a host name,"
                         " *.suffix or an IP address", v);
                return -1;
            }
            o->domains[o->ndomains++] = v;
        } else if (strcmp(name, "--proxy-port") == 0) {
            if (parse_int(v, 1, 65535, &num)) {
                snprintf(err, errlen, "--proxy-port: 1-65535");
                return -1;
            }
            o->proxy_port = (int)num;
        } else if (strcmp(name, "--status-fd") == 0) {
            if (parse_int(v, 1, 1 << 20, &num)) {
                snprintf(err, errlen, "--status-fd: bad fd \"%s\"", v);
                return -1;
            }
            o->status_fd = (int)num;
        } else if (strcmp(name, "--gate-fd") == 0) {
            if (parse_int(v, 3, 1 << 20, &num)) {
                snprintf(err, errlen, "--gate-fd: bad fd \"%s\"", v);
                return -1;
            }
            o->gate_fd = (int)num;
        } else if (strcmp(name, "--cgroup-name") == 0) {
            if (!jr_sandbox_cg_valid_name(v)) {
                snprintf(err, errlen, "--cgroup-name: 1-100 of [A-Za-z0-9._-]");
                return -1;
            }
            o->cgroup_name = v;
        } else if (strcmp(name, "--cgroup-parent") == 0) {
            if (!jr_sandbox_cg_valid_parent(v)) {
                snprintf(err, errlen, "--cgroup-parent: relative, [A-Za-z0-9._-/]");
                return -1;
            }
            o->cgroup_parent = v;
        } else if (strcmp(name, "--hostname") == 0) {
            if (!*v || strlen(v) > 63) {
                snprintf(err, errlen, "--hostname: 1-63 characters");
                return -1;
            }
            o->hostname = v;
        } else if (strcmp(name, "--uid") == 0 || strcmp(name, "--gid") == 0) {
            if (parse_int(v, 0, 65535, &num)) {
                snprintf(err, errlen, "%s: 0-65535", name);
                return -1;
            }
            *(name[2] == 'u' ? &o->uid : &o->gid) = (int)num;
        } else {
            snprintf(err, errlen, "unknown option \"%s\"", name);
            return -1;
        }
    }
    if (i >= n) {
        snprintf(err, errlen, "no command (give it after --)");
        return -1;
    }
    if (o->nlayers && strcmp(o->image, "host") != 0) {
        snprintf(err, errlen, "--layer and --image DIR: one root, not both");
        return -1;
    }
    if (o->gid < 0)
        o->gid = o->uid;
    o->argv = args + i;
    o->env[o->nenv] = NULL;
    return 0;
}
