"""The native ZMTP ROUTER (``rpc_native``): what a bad peer gets, and what the others keep.

Service-level tests use libzmq DEALERs (the interop proof with the original's containers);
transport-level tests also speak ZMTP by hand over a plain socket (the shared codec, as a
DEALER client) where a libzmq socket cannot misbehave on purpose.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Iterator

import pytest

from clipper_core.errors import ModelFailed
from clipper_core.query_frontend.rpc_native import NativeRouterTransport
from clipper_core.query_frontend.rpc_service import RpcService
from clipper_core.query_frontend.rpc_transport import MAX_MESSAGES_PER_DRAIN, PeerBusy, PeerGone
from clipper_core.rpc import (
    InputType,
    PredictRequest,
    PredictResponse,
    decode_from_frontend,
    encode_container_heartbeat,
    encode_predict_response,
)
from clipper_core.rpc.zmtp import Message, ZmtpConnection
from clipper_core.state import StateStore
from tests.helpers import wait_until
from tests.integration.test_rpc_service import Listener, RawDealer, listener, store

__all__ = ["listener", "store"]  # fixtures, imported so pytest finds them

MAX_MESSAGE_BYTES = 1 << 20
NATIVE_LOGGER = "clipper_core.query_frontend.rpc_native"


@pytest.fixture
async def service(store: StateStore, listener: Listener) -> AsyncIterator[RpcService]:
    service = RpcService(
        store, "127.0.0.1", 0, listener=listener, inactivity_timeout_s=30, max_message_bytes=MAX_MESSAGE_BYTES
    )
    await service.start()
    yield service
    await service.aclose()


@pytest.fixture
def dealers() -> Iterator[list[RawDealer]]:
    made: list[RawDealer] = []
    yield made
    for dealer in made:
        dealer.close()


async def registered(service: RpcService, dealers: list[RawDealer], listener: Listener) -> RawDealer:
    dealer = RawDealer(service.port)
    dealers.append(dealer)
    await dealer.register()
    count = len(listener.added)
    await wait_until(lambda: len(listener.added) > count)
    return dealer


async def round_trip(service: RpcService, dealer: RawDealer, connection_id: int) -> None:
    future = service.send_batch(connection_id, InputType.BYTES, [b"in"])
    request = decode_from_frontend(await dealer.recv())
    assert isinstance(request, PredictRequest)
    await dealer.send(encode_predict_response(PredictResponse(request.message_id, [b"out"])))
    assert await asyncio.wait_for(future, 5) == [b"out"]


class RecordingEvents:
    """PeerEvents that keep what they are told, in order."""

    def __init__(self) -> None:
        self.log: list[tuple[str, bytes, list[bytes]]] = []

    def peer_connected(self, peer: bytes) -> None:
        self.log.append(("connected", peer, []))

    def peer_message(self, peer: bytes, frames: list[bytes]) -> None:
        self.log.append(("message", peer, frames))

    def peer_gone(self, peer: bytes) -> None:
        self.log.append(("gone", peer, []))

    def peers(self, kind: str) -> list[bytes]:
        return [peer for what, peer, _ in self.log if what == kind]


@pytest.fixture
async def router() -> AsyncIterator[tuple[NativeRouterTransport, RecordingEvents]]:
    transport = NativeRouterTransport("127.0.0.1", 0, max_message_bytes=MAX_MESSAGE_BYTES)
    events = RecordingEvents()
    await transport.start(events)
    yield transport, events
    await transport.aclose()


class HandDealer:
    """A DEALER speaking ZMTP by hand (the shared codec) over an asyncio stream."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, codec: ZmtpConnection
    ) -> None:
        self.reader, self.writer, self.codec = reader, writer, codec

    @classmethod
    async def connect(cls, port: int, identity: bytes = b"", socket_type: str = "DEALER") -> HandDealer:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        codec = ZmtpConnection(socket_type, identity=identity, as_server=False)
        writer.write(codec.data_to_send())
        return cls(reader, writer, codec)

    async def recv(self) -> list[bytes]:
        async with asyncio.timeout(5):
            while True:
                for event in self.codec.receive_data(await self.reader.read(65536)):
                    if isinstance(event, Message):
                        return event.frames

    def close(self) -> None:
        self.writer.close()


