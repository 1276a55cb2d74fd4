#!/bin/sh
# Times every reporting view over a synthetic history:
#   sh tests/scale/report-scale.sh [ORDERS] [BUILD]     (default 1000000, build)
# Starts its own PostgreSQL cluster (deleted at the end; KEEP=1 keeps it and
# prints how to reach it), applies the migrations and sql/, loads ORDERS
# orders with tests/scale/gen-orders.sql, then runs each view three times and
# prints the best time and the plan's key lines (EXPLAIN ANALYZE).
# REUSE=DIR times the cluster a KEEP=1 run left in DIR again, after
# recreating the views (no loading): for trying a change to sql/.
set -eu
ORDERS=${1:-1000000}
BUILD=${2:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
export DROPSHIP_PG_PORT=${DROPSHIP_PG_PORT:-5488}
PGDIR=${REUSE:-$(mktemp -d /tmp/dropship-scale-pg.XXXXXX)}
cleanup() {
	if [ "${KEEP:-0}" = 1 ] || [ -n "${REUSE:-}" ]; then
		echo "kept: $(sh .ci/pg.sh env "$PGDIR"); psql -d dropship  (stop: sh .ci/pg.sh stop $PGDIR)"
		return
	fi
	sh .ci/pg.sh stop "$PGDIR" 2>/dev/null || true
	rm -rf "$(cd "$PGDIR" && pwd -P)" "$PGDIR"
}
trap cleanup EXIT INT TERM

[ -x "$BUILD/dropshipctl" ] || { echo "report-scale: build first (make)" >&2; exit 2; }
if [ -n "${REUSE:-}" ]; then
	sh .ci/pg.sh start "$PGDIR"
	eval "$(sh .ci/pg.sh env "$PGDIR")"
	PSQL="$(sh .ci/pg.sh bin "$PGDIR")/psql"
	DROPSHIP_DATABASE_URL=$(sh .ci/pg.sh url "$PGDIR") "$BUILD/dropshipctl" migrate >/dev/null
else
	sh .ci/pg.sh init "$PGDIR" --fast
	sh .ci/pg.sh start "$PGDIR"
	eval "$(sh .ci/pg.sh env "$PGDIR")"
	PSQL="$(sh .ci/pg.sh bin "$PGDIR")/psql"
	"$PSQL" -d postgres -qc "CREATE DATABASE dropship"
	DROPSHIP_DATABASE_URL=$(sh .ci/pg.sh url "$PGDIR") "$BUILD/dropshipctl" migrate >/dev/null
	echo "loading $ORDERS orders..."
	t0=$(date +%s)
	"$PSQL" -d dropship -q -v orders="$ORDERS" -f tests/scale/gen-orders.sql >/dev/null
	echo "loaded in $(( $(date +%s) - t0 )) s"
fi
echo "database:"
"$PSQL" -d dropship -At -F ' ' -c "
  SELECT relname, n_live_tup FROM pg_stat_user_tables
   WHERE relname IN ('orders', 'order_lines', 'routing_decisions', 'fulfillment_requests',
                     'request_events', 'outbox', 'outbox_attempts')
   ORDER BY relname" | awk '{ printf "  %-22s %10d rows\n", $1, $2 }'
"$PSQL" -d dropship -At -c "SELECT '  database size: ' || pg_size_pretty(pg_database_size('dropship'))"

# Best of three runs of a query, in ms.
best_ms() {
	best=""
	for _ in 1 2 3; do
		ms=$("$PSQL" -d dropship -At -c '\timing on' -c "$1" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p')
		best=$(echo "$ms ${best:-$ms}" | awk '{ print ($1 < $2) ? $1 : $2 }')
	done
	echo "$best"
}

# Reports are timed whole; row-level views ("rows: ... filter by COL" in
# their comment) over their last day, as the examples use them.
echo
printf '%-24s %10s %8s  %s\n' view best_ms rows query
"$PSQL" -d dropship -At -F ' ' -c "
  SELECT c.relname, coalesce(substring(obj_description(c.oid, 'pg_class') FROM 'filter by ([a-z_]+)'), '-')
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname = 'reporting' AND c.relkind = 'v' ORDER BY 1" |
while read -r v col; do
	q="SELECT * FROM reporting.$v"
	[ "$col" != - ] && q="$q WHERE $col >= now() - interval '1 day'"
	rows=$("$PSQL" -d dropship -At -c "SELECT count(*) FROM ($q) t")
	printf '%-24s %10s %8s  %s\n' "$v" "$(best_ms "SELECT count(*) FROM ($q) t")" "$rows" "$q"
done

echo
printf '%-34s %10s\n' example best_ms
for f in sql/examples/*.sql; do
	best=""
	for _ in 1 2 3; do
		t0=$(date +%s%N)
		"$PSQL" -d dropship -X -q -v ON_ERROR_STOP=1 -f "$f" >/dev/null
		ms=$(( ($(date +%s%N) - t0) / 1000000 ))
		best=$(echo "$ms ${best:-$ms}" | awk '{ print ($1 < $2) ? $1 : $2 }')
	done
	printf '%-34s %10s\n' "$(basename "$f")" "$best"
done

if [ "${PLANS:-1}" = 1 ]; then
	for v in $("$PSQL" -d dropship -At -c "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	           WHERE n.nspname = 'reporting' AND c.relkind = 'v'
	             AND obj_description(c.oid, 'pg_class') NOT LIKE 'rows:%' ORDER BY 1"); do
		echo
		echo "== EXPLAIN ANALYZE reporting.$v (scans and the top node)"
		"$PSQL" -d dropship -At -c "EXPLAIN (ANALYZE, COSTS OFF, TIMING ON) SELECT * FROM reporting.$v" \
			| grep -E 'Scan|Execution Time|^[A-Z]' | head -n 14
	done
fi
