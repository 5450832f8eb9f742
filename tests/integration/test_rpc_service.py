"""RpcService over real ZeroMQ sockets on loopback and a real redis-server.

Every test runs over both transports: the native ZMTP ROUTER (the default) and the libzmq
ROUTER (kept for CurveZMQ). The peers are libzmq DEALERs, as the original's containers are.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator

import pytest
import redis
import zmq
import zmq.asyncio

from clipper_core.errors import ModelFailed
from clipper_core.query_frontend.rpc_service import RpcService
from clipper_core.query_frontend.rpc_transport import RpcTransport
from clipper_core.query_frontend.rpc_zmq import ZmqRouterTransport
from clipper_core.rpc import (
    HeartbeatReply,
    HeartbeatType,
    InputType,
    NewContainer,
    PredictRequest,
    decode_from_frontend,
    encode_container_draining,
    encode_container_heartbeat,
    encode_new_container,
    encode_predict_response,
)
from clipper_core.rpc import PredictResponse as Response
from clipper_core.settings import RedisOptions
from clipper_core.state import ContainerInfo, ModelId, StateStore
from tests.helpers import RedisServer, wait_until, wait_until_async
from tests.integration.fake_container import FakeContainer

U32 = struct.Struct("<I")


class Listener:
    def __init__(self) -> None:
        self.added: list[ContainerInfo] = []
        self.removed: list[ContainerInfo] = []
        self.draining: list[ContainerInfo] = []

    async def replica_added(self, info: ContainerInfo) -> None:
        self.added.append(info)

    def replica_removed(self, info: ContainerInfo) -> None:
        self.removed.append(info)

    def replica_draining(self, info: ContainerInfo) -> None:
        self.draining.append(info)


@pytest.fixture
async def store(redis_clean: RedisServer) -> AsyncIterator[StateStore]:
    async with StateStore(RedisOptions(redis_clean.host, redis_clean.port)) as store:
        yield store


@pytest.fixture
def db3(redis_clean: RedisServer) -> redis.Redis:
    return redis.Redis(redis_clean.host, redis_clean.port, db=3, decode_responses=True)


@pytest.fixture
async def listener() -> Listener:
    return Listener()


@pytest.fixture(params=["native", "libzmq"])
def transport(request: pytest.FixtureRequest) -> RpcTransport | None:
    """None: the service's default (native without a secret)."""
    if request.param == "native":
        return None
    return ZmqRouterTransport("127.0.0.1", 0, max_message_bytes=1 << 20)


@pytest.fixture
async def service(
    store: StateStore, listener: Listener, transport: RpcTransport | None
) -> AsyncIterator[RpcService]:
    service = RpcService(
        store, "127.0.0.1", 0, listener=listener, inactivity_timeout_s=30, transport=transport
    )
    await service.start()
    yield service
    await service.aclose()


class RawDealer:
    """A bare DEALER for exact frame-level checks."""

    def __init__(self, port: int) -> None:
        self.ctx = zmq.asyncio.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(f"tcp://127.0.0.1:{port}")

    async def send(self, frames: list[bytes]) -> None:
        await self.sock.send_multipart(frames)

    async def recv(self, timeout_s: float = 5.0) -> list[bytes]:
        return await asyncio.wait_for(self.sock.recv_multipart(), timeout_s)

    async def heartbeat(self) -> HeartbeatType:
        await self.send(encode_container_heartbeat())
        reply = decode_from_frontend(await self.recv())
        assert isinstance(reply, HeartbeatReply)
        return reply.heartbeat_type

    async def register(self, name: str = "m", version: str = "1") -> None:
        await self.send(encode_new_container(NewContainer(name, version, InputType.DOUBLES)))

    def close(self) -> None:
        self.sock.close(0)
        self.ctx.term()


@pytest.fixture
async def dealers(service: RpcService) -> AsyncIterator[list[RawDealer]]:
    made: list[RawDealer] = []
    yield made
    for dealer in made:
        dealer.close()


def new_dealer(service: RpcService, dealers: list[RawDealer]) -> RawDealer:
    dealer = RawDealer(service.port)
    dealers.append(dealer)
    return dealer


