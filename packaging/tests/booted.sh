#!/usr/bin/env bash
# heat under a real systemd: a Debian rootfs (mmdebstrap, minbase) booted with
# systemd-nspawn, driven with nsenter. Proves, in that order:
#  1. the unit (binary path, no procps): active only after READY=1; reload ends
#     when heat has reloaded and a bad file keeps the old configuration; a
#     stopped heat is restarted by the watchdog; stop ends a TERM-ignoring
#     check within heat's grace with nothing left in the unit's cgroup; exit 2
#     is not restarted; checks run in heat's delegated cgroups and an escaped
#     grandchild ends with its check;
#  2. the package: dpkg -i enables and starts heat, an edited conffile survives
#     an upgrade, logrotate.service rotates the log of the running heat with
#     nothing lost or doubled, dpkg --purge leaves nothing behind;
#  3. the Ansible role (Debian's ansible-core, in the container): the .deb and
#     the binary path, a second run changes nothing, a new probe reloads heat
#     once, an invalid probe is kept off the host by `validate:`.
# Needs root and systemd-nspawn; exits non-zero where it cannot run.
set -euo pipefail

cd "$(dirname "$0")/../.."
. packaging/tests/lib.sh
ROOT=$PWD
SUITE=bookworm
MIRROR=http://deb.debian.org/debian

say() { printf '== %s\n' "$*"; }
ok() { printf '   ok: %s\n' "$*"; }
die() {
    printf 'booted.sh: FAIL: %s\n' "$*" >&2
    if [ -n "${CPID:-}" ]; then
        printf -- '--- journalctl -u heat (last 30 lines)\n' >&2
        c journalctl -u heat --no-pager -n 30 >&2 2>/dev/null || true
        printf -- '--- heat.verbose.log (last 20 lines)\n' >&2
        tail -n 20 "$ROOTFS/var/log/heat/heat.verbose.log" >&2 2>/dev/null || true
    fi
    exit 1
}

[ "$(id -u)" = 0 ] || die "run as root: systemd-nspawn and mmdebstrap need it"
grep -qs '^name = "heat"$' Cargo.toml || die "run from the heat repository root"

WORK=$(mktemp -d /tmp/heat-booted.XXXXXX)
ROOTFS=$WORK/rootfs
NSPAWN_PID=
CPID=
t0=$SECONDS

# The container's processes are found by pid: nspawn's, then anything whose
# root is the rootfs (what a failed poweroff would leave).
cleanup() {
    local rc=$? p
    if [ -n "$NSPAWN_PID" ] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
        # nspawn turns TERM into a clean poweroff of the container.
        kill -TERM "$NSPAWN_PID" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.2; done
        [ -z "$CPID" ] || kill -KILL "$CPID" 2>/dev/null || true
        kill -KILL "$NSPAWN_PID" 2>/dev/null || true
        wait "$NSPAWN_PID" 2>/dev/null || true
    fi
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/root" 2>/dev/null)" = "$ROOTFS" ] && kill -KILL "${p#/proc/}" 2>/dev/null
    done
    if findmnt -rno TARGET | grep -q "^$ROOTFS"; then
        findmnt -rno TARGET | grep "^$ROOTFS" | sort -r | xargs -r umount -l 2>/dev/null || true
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# c CMD...: CMD inside the container, with a clean environment.
c() {
    nsenter -t "$CPID" -a -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"
}

# wait_for WHAT SECONDS CMD...: polls CMD every 0.1 s until it succeeds.
wait_for() {
    local what=$1 within=$2 deadline
    shift 2
    deadline=$((SECONDS + within))
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || die "$what: not within ${within}s"
        sleep 0.1
    done
}

prop() { c systemctl show -p "$1" --value heat; }
state_is() { [ "$(prop ActiveState)" = "$1" ]; }
main_pid() { prop MainPID; }
heat_log() { c cat /var/log/heat/heat.verbose.log 2>/dev/null || true; }
# The journal of heat.service since the epoch second $1.
journal_since() { c journalctl -u heat --no-pager -o cat --since "@$1"; }
# Processes in heat.service's cgroup, all of its subtree, one pid a line.
unit_procs() {
    c sh -c 'd=/sys/fs/cgroup/unified/system.slice/heat.service; [ -d "$d" ] || d=/sys/fs/cgroup/system.slice/heat.service; [ -d "$d" ] && find "$d" -name cgroup.procs -exec cat {} + || true'
}

