"""The runtime's native ZMTP link (containers.python.transport.NativeTransport) on 127.0.0.1.

Against plain sockets driven by the ZMTP codec (writes the kernel does not take at once,
sends queued before the handshake, the wake pipe, a peer breaking the protocol), and, as a
real process: through the query frontend's RPC service on both of its ROUTERs (libzmq, kept
for CurveZMQ, and native), through a whole query frontend, and against a libzmq ROUTER whose
port closes and reopens (the reconnect). test_container_runtime.py drives the runtime through
a libzmq ROUTER frame by frame.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import zmq

from clipper_core.query_frontend.rpc_service import RpcService
from clipper_core.query_frontend.rpc_zmq import ZmqRouterTransport
from clipper_core.rpc import InputType
from clipper_core.rpc.zmtp import Message, Ready, ZmtpConnection, ZmtpEvent
from clipper_core.settings import RedisOptions
from clipper_core.state import ContainerInfo, StateStore
from containers.python.transport import SEND_QUEUE_MESSAGES, NativeTransport
from tests.helpers import RedisServer, stop_process
from tests.integration.cluster_processes import Cluster, cluster, eventually, make_sum_model
from tests.integration.container_harness import (  # noqa: F401 (fixtures)
    FAST_KEEPALIVE,
    HEARTBEAT,
    Container,
    FakeFrontend,
    frontend_fixture,
    launch_fixture,
    make_failing,
    outputs_of,
    u32,
    zmq_context_fixture,
    zmq_thread_names,
)

__all__ = ["cluster"]  # the fixture, imported so pytest finds it

TIMEOUT_S = 10.0


class PeerRouter:
    """The frontend's side as a plain listening socket plus the codec (one connection)."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(TIMEOUT_S)
        self.port: int = self.server.getsockname()[1]
        self.sock: socket.socket | None = None
        self.zmtp = ZmtpConnection("ROUTER", as_server=True)

    def accept(self) -> socket.socket:
        sock, _ = self.server.accept()
        sock.settimeout(TIMEOUT_S)
        self.sock = sock
        self.zmtp = ZmtpConnection("ROUTER", as_server=True)
        sock.sendall(self.zmtp.data_to_send())
        return sock

    def events(self, count: int) -> list[ZmtpEvent]:
        assert self.sock is not None
        events: list[ZmtpEvent] = []
        while len(events) < count:
            data = self.sock.recv(1 << 20)
            assert data, "the transport closed the connection"
            events += self.zmtp.receive_data(data)
        return events

    def send(self, frames: list[bytes]) -> None:
        assert self.sock is not None
        self.sock.sendall(b"".join(bytes(b) for b in self.zmtp.encode(frames)))

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.server.close()


@pytest.fixture
def peer() -> Iterator[PeerRouter]:
    router = PeerRouter()
    yield router
    router.close()


@pytest.fixture
def wake_pipe() -> Iterator[tuple[int, int]]:
    read_fd, write_fd = os.pipe()
    yield read_fd, write_fd
    os.close(read_fd)
    os.close(write_fd)