async def test_registration_handshake_and_db3_record(
    service: RpcService, dealers: list[RawDealer], listener: Listener, db3: redis.Redis
) -> None:
    dealer = new_dealer(service, dealers)
    await dealer.send(encode_container_heartbeat())
    # Exact bytes of the reply: ["", u32 3, u32 2, u32 1].
    assert await dealer.recv() == [b"", U32.pack(3), U32.pack(2), U32.pack(1)]
    await dealer.register("m", "1")
    await wait_until(lambda: listener.added)
    assert listener.added == [ContainerInfo("m", "1", 0, 0, InputType.DOUBLES)]
    assert db3.hgetall("m,1,0") == {
        "model_id": "m:1",
        "model_name": "m",
        "model_version": "1",
        "model_replica_id": "0",
        "zmq_connection_id": "0",
        "batch_size": "1",
        "input_type": "doubles",
    }
    assert await dealer.heartbeat() is HeartbeatType.KEEP_ALIVE
    assert service.message_counts[("received", "heartbeat")] == 2
    assert service.message_counts[("sent", "keep_alive")] == 1


async def test_connection_and_replica_ids(
    service: RpcService, dealers: list[RawDealer], listener: Listener, db3: redis.Redis
) -> None:
    for name in ("m", "m", "other", "m"):
        dealer = new_dealer(service, dealers)
        assert await dealer.heartbeat() is HeartbeatType.REQUEST_CONTAINER_METADATA
        await dealer.register(name, "1")
        count = len(listener.added) + 1
        await wait_until(lambda count=count: len(listener.added) == count)  # type: ignore[misc]
    assert [(i.model_name, i.replica_id, i.zmq_connection_id) for i in listener.added] == [
        ("m", 0, 0), ("m", 1, 1), ("other", 0, 2), ("m", 2, 3),
    ]
    assert sorted(db3.keys("*")) == ["m,1,0", "m,1,1", "m,1,2", "other,1,0"]


async def test_repeated_registration_is_ignored(
    service: RpcService, dealers: list[RawDealer], listener: Listener
) -> None:
    dealer = new_dealer(service, dealers)
    await dealer.register()
    await dealer.register()
    assert await dealer.heartbeat() is HeartbeatType.KEEP_ALIVE
    await asyncio.sleep(0.05)
    assert len(listener.added) == 1


async def test_wrong_rpc_version_is_not_registered(
    service: RpcService, dealers: list[RawDealer], listener: Listener
) -> None:
    dealer = new_dealer(service, dealers)
    await dealer.send([b"", U32.pack(0), b"m", b"1", b"3", U32.pack(2)])
    assert await dealer.heartbeat() is HeartbeatType.REQUEST_CONTAINER_METADATA
    assert listener.added == []
    assert service.message_counts[("received", "malformed")] == 1


async def test_predict_round_trip_and_message_ids(
    service: RpcService, dealers: list[RawDealer], listener: Listener
) -> None:
    dealer = new_dealer(service, dealers)
    await dealer.register()
    await wait_until(lambda: listener.added)
    for expected_id in range(3):
        future = service.send_batch(0, InputType.DOUBLES, [b"a" * 8, b""])
        request = decode_from_frontend(await dealer.recv())
        assert isinstance(request, PredictRequest)
        assert request.message_id == expected_id
        assert request.input_type is InputType.DOUBLES and request.inputs == [b"a" * 8, b""]
        await dealer.send(encode_predict_response(Response(request.message_id, [b"x", b"y"])))
        assert await asyncio.wait_for(future, 5) == [b"x", b"y"]


async def test_large_payloads_cross_intact(
    service: RpcService, dealers: list[RawDealer], listener: Listener
) -> None:
    dealer = new_dealer(service, dealers)
    await dealer.register()
    await wait_until(lambda: listener.added)
    big = bytes(range(256)) * 1024  # 256 KiB: sent without a copy
    future = service.send_batch(0, InputType.BYTES, [b"small", big, b""])
    request = decode_from_frontend(await dealer.recv())
    assert isinstance(request, PredictRequest)
    assert request.inputs == [b"small", big, b""]
    await dealer.send(encode_predict_response(Response(request.message_id, [big[::-1], b"", b"x"])))
    assert await asyncio.wait_for(future, 5) == [big[::-1], b"", b"x"]