# --- tools, heat, the package --------------------------------------------
say "tools"
command -v mmdebstrap >/dev/null && command -v systemd-nspawn >/dev/null ||
    apt_install mmdebstrap systemd-container
command -v systemd-nspawn >/dev/null || die "no systemd-nspawn after installing systemd-container"
say "$(systemd-nspawn --version | head -n1)"

say "heat (release) and its package"
build_heat
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
build_deb "$WORK/heat_1.deb" "$version-1"
build_deb "$WORK/heat_2.deb" "$version-2"

# --- the container --------------------------------------------------------
say "rootfs: mmdebstrap $SUITE minbase + systemd, dbus, logrotate, ansible-core"
t=$SECONDS
mmdebstrap --quiet --variant=minbase \
    --include=systemd,systemd-sysv,dbus,logrotate,ansible-core,python3-apt \
    "$SUITE" "$ROOTFS" "$MIRROR" || die "mmdebstrap failed"
ok "rootfs in $((SECONDS - t)) s"
# The bug this guards: a minimal Debian has no /bin/kill (procps).
[ ! -e "$ROOTFS/bin/kill" ] && [ ! -e "$ROOTFS/usr/bin/kill" ] || die "the rootfs has kill: procps came in"

say "boot: systemd-nspawn --boot"
t=$SECONDS
systemd-nspawn --quiet --register=no --keep-unit -D "$ROOTFS" --boot \
    >"$WORK/console.log" 2>&1 </dev/null &
NSPAWN_PID=$!
container_init() {
    local s
    for s in /proc/[0-9]*/status; do
        if grep -q "^PPid:[[:space:]]*$NSPAWN_PID$" "$s" 2>/dev/null; then
            CPID=$(basename "$(dirname "$s")")
            return 0
        fi
    done
    return 1
}
wait_for "the container's init" 20 container_init
running() { case $(c systemctl is-system-running 2>/dev/null) in running | degraded) ;; *) return 1 ;; esac; }
wait_for "the container booting (is-system-running)" 60 running
ok "booted in $((SECONDS - t)) s: $(c systemctl --version | head -n1), init pid $CPID"

# --- 1. the unit, binary path ---------------------------------------------
say "unit: /usr/bin/heat and packaging/systemd/heat.service installed by hand"
install -m 0755 "$HEAT_BIN" "$ROOTFS/usr/bin/heat"
install -m 0644 packaging/systemd/heat.service "$ROOTFS/etc/systemd/system/heat.service"
install -d -m 0755 "$ROOTFS/etc/heat" "$ROOTFS/etc/systemd/system/heat.service.d"
conf() { cat >"$ROOTFS/etc/heat/heat.toml"; }
conf <<'EOF'
[probe.fast]
command = ["true"]
interval = "200ms"

[probe.slow]
command = ["sleep", "0.3"]
interval = "1s"
EOF
c systemctl daemon-reload

say "unit: a heat that never sends READY=1 stays activating, then fails"
cat >"$ROOTFS/etc/systemd/system/heat.service.d/ci.conf" <<'EOF'
[Service]
ExecStart=
ExecStart=/usr/bin/env -u NOTIFY_SOCKET /usr/bin/heat -c /etc/heat/heat.toml
TimeoutStartSec=4s
Restart=no
EOF
c systemctl daemon-reload
c systemctl start --no-block heat
wait_for "heat running without NOTIFY_SOCKET" 10 sh -c "nsenter -t $CPID -a cat /var/log/heat/heat.verbose.log | grep -q 'started heat'"
state_is activating || die "heat runs but never said READY=1, and the unit is $(prop ActiveState), not activating"
ok "heat's log says started; the unit is activating"
wait_for "the start timeout" 15 state_is failed
[ "$(prop Result)" = timeout ] || die "Result=$(prop Result), expected timeout"
ok "failed with Result=timeout: active comes from heat's READY=1 alone"
rm "$ROOTFS/etc/systemd/system/heat.service.d/ci.conf"
c systemctl daemon-reload
c systemctl reset-failed heat

