"""Timeouts on connections and a connection cap (issue 11 item 6), with raw sockets.

The query frontend runs as a real process with short limits: ``--timeout_request 1`` (request
line and headers), ``--timeout_content 1`` (body and response), ``--keepalive_timeout_s 1``
(idle keep-alive) and ``--max_connections 8``. Every test is bounded by a few seconds.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
import requests

from tests.integration.cluster_processes import Cluster, cluster, eventually

__all__ = ["cluster"]  # the fixture, imported so pytest finds it

MAX_CONNECTIONS = 8
LIMIT_FLAGS = (
    "--timeout_request", "1", "--timeout_content", "1", "--keepalive_timeout_s", "1",
    "--max_connections", str(MAX_CONNECTIONS),
)
# A closed connection must be noticed within the limit plus this slack (timer, loaded host).
SLACK_S = 2.0
REQUEST = b'POST /app/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 16\r\n\r\n{"input": [1.0]}'


@pytest.fixture
def limited(cluster: Cluster) -> Iterator[Cluster]:
    cluster.start_management()
    cluster.start_query(*LIMIT_FLAGS)
    cluster.add_app("app")
    eventually(lambda: cluster.predict("app", {"input": [1.0]}).status_code == 200 or None, what="app")
    yield cluster


def _connect(cluster: Cluster) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", cluster.query_port), timeout=10)
    sock.settimeout(10)
    return sock


def _seconds_until_closed(sock: socket.socket, started: float, trickle: bytes = b"") -> float:
    """Read (and optionally send ``trickle`` every 0.2 s) until the server closes; seconds taken."""
    sock.settimeout(0.2)
    while time.monotonic() - started < 10:
        try:
            if sock.recv(65536) == b"":
                return time.monotonic() - started
        except TimeoutError:
            if trickle:
                try:
                    sock.sendall(trickle)
                except OSError:
                    return time.monotonic() - started
        except OSError:  # reset by the server's abort
            return time.monotonic() - started
    raise AssertionError("the server kept the connection open for 10 s")


def _read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))
    while len(body) < length:
        body += sock.recv(65536)
    return head


def test_a_connection_that_sends_nothing_is_closed_after_timeout_request(limited: Cluster) -> None:
    with _connect(limited) as sock:
        assert _seconds_until_closed(sock, time.monotonic()) < 1 + SLACK_S


def test_headers_trickled_byte_by_byte_are_cut_off_at_timeout_request(limited: Cluster) -> None:
    with _connect(limited) as sock:
        started = time.monotonic()
        sock.sendall(b"POST /app/predict HTTP/1.1\r\nHost: x\r\n")
        assert _seconds_until_closed(sock, started, trickle=b"X") < 1 + SLACK_S


def test_a_body_shorter_than_its_content_length_is_cut_off_at_timeout_content(limited: Cluster) -> None:
    with _connect(limited) as sock:
        sock.sendall(b"POST /app/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"input\"")
        started = time.monotonic()
        assert _seconds_until_closed(sock, started) < 1 + SLACK_S


def test_an_idle_keep_alive_connection_is_closed_but_a_busy_one_is_served(limited: Cluster) -> None:
    with _connect(limited) as sock:
        for _ in range(3):  # a keep-alive client that keeps asking is served throughout
            sock.sendall(REQUEST)
            assert _read_response(sock).startswith(b"HTTP/1.1 200")
            time.sleep(0.5)
        assert _seconds_until_closed(sock, time.monotonic()) < 1 + SLACK_S


def test_connections_over_the_cap_get_503_with_retry_after(limited: Cluster) -> None:
    held = [_connect(limited) for _ in range(MAX_CONNECTIONS)]
    try:
        for sock in held:  # each sends a request slowly enough to stay open, within the limits
            sock.sendall(b"POST /app/predict HTTP/1.1\r\n")
        time.sleep(0.3)
        with _connect(limited) as extra:
            head = _read_response(extra)
            assert head.startswith(b"HTTP/1.1 503"), head
            assert b"Retry-After: 1" in head
    finally:
        for sock in held:
            sock.close()
    # Once they are gone, new connections are served again.
    eventually(lambda: limited.predict("app", {"input": [1.0]}).status_code == 200 or None,
               timeout_s=5, what="service after the held connections closed")


def test_ordinary_requests_are_unaffected(limited: Cluster) -> None:
    with requests.Session() as session:
        for _ in range(5):
            response = session.post(f"http://127.0.0.1:{limited.query_port}/app/predict",
                                     json={"input": [1.0]}, timeout=10)
            assert response.status_code == 200 and "query_id" in response.json()
