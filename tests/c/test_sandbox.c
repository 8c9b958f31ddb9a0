/* Unit tests for the pure parts of the sandbox helper: option parsing, the
 * outcome JSON line, layer names and cgroup path handling. The namespaces
 * themselves are covered by tests/e2e/sandbox_*.test.sh. */
#include "unit.h"

#include "sandbox/sandbox.h"

#define ARGS(...) (char *[]){__VA_ARGS__}
#define NARGS(...) ((int)(sizeof((char *[]){__VA_ARGS__}) / sizeof(char *)))

/* Parses a copy (parse_bind writes into its argument). */
static int parse(int n, char **in, struct jr_sandbox_opts *o, char *err)
{
    static char store[32][128];
    static char *args[33];
    for (int i = 0; i < n && i < 32; i++) {
        snprintf(store[i], sizeof(store[i]), "%s", in[i]);
        args[i] = store[i];
    }
    return jr_sandbox_parse(n, args, o, err, 256);
}

#define PARSE(o, err, ...) parse(NARGS(__VA_ARGS__), ARGS(__VA_ARGS__), o, err)

TEST(parse_defaults)
{
    struct jr_sandbox_opts o;
    char err[256] = "";
    CHECK_INT(PARSE(&o, err, "--", "/bin/true"), 0);
    CHECK_STR(o.image, "host");
    CHECK_STR(o.workdir, "/outputs");
    CHECK_INT(o.network, JR_SB_NET_NONE);
    CHECK_INT(o.status_fd, 3);
    CHECK_INT(o.grace_ms, 5000);
    CHECK_INT(o.timeout_ms, 0);
    CHECK_INT(o.memory, 0);
    CHECK_INT(o.tmp_size, 64 * 1024 * 1024);
    CHECK_INT(o.uid, 1000);
    CHECK_STR(o.cgroup_parent, "jobrt");
    CHECK(o.cgroup_name == NULL);
    CHECK_STR(o.argv[0], "/bin/true");
    CHECK(o.env[0] == NULL);
}

TEST(parse_everything)
{
    struct jr_sandbox_opts o;
    char err[256] = "";
    int rc = PARSE(&o, err, "--image", "/srv/img", "--bind-ro", "/a:/inputs/a",
                   "--bind-rw=/b:/outputs", "--env", "K=V", "--memory", "64MiB",
                   "--pids", "32", "--cpu", "1500", "--timeout", "2.5",
                   "--grace=500ms", "--network", "full", "--", "sh", "-c", "x");
    CHECK_INT(rc, 0);
    if (rc)
        fprintf(stderr, "err: %s\n", err);
    CHECK_STR(o.image, "/srv/img");
    CHECK_INT(o.nbinds, 2);
    CHECK_STR(o.binds[0].src, "/a");
    CHECK_STR(o.binds[0].dst, "/inputs/a");
    CHECK_INT(o.binds[0].rw, 0);
    CHECK_STR(o.binds[1].src, "/b");
    CHECK_STR(o.binds[1].dst, "/outputs");
    CHECK_INT(o.binds[1].rw, 1);
    CHECK_STR(o.env[0], "K=V");
    CHECK(o.env[1] == NULL);
    CHECK_INT(o.memory, 64 * 1024 * 1024);
    CHECK_INT(o.pids, 32);
    CHECK_INT(o.cpu, 1500);
    CHECK_INT(o.timeout_ms, 2500);
    CHECK_INT(o.grace_ms, 500);
    CHECK_INT(o.network, JR_SB_NET_FULL);
    CHECK_STR(o.argv[0], "sh");
    CHECK_STR(o.argv[2], "x");
}

TEST(parse_more_options)
{
    struct jr_sandbox_opts o;
    char err[256] = "";
    CHECK_INT(PARSE(&o, err, "--network", "allow", "--status-fd", "7", "--cgroup-name",
                    "job-1.task_2-3", "--cgroup-parent", "svc/jobrt", "--tmp-size", "1g",
                    "--workdir", "/work", "--uid", "2000", "--", "x"), 0);
    CHECK_INT(o.network, JR_SB_NET_ALLOW);
    CHECK_INT(o.status_fd, 7);
    CHECK_STR(o.cgroup_name, "job-1.task_2-3");
    CHECK_STR(o.cgroup_parent, "svc/jobrt");
    CHECK_INT(o.tmp_size, 1024LL * 1024 * 1024);
    CHECK_STR(o.workdir, "/work");
    CHECK_INT(o.uid, 2000);
}

TEST(parse_help)
{
    struct jr_sandbox_opts o;
    char err[256] = "";
    CHECK_INT(PARSE(&o, err, "--help"), 0);
    CHECK_INT(o.help, 1);
    CHECK(strstr(jr_sandbox_usage, "--bind-ro") != NULL);
}

