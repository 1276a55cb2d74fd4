#!/bin/sh
# Installs the Debian packages dropship needs, only those missing.
# Silent when everything is present. Uses apt-get as root, sudo otherwise.
set -eu
PKGS="build-essential pkg-config libevent-dev libssl-dev libpq-dev libjansson-dev libinih-dev
libcunit1-dev postgresql postgresql-contrib openssl curl ca-certificates util-linux"
missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0
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
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
