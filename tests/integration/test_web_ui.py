"""test_web_ui.py - the browser UI, as people use it (issue 7).

changelogd serves web/ at GET /; headless Chromium (Debian's) driven by
Playwright (npm playwright-core) runs tests/node/browser_ui.js: two users
in two browser contexts see each other's changes live, status buttons
follow the rules, HTML in user text stays text, and a page survives a
server kill + restart by reconnecting and catching up. Screenshots of the
list and of an entry land in build/ as artifacts.
"""
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from conftest import NODE_DIR, REPO, Server, sanitizer_reports

WEB = os.path.join(REPO, "web")
OUT = os.path.join(REPO, "build", "ui-screenshots")


def test_static_files(tmpdir_path):
    s = Server(os.path.join(tmpdir_path, "data"), web=WEB).start()
    try:
        for path, ctype in (("/", "text/html"), ("/app.js", "javascript"), ("/admin.js", "javascript"),
                            ("/style.css", "text/css")):
            status, headers, body = s.get(path)
            assert status == 200, path
            assert ctype in headers.get("Content-Type", headers.get("content-type", "")), (path, headers)
            assert body
        status, _, body = s.get("/")
        assert b"<title>Changelog</title>" in body
        # every file the page links to is served (a browser asks for
        # /favicon.ico, a 404 in its console, unless the page names an icon)
        linked = re.findall(rb'(?:href|src)="(/[^"]*)"', body)
        assert b"/favicon.svg" in linked and b"/style.css" in linked, linked
        for path in linked:
            status, headers, _ = s.get(path.decode())
            assert status == 200, path
        headers = s.get("/favicon.svg")[1]
        assert "image/svg+xml" in headers.get("Content-Type", headers.get("content-type", ""))
    finally:
        assert s.stop() == 0
        assert not sanitizer_reports(s.log())


