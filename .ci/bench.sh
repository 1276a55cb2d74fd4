#!/bin/sh
# make bench: dropshipd's order throughput next to what PostgreSQL itself can
# do for the same work, one order per transaction, and for the least work
# any order router must do (docs/bench.md).
#   .ci/bench.sh [BUILD]
# Everything runs in a temporary folder with its own PostgreSQL cluster
# (fsync and synchronous_commit on, as in production), supplier simulator and
# dropshipd; all of it is stopped and removed on exit. Environment:
#   BENCH_SECONDS       seconds per measurement (default 20)
#   BENCH_SOAK_SECONDS  extra max-load run between the two RSS readings (default 30)
#   BENCH_CONNECTIONS   dropship-bench connections (default 64)
#   BENCH_IDLE          idle TLS connections for the memory reading (default 10000)
#   BENCH_THREADS       dropship-bench threads (default 1)
#   BENCH_PERF=1        record a perf profile of dropshipd during the max-load run
#   BENCH_STATS=1       pg_stat_statements: PostgreSQL's time per order, by statement,
#                       during the max-load run
#   BENCH_PG_PORT, BENCH_PORT, BENCH_SIM_PORT  ports (defaults 55433, 18443, 19443)
#   BENCH_OUT           folder for the JSON result (default BUILD/bench)
set -eu
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
SECS=${BENCH_SECONDS:-20}
SOAK=${BENCH_SOAK_SECONDS:-30}
CONNS=${BENCH_CONNECTIONS:-64}
IDLE=${BENCH_IDLE:-10000}
THREADS=${BENCH_THREADS:-1}
PORT=${BENCH_PORT:-18443}
SIM_PORT=${BENCH_SIM_PORT:-19443}
OUTDIR=${BENCH_OUT:-$ROOT/$BUILD/bench}
SKUS=100000
DROPSHIP_PG_PORT=${BENCH_PG_PORT:-55433}
export DROPSHIP_PG_PORT

. .ci/bench-lib.sh
need_built bench dropshipd dropshipctl dropship-supplier-sim dropship-bench
temp_run bench

