# shellcheck shell=bash
# Shared by the packaging checks: sourced, never run.

# apt_install PKG...: installs without recommends, updating the package lists
# once per script (a fresh machine has none).
apt_updated=
apt_install() {
    [ -n "$apt_updated" ] || { apt-get update -qq && apt_updated=1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# build_heat: the release binary the checks use, in $HEAT_BIN.
build_heat() {
    cargo build --release --locked --quiet
    HEAT_BIN="$PWD/target/release/heat"
    [ -x "$HEAT_BIN" ] || { printf 'FAIL: no executable heat at %s after the build\n' "$HEAT_BIN" >&2; exit 1; }
}
