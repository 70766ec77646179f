"""The Debian package, as one test: dpkg-buildpackage -us -uc -b builds the
.deb from a copy of this tree, lintian finds no error, dpkg -i installs it
(the changelogd system user, the unit enabled but nothing started inside
this container, the config as a conffile), the installed unit verifies,
and the installed /usr/sbin/changelogd, run as the changelogd user against
a temporary data directory, serves its web UI and a websocket. The package
is purged at the end."""
import os
import pwd
import shutil
import subprocess
import tempfile

import pytest

from conftest import REPO, free_port
from deploy_util import create_and_list, wait_for_web_ui
from test_version import release


def sh(*cmd, timeout=300, **kw):
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, **kw)


def copy_tree(dst):
    """The files of this checkout (tracked and new, not ignored ones)."""
    r = sh("git", "-C", REPO, "ls-files", "-co", "--exclude-standard", "-z")
    assert r.returncode == 0, r.stderr
    for rel in filter(None, r.stdout.split("\0")):
        src = os.path.join(REPO, rel)
        if os.path.isfile(src):
            os.makedirs(os.path.join(dst, os.path.dirname(rel)), exist_ok=True)
            shutil.copy2(src, os.path.join(dst, rel))


def running_as(uid):
    """pids of changelogd processes owned by uid."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/comm" % pid) as f:
                comm = f.read().strip()
            if comm == "changelogd" and os.stat("/proc/" + pid).st_uid == uid:
                out.append(pid)
        except OSError:
            pass
    return out


def test_deb_builds_installs_and_runs(tmpdir_path):
    if os.geteuid() != 0:
        pytest.skip("dpkg -i needs root (CI and make test run as root)")
    if sh("dpkg-query", "-W", "-f=${Status}", "changelogd").stdout.startswith("install ok"):
        pytest.skip("a changelogd package is installed here; not replacing it")
    src = os.path.join(tmpdir_path, "src")
    copy_tree(src)
    r = sh("dpkg-buildpackage", "-us", "-uc", "-b", "-j2", cwd=src)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    deb = os.path.join(tmpdir_path, "changelogd_%s_%s.deb" % (
        release(), sh("dpkg", "--print-architecture").stdout.strip()))
    assert os.path.exists(deb), os.listdir(tmpdir_path)
    r = sh("lintian", "--fail-on", "error", deb)
    assert r.returncode == 0 and "\nE: " not in "\n" + r.stdout, r.stdout + r.stderr

    r = sh("dpkg", "-i", deb)
    try:
        assert r.returncode == 0, r.stdout + r.stderr
        user = pwd.getpwnam("changelogd")
        assert user.pw_uid < 1000 and user.pw_shell.endswith("nologin")
        assert os.path.exists("/lib/systemd/system/changelogd.service")
        assert "/etc/changelogd/changelogd.conf" in sh(
            "dpkg-query", "-W", "-f=${Conffiles}", "changelogd").stdout
        assert running_as(user.pw_uid) == []       # nothing started in a container
        r = sh("systemd-analyze", "verify", "/lib/systemd/system/changelogd.service")
        assert r.returncode == 0 and r.stderr == "", r
        r = sh("/usr/sbin/changelogd", "--version")
        assert r.stdout.splitlines()[0] == "changelogd " + release()
        r = sh("/usr/sbin/changelogd", "--check-config")   # the installed default file
        assert r.returncode == 0 and "/etc/changelogd/changelogd.conf: ok" in r.stdout, r

        # the installed server as its own user, on a temporary data directory
        top = tempfile.mkdtemp(prefix="clg-deb-")
        try:
            os.chmod(top, 0o755)
            data = os.path.join(top, "data")
            os.mkdir(data, 0o700)
            os.chown(data, user.pw_uid, user.pw_gid)
            port, log = free_port(), os.path.join(tmpdir_path, "deb.log")
            with open(log, "wb") as errf:
                p = subprocess.Popen(["setpriv", "--reuid", "changelogd", "--regid",
                                      "changelogd", "--clear-groups", "/usr/sbin/changelogd",
                                      "--data", data, "--listen", "127.0.0.1:%d" % port],
                                     cwd="/", stdout=subprocess.DEVNULL, stderr=errf)
            try:
                wait_for_web_ui(p, port, log, "/usr/share/changelogd/web")
                token = open(os.path.join(data, "admin-token")).read().strip()
                assert os.stat(os.path.join(data, "data.mdb")).st_uid == user.pw_uid
                assert create_and_list(port, token, "from the deb", "fix") == ["from the deb"]
            finally:
                p.terminate()
                assert p.wait(timeout=15) == 0
            r = sh("/usr/bin/changelog-audit", "verify", "--data", data)
            assert r.returncode == 0 and r.stdout.startswith("ok"), r
        finally:
            shutil.rmtree(top, ignore_errors=True)
    finally:
        r = sh("dpkg", "--purge", "changelogd")
        assert r.returncode == 0, r.stdout + r.stderr
    assert not os.path.exists("/usr/sbin/changelogd")
    assert not os.path.exists("/etc/changelogd/changelogd.conf")