say() { printf '%s bench: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
outbox_pending() { psql_q "SELECT count(*) FROM outbox WHERE state = 'pending'"; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# Idle connections and the load generator need a descriptor each.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((IDLE + 200)) ]; then
	say "open files limit $(ulimit -n) is below $IDLE idle connections; the memory reading may fail"
fi

check_ports BENCH_PORT/BENCH_SIM_PORT "$PORT" "$SIM_PORT"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
CPU_START=$(cpu_stat)

# ---- setup ----
say "setting up in $TMP (PostgreSQL port $DROPSHIP_PG_PORT)"
sh .ci/devcert.sh "$TMP/tls"
sh .ci/pg.sh init "$TMP/pg"
PGREAL=$(cd "$TMP/pg" && pwd -P)
sh .ci/pg.sh start "$TMP/pg"
PGBIN=$(sh .ci/pg.sh bin "$TMP/pg")
PGHOST=$PGREAL
export PGHOST PGPORT="$DROPSHIP_PG_PORT" PGUSER=postgres
"$PGBIN/createdb" dropship
psql_q() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d dropship -tAc "$1"; }
if [ "${BENCH_STATS:-0}" = 1 ]; then
	# Loaded at server start only (postgresql-contrib ships it).
	psql_q "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'"
	sh .ci/pg.sh stop "$TMP/pg"
	sh .ci/pg.sh start "$TMP/pg"
	psql_q "CREATE EXTENSION pg_stat_statements"
fi
FSYNC=$(psql_q "SHOW fsync")
SYNC_COMMIT=$(psql_q "SHOW synchronous_commit")
if [ "$FSYNC" != on ] || [ "$SYNC_COMMIT" != on ]; then
	echo "bench: the cluster must be durable (fsync=$FSYNC synchronous_commit=$SYNC_COMMIT)" >&2
	exit 1
fi

DROPSHIP_DATABASE_URL=$(sh .ci/pg.sh url "$TMP/pg" dropship)
export DROPSHIP_DATABASE_URL
CONF=$TMP/dropshipd.conf
# Beyond write_conf's: client timeouts long enough that 10000 idle
# connections stay open while their memory is read.
write_conf "read_timeout_ms = 600000
request_timeout_ms = 600000
max_connections = $((IDLE + 2000))"
CTL="$BUILD/dropshipctl -c $CONF"
$CTL migrate >/dev/null
STORE_SECRET=$($CTL secret new)
SUP_SECRET=$($CTL secret new)
$CTL store add bench --secret "$STORE_SECRET" >/dev/null
add_suppliers
say "importing a catalog of $SKUS SKUs x 3 suppliers"
# Stock far above what any run can take, so no line is ever out of stock.
sh tests/gen-catalog.sh $((SKUS * 3)) 3 100000000 >"$TMP/catalog.csv"
$CTL catalog import "$TMP/catalog.csv" >/dev/null
# Only the tables with rows: order tables analyzed while empty get plans with
# sequential scans that slow down as the tables fill (never analyzed,
# PostgreSQL assumes a small table rather than an empty one).
ANALYZE="VACUUM ANALYZE offers, suppliers, stores"
psql_q "$ANALYZE"

# ---- (1) the ceiling: intake's SQL for one order per transaction ----
# The statements are intake's (internal/intake/intake.c) with the same
# parameters. Where intake's C code decides (which offer each line takes,
# the JSON of lines and decisions), the candidates query does it in SQL
# from the same rows, so the rows read and written per order are the same.
cat >"$TMP/order.sql" <<'EOF'
\set k1 random(0, :skus - 1)
\set k2 random(0, :skus - 1)
\set k3 random(0, :skus - 1)
\set n random(1, 9000000000000000000)
SELECT id AS store_id, format, array_to_string(secrets, E'\n') AS secrets, policy,
       split_tolerance_pct
  FROM stores WHERE code = :store \gset
BEGIN;
WITH l AS (SELECT u.sku, u.n FROM unnest(ARRAY[:prefix::text || lpad(:k1::text, 7, '0'),
                                                 :prefix::text || lpad(:k2::text, 7, '0'),
                                                 :prefix::text || lpad(:k3::text, 7, '0')])
                                   WITH ORDINALITY AS u(sku, n)),
 c AS MATERIALIZED (
  SELECT o.id, o.sku, s.code, s.priority, s.active, o.available,
     (LEAST(o.cost, 1000000) * 10000)::bigint AS cost,
     (LEAST(o.shipping_cost, 1000000) * 10000)::bigint AS shipping,
     o.stock, o.lead_time_days, array_to_string(o.ships_to, ';') AS ships_to, s.id AS supplier_id
  FROM offers o JOIN suppliers s ON s.id = o.supplier_id
  WHERE o.sku = ANY (ARRAY(SELECT sku FROM l)) ORDER BY o.id LIMIT 4096),
 w AS (SELECT DISTINCT ON (c.sku) c.sku, c.id, c.supplier_id, c.cost + c.shipping AS landed
         FROM c WHERE c.active AND c.available AND c.stock >= 1
          AND (c.ships_to IS NULL OR c.ships_to = '' OR 'US' = ANY (string_to_array(c.ships_to, ';')))
        ORDER BY c.sku, c.cost + c.shipping, c.id),
 r AS (SELECT w.id, count(*) AS qty FROM l JOIN w ON w.sku = l.sku GROUP BY w.id),
 e AS (SELECT format('pgbench-%s-%s-%s', :run::text, :client_id::text, :n::text) AS id)
SELECT (SELECT '{' || string_agg(id::text, ',' ORDER BY id) || '}' FROM r) AS ids,
       (SELECT '{' || string_agg(qty::text, ',' ORDER BY id) || '}' FROM r) AS qty,
       (SELECT jsonb_agg(jsonb_build_object('line', l.n, 'sku', l.sku, 'quantity', 1,
                 'unit_price', '9.99', 'title', 'Bench item', 'requires_shipping', true,
                 'status', 'routed', 'reason', NULL, 'supplier_id', w.supplier_id,
                 'offer_id', w.id, 'reserved', 1,
                 'unit_cost', (w.landed / 10000.0)::numeric(20, 4)::text) ORDER BY l.n)
          FROM l JOIN w ON w.sku = l.sku)::text AS lines,
       (SELECT jsonb_agg(jsonb_build_object('line', l.n, 'supplier_id', w.supplier_id,
                 'offer_id', w.id, 'candidates',
                 (SELECT jsonb_agg(jsonb_build_object('offer_id', c.id, 'supplier', c.code,
                      'unit_cost', ((c.cost + c.shipping) / 10000.0)::numeric(20, 4)::text,
                      'lead_time_days', c.lead_time_days, 'priority', c.priority,
                      'stock', c.stock, 'eligible', true, 'why_not', NULL) ORDER BY c.id)
                    FROM c WHERE c.sku = l.sku)) ORDER BY l.n)
          FROM l JOIN w ON w.sku = l.sku)::text AS decisions,
       e.id AS ext, 'msg_' || e.id AS msg, now()::text AS placed_at,
       jsonb_build_object('type', 'order.created', 'order', jsonb_build_object(
           'id', e.id, 'currency', 'USD', 'placed_at', now(),
           'customer', jsonb_build_object('email', 'bench@example.com', 'name', 'Bench Buyer'),
           'shipping_address', jsonb_build_object('name', 'Bench Buyer', 'line1', '1 Main St',
               'line2', '', 'city', 'Austin', 'region', 'TX', 'postal_code', '78701',
               'country', 'US', 'phone', '+15125550100'),
           'items', (SELECT jsonb_agg(jsonb_build_object('sku', sku, 'quantity', 1,
                         'unit_price', '9.99', 'title', 'Bench item') ORDER BY n) FROM l)))::text AS raw
  FROM e \gset
INSERT INTO orders (store_id, external_id, currency, placed_at, customer_email,
   customer_name, ship_name, ship_line1, ship_line2, ship_city, ship_region,
   ship_postal_code, ship_country, ship_phone, raw, webhook_id, name, event_id)
 VALUES (:store_id, :ext, 'USD', :placed_at::timestamptz, 'bench@example.com', 'Bench Buyer',
   'Bench Buyer', '1 Main St', '', 'Austin', 'TX', '78701', 'US', '+15125550100',
   :raw::jsonb, :msg, NULL, NULL)
 ON CONFLICT (store_id, external_id) DO NOTHING RETURNING id AS order_id \gset
\startpipeline
WITH req AS (SELECT unnest(:ids::bigint[]) AS id, unnest(:qty::int[]) AS qty),
 locked AS MATERIALIZED (SELECT o.id FROM offers o WHERE o.id IN (SELECT id FROM req)
   ORDER BY o.id FOR UPDATE)
 UPDATE offers o SET stock = o.stock - req.qty, updated_at = now() FROM req
 WHERE o.id = req.id AND o.id IN (SELECT id FROM locked)
   AND o.available AND o.stock >= req.qty RETURNING o.id;
SELECT id, stock, available FROM offers WHERE id = ANY (:ids::bigint[]);
\endpipeline
\startpipeline
INSERT INTO order_lines (store_id, order_id, line_no, sku, quantity, unit_price, title,
   status, reason, supplier_id, offer_id, reserved, unit_cost, variant_id, requires_shipping)
 SELECT :store_id, :order_id, (e->>'line')::int, e->>'sku', (e->>'quantity')::int,
   (e->>'unit_price')::numeric, e->>'title', e->>'status', e->>'reason',
   (e->>'supplier_id')::bigint, (e->>'offer_id')::bigint, (e->>'reserved')::int,
   (e->>'unit_cost')::numeric, e->>'variant_id', (e->>'requires_shipping')::boolean
 FROM jsonb_array_elements(:lines::jsonb) AS e;
INSERT INTO routing_decisions (store_id, order_id, line_no, policy, supplier_id,
   offer_id, reason, candidates, search, consolidated)
 SELECT :store_id, :order_id, (e->>'line')::int, 'cheapest', (e->>'supplier_id')::bigint,
   (e->>'offer_id')::bigint, e->>'reason', e->'candidates', 'exact', false
 FROM jsonb_array_elements(:decisions::jsonb) AS e;
WITH g AS (SELECT DISTINCT supplier_id FROM order_lines
   WHERE store_id = :store_id AND order_id = :order_id AND status = 'routed' AND request_id IS NULL),
 r AS (INSERT INTO fulfillment_requests (store_id, order_id, supplier_id)
   SELECT :store_id, :order_id, supplier_id FROM g RETURNING id, supplier_id),
 u AS (UPDATE order_lines l SET request_id = r.id FROM r
   WHERE l.store_id = :store_id AND l.order_id = :order_id AND l.supplier_id = r.supplier_id
     AND l.status = 'routed' AND l.request_id IS NULL),
 m AS (INSERT INTO outbox (kind, request_id, supplier_id, store_id, idempotency_key, payload)
   SELECT 'fulfillment.requested', r.id, r.supplier_id, :store_id, r.id::text,
     jsonb_build_object('type', 'fulfillment.requested', 'request_id', r.id,
       'store', st.code, 'order_id', o.id::text, 'external_order_id', o.external_id,
       'ship_to', jsonb_build_object('name', o.ship_name, 'line1', o.ship_line1,
         'line2', o.ship_line2, 'city', o.ship_city, 'region', o.ship_region,
         'postal_code', o.ship_postal_code, 'country', o.ship_country, 'phone', o.ship_phone),
       'items', (SELECT jsonb_agg(jsonb_build_object('line', l.line_no, 'sku', l.sku,
                   'supplier_sku', f.supplier_sku, 'quantity', l.quantity) ORDER BY l.line_no)
                 FROM order_lines l JOIN offers f ON f.id = l.offer_id
                 WHERE l.store_id = :store_id AND l.order_id = :order_id
                   AND l.supplier_id = r.supplier_id
                   AND l.status = 'routed' AND l.request_id IS NULL),
       'created_at', now())
   FROM r JOIN orders o ON o.store_id = :store_id AND o.id = :order_id
   JOIN stores st ON st.id = :store_id
   RETURNING 1)
 SELECT count(*) FROM m;
UPDATE orders SET status = 'routed', updated_at = now() WHERE store_id = :store_id AND id = :order_id;
SELECT pg_notify('dropship_outbox', '');
COMMIT;
SELECT id, status FROM orders WHERE store_id = :store_id AND external_id = :ext;
SELECT l.line_no, l.sku, l.quantity, l.status, l.reason, s.code
 FROM orders o JOIN order_lines l ON l.store_id = o.store_id AND l.order_id = o.id
 LEFT JOIN suppliers s ON s.id = l.supplier_id
 WHERE o.store_id = :store_id AND o.external_id = :ext ORDER BY l.line_no;
\endpipeline
EOF

# Runs pgbench script $1 with 4, 8 and 16 clients, each after a CHECKPOINT;
# sets BEST (orders/s), BEST_C (its clients) and ALL ("4":tps,...).
ceiling() {
	BEST=0; BEST_C=0; ALL=""
	for c in 4 8 16; do
		psql_q "CHECKPOINT"
		"$PGBIN/pgbench" -n -M prepared -f "$1" -c "$c" -j 2 -T "$SECS" -D store=bench \
			-D store_id="$STORE_ID" -D prefix=SKU- -D skus=$SKUS -D run="$$$(date +%s)" dropship \
			>"$TMP/pgbench-$c.log" 2>&1 || { tail -n 20 "$TMP/pgbench-$c.log" >&2; exit 1; }
		tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time).*/\1/p' "$TMP/pgbench-$c.log")
		[ -n "$tps" ] || { tail -n 20 "$TMP/pgbench-$c.log" >&2; exit 1; }
		say "$(basename "$1" .sql) ceiling, $c clients: $tps orders/s"
		ALL="$ALL\"$c\":$tps,"
		if [ "$(calc "$tps > $BEST" 0)" = 1 ]; then BEST=$tps; BEST_C=$c; fi
	done
}

