"""make install / make uninstall: into a DESTDIR, every file lands where
docs/operations.md says; the installed server, run from there with the
installed config file and no checkout beside it, serves the installed web
UI and answers a websocket over a real socket. The unit installed with a
real PREFIX passes `systemd-analyze verify` and its hardening scores OK in
`systemd-analyze security`. make uninstall removes what install put."""
import os
import shutil
import subprocess

import pytest

from conftest import REPO, free_port
from deploy_util import BINARIES, create_and_list, make, wait_for_web_ui

WEB = os.path.join(REPO, "web")


def files_under(root):
    out = set()
    for d, _, fs in os.walk(root):
        for f in fs:
            out.add(os.path.relpath(os.path.join(d, f), root))
    return out


def expected(prefix, sysconf="etc"):
    p = prefix.strip("/")
    want = {"%s/sbin/changelogd" % p, "%s/lib/systemd/system/changelogd.service" % p,
            "%s/changelogd/changelogd.conf" % sysconf}
    for b, sec in BINARIES.items():
        want.add("%s/share/man/man%d/%s.%d" % (p, sec, b, sec))
        if b != "changelogd":
            want.add("%s/bin/%s" % (p, b))
    for f in os.listdir(WEB):
        want.add("%s/share/changelogd/web/%s" % (p, f))
    for f in os.listdir(os.path.join(REPO, "tools", "dashboard")):
        want.add("%s/share/changelogd/dashboard/%s" % (p, f))
    return want


def test_install_into_destdir_and_run_from_there(tmpdir_path):
    dest = os.path.join(tmpdir_path, "dest")
    r = make("install", "DESTDIR=" + dest, "PREFIX=/usr/local")
    assert r.returncode == 0, r.stdout + r.stderr
    assert files_under(dest) == expected("/usr/local")
    sbin = os.path.join(dest, "usr/local/sbin/changelogd")
    assert os.access(sbin, os.X_OK)
    conf = os.path.join(dest, "etc/changelogd/changelogd.conf")
    unit = open(os.path.join(dest, "usr/local/lib/systemd/system/changelogd.service")).read()
    assert "ExecStart=/usr/local/sbin/changelogd --config /etc/changelogd/changelogd.conf" in unit

    # the installed server, from an unrelated working directory
    data, port = os.path.join(tmpdir_path, "data"), free_port()
    log = os.path.join(tmpdir_path, "installed.log")
    with open(log, "wb") as errf:
        p = subprocess.Popen([sbin, "--config", conf, "--data", data, "--listen",
                              "127.0.0.1:%d" % port], cwd=tmpdir_path,
                             stdout=subprocess.DEVNULL, stderr=errf)
    try:
        wait_for_web_ui(p, port, log, os.path.join(dest, "usr/local/share/changelogd/web"))
        token = open(os.path.join(data, "admin-token")).read().strip()
        assert create_and_list(port, token, "installed", "feature") == ["installed"]
    finally:
        p.terminate()
        assert p.wait(timeout=15) == 0

    # installing again keeps an edited config
    with open(conf, "a") as f:
        f.write("max-conns = 7\n")
    r = make("install", "DESTDIR=" + dest, "PREFIX=/usr/local")
    assert r.returncode == 0 and "keeping" in r.stdout, r.stdout
    assert open(conf).read().endswith("max-conns = 7\n")

    r = make("uninstall", "DESTDIR=" + dest, "PREFIX=/usr/local")
    assert r.returncode == 0, r.stdout + r.stderr
    assert files_under(dest) == {"etc/changelogd/changelogd.conf"}   # edited: kept
    os.unlink(conf)
    make("install", "DESTDIR=" + dest, "PREFIX=/usr/local")
    make("uninstall", "DESTDIR=" + dest, "PREFIX=/usr/local")
    assert files_under(dest) == set()                                  # unedited: gone


def test_systemd_unit_verifies(tmpdir_path):
    if not shutil.which("systemd-analyze"):
        pytest.fail("systemd-analyze missing: tools/scripts/deps.sh test installs systemd")
    prefix = os.path.join(tmpdir_path, "prefix")
    r = make("install", "PREFIX=" + prefix, "SYSCONFDIR=" + prefix + "/etc")
    assert r.returncode == 0, r.stdout + r.stderr
    unit = os.path.join(prefix, "lib/systemd/system/changelogd.service")
    text = open(unit).read()
    for line in ("StateDirectory=changelogd", "User=changelogd", "ProtectSystem=strict",
                 "NoNewPrivileges=yes", "PrivateTmp=yes", "CapabilityBoundingSet=\n",
                 "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
                 "ExecReload=/bin/kill -HUP $MAINPID", "KillSignal=SIGTERM"):
        assert line in text, line
    env = dict(os.environ, MANPATH=os.path.join(prefix, "share/man"))
    r = subprocess.run(["systemd-analyze", "verify", unit], capture_output=True, text=True,
                       env=env, timeout=60)
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--threshold=20",  # 2.0 of 10: "OK"
                        unit], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    # the check the unit runs before each start passes on the shipped config
    # (its data directory is only named, not needed, by --check-config)
    r = subprocess.run([os.path.join(prefix, "sbin/changelogd"), "--config",
                        os.path.join(prefix, "etc/changelogd/changelogd.conf"),
                        "--check-config"], capture_output=True, text=True)
    assert r.returncode == 0, r
