#!/usr/bin/env bash
# CI check of packaging/logrotate/heat with the real logrotate:
#  1. `logrotate -d` on the snippet: any `error:` line fails (logrotate exits 0
#     on unknown options; a self-test proves such a line appears);
#  2. a real rotation: logrotate -f, several times, against a running heat
#     whose check logs a sequence number 50 times a second; across the rotated
#     files and the current log every number appears exactly once, in order,
#     and every entry is whole.
# Needs no running systemd. Run as root from the repository root.
set -euo pipefail

cd "$(dirname "$0")/../.."
. packaging/tests/lib.sh
SNIPPET="$PWD/packaging/logrotate/heat"
ROTATIONS=4
# The shipped postrotate line; the rotation test HUPs its own heat by pid
# instead, so that no other heat on the machine is touched.
POSTROTATE='pkill -HUP -x heat || [ $? -eq 1 ]'

say() { printf '== %s\n' "$*"; }
die() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

tmp=$(mktemp -d /tmp/heat-logrotate-ci.XXXXXX)
heat_pid=
cleanup() {
    if [ -n "$heat_pid" ] && kill -0 "$heat_pid" 2>/dev/null; then
        kill -KILL "$heat_pid" 2>/dev/null || true
        wait "$heat_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

if ! command -v logrotate >/dev/null; then
    say "installing logrotate"
    apt_install logrotate
fi
say "$(logrotate --version 2>&1 | head -n1)"

say "building heat (release)"
build_heat
bin=$HEAT_BIN

# copy_snippet DEST LOGDIR [POSTROTATE]: the snippet for logs in LOGDIR, with
# the postrotate line replaced when one is given.
copy_snippet() {
    local dest=$1 dir=$2 post=${3:-$POSTROTATE}
    awk -v dir="$dir" -v post="$post" -v orig="$POSTROTATE" '
        $0 == "/var/log/heat/*.log {" { print dir "/*.log {"; next }
        { t = $0; sub(/^ +/, "", t) }
        t == orig { print substr($0, 1, length($0) - length(t)) post; next }
        { print }
    ' "$SNIPPET" >"$dest"
    grep -qxF "$dir/*.log {" "$dest" || die "$SNIPPET: no '/var/log/heat/*.log {' line"
    grep -qxF "        $post" "$dest" || die "$SNIPPET: postrotate is not '$POSTROTATE'"
}

# debug CONF: logrotate -d; its output goes to $tmp/debug.out.
debug() {
    logrotate -d -s "$tmp/debug.state" "$1" >"$tmp/debug.out" 2>&1
}

mkdir -p "$tmp/debug/logs" "$tmp/rot/logs" "$tmp/rot/conf"
echo "1 : INFO : heat :" >"$tmp/debug/logs/heat.verbose.log"
copy_snippet "$tmp/debug/heat" "$tmp/debug/logs"

say "self-test: an unknown option must produce an error: line"
sed 's/^\( *\)weekly$/\1weekly\n\1bogusoption/' "$tmp/debug/heat" >"$tmp/debug/bogus"
grep -q bogusoption "$tmp/debug/bogus" || die "self-test: could not add bogusoption"
debug "$tmp/debug/bogus" || true
grep -E '^error:' "$tmp/debug.out" | grep -q bogusoption ||
    die "self-test: logrotate -d said no error: about bogusoption; the check would be void"
grep -E '^error:' "$tmp/debug.out" | sed 's/^/   | /'

for conf in "$SNIPPET" "$tmp/debug/heat"; do
    say "logrotate -d $conf"
    rc=0
    debug "$conf" || rc=$?
    if grep -qE '^error:' "$tmp/debug.out" || [ "$rc" != 0 ]; then
        sed 's/^/   | /' "$tmp/debug.out" >&2
        die "logrotate -d $conf: exit $rc, errors above"
    fi
done

say "real rotation: heat with a 20 ms sequence check, logrotate -f x$ROTATIONS"
cd "$tmp/rot"
cat >seq.sh <<'EOF'
#!/bin/sh
n=$(cat seq.state 2>/dev/null || echo 0)
n=$((n + 1))
echo "$n" >seq.state
echo "seq=$n"
EOF
chmod 0755 seq.sh
# A loaded machine may run a check past 20 ms: it must not be killed for that.
printf '[probe.seq]\nscript = "seq.sh"\ninterval = "20ms"\ntimeout = "10s"\n' >heat.toml
log="$tmp/rot/logs/heat.verbose.log"
"$bin" -c heat.toml --log "$log" </dev/null >heat.stdout 2>heat.stderr &
heat_pid=$!
copy_snippet conf/heat "$tmp/rot/logs" "kill -HUP $heat_pid"

# wait_seq N: until the current log holds N sequence entries (10 s at most).
wait_seq() {
    local n _
    for _ in $(seq 200); do
        n=$(grep -c '^> seq=' "$log" 2>/dev/null || true)
        [ "${n:-0}" -ge "$1" ] && return 0
        kill -0 "$heat_pid" 2>/dev/null || die "heat exited: $(cat heat.stderr)"
        sleep 0.05
    done
    die "the current log never reached $1 sequence entries"
}

for r in $(seq "$ROTATIONS"); do
    wait_seq 20
    logrotate -f -s logrotate.state conf/heat >rotate.out 2>&1 ||
        die "logrotate -f (rotation $r): $(cat rotate.out)"
    if grep -E '^error:' rotate.out; then die "logrotate -f (rotation $r) reported errors"; fi
done
wait_seq 20
kill -TERM "$heat_pid"
rc=0
wait "$heat_pid" || rc=$?
heat_pid=
[ "$rc" = 0 ] || die "heat exited $rc on TERM: $(cat heat.stderr)"

# The generations, oldest first: .N.gz ... .2.gz, .1 (delaycompress), current.
files=()
for n in $(seq "$ROTATIONS" -1 2); do files+=("$log.$n.gz"); done
files+=("$log.1" "$log")
find logs -type f -printf '%M %s %f\n' | sort -k3 | sed 's/^/   | /'
for f in "${files[@]}"; do [ -f "$f" ] || die "missing generation $f"; done
[ "$(find logs -mindepth 1 | wc -l)" = "${#files[@]}" ] || die "unexpected files in the log dir"
mode=$(stat -c %a "$log")
[ "$mode" = 640 ] || die "the log heat reopened has mode $mode, expected 640"

# Every generation ends with a newline and holds whole entries only; print
# "FILE SEQ" for each sequence entry, "FILE reopened" for each reopen.
for f in "${files[@]}"; do
    case $f in *.gz) zcat "$f" >gen.txt ;; *) cat "$f" >gen.txt ;; esac
    [ -s gen.txt ] || die "$f is empty"
    [ -z "$(tail -c1 gen.txt)" ] || die "$f ends in the middle of a line"
    awk -v f="${f##*/}" '
        function bad(why) { printf "FAIL: %s line %d: %s: %s\n", f, FNR, why, $0 > "/dev/stderr"; exit 1 }
        function close_entry() {
            # A check ended by heat at its stop is logged with a marker and may
            # not have printed its number yet.
            if (name == "[seq] seq.sh" && !ended && (kind != "INFO" || nbody != 1 || seq == "")) bad("torn sequence entry")
            if (name == "[seq] seq.sh" && ended && (kind != "INFO" || nbody - 1 != (seq != ""))) bad("torn ended entry")
            if (name == "heat" && body == "reopened the log") print f, "reopened"
            if (seq != "") print f, seq
        }
        /^[0-9]+ : (INFO|FAIL|ERR) : .* :$/ {
            if (FNR > 1) close_entry()
            kind = $3; name = substr($0, index($0, " : ") + 3); name = substr(name, index(name, " : ") + 3)
            sub(/ :$/, "", name); nbody = 0; seq = ""; body = ""; ended = 0; next
        }
        FNR == 1 { bad("does not start with an entry header") }
        /^> / || /^>$/ {
            nbody++; body = substr($0, 3)
            if (name == "[seq] seq.sh") {
                if (body ~ /^seq=[0-9]+$/) seq = substr(body, 5)
                else if (body == "[heat: ended by heat]") ended = 1
                else bad("not a sequence line")
            }
            next
        }
        { bad("neither a header nor a body line") }
        END { if (FNR > 0) close_entry() }
    ' gen.txt >>found.txt || die "${f##*/} holds a torn or foreign line (above)"