# A short unmeasured run first: the first touches of the fresh catalog
# (hint bits, cold caches) would otherwise count against 4 clients only.
# Then statistics of the order tables with rows in them (see above).
STORE_ID=$(psql_q "SELECT id FROM stores WHERE code = 'bench'")
"$PGBIN/pgbench" -n -M prepared -f "$TMP/order.sql" -c 8 -j 2 -T 5 \
	-D store=bench -D prefix=SKU- -D skus=$SKUS -D run="warm$$$(date +%s)" dropship >/dev/null 2>&1
psql_q "ANALYZE"
ceiling "$TMP/order.sql"
PG_BEST=$BEST; PG_BEST_C=$BEST_C; PG_ALL=$ALL

# ---- (1b) the minimal ceiling: the least an order router must write ----
# Fixed, whatever dropship's statements become: the order with its raw JSON
# (about 1 KB), its 3 SKUs' offers locked, 3 conditional stock updates,
# 1 fulfillment request, 3 lines and 1 outbox message, in one transaction.
# The supplier is the cheapest one for the first SKU; it takes all 3 lines.
cat >"$TMP/minimal.sql" <<'EOF'
\set k1 random(0, :skus - 1)
\set k2 random(0, :skus - 1)
\set k3 random(0, :skus - 1)
\set n random(1, 9000000000000000000)
BEGIN;
INSERT INTO orders (store_id, external_id, status, currency, placed_at, customer_email,
   customer_name, ship_name, ship_line1, ship_line2, ship_city, ship_region,
   ship_postal_code, ship_country, ship_phone, raw, webhook_id)
 SELECT :store_id, e.id, 'routed', 'USD', now(), 'bench@example.com', 'Bench Buyer',
   'Bench Buyer', '1 Main St', '', 'Austin', 'TX', '78701', 'US', '+15125550100',
   format('{"type": "order.created", "order": {"id": "%s", "currency": "USD", "placed_at": "%s",'
     ' "customer": {"email": "bench@example.com", "name": "Bench Buyer"},'
     ' "shipping_address": {"name": "Bench Buyer", "line1": "1 Main St", "line2": "",'
     ' "city": "Austin", "region": "TX", "postal_code": "78701", "country": "US",'
     ' "phone": "+15125550100"}, "items": ['
     '{"sku": "%s", "quantity": 1, "unit_price": "9.99", "title": "Bench item"},'
     ' {"sku": "%s", "quantity": 1, "unit_price": "9.99", "title": "Bench item"},'
     ' {"sku": "%s", "quantity": 1, "unit_price": "9.99", "title": "Bench item"}],'
     ' "note": "%s"}}', e.id, now(), :prefix::text || lpad(:k1::text, 7, '0'),
     :prefix::text || lpad(:k2::text, 7, '0'), :prefix::text || lpad(:k3::text, 7, '0'),
     repeat('x', 300))::jsonb, 'msg_' || e.id
 FROM (SELECT format('minimal-%s-%s-%s', :run::text, :client_id::text, :n::text) AS id) e
 RETURNING id AS order_id \gset
