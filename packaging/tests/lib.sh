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

# Everything the Debian package installs, makes or registers: absent before
# an install, absent after a purge. /lib is /usr/lib on merged-/usr hosts:
# both spellings.
HEAT_DEB_PATHS=(
    /usr/bin/heat
    /etc/heat
    /var/log/heat
    /lib/systemd/system/heat.service
    /usr/lib/systemd/system/heat.service
    /etc/systemd/system/heat.service
    /etc/systemd/system/multi-user.target.wants/heat.service
    /var/lib/systemd/deb-systemd-helper-enabled/heat.service.dsh-also
    /var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/heat.service
    /var/lib/systemd/deb-systemd-helper-masked/heat.service
    /etc/logrotate.d/heat
    /usr/share/man/man1/heat.1.gz
    /usr/share/bash-completion/completions/heat
    /usr/share/zsh/vendor-completions/_heat
    /usr/share/fish/vendor_completions.d/heat.fish
    /usr/share/doc/heat
)

CARGO_DEB_VERSION=3.8.0

# build_deb OUT [VERSION]: the Debian package, built with cargo-deb (installed
# first if missing) from the committed assets, at OUT; VERSION overrides the
# package version (an upgrade needs a second, greater one).
build_deb() {
    export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
    command -v cc >/dev/null || apt_install gcc libc6-dev
    # cargo-deb's `depends = "$auto"` runs dpkg-shlibdeps.
    command -v dpkg-shlibdeps >/dev/null || apt_install dpkg-dev
    if [ "$(cargo deb --version 2>/dev/null)" != "cargo-deb $CARGO_DEB_VERSION" ]; then
        echo "   installing cargo-deb $CARGO_DEB_VERSION (compiles; a few minutes)"
        cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked --quiet
    fi
    cargo deb --locked --quiet --output "$1" ${2:+--deb-version "$2"} >/dev/null
    [ -s "$1" ] || { printf 'FAIL: cargo deb wrote no package at %s\n' "$1" >&2; exit 1; }
}
