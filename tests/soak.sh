#!/bin/sh
# Soak: the crash loop of tests/integration/test_crash_loop.py with many
# rounds (SIGKILL under concurrent writers, restart, check the log, verify,
# resume a subscriber). `make soak` runs it against $CL_BIN.
#   CL_CRASH_ROUNDS  rounds (default 200)
#   CL_CRASH_SEED    seed of the kill moments (default: a new one each run,
#                    printed; the crash loop in `make test` uses a fixed one)
# Prints the totals line "crash loop: rounds=N acked=N lost=0 ..." and exits
# non-zero if any round found a lost, duplicated or misplaced command.
set -e
cd "$(dirname "$0")/integration"
: "${CL_CRASH_ROUNDS:=200}"
: "${CL_CRASH_SEED:=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}"
export CL_CRASH_ROUNDS CL_CRASH_SEED
out=$(mktemp)
trap 'rm -f "$out"' EXIT
rc=0
/usr/bin/python3 -m pytest -q -s -p no:cacheprovider test_crash_loop.py >"$out" 2>&1 || rc=$?
if [ "$rc" -ne 0 ]; then
	cat "$out"
	echo "soak: FAILED (rounds=$CL_CRASH_ROUNDS)"
	exit "$rc"
fi
grep '^crash loop: ' "$out"
line=$(grep '^crash loop: rounds=' "$out" | tail -1)
echo "soak: ok ${line#crash loop: }"
