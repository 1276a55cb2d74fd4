#!/bin/sh
# make scale: does every path cost the same with a large order history as on
# an empty database? (docs/bench.md, Scale)
#   .ci/scale.sh [BUILD]
# Measures intake, supplier callbacks, dispatch, store notifications, the
# deadline sweep and a catalog re-import twice in one run: on a kept cluster
# holding a synthetic history (tests/scale/gen-orders.sql, loaded once) and
# on a fresh empty cluster; prints both with their ratio. Only the public
# interface is used: HTTP, dropshipctl, the simulator and SQL on the tables.
# Environment:
#   SCALE_PGDIR        the kept cluster (default var/scale-pg); created and
#                      loaded when missing, never removed once loaded
#   SCALE_ORDERS       orders of history to load into a new cluster (default
#                      1000000: about 25 minutes); a kept cluster's own count
#                      is in its marker file scale-orders
#   SCALE_PG_PORT      port of a new kept cluster (default 5488; a kept
#                      cluster's own port is read from its configuration)
#   SCALE_SECONDS      measured seconds of the intake run (default 20)
#   SCALE_CONNECTIONS  dropship-bench connections (default 64)
#   SCALE_CALLBACKS    requests taken through accepted, shipped, delivered (default 12000)
#   SCALE_CALLBACK_SECONDS  longest run of each callback type (default 30)
#   SCALE_MESSAGES     outbox messages delivered again for the dispatch and
#                      notification rows (default 5000)
#   SCALE_OVERDUE      requests made overdue for the deadline sweep (default 300)
#   SCALE_ROUNDS       rounds of the intake, dispatch and re-import rows, each
#                      keeping its best (default 2)
#   SCALE_PORT, SCALE_SIM_PORT, SCALE_EMPTY_PG_PORT  ports (defaults 18453, 19453, 55435)
#   SCALE_OUT          folder for the JSON result (default BUILD/scale)
set -eu
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PGDIR=${SCALE_PGDIR:-var/scale-pg}
case $PGDIR in /*) ;; *) PGDIR=$ROOT/$PGDIR ;; esac
SECS=${SCALE_SECONDS:-20}
CONNS=${SCALE_CONNECTIONS:-64}
NCALLBACKS=${SCALE_CALLBACKS:-12000}
CB_SECS=${SCALE_CALLBACK_SECONDS:-30}
NMESSAGES=${SCALE_MESSAGES:-5000}
NOVERDUE=${SCALE_OVERDUE:-300}
ROUNDS=${SCALE_ROUNDS:-2}
PORT=${SCALE_PORT:-18453}
SIM_PORT=${SCALE_SIM_PORT:-19453}
EMPTY_PORT=${SCALE_EMPTY_PG_PORT:-55435}
OUTDIR=${SCALE_OUT:-$ROOT/$BUILD/scale}
# Our catalog: 100,000 offers, 33,334 SKUs at sup1..sup3 (tests/gen-catalog.sh),
# with stock no run can exhaust. The history's SKUs are named SKU-1..SKU-10000
# and its suppliers sup01..sup20: nothing of ours collides with them.
CATALOG_ROWS=100000
SKUS=33334
STOCK=100000000
OURS="'sup1', 'sup2', 'sup3'"

. .ci/bench-lib.sh
need_built scale dropshipd dropshipctl dropship-supplier-sim dropship-bench

TMP=$(mktemp -d /tmp/dropship-scale.XXXXXX)
# The clusters run as `postgres` when we are root: it must reach into TMP.
chmod 711 "$TMP"
PIDS=""
DPID=""
BIG_STOP=0      # the kept cluster was stopped when we came: stop it again
LOADING=0       # a load into a cluster this run created is under way
cleanup() {
	trap - EXIT INT TERM
	for p in $PIDS; do kill -TERM "$p" 2>/dev/null || true; done
	for p in $PIDS; do wait "$p" 2>/dev/null || true; done
	sh .ci/pg.sh stop "$TMP/pg" 2>/dev/null || true
	rm -rf "$(cd "$TMP/pg" 2>/dev/null && pwd -P)" "$TMP"
	if [ "$LOADING" = 1 ]; then
		# Half a history is worth nothing; the cluster is this run's own.
		echo "scale: load interrupted; removing the new cluster $PGDIR" >&2
		sh .ci/pg.sh stop "$PGDIR" 2>/dev/null || true
		rm -rf "$(cd "$PGDIR" && pwd -P)" "$PGDIR"
	elif [ "$BIG_STOP" = 1 ]; then
		sh .ci/pg.sh stop "$PGDIR" 2>/dev/null || true
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '%s scale: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { echo "scale: $*" >&2; exit 1; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

check_ports SCALE_PORT/SCALE_SIM_PORT "$PORT" "$SIM_PORT"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
CPU_START=$(cpu_stat)
PGBIN=$(sh .ci/pg.sh bin "$TMP")

# Points psql, dropshipctl and dropshipd at the cluster in $1 (port $2).
use_cluster() {
	PGHOST=$(cd "$1" && pwd -P)
	PGPORT=$2
	PGUSER=postgres
	DROPSHIP_DATABASE_URL="postgresql:///dropship?host=$PGHOST&port=$PGPORT&user=postgres"
	export PGHOST PGPORT PGUSER DROPSHIP_DATABASE_URL
}
psql_q() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d dropship -tAc "$1"; }
pending() { psql_q "SELECT count(*) FROM outbox WHERE state = 'pending'"; }
wait_drained() {
	wait_for '[ "$(pending)" -eq 0 ]' 300 || die "outbox still has $(pending) messages pending"
}

sh .ci/devcert.sh "$TMP/tls"
STORE_SECRET=$("$BUILD/dropshipctl" secret new)
SUP_SECRET=$("$BUILD/dropshipctl" secret new)
CONF=$TMP/dropshipd.conf
write_conf
CTL="$BUILD/dropshipctl -c $CONF"
sh tests/gen-catalog.sh "$CATALOG_ROWS" 3 "$STOCK" >"$TMP/catalog.csv"
# Every offer's stock differs from the first file: the re-import updates each row.
sh tests/gen-catalog.sh "$CATALOG_ROWS" 3 $((STOCK * 2)) >"$TMP/catalog-again.csv"

# ---- the kept cluster: load once, then reuse ----
pg_port_of() {
	sed -n 's/^port *= *\([0-9]*\).*/\1/p' "$1/postgresql.conf" "$1/postgresql.auto.conf" 2>/dev/null | tail -n 1
}
history_orders() {
	psql_q "SELECT count(*) FROM orders o JOIN stores s ON s.id = o.store_id
	         WHERE s.code IN ('store1', 'store2', 'store3')"
}
LOAD_S=""
if [ -f "$PGDIR/PG_VERSION" ]; then
	BIG_PORT=$(pg_port_of "$PGDIR")
	BIG_PORT=${BIG_PORT:-${SCALE_PG_PORT:-5488}}
	use_cluster "$PGDIR" "$BIG_PORT"
	"$PGBIN/pg_isready" -q || BIG_STOP=1
	sh .ci/pg.sh start "$PGDIR"
	others=$(psql_q "SELECT count(*) FROM pg_stat_activity
	                  WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")
	[ "$others" -eq 0 ] ||
		die "$PGDIR has $others other sessions (a load still running?); it is left alone"
	if [ -f "$PGHOST/scale-orders" ]; then
		read -r HISTORY _ <"$PGHOST/scale-orders"
	else
		# Loaded by hand (psql -f tests/scale/gen-orders.sql): its last
		# statement fills outbox_attempts, so a history without them is partial.
		HISTORY=$(history_orders)
		[ "$HISTORY" -gt 0 ] && [ "$(psql_q "SELECT count(*) > 0 FROM outbox_attempts")" = t ] ||
			die "$PGDIR has no complete history (no marker scale-orders); remove it or set SCALE_PGDIR"
		echo "$HISTORY adopted $(date +%Y-%m-%d)" >"$PGHOST/scale-orders"
		psql_q "VACUUM ANALYZE"
	fi
	[ -z "${SCALE_ORDERS:-}" ] || [ "$SCALE_ORDERS" = "$HISTORY" ] ||
		die "$PGDIR holds $HISTORY orders, not SCALE_ORDERS=$SCALE_ORDERS; use another SCALE_PGDIR"
	say "reusing $PGDIR: $HISTORY orders of history"
else
	HISTORY=${SCALE_ORDERS:-1000000}
	BIG_PORT=${SCALE_PG_PORT:-5488}
	mkdir -p "$(dirname "$PGDIR")"
	LOADING=1
	BIG_STOP=1
	# Loaded without fsync; switched to durable settings below, before measuring.
	DROPSHIP_PG_PORT=$BIG_PORT sh .ci/pg.sh init "$PGDIR" --fast
	sh .ci/pg.sh start "$PGDIR"
	use_cluster "$PGDIR" "$BIG_PORT"
	"$PGBIN/createdb" dropship
	$CTL migrate >/dev/null
	say "loading $HISTORY orders of history into $PGDIR (about 25 minutes for 1,000,000)"
	t0=$(date +%s)
	"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -v orders="$HISTORY" -d dropship \
		-f tests/scale/gen-orders.sql >/dev/null
	# gen-orders.sql ends with VACUUM ANALYZE.
	LOAD_S=$(($(date +%s) - t0))
	echo "$HISTORY loaded $(date +%Y-%m-%d) in $LOAD_S s" >"$PGHOST/scale-orders"
	LOADING=0
	say "loaded $HISTORY orders in $LOAD_S s"
fi

# Measured like production, on both clusters: fsync and synchronous commit on.
durable() {
	if [ "$(psql_q "SELECT count(*) FROM pg_settings WHERE name IN
	          ('fsync', 'synchronous_commit', 'full_page_writes') AND setting <> 'on'")" -gt 0 ]; then
		"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d dropship -c "ALTER SYSTEM SET fsync = on" \
			-c "ALTER SYSTEM SET synchronous_commit = on" -c "ALTER SYSTEM SET full_page_writes = on"
		sync
		sh .ci/pg.sh stop "$1"
		sh .ci/pg.sh start "$1"
	fi
}
durable "$PGDIR"
$CTL migrate >/dev/null

# What each run adds: every order of store `scale` and all that hangs from
# it. request_events refuses DELETE (append-only trigger): as the loader
# does, triggers and foreign keys are off for this session only, so a
# table that a later migration hangs from these needs its line here.
forget_ours() {
	psql_q "SET session_replication_role = replica;
	  DELETE FROM outbox_attempts a USING outbox x WHERE x.id = a.outbox_id AND x.store_id = $1;
	  DELETE FROM outbox WHERE store_id = $1;
	  DELETE FROM request_events e USING fulfillment_requests r
	   WHERE r.id = e.request_id AND r.store_id = $1;
	  DELETE FROM routing_decisions WHERE store_id = $1;
	  DELETE FROM order_lines WHERE store_id = $1;
	  DELETE FROM fulfillment_requests WHERE store_id = $1;
	  DELETE FROM orders WHERE store_id = $1"
}
ID=$(psql_q "SELECT id FROM stores WHERE code = 'scale'")
[ -z "$ID" ] || forget_ours "$ID"
# The history's suppliers take no part: their open requests would reach their
# deadlines and be re-routed to endpoints that do not exist. They stay open
# (and in the deadline sweep's index) as they would in a real database.
psql_q "UPDATE suppliers SET active = false, accept_within = interval '100 years',
          ship_within = interval '100 years', updated_at = now()
         WHERE code NOT IN ($OURS) AND (active OR accept_within < interval '100 years'
                                        OR ship_within < interval '100 years')"

# The store, the suppliers and the catalog of the measurements, in database $1.
setup_ours() {
	$CTL migrate >/dev/null
	$CTL store add scale --update --secret "$STORE_SECRET" \
		--callback-url "https://127.0.0.1:$SIM_PORT/suppliers/scale-store/fulfillments" >/dev/null
	add_suppliers
	# Imported twice, then vacuumed: the offers' pages then have the room
	# for updates in place that a catalog updated before has, on either
	# database. A freshly loaded table has none, and its re-import (the
	# last row) would write every index again and look slower than it is.
	$CTL catalog import "$TMP/catalog-again.csv" >/dev/null
	$CTL catalog import "$TMP/catalog.csv" >/dev/null
	psql_q "SELECT id FROM stores WHERE code = 'scale'" >"$TMP/$1.store"
	# Only the catalog: order tables analyzed while empty would make
	# PostgreSQL plan sequential scans for them, which get slower as they
	# fill (never analyzed, it assumes a small table instead). The history's
	# order tables keep the statistics of their rows.
	psql_q "VACUUM ANALYZE offers, suppliers, stores"
	psql_q "CHECKPOINT"
}

# ---- the simulator: every supplier and the store's callback URL answer 200 ----
# (--status: nothing is checked or remembered, no callbacks are sent.)
start_sim --supplier "scale-store=$SUP_SECRET" --status 200

stop_dropshipd() {
	kill -TERM "$DPID"
	wait "$DPID" || true
}

# Points psql, dropshipctl and dropshipd at database $1 (history or empty).
on() {
	if [ "$1" = history ]; then use_cluster "$PGDIR" "$BIG_PORT"; else use_cluster "$TMP/pg" "$EMPTY_PORT"; fi
	STORE_ID=$(cat "$TMP/$1.store")
}

# Keeps the highest of a row's figures over the rounds: $1 database, $2 row,
# $3 figure, $4 the dropship-bench output it came from, if any. Every
# figure is kept in $1.$2.all.
best() {
	printf '%s ' "$3" >>"$TMP/$1.$2.all"
	if [ ! -f "$TMP/$1.$2" ] || [ "$(calc "$3 > $(cat "$TMP/$1.$2")" 0)" = 1 ]; then
		echo "$3" >"$TMP/$1.$2"
		[ -z "${4:-}" ] || cp "$4" "$TMP/$1.$2.json"
	fi
}

# Waits for the outbox to drain, then prints "COUNT SECONDS": messages of
# ours matching $1 delivered since epoch $2, and the database's time from
# $2 to the last of those deliveries.
delivered_since() {
	wait_drained
	psql_q "SELECT count(*) || ' ' || coalesce(extract(epoch FROM max(delivered_at)) - $2, 0)
	          FROM outbox WHERE store_id = $STORE_ID AND state = 'delivered'
	           AND delivered_at >= to_timestamp($2) AND $1"
}

# Makes up to $2 delivered messages of ours that match $1 due again (and
# their requests pending, as intake leaves them), in one transaction that
# wakes the dispatchers; prints what delivered_since says of them.
redeliver() {
	t0=$(psql_q "BEGIN;
	  CREATE TEMP TABLE q ON COMMIT DROP AS
	   SELECT id, request_id FROM outbox
	    WHERE store_id = $STORE_ID AND state = 'delivered' AND $1 ORDER BY id DESC LIMIT $2;
	  UPDATE fulfillment_requests r SET status = 'pending' FROM q
	   WHERE r.id = q.request_id AND r.status = 'sent';
	  UPDATE outbox o SET state = 'pending', next_attempt_at = now(), delivered_at = NULL,
	         lease_token = NULL, lease_expires_at = NULL FROM q WHERE o.id = q.id;
	  NOTIFY dropship_outbox;
	  SELECT extract(epoch FROM clock_timestamp());
	  COMMIT;")
	delivered_since "$1" "$t0"
}

# "COUNT SECONDS" to figures: per second, and the count.
per_s() { echo "$1" | { read -r n s; calc "$n / ($s + 0.000001)"; }; }
count_of() { echo "$1" | cut -d' ' -f1; }

BENCH="$BUILD/dropship-bench --url https://127.0.0.1:$PORT --cafile $TMP/tls/server.crt
	--connections $CONNS --json"
INTAKE="--store scale --secret $STORE_SECRET --skus $SKUS --lines 3"

# An unmeasured intake run, its outbox delivered, then statistics of
# order tables with rows in them, on both databases alike.
prime() {
	on "$1"
	start_dropshipd "$TMP/dropshipd-$1.log"
	say "$1: intake, 5s unmeasured, then ANALYZE"
	$BENCH $INTAKE --warmup 0 --duration 5 >/dev/null
	wait_drained
	stop_dropshipd
	psql_q "ANALYZE"
}

# The rows that can be measured again: intake, dispatch, catalog re-import.
# Round $2 on database $1.
round() {
	on "$1"
	start_dropshipd "$TMP/dropshipd-$1.log"
	psql_q "CHECKPOINT"
	say "$1: intake, closed loop, $CONNS connections, ${SECS}s (round $2 of $ROUNDS)"
	$BENCH $INTAKE --warmup 5 --duration "$SECS" >"$TMP/$1.intake.$2.json"
	say "$1: $(calc "$(jnum orders_per_s "$TMP/$1.intake.$2.json")") orders/s"
	best "$1" intake "$(calc "$(jnum orders_per_s "$TMP/$1.intake.$2.json")")" "$TMP/$1.intake.$2.json"
	wait_drained

	say "$1: dispatch of $NMESSAGES fulfillment requests"
	redeliver "kind = 'fulfillment.requested'" "$NMESSAGES" >"$TMP/$1.dispatch.raw"
	best "$1" dispatch "$(per_s "$(cat "$TMP/$1.dispatch.raw")")"
	stop_dropshipd

	# Every offer gets new stock: odd rounds one file, even rounds the other.
	say "$1: catalog re-import of $CATALOG_ROWS rows"
	psql_q "CHECKPOINT"
	f=$TMP/catalog-again.csv
	[ $(($2 % 2)) = 1 ] || f=$TMP/catalog.csv
	t0=$(now_ms)
	$CTL catalog import "$f" >/dev/null
	best "$1" import "$(calc "$CATALOG_ROWS * 1000 / ($(now_ms) - $t0)")"
}

# The rows measured once: callbacks, store notifications, the deadline sweep.
paths() {
	on "$1"
	start_dropshipd "$TMP/dropshipd-$1.log"
	# Whole orders, oldest first, until about NCALLBACKS requests: the
	# delivered step then completes them and the store hears order.delivered.
	# Each step calls back on those of them the step before moved on (all,
	# unless it ran out of time).
	last=$(psql_q "WITH o AS (SELECT order_id, count(*) AS n FROM fulfillment_requests
	                            WHERE store_id = $STORE_ID GROUP BY order_id),
	                     c AS (SELECT order_id, sum(n) OVER (ORDER BY order_id) AS upto FROM o)
	                SELECT max(order_id) FROM c WHERE upto <= $NCALLBACKS")
	from=sent
	for t in accepted shipped delivered; do
		psql_q "SELECT r.id || ' ' || s.code FROM fulfillment_requests r
		          JOIN suppliers s ON s.id = r.supplier_id
		         WHERE r.store_id = $STORE_ID AND r.order_id <= $last AND r.status = '$from'
		         ORDER BY r.order_id, r.id" >"$TMP/$1.$t.requests"
		say "$1: $(wc -l <"$TMP/$1.$t.requests") fulfillment.$t callbacks (at most ${CB_SECS}s)"
		# A slow server must not turn into client timeouts: answers are awaited.
		$BENCH --callbacks "$TMP/$1.$t.requests" --type "$t" --secret "$SUP_SECRET" \
			--warmup 0 --duration "$CB_SECS" --timeout 300 >"$TMP/$1.$t.json"
		calc "$(jnum callbacks_per_s "$TMP/$1.$t.json")" >"$TMP/$1.$t"
		wait_drained
		from=$t
	done

	# The notifications the callbacks caused, copied (new idempotency keys,
	# the same bodies) up to NMESSAGES, so that the row does not depend on
	# how many callbacks got through.
	say "$1: delivery of $NMESSAGES store notifications"
	kinds="kind IN ('order.shipped', 'order.delivered')"
	t0=$(psql_q "BEGIN;
	  WITH x AS (SELECT id, kind, store_id, idempotency_key, payload FROM outbox
	              WHERE store_id = $STORE_ID AND $kinds AND state = 'delivered'),
	       n AS (SELECT greatest(count(*), 1) AS n FROM x)
	  INSERT INTO outbox (kind, store_id, idempotency_key, payload)
	  SELECT x.kind, x.store_id, x.idempotency_key || '.copy.' || g, x.payload
	    FROM x, n, generate_series(1, ceil($NMESSAGES::numeric / n.n)::int) g
	   ORDER BY g, x.id LIMIT $NMESSAGES;
	  NOTIFY dropship_outbox;
	  SELECT extract(epoch FROM clock_timestamp());
	  COMMIT;")
	delivered_since "$kinds" "$t0" >"$TMP/$1.notify.raw"
	per_s "$(cat "$TMP/$1.notify.raw")" >"$TMP/$1.notify"

	# An hour past their deadline (our suppliers' accept_within is the
	# default 24 h), all with the same creation time, which finds them again.
	say "$1: deadline sweep over $NOVERDUE overdue requests"
	set -- "$1" "$(psql_q "BEGIN;
	  CREATE TEMP TABLE q ON COMMIT DROP AS
	   SELECT id FROM fulfillment_requests WHERE store_id = $STORE_ID AND status = 'sent'
	    ORDER BY id LIMIT $NOVERDUE;
	  UPDATE fulfillment_requests r SET created_at = date_trunc('second', now()) - interval '25 hours'
	    FROM q WHERE r.id = q.id;
	  SELECT count(*) || ' ' || extract(epoch FROM clock_timestamp()) || ' '
	         || extract(epoch FROM date_trunc('second', now()) - interval '25 hours') FROM q;
	  COMMIT;")"
	overdue=$(count_of "$2")
	t0=$(echo "$2" | cut -d' ' -f2)
	due_at=$(echo "$2" | cut -d' ' -f3)
	still_due() { psql_q "SELECT count(*) FROM fulfillment_requests
	                       WHERE status IN ('pending', 'sent', 'accepted') AND created_at = to_timestamp($due_at)"; }
	wait_for '[ "$(still_due)" -eq 0 ]' 600 || die "$(still_due) of $overdue overdue requests still open"
	psql_q "SELECT $overdue || ' ' || (extract(epoch FROM max(e.received_at)) - $t0)
	          FROM request_events e JOIN fulfillment_requests r ON r.id = e.request_id
	         WHERE r.store_id = $STORE_ID AND e.webhook_id LIKE 'deadline:%'" >"$TMP/$1.sweep.raw"
	per_s "$(cat "$TMP/$1.sweep.raw")" >"$TMP/$1.sweep"
	wait_drained
	stop_dropshipd
}

# ---- both databases ready, then the rows, history and empty in turn ----
setup_ours history
say "history: $(psql_q "SELECT pg_size_pretty(pg_database_size('dropship'))"), $(psql_q "SELECT count(*) FROM fulfillment_requests
      WHERE status IN ('pending', 'sent', 'accepted')") open requests"
say "empty: a fresh cluster"
DROPSHIP_PG_PORT=$EMPTY_PORT sh .ci/pg.sh init "$TMP/pg"
sh .ci/pg.sh start "$TMP/pg"
use_cluster "$TMP/pg" "$EMPTY_PORT"
"$PGBIN/createdb" dropship
durable "$TMP/pg"
setup_ours empty

prime history
prime empty
# Rounds alternate between the two, and each row keeps its best: whatever
# else runs on the machine only ever slows a round down.
r=1
while [ "$r" -le "$ROUNDS" ]; do
	round history "$r"
	round empty "$r"
	r=$((r + 1))
done
paths history
paths empty

on history
say "history: removing what this run added"
forget_ours "$STORE_ID"
psql_q "VACUUM ANALYZE"
# The what-if replay reads every routing decision of the history once.
say "history: simulate --policy balanced over every order"
t0=$(now_ms)
$CTL simulate --policy balanced --json >"$TMP/simulate.json" 2>"$TMP/simulate.err" ||
	die "simulate failed: $(tail -n 1 "$TMP/simulate.err")"
SIM_S=$(calc "($(now_ms) - $t0) / 1000" 1)
[ "$BIG_STOP" = 0 ] || sh .ci/pg.sh stop "$PGDIR"

# ---- report ----
STEAL=$(steal_since "$CPU_START")
ratio() { calc "$(cat "$TMP/history.$1") / ($(cat "$TMP/empty.$1") + 0.000001)" 2; }
mkdir -p "$OUTDIR"
OUT="$OUTDIR/scale-$(date +%Y%m%d-%H%M%S).json"
ROWS="intake accepted shipped delivered dispatch notify sweep import"
{
	printf '{"history_orders": %s, "pgdir": "%s", "load_s": %s,\n' "$HISTORY" "$PGDIR" "${LOAD_S:-null}"
	printf ' "nproc": %s, "loadavg_before": "%s", "loadavg_after": "%s", "cpu_steal_pct": %s,\n' \
		"$(nproc)" "$LOAD_START" "$(cut -d' ' -f1-3 /proc/loadavg)" "$STEAL"
	printf ' "intake_seconds": %s, "connections": %s, "callbacks": %s, "messages": %s, "overdue": %s, "rounds_run": %s,\n' \
		"$SECS" "$CONNS" "$(wc -l <"$TMP/history.accepted.requests")" "$NMESSAGES" "$NOVERDUE" "$ROUNDS"
	printf ' "per_s": {'
	sep=""
	for r in $ROWS; do
		printf '%s"%s": {"history": %s, "empty": %s, "ratio": %s}' "$sep" "$r" \
			"$(cat "$TMP/history.$r")" "$(cat "$TMP/empty.$r")" "$(ratio "$r")"
		sep=", "
	done
	printf '},\n "rounds": {'
	sep=""
	for r in intake dispatch import; do
		printf '%s"%s": {"history": [%s], "empty": [%s]}' "$sep" "$r" \
			"$(sed 's/ $//; s/ /, /g' "$TMP/history.$r.all")" "$(sed 's/ $//; s/ /, /g' "$TMP/empty.$r.all")"
		sep=", "
	done
	printf '},\n "runs": {'
	sep=""
	for l in history empty; do
		for r in intake accepted shipped delivered; do
			printf '%s"%s_%s": %s' "$sep" "$l" "$r" "$(cat "$TMP/$l.$r.json")"
			sep=", "
		done
	done
	printf '},\n "simulate_s": %s}\n' "$SIM_S"
} >"$OUT"

row() { printf '  %-44s %12s %12s %10s\n' "$1" "$(cat "$TMP/history.$2")" "$(cat "$TMP/empty.$2")" "$(ratio "$2")"; }
echo
echo "dropship scale ($(nproc) cores, load before $LOAD_START, CPU steal $STEAL%, fsync=on, synchronous_commit=on)"
if [ -n "$LOAD_S" ]; then
	echo "  history: $HISTORY orders in $PGDIR, loaded in $LOAD_S s"
else
	echo "  history: $HISTORY orders in $PGDIR (loaded earlier: $(cut -d' ' -f2- "$(cd "$PGDIR" && pwd -P)/scale-orders"))"
fi
printf '  %-44s %12s %12s %10s\n' "per second" "history" "empty" "ratio"
row "intake (orders, $CONNS connections, best of $ROUNDS)" intake
row "callbacks fulfillment.accepted" accepted
row "callbacks fulfillment.shipped" shipped
row "callbacks fulfillment.delivered" delivered
row "dispatch ($(count_of "$(cat "$TMP/history.dispatch.raw")") requests, best of $ROUNDS)" dispatch
row "store notifications ($(count_of "$(cat "$TMP/history.notify.raw")"))" notify
row "deadline sweep ($NOVERDUE overdue requests)" sweep
row "catalog re-import (rows, $CATALOG_ROWS, best of $ROUNDS)" import
# Answers other than 2xx and errors count in no rate; they are named.
not_ok=""
for l in history empty; do
	for r in intake accepted shipped delivered; do
		f=$TMP/$l.$r.json
		x=$(sed -n 's/.*"status":{\([^}]*\)}.*/\1/p' "$f" | tr ',' '\n' |
			sed -n 's/^"\([13-5][0-9][0-9]\)":\([0-9]*\)$/ \2 answered \1/p' | tr -d '\n')
		[ "$(jnum errors_total "$f")" = 0 ] || x="$x, $(jnum errors_total "$f") errors"
		[ -z "$x" ] || not_ok="$not_ok; $l $r:$x"
	done
done
[ -z "$not_ok" ] || echo "  not 2xx: ${not_ok#; }"
echo "  ratio: history / empty; below 1 is slower with the history"
echo "  simulate --policy balanced over the $HISTORY orders of history: $SIM_S s"
echo "  figures as JSON: $OUT"
