#!/bin/sh
# run.sh - run every benchmark: first each program in $CL_BENCH (default
# build/release/bench: store, core, replay), then the server cases side by
# side with their peers (tests/bench/peers):
#
#   fan-out  changelogd vs the Node `ws` broadcast peer and NATS's WebSocket
#            listener (nats-server, if installed): 1 writer (32 in flight)
#            -> 1,000 subscribers; deliveries/s, p99, and each server's own
#            CPU and syscalls (perf stat on its pid) per delivery
#   latency  100 writes/s to the same subscribers, the server pinned to cpu 0
#            and the client to cpu 1 (taskset); goal: one fsync's p99 + 2 ms
#   memory   10,000 idle wss subscribers on each: server RSS per connection
#            and in all, and the kernel's TCP memory (/proc/net/sockstat)
#   writes   changelogd, 64 closed-loop writers, acked (fsync'd) events/s vs
#            MariaDB one INSERT per request and SQLite FULL one per command
#   reads    getChangelogEntries over 1,000 entries, 8 connections x 4 in
#            flight vs the same page from MariaDB per request, JSON-encoded
#   attack   a bystander's ping p99 while one member's token does the worst
#            the default limits allow (tests/bench/attack.py), and the
#            server's peak RSS meanwhile
#   cluster  1,000 subscribers on one node vs 500 on each of two edges behind
#            a 3-node NATS JetStream cluster: server CPU per delivery on each
#            node, write->delivered through an edge (tests/bench/cluster_bench.py)
#
# prints ONE table with ratios (tests/bench/report.py) and writes the list
# of {name, unit, ours, peer, ratio, goal} to $CL_BENCH_JSON (default
# build/bench.json). Bounded: each server case runs $CL_BENCH_SECS seconds
# (default 10); the whole run takes ~4-8 min here. CL_BENCH_SERVE=0 skips
# the server cases. Everything runs on loopback, in temp dirs under
# $CL_BENCH_TMP (default /var/tmp: a real disk), removed at the end; every
# process started here is stopped by its pid.
# Exits non-zero if any program failed or a subscriber saw a gap.
dir=${CL_BENCH:-build/release/bench}
out=${CL_BENCH_JSON:-build/bench.json}
repo=$(cd "$(dirname "$0")/../.." && pwd)
bin=${CL_BIN:-$repo/bin}
secs=${CL_BENCH_SECS:-10}
tmpbase=${CL_BENCH_TMP:-/var/tmp}
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

if [ "${CL_BENCH_SERVE:-1}" = 0 ]; then
	python3 "$repo/tests/bench/report.py" "$out" || status=1
	echo "results: $out"
	exit $status
fi

# ---- server cases ------------------------------------------------------
work=$(mktemp -d "$tmpbase/clbench.XXXXXX") || exit 1
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null; done
	for p in $pids; do
		i=0
		while kill -0 "$p" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
		kill -9 "$p" 2>/dev/null
	done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
bench="$bin/changelog-bench"
mkdir -p "$work/peers" "$work/res"

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_cl NAME: changelogd on a fresh data dir; sets cl_pid cl_port cl_token cl_data
start_cl() {
	cl_data="$work/$1"
	cl_port=$(free_port)
	"$bin/changelogd" --data "$cl_data" --listen "127.0.0.1:$cl_port" --no-web \
		--rate 1000000 --burst 1000000 --user-rate 1000000 --user-burst 1000000 \
		--max-conns 20000 \
		>"$work/$1.out" 2>"$work/$1.log" &
	cl_pid=$!
	pids="$pids $cl_pid"
	i=0
	until [ -s "$cl_data/admin-token" ] && \
	      curl -skf "https://127.0.0.1:$cl_port/healthz" >/dev/null 2>&1; do
		sleep 0.1; i=$((i + 1))
		if [ $i -gt 150 ] || ! kill -0 "$cl_pid" 2>/dev/null; then
			echo "!! changelogd did not start:"; cat "$work/$1.log"; return 1
		fi
	done
	cl_token=$(cat "$cl_data/admin-token")
}