# ---------------------------------------------------------------------------- bad peers


async def test_garbage_is_dropped_with_a_warning_and_others_keep_working(
    service: RpcService, dealers: list[RawDealer], listener: Listener, caplog: pytest.LogCaptureFixture
) -> None:
    good = await registered(service, dealers, listener)
    with caplog.at_level(logging.WARNING, logger=NATIVE_LOGGER):
        reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"\0" * 64)
        async with asyncio.timeout(5):
            while await reader.read(65536):  # our greeting, then EOF: we were dropped
                pass
        writer.close()
    assert any("Disconnected an RPC peer" in r.getMessage() for r in caplog.records)
    await round_trip(service, good, 0)


async def test_a_wrong_socket_type_is_dropped_and_others_keep_working(
    service: RpcService, dealers: list[RawDealer], listener: Listener, caplog: pytest.LogCaptureFixture
) -> None:
    good = await registered(service, dealers, listener)
    with caplog.at_level(logging.WARNING, logger=NATIVE_LOGGER):
        # ZMTP-correct, but a REP cannot talk to a ROUTER. (libzmq sockets check the type on
        # their side too, and would hang up before saying theirs: hence the hand-made peer.)
        rep = await HandDealer.connect(service.port, socket_type="REP")
        async with asyncio.timeout(5):
            while await rep.reader.read(65536):  # our greeting and READY, then EOF
                pass
        rep.close()
    assert any("'REP'" in r.getMessage() for r in caplog.records)
    await round_trip(service, good, 0)
    assert service.connection_count == 1


async def test_a_peer_closing_mid_batch_fails_that_batch_at_once(
    service: RpcService, dealers: list[RawDealer], listener: Listener
) -> None:
    other = await registered(service, dealers, listener)
    leaving = await registered(service, dealers, listener)
    future = service.send_batch(1, InputType.BYTES, [b"x"])
    await leaving.recv()
    leaving.close()
    dealers.remove(leaving)
    # Well before the busy probe (0.25 s) could find it: connection_lost says so.
    with pytest.raises(ModelFailed, match=r"replica 1 disconnected$"):
        await asyncio.wait_for(future, 0.2)
    assert listener.removed == [listener.added[1]]
    assert service.connection_count == 1
    await round_trip(service, other, 0)


async def test_an_oversize_message_disconnects_only_its_peer(
    service: RpcService, dealers: list[RawDealer], listener: Listener, caplog: pytest.LogCaptureFixture
) -> None:
    good = await registered(service, dealers, listener)
    big = await registered(service, dealers, listener)
    with caplog.at_level(logging.WARNING, logger=NATIVE_LOGGER):
        pending = service.send_batch(1, InputType.BYTES, [b"x"])
        request = decode_from_frontend(await big.recv())
        assert isinstance(request, PredictRequest)
        oversize = PredictResponse(request.message_id, [b"\0" * (2 * MAX_MESSAGE_BYTES)])
        await big.send(encode_predict_response(oversize))
        with pytest.raises(ModelFailed, match="disconnected"):
            await asyncio.wait_for(pending, 5)
    assert any("Disconnected an RPC peer" in r.getMessage() for r in caplog.records)
    assert [info.replica_id for info in listener.removed] == [1]
    await round_trip(service, good, 0)


async def test_port_in_use_raises_an_os_error(store: StateStore) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        service = RpcService(store, "127.0.0.1", taken.getsockname()[1])
        with pytest.raises(OSError, match=r"(?i)address already in use"):
            await service.start()


# ---------------------------------------------------------------------------- the transport


