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

# free_port: a TCP port on 127.0.0.1 that nothing listens on now, below the
# kernel's ephemeral range (a server started on it right after may still lose
# a race, and then says so).
free_port() {
    local p
    for p in $(shuf -i 20000-32000 -n 200); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    printf 'FAIL: no free port on 127.0.0.1\n' >&2
    return 1
}