stop_pid() {
	kill "$1" 2>/dev/null
	i=0
	while kill -0 "$1" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
}

# case NAME ARGS...: run the bench client, its JSON into res/NAME.json
# ($pin: a command prefix for the client, e.g. taskset)
pin=""
case_run() {
	name=$1; shift
	echo "-- $name (load average $(cut -d' ' -f1-3 /proc/loadavg))"
	$pin "$bench" --json "$@" >"$work/res/$name.json" || { echo "!! $name failed (rc $?)"; status=1; }
	echo "$name: load average after $(cut -d' ' -f1-3 /proc/loadavg)" >>"$work/loads.txt"
}

# case_pinned NAME PID ARGS...: as case_run with every thread of server PID
# on cpu 0 and the client on cpu 1, so latency shows the server and not
# the two fighting for one core; the server is unpinned afterwards
case_pinned() {
	name=$1; ppid=$2; shift 2
	if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ] &&
	   taskset -a -p -c 0 "$ppid" >/dev/null 2>&1; then
		pin="taskset -c 1"
		case_run "$name" "$@"
		pin=""
		taskset -a -p -c "0-$(($(nproc) - 1))" "$ppid" >/dev/null 2>&1
	else
		case_run "$name" "$@"
	fi
}

# perf stat counts each server's syscalls if the tracepoints are readable
perf_arg=""
if command -v perf >/dev/null && perf stat -e raw_syscalls:sys_enter -- true >/dev/null 2>&1; then
	perf_arg="--perf-syscalls"
fi

# the C peers (not part of a layer: built here)
seed="$work/peers/seed_write_bench"
cc -std=c11 -D_GNU_SOURCE -O2 -o "$seed" "$repo/tests/bench/peers/seed_write_bench.c" \
	$(pkg-config --cflags --libs sqlite3 libmariadb jansson) -lpthread || {
	echo "!! cannot build seed_write_bench"; exit 1; }

echo "== server cases (${secs}s each)"
start_cl fan || exit 1
cert="$cl_data/tls/cert.pem"; key="$cl_data/tls/key.pem"

# one fsync on this disk, p50/p99 (the latency goal is its p99 + 2 ms)
python3 - "$work/fsync.probe" >"$work/res/fsync.json" <<'PY' || status=1
import json, os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o600)
t = []
for i in range(300):
    os.pwrite(fd, b"x" * 512, (i % 8) * 4096)
    a = time.monotonic()
    os.fdatasync(fd)
    t.append((time.monotonic() - a) * 1e6)
