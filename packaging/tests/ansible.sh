#!/usr/bin/env bash
# The Ansible role `heat`, proved with the real tools (run from the repo root):
# ansible-lint (production profile, zero violations); real ansible-playbook runs
# against localhost into a temporary prefix (systemd tasks off); the rendered
# heat.toml validates with `heat -t` and a heat started on it runs every probe;
# a second run changes nothing, the dict form of heat_probes renders the same
# file as the list form, `validate:` keeps an invalid heat.toml off the host, a
# misspelt key is refused; heat_metrics_listen renders metrics_listen, heat
# serves /metrics there, and a change of it restarts heat; the sample fleet
# renders a valid heat.toml per host.
set -euo pipefail

ANSIBLE_CORE_VERSION=2.19.14
ANSIBLE_LINT_VERSION=26.10.1

say() { echo "ansible.sh: $*"; }
die() {
	echo "ansible.sh: FAIL: $*" >&2
	exit 1
}

[[ -f Cargo.toml && -d packaging/ansible/roles/heat ]] || die "run me from the repository root"
ROOT=$PWD
VENV=$ROOT/target/ansible-venv
WORK=$(mktemp -d "${TMPDIR:-/tmp}/heat-ansible.XXXXXX")
HEAT_PID=
TARGET_PID=

