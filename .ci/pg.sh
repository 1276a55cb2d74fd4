#!/bin/sh
# Local PostgreSQL cluster on a unix socket inside its own folder.
#   pg.sh init  DIR [--fast]   create the cluster (--fast: fsync off, for tests)
#   pg.sh start DIR            start it (no-op when running); prints nothing
#   pg.sh stop  DIR            stop it (no-op when stopped)
#   pg.sh url   DIR [DB]       print a libpq URL for database DB (default dropship)
#   pg.sh env   DIR            print PGHOST/PGPORT exports for psql
# Works as an ordinary user and as root (the server then runs as `postgres`,
# since PostgreSQL refuses to run as root). No TCP listener: socket only.
set -eu
cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { sed -n '2,9p' "$0" >&2; exit 2; }
PORT=${DROPSHIP_PG_PORT:-5432}

bindir() {
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n -r); do
		[ -x "$d/initdb" ] && { echo "$d"; return; }
	done
	command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return; }
	echo "pg.sh: PostgreSQL server binaries not found (install postgresql)" >&2; exit 1
}
BIN=$(bindir)

# The cluster must live where the `postgres` user can reach it when we are
# root; a repository under /root cannot, so the data then goes under /tmp
# and DIR becomes a link to it.
abspath() { mkdir -p "$1" 2>/dev/null || true; (cd "$1" && pwd -P); }

as_owner() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

data_dir() {
	if [ -L "$dir" ] || [ -d "$dir" ]; then abspath "$dir"; else echo ""; fi
}

case "$cmd" in
init)
	if [ -f "$(data_dir)/PG_VERSION" ]; then exit 0; fi
	target=$(abspath "$dir")
	if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -w "$target" 2>/dev/null; then
		chown postgres "$target" 2>/dev/null || true
		if ! runuser -u postgres -- test -w "$target" 2>/dev/null; then
			rmdir "$target" 2>/dev/null || true
			target=$(mktemp -d /tmp/dropship-pg.XXXXXX)
			ln -sfn "$target" "$dir"
		fi
		chown postgres "$target"
	fi
	chmod 700 "$target"
	as_owner "$BIN/initdb" -D "$target" -A trust -U postgres -E UTF8 --locale=C --no-sync >/dev/null
	{
		echo "listen_addresses = ''"
		echo "unix_socket_directories = '$target'"
		echo "port = $PORT"
		echo "max_connections = 300"
		echo "shared_buffers = 128MB"
		if [ "${3:-}" = "--fast" ]; then
			echo "fsync = off"
			echo "synchronous_commit = off"
			echo "full_page_writes = off"
		fi
	} | as_owner sh -c "cat >> '$target/postgresql.conf'"
	;;
start)
	d=$(data_dir)
	[ -f "$d/PG_VERSION" ] || { echo "pg.sh: no cluster in $dir (run init)" >&2; exit 1; }
	if as_owner "$BIN/pg_ctl" -D "$d" status >/dev/null 2>&1; then exit 0; fi
	as_owner "$BIN/pg_ctl" -D "$d" -l "$d/server.log" -w -t 60 start >/dev/null || {
		tail -n 20 "$d/server.log" >&2; exit 1; }
	;;
stop)
	d=$(data_dir)
	[ -n "$d" ] && [ -f "$d/PG_VERSION" ] || exit 0
	as_owner "$BIN/pg_ctl" -D "$d" -m fast -w status >/dev/null 2>&1 || exit 0
	as_owner "$BIN/pg_ctl" -D "$d" -m fast -w stop >/dev/null
	;;
url)
	echo "postgresql:///${3:-dropship}?host=$(data_dir)&port=$PORT&user=postgres"
	;;
env)
	echo "export PGHOST=$(data_dir) PGPORT=$PORT PGUSER=postgres"
	;;
bin)
	echo "$BIN"
	;;
*)
	sed -n '2,9p' "$0" >&2; exit 2
	;;
esac