say "unit: systemctl start returns once heat is ready"
c systemctl start heat || die "systemctl start heat failed"
state_is active || die "after systemctl start: $(prop ActiveState)"
status=$(prop StatusText)
[ "$status" = "2 probes: 0 failing, 0 in recovery" ] || die "STATUS= is '$status'"
ok "active, Status: $status"
hp=$(main_pid)
c cat "/proc/$hp/cgroup" | grep -q "^0::/system.slice/heat.service/heat-$hp/self$" ||
    die "heat is not in its delegated leaf: $(c cat "/proc/$hp/cgroup" | grep '^0::')"
ok "heat moved itself to system.slice/heat.service/heat-$hp/self (Delegate=yes)"

say "unit: systemctl reload returns after heat has reloaded"
c heat status >/dev/null || die "heat status: exit $?"
# A stopped heat cannot reload: the job must wait for it.
c sh -c "kill -STOP $hp"
c systemctl reload --no-block heat
sleep 1
c systemctl list-jobs --no-legend | grep -q 'heat.service *reload' ||
    die "the reload job ended while heat was stopped: systemctl reload would return before heat reloads"
ok "with heat stopped, the reload job is still running after 1 s"
since=$(date +%s)
c sh -c "kill -CONT $hp"
jobs_done() { [ -z "$(c systemctl list-jobs --no-legend | grep heat.service)" ]; }
wait_for "the reload job to end" 10 jobs_done
state_is active || die "after the reload: $(prop ActiveState)"
journal_since "$since" | grep -q 'reloaded: added 0; removed 0; changed 0; unchanged 2' ||
    die "the journal has no reload entry: $(journal_since "$since")"
ok "job ended after SIGCONT; the journal has heat's 'reloaded: ...' entry"
cat >>"$ROOTFS/etc/heat/heat.toml" <<'EOF'

[probe.added]
command = ["true"]
interval = "500ms"
EOF
c systemctl reload heat || die "systemctl reload heat failed"
c heat status added >/dev/null || die "the probe added is not running right after systemctl reload returned"
ok "systemctl reload returned with the new probe already running"
cp "$ROOTFS/etc/heat/heat.toml" "$WORK/good.toml"
printf '\n[probe.bad]\ncommand = ["true"]\ninterval = "1ms"\n' >>"$ROOTFS/etc/heat/heat.toml"
since=$(date +%s)
if c systemctl reload heat 2>/dev/null; then die "systemctl reload of an invalid heat.toml succeeded"; fi
state_is active || die "after a refused reload the unit is $(prop ActiveState)"
[ "$(main_pid)" = "$hp" ] || die "a refused reload restarted heat"
c heat status added >/dev/null || die "a refused reload lost the running configuration"
journal_since "$since" | grep -q 'reload failed, keeping the running configuration' ||
    die "the journal does not say why the reload failed"
ok "a bad heat.toml: systemctl reload fails, heat stays active on the old probes, the journal says why"
cp "$WORK/good.toml" "$ROOTFS/etc/heat/heat.toml"
c systemctl reload heat || die "reload of the good file again"

say "unit: a stopped heat is restarted by the watchdog (WatchdogSec=30s)"
restarts=$(prop NRestarts)
since=$(date +%s)
t=$SECONDS
c sh -c "kill -STOP $hp"
restarted() { local p; p=$(main_pid); [ "$p" != 0 ] && [ "$p" != "$hp" ] && state_is active; }
wait_for "the watchdog restart" 50 restarted
took=$((SECONDS - t))
journal_since "$since" | grep -q 'Watchdog timeout' || die "no watchdog timeout in the journal"
[ "$(prop NRestarts)" -gt "$restarts" ] || die "NRestarts did not grow"
ok "watchdog timeout, restarted by Restart=on-failure, active again after ${took} s (pid $hp -> $(main_pid))"
hp=$(main_pid)

