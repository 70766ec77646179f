"""test_http_hygiene.py - methods and request bodies the server does not take.

PUT/DELETE/PATCH/OPTIONS/POST on the static paths answer 405 with Allow;
a request body where none is read (Transfer-Encoding, a non-zero
Content-Length on a GET) is 400 and the connection closes, so a second
request hidden in the body is never answered (request smuggling behind a
proxy). Driven with raw sockets, plain and over TLS.
"""
import os
import socket

import pytest

from conftest import Server, tls_context, sanitizer_reports

WEB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "web")


@pytest.fixture(params=["plain", "tls"])
def web_server(request, tmpdir_path):
    s = Server(os.path.join(tmpdir_path, "data"), web=WEB,
               plain=request.param == "plain").start()
    yield s
    assert s.stop() == 0
    assert not sanitizer_reports(s.log())


def exchange(server, raw, timeout=5):
    """Send raw bytes, read until the server closes (or times out)."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    if not server.plain:
        sock = tls_context().wrap_socket(sock, server_hostname="localhost")
    sock.sendall(raw)
    data, closed = b"", False
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                closed = True
                break
            data += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    except OSError:
        closed = True
    sock.close()
    return data, closed


def statuses(data):
    return [l.split(b" ")[1] for l in data.split(b"\r\n") if l.startswith(b"HTTP/1.")]


INNER = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "POST"])
@pytest.mark.parametrize("path", ["/", "/app.js", "/healthz", "/metrics", "/nothing-here"])
def test_static_paths_refuse_other_methods(web_server, method, path):
    data, closed = exchange(web_server, b"%s %s HTTP/1.1\r\nHost: localhost\r\n"
                            b"Content-Length: 0\r\n\r\n" % (method.encode(), path.encode()))
    assert statuses(data) == [b"405"], data
    head = data.split(b"\r\n\r\n")[0].lower()
    assert b"\r\nallow: get, head" in head, head
    assert closed
    # and the page itself is still served
    status, _, _ = web_server.get("/healthz")
    assert status == 200


def test_get_and_head_still_work(web_server):
    status, _, body = web_server.get("/")
    assert status == 200 and b"<html" in body.lower()
    data, _ = exchange(web_server, b"HEAD / HTTP/1.1\r\nHost: localhost\r\n"
                       b"Connection: close\r\n\r\n")
    assert statuses(data) == [b"200"], data


@pytest.mark.parametrize("path", ["/", "/healthz"])
def test_chunked_get_is_refused_and_its_body_never_answered(web_server, path):
    body = b"%x\r\n" % len(INNER) + INNER + b"\r\n0\r\n\r\n"
    data, closed = exchange(web_server, b"GET %s HTTP/1.1\r\nHost: localhost\r\n"
                            b"Transfer-Encoding: chunked\r\n\r\n" % path.encode() + body)
    assert statuses(data) == [b"400"], data
    assert b'"seq"' not in data          # /healthz inside the body was not answered
    assert closed


@pytest.mark.parametrize("path", ["/", "/healthz", "/ws/x"])
def test_get_with_content_length_is_refused(web_server, path):
    data, closed = exchange(web_server, b"GET %s HTTP/1.1\r\nHost: localhost\r\n"
                            b"Content-Length: %d\r\n\r\n" % (path.encode(), len(INNER)) + INNER)
    assert statuses(data) == [b"400"], data
    assert b'"seq"' not in data
    assert closed


def test_zero_content_length_on_get_is_fine(web_server):
    data, _ = exchange(web_server, b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n"
                       b"Content-Length: 0\r\nConnection: close\r\n\r\n")
    assert statuses(data) == [b"200"], data
