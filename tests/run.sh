#!/bin/sh
# Runs every test executable: unit tests first, then end-to-end tests against
# a throwaway PostgreSQL cluster. Sums CUnit results into `N passed, N failed`.
# ONLY=word runs just the test executables whose name contains word.
set -u
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PGDIR=$(mktemp -d /tmp/dropship-test-pg.XXXXXX)
LOGDIR=$(mktemp -d /tmp/dropship-test-logs.XXXXXX)
cleanup() {
	sh .ci/pg.sh stop "$PGDIR" 2>/dev/null
	rm -rf "$PGDIR" "$PGDIR.tls"
}
trap cleanup EXIT INT TERM

passed=0; failed=0; broken=""
run_one() {
	bin=$1
	name=$(basename "$bin")
	case "$name" in *"${ONLY:-}"*) ;; *) return ;; esac
	log="$LOGDIR/$name.log"
	echo "== $name"
	"$bin" >"$log" 2>&1
	rc=$?
	# CUnit's own summary and the per-test lines, for the reader.
	grep -E '^(Suite|  Test|Run Summary|  *(suites|tests|asserts))|FAILED|passed|failed' "$log" | grep -v '^RESULT' | tail -n 60
	res=$(grep '^RESULT ' "$log" | tail -n 1)
	if [ -z "$res" ]; then
		echo "!! $name exited $rc without a result; last lines:"
		tail -n 30 "$log"
		failed=$((failed + 1)); broken="$broken $name"
		return
	fi
	p=$(echo "$res" | sed -n 's/.*passed=\([0-9]*\).*/\1/p')
	f=$(echo "$res" | sed -n 's/.*failed=\([0-9]*\).*/\1/p')
	passed=$((passed + p)); failed=$((failed + f))
	if [ "$f" -ne 0 ] || [ "$rc" -ne 0 ]; then
		[ "$f" -eq 0 ] && failed=$((failed + 1))
		broken="$broken $name"
		echo "!! $name failed; log tail:"; tail -n 40 "$log"
	fi
}

for t in "$BUILD"/tests/unit/test_*; do
	[ -x "$t" ] && run_one "$t"
done

if ls "$BUILD"/tests/e2e/test_* >/dev/null 2>&1; then
	sh .ci/pg.sh init "$PGDIR" --fast && sh .ci/pg.sh start "$PGDIR" || {
		echo "!! could not start the test PostgreSQL cluster"; echo "$passed passed, $((failed + 1)) failed"; exit 1; }
	export DROPSHIP_TEST_PGDIR="$PGDIR"
	export DROPSHIP_TEST_PGBIN="$(sh .ci/pg.sh bin "$PGDIR")"
	export DROPSHIP_TEST_BUILD="$ROOT/$BUILD"
	export DROPSHIP_TEST_ROOT="$ROOT"
	sh .ci/devcert.sh "$PGDIR.tls" && export DROPSHIP_TEST_TLS_DIR="$PGDIR.tls"
	for t in "$BUILD"/tests/e2e/test_*; do
		[ -x "$t" ] && run_one "$t"
	done
fi

echo
[ -n "$broken" ] && echo "failing:$broken (logs in $LOGDIR)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
