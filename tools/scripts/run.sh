#!/bin/sh
# run.sh - start changelogd in the foreground for `make run`.
#   CHANGELOGD_DATA    data directory (default ./data)
#   CHANGELOGD_LISTEN  HOST:PORT (default 127.0.0.1:8443)
#   CHANGELOGD_ARGS    extra flags for changelogd (e.g. "--plain")
# Prints the URLs and an admin token: on first start the server makes the
# first admin and saves its token in $DATA/admin-token (mode 0600); later
# starts read it from there. See docs/operations.md.
set -e
cd "$(dirname "$0")/../.."
BIN=${CL_BIN:-$PWD/bin}
DATA=${CHANGELOGD_DATA:-./data}
LISTEN=${CHANGELOGD_LISTEN:-127.0.0.1:8443}
PORT=${LISTEN##*:}
HOST=${LISTEN%:*}
case "$HOST" in
""|0.0.0.0|127.0.0.1|localhost|"[::]"|"[::1]") SHOWN=localhost ;;
*) SHOWN=$HOST ;;
esac
SCHEME=https; WS=wss
case " ${CHANGELOGD_ARGS:-} " in *" --plain "*) SCHEME=http; WS=ws ;; esac

if [ ! -x "$BIN/changelogd" ]; then
	echo "run.sh: $BIN/changelogd not built (run make)" >&2
	exit 1
fi

token_file="$DATA/admin-token"
if [ ! -e "$DATA/data.mdb" ] && [ -x "$BIN/changelog-admin" ]; then
	# first start: make the log and the first admin now, so the URL below
	# can carry the token; the server adds its self-signed certificate
	echo "first start: creating $DATA"
	TOKEN=$("$BIN/changelog-admin" init --data "$DATA")
	(umask 077; printf '%s\n' "$TOKEN" > "$token_file")
fi
if [ -s "$token_file" ]; then
	TOKEN=$(head -n 1 "$token_file")
	echo "admin token: $TOKEN (from $token_file)"
	echo "web UI:    $SCHEME://$SHOWN:$PORT/#token=$TOKEN"
else
	TOKEN="<token>"
	if [ -d "$DATA" ] && [ -n "$(ls -A "$DATA" 2>/dev/null)" ]; then
		echo "run.sh: no $token_file; issue a token with changelog-admin" >&2
	else
		echo "first start: the server prints the admin token below"
	fi
	echo "web UI:    $SCHEME://$SHOWN:$PORT/#token=<token>"
fi
echo "websocket: $WS://$SHOWN:$PORT/ws/$TOKEN"
echo "data:      $DATA   (stop with Ctrl-C)"
# shellcheck disable=SC2086
exec "$BIN/changelogd" --data "$DATA" --listen "$LISTEN" ${CHANGELOGD_ARGS:-}
