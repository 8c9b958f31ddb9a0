#!/usr/bin/env bash
# `make install DESTDIR=...`: the binary, the sandbox helper beside it, the
# manual page, the systemd unit (PREFIX in its paths, accepted by
# systemd-analyze) and its user, a deployment file that a second install
# leaves alone; and jobrt(1) as man renders it, every command present.
set -u
cd "$(dirname "$0")/../.." || exit 1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
result() { if [ "$1" = 0 ]; then echo "ok - install: $2"; else echo "not ok - install: $2"; [ -n "${3:-}" ] && sed 's/^/    /' "$3" | tail -20 >&2; fi; }

make -s install DESTDIR="$tmp/root" >"$tmp/make.log" 2>&1
result $? "make install DESTDIR=... PREFIX=/usr/local" "$tmp/make.log"
r="$tmp/root"
ok=0
for f in usr/local/bin/jobrt:755 usr/local/bin/jobrt-sandbox:755 usr/local/share/man/man1/jobrt.1:644 \
         usr/local/lib/systemd/system/jobrt.service:644 usr/local/lib/sysusers.d/jobrt.conf:644 etc/jobrt/jobrt.yaml:644; do
  mode=$(stat -c %a "$r/${f%:*}" 2>/dev/null)
  [ "$mode" = "${f#*:}" ] || { echo "    ${f%:*}: mode ${mode:-missing}, want ${f#*:}" >&2; ok=1; }
done
result $ok "every file is installed with its mode"

"$r/usr/local/bin/jobrt" version | grep -q '^jobrt '
result $? "the installed binary runs"

unit="$r/usr/local/lib/systemd/system/jobrt.service"
grep -q '^ExecStart=/usr/local/bin/jobrt serve -c /etc/jobrt/jobrt.yaml --data-dir /var/lib/jobrt$' "$unit" &&
  grep -q '^User=jobrt$' "$unit" && grep -q '^ProtectSystem=strict$' "$unit" &&
  grep -q '^ReadWritePaths=/var/lib/jobrt$' "$unit" && grep -q '^AmbientCapabilities=CAP_SYS_ADMIN$' "$unit" &&
  grep -q '^u jobrt ' "$r/usr/local/lib/sysusers.d/jobrt.conf"
result $? "the unit runs as jobrt, ProtectSystem=strict, the data dir writable, the sandbox's capability"

if command -v systemd-analyze >/dev/null; then
  mkdir -p "$tmp/unit"
  sed "s|/usr/local/bin/jobrt|$r/usr/local/bin/jobrt|" "$unit" >"$tmp/unit/jobrt.service"
  (cd "$tmp/unit" && systemd-analyze verify --man=no ./jobrt.service) >"$tmp/verify.log" 2>&1 && ! [ -s "$tmp/verify.log" ]
  result $? "systemd-analyze verify accepts the unit" "$tmp/verify.log"
fi

echo "# mine" >>"$r/etc/jobrt/jobrt.yaml"
make -s install DESTDIR="$tmp/root" >"$tmp/make2.log" 2>&1 && tail -1 "$r/etc/jobrt/jobrt.yaml" | grep -q '^# mine$'
result $? "a second install keeps the deployment file" "$tmp/make2.log"

make -s install DESTDIR="$tmp/opt" PREFIX=/opt/jobrt SYSCONFDIR=/opt/jobrt/etc >"$tmp/make3.log" 2>&1 &&
  grep -q '^ExecStart=/opt/jobrt/bin/jobrt serve -c /opt/jobrt/etc/jobrt/jobrt.yaml ' "$tmp/opt/opt/jobrt/lib/systemd/system/jobrt.service" &&
  [ -x "$tmp/opt/opt/jobrt/bin/jobrt-sandbox" ]
result $? "PREFIX and SYSCONFDIR move everything, the unit's paths too" "$tmp/make3.log"

# The manual page: man renders it without warnings, and it has every command.
page="$r/usr/local/share/man/man1/jobrt.1"
MANWIDTH=100 man --warnings -l "$page" >"$tmp/man.txt" 2>"$tmp/man.err" && [ -s "$tmp/man.txt" ] && ! [ -s "$tmp/man.err" ]
result $? "man -l renders jobrt.1 without warnings" "$tmp/man.err"
missing=
for cmd in $("$r/usr/local/bin/jobrt" help | awk '/^commands:/ {on = 1; next} on && /^  [a-z]/ {print $1}'); do
  # man justifies lines, so the heading's words may be more than one space apart.
  grep -Eq "^   jobrt +$cmd\b" "$tmp/man.txt" || missing="$missing $cmd"
done
[ -z "$missing" ] && grep -Eq 'jobs +submit +FILE' "$tmp/man.txt" && grep -Eq 'Exit +codes: +0 +done' "$tmp/man.txt"
result $? "every command of jobrt help has its section, with its help text (missing:${missing:- none})"
cmp -s "$page" <("$r/usr/local/bin/jobrt" help --man)
result $? "the page is what jobrt help --man prints"