WITH s AS (SELECT :prefix::text || lpad(:k1::text, 7, '0') AS s1,
                  :prefix::text || lpad(:k2::text, 7, '0') AS s2,
                  :prefix::text || lpad(:k3::text, 7, '0') AS s3),
 c AS MATERIALIZED (SELECT o.id, o.sku, o.supplier_id, o.cost + o.shipping_cost AS landed
   FROM offers o, s WHERE o.sku IN (s.s1, s.s2, s.s3) ORDER BY o.id FOR UPDATE OF o),
 w AS (SELECT c.supplier_id FROM c, s WHERE c.sku = s.s1 ORDER BY c.landed, c.id LIMIT 1)
SELECT s.s1, s.s2, s.s3, w.supplier_id AS sup, gen_random_uuid() AS rid,
   (SELECT id FROM c WHERE c.sku = s.s1 AND c.supplier_id = w.supplier_id) AS o1,
   (SELECT id FROM c WHERE c.sku = s.s2 AND c.supplier_id = w.supplier_id) AS o2,
   (SELECT id FROM c WHERE c.sku = s.s3 AND c.supplier_id = w.supplier_id) AS o3
 FROM s, w \gset
\startpipeline
UPDATE offers SET stock = stock - 1, updated_at = now() WHERE id = :o1 AND stock >= 1;
UPDATE offers SET stock = stock - 1, updated_at = now() WHERE id = :o2 AND stock >= 1;
UPDATE offers SET stock = stock - 1, updated_at = now() WHERE id = :o3 AND stock >= 1;
INSERT INTO fulfillment_requests (id, store_id, order_id, supplier_id)
 VALUES (:rid::uuid, :store_id, :order_id, :sup);