def test_two_people_live_in_chromium(tmpdir_path):
    if not shutil.which("chromium") and not os.path.exists("/usr/bin/chromium"):
        pytest.fail("chromium is not installed: run tools/scripts/deps.sh test")
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "playwright-core")):
        pytest.fail("tests/node/node_modules/playwright-core missing: run tools/scripts/deps.sh test")
    os.makedirs(OUT, exist_ok=True)
    s = Server(os.path.join(tmpdir_path, "data"), web=WEB, keep_port=True).start()
    token = s.admin_token
    assert token
    base = "https://127.0.0.1:%d" % s.port
    flag = os.path.join(OUT, "restarted")
    if os.path.exists(flag):
        os.unlink(flag)
    node = subprocess.Popen(["node", "browser_ui.js", base, token, OUT], cwd=NODE_DIR,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        deadline = time.monotonic() + 180
        for line in node.stdout:
            lines.append(line.rstrip())
            print(line.rstrip(), flush=True)
            if line.strip() == "RESTART":
                # kill hard, as a crash would, then start again on the same port
                s.stop(sig=signal.SIGKILL)
                time.sleep(1.0)
                s.start()
                with open(flag, "w") as f:
                    f.write("go\n")
            if time.monotonic() > deadline:
                break
        rc = node.wait(timeout=60)
    finally:
        if node.poll() is None:
            node.kill()
        out = "\n".join(lines)
        src = s.stop()
    print(out)
    assert rc == 0, out
    assert "browser ui: all checks passed" in out
    assert src == 0
    assert not sanitizer_reports(s.log())
    for name in ("ui-list.png", "ui-entry.png"):
        assert os.path.getsize(os.path.join(OUT, name)) > 1000


def run_browser_script(tmpdir_path, script, timeout=280):
    """Run tests/node/SCRIPT against a fresh server serving web/; its output."""
    if not os.path.exists("/usr/bin/chromium"):
        pytest.fail("chromium is not installed: run tools/scripts/deps.sh test")
    os.makedirs(OUT, exist_ok=True)
    s = Server(os.path.join(tmpdir_path, "data"), web=WEB).start()
    base = "https://127.0.0.1:%d" % s.port
    try:
        r = subprocess.run(["node", script, base, s.admin_token, OUT], cwd=NODE_DIR,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=timeout)
    finally:
        src = s.stop()
    out = r.stdout + r.stderr
    print(out)
    assert r.returncode == 0, out
    assert src == 0
    assert not sanitizer_reports(s.log())
    return out


def test_v2_bugs_fixed_in_chromium(tmpdir_path):
    """issue 18's bugs: Load more, actor names, nothing matches, reply Cancel
    and Escape, page title, plain inline errors and a counter, status
    buttons with a question and an undo, partial search pages, ASCII folding."""
    out = run_browser_script(tmpdir_path, "browser_v2.js")
    assert "browser v2: all checks passed" in out


def test_rich_text_is_safe_in_chromium(tmpdir_path):
    """issue 18: the Markdown subset renders, and none of a list of XSS
    payloads (snapshot and live) gets a script, handler or bad URL in."""
    out = run_browser_script(tmpdir_path, "browser_richtext.js")
    assert "browser richtext: all checks passed" in out


def test_find_things_in_chromium(tmpdir_path):
    """issue 18: author, mine and date filters, sort by activity, filters in
    the URL, the result count, relative times (the page clock is fixed from
    the server's timestamps: no real date involved)."""
    out = run_browser_script(tmpdir_path, "browser_find.js")
    assert "browser find: all checks passed" in out


def test_accessibility_and_polish_in_chromium(tmpdir_path):
    """issue 18: contrast computed in the page (light and dark), names for
    every control, an aria-live region, a one-line phone header, deep
    threads flattened on a phone, dark mode through prefers-color-scheme."""
    out = run_browser_script(tmpdir_path, "browser_a11y.js")
    assert "browser a11y: all checks passed" in out


def test_edit_and_delete_comments_in_chromium(tmpdir_path):
    """issue 18: comment.edited / comment.deleted from the page, live to the
    others, tombstones that keep their replies; changelog-audit then names
    them in its log."""
    from conftest import BIN
    out = run_browser_script(tmpdir_path, "browser_comments.js")
    assert "browser comments: all checks passed" in out
    r = subprocess.run([os.path.join(BIN, "changelog-audit"), "log", "--data",
                        os.path.join(tmpdir_path, "data"), "--type", "comment"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "edited comment 1 on #1" in r.stdout
    assert "deleted comment 2 on #1" in r.stdout and "deleted comment 3 on #1" in r.stdout
    v = subprocess.run([os.path.join(BIN, "changelog-audit"), "verify", "--data",
                        os.path.join(tmpdir_path, "data")], capture_output=True, text=True,
                       timeout=30)
    assert v.returncode == 0, v.stdout + v.stderr


def test_admin_page_in_chromium(tmpdir_path):
    """issue 18: the admin page - users, roles, tokens, invite links and
    revocation through the protocol's commands; bad names refused in plain
    words; a member gets "admins only" and, forcing the page, the server's
    refusal; live updates; phone and dark mode; screenshots in build/."""
    from conftest import BIN
    out = run_browser_script(tmpdir_path, "browser_admin.js")
    assert "browser admin: all checks passed" in out
    for name in ("admin-desktop.png", "admin-phone-light.png", "admin-phone-dark.png",
                 "admin-member-desktop.png"):
        assert os.path.getsize(os.path.join(OUT, name)) > 1000


def test_presence_unread_and_notifications_in_chromium(tmpdir_path):
    """issue 18: presence (hidden users never shown), unread marks with the
    title count, read on open, mark all read, marks that follow the user to
    a second browser, and opt-in notifications for the three cases and not
    for one's own actions; changelog-audit then verifies the log."""
    from conftest import BIN
    out = run_browser_script(tmpdir_path, "browser_social.js")
    assert "browser social: all checks passed" in out
    r = subprocess.run([os.path.join(BIN, "changelog-audit"), "log", "--data",
                        os.path.join(tmpdir_path, "data"), "--type", "read"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "marked everything read up to seq" in r.stdout and "read #2 up to seq" in r.stdout
    v = subprocess.run([os.path.join(BIN, "changelog-audit"), "verify", "--data",
                        os.path.join(tmpdir_path, "data")], capture_output=True, text=True,
                       timeout=30)
    assert v.returncode == 0, v.stdout + v.stderr