cleanup() {
	local rc=$?
	if [[ -n $HEAT_PID ]]; then kill -KILL "$HEAT_PID" 2>/dev/null || true; fi
	if [[ -n $TARGET_PID ]]; then kill -KILL "$TARGET_PID" 2>/dev/null || true; fi
	wait 2>/dev/null || true
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Everything Ansible and ansible-lint write goes under $WORK, not under ~.
export ANSIBLE_HOME=$WORK/ansible-home ANSIBLE_LOCAL_TEMP=$WORK/ansible-local
export ANSIBLE_REMOTE_TEMP=$WORK/ansible-remote XDG_CACHE_HOME=$WORK/cache
export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 ANSIBLE_RETRY_FILES_ENABLED=0
export PY_COLORS=0 NO_COLOR=1

# --- tools -------------------------------------------------------------------
# shellcheck source=packaging/tests/lib.sh
. "$ROOT/packaging/tests/lib.sh"

PY=/usr/bin/python3
if ! [[ -x $PY ]] || ! "$PY" -c 'import ensurepip, venv' 2>/dev/null; then
	say "installing python3 and python3-venv"
	apt_install python3 python3-venv
fi
# The fleet's web probe runs curl in exec form: heat resolves it at validation.
command -v curl >/dev/null || { say "installing curl"; apt_install curl; }
command -v cargo >/dev/null || die "cargo not found: install the Rust toolchain"

PINS=("ansible-core==$ANSIBLE_CORE_VERSION" "ansible-lint==$ANSIBLE_LINT_VERSION")
STAMP="${PINS[*]}"
if [[ -f $VENV/.heat-stamp && $(cat "$VENV/.heat-stamp") == "$STAMP" ]] &&
	"$VENV/bin/ansible-playbook" --version >/dev/null 2>&1; then
	say "venv $VENV already has $STAMP"
else
	say "creating venv $VENV with $STAMP"
	rm -rf "$VENV"
	"$PY" -m venv "$VENV"
	"$VENV/bin/pip" install -q --disable-pip-version-check "${PINS[@]}"
	echo "$STAMP" >"$VENV/.heat-stamp"
fi
export PATH=$VENV/bin:$PATH
ansible-playbook --version >"$WORK/version.out"
ansible-lint --nocolor --version >>"$WORK/version.out" 2>/dev/null
grep -E '^ansible(-playbook| \[core|-lint)' "$WORK/version.out"

# --- lint --------------------------------------------------------------------
say "ansible-lint (production profile, strict) on packaging/ansible"
(cd packaging/ansible && ansible-lint --nocolor) >"$WORK/lint.out" 2>&1 || {
	cat "$WORK/lint.out" >&2
	die "ansible-lint found violations (above)"
}
grep -q "Passed: 0 failure(s), 0 warning(s)" "$WORK/lint.out" || {
	cat "$WORK/lint.out" >&2
	die "ansible-lint did not report zero violations"
}
grep -q "Profile 'production' was required, and it passed" "$WORK/lint.out" ||
	die "ansible-lint did not check the production profile"
tail -1 "$WORK/lint.out"

# --- heat --------------------------------------------------------------------
say "cargo build --release --locked"
build_heat
HEAT_SRC=$HEAT_BIN

# --- the role into a temporary prefix ----------------------------------------
P=$WORK/prefix
# heat_metrics_listen of the runs; heat, started on the rendered file, serves
# /metrics there.
METRICS=127.0.0.1:$(free_port)
mkdir -p "$P/run"
# A live target for the probes with `pid` and `pidfile`; the checks succeed,
# so it is never signalled.
sleep 600 &
TARGET_PID=$!
echo "$TARGET_PID" >"$P/run/target.pid"

cat >"$WORK/play.yml" <<EOF
---
- name: Install heat into a temporary prefix
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: $VENV/bin/python3
  roles:
    - role: heat
EOF

# Every probe key of heat.toml (README "Service mode"), the three check forms, integers and strings, and
# a shell command whose quotes, backslashes and non-ASCII must survive TOML.
SHELL_CMD=$(
	cat <<'EOF'
test "$(printf '%s' 'a\b')" = 'a\b' && echo "héllo ✓ 😀"
EOF
)
common_vars() {
	cat <<EOF
heat_prefix: $P
heat_manage_service: false
heat_binary_src: $HEAT_SRC
heat_log: $P/var/log/heat/heat.verbose.log
heat_metrics_listen: "$METRICS"
heat_defaults:
  interval: 2s
  timeout: 1s
  hook_timeout: 1m
heat_scripts:
  - dest: $P/etc/heat/check.sh
    content: "#!/bin/sh\necho check ok\n"
  - dest: $P/etc/heat/hook.sh
    content: "#!/bin/sh\necho hook for \$HEAT_PROBE\n"
EOF
}
EXEC_KEYS="command: [test, -d, /tmp]
pid: $TARGET_PID
signal: USR1
fail: $P/etc/heat/hook.sh
recovery: $P/etc/heat/hook.sh
threshold: 2
start_period: 10s
recovery_timeout: 5s
fault_signal: STOP
success_signal: CONT
hook_timeout: 30s
max_output: 64KiB"
SCRIPT_KEYS="script: $P/etc/heat/check.sh
pidfile: $P/run/target.pid
interval: 2
signal: 10
max_output: 65536"
SHELL_KEYS="command: $(printf '%s' "$SHELL_CMD" | "$PY" -c 'import json,sys; print(json.dumps(sys.stdin.read(), ensure_ascii=False))')"
indent() { sed "s/^/$1/"; }

# $1: interval of the exec probe (0 makes heat.toml invalid).
list_vars() {
	common_vars
	echo "heat_probes:"
	{
		echo "- name: exec"
		printf '%s\n' "$EXEC_KEYS" | indent '  '
		echo "  interval: ${1:-2s}"
		echo "- name: script"
		printf '%s\n' "$SCRIPT_KEYS" | indent '  '
		echo "- name: shell"
		printf '%s\n' "$SHELL_KEYS" | indent '  '
	} | indent '  '
}
dict_vars() {
	common_vars
	echo "heat_probes:"
	{
		echo "exec:"
		printf '%s\n' "$EXEC_KEYS" | indent '  '
		echo "  interval: 2s"
		echo "script:"
		printf '%s\n' "$SCRIPT_KEYS" | indent '  '
		echo "shell:"
		printf '%s\n' "$SHELL_KEYS" | indent '  '
	} | indent '  '
}
list_vars 2s >"$WORK/vars-list.yml"
dict_vars >"$WORK/vars-dict.yml"
list_vars 0 >"$WORK/vars-invalid.yml"
METRICS_ON=$METRICS
METRICS='' list_vars 2s >"$WORK/vars-nometrics.yml"
METRICS=$METRICS_ON
{
	common_vars
	printf 'heat_probes:\n  - name: typo\n    command: [ls]\n    intervall: 5s\n'
} >"$WORK/vars-typo.yml"

# $1: name of the run, $2: vars file. Output in $WORK/run-$1.out, exit status in RUN_RC.
play() {
	RUN_RC=0
	ANSIBLE_ROLES_PATH=$ROOT/packaging/ansible/roles \
		ansible-playbook -i localhost, "$WORK/play.yml" -e "@$2" >"$WORK/run-$1.out" 2>&1 || RUN_RC=$?
}
# The counter $2 (changed, failed, ...) of the PLAY RECAP of run $1.
recap() {
	local line
	line=$(grep -E '^localhost +: ok=' "$WORK/run-$1.out") || die "run $1: no PLAY RECAP"
	sed -E "s/.* $2=([0-9]+).*/\1/" <<<"$line"
}
play_ok() {
	play "$1" "$2"
	if ((RUN_RC != 0)) || [[ $(recap "$1" failed) != 0 ]]; then
		cat "$WORK/run-$1.out" >&2
		die "run $1: ansible-playbook failed (exit $RUN_RC)"
	fi
	grep -E '^localhost +: ok=' "$WORK/run-$1.out"
}

CONF=$P/etc/heat/heat.toml
say "run 1: ansible-playbook, probes as a list, into $P"
play_ok first "$WORK/vars-list.yml"
(($(recap first changed) > 0)) || die "run first: nothing changed on a fresh prefix"
[[ -x $P/usr/bin/heat && -f $CONF ]] || die "run first: no $P/usr/bin/heat or $CONF"
[[ -d $P/var/log/heat && $(stat -c %a "$P/var/log/heat") == 750 ]] || die "no log directory with mode 0750"
[[ $(stat -c %a "$P/usr/bin/heat") == 755 ]] || die "heat is not mode 0755"
echo "--- rendered heat.toml"
cat "$CONF"
echo "---"
# A top-level key: before the first table, or TOML would put it in that table.
awk -v want="metrics_listen = \"$METRICS\"" '/^\[/ { exit } $0 == want { found = 1 } END { exit !found }' "$CONF" ||
	die "heat_metrics_listen: no top-level [metrics_listen = \"$METRICS\"] before the first table"

say "heat -c $CONF -t"
"$P/usr/bin/heat" -c "$CONF" -t >"$WORK/check.out" 2>"$WORK/check.err" || {
	cat "$WORK/check.out" "$WORK/check.err" >&2
	die "heat -t refused the rendered heat.toml"
}
for probe in exec script shell; do
	grep -qx "\[probe.$probe\]" "$WORK/check.out" || die "heat -t does not list probe $probe"
done
grep -qxF "check = $SHELL_CMD" "$WORK/check.out" ||
	die "the shell command did not survive TOML: want [check = $SHELL_CMD] in $(cat "$WORK/check.out")"
for want in "fault_signal = SIGSTOP" "success_signal = SIGCONT" "target = pid $TARGET_PID" \
	"target = pidfile $P/run/target.pid" "recovery_timeout = 5s" "start_period = 10s" \
	"metrics_listen = $METRICS"; do
	grep -qxF "$want" "$WORK/check.out" || die "heat -t does not show [$want]"
done
say "heat -t: valid, every probe and key as written"

LOG=$P/var/log/heat/heat.verbose.log
say "starting heat -c $CONF (log $LOG)"
"$P/usr/bin/heat" -c "$CONF" >"$WORK/heat.stdout" 2>"$WORK/heat.stderr" &
HEAT_PID=$!
# Each probe's first check runs within its interval (2 s) after the start.
declare -A ENTRY=(
	[exec]=": INFO : [exec] test -d /tmp :"
	[script]=": INFO : [script] $P/etc/heat/check.sh :"
	[shell]=": INFO : [shell] "
)
deadline=$((SECONDS + 20))
for probe in exec script shell; do
	until [[ -f $LOG ]] && grep -qF "${ENTRY[$probe]}" "$LOG"; do
		if ((SECONDS > deadline)) || ! kill -0 "$HEAT_PID" 2>/dev/null; then
			cat "$WORK/heat.stderr" "$LOG" >&2 2>/dev/null || true
			die "no successful check of probe $probe in $LOG within 20 s"
		fi
		sleep 0.1
	done
	say "probe $probe ran: $(grep -F "${ENTRY[$probe]}" "$LOG" | head -1)"
done
grep -qxF "> héllo ✓ 😀" "$LOG" || die "the shell probe's output is not in the log"
deadline=$((SECONDS + 20))
until curl -fsS --max-time 2 "http://$METRICS/metrics" >"$WORK/metrics.out" 2>"$WORK/metrics.err" &&
	[[ $(grep -cE '^heat_check_success\{probe="(exec|script|shell)"\} ' "$WORK/metrics.out") == 3 ]]; do
	if ((SECONDS > deadline)) || ! kill -0 "$HEAT_PID" 2>/dev/null; then
		cat "$WORK/metrics.err" "$WORK/metrics.out" "$WORK/heat.stderr" >&2 2>/dev/null || true
		die "heat serves no heat_check_success of every probe on http://$METRICS/metrics within 20 s"
	fi
	sleep 0.1
done
say "heat serves /metrics on $METRICS (heat_metrics_listen): $(grep -c '^heat_' "$WORK/metrics.out") samples"

SUM=$(sha256sum "$CONF")
say "run 2: the same variables again, expecting changed=0"
play_ok second "$WORK/vars-list.yml"
[[ $(recap second changed) == 0 ]] || { cat "$WORK/run-second.out" >&2; die "run second is not idempotent"; }

say "run 3: probes as a dict, expecting the same heat.toml (changed=0)"
play_ok dict "$WORK/vars-dict.yml"
[[ $(recap dict changed) == 0 ]] || { cat "$WORK/run-dict.out" >&2; die "the dict form renders another heat.toml"; }

say "run 4: interval = 0, expecting validate: to refuse it"
play invalid "$WORK/vars-invalid.yml"
((RUN_RC != 0)) || die "run invalid: ansible-playbook succeeded with interval 0"
[[ $(recap invalid failed) == 1 ]] || die "run invalid: expected failed=1"
grep -q "failed to validate" "$WORK/run-invalid.out" || {
	cat "$WORK/run-invalid.out" >&2
	die "run invalid failed, but not in validate:"
}
grep -m1 -o '"stderr": "heat: [^"]*' "$WORK/run-invalid.out" || true
[[ $(sha256sum "$CONF") == "$SUM" ]] || die "the invalid run changed $CONF"
say "validate: refused it; $CONF is unchanged"

say "run 5: a misspelt key, expecting the role to refuse it"
play typo "$WORK/vars-typo.yml"
if ((RUN_RC == 0)) || ! grep -q "probe typo: unknown keys: intervall;" "$WORK/run-typo.out"; then
	cat "$WORK/run-typo.out" >&2
	die "run typo: a misspelt probe key was not refused"
fi
[[ $(sha256sum "$CONF") == "$SUM" ]] || die "the typo run changed $CONF"
say "the role refused it: $(grep -m1 -o 'probe typo: unknown keys: [^;]*' "$WORK/run-typo.out")"

kill -0 "$HEAT_PID" 2>/dev/null || die "heat died during the runs: $(cat "$WORK/heat.stderr")"
! grep -q " : ERR : " "$LOG" || { cat "$LOG" >&2; die "heat logged an ERR entry"; }
say "stopping heat with TERM"
kill -TERM "$HEAT_PID"
rc=0
wait "$HEAT_PID" || rc=$?
HEAT_PID=
((rc == 0)) || { cat "$WORK/heat.stderr" >&2; die "heat exited $rc on TERM, want 0"; }
say "heat exited 0"

say "run 6: heat_metrics_listen \"\", expecting no metrics_listen and a restart of heat"
play_ok nometrics "$WORK/vars-nometrics.yml"
! grep -q '^metrics_listen' "$CONF" || die "run nometrics: heat.toml still has metrics_listen"
out=$("$P/usr/bin/heat" -c "$CONF" -t 2>&1) || die "run nometrics: heat -t refused heat.toml: $out"
grep -qxF "metrics_listen = off" <<<"$out" || die "run nometrics: heat -t does not show [metrics_listen = off]"
if ! grep -qF "metrics_listen $METRICS -> off: heat applies it when it restarts" "$WORK/run-nometrics.out" ||
	! grep -qF "RUNNING HANDLER [heat : Restart heat]" "$WORK/run-nometrics.out"; then
	cat "$WORK/run-nometrics.out" >&2
	die "run nometrics: a change of heat_metrics_listen did not notify Restart heat"
fi
say "metrics_listen gone from heat.toml; the role notified Restart heat (heat applies it at a start)"

# --- the sample fleet ---------------------------------------------------------
F=$WORK/fleet
say "sample fleet: site.yml on every host of inventory.example.yml, each into its own prefix"
(
	cd packaging/ansible
	cat >"$WORK/fleet-vars.yml" <<EOF
ansible_connection: local
ansible_python_interpreter: $VENV/bin/python3
ansible_become: false
heat_prefix: "$F/{{ inventory_hostname }}"
heat_deb: ""
heat_binary_src: $HEAT_SRC
heat_manage_service: false
EOF
	ansible-playbook site.yml -i inventory.example.yml -e "@$WORK/fleet-vars.yml"
) >"$WORK/run-fleet.out" 2>&1 || {
	cat "$WORK/run-fleet.out" >&2
	die "the sample fleet's playbook failed"
}
grep -E '^[a-z0-9.]+ +: ok=' "$WORK/run-fleet.out"
declare -A FLEET=(
	[web1.example.com]="root-fs tmp http"
	[web2.example.com]="root-fs tmp http"
	[db1.example.com]="root-fs tmp postgres replication"
)
for host in "${!FLEET[@]}"; do
	out=$("$F/$host/usr/bin/heat" -c "$F/$host/etc/heat/heat.toml" -t 2>&1) ||
		die "$host: heat -t refused its heat.toml: $out"
	got=$(sed -n 's/^\[probe\.\(.*\)\]$/\1/p' <<<"$out" | sort | xargs)
	want=$(xargs -n1 <<<"${FLEET[$host]}" | sort | xargs)
	[[ $got == "$want" ]] || die "$host: probes [$got], want [$want]"
	grep -qxF "metrics_listen = off" <<<"$out" || die "$host: metrics_listen is not off by default"
	say "$host: heat -t valid, probes $got"
done

say "all Ansible checks passed"
