#!/bin/sh
# Signs a native order webhook (Standard Webhooks) and sends it with curl.
#   send-order.sh URL SECRET [FILE.json]
# URL     e.g. https://127.0.0.1:8443/v1/stores/demo/webhooks
# SECRET  the store's whsec_... secret
# FILE    the body; default: tests/fixtures/native-order.json with a fresh order id
# CA: DROPSHIP_CA (default var/tls/server.crt, the make run certificate).
set -eu
url=${1:-}; secret=${2:-}; file=${3:-}
if [ -z "$url" ] || [ -z "$secret" ]; then sed -n '2,7p' "$0" >&2; exit 2; fi
root=$(cd "$(dirname "$0")/.." && pwd)
ca=${DROPSHIP_CA:-$root/var/tls/server.crt}
tmp=$(mktemp); trap 'rm -f "$tmp"' EXIT
if [ -z "$file" ]; then
	id="demo-$(date +%s)-$$"
	sed "s/\"id\": \"1001\"/\"id\": \"$id\"/" "$root/tests/fixtures/native-order.json" >"$tmp"
else
	cat "$file" >"$tmp"
fi
case $secret in whsec_*) ;; *) echo "send-order.sh: SECRET must start with whsec_" >&2; exit 2;; esac
hexkey=$(printf '%s' "${secret#whsec_}" | base64 -d | od -An -v -tx1 | tr -d ' \n')
msg_id="msg_$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
ts=$(date +%s)
sig=$( { printf '%s.%s.' "$msg_id" "$ts"; cat "$tmp"; } |
	openssl dgst -sha256 -mac HMAC -macopt "hexkey:$hexkey" -binary | base64 | tr -d '\n')
curl -sS --cacert "$ca" -X POST "$url" \
	-H 'Content-Type: application/json' \
	-H "webhook-id: $msg_id" -H "webhook-timestamp: $ts" -H "webhook-signature: v1,$sig" \
	--data-binary "@$tmp" -w '\nHTTP %{http_code}\n'