def pump_until(link: NativeTransport, done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not done():
        assert time.monotonic() < deadline, "timed out"
        link.wait(20)


def test_messages_sent_before_the_handshake_go_out_in_order_after_it(
    peer: PeerRouter, wake_pipe: tuple[int, int]
) -> None:
    link = NativeTransport("127.0.0.1", peer.port, wake_pipe[0])
    try:
        link.connect()
        assert link.send([b"", b"first"]) and link.send([b"", b"second"])
        peer.accept()
        pump_until(link, lambda: link._is_ready)
        assert peer.events(3) == [Ready("DEALER", b""), Message([b"", b"first"]), Message([b"", b"second"])]
        peer.send([b"", b"reply"])
        assert link.wait(int(TIMEOUT_S * 1000)) == (True, False)
        assert link.recv() == [b"", b"reply"]
        assert link.recv() is None
    finally:
        link.close()


def test_the_queue_before_the_handshake_is_bounded(wake_pipe: tuple[int, int]) -> None:
    link = NativeTransport("127.0.0.1", 9, wake_pipe[0])  # never connects: nothing listens
    try:
        for _ in range(SEND_QUEUE_MESSAGES):
            assert link.send([b"", b"x"])
        assert not link.send([b"", b"one too many"])
    finally:
        link.close()


def test_a_message_larger_than_the_kernel_takes_is_finished_while_waiting(
    peer: PeerRouter, wake_pipe: tuple[int, int]
) -> None:
    link = NativeTransport("127.0.0.1", peer.port, wake_pipe[0])
    try:
        link.connect()
        peer.accept()
        pump_until(link, lambda: link._is_ready)
        big = os.urandom(32 << 20)
        started = time.monotonic()
        assert link.send([b"", big, b"tail"])
        assert link.send([b"", b"after"])
        assert time.monotonic() - started < 1.0, "send blocked"
        assert link._unsent, "the kernel took 32 MiB at once; the test proves nothing"
        received: list[ZmtpEvent] = []
        reader = threading.Thread(target=lambda: received.extend(peer.events(3)))
        reader.start()
        pump_until(link, lambda: not reader.is_alive())
        reader.join()
        assert received == [Ready("DEALER", b""), Message([b"", big, b"tail"]), Message([b"", b"after"])]
    finally:
        link.close()


def test_wait_returns_on_the_wake_pipe_and_on_timeout(peer: PeerRouter, wake_pipe: tuple[int, int]) -> None:
    link = NativeTransport("127.0.0.1", peer.port, wake_pipe[0])
    try:
        link.connect()
        started = time.monotonic()
        assert link.wait(150) == (False, False)
        assert 0.14 <= time.monotonic() - started < 2.0
        os.write(wake_pipe[1], b"s")
        assert link.wait(int(TIMEOUT_S * 1000)) == (False, True)
    finally:
        link.close()


def test_a_peer_breaking_the_protocol_is_dropped_and_reconnected(
    peer: PeerRouter, wake_pipe: tuple[int, int]
) -> None:
    link = NativeTransport("127.0.0.1", peer.port, wake_pipe[0])
    try:
        link.connect()
        first = peer.accept()
        first.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        accepted: list[socket.socket] = []
        acceptor = threading.Thread(target=lambda: accepted.append(peer.accept()))
        acceptor.start()
        pump_until(link, lambda: not acceptor.is_alive())
        acceptor.join()
        assert accepted, "no second connection"
        link.send([b"", b"again"])
        pump_until(link, lambda: link._is_ready)
        assert peer.events(2) == [Ready("DEALER", b""), Message([b"", b"again"])]
        first.close()
    finally:
        link.close()


# ------------------------------------------------------------------ real processes


def _start_noop_container(port: int, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    child_env = {
        **env,
        "CLIPPER_MODEL_NAME": "noop",
        "CLIPPER_MODEL_VERSION": "1",
        "CLIPPER_PORT": str(port),
        "CLIPPER_READY_FILE": "",
    }
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "containers.python.noop_container"],
            env=child_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


class _Listener:
    def __init__(self) -> None:
        self.added: list[ContainerInfo] = []

    async def replica_added(self, info: ContainerInfo) -> None:
        self.added.append(info)

    def replica_removed(self, info: ContainerInfo) -> None:
        pass

    def replica_draining(self, info: ContainerInfo) -> None:
        pass


@pytest.mark.parametrize("router", ["libzmq", "native"])
async def test_native_runtime_serves_through_the_frontends_rpc_service(
    router: str, redis_clean: RedisServer, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    transport = None if router == "native" else ZmqRouterTransport("127.0.0.1", 0, max_message_bytes=64 << 20)
    listener = _Listener()
    async with StateStore(RedisOptions(redis_clean.host, redis_clean.port)) as store:
        service = RpcService(store, "127.0.0.1", 0, listener=listener, transport=transport)
        await service.start()
        process = _start_noop_container(service.port, subprocess_env, tmp_path / "container.log")
        try:
            deadline = time.monotonic() + TIMEOUT_S
            while not listener.added:
                assert time.monotonic() < deadline, (tmp_path / "container.log").read_text()
                await asyncio.sleep(0.02)
            connection = listener.added[0].zmq_connection_id
            for i in range(20):
                batch = [struct.pack("<d", float(i))] * (1 + i)
                outputs = await asyncio.wait_for(service.send_batch(connection, InputType.DOUBLES, batch), 5)
                assert outputs == [b"1.0"] * len(batch)
            big = [os.urandom(8 << 20), struct.pack("<d", 1.0)]  # 1 Mi doubles: many reads
            assert await asyncio.wait_for(service.send_batch(connection, InputType.DOUBLES, big), 10) == [
                b"1.0",
                b"1.0",
            ]
            assert zmq_thread_names(process.pid) == []
        finally:
            stop_process(process)
            await service.aclose()


def test_native_runtime_serves_through_the_query_frontend(cluster: Cluster) -> None:
    cluster.start_management()
    cluster.start_query()
    cluster.add_app("app")
    cluster.add_model("m", "1")
    cluster.admin("add_model_links", {"app_name": "app", "model_names": ["m"]})
    container = cluster.start_container(make_sum_model(), "m", "1")
    assert eventually(lambda: cluster.real_output("app", [1.5, 2.0]), what="real output") == 3.5
    for i in range(20):
        assert cluster.real_output("app", [float(i), 1.0]) == i + 1.0
    # No libzmq I/O thread in the container: it spoke ZMTP itself.
    assert zmq_thread_names(container.pid) == []
    assert container.poll() is None


def test_reconnects_in_the_same_session_when_the_port_closes_and_reopens(
    zmq_context: zmq.Context, frontend: FakeFrontend, launch: Callable[..., Container]
) -> None:
    container = launch(make_failing(), input_type="strings", **FAST_KEEPALIVE)
    identity = frontend.register()
    assert outputs_of(frontend.predict(identity, 1, 4, [b"before"]), 1) == ["BEFORE"]
    frontend.close()
    time.sleep(0.5)  # a few refused reconnects (every 100 ms) and queued heartbeats
    revived = FakeFrontend(zmq_context, frontend.port)
    reopened = time.monotonic()
    try:
        sender, frames = revived.recv()
        assert frames == HEARTBEAT
        # Within a few reconnect intervals, not a session timeout (5 s here).
        assert time.monotonic() - reopened < 2.0
        revived.send(sender, [b"", u32(3), u32(2), u32(1)])  # unknown connection: metadata, please
        while frames == HEARTBEAT:  # heartbeats queued while the port was closed come first
            again, frames = revived.recv()
            assert again == sender
        assert frames == [b"", u32(0), b"test-model", b"4", b"4", u32(3)]
        assert outputs_of(revived.predict(sender, 2, 4, [b"after"]), 2) == ["AFTER"]
    finally:
        revived.close()
    assert "reconnected to tcp://127.0.0.1" in container.log
    assert "session 2" not in container.log
    assert zmq_thread_names(container.process.pid) == []


def exchange(link: NativeTransport, peer: PeerRouter, body: bytes) -> None:
    """The peer sends ``body``; the link takes it and answers; the peer reads the answer."""
    peer.send([b"", body])
    assert link.wait(int(TIMEOUT_S * 1000)) == (True, False)
    assert link.recv() == [b"", body]
    assert link.send([b"", b"re:" + body])
    assert peer.events(1) == [Message([b"", b"re:" + body])]


def test_requests_in_quick_succession_make_the_link_poll_and_idle_waits_stop_it(
    peer: PeerRouter, wake_pipe: tuple[int, int]
) -> None:
    link = NativeTransport("127.0.0.1", peer.port, wake_pipe[0], spin_max_s=0.05)
    try:
        link.connect()
        peer.accept()
        pump_until(link, lambda: link._is_ready)
        peer.events(1)  # READY
        for i in range(10):  # each wait far shorter than the 50 ms bound
            exchange(link, peer, b"q%d" % i)
        polling = link.spin_window_s
        assert polling > 0.0
        # While it polls, the wake pipe still ends a wait at once.
        os.write(wake_pipe[1], b"s")
        started = time.monotonic()
        assert link.wait(int(TIMEOUT_S * 1000)) == (False, True)
        assert time.monotonic() - started < 1.0
        os.read(wake_pipe[0], 16)
        assert link.spin_window_s == polling  # a wake-up is not a wait for the frontend
        for _ in range(20):  # waits longer than the bound: nothing comes for 60 ms each
            assert link.wait(60) == (False, False)
        assert link.spin_window_s == 0.0
        exchange(link, peer, b"after")  # still serving once it sleeps again
    finally:
        link.close()


def test_a_zero_bound_never_polls(peer: PeerRouter, wake_pipe: tuple[int, int]) -> None:
    link = NativeTransport("127.0.0.1", peer.port, wake_pipe[0], spin_max_s=0.0)
    try:
        link.connect()
        peer.accept()
        pump_until(link, lambda: link._is_ready)
        peer.events(1)
        for i in range(5):
            exchange(link, peer, b"q%d" % i)
        assert link.spin_window_s == 0.0
    finally:
        link.close()
