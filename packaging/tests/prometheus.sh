#!/usr/bin/env bash
# CI check of packaging/prometheus with the real Prometheus (Debian's package,
# which ships /usr/bin/prometheus and /usr/bin/promtool):
#  1. promtool check config on prometheus.example.yml, as shipped and with its
#     file_sd example turned on (and its target file); promtool check rules and
#     test rules on heat.rules.yml; a self-test proves the unit tests fail when
#     a rule's `for` is shortened;
#  2. a heat with metrics_listen on a free port: its /metrics passes
#     `promtool check metrics` (any finding fails: promtool has no warnings,
#     each finding is a lint problem of the exposition), healthy and failing,
#     and holds every family README lists, with its type;
#  3. a real prometheus scrapes that heat every second with the rules loaded:
#     the target is up; heat_check_success{probe="web"} is 1, 0 once the check
#     fails (HeatProbeFailing and HeatProbeInRecovery go pending, nothing
#     else), 1 again once it passes (no alert); a refused reload makes
#     heat_config_reload_success 0 (HeatConfigReloadFailing pending) until a
#     good one; /api/v1/rules lists the group heat, every rule evaluated "ok";
#     heat stopped, up is 0 and HeatDown pending.
# Needs no running systemd. Run as root from the repository root.
# HEAT_BIN=/path/to/heat uses that binary instead of building one.
set -euo pipefail

cd "$(dirname "$0")/../.."
# shellcheck source=packaging/tests/lib.sh
. packaging/tests/lib.sh
DIR="$PWD/packaging/prometheus"
RULES="$DIR/heat.rules.yml"
# The rules of heat.rules.yml, in its order.
ALERTS=(HeatProbeFailing HeatProbeInRecovery HeatDown HeatNoTargets HeatConfigReloadFailing HeatLogEntriesLost)
DEADLINE=30

say() { printf '== %s\n' "$*"; }
die() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
indent() { sed 's/^/   | /' "$@"; }

