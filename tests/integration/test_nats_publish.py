"""changelogd --nats: the writer publishes every committed event to a real
nats-server (JetStream, file storage) on loopback, and the stream always
ends up equal to the log: same seqs, the exact envelope bytes, Nats-Msg-Id
epoch:seq and Nats-Expected-Last-Sequence seq-1 - after a broker restart,
after kill -9 of the writer while the broker was away, and after the
broker lost its storage. A stream that disagrees with the log (another
epoch, another event at the same seq, ahead of the log) is refused, said
in the log and /metrics, and left as it is."""
import os
import shutil
import signal
import subprocess
import time

import pytest

from conftest import BIN, NO_CONFIG, Server, free_port
from nats_util import (epoch_of, metrics, nats, nats_state, need_nats, wait_for,  # noqa: F401
                       wait_published, write, writers)
from tools_util import LmdbDump


def assert_stream_is_log(nats, data_dir):
    """Stream seq == log seq and every message is the log's bytes, with the
    headers that make the broker refuse gaps and doubles."""
    info, msgs = nats.dump()
    events = LmdbDump(data_dir).events()
    epoch = epoch_of(data_dir)
    assert info["description"] == "changelogd log, epoch " + epoch
    assert info["last_seq"] == len(events) and info["messages"] == len(events)
    assert [m["seq"] for m in msgs] == list(range(1, len(events) + 1))
    for m, (key, val) in zip(msgs, events):
        seq = int.from_bytes(key, "big")
        assert m["seq"] == seq
        assert m["subject"] == "changelog.events"
        assert bytes.fromhex(m["data"]) == val, "seq %d differs from the log" % seq
        assert m["msg_id"] == "%s:%d" % (epoch, seq)
        if seq == 1:
            assert m["expected_last_seq"] is None and m["expected_last_subject_seq"] == "0"
        else:
            assert m["expected_last_seq"] == str(seq - 1)
    return len(events)


def test_every_event_is_published_with_its_seq_and_bytes(nats, writers):
    w = writers(nats.url)
    seqs = write(w, 12)
    m = wait_published(w)
    assert m["changelogd_nats_published_seq"] == seqs[-1] == 14
    assert m["changelogd_nats_publish_errors_total"] == 0
    # the 2 bootstrap events were in the log before the stream existed
    assert m["changelogd_nats_republished_total"] == 2
    assert assert_stream_is_log(nats, w.data) == 14
    # a clean stop publishes what its last batches committed before it exits
    write(w, 5, "just before the stop")
    assert w.stop() == 0
    assert assert_stream_is_log(nats, w.data) == 19


def test_broker_restart_while_writing_refills_the_stream(nats, writers):
    w = writers(nats.url)
    write(w, 3)
    wait_published(w)
    nats.stop()
    # the broker is away: commands are still acknowledged at once
    seqs = write(w, 8, "while away")
    m = wait_for("the publisher to see the broker gone",
                 lambda: (lambda m: m if nats_state(m) != "live" else None)(metrics(w)))
    assert m["changelogd_nats_published_seq"] <= 5 < seqs[-1]
    nats.start()
    m = wait_published(w)
    assert m["changelogd_nats_published_seq"] == seqs[-1] == 13
    assert m["changelogd_nats_checks_total"] >= 2
    assert assert_stream_is_log(nats, w.data) == 13


def test_writer_killed_before_it_published_refills_on_restart(nats, writers):
    w = writers(nats.url)
    write(w, 2)
    wait_published(w)
    nats.stop()
    seqs = write(w, 6, "committed, never published")
    w.proc.send_signal(signal.SIGKILL)
    w.proc.wait(timeout=10)
    nats.start()
    info, _ = nats.dump()
    assert info["last_seq"] == 4 < seqs[-1]        # what the killed writer left
    w.start()
    m = wait_published(w)
    assert m["changelogd_nats_republished_total"] == seqs[-1] - 4
    assert assert_stream_is_log(nats, w.data) == 10


