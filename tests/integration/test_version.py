"""--version on every binary: the release (the newest debian/changelog
entry) and the libraries its code calls, as those report themselves at run
time, compared with what the same system libraries tell other programs."""
import os
import re
import sqlite3
import ssl
import subprocess

import pytest

from conftest import BIN, REPO
from deploy_util import BINARIES

WANT = {
    "changelogd": ["msgpack-c", "jansson", "LMDB", "OpenSSL", "libwebsockets", "libcurl"],
    "changelog-admin": ["msgpack-c", "jansson", "LMDB", "OpenSSL"],
    "changelog-audit": ["msgpack-c", "jansson", "LMDB", "OpenSSL"],
    "changelog-post": ["msgpack-c", "jansson", "LMDB", "OpenSSL", "libcurl"],
    "changelog-replay": ["msgpack-c", "jansson", "LMDB", "OpenSSL", "SQLite",
                         "MariaDB-Connector/C"],
    "changelog-bench": ["libwebsockets", "OpenSSL"],   # stands alone: no project code
}


def release():
    with open(os.path.join(REPO, "debian", "changelog")) as f:
        return re.match(r"changelogd \(([^)-]+)(-[^)]*)?\)", f.readline()).group(1)


def system_versions():
    lmdb = subprocess.run(["mdb_stat", "-V"], capture_output=True, text=True).stdout
    lws = subprocess.run(["pkg-config", "--modversion", "libwebsockets"],
                         capture_output=True, text=True).stdout.strip().rstrip("-")
    return {
        "SQLite": sqlite3.sqlite_version,
        "OpenSSL": ssl.OPENSSL_VERSION.split()[1],
        "LMDB": re.search(r"LMDB (\d+\.\d+\.\d+)", lmdb).group(1),
        "libwebsockets": lws,
        "libcurl": subprocess.run(["pkg-config", "--modversion", "libcurl"], capture_output=True,
                                  text=True).stdout.strip(),
    }


@pytest.mark.parametrize("binary", sorted(BINARIES))
def test_version(binary):
    r = subprocess.run([os.path.join(BIN, binary), "--version"], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 0 and r.stderr == "", r
    lines = r.stdout.splitlines()
    assert lines[0] == "%s %s" % (binary, release())
    libs = dict(l.strip().split(" ", 1) for l in lines[1:])
    assert list(libs) == WANT[binary]
    for name, ver in system_versions().items():
        if name in libs:
            assert libs[name] == ver, (name, libs[name], ver)
    for ver in libs.values():
        assert re.match(r"\d+\.\d+", ver), libs