tmp=$(mktemp -d /tmp/heat-prometheus-ci.XXXXXX)
heat_pid=
prom_pid=
target_pid=
policy_rc=
cleanup() {
    local pid
    for pid in "$prom_pid" "$heat_pid" "$target_pid"; do
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    if [ -n "$policy_rc" ]; then rm -f /usr/sbin/policy-rc.d; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
    say "installing prometheus (Debian's package: prometheus and promtool)"
    # Its postinst starts the service with invoke-rc.d (or systemctl, where
    # systemd runs). A policy-rc.d that says no (101) keeps it from starting a
    # prometheus of its own on :9090 here; one that is already there is left
    # as it is, and ours goes once the package is in.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\n# heat packaging/tests/prometheus.sh: no service starts during its install\nexit 101\n' \
            >/usr/sbin/policy-rc.d
        chmod 0755 /usr/sbin/policy-rc.d
        policy_rc=1
    fi
    apt_install prometheus
    if [ -n "$policy_rc" ]; then rm -f /usr/sbin/policy-rc.d; policy_rc=; fi
    if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
        die "the prometheus package did not install prometheus and promtool"
    fi
fi
command -v curl >/dev/null || { say "installing curl"; apt_install curl; }
command -v jq >/dev/null || { say "installing jq"; apt_install jq; }
say "$(prometheus --version 2>&1 | head -n1)"
say "$(promtool --version 2>&1 | head -n1)"

# --- 1. the files, with promtool ----------------------------------------------

# promtool_ok DESC CMD...: CMD must exit 0 and print no WARNING.
promtool_ok() {
    local desc=$1 rc=0
    shift
    "$@" >"$tmp/promtool.out" 2>&1 || rc=$?
    if [ "$rc" != 0 ] || grep -q WARNING "$tmp/promtool.out"; then
        indent "$tmp/promtool.out" >&2
        die "$desc: exit $rc, or warnings (above)"
    fi
    indent "$tmp/promtool.out"
}

say "promtool check config prometheus.example.yml"
promtool_ok "promtool check config $DIR/prometheus.example.yml" \
    promtool check config --lint-fatal "$DIR/prometheus.example.yml"

say "promtool check config prometheus.example.yml, its file_sd example turned on"
mkdir -p "$tmp/sd/targets"
cp "$RULES" "$tmp/sd/"
# The commented file_sd_configs block, uncommented, reading $tmp/sd/targets;
# the target file it shows ("# with FILE:" then its lines) written there.
awk -v dir="$tmp/sd/targets" '
    $0 == "    # file_sd_configs:" { on = 1 }
    on && /^    # with / { on = 0 }
    on { sub(/^    # /, "    "); sub(/\/etc\/prometheus\/targets/, dir); n++ }
    { print }
    END { if (n < 3) exit 1 }
' "$DIR/prometheus.example.yml" >"$tmp/sd/prometheus.yml" ||
    die "prometheus.example.yml: no commented file_sd_configs block"
awk '
    /^    # with \/etc\/prometheus\/targets\/heat-web\.yml:$/ { on = 1; next }
    on && /^    #   / { sub(/^    #   /, ""); print; n++; next }
    on { exit }
    END { if (n < 1) exit 1 }
' "$DIR/prometheus.example.yml" >"$tmp/sd/targets/heat-web.yml" ||
    die "prometheus.example.yml: no example target file after the file_sd_configs block"
if ! grep -q "files:" "$tmp/sd/prometheus.yml" || ! grep -q "targets:" "$tmp/sd/targets/heat-web.yml"; then
    die "the file_sd example was not turned on"
fi
promtool_ok "promtool check config (file_sd)" promtool check config --lint-fatal "$tmp/sd/prometheus.yml"

say "promtool check rules heat.rules.yml"
promtool_ok "promtool check rules $RULES" promtool check rules --lint=all --lint-fatal "$RULES"
n=$(grep -c '^      - alert: ' "$RULES")
[ "$n" = "${#ALERTS[@]}" ] || die "$RULES has $n alerts, this check knows ${#ALERTS[@]}: ${ALERTS[*]}"
for a in "${ALERTS[@]}"; do
    grep -qxF "      - alert: $a" "$RULES" || die "$RULES: no alert $a"
    grep -qE "^ +alertname: $a\$" "$DIR/heat.rules.test.yml" || die "heat.rules.test.yml tests no $a"
done

say "promtool test rules heat.rules.test.yml"
promtool_ok "promtool test rules" promtool test rules "$DIR/heat.rules.test.yml"

say "self-test: HeatProbeFailing with 'for: 4m' must fail the unit tests"
mkdir -p "$tmp/mut"
cp "$DIR/heat.rules.test.yml" "$tmp/mut/"
awk '
    /^      - alert: / { rule = $3 }
    rule == "HeatProbeFailing" && $0 == "        for: 5m" { $0 = "        for: 4m"; n++ }
    { print }
    END { if (n != 1) exit 1 }
' "$RULES" >"$tmp/mut/heat.rules.yml" || die "self-test: HeatProbeFailing has no 'for: 5m'"
rc=0
promtool test rules "$tmp/mut/heat.rules.test.yml" >"$tmp/mut/out" 2>&1 || rc=$?
if [ "$rc" = 0 ] || ! grep -q "alertname: HeatProbeFailing" "$tmp/mut/out"; then
    indent "$tmp/mut/out" >&2
    die "self-test: the unit tests did not fail on HeatProbeFailing (exit $rc) with 'for: 4m'; they would be void"
fi
grep -m1 -A1 "alertname: HeatProbeFailing" "$tmp/mut/out" | indent

# --- 2. heat's /metrics ---------------------------------------------------------

if [ -n "${HEAT_BIN:-}" ]; then
    [ -x "$HEAT_BIN" ] || die "HEAT_BIN=$HEAT_BIN is not executable"
    say "heat: $HEAT_BIN (HEAT_BIN given: not built)"
else
    say "building heat (release)"
    build_heat
fi

heat_port=$(free_port)
prom_port=$(free_port)
while [ "$prom_port" = "$heat_port" ]; do prom_port=$(free_port); done
prom="http://127.0.0.1:$prom_port"

# The probe: healthy while $tmp/heat/healthy exists. Its fail hook, recovery hook
# (which repairs nothing) and signal (CONT to a sleep: harmless) make every
# family of README's table appear.
H="$tmp/heat"
mkdir -p "$H"
touch "$H/healthy"
cat >"$H/fail.sh" <<'EOF'
#!/bin/sh
echo "fail hook of $HEAT_PROBE"
EOF
cat >"$H/recovery.sh" <<'EOF'
#!/bin/sh
echo "recovery hook of $HEAT_PROBE: repairs nothing"
EOF
chmod 0755 "$H/fail.sh" "$H/recovery.sh"
sleep 600 >/dev/null 2>&1 &
target_pid=$!
cat >"$H/heat.toml" <<EOF
metrics_listen = "127.0.0.1:$heat_port"
control_socket = false
log = "$H/heat.verbose.log"

[probe.web]
command = ["test", "-e", "$H/healthy"]
interval = "200ms"
fail = "$H/fail.sh"
recovery = "$H/recovery.sh"
threshold = 3
pid = $target_pid
signal = "CONT"
EOF
cp "$H/heat.toml" "$H/heat.toml.good"
"$HEAT_BIN" -c "$H/heat.toml" -t >"$H/check.out" 2>&1 || {
    indent "$H/check.out" >&2
    die "heat -t refused the test's heat.toml"
}
grep -qxF "metrics_listen = 127.0.0.1:$heat_port" "$H/check.out" ||
    die "heat -t does not show metrics_listen = 127.0.0.1:$heat_port"

say "starting heat -c $H/heat.toml (metrics on 127.0.0.1:$heat_port)"
"$HEAT_BIN" -c "$H/heat.toml" </dev/null >"$H/stdout" 2>"$H/stderr" &
heat_pid=$!

# alive: heat (until it is stopped) and prometheus (once started) still run.
alive() {
    if [ -n "$heat_pid" ] && ! kill -0 "$heat_pid" 2>/dev/null; then
        die "heat exited: $(cat "$H/stderr")"
    fi
    if [ -n "$prom_pid" ] && ! kill -0 "$prom_pid" 2>/dev/null; then
        die "prometheus exited: $(tail -n 20 "$tmp/prom/log")"
    fi
}
# wait_for DESC CMD...: until CMD succeeds, $DEADLINE seconds at most; on a
# timeout the last answer ($tmp/answer) is shown.
wait_for() {
    local desc=$1 deadline=$((SECONDS + DEADLINE))
    shift
    : >"$tmp/answer"
    until "$@"; do
        alive
        if ((SECONDS >= deadline)); then
            { cat "$tmp/answer"; echo; } | indent >&2
            die "$desc: not within $DEADLINE s (last answer above)"
        fi
        sleep 0.2
    done
    say "$desc"
}

# scrape NAME: heat's /metrics into $tmp/NAME (its headers in $tmp/NAME.headers).
scrape() {
    curl -fsS --max-time 2 -D "$tmp/$1.headers" -o "$tmp/$1" "http://127.0.0.1:$heat_port/metrics" \
        2>"$tmp/answer" && cp "$tmp/$1" "$tmp/answer"
}
# scraped NAME LINE: a scrape into $tmp/NAME holds LINE.
scraped() { scrape "$1" && grep -qxF "$2" "$tmp/$1"; }

# as_text NAME: the scrape $tmp/NAME in the Prometheus text format, which
# promtool check metrics reads, into $tmp/NAME.prom. heat answers in
# OpenMetrics: for its families the one difference is a counter's family name
# in HELP and TYPE (heat_checks there, heat_checks_total in the text format;
# the samples are heat_checks_total in both), and the closing "# EOF".
as_text() {
    local f="$tmp/$1" type
    type=$(sed -n 's/^content-type: *//Ip' "$f.headers" | tr -d '\r')
    case $type in
    "application/openmetrics-text; version=1.0.0"*)
        [ "$(tail -n1 "$f")" = "# EOF" ] || die "$1: OpenMetrics without its closing '# EOF'"
        [ "$(grep -c '^# EOF$' "$f")" = 1 ] || die "$1: '# EOF' more than once"
        awk '
            NR == FNR { if ($1 == "#" && $2 == "TYPE" && $4 == "counter") c[$3] = 1; next }
            $0 == "# EOF" { next }
            $1 == "#" && ($2 == "HELP" || $2 == "TYPE") && ($3 in c) {
                head = "# " $2 " " $3
                if (substr($0, 1, length(head)) != head) { print "odd line: " $0 > "/dev/stderr"; exit 1 }
                print head "_total" substr($0, length(head) + 1); next
            }
            { print }
        ' "$f" "$f" >"$f.prom" || die "$1: cannot convert to the text format"
        ;;
    "text/plain; version=0.0.4"*) cp "$f" "$f.prom" ;;
    *) die "$1: content-type '$type', neither OpenMetrics 1.0.0 nor text 0.0.4" ;;
    esac
}