done

awk '$2 != "reopened" { print $2 }' found.txt >seqs.txt
last=$(tail -n1 seqs.txt)
counted=$(cat seq.state)
awk 'NR != $1 { printf "FAIL: entry %d says seq=%d: lost or duplicated\n", NR, $1 > "/dev/stderr"; exit 1 }' seqs.txt ||
    die "the sequence across the generations is broken"
# A check ended by heat on TERM writes its entry marked "ended by heat" and counts for
# nothing; its seq line may not have been printed yet: it may have counted once more.
[ "$counted" -eq "$last" ] || [ "$counted" -eq $((last + 1)) ] ||
    die "the check counted $counted runs, the log has 1..$last"
for f in "${files[@]}"; do
    n=$(awk -v f="${f##*/}" '$1 == f && $2 != "reopened"' found.txt | wc -l)
    [ "$n" -ge 1 ] || die "${f##*/} holds no sequence entry"
    printf '   | %-28s %4d sequence entries\n' "${f##*/}" "$n"
done
reopens=$(grep -c ' reopened$' found.txt || true)
[ "$reopens" = "$ROTATIONS" ] || die "heat reopened its log $reopens times, expected $ROTATIONS"
say "OK: seq=1..$last each exactly once, in order, over ${#files[@]} generations; $reopens reopens"