async def test_wrong_output_count_fails_the_batch(
    service: RpcService, dealers: list[RawDealer], listener: Listener
) -> None:
    dealer = new_dealer(service, dealers)
    await dealer.register()
    await wait_until(lambda: listener.added)
    future = service.send_batch(0, InputType.DOUBLES, [b"1", b"2"])
    request = decode_from_frontend(await dealer.recv())
    await dealer.send(encode_predict_response(Response(request.message_id, [b"only one"])))
    with pytest.raises(ModelFailed, match="1 outputs for 2 inputs"):
        await asyncio.wait_for(future, 5)


async def test_response_from_another_identity_is_discarded(
    service: RpcService, dealers: list[RawDealer], listener: Listener
) -> None:
    dealer, stranger = new_dealer(service, dealers), new_dealer(service, dealers)
    await dealer.register()
    await wait_until(lambda: listener.added)
    future = service.send_batch(0, InputType.DOUBLES, [b"1"])
    request = decode_from_frontend(await dealer.recv())
    await stranger.send(encode_predict_response(Response(request.message_id, [b"forged"])))
    await asyncio.sleep(0.05)
    assert not future.done()
    await dealer.send(encode_predict_response(Response(request.message_id, [b"real"])))
    assert await asyncio.wait_for(future, 5) == [b"real"]


async def test_send_to_unknown_connection_fails_at_once(service: RpcService) -> None:
    with pytest.raises(ModelFailed, match="gone"):
        await asyncio.wait_for(service.send_batch(42, InputType.BYTES, [b"x"]), 1)


async def test_container_error_fails_the_batch(service: RpcService, listener: Listener) -> None:
    def broken(inputs: list[bytes]) -> list[bytes]:
        raise ValueError("bad shape (3,)")

    async with FakeContainer(service.port, handler=broken) as container:
        await wait_until(lambda: listener.added)
        with pytest.raises(ModelFailed) as info:
            await asyncio.wait_for(service.send_batch(0, container.input_type, [b"x"]), 5)
        assert "model exception" in info.value.explanation
        assert "bad shape (3,)" in info.value.explanation
        assert "m:1" in info.value.explanation


async def test_inactive_container_is_removed(
    store: StateStore, listener: Listener, db3: redis.Redis, transport: RpcTransport | None
) -> None:
    service = RpcService(
        store, "127.0.0.1", 0, listener=listener, inactivity_timeout_s=0.5, transport=transport
    )
    await service.start()
    try:
        async with FakeContainer(service.port, handler=lambda inputs: inputs) as container:
            await wait_until(lambda: listener.added)
            await wait_until(lambda: db3.exists("m,1,0"))
            await asyncio.sleep(1.0)  # heartbeats keep it registered
            assert service.connection_count == 1 and listener.removed == []
            container.is_silent = True
            pending = service.send_batch(0, InputType.BYTES, [b"x"])
            with pytest.raises(ModelFailed, match="stopped responding"):
                await asyncio.wait_for(pending, 5)
            assert listener.removed == listener.added
            await wait_until(lambda: not db3.exists("m,1,0"))
            assert service.connection_count == 0
            # Coming back is a new identity: metadata request, new connection and replica id.
            container.is_silent = False
            await wait_until(lambda: len(listener.added) == 2)
            assert (listener.added[1].replica_id, listener.added[1].zmq_connection_id) == (1, 1)
    finally:
        await service.aclose()


async def test_send_to_a_vanished_container_fails(
    service: RpcService, dealers: list[RawDealer], listener: Listener
) -> None:
    dealer = new_dealer(service, dealers)
    await dealer.register()
    await wait_until(lambda: listener.added)
    dealer.close()
    dealers.remove(dealer)

    async def send_fails_at_once() -> bool:
        future = service.send_batch(0, InputType.DOUBLES, [b"x"])
        await asyncio.sleep(0)
        return future.done() and isinstance(future.exception(), ModelFailed)

    await wait_until_async(send_fails_at_once, True)


async def test_retired_model_keeps_heartbeats_but_loses_its_record(
    service: RpcService, dealers: list[RawDealer], listener: Listener, db3: redis.Redis
) -> None:
    dealer = new_dealer(service, dealers)
    await dealer.register()
    await wait_until(lambda: db3.exists("m,1,0"))
    future = service.send_batch(0, InputType.DOUBLES, [b"x"])
    await dealer.recv()
    assert service.retire_model(ModelId("m", "1")) == listener.added
    with pytest.raises(ModelFailed, match="removed"):
        await asyncio.wait_for(future, 1)
    await wait_until(lambda: not db3.exists("m,1,0"))
    assert await dealer.heartbeat() is HeartbeatType.KEEP_ALIVE  # no re-registration
    with pytest.raises(ModelFailed):
        await asyncio.wait_for(service.send_batch(0, InputType.DOUBLES, [b"x"]), 1)
    assert listener.removed == []


