#!/bin/sh
# make fuzz: runs every libFuzzer harness of BUILD/fuzz/ for SECONDS each.
#   .ci/fuzz.sh [BUILD] [SECONDS]
# The seeds in tests/fuzz/corpus/<harness>/ are only read; what the fuzzer
# adds goes to BUILD/fuzz-corpus/<harness>/ (kept, so later runs start from
# it), a failing input to BUILD/fuzz-crashes/<harness>/, the output to
# BUILD/fuzz-logs/. tests/fuzz/<harness>.dict is used when there is one.
# Runs every harness, then exits 1 if any found a crash, a leak, a sanitizer
# report or an input slower than 10 s.
set -u
BUILD=${1:-build-fuzz}
SECS=${2:-60}
cd "$(dirname "$0")/.." || exit 1

ran=0; failed=""
for bin in "$BUILD"/fuzz/fuzz_*; do
	[ -x "$bin" ] || continue
	name=$(basename "$bin")
	seeds=tests/fuzz/corpus/$name
	if [ ! -d "$seeds" ]; then
		echo "!! $name: no seeds in $seeds/"
		failed="$failed $name"; continue
	fi
	work=$BUILD/fuzz-corpus/$name
	crashes=$BUILD/fuzz-crashes/$name
	log=$BUILD/fuzz-logs/$name.log
	mkdir -p "$work" "$crashes" "$(dirname "$log")"
	dict=""
	[ -f "tests/fuzz/$name.dict" ] && dict="-dict=tests/fuzz/$name.dict"
	echo "== $name (${SECS}s)"
	ran=$((ran + 1))
	rc=0
	# shellcheck disable=SC2086 # dict is one word or none
	"$bin" -max_total_time="$SECS" -timeout=10 -print_final_stats=1 \
		-artifact_prefix="$crashes/" $dict "$work" "$seeds" >"$log" 2>&1 || rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "!! $name exited $rc; log tail ($log):"
		tail -n 40 "$log"
		echo "!! failing input(s), replay with: $bin FILE"
		find "$crashes" -type f | sed 's/^/   /'
		failed="$failed $name"
	else
		grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1
		grep -E '^Done [0-9]+ runs' "$log" | tail -n 1
	fi
done
if [ "$ran" -eq 0 ] && [ -z "$failed" ]; then
	echo "fuzz: no harness in $BUILD/fuzz/ (make fuzz builds them)" >&2
	exit 1
fi
if [ -n "$failed" ]; then
	echo "fuzz: failed:$failed"
	exit 1
fi
echo "fuzz: $ran harness(es), no failures"