say "unit: checks run in heat's cgroups; an escaped grandchild ends with its check"
conf <<'EOF'
[probe.escape]
command = ["sh", "-c", "setsid sleep 300 & echo $! > /run/escaped.pid; sleep 300"]
interval = "3s"
timeout = "1500ms"
EOF
c systemctl reload heat
wait_for "the check's escaped grandchild" 10 c test -s /run/escaped.pid
esc=$(c cat /run/escaped.pid)
cg=$(c cat "/proc/$esc/cgroup" | sed -n 's/^0:://p')
case $cg in
/system.slice/heat.service/heat-"$hp"/check-escape*) ok "escaped sleep $esc is in $cg" ;;
*) die "the check's setsid grandchild is in '$cg', not heat's check cgroup" ;;
esac
gone() { ! c test -e "/proc/$esc"; }
wait_for "the escaped grandchild to end with the timed-out check" 10 gone
ok "the check timed out; its setsid grandchild $esc was ended with it"

say "unit: systemctl stop with a check that ignores TERM"
conf <<'EOF'
[probe.stubborn]
command = ["sh", "-c", "trap '' TERM; echo $$ > /run/stubborn.pid; while :; do sleep 0.1; done"]
interval = "30s"
EOF
c rm -f /run/stubborn.pid
c systemctl reload heat
wait_for "the stubborn check" 10 c test -s /run/stubborn.pid
t=$SECONDS
c systemctl stop heat
took=$((SECONDS - t))
[ "$took" -le 20 ] || die "systemctl stop took ${took} s (TimeoutStopSec=20s)"
[ "$took" -ge 4 ] || die "systemctl stop took ${took} s: the check's 5 s grace was not given"
[ "$(prop Result)" = success ] || die "heat stopped with Result=$(prop Result)"
[ -z "$(unit_procs)" ] || die "processes left in heat.service's cgroup: $(unit_procs)"
ok "stopped in ${took} s (heat's grace: TERM, KILL 5 s later), Result=success, the unit's cgroup is empty"

say "unit: exit 2 (a bad file at start) is not restarted"
printf '[probe.x]\ncommand = ["true"]\ninterval = "1ms"\n' | conf
if c systemctl start heat 2>/dev/null; then die "heat started on an invalid heat.toml"; fi
[ "$(prop ExecMainStatus)" = 2 ] || die "heat exited $(prop ExecMainStatus), not 2"
restarts=$(prop NRestarts)
# Nothing to poll for: no restart may come within RestartSec=5s and then some.
sleep 7
state_is failed || die "after exit 2 the unit is $(prop ActiveState)"
[ "$(prop NRestarts)" = "$restarts" ] || die "exit 2 was restarted (NRestarts $restarts -> $(prop NRestarts))"
ok "exit 2, failed, not restarted after 7 s"
c systemctl reset-failed heat
rm -f "$ROOTFS/usr/bin/heat" "$ROOTFS/etc/systemd/system/heat.service" "$ROOTFS/etc/heat/heat.toml"
rmdir "$ROOTFS/etc/systemd/system/heat.service.d" "$ROOTFS/etc/heat"
rm -rf "$ROOTFS/var/log/heat"
c systemctl daemon-reload

# --- 2. the package -------------------------------------------------------
say "package: procps (the package's dependency) from the mirror"
c apt-get update -qq >/dev/null || die "apt-get update in the container"
c env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends procps >/dev/null ||
    die "apt-get install procps in the container"
cp "$WORK/heat_1.deb" "$WORK/heat_2.deb" "$ROOTFS/root/"

say "package: dpkg -i enables and starts heat"
c dpkg -i /root/heat_1.deb >/dev/null || die "dpkg -i heat_1.deb"
[ "$(c systemctl is-enabled heat)" = enabled ] || die "heat is $(c systemctl is-enabled heat) after dpkg -i"
state_is active || die "heat is $(prop ActiveState) after dpkg -i"
ok "enabled, active: $(prop StatusText)"

