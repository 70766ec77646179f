"""test_check_deps.py - `make check-deps` (tools/scripts/check-deps.sh)
passes on the tree as it is and fails, naming the file, for each kind of
rule broken in a copy of it: a layer including a layer above it (tools/cli
and tools/ included), the bench client including project code, a net/
module including one it may not (or server.h), a net/ module without a
rule, and mutable static data in net/.
"""
import os
import shutil
import subprocess

import pytest

from conftest import REPO

SCRIPT = os.path.join(REPO, "tools", "scripts", "check-deps.sh")
LAYERS = ("core", "store", "net", "replay", "tools")


def run_check(root):
    return subprocess.run(["sh", SCRIPT, root], capture_output=True, text=True, timeout=60)


@pytest.fixture
def tree(tmp_path):
    for d in LAYERS:
        shutil.copytree(os.path.join(REPO, d), tmp_path / d,
                        ignore=shutil.ignore_patterns("dashboard"))
    return tmp_path


def append(path, text):
    with open(path, "a") as f:
        f.write(text)


def test_the_tree_passes():
    p = run_check(REPO)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "check-deps: ok" in p.stdout


BREAKS = [
    # (file to change, line to add, what the report must say)
    ("core/cl.c", '#include "../store/evlog.h"\n', "core/cl.c includes ../store/evlog.h"),
    ("store/evlog.c", '#include "../net/push.h"\n', "store/evlog.c includes ../net/push.h"),
    ("replay/replay.c", '#include "../net/proto.h"\n', "replay/replay.c includes"),
    ("net/proto.c", '#include "session.h"\n', "net/proto.c includes session.h"),
    ("net/push.h", '#include "qcache.h"\n', "net/push.h includes qcache.h"),
    ("net/session.c", '#include "proto.h"\n', "net/session.c includes proto.h"),
    ("net/http.c", '#include "server.h"\n', "net/http.c includes server.h"),
    ("net/metrics.c", '#include "session.h"\n', "net/metrics.c includes session.h"),
    ("net/qcache.c", "static int qc_calls;\n", "mutable static data in net/"),
    ("net/session.c", "static struct pbuf spare;\n", "mutable static data in net/"),
    ("net/proto.c", "void f(void);\nvoid f(void)\n{\n\tstatic char buf[64];\n\t(void)buf;\n}\n",
     "mutable static data in net/"),
    ("core/event.c", "#include <lmdb.h>\n", "core uses a library it may not"),
    ("tools/admin.c", '#include "../net/proto.h"\n', "tools/admin.c includes ../net/proto.h"),
    ("tools/audit.c", '#include "../replay/replay.h"\n', "tools/audit.c includes"),
    ("tools/cli/progress.c", '#include "../../store/evlog.h"\n',
     "tools/cli/progress.c includes ../../store/evlog.h (store is not below tools/cli)"),
]


@pytest.mark.parametrize("path,line,says", BREAKS, ids=[f"{b[0]}:{b[2][:30]}" for b in BREAKS])
def test_each_rule_can_fail(tree, path, line, says):
    append(tree / path, line)
    p = run_check(str(tree))
    assert p.returncode == 1, p.stdout
    assert says in p.stdout, p.stdout


def test_the_bench_client_stands_alone(tree):
    (tree / "tests" / "bench").mkdir(parents=True)
    (tree / "tests" / "bench" / "bench_main.c").write_text("#include <stdio.h>\n")
    assert run_check(str(tree)).returncode == 0
    append(tree / "tests" / "bench" / "bench_main.c", '#include "../../net/push.h"\n')
    p = run_check(str(tree))
    assert p.returncode == 1
    assert "bench_main.c includes a project header" in p.stdout


def test_a_new_net_module_needs_a_rule(tree):
    (tree / "net" / "pager.c").write_text('#include "push.h"\n')
    p = run_check(str(tree))
    assert p.returncode == 1
    assert "net/pager.c is a net/ module without a rule" in p.stdout


def test_allowed_statics_pass(tree):
    # const tables and the signal flag are not mutable module state
    append(tree / "net" / "push.c", "static const char push_names[] = \"x\";\n")
    p = run_check(str(tree))
    assert p.returncode == 0, p.stdout