REQUEST_METADATA = [b"", U32.pack(3), U32.pack(2), U32.pack(1)]


async def test_draining_container_keeps_its_batch_then_is_let_go(
    service: RpcService, dealers: list[RawDealer], listener: Listener, db3: redis.Redis
) -> None:
    dealer = new_dealer(service, dealers)
    await dealer.register()
    await wait_until(lambda: db3.exists("m,1,0"))
    future = service.send_batch(0, InputType.DOUBLES, [b"x"])
    request = decode_from_frontend(await dealer.recv())
    assert isinstance(request, PredictRequest)
    await dealer.send(encode_container_draining())
    await wait_until(lambda: listener.draining)
    assert listener.draining == listener.added and listener.removed == []
    refused = service.send_batch(0, InputType.DOUBLES, [b"y"])  # no new batch
    with pytest.raises(ModelFailed):
        await asyncio.wait_for(refused, 1)
    assert await dealer.heartbeat() is HeartbeatType.KEEP_ALIVE  # still held: it holds a batch
    assert db3.exists("m,1,0")
    await dealer.send(encode_predict_response(Response(request.message_id, [b"out"])))
    assert await asyncio.wait_for(future, 1) == [b"out"]  # answered normally
    assert await dealer.recv() == REQUEST_METADATA  # let go, unprompted
    assert not db3.exists("m,1,0")  # deleted before the container was let go
    assert service.connection_count == 0
    assert service.message_counts[("received", "draining")] == 1


async def test_draining_from_an_unregistered_connection_is_ignored(
    service: RpcService, dealers: list[RawDealer], listener: Listener
) -> None:
    dealer = new_dealer(service, dealers)
    await dealer.send(encode_container_draining())
    assert await dealer.heartbeat() is HeartbeatType.REQUEST_CONTAINER_METADATA
    assert listener.draining == [] and service.connection_count == 0


async def test_retired_model_lets_a_draining_container_go(
    service: RpcService, dealers: list[RawDealer], listener: Listener, db3: redis.Redis
) -> None:
    dealer = new_dealer(service, dealers)
    await dealer.register()
    await wait_until(lambda: db3.exists("m,1,0"))
    service.retire_model(ModelId("m", "1"))
    await dealer.send(encode_container_draining())
    assert await dealer.recv() == REQUEST_METADATA
    assert listener.draining == []  # a retired replica was out of rotation already
    assert service.connection_count == 0


async def test_quick_replies_make_the_loop_poll_for_the_next_one_and_slow_ones_stop_it(
    store: StateStore, listener: Listener, transport: RpcTransport | None
) -> None:
    service = RpcService(
        store, "127.0.0.1", 0, listener=listener, inactivity_timeout_s=30, transport=transport,
        spin_max_s=0.05,
    )
    await service.start()
    dealer = RawDealer(service.port)
    try:
        await dealer.register()
        await wait_until(lambda: listener.added)

        async def round_trip(reply_after_s: float) -> bool:
            """One batch answered after ``reply_after_s``; was the loop polling meanwhile?"""
            future = service.send_batch(0, InputType.DOUBLES, [b"a" * 8])
            request = decode_from_frontend(await dealer.recv())
            assert isinstance(request, PredictRequest)
            await asyncio.sleep(reply_after_s)
            polling = service.is_busy_polling
            await dealer.send(encode_predict_response(Response(request.message_id, [b"x"])))
            assert await asyncio.wait_for(future, 5) == [b"x"]
            return polling

        assert not await round_trip(0.0)  # nothing known of this container's pace yet
        for _ in range(10):
            await round_trip(0.0)
        assert await round_trip(0.0)
        for _ in range(20):  # replies slower than the 50 ms bound
            await round_trip(0.06)
        assert not await round_trip(0.0)
        assert not service.is_busy_polling  # nothing in flight: the loop sleeps
    finally:
        dealer.close()
        await service.aclose()
