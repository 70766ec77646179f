"""http_util.py - a small HTTP(S) client for the HTTP API tests (http.client)."""
import http.client
import json
import socket

from conftest import tls_context


def connect(server, timeout=10):
    if server.plain:
        return http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    return http.client.HTTPSConnection("127.0.0.1", server.port, timeout=timeout,
                                       context=tls_context())


def call(server, method, path, token=None, body=None, headers=None, conn=None, raw=None):
    """One request; returns (status, headers as a lower-case dict, JSON or None)."""
    h = dict(headers or {})
    if token:
        h["Authorization"] = "Bearer " + token
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        h.setdefault("Content-Type", "application/json")
    own = conn is None
    c = conn or connect(server)
    try:
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        text = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        if text and hdrs.get("content-type", "").startswith("application/json"):
            return r.status, hdrs, json.loads(text)
        return r.status, hdrs, (text or None)
    finally:
        if own:
            c.close()


def tls_raw(server, timeout=60, rcvbuf=None):
    """A raw TLS socket to the server, for requests http.client cannot make."""
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    if rcvbuf:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    return tls_context().wrap_socket(raw, server_hostname="127.0.0.1")


def read_all(sock):
    """Everything the server sends until it closes (or resets)."""
    out = b""
    try:
        while True:
            d = sock.recv(65536)
            if not d:
                break
            out += d
    except (ConnectionResetError, OSError):
        pass
    return out