TEST(parse_errors)
{
    struct jr_sandbox_opts o;
    char err[256];
    CHECK_INT(PARSE(&o, err, "/bin/true"), -1);
    CHECK(strstr(err, "after --") != NULL);
    CHECK_INT(PARSE(&o, err, "--memory", "lots", "--", "x"), -1);
    CHECK(strstr(err, "--memory") != NULL);
    CHECK_INT(PARSE(&o, err, "--memory", "0", "--", "x"), -1);
    CHECK_INT(PARSE(&o, err, "--pids", "0", "--", "x"), -1);
    CHECK_INT(PARSE(&o, err, "--cpu", "-5", "--", "x"), -1);
    CHECK_INT(PARSE(&o, err, "--timeout", "soon", "--", "x"), -1);
    CHECK_INT(PARSE(&o, err, "--timeout", "-1", "--", "x"), -1);
    CHECK_INT(PARSE(&o, err, "--network", "some", "--", "x"), -1);
    CHECK_INT(PARSE(&o, err, "--bind-ro", "relative:/x", "--", "x"), -1);
    CHECK_INT(PARSE(&o, err, "--bind-ro", "/a", "--", "x"), -1);
    CHECK_INT(PARSE(&o, err, "--bind-rw", "/a:/", "--", "x"), -1);
    CHECK_INT(PARSE(&o, err, "--bind-rw", "/a:/outputs/../etc", "--", "x"), -1);
    CHECK(strstr(err, "..") != NULL);
    CHECK_INT(PARSE(&o, err, "--bind-rw", "/a:/out..puts", "--", "x"), 0);
    CHECK_INT(PARSE(&o, err, "--env", "NOEQUALS", "--", "x"), -1);
    CHECK_INT(PARSE(&o, err, "--env", "=v", "--", "x"), -1);
    CHECK_INT(PARSE(&o, err, "--image", "relative", "--", "x"), -1);
    CHECK_INT(PARSE(&o, err, "--workdir", "rel", "--", "x"), -1);
    CHECK_INT(PARSE(&o, err, "--cgroup-name", "../escape", "--", "x"), -1);
    CHECK_INT(PARSE(&o, err, "--cgroup-parent", "/abs", "--", "x"), -1);
    CHECK_INT(PARSE(&o, err, "--uid", "65536", "--", "x"), -1);
    CHECK_INT(PARSE(&o, err, "--layer", "rel", "--", "x"), -1);
    CHECK_INT(PARSE(&o, err, "--layer", "/l", "--image", "/img", "--", "x"), -1);
    CHECK(strstr(err, "one root") != NULL);
    CHECK_INT(PARSE(&o, err, "--status-fd", "x", "--", "x"), -1);
    CHECK_INT(PARSE(&o, err, "--frobnicate", "1", "--", "x"), -1);
    CHECK(strstr(err, "unknown option") != NULL);
    CHECK_INT(PARSE(&o, err, "--memory"), -1);
    CHECK(strstr(err, "needs a value") != NULL);
    CHECK_INT(PARSE(&o, err, "--"), -1);
}

TEST(units)
{
    CHECK_INT(jr_sandbox_parse_bytes("123"), 123);
    CHECK_INT(jr_sandbox_parse_bytes("4k"), 4096);
    CHECK_INT(jr_sandbox_parse_bytes("64M"), 64 << 20);
    CHECK_INT(jr_sandbox_parse_bytes("2GiB"), 2LL << 30);
    CHECK_INT(jr_sandbox_parse_bytes("1.5G"), -1);
    CHECK_INT(jr_sandbox_parse_bytes("99999999999999999999"), -1);
    CHECK_INT(jr_sandbox_parse_bytes("9999999999999G"), -1);
    CHECK_INT(jr_sandbox_parse_bytes(""), -1);
    CHECK_INT(jr_sandbox_parse_seconds("30"), 30000);
    CHECK_INT(jr_sandbox_parse_seconds("0.5"), 500);
    CHECK_INT(jr_sandbox_parse_seconds("2s"), 2000);
    CHECK_INT(jr_sandbox_parse_seconds("250ms"), 250);
    CHECK_INT(jr_sandbox_parse_seconds("1m"), 60000);
    CHECK_INT(jr_sandbox_parse_seconds("1h"), -1);
    CHECK_INT(jr_sandbox_parse_seconds("nan"), -1);
    CHECK_INT(jr_sandbox_parse_seconds("1e300"), -1);
}

static struct jr_sandbox_outcome blank(int kind)
{
    struct jr_sandbox_outcome o;
    memset(&o, 0, sizeof(o));
    o.kind = kind;
    o.cpu_ms = o.max_rss_bytes = o.wall_ms = -1;
    return o;
}

