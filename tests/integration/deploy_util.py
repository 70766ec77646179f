"""Helpers for the install, man page and package tests: which make
variables build the binaries under test, and the flags a --help lists."""
import os
import re
import subprocess

from conftest import BIN, REPO

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
