#!/bin/sh
# The clock check: the suites that deal with time, run again with the clock a
# year ahead and the time zone far from UTC, to prove that no test depends on
# the day it runs or on where the machine is.
#
#   tests/run-clock.sh UNIT_TEST_BINARY...     (CL_BIN: the binaries to test)
#
# libfaketime (Debian `faketime`) moves CLOCK_REALTIME of each process it is
# preloaded into; FAKETIME_DONT_FAKE_MONOTONIC keeps the monotonic clock, so
# timeouts and the event loop's timers still run at the real pace.
#   - The unit tests run whole under faketime, in two zones (UTC+14, UTC-11).
#   - The integration tests that deal with time drive the real binaries
#     through wrappers that preload faketime into every binary they start;
#     pytest itself is not faked (libfaketime 0.9.10 breaks the absolute
#     clock_nanosleep that Python's time.sleep uses).
# Before trusting the result, the check proves that the fake took effect: a
# log written by a wrapped `changelog-admin init` must be dated ~a year ahead.
# Prints "N passed, N failed" alone on its last line.
set -e
: "${CL_BIN:?CL_BIN must name the directory of the binaries}"
LIBFT=
for f in /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 \
	 /usr/lib/*/faketime/libfaketime.so.1; do
	[ -f "$f" ] && { LIBFT=$f; break; }
done
if [ -z "$LIBFT" ]; then
	echo "clock check: libfaketime is missing (Debian package faketime)" >&2
	exit 1
fi
AHEAD=+365d
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# wrappers: the same binaries, a year ahead
mkdir "$tmp/bin"
for b in "$CL_BIN"/*; do
	[ -x "$b" ] || continue
	cat >"$tmp/bin/$(basename "$b")" <<EOF
#!/bin/sh
LD_PRELOAD=$LIBFT FAKETIME=$AHEAD FAKETIME_DONT_FAKE_MONOTONIC=1 exec "$b" "\$@"
EOF
	chmod +x "$tmp/bin/$(basename "$b")"
done

passed=0; failed=0
ok() { echo "ok   $1"; passed=$((passed + 1)); }
bad() { echo "FAIL $1"; failed=$((failed + 1)); }

# 1. the fake took effect: init without CHANGELOG_FAKE_TIME stamps "now",
#    which must be 300..430 days after the real now
env -u CHANGELOG_FAKE_TIME "$tmp/bin/changelog-admin" init --data "$tmp/probe" >/dev/null 2>&1
ts=$("$CL_BIN/changelog-audit" log --data "$tmp/probe" --format jsonl |
	sed -n '1s/.*"ts_us":\([0-9]*\).*/\1/p')
real=$(date +%s)
days=$(( (ts / 1000000 - real) / 86400 ))
if [ "$days" -ge 300 ] && [ "$days" -le 430 ]; then
	ok "faketime moves the binaries' clock ($days days ahead)"
else
	bad "faketime did not move the clock (bootstrap event $days days from now)"
fi

# 2. every unit test, whole under faketime, in two zones far from UTC
for tz in Pacific/Kiritimati Pacific/Pago_Pago; do
	if TZ=$tz LD_PRELOAD=$LIBFT FAKETIME=$AHEAD FAKETIME_DONT_FAKE_MONOTONIC=1 \
		"$here/run-unit.sh" "$@" >"$tmp/unit.log" 2>&1; then
		ok "unit tests, clock $AHEAD, TZ=$tz ($(tail -n 1 "$tmp/unit.log"))"
	else
		cat "$tmp/unit.log"
		bad "unit tests, clock $AHEAD, TZ=$tz"
	fi
done

# 3. the integration tests that deal with time: timestamps in the log, the
#    audit filters and outputs, replayed time columns, the wire's times
cd "$here/integration"
if TZ=Pacific/Kiritimati CL_BIN="$tmp/bin" /usr/bin/python3 -m pytest -q -p no:cacheprovider \
	test_audit_log.py test_audit_verify.py test_admin_cli.py test_server_protocol.py \
	test_replay_sqlite.py >"$tmp/it.log" 2>&1; then
	ok "integration tests, clock $AHEAD, TZ=Pacific/Kiritimati ($(tail -n 1 "$tmp/it.log"))"
else
	cat "$tmp/it.log"
	bad "integration tests, clock $AHEAD, TZ=Pacific/Kiritimati"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
