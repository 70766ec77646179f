"""test_dashboard_php.py - the reference PHP dashboard (tools/dashboard) served
by `php -S` over the tables changelog-replay wrote, in SQLite and in
MariaDB, and tools/dashboard/live.php talking to a running changelogd.

Pages are checked against the server's own answers: the list shows the
entries, statuses and comment counts of getChangelogEntries, the filters
and paging reach exactly the matching entries, an entry page shows its
comments in thread order with their depths and its status history, and
HTML in user text (a title "<img src=x onerror=alert(1)>") comes back
escaped, never as markup.
"""
import html
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import REPO, Client, run
from test_replay_common import MariaDBDB, SqliteDB, replay, server_answers

pytest_plugins = ["test_replay_common"]

DASH = os.path.join(REPO, "tools", "dashboard")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Php:
    def __init__(self, dsn, log, user=None):
        self.port = free_port()
        self.dsn = dsn
        env = dict(os.environ, CHANGELOG_DSN=dsn)
        if user:
            env["CHANGELOG_DB_USER"] = user
        self.logf = open(log, "ab")
        self.proc = subprocess.Popen(["php", "-S", "127.0.0.1:%d" % self.port, "-t", DASH],
                                     env=env, stdout=self.logf, stderr=self.logf)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("php -S did not start")

    def get(self, path):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/%s" % (self.port, path),
                                        timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.logf.close()


def text_of(fragment):
    return html.unescape(re.sub(r"<[^>]*>", "", fragment))


