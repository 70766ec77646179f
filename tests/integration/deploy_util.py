"""Helpers for the install, man page and package tests: which make
variables build the binaries under test, the flags a --help lists, and the
checks an installed changelogd passes (it serves the web UI, and a client
writes and reads an entry)."""
import os
import re
import subprocess
import time
import urllib.request

from conftest import BIN, REPO, Client, run, tls_context

BINARIES = {            # binary: man section (changelogd is a daemon: 8)
    "changelogd": 8,
    "changelog-admin": 1,
    "changelog-audit": 1,
    "changelog-post": 1,
    "changelog-replay": 1,
    "changelog-bench": 1,
}


def make_vars():
    """BIN/BUILD/SAN so that `make install` installs the binaries under test
    ($CL_BIN) without relinking them from another build."""
    b = os.path.realpath(BIN)
    if b == os.path.realpath(os.path.join(REPO, "build", "asan", "bin")):
        return ["BIN=" + b, "BUILD=build/asan", "SAN=1"]
    return ["BIN=" + b]


def make(*args, timeout=300):
    return subprocess.run(["make", "--no-print-directory", "-C", REPO] + make_vars()
                          + list(args), capture_output=True, text=True, timeout=timeout)


FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*|-[a-z])(?![\w-])")


def help_flags(binary):
    """Every flag the binary's --help shows, and each command's --help."""
    exe = os.path.join(BIN, binary)
    text = subprocess.run([exe, "--help"], capture_output=True, text=True).stdout
    out = set(FLAG.findall(text))
    if "\ncommands:\n" in text:
        block = text.split("\ncommands:\n", 1)[1].split("\n\n", 1)[0]
        for line in block.splitlines():
            words = [w for w in line.split()[:2] if re.fullmatch(r"[a-z]+", w)]
            if words:
                sub = subprocess.run([exe] + words + ["--help"], capture_output=True,
                                     text=True).stdout
                out |= set(FLAG.findall(sub))
    return out


def wait_for_web_ui(proc, port, log, web_dir):
    """Poll https://127.0.0.1:PORT/ until the installed server proc answers:
    it serves the repository's web/index.html, and its log says from
    web_dir (where it was installed)."""
    body, deadline = None, time.time() + 15
    while body is None and time.time() < deadline:
        assert proc.poll() is None, open(log).read()
        try:
            with urllib.request.urlopen("https://127.0.0.1:%d/" % port,
                                        context=tls_context(), timeout=2) as resp:
                body = resp.read()
        except OSError:
            time.sleep(0.05)
    assert body == open(os.path.join(REPO, "web", "index.html"), "rb").read()
    assert "serving the web UI from %s" % web_dir in open(log).read()


def create_and_list(port, token, title, kind):
    """Over wss://127.0.0.1:PORT: createEntry, then the titles that
    getChangelogEntries lists."""
    class S:
        plain = False

        def url(self, t, prefix=""):
            return "wss://127.0.0.1:%d%s/ws/%s" % (port, prefix, t)

    async def talk():
        c = await Client.connect(S(), token)
        await c.command("createEntry", {"title": title, "kind": kind})
        r = await c.query("getChangelogEntries")
        await c.close()
        return r
    return [e["title"] for e in run(talk())["result"]["entries"]]
