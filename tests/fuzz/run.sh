#!/bin/sh
# tests/fuzz/run.sh - run libFuzzer targets (built by `make fuzz-run` into
# $FUZZ_BIN) for $FUZZ_SECONDS each, one after the other.
#
#   tests/fuzz/run.sh [name...]      default: every tests/fuzz/fuzz_*.c
#
# The repository corpus tests/fuzz/corpus/<name> is read, never written: new
# inputs go to a scratch dir build/fuzz/work/<name>/corpus (kept for a later
# run; `-merge=1` it into the repo by hand if it is worth keeping). A crash,
# leak, timeout or OOM is copied to tests/fuzz/corpus/<name>/regress-<hash>,
# where the standalone replay in `make unit` keeps failing on it until fixed,
# and the run exits 1. Prints one summary line per target.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${FUZZ_BIN:-$root/build/fuzz}
secs=${FUZZ_SECONDS:-60}
work=$root/build/fuzz/work

if [ $# -eq 0 ]; then
	set -- $(cd "$here" && ls fuzz_*.c | sed 's/^fuzz_//; s/\.c$//')
fi

status=0
summary=""
for name in "$@"; do
	exe=$bin/fuzz_$name
	corpus=$here/corpus/$name
	scratch=$work/$name/corpus
	art=$work/$name/artifacts
	log=$work/$name/fuzz.log
	if [ ! -x "$exe" ]; then
		echo "!! $exe missing (make fuzz-build)"; status=1; continue
	fi
	mkdir -p "$scratch" "$art" "$corpus"
	rm -f "$art"/*
	echo "== fuzz_$name for ${secs}s (log $log)"
	"$exe" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$art/" \
		"$scratch" "$corpus" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -n 1 | cut -d' ' -f2)
	units=$(ls "$scratch" | wc -l)
	found=0
	for f in "$art"/*; do
		[ -f "$f" ] || continue
		h=$(sha1sum "$f" | cut -c1-16)
		cp "$f" "$corpus/regress-$h"
		echo "!! fuzz_$name: $(basename "$f") -> tests/fuzz/corpus/$name/regress-$h"
		found=$((found + 1))
	done
	if [ "$rc" -ne 0 ] || [ "$found" -ne 0 ]; then
		status=1
		grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$log" | head -n 5
		line="fuzz_$name: FAILED (exit $rc, $found saved)"
	else
		line="fuzz_$name: ok"
	fi
	line="$line, ${execs:-?} execs, cov ${cov:-?}, $units scratch inputs"
	echo "$line"
	summary="$summary$line
"
done
echo "== fuzz summary (${secs}s each)"
printf '%s' "$summary"
exit $status
