#!/bin/sh
# Creates a self-signed development certificate for localhost in DIR
# (server.crt, server.key) unless a valid one is already there.
set -eu
dir=${1:?usage: devcert.sh DIR}
mkdir -p "$dir"
if [ -f "$dir/server.crt" ] && [ -f "$dir/server.key" ] &&
	openssl x509 -checkend 86400 -noout -in "$dir/server.crt" >/dev/null 2>&1; then
	exit 0
fi
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 \
	-subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
	-keyout "$dir/server.key" -out "$dir/server.crt" >/dev/null 2>&1
chmod 644 "$dir/server.crt"
