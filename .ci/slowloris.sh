#!/bin/sh
# Slow clients against a dropshipd configured as `make run` has it (the
# defaults of config/dropshipd.conf): real-order latency while a wave of
# slowloris connections is held, and dropshipd's memory before, during and
# after a wave and a second one (docs/bench.md, Slow clients). Not a test.
#   .ci/slowloris.sh [BUILD]
# Everything runs in a temporary folder with its own PostgreSQL cluster,
# supplier simulator and dropshipd; all of it is stopped and removed on exit.
# Environment:
#   SLOW_CONNECTIONS   slow connections in a wave (default 5000)
#   SLOW_SOURCES       local addresses they come from (default 25)
#   SLOW_SECONDS       seconds a wave is held (default 40)
#   SLOW_RATE          real orders/s measured during the wave (default 20)
#   SLOW_ORDER_SECONDS seconds of real orders measured (default 20)
#   BENCH_PG_PORT, BENCH_PORT, BENCH_SIM_PORT  ports (defaults 55433, 18443, 19443)
set -eu
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
N=${SLOW_CONNECTIONS:-5000}
SOURCES=${SLOW_SOURCES:-25}
WAVE=${SLOW_SECONDS:-40}
RATE=${SLOW_RATE:-20}
OSECS=${SLOW_ORDER_SECONDS:-20}
PORT=${BENCH_PORT:-18443}
SIM_PORT=${BENCH_SIM_PORT:-19443}
DROPSHIP_PG_PORT=${BENCH_PG_PORT:-55433}
export DROPSHIP_PG_PORT
SKUS=1000

make --no-print-directory "$BUILD/bench/bench_slowloris" >/dev/null
. .ci/bench-lib.sh
need_built slowloris dropshipd dropshipctl dropship-supplier-sim dropship-bench bench/bench_slowloris
temp_run slowloris