async def test_peer_ids_are_identities_when_unique_else_generated(
    router: tuple[NativeRouterTransport, RecordingEvents],
) -> None:
    transport, events = router
    named = await HandDealer.connect(transport.port, identity=b"ct-1")
    twin = await HandDealer.connect(transport.port, identity=b"ct-1")
    anonymous = await HandDealer.connect(transport.port)
    await wait_until(lambda: len(events.peers("connected")) == 3)
    ids = events.peers("connected")
    assert ids[0] == b"ct-1"
    assert ids[1] != b"ct-1" and ids[1][:1] == b"\0" and ids[2][:1] == b"\0" and ids[1] != ids[2]
    assert transport.peer_count == 3
    for dealer, peer in ((named, b"ct-1"), (twin, ids[1]), (anonymous, ids[2])):
        transport.send(peer, [b"", b"to " + peer])
        assert await dealer.recv() == [b"", b"to " + peer]
    twin.close()
    await wait_until(lambda: events.peers("gone") == [ids[1]])
    with pytest.raises(PeerGone):
        transport.send(ids[1], [b"", b"late"])
    named.close()
    anonymous.close()


async def test_a_flood_is_handled_a_bounded_number_per_loop_turn(
    router: tuple[NativeRouterTransport, RecordingEvents],
) -> None:
    transport, events = router
    flood = 3 * MAX_MESSAGES_PER_DRAIN + 10
    dealer = await HandDealer.connect(transport.port)
    await wait_until(lambda: events.peers("connected"))
    turn_ends: list[int] = []
    loop = asyncio.get_running_loop()
    real = events.peer_message

    def note_turn_end() -> None:
        turn_ends.append(len(events.peers("message")))

    def first_of_a_turn(peer: bytes, frames: list[bytes]) -> None:
        if len(turn_ends) == 0 or turn_ends[-1] != -1:
            turn_ends.append(-1)  # a turn is open; its end is noted once this turn is over
            loop.call_soon(lambda: turn_ends.__setitem__(-1, len(events.peers("message"))))
        real(peer, frames)

    events.peer_message = first_of_a_turn  # type: ignore[method-assign]
    dealer.writer.write(b"".join(
        bytes(chunk) for i in range(flood) for chunk in dealer.codec.encode([b"", i.to_bytes(4, "little")])
    ))
    await wait_until(lambda: len(events.peers("message")) == flood)
    numbers = [int.from_bytes(frames[1], "little") for what, _, frames in events.log if what == "message"]
    assert numbers == list(range(flood))  # in order
    handled_per_turn = [b - a for a, b in zip([0, *turn_ends], turn_ends, strict=False)]
    assert -1 not in turn_ends
    assert handled_per_turn and max(handled_per_turn) <= MAX_MESSAGES_PER_DRAIN
    dealer.close()


async def test_a_full_write_buffer_refuses_sends_as_libzmq_at_its_high_water_mark(
    router: tuple[NativeRouterTransport, RecordingEvents], monkeypatch: pytest.MonkeyPatch
) -> None:
    transport, events = router
    dealer = await HandDealer.connect(transport.port)  # never reads after the handshake
    await wait_until(lambda: events.peers("connected"))
    peer = events.peers("connected")[0]
    chunk = b"\0" * (1 << 20)
    with pytest.raises(PeerBusy):
        for _ in range(256):  # kernel buffers hold a few MiB; the bound is 32 MiB more
            transport.send(peer, [b"", chunk])
            await asyncio.sleep(0)
    dealer.close()


def test_the_transport_runs_on_uvloop() -> None:
    """The query frontend's process runs uvloop, whose transports are not asyncio's classes."""
    uvloop = pytest.importorskip("uvloop", reason="uvloop is optional; the frontend uses it when installed")

    async def exchange() -> None:
        transport = NativeRouterTransport("127.0.0.1", 0, max_message_bytes=MAX_MESSAGE_BYTES)
        events = RecordingEvents()
        await transport.start(events)
        dealer = RawDealer(transport.port)
        try:
            await dealer.send(encode_container_heartbeat())
            await wait_until(lambda: events.peers("message"))
            peer = events.peers("message")[0]
            transport.send(peer, [b"", b"reply"])
            assert await dealer.recv() == [b"", b"reply"]
            dealer.close()
            await wait_until(lambda: events.peers("gone") == [peer])
        finally:
            await transport.aclose()

    uvloop.run(exchange())
