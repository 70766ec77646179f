"""SIGHUP reloads the TLS certificate (net/tlsreload.c): new handshakes get
the new certificate, a session opened before keeps working on the old one,
and a bad new file (garbage, a key that does not match, a missing file)
is logged and leaves the certificate in use unchanged. The certificate is
read the way a client sees it: Python ssl's peer certificate."""
import asyncio
import os
import signal
import socket
import ssl
import subprocess
import time

from conftest import Client, all_entries, run, tls_context


def make_cert(dirpath, name):
    cert = os.path.join(dirpath, name + ".crt")
    key = os.path.join(dirpath, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "30", "-subj", "/CN=" + name], check=True,
                   capture_output=True)
    return cert, key


def der_of(pem_path):
    with open(pem_path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def peer_der(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with tls_context().wrap_socket(raw, server_hostname="localhost") as s:
            return s.getpeercert(binary_form=True)


def install(src, dst):
    """Replace dst the way certbot's renewal does: a new file renamed over."""
    tmp = dst + ".new"
    with open(src, "rb") as f, open(tmp, "wb") as g:
        g.write(f.read())
    os.replace(tmp, dst)


def hup_and_wait(server, text, before):
    """SIGHUP, then wait until the log has one more line containing text."""
    server.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    while time.time() < deadline:
        if server.log().count(text) > before:
            return
        time.sleep(0.05)
    raise AssertionError("no %r in the log after SIGHUP:\n%s" % (text, server.log()))


def test_sighup_swaps_certificate_and_keeps_sessions(make_server, tmpdir_path):
    a_cert, a_key = make_cert(tmpdir_path, "first")
    b_cert, b_key = make_cert(tmpdir_path, "second")
    c_cert, _ = make_cert(tmpdir_path, "third")
    live = os.path.join(tmpdir_path, "live")
    os.mkdir(live)
    cert, key = os.path.join(live, "cert.pem"), os.path.join(live, "key.pem")
    install(a_cert, cert)
    install(a_key, key)
    s = make_server("--cert", cert, "--key", key)
    assert peer_der(s.port) == der_of(a_cert)
    ok, bad = "reloaded the TLS certificate", "certificate not reloaded"

    async def scenario():
        old = await Client.connect(s, s.admin_token)
        sslobj = old.ws.transport.get_extra_info("ssl_object")
        assert sslobj.getpeercert(binary_form=True) == der_of(a_cert)
        await old.command("createEntry", {"title": "before", "kind": "fix"})

        # a good renewal: new handshakes get B, the open session goes on
        install(b_cert, cert)
        install(b_key, key)
        hup_and_wait(s, ok, 0)
        assert peer_der(s.port) == der_of(b_cert)
        await old.command("createEntry", {"title": "after", "kind": "fix"})
        new = await Client.connect(s, s.admin_token)
        assert new.ws.transport.get_extra_info("ssl_object").getpeercert(
            binary_form=True) == der_of(b_cert)
        titles = [e["title"] for e in await all_entries(new)]
        assert "before" in titles and "after" in titles

        # garbage in place of the certificate: error, B stays
        with open(cert, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot base64 at all\n")
        hup_and_wait(s, bad, 0)
        assert peer_der(s.port) == der_of(b_cert)

        # a certificate whose key is not the key file's: error, B stays
        install(c_cert, cert)
        hup_and_wait(s, bad, 1)
        assert "does not match" in s.log().split(bad)[-1].splitlines()[0]
        assert peer_der(s.port) == der_of(b_cert)

        # the key file gone: error, B stays
        install(b_cert, cert)
        os.unlink(key)
        hup_and_wait(s, bad, 2)
        assert peer_der(s.port) == der_of(b_cert)

        # both sessions lived through all of it
        await old.command("createEntry", {"title": "still here", "kind": "fix"})
        await new.query("getChangelogEntries")
        await old.close()
        await new.close()

    run(scenario())
    assert s.log().count(ok) == 1
    assert s.proc.poll() is None


def test_sighup_in_plain_mode_is_logged_not_fatal(make_server):
    s = make_server(plain=True)
    s.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    while "no certificate to reload" not in s.log() and time.time() < deadline:
        time.sleep(0.05)
    assert "no certificate to reload" in s.log()
    assert s.get("/healthz")[0] == 200