say() { printf '%s slowloris: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
rss_mib() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
metric() { curl -sf --cacert "$TMP/tls/server.crt" "https://127.0.0.1:$ADMIN_PORT/metrics" |
	awk -v m="$1" '$1 == m { print $2 }'; }

# A descriptor per slow connection, in the tool and in dropshipd.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((N + 500)) ]; then
	echo "slowloris: open files limit $(ulimit -n) is below $N connections" >&2
	exit 1
fi
check_ports BENCH_PORT/BENCH_SIM_PORT "$PORT" "$SIM_PORT"

say "setting up in $TMP (PostgreSQL port $DROPSHIP_PG_PORT)"
sh .ci/devcert.sh "$TMP/tls"
sh .ci/pg.sh init "$TMP/pg"
PGREAL=$(cd "$TMP/pg" && pwd -P)
sh .ci/pg.sh start "$TMP/pg"
PGBIN=$(sh .ci/pg.sh bin "$TMP/pg")
PGHOST=$PGREAL
export PGHOST PGPORT="$DROPSHIP_PG_PORT" PGUSER=postgres
"$PGBIN/createdb" dropship
DROPSHIP_DATABASE_URL=$(sh .ci/pg.sh url "$TMP/pg" dropship)
export DROPSHIP_DATABASE_URL
CONF=$TMP/dropshipd.conf
ADMIN_PORT=$((PORT + 1))
# make run's settings: the defaults, but for the test ports.
write_conf "[admin]
listen = 127.0.0.1:$ADMIN_PORT"
CTL="$BUILD/dropshipctl -c $CONF"
$CTL migrate >/dev/null
STORE_SECRET=$($CTL secret new)
SUP_SECRET=$($CTL secret new)
$CTL store add bench --secret "$STORE_SECRET" >/dev/null
add_suppliers
sh tests/gen-catalog.sh $((SKUS * 3)) 3 100000000 >"$TMP/catalog.csv"
$CTL catalog import "$TMP/catalog.csv" >/dev/null

start_sim
start_dropshipd "$TMP/dropshipd.log"
ORDERS="$BUILD/dropship-bench --url https://127.0.0.1:$PORT --cafile $TMP/tls/server.crt
	--store bench --secret $STORE_SECRET --skus $SKUS --lines 3 --connections 4 --json"

# Real orders at SLOW_RATE for SLOW_ORDER_SECONDS into $1; prints "p50 p99 ok requests".
orders() {
	$ORDERS --rate "$RATE" --warmup 1 --duration "$OSECS" >"$1" 2>"$1.log" || true
	echo "$(jnum p50 "$1") $(jnum p99 "$1") $(jnum ok "$1") $(jnum requests "$1")"
}

# Holds a wave in the background; WPID is the tool, its log in $1.
wave_start() {
	"$BUILD/bench/bench_slowloris" --port "$PORT" --connections "$N" --sources "$SOURCES" \
		--duration "$WAVE" >"$1.json" 2>"$1" &
	WPID=$!
	PIDS="$PIDS $WPID"
	wait_for "grep -q ready $1" 120 || { echo "slowloris: the wave never came up; log tail:" >&2
		tail -n 5 "$1" >&2; exit 1; }
}
# The highest RSS of dropshipd while WPID runs, in MiB.
rss_peak() {
	peak=0
	while kill -0 "$WPID" 2>/dev/null; do
		r=$(rss_mib "$DPID")
		peak=$(awk -v a="$peak" -v b="$r" 'BEGIN { print (b > a) ? b : a }')
		sleep 0.5
	done
	echo "$peak"
}
# RSS once the connections of a wave are gone: a few seconds for the
# server to see them close and give memory back.
rss_settled() {
	wait_for "[ \"\$(metric dropship_connections)\" -le 1 ]" 60 || say "connections still open"
	sleep 3
	rss_mib "$DPID"
}

say "warm-up: real orders with no wave"
orders "$TMP/warm.json" >/dev/null
say "real orders, no wave: ${OSECS}s at $RATE/s"
read -r B50 B99 BOK BREQ <<EOT
$(orders "$TMP/base.json")
EOT
RSS_BEFORE=$(rss_mib "$DPID")

say "wave 1: $N slow connections from $SOURCES addresses for ${WAVE}s"
wave_start "$TMP/wave1.log"
UP1=$(metric dropship_connections)
RSS_READY1=$(rss_mib "$DPID")
say "wave 1 up ($UP1 connections open); real orders: ${OSECS}s at $RATE/s"
rss_peak >"$TMP/peak1" &
PEAKER=$!
read -r W50 W99 WOK WREQ <<EOT
$(orders "$TMP/wave.json")
EOT
wait "$PEAKER"
wait "$WPID" || true
RSS_PEAK1=$(cat "$TMP/peak1")
RSS_AFTER1=$(rss_settled)

say "wave 2"
wave_start "$TMP/wave2.log"
UP2=$(metric dropship_connections)
rss_peak >"$TMP/peak2" &
PEAKER=$!
wait "$PEAKER"
wait "$WPID" || true
RSS_PEAK2=$(cat "$TMP/peak2")
RSS_AFTER2=$(rss_settled)

say "real orders after the waves"
read -r A50 A99 AOK AREQ <<EOT
$(orders "$TMP/after.json")
EOT
RSS_END=$(rss_mib "$DPID")

cat <<REPORT
slow clients: $N connections from $SOURCES addresses, each adding a byte every 5 s, held ${WAVE} s
(dropshipd: make run's settings, $(nproc) workers; open at wave 1: $UP1, wave 2: $UP2)
wave tool: $(cat "$TMP/wave1.log.json")
real orders ($RATE/s, ${OSECS}s, fresh signed orders, 3 lines):
  no wave        p50 ${B50} ms  p99 ${B99} ms  ($BOK/$BREQ 2xx)
  during wave 1  p50 ${W50} ms  p99 ${W99} ms  ($WOK/$WREQ 2xx)
  after waves    p50 ${A50} ms  p99 ${A99} ms  ($AOK/$AREQ 2xx)
dropshipd RSS (MiB):
  before         $RSS_BEFORE
  wave 1 up      $RSS_READY1   peak $RSS_PEAK1
  after wave 1   $RSS_AFTER1
  wave 2 peak    $RSS_PEAK2
  after wave 2   $RSS_AFTER2
  after orders   $RSS_END
408s sent: $(grep -c 'status=408' "$TMP/dropshipd.log" || true); shed: $(metric dropship_connections_shed_total); refused: $(metric dropship_connections_refused_total)
REPORT