INSERT INTO order_lines (store_id, order_id, line_no, sku, quantity, unit_price, title, status,
   supplier_id, offer_id, reserved, request_id)
 VALUES (:store_id, :order_id, 1, :s1, 1, 9.99, 'Bench item', 'routed', :sup, :o1, 1, :rid::uuid),
   (:store_id, :order_id, 2, :s2, 1, 9.99, 'Bench item', 'routed', :sup, :o2, 1, :rid::uuid),
   (:store_id, :order_id, 3, :s3, 1, 9.99, 'Bench item', 'routed', :sup, :o3, 1, :rid::uuid);
INSERT INTO outbox (kind, request_id, supplier_id, store_id, idempotency_key, payload)
 VALUES ('fulfillment.requested', :rid::uuid, :sup, :store_id, :rid,
   jsonb_build_object('type', 'fulfillment.requested', 'request_id', :rid::text,
     'order_id', :order_id::text, 'ship_to', jsonb_build_object('name', 'Bench Buyer',
       'line1', '1 Main St', 'city', 'Austin', 'region', 'TX', 'postal_code', '78701',
       'country', 'US'),
     'items', jsonb_build_array(jsonb_build_object('line', 1, 'sku', :s1::text, 'quantity', 1),
       jsonb_build_object('line', 2, 'sku', :s2::text, 'quantity', 1),
       jsonb_build_object('line', 3, 'sku', :s3::text, 'quantity', 1)),
     'created_at', now()));