# lint NAME: promtool check metrics on the scrape $tmp/NAME; any finding fails.
lint() {
    local rc=0
    as_text "$1"
    promtool check metrics <"$tmp/$1.prom" >"$tmp/$1.lint" 2>&1 || rc=$?
    if [ "$rc" != 0 ] || [ -s "$tmp/$1.lint" ]; then
        indent "$tmp/$1.lint" >&2
        die "promtool check metrics on the $1 scrape: exit $rc, findings above"
    fi
    say "promtool check metrics: the $1 scrape ($(grep -c '^heat_' "$tmp/$1.prom") samples) is clean"
}

wait_for "heat's /metrics answers, probe web healthy" scraped healthy 'heat_check_success{probe="web"} 1'
grep -i '^content-type' "$tmp/healthy.headers" | tr -d '\r' | indent
lint healthy

# --- 3. a real prometheus --------------------------------------------------------

P="$tmp/prom"
mkdir -p "$P"
cat >"$P/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $RULES
scrape_configs:
  - job_name: heat
    static_configs:
      - targets: ["127.0.0.1:$heat_port"]
EOF
say "promtool check config on the test's prometheus.yml"
promtool_ok "promtool check config (the test's)" promtool check config --lint-fatal "$P/prometheus.yml"
say "starting prometheus on 127.0.0.1:$prom_port, scraping heat every second"
prometheus --config.file="$P/prometheus.yml" --storage.tsdb.path="$P/data" \
    --web.listen-address="127.0.0.1:$prom_port" </dev/null >"$P/log" 2>&1 &
