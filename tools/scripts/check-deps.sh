#!/bin/sh
# check-deps.sh [ROOT] - fail if the source tree under ROOT (default: this
# repository) breaks a dependency rule. docs/architecture.md draws them.
#
# Between layers: a layer (a directory) includes only headers of the layers
# below it (the Makefile draws the same diagram):
#   core <- store <- net, replay, tools;  core <- tools/cli <- replay, tools
# core: core; store: core, store; net: core, store, net; replay: core,
# store, replay, tools/cli; tools: core, store, tools, tools/cli;
# tools/cli: core, tools/cli. tests/bench/bench_main.c (changelog-bench)
# includes no header of the project at all.
#
# Inside net/ (module = file stem, its .c and .h), dependencies run one way:
#   leaves        push qcache slog tlsgen ratelimit (no other net/ header)
#   metrics       qcache
#   proto         push qcache
#   http          metrics qcache
#   session       push metrics qcache slog ratelimit
#   natsconn      (NATS connection options; a leaf)
#   natspub       natsconn slog (the NATS publisher thread)
#   edge          natsconn slog (an edge's NATS consumer thread)
#   webhook       push slog (the webhook delivery thread)
#   server        anything in net/: the one file that wires them
#   changelogd_main  server slog
# Only server.c and changelogd_main.c include server.h, and net/ holds no
# mutable static data (caches, buffers, counters belong in the structs the
# server owns); the exceptions are a signal flag (volatile sig_atomic_t) and
# the log level of slog.c, which libwebsockets' context-free log callback
# must reach.
root=${1:-$(dirname "$0")/../..}
cd "$root" || exit 2
status=0

# includes_of FILE: the quoted includes of FILE, one per line
includes_of() {
	grep -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$1" |
		sed -E 's/.*"([^"]*)".*/\1/'
}

# layer_of FILE INC: the directory (relative to the root) that INC, included
# from FILE, names
layer_of() {
	dirname "$(realpath -m --relative-to=. "$(dirname "$1")/$2")"
}

check() {
	dir=$1; shift
	allowed="$*"
	for f in "$dir"/*.c "$dir"/*.h; do
		[ -e "$f" ] || continue
		for inc in $(includes_of "$f"); do
			layer=$(layer_of "$f" "$inc")
			ok=0
			for a in $allowed; do [ "$a" = "$layer" ] && ok=1; done
			if [ $ok -eq 0 ]; then
				echo "check-deps: $f includes $inc ($layer is not below $dir)"
				status=1
			fi
		done
	done
	# system headers from libraries a layer must not use
	case $dir in
	core) bad='lmdb.h|libwebsockets.h|sqlite3.h|mysql.h|openssl/' ;;
	store) bad='libwebsockets.h|sqlite3.h|mysql.h' ;;
	net) bad='sqlite3.h|mysql.h' ;;
	replay) bad='libwebsockets.h' ;;
	*) bad='' ;;
	esac
	if [ -n "$bad" ] && grep -nE "#[[:space:]]*include[[:space:]]*<($bad)" "$dir"/*.c "$dir"/*.h 2>/dev/null; then
		echo "check-deps: $dir uses a library it may not ($bad)"
		status=1
	fi
}

# net_allowed STEM: the net/ modules STEM may include
net_allowed() {
	case $1 in
	push|qcache|slog|tlsgen|config|libver|natsconn|presence|ratelimit) echo "" ;;
	tlsreload) echo "slog" ;;
	natspub|edge|natssvc) echo "natsconn slog" ;;
	edgefwd) echo "edge natsconn slog" ;;
	webhook) echo "push slog" ;;
	metrics) echo "qcache" ;;
	proto) echo "push qcache" ;;
	http) echo "metrics qcache" ;;
	api) echo "proto push qcache websess metrics ratelimit" ;;
	websess) echo "" ;;
	session) echo "push metrics qcache slog ratelimit" ;;
	changelogd_main) echo "server slog config libver tlsreload" ;;
	server) echo "*" ;;
	*) echo "?" ;;
	esac
}

check_net() {
	for f in net/*.c net/*.h; do
		[ -e "$f" ] || continue
		base=$(basename "$f")
		stem=${base%.*}
		allowed=$(net_allowed "$stem")
		if [ "$allowed" = "?" ]; then
			echo "check-deps: $f is a net/ module without a rule (add it to net_allowed in $0)"
			status=1
			continue
		fi
		for inc in $(includes_of "$f"); do
			case "$inc" in */*) continue ;; esac      # other layers: checked above
			dep=${inc%.h}
			[ "$dep" = "$stem" ] && continue
			if [ "$dep" = server ] && [ "$base" != server.c ] && [ "$base" != changelogd_main.c ]; then
				echo "check-deps: $f includes server.h (only server.c wires the modules)"
				status=1
				continue
			fi
			[ "$allowed" = "*" ] && continue
			ok=0
			for a in $allowed; do [ "$a" = "$dep" ] && ok=1; done
			if [ $ok -eq 0 ]; then
				echo "check-deps: $f includes $inc (net/$stem may use only: ${allowed:-no other net/ module})"
				status=1
			fi
		done
	done
	# mutable static data: a static that is not a function and not const
	if grep -nE '^[[:space:]]*static[[:space:]]' net/*.c net/*.h |
		grep -vE '\(|[[:space:]]const[[:space:]]|static[[:space:]]+volatile[[:space:]]+sig_atomic_t[[:space:]]' |
		grep -vE '^net/slog\.c:[0-9]+:static int slog_level_max = ' |
		sed 's/^/check-deps: mutable static data in net\/ (put it in a struct): /' | grep .; then
		status=1
	fi
}

check core core
check store core store
check net core store net
check replay core store replay tools/cli
check tools core store tools tools/cli
check tools/cli core tools/cli
if [ -e tests/bench/bench_main.c ] && [ -n "$(includes_of tests/bench/bench_main.c)" ]; then
	echo "check-deps: tests/bench/bench_main.c includes a project header (it stands alone)"
	status=1
fi
check_net
if [ $status -ne 0 ]; then exit 1; fi
echo "check-deps: ok"
