"""mariadb_util.py - a throwaway MariaDB server for tests and benchmarks.

MariaDB.start() makes a temporary data directory, initialises it with
mariadb-install-db (root may log in with a password-less `normal` account,
no test database), and runs mariadbd as root on a unix socket with
networking off and --no-defaults, so nothing in /etc/mysql and nothing on
the machine's ports is touched. stop() shuts it down and removes the
directory (unless KEEP_TMP is set).

Used as a session-scoped pytest fixture (`mariadb` below, via
`pytest_plugins` or a direct import) and from the shell by the benchmarks:

    python3 tests/integration/mariadb_util.py start DIR   # prints the socket path
    python3 tests/integration/mariadb_util.py stop DIR

The server binaries come from Debian's mariadb-server (tools/scripts/deps.sh test):
a missing server is an error, never a skip.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

INSTALL_DB = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
MARIADBD = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
ADMIN = shutil.which("mariadb-admin") or shutil.which("mysqladmin")
CLIENT = shutil.which("mariadb") or shutil.which("mysql")


class MariaDB:
    def __init__(self, base=None):
        self.base = base or tempfile.mkdtemp(prefix="clg-mariadb-")
        self.own_base = base is None
        self.datadir = os.path.join(self.base, "data")
        self.socket = os.path.join(self.base, "sock")
        self.pidfile = os.path.join(self.base, "mariadbd.pid")
        self.errlog = os.path.join(self.base, "err.log")
        self.proc = None

    def _check_tools(self):
        missing = [n for n, p in (("mariadb-install-db", INSTALL_DB),
                                  ("mariadbd", MARIADBD if os.path.exists(MARIADBD) else None),
                                  ("mariadb-admin", ADMIN), ("mariadb", CLIENT)) if not p]
        if missing:
            raise RuntimeError("MariaDB server tools missing (%s): run tools/scripts/deps.sh test"
                               % ", ".join(missing))

    def start(self, timeout=60):
        self._check_tools()
        os.makedirs(self.datadir, exist_ok=True)
        if not os.path.exists(os.path.join(self.datadir, "mysql")):
            r = subprocess.run([INSTALL_DB, "--no-defaults", "--user=root",
                                "--datadir=" + self.datadir,
                                "--auth-root-authentication-method=normal",
                                "--skip-test-db"],
                               capture_output=True, text=True, timeout=timeout)
            if r.returncode != 0:
                raise RuntimeError("mariadb-install-db failed:\n" + r.stdout + r.stderr)
        self.proc = subprocess.Popen(
            [MARIADBD, "--no-defaults", "--user=root", "--datadir=" + self.datadir,
             "--socket=" + self.socket, "--skip-networking", "--pid-file=" + self.pidfile,
             "--log-error=" + self.errlog, "--innodb-buffer-pool-size=256M",
             "--innodb-log-file-size=128M", "--skip-log-bin",
             "--innodb-flush-log-at-trx-commit=1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("mariadbd exited %s:\n%s" % (self.proc.returncode,
                                                                self.log()))
            r = subprocess.run([ADMIN, "--no-defaults", "-S", self.socket, "-uroot", "ping"],
                               capture_output=True)
            if r.returncode == 0:
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("mariadbd did not answer a ping in %ds:\n%s" % (timeout, self.log()))

    def log(self):
        try:
            with open(self.errlog, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def sql(self, statements, db=None, user="root", password=None, check=True):
        """Run SQL text with the mariadb client; returns stdout (tab-separated, no headers)."""
        cmd = [CLIENT, "--no-defaults", "-S", self.socket, "-u" + user, "-N", "-B"]
        if password is not None:
            cmd.append("-p" + password)
        if db:
            cmd.append(db)
        r = subprocess.run(cmd, input=statements, capture_output=True, text=True, timeout=60)
        if check and r.returncode != 0:
            raise RuntimeError("mariadb: %s\n%s" % (statements[:200], r.stderr))
        return r.stdout

    def create_db(self, name):
        self.sql("DROP DATABASE IF EXISTS `%s`; CREATE DATABASE `%s` "
                 "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;" % (name, name))
        return name

    def url(self, db, user="root", password=None):
        auth = user if password is None else "%s:%s" % (user, password)
        return "mysql://%s@localhost/%s?socket=%s" % (auth, db, self.socket)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            subprocess.run([ADMIN, "--no-defaults", "-S", self.socket, "-uroot", "shutdown"],
                           capture_output=True, timeout=60)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self.own_base and not os.environ.get("KEEP_TMP"):
            shutil.rmtree(self.base, ignore_errors=True)


try:
    import pytest

    @pytest.fixture(scope="session")
    def mariadb():
        """One throwaway MariaDB server for the whole test session."""
        m = MariaDB().start()
        yield m
        m.stop()
except ImportError:  # used from the shell without pytest
    pass


def _main(argv):
    if len(argv) != 3 or argv[1] not in ("start", "stop"):
        print("usage: mariadb_util.py start|stop DIR", file=sys.stderr)
        return 2
    m = MariaDB(os.path.abspath(argv[2]))
    if argv[1] == "start":
        m.start()
        # the server must outlive this script: detach it
        print(m.socket)
        return 0
    if os.path.exists(m.socket):
        subprocess.run([ADMIN, "--no-defaults", "-S", m.socket, "-uroot", "shutdown"],
                       capture_output=True, timeout=60)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv))
