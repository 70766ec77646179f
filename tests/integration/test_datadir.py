"""The data directory: a damaged, emptied or deleted log is refused, never
restarted; truncation and other damage are reported (not crashed on) the
same way by changelogd, changelog-audit and changelog-admin; --map-size
makes "map full" a refusal that loses nothing (docs/operations.md, "The
data directory" and "Recovering a damaged data directory").

Every check drives the real binaries on real files: the damage is done
with plain file writes, as a disk, an operator or a bad copy would."""
import asyncio
import json
import os
import shutil
import subprocess

from conftest import BIN, Client, Server, free_port, run, sanitizer_reports
from tools_util import run_admin, run_audit

SERVER = os.path.join(BIN, "changelogd")
PAGE = 4096
RESTORE_HINT = "changelog-admin restore BACKUP --data"


def start_refused(data, *args):
    """Run changelogd on data and expect it to refuse: (exit, stdout, stderr)."""
    p = subprocess.run([SERVER, "--data", data, "--listen", "127.0.0.1:%d" % free_port(),
                        "--no-web"] + list(args), capture_output=True, text=True, timeout=60)
    assert not sanitizer_reports(p.stderr), p.stderr
    return p.returncode, p.stdout, p.stderr


def refusal_line(stderr):
    lines = [l for l in stderr.splitlines() if "ERROR" in l]
    assert lines, stderr
    return lines[-1].split("ERROR", 1)[1].strip()


def assert_all_refuse(data, words):
    """changelogd, changelog-audit (verify, log, stats) and changelog-admin
    all refuse data with exit 1 (never a signal), with the same sentence,
    which contains words and the restore hint."""
    rc, out, err = start_refused(data)
    assert rc == 1, (rc, err)
    assert "admin token" not in out, out
    said = refusal_line(err)
    assert said.startswith("refusing to start: "), said
    said = said[len("refusing to start: "):]
    assert words in said and RESTORE_HINT in said, said
    v = run_audit("verify", "--data", data)
    assert v.returncode == 1, (v.returncode, v.stderr)
    assert v.stdout.strip() == "FAIL: " + said, (v.stdout, said)
    for cmd in ("log", "stats"):
        p = run_audit(cmd, "--data", data)
        assert p.returncode == 1 and said in p.stderr, (cmd, p.returncode, p.stderr)
    for args in (("user", "list"), ("init",), ("backup", data + ".bak")):
        p = run_admin(*args, "--data", data)
        assert p.returncode == 1 and said in p.stderr, (args, p.returncode, p.stderr)
        assert "clg_" not in p.stdout
    assert not os.path.exists(data + ".bak/data.mdb")
    return said


def make_log(tmp, name="data", entries=40, body=2000):
    """A log with the server's bootstrap admin and `entries` entries written
    over a websocket; returns (dir, admin token, acked seqs)."""
    data = os.path.join(tmp, name)
    s = Server(data).start()
    line = s.first_stdout_line()
    assert line.startswith("admin token: clg_"), line

    async def go():
        c = await Client.connect(s, s.admin_token)
        seqs = []
        for i in range(entries):
            r = await c.command("createEntry", {"title": "e%d" % i, "body": "b" * body,
                                                "kind": "fix"}, cmd_id="mk-%d" % i)
            assert r["ok"], r
            seqs.append(r["seq"])
        await c.close()
        return seqs

    seqs = run(go())
    assert s.stop() == 0
    assert "saved in %s/admin-token" % data in s.log()
    return data, s.admin_token, seqs


def backup(data, dest):
    p = run_admin("backup", dest, "--data", data)
    assert p.returncode == 0, p.stderr


def restore_and_check(data, bak, token, n_events):
    """The documented recovery: move the damaged dir aside, restore the
    backup into its place; the old admin token works again."""
    shutil.move(data, data + ".damaged")
    p = run_admin("restore", bak, "--data", data)
    assert p.returncode == 0, p.stderr
    s = Server(data).start()
    try:
        _, _, h = s.get("/healthz")
        assert json.loads(h)["seq"] == n_events

        async def go():
            c = await Client.connect(s, token)
            r = await c.query("getUsers")
            assert r["ok"], r
            await c.close()

        run(go())
        assert s.admin_token is None or s.admin_token == token
    finally:
        assert s.stop() == 0


