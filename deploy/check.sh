#!/bin/sh
# Checks the deployment files without touching the system:
#   1. make install into a temporary prefix, then systemd-analyze verify on
#      the units as installed (binaries and man pages present, the low-port
#      drop-in merged in), and systemd-sysusers --dry-run on the user file;
#   2. haproxy -c on deploy/haproxy/haproxy.cfg;
#   3. the man pages through mandoc -T lint (or groff -ww) and man;
#   4. make uninstall leaves only the configuration behind.
# Any warning counts as a failure. Needs systemd, haproxy, mandoc or groff,
# man-db (Debian: apt-get install systemd haproxy mandoc man-db).
# Run from the top of the repository: sh deploy/check.sh
set -eu
fail() { echo "deploy/check: $*" >&2; exit 1; }
for tool in systemd-analyze systemd-sysusers haproxy man; do
	command -v "$tool" >/dev/null 2>&1 || fail "$tool not found (apt-get install systemd haproxy mandoc man-db)"
done
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
P=$T/usr
# quiet CMD...: runs CMD; any output, or a non-zero exit, is a failure.
quiet() {
	if ! "$@" >"$T/out" 2>&1 || [ -s "$T/out" ]; then
		cat "$T/out" >&2
		fail "$* reported the above"
	fi
}

make --no-print-directory -s install PREFIX="$P" SYSCONFDIR="$T/etc" >"$T/install.log" 2>&1 ||
	{ cat "$T/install.log" >&2; fail "make install failed"; }
units=$P/lib/systemd/system
mkdir -p "$units/dropshipd.service.d"
cp deploy/systemd/dropshipd.service.d/low-port.conf "$units/dropshipd.service.d/"
MANPATH=$P/share/man quiet systemd-analyze verify "$units/dropshipd.service" "$units/dropship-migrate.service"
echo "systemd-analyze verify: ok (dropshipd.service with low-port.conf, dropship-migrate.service)"
mkdir -p "$T/root"
systemd-sysusers --root="$T/root" --dry-run "$P/lib/sysusers.d/dropship.conf" >"$T/out" 2>&1 ||
	{ cat "$T/out" >&2; fail "systemd-sysusers refused dropship.conf"; }
grep -q "Creating user 'dropship'" "$T/out" || { cat "$T/out" >&2; fail "sysusers would not create dropship"; }
echo "systemd-sysusers --dry-run: ok"

haproxy -c -f deploy/haproxy/haproxy.cfg >"$T/out" 2>&1 || { cat "$T/out" >&2; fail "haproxy -c failed"; }
grep -qv "Configuration file is valid" "$T/out" && { cat "$T/out" >&2; fail "haproxy -c warned"; }
echo "haproxy -c: ok"

# The pages as written (default paths) and as installed (rewritten paths);
# man renders only the former: the temporary prefix makes lines too long.
for page in man/*.8 "$P"/share/man/man8/*.8; do
	if command -v mandoc >/dev/null 2>&1; then
		quiet mandoc -T lint -W style "$page"
	else
		quiet groff -man -ww -z "$page"
	fi
done
for page in man/*.8; do
	MANWIDTH=80 quiet sh -c 'man --warnings -l "$1" >/dev/null' sh "$page"
done
echo "man pages: ok ($(echo man/*.8))"

make --no-print-directory -s uninstall PREFIX="$P" SYSCONFDIR="$T/etc" >/dev/null
rm -rf "$units/dropshipd.service.d"
left=$(find "$P" -type f)
[ -z "$left" ] || fail "make uninstall left: $left"
[ -f "$T/etc/dropship/dropshipd.conf" ] || fail "make uninstall removed the configuration"
echo "make install/uninstall: ok"
