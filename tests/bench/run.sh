#!/bin/sh
# run.sh - run every benchmark program in $CL_BENCH (default
# build/release/bench), print their tables, and collect their results in
# one JSON list ($CL_BENCH_JSON, default build/bench.json).
# Each program takes --json FILE and appends its objects to the list.
# Exits non-zero if any program failed.
dir=${CL_BENCH:-build/release/bench}
out=${CL_BENCH_JSON:-build/bench.json}
mkdir -p "$(dirname "$out")"
echo '[]' > "$out"
status=0
found=0
for b in "$dir"/*_bench; do
	[ -x "$b" ] || continue
	found=1
	echo "== $(basename "$b")"
	"$b" --json "$out" || { echo "!! $(basename "$b") failed"; status=1; }
done
[ "$found" -eq 1 ] || { echo "run.sh: no *_bench programs in $dir" >&2; exit 1; }
echo "results: $out"
exit $status
