#!/bin/sh
# Include-graph lint. A module is a folder under internal/; a
# `#include "y/..."` in one of module x's .c or .h files is an edge x -> y
# (includes of a file in the module's own folder do not count).
#   .ci/include-graph.sh [DIR]      DIR holds the module folders (default internal)
# Prints the graph, one `module: dep dep ...` a line, then exits 1 naming
# every cycle (`cycle: server -> http -> server`) and every module other than
# server that includes server/server.h: dependencies point one way, and
# nothing below the server sees its struct.
# Each cycle starts at its module with the most dependencies (the highest
# one, usually), so the cycles through one module read alike.
set -eu
DIR=${1:-internal}
[ -d "$DIR" ] || { echo "include-graph: no folder $DIR" >&2; exit 2; }
MODS=""
for d in "$DIR"/*/; do
	[ -d "$d" ] && MODS="$MODS $(basename "$d")"
done
FILES=$(find "$DIR" -mindepth 2 -maxdepth 2 -type f \( -name '*.c' -o -name '*.h' \) | sort)

# shellcheck disable=SC2086 # module paths have no blanks
exec awk -v mods="$MODS" '
function sort_words(a, n,   i, j, t) {
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
}
# Higher in the cycle order: more dependencies, then the name.
function before(x, y) {
	return deg[x] != deg[y] ? deg[x] > deg[y] : x < y
}
# Every elementary cycle through `start` whose other modules come after it
# in the order, so that each cycle is found once.
function walk(v, d,   i, k, w, c) {
	for (k = 1; k <= deg[v]; k++) {
		w = adj[v, k]
		if (w == start) {
			c = path[1]
			for (i = 2; i <= d; i++) c = c " -> " path[i]
			cyc[++ncyc] = c " -> " start; cyclen[ncyc] = d
		} else if (rank[w] > rank[start] && !(w in onpath)) {
			onpath[w] = 1; path[d + 1] = w
			walk(w, d + 1)
			delete onpath[w]
		}
	}
}
BEGIN { nm = split(mods, M, " "); for (i = 1; i <= nm; i++) known[M[i]] = 1 }
FNR == 1 { n = split(FILENAME, p, "/"); mod = p[n - 1] }
/^[ \t]*#[ \t]*include[ \t]*"[^"\/]+\/[^"]+"/ {
	inc = $0; sub(/^[^"]*"/, "", inc); sub(/".*/, "", inc)
	dep = substr(inc, 1, index(inc, "/") - 1)
	if (inc == "server/server.h" && mod != "server")
		bad[++nbad] = FILENAME ":" FNR ": " mod " includes server/server.h"
	if (dep == mod || !(dep in known) || (mod, dep) in edge)
		next
	edge[mod, dep] = 1
	adj[mod, ++deg[mod]] = dep
}
END {
	sort_words(M, nm)
	nedges = 0
	for (i = 1; i <= nm; i++) {
		m = M[i]; line = m ":"
		for (k = 1; k <= deg[m]; k++) D[k] = adj[m, k]
		sort_words(D, deg[m])
		for (k = 1; k <= deg[m]; k++) { adj[m, k] = D[k]; line = line " " D[k] }
		nedges += deg[m]
		print line
	}
	for (i = 2; i <= nm; i++)
		for (j = i; j > 1 && before(M[j], M[j - 1]); j--) { t = M[j]; M[j] = M[j - 1]; M[j - 1] = t }
	for (i = 1; i <= nm; i++) rank[M[i]] = i
	for (i = 1; i <= nm; i++) {
		start = M[i]; path[1] = start; onpath[start] = 1
		walk(start, 1)
		delete onpath[start]
	}
	for (l = 1; l <= nm; l++)
		for (i = 1; i <= ncyc; i++)
			if (cyclen[i] == l) print "cycle: " cyc[i]
	for (i = 1; i <= nbad; i++) print bad[i]
	if (ncyc || nbad) {
		printf "include-graph: %d cycle(s), %d include(s) of server/server.h outside server\n", ncyc, nbad
		exit 1
	}
	printf "include-graph: ok (%d modules, %d edges, no cycles)\n", nm, nedges
}' /dev/null $FILES
