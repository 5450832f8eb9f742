"""AIMD through the real gateway (issue 3): batch sizes grow under load while the model is fast,
then shrink when the model slows down so that a batch no longer fits the latency target derived
from the queries' deadlines. Real ROUTER, a real DEALER container (fake model), real Redis."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from clipper_core.query_frontend.gateway import ModelGateway
from clipper_core.settings import RedisOptions
from clipper_core.state import ModelId, StateStore
from tests.helpers import RedisServer, wait_until
from tests.integration.fake_container import FakeContainer
from tests.integration.gateway_harness import predict, start

MODEL = ModelId("m", "1")


@pytest.fixture
async def gateway(redis_clean: RedisServer) -> AsyncIterator[ModelGateway]:
    async with StateStore(RedisOptions(redis_clean.host, redis_clean.port)) as store:
        started = await start(store)
        try:
            yield started
        finally:
            await started.aclose()


async def test_adaptive_batches_grow_when_fast_and_shrink_when_the_model_slows(gateway: ModelGateway) -> None:
    seconds_per_input = 0.0001

    async def model(inputs: list[bytes]) -> list[bytes]:
        await asyncio.sleep(0.002 + seconds_per_input * len(inputs))
        return inputs

    async with await FakeContainer(gateway.rpc.port, handler=model).start() as container:  # type: ignore[arg-type]
        await wait_until(lambda: gateway.replica_count(MODEL) == 1)
        loop = asyncio.get_running_loop()

        async def clients(count: int, rounds: int, budget_s: float, tag: bytes) -> None:
            async def client(index: int) -> None:
                for round_ in range(rounds):
                    # Late answers are expected in the slow phase; only the batch sizes matter.
                    with contextlib.suppress(Exception):
                        payload = b"%s-%d-%d" % (tag, index, round_)
                        await asyncio.wait_for(predict(gateway, MODEL, payload, loop.time() + budget_s), 10)

            await asyncio.gather(*(client(i) for i in range(count)))

        # Fast model, generous deadlines: the limit grows well above 1.
        # With one batch in flight, about half the clients wait for the next: batches near 16.
        await clients(32, 12, 5.0, b"fast")
        fast_sizes = [len(r.inputs) for r in container.requests]
        assert fast_sizes[0] == 1 and max(fast_sizes) >= 8, fast_sizes
        fast_peak = max(fast_sizes)

        # Now 15 ms per input against 0.2 s deadlines (a target of about half the remaining
        # budget): a batch of the fast peak no longer fits, so the limit is cut by 10% per batch.
        seconds_per_input = 0.015
        del container.requests[:]
        await clients(32, 20, 0.2, b"slow")
        slow_sizes = [len(r.inputs) for r in container.requests]
        assert len(slow_sizes) >= 20, slow_sizes
        settled = slow_sizes[-5:]
        assert max(settled) <= 0.6 * fast_peak, (fast_peak, slow_sizes)
        assert min(slow_sizes) >= 1