def test_broker_that_lost_its_storage_gets_the_stream_rebuilt(nats, writers):
    w = writers(nats.url)
    write(w, 5)
    wait_published(w)
    nats.kill()
    shutil.rmtree(nats.store)
    nats.start()
    m = wait_for("the stream to be rebuilt",
                 lambda: (lambda m: m if m["changelogd_nats_republished_total"] >= 2 + 7
                          and m["changelogd_nats_publish_lag"] == 0 else None)(metrics(w)))
    assert nats_state(m) == "live"
    assert assert_stream_is_log(nats, w.data) == 7
    write(w, 2, "after the rebuild")
    wait_published(w)
    assert assert_stream_is_log(nats, w.data) == 9


def stream_refused(w, why):
    m = wait_for("the writer to refuse the stream",
                 lambda: (lambda m: m if nats_state(m) == "diverged" else None)(metrics(w)))
    wait_for("the refusal in the log", lambda: why in w.log())
    assert "not publishing to NATS stream changelog" in w.log()
    return m


def test_a_stream_of_another_epoch_is_refused_and_left_alone(nats, writers):
    a = writers(nats.url, "a")
    write(a, 3)
    wait_published(a)
    a.stop()
    before = nats.dump()
    b = writers(nats.url, "b")          # another log: another epoch
    stream_refused(b, "the stream holds the log of another epoch (%s; this log is "
                   "epoch %s)" % (epoch_of(a.data), epoch_of(b.data)))
    # b keeps serving: its commands are acknowledged, the stream is untouched
    write(b, 2)
    assert nats.dump() == before
    assert metrics(b)["changelogd_nats_published_seq"] == 0
    # the operator deletes the stream: b's next check (every 5 s, also while
    # its clients keep writing) rebuilds it from its log
    nats.admin("delete")
    rounds = 0
    while nats_state(metrics(b)) != "live":
        write(b, 1, "while refused")
        rounds += 1
        assert rounds < 100, "never re-checked"
        time.sleep(0.2)
    wait_published(b)
    assert "stream changelog agrees with the log again" in b.log()
    assert assert_stream_is_log(nats, b.data) == 4 + rounds


def test_a_purged_stream_of_this_epoch_is_continued(nats, writers):
    w = writers(nats.url)
    write(w, 2)
    wait_published(w)
    nats.admin("purge")                 # messages gone, last seq 4 stays
    w.stop()
    w.start()
    write(w, 2, "after the purge")
    wait_published(w)
    assert "no longer holds its last message 4 (purged or expired)" in w.log()
    info, msgs = nats.dump()
    assert info["first_seq"] == 5 and info["last_seq"] == 6 and info["messages"] == 2
    events = LmdbDump(w.data).events()
    assert [bytes.fromhex(m["data"]) for m in msgs] == [v for _, v in events[4:]]


def test_a_cloned_log_that_went_its_own_way_is_refused(nats, writers, tmpdir_path):
    a = writers(nats.url, "a")
    write(a, 2)
    wait_published(a)
    a.stop()
    clone = os.path.join(tmpdir_path, "clone")
    shutil.copytree(a.data, clone)      # the same epoch, the same 4 events
    a.start()
    write(a, 1, "only in a")            # seq 5 in the stream
    wait_published(a)
    a.stop()
    before = nats.dump()
    # the clone, without NATS, writes its own seq 5 and 6
    c = Server(clone, plain=True)
    c.start()
    write(c, 2, "only in the clone")
    c.stop()
    c = writers(nats.url, "clone")
    stream_refused(c, "the stream's message 5 is not the log's event 5 (different bytes)")
    assert nats.dump() == before


