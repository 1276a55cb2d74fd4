#!/bin/sh
# Installs the Debian packages dropship needs, only those missing.
#   deps.sh [clang]
# clang: also clang and its sanitizer and libFuzzer runtime (make fuzz, the
# clang build of .ci/run). Silent when everything is present. Uses apt-get
# as root, sudo otherwise.
set -eu
PKGS="build-essential pkg-config libevent-dev libssl-dev libpq-dev libjansson-dev libinih-dev
libcunit1-dev postgresql postgresql-contrib openssl curl ca-certificates util-linux haproxy"
for group in "$@"; do
	case $group in
	clang) PKGS="$PKGS clang" ;;
	*) echo "deps: unknown group $group (known: clang)" >&2; exit 2 ;;
	esac
done

updated=""
# install_missing PKG...: installs those of the packages that are missing.
install_missing() {
	missing=""
	for p in "$@"; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
			missing="$missing $p"
		fi
	done
	[ -z "$missing" ] && return 0
	echo "deps: installing missing packages:$missing" >&2
	if [ "$(id -u)" -eq 0 ]; then
		SUDO=""
	elif command -v sudo >/dev/null 2>&1; then
		SUDO="sudo -n"
	else
		echo "deps: need root or sudo to install:$missing" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	# A fresh machine may have no package lists at all.
	[ -n "$updated" ] || $SUDO apt-get update -qq
	updated=1
	# shellcheck disable=SC2086
	$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

# shellcheck disable=SC2086
install_missing $PKGS
# The runtime (ASan, UBSan, libFuzzer) is only recommended by clang, and its
# package carries clang's major version: known once clang is there.
case " $* " in
*" clang "*) install_missing "libclang-rt-$(clang -dumpversion | cut -d. -f1)-dev" ;;
esac