TEST(outcome_exited)
{
    char buf[1024];
    struct jr_sandbox_outcome o = blank(JR_SB_EXITED);
    o.exit_code = 3;
    o.cpu_ms = 12;
    o.max_rss_bytes = 4096;
    o.wall_ms = 40;
    o.layers = 1u << JR_SB_USERNS | 1u << JR_SB_SECCOMP | 1u << JR_SB_MEMORY_LIMIT;
    int n = jr_sandbox_outcome_json(&o, buf, sizeof(buf));
    CHECK_STR(buf, "{\"outcome\":\"exited\",\"exit_code\":3,\"cpu_ms\":12,"
                   "\"max_rss_bytes\":4096,\"wall_ms\":40,"
                   "\"layers\":[\"userns\",\"seccomp\",\"memory_limit\"]}\n");
    CHECK_INT(n, (int)strlen(buf));
}

TEST(outcome_kinds)
{
    char buf[1024];
    struct jr_sandbox_outcome o = blank(JR_SB_SIGNALED);
    o.signal = 9;
    jr_sandbox_outcome_json(&o, buf, sizeof(buf));
    CHECK_STR(buf, "{\"outcome\":\"signaled\",\"signal\":9,\"layers\":[]}\n");
    o = blank(JR_SB_SECCOMP_KILL);
    o.signal = 31;
    jr_sandbox_outcome_json(&o, buf, sizeof(buf));
    CHECK_STR(buf, "{\"outcome\":\"seccomp\",\"signal\":31,\"layers\":[]}\n");
    o = blank(JR_SB_TIMEOUT);
    snprintf(o.message, sizeof(o.message), "timed out");
    jr_sandbox_outcome_json(&o, buf, sizeof(buf));
    CHECK_STR(buf, "{\"outcome\":\"timeout\",\"message\":\"timed out\",\"layers\":[]}\n");
    const char *names[] = {"exited", "signaled", "oom", "timeout", "pids_limit",
                           "seccomp", "setup_error", "canceled"};
    for (int k = JR_SB_EXITED; k <= JR_SB_CANCELED; k++)
        CHECK_STR(jr_sandbox_outcome_name(k), names[k]);
    CHECK(jr_sandbox_outcome_name(99) == NULL);
    o = blank(99);
    CHECK_INT(jr_sandbox_outcome_json(&o, buf, sizeof(buf)), -1);
}

TEST(outcome_setup_error_escapes)
{
    char buf[1024];
    struct jr_sandbox_outcome o = blank(JR_SB_SETUP_ERROR);
    snprintf(o.stage, sizeof(o.stage), "exec");
    o.err = 2;
    snprintf(o.message, sizeof(o.message), "say \"hi\"\\\n\x01");
    jr_sandbox_outcome_json(&o, buf, sizeof(buf));
    CHECK_STR(buf, "{\"outcome\":\"setup_error\",\"stage\":\"exec\",\"errno\":2,"
                   "\"message\":\"say \\\"hi\\\"\\\\\\n\\u0001\",\"layers\":[]}\n");
}

TEST(outcome_too_small)
{
    char buf[20];
    struct jr_sandbox_outcome o = blank(JR_SB_EXITED);
    CHECK_INT(jr_sandbox_outcome_json(&o, buf, sizeof(buf)), -1);
}

TEST(layer_names)
{
    CHECK_STR(jr_sandbox_layer_name(JR_SB_USERNS), "userns");
    CHECK_STR(jr_sandbox_layer_name(JR_SB_CGROUP_KILL), "cgroup_kill");
    CHECK(jr_sandbox_layer_name(JR_SB_NLAYERS) == NULL);
    CHECK_INT(jr_sandbox_layer_find("seccomp"), JR_SB_SECCOMP);
    CHECK_INT(jr_sandbox_layer_find("memory_limit"), JR_SB_MEMORY_LIMIT);
    CHECK_INT(jr_sandbox_layer_find("nope"), -1);
    struct jr_sandbox_probe p;
    memset(&p, 0, sizeof(p));
    p.layers = 1u << JR_SB_USERNS | 1u << JR_SB_SECCOMP;
    const char *missing = NULL;
    const char *ok[] = {"userns", "seccomp", NULL};
    const char *bad[] = {"userns", "memory_limit", NULL};
    const char *unknown[] = {"warp_drive", NULL};
    CHECK_INT(jr_sandbox_probe_require(&p, ok, &missing), 1);
    CHECK_INT(jr_sandbox_probe_require(&p, bad, &missing), 0);
    CHECK_STR(missing, "memory_limit");
    CHECK_INT(jr_sandbox_probe_require(&p, unknown, &missing), 0);
    CHECK_STR(missing, "warp_drive");
}

