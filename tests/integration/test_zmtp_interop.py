"""The sans-I/O ZMTP codec against real libzmq sockets (pyzmq) over 127.0.0.1.

Our side is a plain blocking TCP socket driven by :class:`ZmtpConnection`: once as a DEALER
connecting to a libzmq ROUTER (the container runtime's case), once as a ROUTER accepting a
libzmq DEALER (the native frontend's case), and once with libzmq sending heartbeat PINGs.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
import zmq

from clipper_core.rpc.zmtp import Message, Ready, ZmtpConnection, ZmtpEvent

TIMEOUT_S = 5.0


@pytest.fixture
def ctx() -> Iterator[zmq.Context[zmq.Socket[bytes]]]:
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    yield context
    context.destroy(linger=0)


def pump(sock: socket.socket, conn: ZmtpConnection, count: int) -> list[ZmtpEvent]:
    """Receive until ``count`` events arrived, sending whatever the codec queues (PONGs)."""
    events: list[ZmtpEvent] = []
    while len(events) < count:
        data = sock.recv(65536)
        assert data, "peer closed the connection"
        events += conn.receive_data(data)
        if pending := conn.data_to_send():
            sock.sendall(pending)
    return events


def send(sock: socket.socket, conn: ZmtpConnection, frames: list[bytes]) -> None:
    buffers = conn.encode(frames)
    sent = sock.sendmsg(buffers)
    assert sent == sum(len(memoryview(b).cast("B")) for b in buffers)


def test_our_dealer_talks_to_a_libzmq_router(ctx: zmq.Context[zmq.Socket[bytes]]) -> None:
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
        conn = ZmtpConnection("DEALER", identity=b"replica-1", as_server=False)
        sock.sendall(conn.data_to_send())
        assert pump(sock, conn, 1) == [Ready("ROUTER", b"")]
        send(sock, conn, [b"", b"\x02\x00\x00\x00"])
        assert router.poll(int(TIMEOUT_S * 1000))
        assert router.recv_multipart() == [b"replica-1", b"", b"\x02\x00\x00\x00"]
        big = bytes(range(256)) * 1000
        router.send_multipart([b"replica-1", b"", b"x" * 255, big, b"end"])
        assert pump(sock, conn, 1) == [Message([b"", b"x" * 255, big, b"end"])]
        # A large frame from our side goes out as its own buffer.
        send(sock, conn, [b"", big])
        assert router.poll(int(TIMEOUT_S * 1000))
        assert router.recv_multipart() == [b"replica-1", b"", big]


def test_a_libzmq_dealer_talks_to_our_router(ctx: zmq.Context[zmq.Socket[bytes]]) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        dealer = ctx.socket(zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.setsockopt(zmq.IDENTITY, b"abc")
        dealer.connect(f"tcp://127.0.0.1:{port}")
        server.settimeout(TIMEOUT_S)
        sock, _ = server.accept()
        with sock:
            sock.settimeout(TIMEOUT_S)
            conn = ZmtpConnection("ROUTER", as_server=True)
            sock.sendall(conn.data_to_send())
            dealer.send_multipart([b"", b"hello", b"y" * 70_000])
            assert pump(sock, conn, 2) == [Ready("DEALER", b"abc"), Message([b"", b"hello", b"y" * 70_000])]
            send(sock, conn, [b"", b"reply"])
            assert dealer.poll(int(TIMEOUT_S * 1000))
            assert dealer.recv_multipart() == [b"", b"reply"]


def test_libzmq_heartbeats_are_answered_and_keep_the_connection(ctx: zmq.Context[zmq.Socket[bytes]]) -> None:
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.setsockopt(zmq.HEARTBEAT_IVL, 20)
    router.setsockopt(zmq.HEARTBEAT_TIMEOUT, 200)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
        conn = ZmtpConnection("DEALER", identity=b"hb", as_server=False)
        sock.sendall(conn.data_to_send())
        assert pump(sock, conn, 1) == [Ready("ROUTER", b"")]
        pongs = 0
        deadline = time.monotonic() + 0.6
        sock.settimeout(0.05)
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            assert data, "libzmq dropped the connection"
            assert conn.receive_data(data) == []
            if pending := conn.data_to_send():
                pongs += 1
                sock.sendall(pending)
        assert pongs >= 5
        sock.settimeout(TIMEOUT_S)
        send(sock, conn, [b"", b"still here"])
        assert router.poll(int(TIMEOUT_S * 1000))
        assert router.recv_multipart() == [b"hb", b"", b"still here"]
