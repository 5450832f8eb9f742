"""Abandoned queries leave the model queue (issue 11 item 3): never sent, memory reclaimed."""

from __future__ import annotations

import asyncio

from clipper_core.errors import ModelFailed
from clipper_core.query_frontend.batching import ModelQueue, PendingQuery
from clipper_core.query_frontend.futures import fail_unless_done
from clipper_core.state import ModelId


def _query(payload: bytes, deadline: float) -> PendingQuery:
    future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
    return PendingQuery(("m", "1", payload), deadline, future, deadline)


def _abandon(queue: ModelQueue, query: PendingQuery) -> None:
    fail_unless_done(query.future, ModelFailed("gone"))
    queue.abandon(query)


async def test_abandoned_queries_are_never_taken_and_the_heap_shrinks() -> None:
    queue = ModelQueue(ModelId("m", "1"))
    deadline = asyncio.get_running_loop().time() + 60
    queries = [_query(str(i).encode(), deadline + i) for i in range(300)]
    for query in queries:
        queue.put(query)
    for query in queries[:250]:
        _abandon(queue, query)
    assert len(queue) == 50
    assert len(queue._heap) <= 100  # rebuilt once abandoned entries outnumbered live ones
    batch = await queue.take_batch(1000)
    assert [q.key[2] for q in batch] == [str(i).encode() for i in range(250, 300)]
    assert len(queue) == 0


async def test_a_few_abandoned_entries_are_skipped_and_not_counted() -> None:
    queue = ModelQueue(ModelId("m", "1"))
    deadline = asyncio.get_running_loop().time() + 60
    queries = [_query(bytes([i]), deadline + i) for i in range(10)]
    for query in queries:
        queue.put(query)
    _abandon(queue, queries[0])
    _abandon(queue, queries[5])
    assert len(queue) == 8
    batch = await queue.take_batch(3)
    assert [q.key[2] for q in batch] == [bytes([1]), bytes([2]), bytes([3])]
    assert len(queue) == 5
    # Abandoning a query already in a batch changes nothing in the queue.
    _abandon(queue, batch[0])
    assert len(queue) == 5
    rest = await queue.take_batch(10)
    assert [q.key[2] for q in rest] == [bytes([4]), bytes([6]), bytes([7]), bytes([8]), bytes([9])]
    assert len(queue) == 0
