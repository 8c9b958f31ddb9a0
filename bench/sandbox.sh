#!/usr/bin/env bash
# Sandbox start-to-exit latency for a trivial task (/bin/true), measured in
# one interleaved run against plain fork+exec and bubblewrap --unshare-all:
# median and p99 of each, printed as ratios; also the slim helper
# (build/jobrt-sandbox) exec'd with the daemon's options, and what the daemon
# does: a helper forked by the sandbox server ("daemon: server-forked").
# BENCH_SANDBOX_RUNS=N (default 300).
set -u
cd "$(dirname "$0")/.." || exit 1
BIN=${JOBRT_BIN:-./jobrt}
RUNS=${BENCH_SANDBOX_RUNS:-300}

if [ "$(id -u)" != 0 ]; then
    echo "sandbox: skipped (needs root: cgroups and the id mapping)"
    exit 0
fi
if ! command -v bwrap >/dev/null 2>&1; then
    echo "sandbox: installing bubblewrap for the baseline" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null 2>&1 &&
          DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null 2>&1; }
fi
if ! "$BIN" sandbox --cgroup-name "bench-$$-check" -- /bin/true 3>/dev/null; then
    echo "sandbox: FAILED: $BIN sandbox -- /bin/true did not run" >&2
    exit 1
fi

# One Perl process runs every variant in turn (so machine noise hits them
# alike), each run a fork+exec timed with a monotonic clock. fd 3 collects
# the helpers' status lines: their wall_ms is the sandbox's own work, without
# the exec and dynamic loading of the jobrt binary.
STATUS=$(mktemp)
trap 'rm -f "$STATUS"' EXIT
# The slim helper the daemon runs as its sandbox server when it sits next to
# the binary.
HELPER=
for h in "$(dirname "$BIN")/jobrt-sandbox" "$(dirname "$BIN")/build/jobrt-sandbox"; do
    [ -x "$h" ] && { HELPER=$h; break; }
done
# What the daemon does per task: a helper forked by the sandbox server
# (bench/sbs_latency.c, built by `make bench`), one run at a time when the
# loop below asks, so that it takes turns with the other cases.
LATENCY=$(dirname "$BIN")/build/bench/sbs_latency
[ -x "$LATENCY" ] || LATENCY=build/bench/sbs_latency
if [ ! -x "$LATENCY" ]; then
    echo "sandbox: $LATENCY is not built (make bench builds it); its row is left out"
    LATENCY=