# ---- 5. an emptied or deleted data.mdb is never a new log -----------------

def test_deleted_or_emptied_log_is_refused_not_restarted(tmpdir_path):
    data, token, seqs = make_log(tmpdir_path, entries=5, body=10)
    bak = os.path.join(tmpdir_path, "bak")
    backup(data, bak)
    keep = os.path.join(tmpdir_path, "keep")
    shutil.copytree(data, keep)

    def reset():
        shutil.rmtree(data)
        shutil.copytree(keep, data)

    # emptied: zero bytes, every other file of ours still there
    open(os.path.join(data, "data.mdb"), "w").close()
    said = assert_all_refuse(data, "is empty (0 bytes)")
    assert os.path.getsize(os.path.join(data, "data.mdb")) == 0
    # deleted: whatever of ours is left alone makes the refusal
    for left in (("lock.mdb", "admin-token", "tls"), ("lock.mdb",), ("admin-token",),
                 ("tls",)):
        reset()
        os.unlink(os.path.join(data, "data.mdb"))
        for name in ("lock.mdb", "admin-token", "tls"):
            if name not in left:
                p = os.path.join(data, name)
                shutil.rmtree(p) if os.path.isdir(p) else os.unlink(p)
        said = assert_all_refuse(data, "has no data.mdb, but")
        for name in left:
            assert name in said, (name, said)
        assert sorted(os.listdir(data)) == sorted(left), os.listdir(data)
    # the token file was never rewritten, and the old token still opens the restored log
    reset()
    os.unlink(os.path.join(data, "data.mdb"))
    with open(os.path.join(data, "admin-token")) as f:
        assert f.read().strip() == token
    restore_and_check(data, bak, token, seqs[-1])


def test_bootstrap_only_in_a_directory_with_nothing_of_ours(tmpdir_path):
    # a directory with foreign files only is new; the token is saved and said so
    data = os.path.join(tmpdir_path, "data")
    os.makedirs(data)
    with open(os.path.join(data, "README"), "w") as f:
        f.write("not ours\n")
    os.makedirs(os.path.join(data, "lost+found"))
    s = Server(data).start()
    assert s.first_stdout_line().startswith("admin token: clg_")
    assert s.stop() == 0
    log = s.log()
    assert "saved in %s/admin-token" % data in log and "could not" not in log
    with open(os.path.join(data, "admin-token")) as f:
        assert f.read().strip() == s.admin_token
    # no half-made log is left behind by the creation
    assert not [n for n in os.listdir(data) if n.startswith(".data.mdb.new")]
    # a creator killed before it linked its log leaves nothing that blocks the next
    fresh = os.path.join(tmpdir_path, "fresh")
    os.makedirs(fresh)
    open(os.path.join(fresh, ".data.mdb.new-999999999"), "w").close()
    p = run_admin("init", "--data", fresh)
    assert p.returncode == 0, p.stderr
    assert sorted(os.listdir(fresh)) == ["data.mdb", "lock.mdb"]
    # an LMDB file nobody ever committed to is not a log to bootstrap
    unborn = os.path.join(tmpdir_path, "unborn")
    os.makedirs(unborn)
    with open(os.path.join(fresh, "data.mdb"), "rb") as f:
        pages = f.read(2 * PAGE)
    pages = bytearray(pages)
    for i in range(2):   # txn ids of both meta pages set to 0
        off = i * PAGE + 16 + 128
        pages[off:off + 8] = b"\0" * 8
    with open(os.path.join(unborn, "data.mdb"), "wb") as f:
        f.write(pages)
    assert_all_refuse(unborn, "never written to")


# ---- 6. truncation and other damage: refused alike, never a crash --------

