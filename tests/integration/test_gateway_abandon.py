"""ModelGateway.abandon (issue 11 item 3): a query whose callers all went away leaves its queue
and is never sent; coalesced callers keep it; a stale caller cannot drop a newer query.
Real ROUTER, a fake container that takes one batch and never answers, real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from clipper_core.errors import ModelFailed
from clipper_core.query_frontend.gateway import ModelGateway
from clipper_core.rpc import InputType
from clipper_core.settings import RedisOptions
from clipper_core.state import ModelId, ModelInfo, StateStore
from tests.helpers import RedisServer, wait_until
from tests.integration.fake_container import FakeContainer
from tests.integration.gateway_harness import start

MODEL = ModelId("m", "1")


@pytest.fixture
async def gateway(redis_clean: RedisServer) -> AsyncIterator[ModelGateway]:
    async with StateStore(RedisOptions(redis_clean.host, redis_clean.port)) as store:
        await store.add_model(ModelInfo("m", "1", InputType.BYTES, batch_size=1))
        gateway = await start(store)
        yield gateway
        await gateway.aclose()


async def test_abandoned_queries_leave_the_queue_and_are_never_sent(gateway: ModelGateway) -> None:
    async with await FakeContainer(gateway.rpc.port, ignores_predictions=True).start() as container:
        await wait_until(lambda: gateway.replica_count(MODEL) == 1)
        deadline = asyncio.get_running_loop().time() + 30
        busy = gateway.submit(MODEL, b"busy", deadline)  # taken by the replica, never answered
        await wait_until(lambda: len(container.requests) == 1)
        queue = gateway._lanes[MODEL].queue
        twice = gateway.submit(MODEL, b"twice", deadline)
        assert gateway.submit(MODEL, b"twice", deadline) is twice  # coalesced: two callers
        once = gateway.submit(MODEL, b"once", deadline)
        assert len(queue) == 2

        gateway.abandon(MODEL, b"twice", twice)
        assert not twice.done() and len(queue) == 2  # the other caller still waits
        gateway.abandon(MODEL, b"twice", twice)
        assert twice.done() and isinstance(twice.exception(), ModelFailed) and len(queue) == 1

        stale: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        gateway.abandon(MODEL, b"once", stale)  # not the future of the queued query
        assert not once.done() and len(queue) == 1

        gateway.abandon(MODEL, b"busy", busy)  # in flight: its output would still fill the cache
        assert len(queue) == 1
        await asyncio.sleep(0.3)
        assert [list(r.inputs) for r in container.requests] == [[b"busy"]]  # nothing else sent
