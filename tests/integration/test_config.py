"""changelogd.conf (net/config.c): the server runs from a file alone, a flag
on the command line wins over the file, --check-config says ok or names
the line of the first error, and a bad file stops the server before it
serves. Also the shipped example file (tools/dist/changelogd.conf) checks."""
import asyncio
import os
import subprocess
import time
import urllib.request

import pytest
import websockets

from conftest import BIN, REPO, free_port, run, tls_context

CLD = os.path.join(BIN, "changelogd")


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def changelogd(*args, timeout=20):
    return subprocess.run([CLD] + list(args), capture_output=True, text=True,
                          timeout=timeout)


def start(args, log):
    errf = open(log, "ab")
    p = subprocess.Popen([CLD] + args, stdout=subprocess.DEVNULL, stderr=errf)
    errf.close()
    return p


def wait_up(proc, port, log):
    deadline = time.time() + 15
    while time.time() < deadline:
        assert proc.poll() is None, open(log).read()
        try:
            with urllib.request.urlopen("https://127.0.0.1:%d/healthz" % port,
                                        context=tls_context(), timeout=2) as r:
                return r.status
        except OSError:
            time.sleep(0.05)
    raise AssertionError("not up:\n" + open(log).read())


def stop(proc):
    proc.terminate()
    assert proc.wait(timeout=15) == 0


async def sessions_accepted(port, token, n):
    """Open n websockets; how many the server accepted (then close them)."""
    got = []
    for _ in range(n):
        try:
            got.append(await websockets.connect("wss://127.0.0.1:%d/ws/%s" % (port, token),
                                                ssl=tls_context()))
        except websockets.exceptions.InvalidStatusCode as e:
            assert e.status_code == 503
    for ws in got:
        await ws.close()
    return len(got)


def test_server_runs_from_the_file_and_flags_win(tmpdir_path):
    port = free_port()
    data = os.path.join(tmpdir_path, "data")
    conf = write(os.path.join(tmpdir_path, "c.conf"),
                 "# a comment\n\ndata = %s\nlisten=127.0.0.1:%d\n  no-web\n"
                 "max-conns 1\nnosync = false\nverbose = off\n" % (data, port))
    log = os.path.join(tmpdir_path, "log")
    p = start(["--config", conf], log)
    try:
        wait_up(p, port, log)
        token = open(os.path.join(data, "admin-token")).read().strip()
        assert run(sessions_accepted(port, token, 2)) == 1   # max-conns 1 from the file
    finally:
        stop(p)
    # the command line wins over the file
    p = start(["--config", conf, "--max-conns", "5"], log)
    try:
        wait_up(p, port, log)
        assert run(sessions_accepted(port, token, 2)) == 2
    finally:
        stop(p)
    r = changelogd("--config", conf, "--check-config")
    assert r.returncode == 0 and r.stdout.strip() == "changelogd: %s: ok" % conf, r


@pytest.mark.parametrize("lines,line_no,text", [
    (["data = /tmp/x", "colour = blue"], 2, 'unknown setting "colour"'),
    (["data = /tmp/x", "", "max-conns = lots"], 3, "--max-conns wants 1..1000000"),
    (["# c", "rate = 0"], 2, "--rate wants"),
    (["listen = nowhere:"], 1, "--listen wants HOST:PORT"),
    (["plain = maybe"], 1, 'plain takes true or false, not "maybe"'),
    (["data ="], 1, "data needs a value"),
    (["--data = /tmp/x"], 1, "without the leading --"),
    (["data = /tmp/x", "config = /etc/other.conf"], 2, 'not allowed in a config file: "config"'),
    (["check-config"], 1, "not allowed in a config file"),
    (["max-msg = 10G", "data = /tmp/x"], 1, "--max-msg wants 1K..64M"),
])
def test_check_config_names_the_first_bad_line(tmpdir_path, lines, line_no, text):
    conf = write(os.path.join(tmpdir_path, "bad.conf"), "\n".join(lines) + "\n")
    r = changelogd("--config", conf, "--check-config")
    assert r.returncode == 2, r
    assert "%s:%d: " % (conf, line_no) in r.stderr and text in r.stderr, r.stderr
    # the server itself refuses to start on it, with the same message
    r = changelogd("--config", conf, "--listen", "127.0.0.1:%d" % free_port())
    assert r.returncode == 2 and "%s:%d: " % (conf, line_no) in r.stderr, r.stderr


def test_check_config_other_failures(tmpdir_path):
    missing = os.path.join(tmpdir_path, "nope.conf")
    r = changelogd("--config", missing, "--check-config")
    assert r.returncode == 2 and "No such file" in r.stderr, r
    r = changelogd("--config", missing, "--data", tmpdir_path)
    assert r.returncode == 2 and "No such file" in r.stderr, r
    nodata = write(os.path.join(tmpdir_path, "nodata.conf"), "listen = :9\n")
    r = changelogd("--config", nodata, "--check-config")
    assert r.returncode == 2 and "--data DIR is required" in r.stderr, r
    # a certificate and a key that do not belong together
    for name in ("a", "b"):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                        os.path.join(tmpdir_path, name + ".key"), "-out",
                        os.path.join(tmpdir_path, name + ".crt"), "-days", "3",
                        "-subj", "/CN=" + name], check=True, capture_output=True)
    tls = write(os.path.join(tmpdir_path, "tls.conf"),
                "data = %s\ncert = %s/a.crt\nkey = %s/b.key\n" % (tmpdir_path, tmpdir_path,
                                                                   tmpdir_path))
    r = changelogd("--config", tls, "--check-config")
    assert r.returncode == 1 and "does not match" in r.stderr, r
    r = changelogd("--config", tls, "--key", os.path.join(tmpdir_path, "a.key"),
                   "--check-config")
    assert r.returncode == 0, r
    onlycert = write(os.path.join(tmpdir_path, "one.conf"),
                     "data = %s\ncert = %s/a.crt\n" % (tmpdir_path, tmpdir_path))
    r = changelogd("--config", onlycert, "--check-config")
    assert r.returncode == 2 and "go together" in r.stderr, r
    big = write(os.path.join(tmpdir_path, "big.conf"), "#" * (1024 * 1024 + 1))
    r = changelogd("--config", big, "--check-config")
    assert r.returncode == 2 and "larger than" in r.stderr, r
    r = changelogd("--config", tmpdir_path, "--check-config")
    assert r.returncode == 2 and "not a regular file" in r.stderr, r


def test_shipped_example_checks_and_uses_only_flag_names(tmpdir_path):
    example = os.path.join(REPO, "tools", "dist", "changelogd.conf")
    r = changelogd("--config", example, "--check-config")
    assert r.returncode == 0, r
    # every commented-out setting in the example is a real flag, so
    # uncommenting it works: check them all with a value of the right kind
    help_text = changelogd("--help").stdout
    names = set()
    for line in open(example):
        s = line.strip()
        if s.startswith("#") and "=" in s and not s.startswith("# "):
            names.add(s[1:].split("=")[0].strip())
    assert names, "the example shows no commented settings"
    for n in names:
        assert "--" + n in help_text, n