def test_a_foreign_message_in_the_stream_stops_publishing(nats, writers):
    """Someone else stores a message in the stream: the broker refuses the
    writer's next publish (Nats-Expected-Last-Sequence), and the writer
    stops there instead of publishing around it."""
    w = writers(nats.url)
    write(w, 2)
    wait_published(w)
    assert nats.publish("changelog.events", b"not an event") == 5
    write(w, 1, "refused by the broker")
    m = stream_refused(w, "the stream's message 5 is not the log's event 5 (different bytes)")
    assert m["changelogd_nats_publish_errors_total"] >= 1
    assert m["changelogd_nats_published_seq"] == 4
    info, msgs = nats.dump()
    assert info["last_seq"] == 5 and bytes.fromhex(msgs[-1]["data"]) == b"not an event"
    assert "wrong last sequence" in w.log()


def test_a_stream_ahead_of_the_log_is_refused(nats, writers, tmpdir_path):
    a = writers(nats.url, "a")
    a.stop()
    clone = os.path.join(tmpdir_path, "clone")
    shutil.copytree(a.data, clone)      # 2 events
    a.start()
    write(a, 3)
    wait_published(a)
    a.stop()
    c = writers(nats.url, "clone")
    stream_refused(c, "the stream is ahead of the log (stream seq 5, log seq 2)")


def test_a_comma_separated_list_of_brokers_finds_the_live_one(nats, writers):
    """--nats a,b: the first broker in the list is down; the writer connects
    to the second and publishes everything (one URL per cluster node)."""
    dead = "nats://127.0.0.1:%d" % free_port()
    w = writers("%s, %s" % (dead, nats.url))
    seqs = write(w, 4)
    m = wait_published(w)
    assert m["changelogd_nats_published_seq"] == seqs[-1] == 6
    assert assert_stream_is_log(nats, w.data) == 6


@pytest.mark.parametrize("args,why", [
    (["--nats", "localhost:4222"], "--nats wants nats://HOST:PORT"),
    (["--nats", "nats://127.0.0.1:1,localhost:2"], "--nats wants nats://HOST:PORT"),
    (["--nats", "nats://127.0.0.1:1,"], "--nats wants nats://HOST:PORT"),
    (["--nats", ",".join(["nats://127.0.0.1:1"] * 17)], "a comma-separated list of at most 16"),
    (["--nats", "nats://127.0.0.1:1", "--nats-replicas", "0"], "--nats-replicas wants 1..5"),
    (["--nats", "nats://127.0.0.1:1", "--nats-replicas", "6"], "--nats-replicas wants 1..5"),
    (["--nats", "nats://127.0.0.1:1", "--nats-max-msgs", "0"], "--nats-max-msgs wants"),
    (["--nats", "nats://127.0.0.1:1", "--nats-max-bytes", "10K"], "--nats-max-bytes wants"),
])
def test_bad_nats_flags_are_refused(tmpdir_path, args, why):
    p = subprocess.run([os.path.join(BIN, "changelogd"), "--config", NO_CONFIG, "--data",
                        os.path.join(tmpdir_path, "d")] + args, capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 2 and why in p.stderr, p.stderr


@pytest.mark.parametrize("args,why", [
    (["--nats-stream", "a.b"], "--nats-stream a.b: a stream name is 1 to 64 letters"),
    (["--nats-stream", "x" * 65], "a stream name is 1 to 64 letters"),
    (["--nats-creds", "/nonexistent/x.creds"],
     "cannot read --nats-creds /nonexistent/x.creds (No such file or directory)"),
])
def test_unusable_nats_settings_stop_the_start(tmpdir_path, args, why):
    need_nats()
    url = "nats://127.0.0.1:%d" % free_port()
    p = subprocess.run([os.path.join(BIN, "changelogd"), "--config", NO_CONFIG, "--data",
                        os.path.join(tmpdir_path, "d"), "--listen", "127.0.0.1:%d" % free_port(), "--plain",
                        "--no-web", "--nats", url] + args, capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 1 and why in p.stderr, p.stderr