prom_pid=$!

# api PATH: prometheus's answer to GET PATH, into $tmp/answer.
api() { curl -fsS --max-time 2 "$prom$1" >"$tmp/answer" 2>&1; }
ready() { api /-/ready; }
# target_up: the one target of job heat is up, scraped without error.
target_up() {
    api /api/v1/targets &&
        [ "$(jq -r '[.data.activeTargets[] | select(.labels.job == "heat") | "\(.health) \(.lastError)"] | join(",")' "$tmp/answer")" = "up " ]
}
# is EXPR WANT: EXPR has exactly one series now, and its value is WANT.
is() {
    curl -fsS --max-time 2 -G "$prom/api/v1/query" --data-urlencode "query=$1" >"$tmp/answer" 2>&1 &&
        [ "$(jq -r 'select(.status == "success" and (.data.result | length) == 1) | .data.result[0].value[1]' "$tmp/answer")" = "$2" ]
}
# alerts_are WANT: the active alerts, "NAME STATE PROBE" a line (sorted; - for
# no probe), are WANT.
alerts_are() {
    local got
    api /api/v1/alerts &&
        got=$(jq -r '.data.alerts[] | "\(.labels.alertname) \(.state) \(.labels.probe // "-")"' "$tmp/answer" | sort) &&
        [ "$got" = "$1" ]
}
# rules_ok: the group heat of $RULES holds every alert, in order, each evaluated without error.
rules_ok() {
    api /api/v1/rules &&
        [ "$(jq -r --arg file "$RULES" '.data.groups[] | select(.name == "heat" and .file == $file) | .rules[] | "\(.name) \(.type) \(.health)"' "$tmp/answer")" = \
            "$(printf '%s alerting ok\n' "${ALERTS[@]}")" ]
}

wait_for "prometheus is ready" ready
wait_for "prometheus scrapes heat: target up" target_up
wait_for "prometheus: heat_check_success{probe=\"web\"} is 1" is 'heat_check_success{job="heat",probe="web"}' 1
wait_for "prometheus: the heat rules are loaded and evaluated" rules_ok
wait_for "prometheus: no alert on a healthy heat" alerts_are ""

say "breaking the probe: rm $H/healthy"
rm "$H/healthy"
wait_for "prometheus: heat_check_success{probe=\"web\"} is 0" is 'heat_check_success{job="heat",probe="web"}' 0
wait_for "prometheus: heat_in_recovery{probe=\"web\"} is 1" is 'heat_in_recovery{job="heat",probe="web"}' 1
wait_for "prometheus: HeatProbeFailing and HeatProbeInRecovery pending, nothing else" \
    alerts_are "$(printf '%s\n' "HeatProbeFailing pending web" "HeatProbeInRecovery pending web")"