say "package: an edited /etc/heat/heat.toml survives an upgrade"
c mkdir -p /var/lib/heat-ci
cat >"$ROOTFS/var/lib/heat-ci/seq.sh" <<'EOF'
#!/bin/sh
# One number a run, kept in a file: the log must hold each exactly once.
n=$(($(cat /var/lib/heat-ci/seq.state 2>/dev/null || echo 0) + 1))
echo "$n" >/var/lib/heat-ci/seq.state
echo "seq=$n"
EOF
chmod 0755 "$ROOTFS/var/lib/heat-ci/seq.sh"
conf <<'EOF'
# edited by booted.sh
[probe.seq]
script = "/var/lib/heat-ci/seq.sh"
interval = "20ms"
EOF
cp "$ROOTFS/etc/heat/heat.toml" "$WORK/edited.toml"
pid1=$(main_pid)
c dpkg -i /root/heat_2.deb >/dev/null || die "dpkg -i heat_2.deb (upgrade)"
cmp -s "$WORK/edited.toml" "$ROOTFS/etc/heat/heat.toml" || die "the upgrade replaced the edited heat.toml"
[ "$(c dpkg-query -W -f='${Version}' heat)" = "$version-2" ] || die "not upgraded to $version-2"
state_is active || die "heat is $(prop ActiveState) after the upgrade"
[ "$(main_pid)" != "$pid1" ] || die "the upgrade did not restart heat"
c heat status seq >/dev/null || die "heat does not run the edited file's probe after the upgrade"
ok "upgraded to $version-2, restarted, running the edited heat.toml"

say "logrotate: logrotate.service rotates the running heat's log"
wait_for "sequence entries" 10 sh -c "grep -q '^> seq=20$' $ROOTFS/var/log/heat/heat.verbose.log"
# The rotation is weekly: a state file a week old makes it due, as the timer finds it.
printf 'logrotate state -- version 2\n"/var/log/heat/heat.verbose.log" 2020-1-1-0:0:0\n' \
    >"$ROOTFS/var/lib/logrotate/status"
since=$(date +%s)
c systemctl start logrotate.service || die "logrotate.service failed: $(c journalctl -u logrotate --no-pager -n 20)"
[ -s "$ROOTFS/var/log/heat/heat.verbose.log.1" ] || die "logrotate.service did not rotate the log"
new_entries() { [ "$(grep -c '^> seq=' "$ROOTFS/var/log/heat/heat.verbose.log")" -ge 10 ]; }
wait_for "sequence entries in the new log" 10 new_entries
c systemctl stop heat
log=$ROOTFS/var/log/heat/heat.verbose.log
grep -q ' : INFO : heat :$' "$log" && grep -A1 ' : INFO : heat :$' "$log" | grep -q '^> reopened the log' ||
    die "heat did not reopen its log after the rotation"
cat "$log.1" "$log" | sed -n 's/^> seq=\([0-9]*\)$/\1/p' >"$WORK/seqs"
awk 'NR != $1 { printf "entry %d says seq=%d\n", NR, $1; exit 1 }' "$WORK/seqs" >"$WORK/seqs.bad" ||
    die "lost or doubled across the rotation: $(cat "$WORK/seqs.bad")"
last=$(tail -n 1 "$WORK/seqs")
counted=$(cat "$ROOTFS/var/lib/heat-ci/seq.state")
# A check heat ended at the stop may have counted without its line logged.
[ "$counted" -eq "$last" ] || [ "$counted" -eq $((last + 1)) ] ||
    die "the check counted $counted runs, the logs hold 1..$last"
ok "seq=1..$last exactly once over heat.verbose.log.1 ($(grep -c '^> seq=' "$log.1")) and heat.verbose.log ($(grep -c '^> seq=' "$log"))"

say "package: dpkg --purge stops heat and leaves nothing behind"
c systemctl start heat
c dpkg --purge heat >/dev/null || die "dpkg --purge heat"
state_is active && die "heat still active after purge"
for p in "${HEAT_DEB_PATHS[@]}"; do
    [ ! -e "$ROOTFS$p" ] && [ ! -L "$ROOTFS$p" ] || die "left behind after purge: $p"
done
[ -z "$(unit_procs)" ] || die "processes left after purge: $(unit_procs)"
ok "inactive, none of the package's ${#HEAT_DEB_PATHS[@]} paths left, no process"
rm -rf "$ROOTFS/var/lib/heat-ci"

# --- 3. the Ansible role ----------------------------------------------------
say "role: $(c ansible-playbook --version | head -n1)"
# The whole tree: the role's files/heat.service links to packaging/systemd.
cp -r packaging "$ROOTFS/root/packaging"
install -m 0755 "$HEAT_BIN" "$ROOTFS/root/heat-bin"
# Its own playbook directory: packaging/ansible's group_vars are the sample fleet's.
mkdir "$ROOTFS/root/ci"
cat >"$ROOTFS/root/ci/ci.yml" <<'EOF'
- name: heat under systemd
  hosts: localhost
  connection: local
  gather_facts: false
  roles:
    - role: heat