static const char hybrid[] =
    "22 27 0:21 / /proc rw,relatime - proc proc rw\n"
    "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:7 - cgroup cgroup rw,cpu,cpuacct\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate\n"
    "42 31 0:39 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n";

TEST(cgroup_mountinfo_hybrid)
{
    struct jr_sandbox_cgmounts m;
    CHECK_INT(jr_sandbox_cg_parse_mountinfo(hybrid, &m), 5);
    CHECK_STR(m.path[JR_CG_MEMORY], "/sys/fs/cgroup/memory");
    CHECK_STR(m.path[JR_CG_PIDS], "/sys/fs/cgroup/pids");
    CHECK_STR(m.path[JR_CG_CPU], "/sys/fs/cgroup/cpu,cpuacct");
    CHECK_STR(m.path[JR_CG_CPUACCT], "/sys/fs/cgroup/cpu,cpuacct");
    CHECK_STR(m.path[JR_CG_V2], "/sys/fs/cgroup/unified");
}

TEST(cgroup_mountinfo_v2_only_and_none)
{
    struct jr_sandbox_cgmounts m;
    CHECK_INT(jr_sandbox_cg_parse_mountinfo(
                  "30 1 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n", &m), 1);
    CHECK_STR(m.path[JR_CG_V2], "/sys/fs/cgroup");
    CHECK_STR(m.path[JR_CG_MEMORY], "");
    CHECK_INT(jr_sandbox_cg_parse_mountinfo("", &m), 0);
    /* cpuset is not cpu; escaped mount points are ignored. */
    CHECK_INT(jr_sandbox_cg_parse_mountinfo(
                  "1 1 0:1 / /cg/cpuset rw - cgroup cgroup rw,cpuset\n"
                  "2 1 0:2 / /cg/my\\040mem rw - cgroup cgroup rw,memory\n", &m), 0);
}

TEST(cgroup_names)
{
    CHECK_INT(jr_sandbox_cg_valid_name("job-1.task_2-3"), 1);
    CHECK_INT(jr_sandbox_cg_valid_name(""), 0);
    CHECK_INT(jr_sandbox_cg_valid_name("."), 0);
    CHECK_INT(jr_sandbox_cg_valid_name(".."), 0);
    CHECK_INT(jr_sandbox_cg_valid_name("a/b"), 0);
    CHECK_INT(jr_sandbox_cg_valid_name("a b"), 0);
    CHECK_INT(jr_sandbox_cg_valid_name(NULL), 0);
    char longname[120];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    CHECK_INT(jr_sandbox_cg_valid_name(longname), 0);
    CHECK_INT(jr_sandbox_cg_valid_parent("jobrt"), 1);
    CHECK_INT(jr_sandbox_cg_valid_parent("system.slice/jobrt"), 1);
    CHECK_INT(jr_sandbox_cg_valid_parent("/jobrt"), 0);
    CHECK_INT(jr_sandbox_cg_valid_parent("jobrt/"), 0);
    CHECK_INT(jr_sandbox_cg_valid_parent("a//b"), 0);
    CHECK_INT(jr_sandbox_cg_valid_parent("a/../b"), 0);
    CHECK_INT(jr_sandbox_cg_valid_parent(""), 0);
}

TEST(cgroup_paths)
{
    char buf[64];
    CHECK_INT(jr_sandbox_cg_path(buf, sizeof(buf), "/sys/fs/cgroup/memory", "jobrt", "t-1"), 0);
    CHECK_STR(buf, "/sys/fs/cgroup/memory/jobrt/t-1");
    CHECK_INT(jr_sandbox_cg_path(buf, sizeof(buf), "/sys/fs/cgroup/unified", "jobrt", NULL), 0);
    CHECK_STR(buf, "/sys/fs/cgroup/unified/jobrt");
    CHECK_INT(jr_sandbox_cg_path(buf, 20, "/sys/fs/cgroup/memory", "jobrt", "t"), -1);
}

int main(void)
{
    RUN(parse_defaults);
    RUN(parse_everything);
    RUN(parse_more_options);
    RUN(parse_help);
    RUN(parse_errors);
    RUN(units);
    RUN(outcome_exited);
    RUN(outcome_kinds);
    RUN(outcome_setup_error_escapes);
    RUN(outcome_too_small);
    RUN(layer_names);
    RUN(cgroup_mountinfo_hybrid);
    RUN(cgroup_mountinfo_v2_only_and_none);
    RUN(cgroup_names);
    RUN(cgroup_paths);
    return UNIT_DONE();
}
