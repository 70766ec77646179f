#!/bin/sh
# Run every unit-test binary given, then print the summed
# "N passed, N failed" alone on the last line. Exit non-zero on any failure.
passed=0; failed=0; status=0
for t in "$@"; do
	echo "== $(basename "$t")"
	out=$("$t" 2>&1); rc=$?
	printf '%s\n' "$out"
	line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -n 1)
	if [ -z "$line" ]; then
		echo "!! $(basename "$t") exited $rc without a summary line"
		failed=$((failed + 1)); status=1; continue
	fi
	p=${line%% passed*}; f=${line#*, }; f=${f%% failed*}
	passed=$((passed + p)); failed=$((failed + f))
	[ "$rc" -ne 0 ] && status=1
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && exit $status
exit 1