COMMIT;
\endpipeline
EOF
ceiling "$TMP/minimal.sql"
MIN_BEST=$BEST; MIN_BEST_C=$BEST_C; MIN_ALL=$ALL

# pgbench's orders would otherwise be dispatched by dropshipd during its
# runs; they all start from the same empty order tables.
psql_q "SET client_min_messages = warning; TRUNCATE orders CASCADE"
psql_q "$ANALYZE"

# ---- dropshipd and the supplier simulator ----
start_sim
start_dropshipd "$TMP/dropshipd.log"
RSS_START=$(rss_kib "$DPID")

LOAD="$BUILD/dropship-bench --url https://127.0.0.1:$PORT --cafile $TMP/tls/server.crt
	--store bench --secret $STORE_SECRET --skus $SKUS --lines 3 --threads $THREADS
	--connections $CONNS --json"

# ---- (2) dropshipd at full speed (closed loop) ----
# As for pgbench: an unmeasured run, its outbox delivered, then statistics
# of the order tables with rows in them.
say "dropshipd, 5s unmeasured, then ANALYZE"
$LOAD --warmup 0 --duration 5 >/dev/null
wait_for '[ "$(outbox_pending)" -eq 0 ]' 120 || say "outbox still has $(outbox_pending) pending"
psql_q "ANALYZE"
psql_q "CHECKPOINT"
say "dropshipd, closed loop, $CONNS connections, ${SECS}s"
if [ "${BENCH_PERF:-0}" = 1 ] && command -v perf >/dev/null 2>&1; then
	# After the warm-up, for the measured part only.
	(sleep 5; perf record -g -o "$TMP/perf.data" -p "$DPID" -- sleep "$SECS") >/dev/null 2>&1 &
	PERF=$!
	PIDS="$PIDS $PERF"
fi
$LOAD --warmup 5 --duration "$SECS" >"$TMP/max.json" &
MAXRUN=$!
PIDS="$PIDS $MAXRUN"
if [ "${BENCH_STATS:-0}" = 1 ]; then
	# From the end of the warm-up: the statements' time and the orders stored meanwhile.
	sleep 5
	ORDERS0=$(psql_q "SELECT count(*) FROM orders, pg_stat_statements_reset()")
