#!/usr/bin/env bash
# CI for the Debian package: build it with cargo-deb from the committed assets,
# install it with dpkg, check what it installed and that the installed heat
# accepts and runs its default configuration, then purge it and check that
# nothing is left behind. Run as root from the repository root; no systemd needed.
set -euo pipefail

step() { printf '== %s\n' "$*"; }
ok() { printf '   ok: %s\n' "$*"; }
fail() {
	printf 'deb.sh: FAIL: %s\n' "$*" >&2
	exit 1
}

[ "$(id -u)" = 0 ] || fail "run as root: dpkg -i and dpkg --purge need it"
grep -qs '^name = "heat"$' Cargo.toml ||
	fail "run from the heat repository root (no heat Cargo.toml in $PWD)"
. packaging/tests/lib.sh

tmp=$(mktemp -d "${TMPDIR:-/tmp}/heat-deb.XXXXXX")
heat_pid=
installed=0
cleanup() {
	local rc=$?
	if [ -n "$heat_pid" ]; then
		kill -KILL "$heat_pid" 2>/dev/null || true
		wait "$heat_pid" 2>/dev/null || true
	fi
	if [ "$installed" = 1 ] && [ "$(pkg_status)" != not-installed ]; then
		echo "deb.sh: cleanup: purging heat" >&2
		dpkg --purge heat >/dev/null 2>&1 || true
	fi
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT

# installed, config-files, not-installed, ...
pkg_status() {
	local s
	s=$(dpkg-query -W -f='${db:Status-Status}' heat 2>/dev/null) || s=not-installed
	printf '%s\n' "${s:-not-installed}"
}

exists() { [ -e "$1" ] || [ -L "$1" ]; }

same_file() {
	cmp -s "$1" "$2" || fail "$1 differs from $2"
	ok "$1 = $2"
}

# --- tools -----------------------------------------------------------------


# --- build -----------------------------------------------------------------

step "preconditions: heat not installed, none of its paths present"
[ "$(pkg_status)" = not-installed ] ||
	fail "package heat is already known to dpkg ($(pkg_status)); purge it first: dpkg --purge heat"
for p in "${HEAT_DEB_PATHS[@]}"; do
	! exists "$p" || fail "$p exists before install; remove it so the purge check means something"
done
ok "${#HEAT_DEB_PATHS[@]} paths absent"

step "cargo deb --locked (committed man page and completions)"
deb="$tmp/heat.deb"
build_deb "$deb"
cargo deb --version

step "package metadata"
dpkg-deb --info "$deb" control | tee "$tmp/control"
field() { sed -n "s/^$1: //p" "$tmp/control"; }
[ "$(field Package)" = heat ] || fail "Package is not heat"
[ "$(field Section)" = admin ] || fail "Section is $(field Section), not admin"
[ "$(field Priority)" = optional ] || fail "Priority is $(field Priority), not optional"
field Depends | grep -q 'libc6' || fail "Depends lacks libc6 (\$auto not resolved): $(field Depends)"
ok "Package heat, Section admin, Priority optional, Depends $(field Depends)"
dpkg-deb --info "$deb" conffiles | sort >"$tmp/conffiles"
printf '%s\n' /etc/heat/heat.toml /etc/logrotate.d/heat | sort | cmp -s - "$tmp/conffiles" ||
	fail "conffiles are not exactly /etc/heat/heat.toml and /etc/logrotate.d/heat: $(tr '\n' ' ' <"$tmp/conffiles")"
ok "conffiles: $(tr '\n' ' ' <"$tmp/conffiles")"
dpkg-deb --contents "$deb" | awk '{ print $1, $6 }' >"$tmp/contents"
for want in "-rwxr-xr-x ./usr/bin/heat" "-rw-r--r-- ./etc/heat/heat.toml" \
	"-rw-r--r-- ./lib/systemd/system/heat.service" "-rw-r--r-- ./usr/share/man/man1/heat.1.gz"; do
	grep -qxF -- "$want" "$tmp/contents" || fail "package lacks '$want'"
	ok "contains $want"
done

# --- install ---------------------------------------------------------------

step "dpkg -i"
installed=1
dpkg -i "$deb"
[ "$(pkg_status)" = installed ] || fail "heat is $(pkg_status) after dpkg -i, not installed"
ok "dpkg: heat installed"

step "installed files"
[ -x /usr/bin/heat ] || fail "/usr/bin/heat is not executable"
[ "$(stat -c %a /usr/bin/heat)" = 755 ] || fail "/usr/bin/heat mode $(stat -c %a /usr/bin/heat), not 755"
ok "/usr/bin/heat 0755"
[ -d /var/log/heat ] || fail "postinst did not create /var/log/heat"
[ "$(stat -c %a /var/log/heat)" = 750 ] || fail "/var/log/heat mode $(stat -c %a /var/log/heat), not 750"
ok "/var/log/heat 0750 $(stat -c %U:%G /var/log/heat)"
same_file /etc/heat/heat.toml packaging/deb/heat.toml
same_file /etc/logrotate.d/heat packaging/logrotate/heat
unit=/lib/systemd/system/heat.service
same_file "$unit" packaging/systemd/heat.service
gzip -dc /usr/share/man/man1/heat.1.gz >"$tmp/heat.1"
same_file "$tmp/heat.1" packaging/generated/heat.1
same_file /usr/share/bash-completion/completions/heat packaging/generated/heat.bash
same_file /usr/share/zsh/vendor-completions/_heat packaging/generated/_heat
same_file /usr/share/fish/vendor_completions.d/heat.fish packaging/generated/heat.fish
same_file /usr/share/doc/heat/README.md README.md
[ -s /usr/share/doc/heat/copyright ] || fail "/usr/share/doc/heat/copyright is missing"
ok "/usr/share/doc/heat/copyright"
dpkg-query -W -f='${Conffiles}\n' heat | grep -q '/etc/heat/heat.toml' ||
	fail "dpkg does not list /etc/heat/heat.toml as a conffile"
ok "dpkg lists /etc/heat/heat.toml as a conffile"

step "unit enabled for boot, not started (no systemd here)"
if grep -q '^WantedBy=multi-user.target' "$unit"; then
	link=/etc/systemd/system/multi-user.target.wants/heat.service
	[ "$(readlink "$link")" = "$unit" ] || fail "$link does not point to $unit (deb-systemd-helper enable)"
	ok "$link -> $unit"
fi
for exe in /proc/[0-9]*/exe; do
	[ "$(readlink "$exe" 2>/dev/null)" != /usr/bin/heat ] || fail "a heat is running (${exe%/exe}): postinst started it"
done
ok "no heat process running"

step "installed heat: version, validation, a real run of the default config"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
out=$(/usr/bin/heat --version)
[ "$out" = "heat $version" ] || fail "heat --version says '$out', not 'heat $version'"
ok "heat --version: $out"
/usr/bin/heat -c /etc/heat/heat.toml -t >"$tmp/describe" ||
	fail "heat -c /etc/heat/heat.toml -t exited $? (the default config must validate)"
grep -q '^\[probe\.' "$tmp/describe" || fail "heat -t describes no probe"
ok "heat -c /etc/heat/heat.toml -t: exit 0, probes $(sed -n 's/^\[probe\.\(.*\)\]$/\1/p' "$tmp/describe" | tr '\n' ' ')"
# A 1 s interval from the command line so that every probe runs at once.
log=/var/log/heat/heat.verbose.log
/usr/bin/heat -c /etc/heat/heat.toml -i 1 >"$tmp/heat.out" 2>&1 &
heat_pid=$!
probes=$(sed -n 's/^\[probe\.\(.*\)\]$/\1/p' "$tmp/describe")
deadline=$((SECONDS + 20))
for p in $probes; do
	until grep -q "^[0-9]* : INFO : \[$p\] " "$log" 2>/dev/null; do
		if grep -q "^[0-9]* : \(FAIL\|ERR\) : \[$p\]" "$log" 2>/dev/null; then
			fail "probe $p of the default config failed: $(grep -A3 "\[$p\]" "$log" | head -n 4)"
		fi
		kill -0 "$heat_pid" 2>/dev/null || fail "heat exited early: $(cat "$tmp/heat.out")"
		[ "$SECONDS" -lt "$deadline" ] || fail "probe $p wrote no INFO entry to $log within 20 s"
		sleep 0.1
	done
	ok "probe $p passed (INFO in $log)"
done
[ "$(stat -c %a "$log")" = 640 ] || fail "$log mode $(stat -c %a "$log"), not 640"
kill -TERM "$heat_pid"
rc=0
wait "$heat_pid" || rc=$?
heat_pid=
[ "$rc" = 0 ] || fail "heat exited $rc on TERM, not 0: $(cat "$tmp/heat.out")"
ok "heat stopped by TERM, exit 0"

step "reinstall (the upgrade path): an edited conffile is kept"
echo "# edited by deb.sh" >>/etc/heat/heat.toml
dpkg -i "$deb"
[ "$(pkg_status)" = installed ] || fail "heat is $(pkg_status) after a reinstall"
tail -n 1 /etc/heat/heat.toml | grep -qxF "# edited by deb.sh" ||
	fail "dpkg -i replaced the edited /etc/heat/heat.toml"
ok "edited /etc/heat/heat.toml kept across dpkg -i"

# --- remove, then purge ----------------------------------------------------

step "dpkg --remove heat: configuration and logs stay"
dpkg --remove heat
[ "$(pkg_status)" = config-files ] || fail "heat is $(pkg_status) after remove, not config-files"
! exists /usr/bin/heat || fail "/usr/bin/heat survived dpkg --remove"
for p in /etc/heat/heat.toml /etc/logrotate.d/heat "$log"; do
	[ -f "$p" ] || fail "dpkg --remove deleted $p (only purge may)"
done
ok "binary gone; /etc/heat/heat.toml, /etc/logrotate.d/heat and $log kept"

step "dpkg --purge heat"
dpkg --purge heat
if dpkg -l heat >"$tmp/dpkg-l" 2>&1; then
	fail "dpkg -l heat still lists it: $(grep heat "$tmp/dpkg-l")"
fi
ok "dpkg -l heat: $(cat "$tmp/dpkg-l")"
[ "$(pkg_status)" = not-installed ] || fail "heat is $(pkg_status) after purge"
installed=0
left=()
for p in "${HEAT_DEB_PATHS[@]}"; do
	if exists "$p"; then left+=("$p"); else ok "gone: $p"; fi
done
[ "${#left[@]}" = 0 ] || fail "left behind after purge: ${left[*]}"

step "deb.sh: all checks passed"