fi
LATENCY=$LATENCY STATUS=$STATUS HELPER=$HELPER BWRAP=$(command -v bwrap || true) perl -MTime::HiRes=clock_gettime,CLOCK_MONOTONIC -MPOSIX -MIPC::Open2 -e '
    my ($bin, $runs) = @ARGV;
    $^F = 3; # fds up to 3 stay open across exec
    open(my $st, ">>", $ENV{STATUS}) or die;  # fd 3 for the children
    POSIX::dup2(fileno($st), 3) or die if fileno($st) != 3;
    open(my $out, ">&", \*STDOUT) or die;    # results; the children write to /dev/null
    open(STDOUT, ">", "/dev/null") or die;
    my @cases = (
        ["fork+exec /bin/true", sub { ("/bin/true") }],
        ["jobrt sandbox", sub { ($bin, "sandbox", "--cgroup-name", "bench-$$-$_[0]", "--", "/bin/true") }],
        ["jobrt sandbox + limits", sub { ($bin, "sandbox", "--cgroup-name", "bench-$$-l$_[0]",
            "--memory", "256M", "--pids", "64", "--cpu", "1000", "--timeout", "10", "--", "/bin/true") }],
    );
    # The slim helper started by exec per task (as the daemon did before the sandbox
    # server), with the cgroup options of the daemon (no v1 leaf without a limit,
    # nproc rlimit).
    if ($ENV{HELPER}) {
        push @cases, ["slim helper by exec", sub { ($ENV{HELPER}, "sandbox", "--cgroup-name", "bench-$$-d$_[0]",
            "--lazy-cgroups", "yes", "--nproc", "1024", "--", "/bin/true") }];
        push @cases, ["slim helper + limits", sub { ($ENV{HELPER}, "sandbox", "--cgroup-name", "bench-$$-e$_[0]",
            "--lazy-cgroups", "yes", "--memory", "256M", "--pids", "64", "--cpu", "1000",
            "--timeout", "10", "--", "/bin/true") }];
        push @cases, ["slim helper --help", sub { ($ENV{HELPER}, "sandbox", "--help") }];
    }
    push @cases, ["jobrt sandbox --help", sub { ($bin, "sandbox", "--help") }];
    push @cases, ["bwrap --unshare-all", sub { ($ENV{BWRAP}, "--unshare-all", "--ro-bind", "/", "/",
        "--dev", "/dev", "--proc", "/proc", "/bin/true") }] if $ENV{BWRAP};
    my %t;
    my $served = "daemon: server-forked";
    my ($from, $to);
    if ($ENV{LATENCY}) {
        open2($from, $to, $ENV{LATENCY}, $ENV{HELPER} || $bin, "-") or die;
        push @cases, [$served, undef, sub {
            print $to "run\n";
            $to->flush;
            defined(my $l = <$from>) or die "$served failed\n";
            chomp $l;
            $l }];
    }
    sub once {
        my ($c, $i) = @_;
        return $c->[2]->() if $c->[2];
        my @cmd = $c->[1]->($i);
        my $t0 = clock_gettime(CLOCK_MONOTONIC);
        my $rc = system(@cmd);
        die "$c->[0] failed: $rc\n" if $rc;
        return (clock_gettime(CLOCK_MONOTONIC) - $t0) * 1000;
    }
    for my $i (1 .. 20) { once($_, "w$i") for @cases }   # warm-up
    truncate($st, 0);
    for my $i (1 .. $runs) {
        push @{$t{$_->[0]}}, once($_, $i) for @cases;
    }
    close($to) if $to;
    sub pct { my ($p, @v) = @_; @v = sort { $a <=> $b } @v; $v[int(($#v) * $p + 0.5)] }
    my ($bm, $bp) = (pct(0.5, @{$t{"fork+exec /bin/true"}}), pct(0.99, @{$t{"fork+exec /bin/true"}}));
    my ($wm, $wp) = $ENV{BWRAP} ? (pct(0.5, @{$t{"bwrap --unshare-all"}}), pct(0.99, @{$t{"bwrap --unshare-all"}})) : (0, 0);
    printf $out "sandbox: start-to-exit of /bin/true, %d runs each, interleaved\n", $runs;
    printf $out "  %-24s %9s %9s %12s %12s\n", "case", "median ms", "p99 ms", "vs fork+exec", "vs bwrap";
    for my $c (@cases) {
        my ($m, $p) = (pct(0.5, @{$t{$c->[0]}}), pct(0.99, @{$t{$c->[0]}}));
        printf $out "  %-24s %9.2f %9.2f %11.1fx %11s\n", $c->[0], $m, $p, $m / $bm,
            $wm ? sprintf("%.2fx", $m / $wm) : "-";
    }
    open(my $in, "<", $ENV{STATUS}) or die;
    my (@plain, @lim);
    while (<$in>) { /"wall_ms":(\d+)/ or next; push @{/memory_limit/ ? \@lim : \@plain}, $1 }
    printf $out "  helper-internal wall_ms (clone to outcome): median %d / p99 %d ms, with limits %d / %d ms\n",
        pct(0.5, @plain), pct(0.99, @plain), pct(0.5, @lim), pct(0.99, @lim) if @plain && @lim;
    my $h = pct(0.5, @{$t{"jobrt sandbox --help"}});
    printf $out "  exec+load of the jobrt binary alone (sandbox --help): median %.2f ms\n", $h;
    printf $out "  daemon server-forked / fork+exec: %.2fx (goal <= 1.5x)\n",
        pct(0.5, @{$t{$served}}) / $bm if $t{$served};
' "$BIN" "$RUNS"