jq -r '.data.alerts[] | "\(.labels.alertname): \(.annotations.summary)"' "$tmp/answer" | indent

# Every family of README's table, as its text-format TYPE line. The hook and
# signal counters have series once a hook ran and a signal was sent.
hooks_and_signal() {
    scrape failing &&
        grep -q '^heat_hooks_total{.*kind="fail"' "$tmp/failing" &&
        grep -q '^heat_hooks_total{.*kind="recovery"' "$tmp/failing" &&
        grep -q '^heat_signals_sent_total{.*signal="SIGCONT"' "$tmp/failing"
}
wait_for "heat's /metrics: the fail and recovery hooks ran, a signal was sent" hooks_and_signal
lint failing
for family in heat_build_info:gauge heat_check_success:gauge heat_check_duration_seconds:histogram \
    heat_checks_total:counter heat_consecutive_failures:gauge heat_recovery_rounds_total:counter \
    heat_in_recovery:gauge heat_paused:gauge heat_hooks_total:counter heat_signals_sent_total:counter \
    heat_schedule_lateness_seconds:histogram heat_config_reload_success:gauge \
    heat_config_last_reload_timestamp_seconds:gauge heat_log_entries_lost_total:counter; do
    grep -qxF "# TYPE ${family%:*} ${family#*:}" "$tmp/failing.prom" ||
        die "heat's /metrics has no ${family#*:} ${family%:*}"
done
for line in 'heat_checks_total{probe="web",result="success"}' 'heat_checks_total{probe="web",result="failure"}' \
    'heat_check_duration_seconds_bucket{le="+Inf",probe="web"}' 'heat_build_info{version="'; do
    grep -qF "$line" "$tmp/failing.prom" || die "heat's /metrics has no series $line"
done
say "heat's /metrics: all 14 families of README's table, with their types"

say "repairing the probe: touch $H/healthy"
touch "$H/healthy"
wait_for "prometheus: heat_check_success{probe=\"web\"} is 1 again" is 'heat_check_success{job="heat",probe="web"}' 1
wait_for "prometheus: heat_in_recovery{probe=\"web\"} is 0" is 'heat_in_recovery{job="heat",probe="web"}' 0
wait_for "prometheus: no alert once the probe passes" alerts_are ""

say "a refused reload: a probe with no check, then SIGHUP"
{ cat "$H/heat.toml.good"; printf '\n[probe.broken]\ninterval = "1s"\n'; } >"$H/heat.toml.new"
mv -f "$H/heat.toml.new" "$H/heat.toml"
kill -HUP "$heat_pid"
wait_for "prometheus: heat_config_reload_success is 0" is 'heat_config_reload_success{job="heat"}' 0
wait_for "prometheus: HeatConfigReloadFailing pending" alerts_are "HeatConfigReloadFailing pending -"
cp "$H/heat.toml.good" "$H/heat.toml.new"
mv -f "$H/heat.toml.new" "$H/heat.toml"
kill -HUP "$heat_pid"
wait_for "prometheus: heat_config_reload_success is 1 after a good reload" is 'heat_config_reload_success{job="heat"}' 1
wait_for "prometheus: no alert after the good reload" alerts_are ""
rules_ok || { indent "$tmp/answer" >&2; die "/api/v1/rules: the group heat is not every rule, evaluated ok"; }
jq -r '.data.groups[] | select(.name == "heat") | .rules[] | "\(.name): \(.health), \(.state)"' "$tmp/answer" | indent

# term NAME PID LOG: TERM to PID, which must exit 0 (else LOG's tail is shown).
term() {
    local rc=0
    say "stopping $1 with TERM"
    kill -TERM "$2"
    wait "$2" || rc=$?
    [ "$rc" = 0 ] || die "$1 exited $rc on TERM: $(tail -n 20 "$3")"
}
term heat "$heat_pid" "$H/stderr"
heat_pid=
wait_for "prometheus: up{job=\"heat\"} is 0" is 'up{job="heat"}' 0
wait_for "prometheus: HeatDown pending, nothing else" alerts_are "HeatDown pending -"

term prometheus "$prom_pid" "$P/log"
prom_pid=
say "OK: rules checked and unit-tested; heat's /metrics lint-clean; a real prometheus saw the probe fail and recover, a reload refused and heat stop, with the alerts each time"