fi
wait "$MAXRUN"
if [ "${BENCH_STATS:-0}" = 1 ]; then
	# Every session's statements (dropshipd's dispatcher too) but this
	# script's, counted as each ends; times in ms. One statement reads them
	# and the orders stored, so that it counts in neither. Each line: the
	# sum over all statements per order, the orders, calls, total, mean,
	# per order, and the statement (last: it may hold a |).
	psql_q "WITH n AS (SELECT count(*) - $ORDERS0 AS n FROM orders),
	             s AS (SELECT * FROM pg_stat_statements
	                    WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'dropship')
	                      AND query NOT LIKE '%pg_stat_statements_reset()%')
	        SELECT round((sum(total_exec_time) OVER () / n)::numeric, 3), n, calls,
	               round(total_exec_time::numeric, 1), round(mean_exec_time::numeric, 3),
	               round((total_exec_time / n)::numeric, 3),
	               left(regexp_replace(query, '\s+', ' ', 'g'), 78)
	          FROM s, n ORDER BY total_exec_time DESC LIMIT 15" >"$TMP/stats.txt"
	STATS_TOTAL=$(head -n 1 "$TMP/stats.txt" | cut -d'|' -f1)
	STATS_ORDERS=$(head -n 1 "$TMP/stats.txt" | cut -d'|' -f2)
	{
		printf '  %8s %10s %8s %9s  %s\n' calls total_ms mean_ms ms/order statement
		awk -F'|' '{ printf "  %8s %10s %8s %9s  %s\n", $3, $4, $5, $6, substr($0, length($1 $2 $3 $4 $5 $6) + 7) }' \
			"$TMP/stats.txt"
	} >"$TMP/stats.table"
	say "PostgreSQL: $STATS_TOTAL ms of statements per order ($STATS_ORDERS orders)"
fi
if [ -n "${PERF:-}" ]; then
	wait "$PERF" || true
	mkdir -p "$OUTDIR"
	PERF_OUT="$OUTDIR/perf-$(date +%Y%m%d-%H%M%S).txt"
	{ perf report -i "$TMP/perf.data" --stdio --no-children -g none --sort dso 2>/dev/null |
		grep -v '^#' | grep -v '^$' | head -n 15
	  echo
	  perf report -i "$TMP/perf.data" --stdio --no-children -g none 2>/dev/null |
		grep -v '^#' | grep -v '^$' | head -n 40; } >"$PERF_OUT" || true
	say "perf report: $PERF_OUT"
fi
MAX=$(jnum orders_per_s "$TMP/max.json")
say "dropshipd: $MAX orders/s ($(jnum errors_total "$TMP/max.json") errors)"
RSS_AFTER_MAX=$(rss_kib "$DPID")
# The outbox must not fall behind for good: what the full-speed run left
# pending is delivered before latency is measured, so the next run sees
# the steady state rather than this backlog.
BACKLOG=$(outbox_pending)
say "outbox: $BACKLOG requests pending after the full-speed run"
wait_for '[ "$(outbox_pending)" -eq 0 ]' 120 || say "outbox still has $(outbox_pending) pending"

# ---- (3) latency at half the maximum rate (open loop) ----
RATE=$(calc "$MAX / 2" 0)
say "dropshipd, open loop at $RATE orders/s, ${SECS}s"
$LOAD --warmup 2 --duration "$SECS" --rate "$RATE" >"$TMP/half.json"

# ---- soak: memory must not grow under sustained load ----
say "soak: closed loop ${SOAK}s"
$LOAD --warmup 0 --duration "$SOAK" >"$TMP/soak.json"
RSS_AFTER_SOAK=$(rss_kib "$DPID")

# ---- (4) memory with idle keep-alive TLS connections ----
say "holding $IDLE idle TLS connections"
"$BUILD/dropship-bench" --url "https://127.0.0.1:$PORT" --cafile "$TMP/tls/server.crt" \
	--idle "$IDLE" --duration 600 --json >"$TMP/idle.json" 2>"$TMP/idle.log" &
IPID=$!
PIDS="$PIDS $IPID"
wait_for "grep -q ready $TMP/idle.log" 120 || {
	echo "bench: idle connections not ready; log tail:" >&2; tail -n 5 "$TMP/idle.log" >&2; exit 1; }
sleep 2
RSS_IDLE=$(rss_kib "$DPID")
CONNS_OPEN=$(curl -sf --cacert "$TMP/tls/server.crt" "https://127.0.0.1:$PORT/metrics" |
	awk '/^dropship_connections /{ print $2 }')
kill -INT "$IPID"
wait "$IPID" || true
ESTABLISHED=$(jnum established "$TMP/idle.json")