def test_truncated_log_is_reported_not_crashed_on(tmpdir_path):
    data, token, seqs = make_log(tmpdir_path, entries=60, body=3000)
    size = os.path.getsize(os.path.join(data, "data.mdb"))
    assert size > 4 * 65536, size
    bak = os.path.join(tmpdir_path, "bak")
    backup(data, bak)
    for cut in (8192, 65536, size // 2, size - PAGE):
        d = os.path.join(tmpdir_path, "cut%d" % cut)
        shutil.copytree(data, d)
        os.truncate(os.path.join(d, "data.mdb"), cut)
        said = assert_all_refuse(d, "is truncated: it has %d bytes" % cut)
        assert "says the log fills %d" % size in said, said
        assert os.path.getsize(os.path.join(d, "data.mdb")) == cut
    # too short even for the meta pages
    d = os.path.join(tmpdir_path, "cut100")
    shutil.copytree(data, d)
    os.truncate(os.path.join(d, "data.mdb"), 100)
    assert_all_refuse(d, "meta page 0 is cut off")
    restore_and_check(os.path.join(tmpdir_path, "cut8192"), bak, token, seqs[-1])


def both_verdicts(d):
    """(audit verify exit, its verdict, server exit or "served", its log).
    A server that comes up is stopped at once; neither may die of a signal."""
    v = run_audit("verify", "--data", d)
    assert v.returncode in (0, 1), (v.returncode, v.stderr)
    s = Server(d)
    try:
        s.start()
    except RuntimeError:
        rc = s.proc.wait()
        s.proc.stdout.close()
        s.errf.close()
        assert rc == 1, (rc, s.log())
        assert not sanitizer_reports(s.log()), s.log()
        return v.returncode, v.stdout.strip(), rc, s.log()
    assert s.stop() == 0
    return v.returncode, v.stdout.strip(), "served", s.log()


def test_other_damage_server_and_tools_agree(tmpdir_path):
    data, _, seqs = make_log(tmpdir_path, entries=30, body=1500)
    other, _, _ = make_log(tmpdir_path, name="other", entries=7, body=10)
    raw = open(os.path.join(data, "data.mdb"), "rb").read()
    foreign = open(os.path.join(other, "data.mdb"), "rb").read()
    cases = {}
    for i in range(len(raw) // PAGE):
        cases["zero page %d" % i] = raw[:i * PAGE] + b"\0" * PAGE + raw[(i + 1) * PAGE:]
    for i in (0, 1):
        cases["meta page %d of another log" % i] = (raw[:i * PAGE] +
                                                    foreign[i * PAGE:(i + 1) * PAGE] +
                                                    raw[(i + 1) * PAGE:])
    cases["meta pages swapped"] = raw[PAGE:2 * PAGE] + raw[:PAGE] + raw[2 * PAGE:]
    refused = 0
    for name, content in cases.items():
        d = os.path.join(tmpdir_path, name.replace(" ", "_"))
        os.makedirs(d)
        with open(os.path.join(d, "data.mdb"), "wb") as f:
            f.write(content)
        vrc, verdict, src, err = both_verdicts(d)
        if vrc == 0:
            # damage to a page the log does not use: both serve it whole
            assert verdict.startswith("ok: %d events" % seqs[-1]), (name, verdict)
            assert src == "served", (name, err)
            assert "%d events" % seqs[-1] in err, (name, err)
            continue
        refused += 1
        assert verdict.startswith("FAIL: "), (name, verdict)
        assert src == 1, (name, src, err)
        line = refusal_line(err)
        assert "damaged" in line or "Nothing was changed" in line, (name, line)
        if "Nothing was changed" in verdict:
            # refused before anything was mapped: the very same sentence
            assert line.endswith(verdict[len("FAIL: "):]), (name, line, verdict)
    assert refused >= 4, refused
    for i in (0, 1):
        assert "Nothing was changed" in run_audit(
            "verify", "--data", os.path.join(tmpdir_path, "meta_page_%d_of_another_log" % i)
        ).stdout


def test_copy_taken_mid_write(tmpdir_path):
    """A copy whose meta pages come from before a run of writes and whose
    data pages from after (cp reads the head of the file first), and the
    opposite: refused or served alike, never a crash."""
    data = os.path.join(tmpdir_path, "data")
    s = Server(data, ["--rate", "100000", "--burst", "100000", "--user-rate", "100000",
                      "--user-burst", "100000"]).start()

    async def write(n, start):
        c = await Client.connect(s, s.admin_token)
        for i in range(start, start + n):
            r = await c.command("createEntry", {"title": "w%d" % i, "body": "x" * 900,
                                                "kind": "fix"})
            assert r["ok"], r
        await c.close()

    run(write(40, 0))
    before = open(os.path.join(data, "data.mdb"), "rb").read()
    run(write(120, 40))
    after = open(os.path.join(data, "data.mdb"), "rb").read()
    assert s.stop() == 0
    for name, content in (("old meta", before[:2 * PAGE] + after[2 * PAGE:]),
                          ("new meta", after[:2 * PAGE] + before[2 * PAGE:]),
                          ("new meta padded", after[:2 * PAGE] + before[2 * PAGE:] +
                           after[len(before):])):
        d = os.path.join(tmpdir_path, name.replace(" ", "_"))
        os.makedirs(d)
        with open(os.path.join(d, "data.mdb"), "wb") as f:
            f.write(content)
        vrc, verdict, src, err = both_verdicts(d)
        if vrc == 0:
            assert src == "served", (name, err)
        else:
            assert src == 1 and verdict.startswith("FAIL: "), (name, src, verdict, err)


# ---- 7. --map-size: map full refuses writes, loses nothing ----------------

def test_map_full_refuses_writes_keeps_reads_loses_nothing(tmpdir_path):
    data = os.path.join(tmpdir_path, "data")
    fast = ["--rate", "100000", "--burst", "100000", "--user-rate", "100000",
            "--user-burst", "100000"]
    s = Server(data, fast + ["--map-size", "256K"]).start()
    token = s.admin_token

    async def fill():
        c = await Client.connect(s, token)
        acked, refused = {}, []
        for i in range(400):
            cid = "fill-%d" % i
            r = await c.command("createEntry", {"title": "t%d" % i, "body": "z" * 3000,
                                                "kind": "fix"}, cmd_id=cid)
            if r["ok"]:
                assert not refused, "a write was accepted after the map filled"
                acked[cid] = r["entry"]
            else:
                refused.append((cid, r))
                if len(refused) >= 5:
                    break
        assert acked and len(refused) == 5, (len(acked), refused[:1])
        for _, r in refused:
            assert r["error"]["code"] == "unavailable", r
            assert "map full" in r["error"]["message"], r
            assert "nothing was applied" in r["error"]["message"], r
        # a batch of writes and reads together: reads answered, writes refused
        ids = c.send_batch([{"op": "createEntry", "cmd_id": "batch-w",
                             "params": {"title": "b", "body": "q" * 3000, "kind": "fix"}},
                            {"op": "query", "name": "getChangelogEntries",
                             "params": {"limit": 500}}])
        w = await c.wait_reply(ids[0])
        q = await c.wait_reply(ids[1])
        assert not w["ok"] and w["error"]["code"] == "unavailable", w
        assert q["ok"] and len(q["result"]["entries"]) == len(acked), q
        # reads keep working on their own, on a new connection too
        c2 = await Client.connect(s, token)
        got = {e["id"] for e in (await c2.query("getChangelogEntries",
                                                {"limit": 500}))["result"]["entries"]}
        assert got == set(acked.values())
        await c.close()
        await c2.close()
        return acked, [cid for cid, _ in refused]

    acked, refused = run(fill())
    _, _, h = s.get("/healthz")
    assert s.stop() == 0
    assert "the log's map is full" in s.log()
    assert run_audit("verify", "--data", data).returncode == 0

    # restart with a bigger map: everything acknowledged is there, and the
    # refused commands go through once when retried with their cmd_id
    s2 = Server(data, fast + ["--map-size", "8M"]).start()
    try:
        async def check():
            c = await Client.connect(s2, token)
            got = {e["id"] for e in (await c.query("getChangelogEntries",
                                                   {"limit": 500}))["result"]["entries"]}
            assert got == set(acked.values())
            for cid in refused:
                r = await c.command("createEntry", {"title": cid, "body": "z" * 3000,
                                                    "kind": "fix"}, cmd_id=cid)
                assert r["ok"], r
                again = await c.command("createEntry", {"title": cid, "body": "z" * 3000,
                                                        "kind": "fix"}, cmd_id=cid)
                assert again["ok"] and again["entry"] == r["entry"], again
            n = len((await c.query("getChangelogEntries",
                                   {"limit": 500}))["result"]["entries"])
            assert n == len(acked) + len(refused)
            await c.close()

        run(check())
    finally:
        assert s2.stop() == 0
    assert run_audit("verify", "--data", data).returncode == 0


def test_map_size_flag_is_checked():
    for bad in ("1K", "abc", "-5M", "0"):
        p = subprocess.run([SERVER, "--data", "/nonexistent", "--map-size", bad],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 2 and "--map-size wants 64K..64T" in p.stderr, (bad, p.stderr)