os.close(fd)
os.unlink(sys.argv[1])
t.sort()
print(json.dumps({"n": len(t), "p50_us": t[len(t) // 2], "p99_us": t[int(len(t) * 0.99)]}))
PY

# fan-out: ours, then the Node ws peer; the 1,000 subscribers are split over
# two client processes (one saturates a core before either server does)
case_run fanout_ours --url "wss://127.0.0.1:$cl_port" --token "$cl_token" \
	--subscribers 1000 --writers 1 --depth 32 --duration "$secs" --procs 2 \
	--server-pid "$cl_pid" $perf_arg
# latency at a steady 100 writes/s to the same 1,000 subscribers
case_pinned latency_ours "$cl_pid" --url "wss://127.0.0.1:$cl_port" --token "$cl_token" \
	--subscribers 1000 --writers 1 --depth 32 --rate 100 --duration "$secs" --procs 2 \
	--server-pid "$cl_pid" $perf_arg
node_port=$(free_port)
node "$repo/tests/bench/peers/ws_broadcast_peer.js" "$node_port" "$cert" "$key" \
	>"$work/node.out" 2>&1 &
node_pid=$!
pids="$pids $node_pid"
i=0
until grep -q ready "$work/node.out" 2>/dev/null; do
	sleep 0.1; i=$((i + 1))
	[ $i -gt 100 ] && { echo "!! node peer did not start"; cat "$work/node.out"; break; }
done
case_run fanout_peer --url "wss://127.0.0.1:$node_port" --token peer \
	--subscribers 1000 --writers 1 --depth 32 --duration "$secs" --procs 2 \
	--server-pid "$node_pid" $perf_arg
case_pinned latency_peer "$node_pid" --url "wss://127.0.0.1:$node_port" --token peer \
	--subscribers 1000 --writers 1 --depth 32 --rate 100 --duration "$secs" --procs 2 \
	--server-pid "$node_pid" $perf_arg
# memory: 10,000 idle subscribers, RSS read once they are all connected and
# again 2 s later (settled); each server has just run its fan-out case
case_run idle_peer --url "wss://127.0.0.1:$node_port" --token peer \
	--subscribers 10000 --writers 0 --duration 2 --procs 2 --server-pid "$node_pid"
stop_pid "$node_pid"

# the second fan-out peer: NATS's own WebSocket listener (TLS, the same
# certificate), driven with its text protocol (changelog-bench --nats)
if command -v nats-server >/dev/null; then
	nats_port=$(free_port)
	cat >"$work/nats.conf" <<EOF
listen: "127.0.0.1:$(free_port)"
websocket {
  listen: "127.0.0.1:$nats_port"
  tls { cert_file: "$cert", key_file: "$key" }
  compression: false
}
write_deadline: "30s"
EOF
	nats-server -c "$work/nats.conf" >"$work/nats.out" 2>&1 &
	nats_pid=$!
	pids="$pids $nats_pid"
	i=0
	until grep -q "Server is ready" "$work/nats.out" 2>/dev/null; do
		sleep 0.1; i=$((i + 1))
		[ $i -gt 100 ] && { echo "!! nats-server did not start"; cat "$work/nats.out"; break; }
	done
	case_run fanout_nats --nats --url "wss://127.0.0.1:$nats_port" --token nats \
		--subscribers 1000 --writers 1 --depth 32 --duration "$secs" --procs 2 \
		--server-pid "$nats_pid" $perf_arg
	case_pinned latency_nats "$nats_pid" --nats --url "wss://127.0.0.1:$nats_port" \
		--token nats --subscribers 1000 --writers 1 --depth 32 --rate 100 \
		--duration "$secs" --procs 2 --server-pid "$nats_pid" $perf_arg
	case_run idle_nats --nats --url "wss://127.0.0.1:$nats_port" --token nats \
		--subscribers 10000 --writers 0 --duration 2 --procs 2 --server-pid "$nats_pid"
	stop_pid "$nats_pid"
else
	echo "-- no nats-server: the NATS peer cases are skipped"
fi
case_run idle_ours --url "wss://127.0.0.1:$cl_port" --token "$cl_token" \
	--subscribers 10000 --writers 0 --duration 2 --procs 2 --server-pid "$cl_pid"

# writes: 64 closed-loop writers on the same server, no subscribers (the
# peers' case), then 100
case_run writes_ours --url "wss://127.0.0.1:$cl_port" --token "$cl_token" \
	--writers 64 --duration "$secs" --server-pid "$cl_pid"
case_run writes100_ours --url "wss://127.0.0.1:$cl_port" --token "$cl_token" \
	--writers 100 --duration "$secs" --server-pid "$cl_pid" $perf_arg
stop_pid "$cl_pid"

echo "-- writes_sqlite (load average $(cut -d' ' -f1-3 /proc/loadavg))"
"$seed" sqlite "$work/seed.sqlite" 64 "$secs" >"$work/res/writes_sqlite.json" || status=1

# MariaDB: a throwaway server on a unix socket, durable commits
my="$work/mariadb"
mkdir -p "$my/data"
if mariadb-install-db --no-defaults --user=root --datadir="$my/data" \
	--auth-root-authentication-method=normal --skip-test-db >"$my/install.log" 2>&1; then
	mariadbd --no-defaults --user=root --datadir="$my/data" --socket="$my/sock" \
		--skip-networking --pid-file="$my/pid" --log-error="$my/err.log" \
		--innodb-buffer-pool-size=256M --innodb-flush-log-at-trx-commit=1 \
		--skip-log-bin --max-connections=300 &
	my_pid=$!
	pids="$pids $my_pid"
	i=0
	until mariadb-admin --no-defaults -S "$my/sock" -uroot ping >/dev/null 2>&1; do
		sleep 0.1; i=$((i + 1)); [ $i -gt 300 ] && break
	done
	echo "-- writes_mariadb (load average $(cut -d' ' -f1-3 /proc/loadavg))"
	"$seed" mariadb "$my/sock" 64 "$secs" >"$work/res/writes_mariadb.json" || status=1
	echo "-- reads_mariadb (load average $(cut -d' ' -f1-3 /proc/loadavg))"
	"$seed" mariadb-read "$my/sock" 8 "$secs" >"$work/res/reads_mariadb.json" || status=1
	stop_pid "$my_pid"
else
	echo "!! mariadb-install-db failed"; cat "$my/install.log"; status=1
fi

# reads: a fresh server holding 1,000 entries
start_cl reads || exit 1
echo "-- reads prefill (1,000 entries)"
"$bench" --url "wss://127.0.0.1:$cl_port" --token "$cl_token" --writers 50 \
	--max-writes 1000 --duration 120 >/dev/null 2>"$work/prefill.log" || {
	cat "$work/prefill.log"; status=1; }
case_run reads_ours --url "wss://127.0.0.1:$cl_port" --token "$cl_token" \
	--writers 0 --readers 8 --depth 4 --duration "$secs" --server-pid "$cl_pid" $perf_arg
stop_pid "$cl_pid"

# attack: one member's token doing the worst the default limits allow while
# a bystander pings (tests/bench/attack.py); seeded with 500 entries of
# 32 KiB on a server with raised rates, then restarted on the same data with
# the default limits and --max-memory 64M (Debian's python3: websockets)
start_cl attack || exit 1
echo "-- attack seed (500 entries of 32 KiB)"
toks=$(/usr/bin/python3 "$repo/tests/bench/attack.py" seed --url "wss://127.0.0.1:$cl_port" \
	--token "$cl_token" 2>"$work/attack-seed.log") || { cat "$work/attack-seed.log"; status=1; }
stop_pid "$cl_pid"
"$bin/changelogd" --data "$cl_data" --listen "127.0.0.1:$cl_port" --no-web --max-memory 64M \
	>>"$work/attack.out" 2>>"$work/attack.log" &
cl_pid=$!
pids="$pids $cl_pid"
i=0
until curl -skf "https://127.0.0.1:$cl_port/healthz" >/dev/null 2>&1; do
	sleep 0.1; i=$((i + 1)); [ $i -gt 150 ] && break
done
tok() { echo "$toks" | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
echo "-- attack_ours (load average $(cut -d' ' -f1-3 /proc/loadavg))"
/usr/bin/python3 "$repo/tests/bench/attack.py" attack --url "wss://127.0.0.1:$cl_port" \
	--token "$(tok mallory)" --bystander-token "$(tok bob)" --secs "$secs" \
	--server-pid "$cl_pid" >"$work/res/attack_ours.json" || { echo "!! attack failed"; status=1; }
stop_pid "$cl_pid"

# the cluster: 1,000 subscribers on one node vs 500 on each of two edges fed
# through a 3-node NATS JetStream cluster (tests/bench/cluster_bench.py: its
# rows go straight into $out)
echo "-- cluster (load average $(cut -d' ' -f1-3 /proc/loadavg))"
CL_BIN="$bin" /usr/bin/python3 "$repo/tests/bench/cluster_bench.py" --json "$out" \
	--secs "$secs" --dir "$work/cluster" >"$work/res/cluster.json" 2>"$work/cluster.log" || {
	echo "!! cluster failed"; tail -20 "$work/cluster.log"; status=1; }

for f in "$work"/res/*.json; do
	echo "$(basename "$f" .json): $(cat "$f")"
done > "$(dirname "$out")/bench-raw.txt"
cat "$work/loads.txt" >> "$(dirname "$out")/bench-raw.txt" 2>/dev/null
python3 "$repo/tests/bench/report.py" "$out" "$work/res" || status=1
echo "results: $out (raw client output: $(dirname "$out")/bench-raw.txt)"
exit $status
