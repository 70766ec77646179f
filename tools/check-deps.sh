#!/bin/sh
# check-deps.sh - fail if a layer includes a header from a layer above it.
#   core  <- store <- net, replay <- tools
# core may include only core; store: core, store; net: core, store, net;
# replay: core, store, replay; tools: anything.
status=0
check() {
	dir=$1; shift
	allowed="$*"
	for f in "$dir"/*.c "$dir"/*.h; do
		[ -e "$f" ] || continue
		grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" |
		while IFS= read -r line; do
			inc=$(printf '%s' "$line" | sed -E 's/.*"([^"]*)".*/\1/')
			case "$inc" in
			../*/*) layer=$(printf '%s' "$inc" | cut -d/ -f2) ;;
			*/*) layer=$(printf '%s' "$inc" | cut -d/ -f1) ;;
			*) layer=$dir ;;
			esac
			ok=0
			for a in $allowed; do [ "$a" = "$layer" ] && ok=1; done
			if [ $ok -eq 0 ]; then
				echo "check-deps: $f includes $inc ($layer is not below $dir)"
				echo x
			fi
		done
	done | grep -v '^x$' && status=1
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
check core core
check store core store
check net core store net
check replay core store replay
if [ $status -ne 0 ]; then exit 1; fi
echo "check-deps: ok"