EOF
# play VARS_FILE: ansible-playbook on the container itself; output in $WORK/play.out.
play() {
    c sh -c "cd /root/ci && ANSIBLE_ROLES_PATH=/root/packaging/ansible/roles ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 ansible-playbook -i localhost, -e @$1 ci.yml" \
        >"$WORK/play.out" 2>&1
}
recap() { sed -n 's/^localhost *: //p' "$WORK/play.out"; }
changed() { recap | sed -n 's/.*changed=\([0-9]*\).*/\1/p'; }
vars() {
    local from=$1 probes=$2
    printf '%s\nheat_probes:\n%s\n' "$from" "$probes" >"$ROOTFS/root/ci/vars.yml"
}
ONE='  - name: web
    command: ["true"]
    interval: 500ms'
TWO="$ONE
  - name: db
    command: [\"true\"]
    interval: 700ms"
BAD="$TWO
  - name: broken
    command: [\"true\"]
    interval: 1ms"

for from in 'heat_deb: /root/heat_2.deb' 'heat_binary_src: /root/heat-bin'; do
    say "role ($from): first run installs, configures and starts heat"
    vars "$from" "$ONE"
    play vars.yml || die "first run failed: $(tail -n 30 "$WORK/play.out")"
    [ "$(changed)" -gt 0 ] || die "the first run changed nothing: $(recap)"
    state_is active || die "heat is $(prop ActiveState) after the first run"
    c heat status web >/dev/null || die "probe web is not running"
    ok "$(recap)"

    say "role ($from): the second run changes nothing"
    play vars.yml || die "second run failed: $(tail -n 30 "$WORK/play.out")"
    [ "$(changed)" = 0 ] || die "the second run changed something: $(recap); $(grep '^changed' "$WORK/play.out")"
    ok "$(recap)"

    say "role ($from): a new probe reloads heat, once"
    hp=$(main_pid)
    since=$(date +%s)
    vars "$from" "$TWO"
    play vars.yml || die "the run with a new probe failed: $(tail -n 30 "$WORK/play.out")"
    [ "$(grep -c '^RUNNING HANDLER \[heat : Reload heat\]' "$WORK/play.out")" = 1 ] ||
        die "the Reload heat handler did not run exactly once: $(grep '^RUNNING HANDLER' "$WORK/play.out")"
    grep -q '^RUNNING HANDLER \[heat : Restart heat\]' "$WORK/play.out" && die "a new probe restarted heat"
    [ "$(main_pid)" = "$hp" ] || die "heat was restarted, not reloaded"
    # heat's own watch of heat.toml may reload before the handler does: the
    # handler's reload then finds nothing new. Either way one entry adds db.
    journal_since "$since" | grep -q 'Reloaded heat.service' || die "the journal shows no reload"
    [ "$(heat_log | grep -c '^> reloaded: added 1 (db);')" = 1 ] || die "heat's log has no single reload adding db"
    c heat status db >/dev/null || die "probe db is not running after the handler"
    ok "one Reload heat handler, 'Reloaded heat.service' in the journal, db added once"

    say "role ($from): an invalid probe is kept off the host"
    cp "$ROOTFS/etc/heat/heat.toml" "$WORK/before.toml"
    vars "$from" "$BAD"
    if play vars.yml; then die "a run with interval 1ms succeeded"; fi
    grep -q 'failed to validate' "$WORK/play.out" || die "the failure is not validate's: $(tail -n 20 "$WORK/play.out")"
    cmp -s "$WORK/before.toml" "$ROOTFS/etc/heat/heat.toml" || die "the invalid heat.toml reached the host"
    [ "$(main_pid)" = "$hp" ] && c heat status db >/dev/null || die "heat lost its running configuration"
    ok "validate: refused it; heat.toml and the running heat untouched"

    # Between the two install paths: nothing of the first left.
    case $from in
    heat_deb*)
        c dpkg --purge heat >/dev/null 2>&1 || die "purge after the role's deb"
        # What the role wrote beside the package's files.
        c rm -rf /etc/heat /etc/systemd/system/heat.service
        c systemctl daemon-reload
        ;;
    *) c systemctl stop heat ;;
    esac
done

say "OK: booted.sh passed in $((SECONDS - t0)) s"