# ---- report ----
STEAL=$(steal_since "$CPU_START")
RATIO=$(calc "$MAX / $PG_BEST" 2)
RATIO_MIN=$(calc "$MAX / $MIN_BEST" 2)
GROWTH=$((RSS_AFTER_SOAK - RSS_AFTER_MAX))
P50=$(jnum p50 "$TMP/half.json"); P99=$(jnum p99 "$TMP/half.json"); P999=$(jnum p99.9 "$TMP/half.json")
mkdir -p "$OUTDIR"
OUT="$OUTDIR/bench-$(date +%Y%m%d-%H%M%S).json"
cat >"$OUT" <<EOF
{"pgbench_orders_per_s": $PG_BEST, "pgbench_best_clients": $PG_BEST_C,
 "pgbench_by_clients": {${PG_ALL%,}},
 "minimal_orders_per_s": $MIN_BEST, "minimal_best_clients": $MIN_BEST_C,
 "minimal_by_clients": {${MIN_ALL%,}},
 "dropshipd_orders_per_s": $MAX, "ratio": $RATIO, "ratio_minimal": $RATIO_MIN,
 "outbox_pending_after_max": $BACKLOG,
 "pg_statement_ms_per_order": ${STATS_TOTAL:-null}, "pg_statement_orders": ${STATS_ORDERS:-null},
 "half_rate": $RATE, "half_rate_latency_ms": {"p50": $P50, "p99": $P99, "p99.9": $P999},
 "rss_start_kib": $RSS_START, "rss_after_max_kib": $RSS_AFTER_MAX,
 "rss_after_soak_kib": $RSS_AFTER_SOAK, "rss_growth_kib": $GROWTH, "soak_s": $SOAK,
 "idle_connections": ${ESTABLISHED:-0}, "rss_idle_kib": $RSS_IDLE,
 "seconds_per_run": $SECS, "connections": $CONNS, "nproc": $(nproc),
 "loadavg_before": "$LOAD_START", "cpu_steal_pct": $STEAL, "loadavg_after": "$(cut -d' ' -f1-3 /proc/loadavg)",
 "fsync": "$FSYNC", "synchronous_commit": "$SYNC_COMMIT",
 "max_run": $(cat "$TMP/max.json"), "half_rate_run": $(cat "$TMP/half.json"),
 "soak_run": $(cat "$TMP/soak.json")}
EOF

row() { printf '  %-40s %s\n' "$1" "$2"; }
echo
echo "dropship bench ($(nproc) cores, load before $LOAD_START, CPU steal $STEAL%, fsync=$FSYNC, synchronous_commit=$SYNC_COMMIT, ${SECS}s per run)"
row "pgbench ceiling (orders/s, $PG_BEST_C clients)" "$PG_BEST"
row "minimal ceiling (orders/s, $MIN_BEST_C clients)" "$MIN_BEST"
row "dropshipd (orders/s, $CONNS connections)" "$MAX"
row "ratio dropshipd / pgbench" "$RATIO"
row "ratio dropshipd / minimal" "$RATIO_MIN"
row "outbox pending after the full-speed run" "$BACKLOG"
row "latency at $RATE orders/s (p50/p99/p99.9)" "$P50 / $P99 / $P999 ms"
row "RSS with ${ESTABLISHED:-0} idle TLS connections" "$(calc "$RSS_IDLE / 1024") MiB (${CONNS_OPEN:-?} open; +$(calc "($RSS_IDLE - $RSS_AFTER_SOAK) / 1024") MiB over the $(calc "$RSS_AFTER_SOAK / 1024") before; $(calc "$RSS_START / 1024") at start)"
row "RSS growth over a ${SOAK}s soak" "$(calc "$GROWTH / 1024") MiB ($(calc "$RSS_AFTER_MAX / 1024") -> $(calc "$RSS_AFTER_SOAK / 1024") MiB)"
if [ "${BENCH_STATS:-0}" = 1 ]; then
	cp "$TMP/stats.table" "${OUT%.json}-statements.txt"
	echo
	echo "PostgreSQL during the full-speed run: $STATS_TOTAL ms of statements per order ($STATS_ORDERS orders stored)"
	cat "$TMP/stats.table"
	echo "  top statements: ${OUT%.json}-statements.txt"
fi
echo "  figures as JSON: $OUT"
