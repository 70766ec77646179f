#!/bin/sh
# Integration tests: pytest (Debian's, hence /usr/bin/python3) driving the
# real binaries in $CL_BIN over real sockets with real clients.
set -e
cd "$(dirname "$0")/integration"
if ! ls test_*.py >/dev/null 2>&1; then
	echo "no integration tests yet"
	exit 0
fi
exec /usr/bin/python3 -m pytest -q -p no:cacheprovider "$@" .
