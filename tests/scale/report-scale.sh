#!/bin/sh
# Times every reporting view over a synthetic history:
#   sh tests/scale/report-scale.sh [ORDERS] [BUILD]     (default 1000000, build)
# Starts its own PostgreSQL cluster (deleted at the end; KEEP=1 keeps it and
# prints how to reach it), applies the migrations and sql/, loads ORDERS
# orders with tests/scale/gen-orders.sql, then runs each view three times and
# prints the best time and the plan's key lines (EXPLAIN ANALYZE).
set -eu
ORDERS=${1:-1000000}
BUILD=${2:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
export DROPSHIP_PG_PORT=${DROPSHIP_PG_PORT:-5488}
PGDIR=$(mktemp -d /tmp/dropship-scale-pg.XXXXXX)
cleanup() {
	if [ "${KEEP:-0}" = 1 ]; then
		echo "kept: $(sh .ci/pg.sh env "$PGDIR"); psql -d dropship  (stop: sh .ci/pg.sh stop $PGDIR)"
		return
	fi
	sh .ci/pg.sh stop "$PGDIR" 2>/dev/null || true
	rm -rf "$(cd "$PGDIR" && pwd -P)" "$PGDIR"
}
trap cleanup EXIT INT TERM

[ -x "$BUILD/dropshipctl" ] || { echo "report-scale: build first (make)" >&2; exit 2; }
sh .ci/pg.sh init "$PGDIR" --fast
sh .ci/pg.sh start "$PGDIR"
eval "$(sh .ci/pg.sh env "$PGDIR")"
PSQL="$(sh .ci/pg.sh bin "$PGDIR")/psql"
"$PSQL" -d postgres -qc "CREATE DATABASE dropship"
DROPSHIP_DATABASE_URL=$(sh .ci/pg.sh url "$PGDIR") "$BUILD/dropshipctl" migrate >/dev/null

echo "loading $ORDERS orders..."
t0=$(date +%s)
"$PSQL" -d dropship -q -v orders="$ORDERS" -f tests/scale/gen-orders.sql >/dev/null
echo "loaded in $(( $(date +%s) - t0 )) s:"
"$PSQL" -d dropship -At -F ' ' -c "
  SELECT relname, n_live_tup FROM pg_stat_user_tables
   WHERE relname IN ('orders', 'order_lines', 'routing_decisions', 'fulfillment_requests',
                     'request_events', 'outbox', 'outbox_attempts')
   ORDER BY relname" | awk '{ printf "  %-22s %10d rows\n", $1, $2 }'
"$PSQL" -d dropship -At -c "SELECT '  database size: ' || pg_size_pretty(pg_database_size('dropship'))"

echo
printf '%-24s %10s %8s\n' view best_ms rows
for v in $("$PSQL" -d dropship -At -c "SELECT viewname FROM pg_views WHERE schemaname = 'reporting' ORDER BY 1"); do
	best=""
	for _ in 1 2 3; do
		ms=$("$PSQL" -d dropship -At -c '\timing on' -c "SELECT count(*) FROM (SELECT * FROM reporting.$v) t" \
			| sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p')
		best=$(echo "$ms ${best:-$ms}" | awk '{ print ($1 < $2) ? $1 : $2 }')
	done
	rows=$("$PSQL" -d dropship -At -c "SELECT count(*) FROM reporting.$v")
	printf '%-24s %10s %8s\n' "$v" "$best" "$rows"
done

if [ "${PLANS:-1}" = 1 ]; then
	for v in $("$PSQL" -d dropship -At -c "SELECT viewname FROM pg_views WHERE schemaname = 'reporting' ORDER BY 1"); do
		echo
		echo "== EXPLAIN ANALYZE reporting.$v (scans and the top node)"
		"$PSQL" -d dropship -At -c "EXPLAIN (ANALYZE, COSTS OFF, TIMING ON) SELECT * FROM reporting.$v" \
			| grep -E 'Scan|Execution Time|^[A-Z]' | head -n 14
	done
fi
