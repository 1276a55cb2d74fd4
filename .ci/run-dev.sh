#!/bin/sh
# make run: a complete local dropship under var/ — TLS certificate, PostgreSQL
# cluster, migrations, a demo store — then dropshipd in the foreground, with
# the supplier simulator playing acme and bolt (callbacks, stock feeds).
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

# Demo secrets persist across runs so pasted commands stay valid.
for f in demo-secret supplier-secret; do
	[ -s "var/$f" ] || (umask 077; "$BUILD/dropshipctl" secret new > "var/$f")
done
[ -s var/admin-token ] || (umask 077; openssl rand -hex 24 > var/admin-token)
DROPSHIP_ADMIN_TOKEN=$(cat var/admin-token)
export DROPSHIP_ADMIN_TOKEN
SECRET=$(cat var/demo-secret)
SUPPLIER_SECRET=$(cat var/supplier-secret)
SIM_PORT=${DROPSHIP_SIM_PORT:-9443}
# How often the simulated suppliers push their stock levels (a stock feed).
FEED_EVERY=${DROPSHIP_SIM_FEED_EVERY:-20s}
# --update: a second run finds them there (`add` alone refuses an existing code).
"$BUILD/dropshipctl" -c "$CONF" store add demo --update --secret "$SECRET" >/dev/null
for s in acme bolt; do
	"$BUILD/dropshipctl" -c "$CONF" supplier add "$s" --update --secret "$SUPPLIER_SECRET" \
		--endpoint "https://127.0.0.1:$SIM_PORT/suppliers/$s/fulfillments" >/dev/null
done
# From standard input: the demo stock is as of now, whenever the file was checked out
# (a file's own time more than a week old is refused).
"$BUILD/dropshipctl" -c "$CONF" catalog import - < config/demo-catalog.csv >/dev/null
# A Shopify demo store whose platform is dropship-platform-stub: the fixture
# order's three lines split across acme and bolt, each parcel a fulfillment
# on the stub (docs/storefronts.md, Trying it by hand).
STUB_PORT=${DROPSHIP_PLATFORM_STUB_PORT:-9444}
SHOP_SECRET=shopdemo-webhook-key
"$BUILD/dropshipctl" -c "$CONF" store add shopdemo --update --format shopify --secret "$SHOP_SECRET" \
	--platform-url "https://127.0.0.1:$STUB_PORT" --platform-token shpat_demo >/dev/null
"$BUILD/dropshipctl" -c "$CONF" catalog import - >/dev/null <<'CSV'
supplier,sku,supplier_sku,cost,shipping_cost,stock,lead_time_days,ships_to
acme,IPOD2008GREEN,AC-IPOD-G,120.00,4.00,500,2,*
acme,IPOD2008RED,AC-IPOD-R,120.00,4.00,500,2,*
bolt,IPOD2008BLACK,BO-IPOD-B,118.00,5.00,500,3,*
CSV
# The simulator and the demo suppliers live on loopback with the dev certificate.
DROPSHIP_DISPATCH_ALLOW_PRIVATE_ENDPOINTS=true
DROPSHIP_DISPATCH_TLS_CA_FILE=$ROOT/var/tls/server.crt
export DROPSHIP_DISPATCH_ALLOW_PRIVATE_ENDPOINTS DROPSHIP_DISPATCH_TLS_CA_FILE

LISTEN=${DROPSHIP_SERVER_LISTEN:-$(sed -n 's/^listen *= *\([^ ;]*\).*/\1/p' "$CONF" | head -n 1)}
PORT=${LISTEN##*:}
cat <<MSG

dropship is starting on https://127.0.0.1:$PORT (certificate: var/tls/server.crt)
  demo store:  demo (suppliers acme and bolt, served by the simulator on port $SIM_PORT;
               they push their stock levels every $FEED_EVERY: "feed sent" in the log)
  its secret:  $SECRET
  send an order (in another terminal, from $ROOT):
    tests/send-order.sh https://127.0.0.1:$PORT/v1/stores/demo/webhooks $SECRET
  database:    $(sh .ci/pg.sh env var/pg); psql dropship
  reports:     DROPSHIP_DATABASE_URL='$DROPSHIP_DATABASE_URL' $BUILD/dropshipctl report
  one order:   curl -sk -H 'Authorization: Bearer $DROPSHIP_ADMIN_TOKEN' https://127.0.0.1:$PORT/v1/admin/orders/ID
  Shopify demo store shopdemo, its platform the stub on port $STUB_PORT (docs/storefronts.md):
    b=tests/fixtures/shopify-order.json; curl --cacert var/tls/server.crt \\
      https://127.0.0.1:$PORT/v1/stores/shopdemo/webhooks -H 'X-Shopify-Topic: orders/create' \\
      -H "X-Shopify-Hmac-Sha256: \$(openssl dgst -sha256 -hmac $SHOP_SECRET -binary \$b | base64)" \\
      -H 'Content-Type: application/json' --data-binary @\$b
    then what Shopify was told: curl -sk https://127.0.0.1:$STUB_PORT/_stub/requests
Ctrl-C stops dropshipd, the simulator, the platform stub and PostgreSQL.

MSG

pid=""; sim=""; stub=""
stop() {
	trap - INT TERM EXIT
	for p in $pid $sim $stub; do kill -TERM "$p" 2>/dev/null || true; done
	for p in $pid $sim $stub; do wait "$p" 2>/dev/null || true; done
	sh .ci/pg.sh stop var/pg
}
trap stop INT TERM EXIT
"$BUILD/dropship-supplier-sim" --listen "127.0.0.1:$SIM_PORT" \
	--tls-cert var/tls/server.crt --tls-key var/tls/server.key \
	--supplier "acme=$SUPPLIER_SECRET" --supplier "bolt=$SUPPLIER_SECRET" \
	--callback-url "https://127.0.0.1:$PORT" --ca-file var/tls/server.crt \
	--catalog config/demo-catalog.csv --feed-every "$FEED_EVERY" &
sim=$!
"$BUILD/dropship-platform-stub" --listen "127.0.0.1:$STUB_PORT" \
	--tls-cert var/tls/server.crt --tls-key var/tls/server.key \
	--fixtures tests/fixtures --order tests/fixtures/shopify-order.json &
stub=$!
"$BUILD/dropshipd" -c "$CONF" &
pid=$!
wait "$pid" || true
