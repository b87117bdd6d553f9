#!/usr/bin/env bash
# CI check of packaging/systemd/heat.service with systemd's own verifier.
# systemd-analyze verify exits 0 on unknown keys and other mistakes, so any
# stderr output fails this check; a self-test proves that such output appears.
# Needs no running systemd. Run as root from the repository root.
set -euo pipefail

cd "$(dirname "$0")/../.."
. packaging/tests/lib.sh
UNIT=packaging/systemd/heat.service

say() { printf '== %s\n' "$*"; }
die() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

tmp=$(mktemp -d /tmp/heat-systemd-ci.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

if ! command -v systemd-analyze >/dev/null; then
    say "installing systemd (for systemd-analyze)"
    apt_install systemd
fi
say "$(systemd-analyze --version | head -n1)"

say "building heat (release)"
build_heat
bin=$HEAT_BIN

# The unit as shipped, with ExecStart and ExecReload pointing at the binary just built (so
# that verify checks a real executable without installing into /usr/bin).
mkdir "$tmp/unit" "$tmp/bogus" "$tmp/nobin"
sed -E "s|^(ExecStart\|ExecReload)=/usr/bin/heat |\1=$bin |" "$UNIT" >"$tmp/unit/heat.service"
[ "$(diff "$UNIT" "$tmp/unit/heat.service" | grep -c '^>')" = 2 ] ||
    die "expected exactly two lines, ExecStart= and ExecReload=/usr/bin/heat ..., in $UNIT"
grep -qx "ExecStart=$bin -c /etc/heat/heat.toml" "$tmp/unit/heat.service" ||
    die "ExecStart is not '/usr/bin/heat -c /etc/heat/heat.toml' in $UNIT"
grep -qx "ExecReload=$bin reload --pid \$MAINPID" "$tmp/unit/heat.service" ||
    die "ExecReload is not '/usr/bin/heat reload --pid \$MAINPID' in $UNIT"

# verify ARGS...: runs systemd-analyze verify; its stderr goes to $tmp/stderr.
verify() {
    local rc=0
    systemd-analyze verify --man=no "$@" 2>"$tmp/stderr" || rc=$?
    return "$rc"
}

say "self-test: an unknown key must produce output on stderr"
sed 's/^\[Service\]$/[Service]\nBogus=1/' "$tmp/unit/heat.service" >"$tmp/bogus/heat.service"
grep -qx 'Bogus=1' "$tmp/bogus/heat.service" || die "self-test: could not add Bogus=1"
verify "$tmp/bogus/heat.service" || true
grep -q "Bogus" "$tmp/stderr" ||
    die "self-test: systemd-analyze said nothing about Bogus=1; the stderr check would be void"
sed 's/^/   | /' "$tmp/stderr"

say "self-test: a missing ExecStart binary must produce output on stderr"
sed "s|^ExecStart=$bin |ExecStart=$tmp/nobin/heat |" "$tmp/unit/heat.service" >"$tmp/nobin/heat.service"
verify "$tmp/nobin/heat.service" || true
[ -s "$tmp/stderr" ] || die "self-test: systemd-analyze accepted a missing binary"
sed 's/^/   | /' "$tmp/stderr"

say "systemd-analyze verify --man=no $UNIT (ExecStart=$bin)"
rc=0
verify "$tmp/unit/heat.service" || rc=$?
if [ -s "$tmp/stderr" ] || [ "$rc" != 0 ]; then
    sed 's/^/   | /' "$tmp/stderr" >&2
    die "systemd-analyze verify: exit $rc, output above (any output is a failure)"
fi
say "OK: $UNIT verifies clean"
