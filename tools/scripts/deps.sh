#!/bin/sh
# deps.sh GROUP - install what GROUP needs from Debian (and npm for tests).
# Idempotent and quiet when everything is present. Groups:
#   run    build and run the server
#   test   run + what the test suites drive (servers, clients, browsers)
#   bench  test + what the benchmarks run beside us
set -e
group=${1:-run}

RUN_PKGS="gcc make pkg-config libc6-dev libwebsockets-dev liblmdb-dev lmdb-utils
libmsgpack-dev libsqlite3-dev libmariadb-dev libssl-dev libjansson-dev openssl
libnats-dev libcurl4-openssl-dev"
TEST_PKGS="python3 python3-websockets python3-pytest sqlite3 mariadb-server
mariadb-client php-cli php-sqlite3 php-mysql chromium nodejs npm clang
libclang-rt-14-dev faketime tzdata nats-server haproxy"

case "$group" in
run)   pkgs="$RUN_PKGS" ;;
test|bench) pkgs="$RUN_PKGS $TEST_PKGS" ;;
*) echo "deps.sh: unknown group '$group' (run|test|bench)" >&2; exit 2 ;;
esac
# the install, man page, systemd and .deb tests (tests/integration/test_install.py,
# test_man_pages.py, test_package.py)
[ "$group" = run ] || pkgs="$pkgs scdoc systemd man-db debhelper dpkg-dev fakeroot lintian adduser git"

missing=""
for p in $pkgs; do
	# a package counts as present when dpkg says "install ok installed",
	# or (nodejs/npm) when the command is already on the machine
	case "$p" in
	nodejs) command -v node >/dev/null 2>&1 && continue ;;
	npm) command -v npm >/dev/null 2>&1 && continue ;;
	esac
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done

if [ -n "$missing" ]; then
	echo "deps: installing$missing" >&2
	SUDO=""
	[ "$(id -u)" -ne 0 ] && SUDO=sudo
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq >/dev/null
	$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# npm packages for the Node clients and the browser tests, pinned by the lock file
if [ "$group" != run ] && [ -f tests/node/package.json ]; then
	# npm ci leaves node_modules/.package-lock.json: without it (no install,
	# or an emptied or half-made node_modules) or older than the lock, reinstall
	stamp=tests/node/node_modules/.package-lock.json
	if [ ! -f "$stamp" ] || [ tests/node/package-lock.json -nt "$stamp" ]; then
		echo "deps: npm ci in tests/node" >&2
		(cd tests/node && npm ci --silent --no-audit --no-fund >/dev/null)
		touch "$stamp"
	fi
fi
exit 0
