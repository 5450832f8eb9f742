"""ModelGateway end to end: real ROUTER, fake containers (real DEALER sockets), real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from clipper_core.query_frontend.gateway import ModelFailed, ModelGateway, NoConnectedModels
from clipper_core.query_frontend.metrics import FrontendMetrics
from clipper_core.rpc import InputType
from clipper_core.state import ModelId, ModelInfo, RedisSettings, StateStore
from tests.helpers import RedisServer
from tests.integration.fake_container import FakeContainer, wait_until, wait_until_async

MODEL = ModelId("m", "1")


@pytest.fixture
async def store(redis_clean: RedisServer) -> AsyncIterator[StateStore]:
    async with StateStore(RedisSettings(redis_clean.host, redis_clean.port)) as store:
        yield store


@pytest.fixture
async def gateway(store: StateStore) -> AsyncIterator[ModelGateway]:
    gateway = await ModelGateway.start(store, "127.0.0.1", 0, 1 << 20, FrontendMetrics())
    yield gateway
    await gateway.aclose()


def deadline_in(seconds: float) -> float:
    return asyncio.get_running_loop().time() + seconds


async def connect(gateway: ModelGateway, **kwargs: object) -> FakeContainer:
    before = gateway.replica_count(ModelId(str(kwargs.get("name", "m")), str(kwargs.get("version", "1"))))
    container = await FakeContainer(gateway.rpc.port, **kwargs).start()  # type: ignore[arg-type]
    await wait_until(lambda: gateway.replica_count(ModelId(container.name, container.version)) > before)
    return container


async def test_predict_round_trip(gateway: ModelGateway) -> None:
    async with await connect(gateway):
        assert await gateway.predict(MODEL, b"abc", deadline_in(5)) == b"out:abc"


async def test_no_connected_models_without_replica(gateway: ModelGateway) -> None:
    with pytest.raises(NoConnectedModels):
        await gateway.predict(MODEL, b"abc", deadline_in(5))


async def test_cache_hit_does_not_call_the_container(gateway: ModelGateway) -> None:
    async with await connect(gateway) as container:
        assert await gateway.predict(MODEL, b"x", deadline_in(5)) == b"out:x"
        assert await gateway.predict(MODEL, b"x", deadline_in(5)) == b"out:x"
        assert len(container.requests) == 1
    # The cached output is served even once the replica is gone.
    assert await gateway.predict(MODEL, b"x", deadline_in(5)) == b"out:x"


async def test_identical_concurrent_queries_coalesce(gateway: ModelGateway) -> None:
    release = asyncio.Event()

    async def slow(inputs: list[bytes]) -> list[bytes]:
        await release.wait()
        return [b"r" + i for i in inputs]

    async with await connect(gateway, handler=slow) as container:
        calls = [asyncio.create_task(gateway.predict(MODEL, b"same", deadline_in(5))) for _ in range(5)]
        await wait_until(lambda: len(container.requests) == 1)
        await asyncio.sleep(0.05)
        release.set()
        assert await asyncio.gather(*calls) == [b"rsame"] * 5
        assert [list(r.inputs) for r in container.requests] == [[b"same"]]


async def test_fixed_batch_size_groups_concurrent_queries(
    gateway: ModelGateway, store: StateStore
) -> None:
    await store.add_model(ModelInfo("m", "1", InputType.BYTES, batch_size=3))
    release = asyncio.Event()

    async def gated(inputs: list[bytes]) -> list[bytes]:
        await release.wait()
        return inputs

    async with await connect(gateway, handler=gated) as container:
        assert gateway.batch_size(MODEL) == 3
        first = asyncio.create_task(gateway.predict(MODEL, b"q0", deadline_in(5)))
        await wait_until(lambda: len(container.requests) == 1)
        rest = [asyncio.create_task(gateway.predict(MODEL, b"q%d" % i, deadline_in(5))) for i in range(1, 8)]
        await asyncio.sleep(0.05)
        release.set()
        results = await asyncio.gather(first, *rest)
        assert results == [b"q%d" % i for i in range(8)]
        sizes = [len(r.inputs) for r in container.requests]
        assert sizes == [1, 3, 3, 1]
        assert list(container.requests[1].inputs) == [b"q1", b"q2", b"q3"]


async def test_container_error_fails_the_batch_at_once(gateway: ModelGateway) -> None:
    def broken(inputs: list[bytes]) -> list[bytes]:
        raise RuntimeError("division by zero in model")

    async with await connect(gateway, handler=broken):
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(ModelFailed) as info:
            await gateway.predict(MODEL, b"x", deadline_in(30))
        assert "division by zero in model" in info.value.explanation
        assert loop.time() - started < 5
        # The replica keeps serving after an error.
        with pytest.raises(ModelFailed):
            await gateway.predict(MODEL, b"y", deadline_in(30))


async def test_empty_inputs_do_not_stall(gateway: ModelGateway) -> None:
    async with await connect(gateway) as container:
        assert await gateway.predict(MODEL, b"", deadline_in(5)) == b"out:"
        assert await gateway.predict(MODEL, b"z", deadline_in(5)) == b"out:z"
        assert list(container.requests[0].inputs) == [b""]


async def test_remove_model_fails_queued_queries(gateway: ModelGateway, store: StateStore) -> None:
    release = asyncio.Event()

    async def gated(inputs: list[bytes]) -> list[bytes]:
        await release.wait()
        return inputs

    async with await connect(gateway, handler=gated) as container:
        in_flight = asyncio.create_task(gateway.predict(MODEL, b"a", deadline_in(30)))
        await wait_until(lambda: len(container.requests) == 1)
        queued = asyncio.create_task(gateway.predict(MODEL, b"b", deadline_in(30)))
        await asyncio.sleep(0.02)
        gateway.remove_model(MODEL)
        for task in (in_flight, queued):
            with pytest.raises(ModelFailed):
                await task
        assert gateway.replica_count(MODEL) == 0
        await wait_until_async(lambda: store.list_containers(), [])
        with pytest.raises(NoConnectedModels):
            await gateway.predict(MODEL, b"c", deadline_in(5))
        release.set()
