#!/bin/sh
# make run: a complete local dropship under var/ — TLS certificate, PostgreSQL
# cluster, migrations, a demo store — then dropshipd in the foreground.
# Ctrl-C stops dropshipd and the cluster. Running it again reuses var/.
set -eu
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
mkdir -p var

sh .ci/devcert.sh var/tls
sh .ci/pg.sh init var/pg
sh .ci/pg.sh start var/pg
PGBIN=$(sh .ci/pg.sh bin var/pg)
PGHOST=$(cd var/pg && pwd -P)
"$PGBIN/psql" -h "$PGHOST" -U postgres -d postgres -tAc \
	"SELECT 1 FROM pg_database WHERE datname = 'dropship'" | grep -q 1 ||
	"$PGBIN/createdb" -h "$PGHOST" -U postgres dropship

DROPSHIP_DATABASE_URL=$(sh .ci/pg.sh url var/pg dropship)
export DROPSHIP_DATABASE_URL
CONF=config/dropshipd.conf
"$BUILD/dropshipctl" -c "$CONF" migrate

# The demo store keeps its secret across runs so pasted commands stay valid.
if [ ! -s var/demo-secret ]; then
	(umask 077; "$BUILD/dropshipctl" secret new > var/demo-secret)
fi
SECRET=$(cat var/demo-secret)
"$BUILD/dropshipctl" -c "$CONF" store add demo --secret "$SECRET" >/dev/null

LISTEN=${DROPSHIP_SERVER_LISTEN:-$(sed -n 's/^listen *= *\([^ ;]*\).*/\1/p' "$CONF" | head -n 1)}
PORT=${LISTEN##*:}
cat <<MSG

dropship is starting on https://127.0.0.1:$PORT (certificate: var/tls/server.crt)
  demo store:  demo
  its secret:  $SECRET
  send an order (in another terminal, from $ROOT):
    tests/send-order.sh https://127.0.0.1:$PORT/v1/stores/demo/webhooks $SECRET
  database:    $(sh .ci/pg.sh env var/pg); psql dropship
Ctrl-C stops dropshipd and PostgreSQL.

MSG

pid=""
stop() {
	trap - INT TERM EXIT
	[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
	sh .ci/pg.sh stop var/pg
}
trap stop INT TERM EXIT
"$BUILD/dropshipd" -c "$CONF" &
pid=$!
wait "$pid" || true
