# Helpers shared by .ci/bench.sh, .ci/slowloris.sh and .ci/scale.sh;
# sourced, not run.

# Exits unless each binary is built in BUILD: need_built NAME BIN...
need_built() {
	name=$1
	shift
	for b in "$@"; do
		[ -x "$BUILD/$b" ] || { echo "$name: $BUILD/$b missing (run make first)" >&2; exit 1; }
	done
}
# A temporary folder TMP for a run with its own cluster in TMP/pg (PGREAL
# once started, when the cluster sits elsewhere): on exit the processes in
# PIDS are stopped and the cluster and TMP removed. temp_run NAME
temp_run() {
	TMP=$(mktemp -d "/tmp/dropship-$1.XXXXXX")
	# The cluster runs as `postgres` when we are root: it must reach into TMP.
	chmod 711 "$TMP"
	PIDS=""
	PGREAL=""
	trap temp_cleanup EXIT
	trap 'exit 130' INT TERM
}
temp_cleanup() {
	trap - EXIT INT TERM
	for p in $PIDS; do kill -TERM "$p" 2>/dev/null || true; done
	for p in $PIDS; do wait "$p" 2>/dev/null || true; done
	sh .ci/pg.sh stop "$TMP/pg" 2>/dev/null || true
	[ -n "$PGREAL" ] && [ "$PGREAL" != "$TMP/pg" ] && rm -rf "$PGREAL"
	rm -rf "$TMP"
}

# A number from dropship-bench's one-line JSON: jnum KEY FILE.
jnum() { sed -n "s/.*\"$1\":\([-0-9.eE+]*\).*/\1/p" "$2" | head -n 1; }
# Arithmetic with DIGITS decimals (default 1): calc EXPR [DIGITS].
calc() { awk "BEGIN { printf \"%.${2:-1}f\", ($1) }"; }
# Waits up to $2 seconds for command $1 to succeed.
wait_for() {
	n=0
	until eval "$1" >/dev/null 2>&1; do
		n=$((n + 1))
		[ "$n" -le $(($2 * 10)) ] || return 1
		sleep 0.1
	done
}
# dropshipd binds with SO_REUSEPORT: a server left on a port would quietly
# take half the load. curl exits 7 when nothing listens.
#   check_ports "VARIABLES THAT MOVE THEM" PORT...
check_ports() {
	vars=$1
	shift
	for p in "$@"; do
		rc=0; curl -sk -o /dev/null --max-time 2 "https://127.0.0.1:$p/healthz" || rc=$?
		[ "$rc" -eq 7 ] || {
			echo "$(basename "$0" .sh): port $p is in use; stop what runs there or set $vars" >&2; exit 1; }
	done
}
# CPU time the hypervisor gave to others (steal) skews every figure:
# cpu_stat prints "steal total" in ticks; steal_since "$(cpu_stat)" the
# share of steal since then, in percent.
cpu_stat() { awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; print $9, t }' /proc/stat; }
steal_since() {
	cpu_stat | { read -r s1 t1; echo "$1" | { read -r s0 t0; calc "100 * ($s1 - $s0) / ($t1 - $t0 + 1)"; }; }
}

# The rest works on the caller's BUILD, TMP (dev certificate in TMP/tls),
# PORT (dropshipd), SIM_PORT, SUP_SECRET, CONF, CTL and PIDS (processes
# the caller's cleanup stops).

# dropshipd's configuration in CONF: the defaults but for loopback
# suppliers (the simulator) and the dev CA; $1 adds [server] lines.
write_conf() {
	cat >"$CONF" <<CONF
[server]
listen = 127.0.0.1:$PORT
tls_cert = $TMP/tls/server.crt
tls_key = $TMP/tls/server.key
${1:-}

[dispatch]
tls_ca_file = $TMP/tls/server.crt
allow_private_endpoints = true
CONF
}
# Suppliers sup1..sup3, as tests/gen-catalog.sh names them, on the simulator.
add_suppliers() {
	for s in 1 2 3; do
		$CTL supplier add "sup$s" --update --secret "$SUP_SECRET" \
			--endpoint "https://127.0.0.1:$SIM_PORT/suppliers/sup$s/fulfillments" >/dev/null
	done
}
# The simulator serving sup1..sup3 (and what "$@" adds), log in TMP/sim.log.
start_sim() {
	"$BUILD/dropship-supplier-sim" --listen "127.0.0.1:$SIM_PORT" \
		--tls-cert "$TMP/tls/server.crt" --tls-key "$TMP/tls/server.key" \
		--supplier "sup1=$SUP_SECRET" --supplier "sup2=$SUP_SECRET" --supplier "sup3=$SUP_SECRET" \
		--log-level warn "$@" 2>"$TMP/sim.log" &
	PIDS="$PIDS $!"
	wait_for "curl -sf --cacert $TMP/tls/server.crt https://127.0.0.1:$SIM_PORT/healthz" 10 || {
		echo "$(basename "$0" .sh): the simulator did not start; log tail:" >&2
		tail -n 20 "$TMP/sim.log" >&2; exit 1; }
}
# dropshipd with CONF, log appended to $1; DPID is its process id.
start_dropshipd() {
	"$BUILD/dropshipd" -c "$CONF" 2>>"$1" &
	DPID=$!
	PIDS="$PIDS $DPID"
	wait_for "curl -sf --cacert $TMP/tls/server.crt https://127.0.0.1:$PORT/readyz" 30 || {
		echo "$(basename "$0" .sh): dropshipd did not become ready; log tail:" >&2
		tail -n 20 "$1" >&2; exit 1; }
}