def list_rows(page):
    """(id, title, kind, status, author, comments) of each entry row."""
    out = []
    for eid, body in re.findall(r'<tr class="entry" data-id="(\d+)">(.*?)</tr>', page, re.S):
        cells = [text_of(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", body, re.S)]
        out.append((int(eid), cells[1], cells[2], cells[3], cells[4], int(cells[5])))
    return out


def assert_no_markup_from_users(page):
    # every '<' in user text is escaped, so these can only be ours - and we have none
    assert "<img" not in page and "<script" not in page and "<b>" not in page


@pytest.fixture(scope="module", params=["sqlite", "mariadb"])
def dash(request, workload):
    user = None
    if request.param == "sqlite":
        db = SqliteDB(os.path.join(workload.base, "dash.db"))
        dsn = "sqlite:" + db.path
    else:
        db = MariaDBDB(workload.mariadb, workload.mariadb.create_db("clg_dash"))
        dsn = "mysql:unix_socket=%s;dbname=clg_dash" % workload.mariadb.socket
        user = "root"
    replay(workload.data, *db.target())
    php = Php(dsn, os.path.join(workload.base, "php-%s.log" % request.param), user)
    ans = server_answers(workload.server, workload.server.admin_token)
    yield php, ans
    php.stop()


def test_list_shows_entries_statuses_and_comment_counts(dash):
    php, ans = dash
    status, page = php.get("index.php")
    assert status == 200
    assert_no_markup_from_users(page)
    want = [(e["id"], e["title"], e["kind"], e["status"], e["author"], e["comments"])
            for e in ans["seed"][:50]]
    assert list_rows(page) == want
    assert 'rel="next"' in page
    assert "at seq %d" % ans["at"] in page


def test_filters_and_paging_reach_exactly_the_matching_entries(dash):
    php, ans = dash
    seed = ans["seed"]
    for query, pred in (("status=resolved", lambda e: e["status"] == "resolved"),
                        ("kind=feature", lambda e: e["kind"] == "feature"),
                        ("status=open&kind=fix",
                         lambda e: e["status"] == "open" and e["kind"] == "fix"),
                        ("", lambda e: True)):
        seen, path = [], "index.php?" + query
        while path:
            status, page = php.get(path)
            assert status == 200, page
            seen += [r[0] for r in list_rows(page)]
            m = re.search(r'<a rel="next" href="([^"]+)"', page)
            path = html.unescape(m.group(1)) if m else None
        assert seen == [e["id"] for e in seed if pred(e)], query
    assert php.get("index.php?status=bogus")[0] == 400
    assert php.get("index.php?kind=%3Cscript%3E")[0] == 400


def flatten(tree, out):
    for c in tree:
        out.append((c["id"], c["depth"], c["author"], c["body"]))
        flatten(c["replies"], out)
    return out


def test_entry_pages_show_threads_in_order_and_history(dash):
    php, ans = dash
    entries = {k: v for k, v in ans["entries"].items() if v}
    # the entries with the most comments and the deepest threads, and a few others
    busiest = sorted(entries, key=lambda k: -entries[k]["entry"]["comments"])[:6]
    for eid in busiest + list(entries)[:4]:
        want = entries[eid]
        status, page = php.get("entry.php?id=%d" % eid)
        assert status == 200
        assert_no_markup_from_users(page)
        m = re.search(r"<h1>(.*?)</h1>", page, re.S)
        assert text_of(m.group(1)) == want["entry"]["title"]
        body = re.search(r'<pre class="body">(.*?)</pre>', page, re.S).group(1)
        assert html.unescape(body) == want["entry"]["body"]
        got = [(int(cid), int(depth), text_of(meta).split(" · ")[0], html.unescape(pre))
               for cid, depth, meta, pre in re.findall(
                   r'<div class="comment" id="c(\d+)" data-depth="(\d+)" '
                   r'style="margin-left:[0-9.]+em"><div class="meta">(.*?)</div>'
                   r'<pre>(.*?)</pre></div>', page, re.S)]
        assert got == flatten(want["comments"], [])
        hist = re.findall(r"<tr><td>[^<]*</td><td>([^<]*)</td><td>([^<]*)</td>"
                          r'<td class="st">([^<]*)</td></tr>', page)
        assert [(html.unescape(a), f, t) for a, f, t in hist] == \
            [(h["by"], h["from"], h["to"]) for h in want["entry"]["status_history"]]
    assert max(entries[k]["entry"]["comments"] for k in busiest) > 3
    assert php.get("entry.php?id=999999")[0] == 404
    assert php.get("entry.php?id=abc")[0] == 400


def test_html_in_user_text_comes_back_escaped(dash):
    php, ans = dash
    xss = [e for e in ans["seed"] if e["title"] == "<img src=x onerror=alert(1)>"]
    assert xss, "the workload made no entry with HTML in its title"
    eid = xss[0]["id"]
    status, page = php.get("entry.php?id=%d" % eid)
    assert status == 200
    assert "<h1>&lt;img src=x onerror=alert(1)&gt;</h1>" in page
    assert "&lt;script&gt;alert(" in page            # body and comment
    assert "&lt;/script&gt;</pre></div>" in page      # the comment
    assert_no_markup_from_users(page)
    page = php.get("index.php")[1]
    assert ">&lt;img src=x onerror=alert(1)&gt;</a>" in page
    assert_no_markup_from_users(page)


def test_live_php_prints_the_seed_query_and_follows(workload):
    srv = workload.server
    url = srv.ws + "/ws/" + srv.admin_token
    r = subprocess.run(["php", os.path.join(DASH, "live.php"), "--url", url, "--insecure"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    ans = server_answers(srv, srv.admin_token)
    lines = r.stdout.splitlines()
    assert lines[0] == "%d entries" % len(ans["seed"])
    for e, line in zip(ans["seed"], lines[1:]):
        assert line.startswith("#%d [%s] [%s] " % (e["id"], e["status"], e["kind"])), line
        assert "%d comment" % e["comments"] in line
    assert srv.admin_token not in r.stdout + r.stderr
    # a bad token never gets a websocket
    r = subprocess.run(["php", os.path.join(DASH, "live.php"), "--url",
                        srv.ws + "/ws/clg_wrong", "--insecure"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "refused the websocket" in r.stderr, r.stderr
    # the self-signed certificate is refused unless --insecure
    r = subprocess.run(["php", os.path.join(DASH, "live.php"), "--url", url],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "cannot connect" in r.stderr, r.stderr
    # --follow prints a change pushed after the listing
    p = subprocess.Popen(["php", os.path.join(DASH, "live.php"), "--url", url, "--insecure",
                          "--follow"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = p.stdout.readline()
        assert first.endswith("entries\n"), first
        for _ in range(len(ans["seed"])):
            p.stdout.readline()
        time.sleep(0.3)   # let the subscribe reach the server

        async def create():
            c = await Client.connect(srv, srv.admin_token)
            res = await c.command("createEntry", {"title": "pushed to PHP", "kind": "feature"})
            await c.close()
            return res

        res = run(create())
        assert res["ok"], res
        line = p.stdout.readline()
        assert line.startswith("* entry.created seq %d: #%d [open] [feature] pushed to PHP"
                               % (res["seq"], res["entry"])), line
    finally:
        p.kill()
        p.wait()


def test_pages_fit_a_phone_in_chromium(dash):
    """issue 18: a mobile viewport, and every page lays out at 390 px."""
    from conftest import NODE_DIR
    php, ans = dash
    entries = {k: v for k, v in ans["entries"].items() if v}
    deepest = max(entries, key=lambda k: entries[k]["entry"]["comments"])
    out = os.path.join(REPO, "build", "ui-screenshots")
    os.makedirs(out, exist_ok=True)
    name = php.dsn.split(":")[0]
    r = subprocess.run(["node", "dashboard_phone.js", "http://127.0.0.1:%d" % php.port,
                        str(deepest), out, name], cwd=NODE_DIR, capture_output=True,
                       text=True, timeout=90)
    print(r.stdout + r.stderr)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "dashboard phone: all checks passed" in r.stdout


def test_edited_and_deleted_comments_show_as_such(dash):
    """comment.edited / comment.deleted (issue 18): the entry page shows the
    latest text marked "edited", and a tombstone marked "deleted" whose
    replies stay under it."""
    php, ans = dash
    seen = {"edited": 0, "deleted": 0}
    for eid, want in ans["entries"].items():
        if not want:
            continue
        flat = []

        def walk(cs):
            for c in cs:
                flat.append(c)
                walk(c["replies"])
        walk(want["comments"])
        marked = [c for c in flat if c.get("edited") or c.get("deleted")]
        if not marked:
            continue
        status, page = php.get("entry.php?id=%d" % eid)
        assert status == 200
        for c in marked:
            m = re.search(r'<div class="comment" id="c%d" [^>]*><div class="meta">(.*?)</div>'
                          r"<pre>(.*?)</pre>" % c["id"], page, re.S)
            assert m, c
            if c.get("deleted"):
                assert '<em class="deleted">deleted</em>' in m.group(1) and m.group(2) == ""
                seen["deleted"] += 1
            else:
                assert "edited " + c["edited"] in m.group(1)
                assert html.unescape(m.group(2)) == c["body"]
                seen["edited"] += 1
        if seen["edited"] >= 5 and seen["deleted"] >= 5:
            break
    assert seen["edited"] > 0 and seen["deleted"] > 0, seen
