"""AIMD policy (exhaustively), EDF model queue, replica batchers with an in-process sender."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clipper_core.errors import ContainerGone, ModelFailed, QueryExpired
from clipper_core.query_frontend.batching import (
    AIMD_BACKOFF,
    AIMD_MAX_BATCH_SIZE,
    AIMD_STEP,
    AIMD_TARGET_FRACTION,
    AimdPolicy,
    ModelQueue,
    PendingQuery,
    QueueClosed,
    Replica,
    latency_target_s,
)
from clipper_core.rpc import InputType
from clipper_core.state import ModelId
from tests.helpers import wait_until

MODEL = ModelId("m", "1")

# ---------------------------------------------------------------------------- AIMD


def test_aimd_constants() -> None:
    assert AIMD_BACKOFF == 0.9
    assert AIMD_STEP > 0
    assert 0 < AIMD_TARGET_FRACTION < 1


def test_aimd_starts_at_one() -> None:
    assert AimdPolicy().batch_size == 1


def test_aimd_grows_additively_while_under_target() -> None:
    policy = AimdPolicy(step=1)
    sizes = []
    for _ in range(10):
        sizes.append(policy.batch_size)
        policy.record(policy.batch_size, latency_s=0.001, target_s=0.01)
    assert sizes == list(range(1, 11))


def test_aimd_latency_equal_to_target_still_grows() -> None:
    policy = AimdPolicy(step=1)
    policy.record(1, latency_s=0.01, target_s=0.01)
    assert policy.batch_size == 2


def test_aimd_fractional_step_accumulates() -> None:
    policy = AimdPolicy(step=0.5)
    policy.record(1, 0.001, 0.01)
    assert policy.batch_size == 1 and policy.limit == 1.5
    policy.record(1, 0.001, 0.01)
    assert policy.batch_size == 2


def test_aimd_does_not_grow_on_a_partial_batch() -> None:
    policy = AimdPolicy(step=1)
    for _ in range(5):
        policy.record(policy.batch_size, 0.001, 0.01)
    assert policy.batch_size == 6
    policy.record(3, 0.001, 0.01)  # only 3 were queued: says nothing about 7
    assert policy.batch_size == 6


def test_aimd_backs_off_by_ten_percent_above_target() -> None:
    policy = AimdPolicy(step=1)
    policy.limit = 100.0
    policy.record(100, latency_s=0.02, target_s=0.01)
    assert policy.limit == pytest.approx(90.0)
    assert policy.batch_size == 90
    policy.record(90, latency_s=0.02, target_s=0.01)
    assert policy.limit == pytest.approx(81.0)
    policy.record(10, latency_s=0.02, target_s=0.01)  # partial batch over target still backs off
    assert policy.limit == pytest.approx(72.9)
    assert policy.batch_size == 72


def test_aimd_floor_is_one() -> None:
    policy = AimdPolicy()
    for _ in range(50):
        policy.record(1, latency_s=1.0, target_s=0.001)
        assert policy.batch_size == 1
    assert policy.limit == 1.0
    policy.record(1, 0.0, 0.001)
    assert policy.batch_size == 2  # recovers immediately


def test_aimd_ceiling() -> None:
    policy = AimdPolicy(step=10, max_batch_size=25)
    for _ in range(10):
        policy.record(policy.batch_size, 0.0, 1.0)
    assert policy.batch_size == 25


def test_aimd_zero_target_always_backs_off() -> None:
    policy = AimdPolicy()
    policy.limit = 10.0
    policy.record(10, 0.0001, 0.0)
    assert policy.limit == pytest.approx(9.0)


@pytest.mark.parametrize(
    "kwargs", [{"step": 0}, {"step": -1}, {"backoff": 1.0}, {"backoff": 0.0}, {"max_batch_size": 0}]
)
def test_aimd_rejects_bad_parameters(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        AimdPolicy(**kwargs)  # type: ignore[arg-type]


def test_aimd_converges_near_the_latency_boundary() -> None:
    """Model latency 2 ms + 0.1 ms per input, target 10 ms: the best size is 80."""
    policy = AimdPolicy()
    history = []
    for _ in range(2000):
        size = policy.batch_size
        policy.record(size, 0.002 + 0.0001 * size, 0.010)
        history.append(size)
    tail = history[-500:]
    assert max(tail) <= 81
    assert min(tail) >= int(80 * AIMD_BACKOFF) - 1
    assert sum(tail) / len(tail) > 0.85 * 80


@given(
    st.lists(
        st.tuples(st.integers(1, 5000), st.floats(0, 1), st.floats(0, 1)), max_size=300
    )
)
def test_aimd_limit_stays_in_bounds(records: list[tuple[int, float, float]]) -> None:
    policy = AimdPolicy()
    for size, latency, target in records:
        before = policy.limit
        policy.record(size, latency, target)
        assert 1 <= policy.batch_size <= AIMD_MAX_BATCH_SIZE
        if latency > target:
            assert policy.limit == max(1.0, before * AIMD_BACKOFF)
        else:
            assert policy.limit in (before, min(AIMD_MAX_BATCH_SIZE, before + AIMD_STEP))


def test_latency_target_is_a_fraction_of_the_remaining_budget() -> None:
    assert latency_target_s(10.1, 10.0) == pytest.approx(0.1 * AIMD_TARGET_FRACTION)
    assert latency_target_s(9.0, 10.0) == 0.0


# ---------------------------------------------------------------------------- queue


def make_query(payload: bytes, deadline: float) -> PendingQuery:
    future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
    return PendingQuery(("m", "1", payload), deadline, future, deadline)


def now() -> float:
    return asyncio.get_running_loop().time()


async def test_queue_takes_earliest_deadline_first() -> None:
    queue = ModelQueue(MODEL)
    t = now()
    for payload, offset in [(b"c", 30), (b"a", 10), (b"d", 40), (b"b", 20)]:
        queue.put(make_query(payload, t + offset))
    batch = await queue.take_batch(3)
    assert [q.key[2] for q in batch] == [b"a", b"b", b"c"]
    assert [q.key[2] for q in await queue.take_batch(3)] == [b"d"]


async def test_queue_equal_deadlines_keep_arrival_order() -> None:
    queue = ModelQueue(MODEL)
    deadline = now() + 10
    for i in range(5):
        queue.put(make_query(b"%d" % i, deadline))
    assert [q.key[2] for q in await queue.take_batch(5)] == [b"0", b"1", b"2", b"3", b"4"]


async def test_queue_drops_expired_queries_before_batching() -> None:
    queue = ModelQueue(MODEL)
    expired = make_query(b"old", now() - 0.001)
    fresh = make_query(b"new", now() + 10)
    queue.put(expired)
    queue.put(fresh)
    assert await queue.take_batch(10) == [fresh]
    with pytest.raises(QueryExpired):
        expired.future.result()
    assert isinstance(expired.future.exception(), TimeoutError)


async def test_queue_keeps_a_query_alive_for_a_later_coalesced_deadline() -> None:
    queue = ModelQueue(MODEL)
    query = make_query(b"x", now() - 0.001)
    query.latest_deadline = now() + 10
    queue.put(query)
    assert await queue.take_batch(1) == [query]
    assert query.deadline == query.latest_deadline


async def test_expire_overdue_without_any_replica() -> None:
    queue = ModelQueue(MODEL)
    late = make_query(b"late", now() + 0.01)
    later = make_query(b"later", now() + 60)
    queue.put(late)
    queue.put(later)
    assert queue.expire_overdue(now()) == 0
    assert queue.expire_overdue(now() + 1) == 1
    assert isinstance(late.future.exception(), QueryExpired)
    assert not later.future.done() and len(queue) == 1


async def test_take_batch_waits_for_work() -> None:
    queue = ModelQueue(MODEL)
    taker = asyncio.create_task(queue.take_batch(4))
    await wait_until(lambda: len(queue._waiters) == 1)
    assert not taker.done()
    query = make_query(b"a", now() + 10)
    queue.put(query)
    assert await asyncio.wait_for(taker, 1) == [query]


async def test_cancelled_waiter_does_not_swallow_a_wakeup() -> None:
    queue = ModelQueue(MODEL)
    first = asyncio.create_task(queue.take_batch(1))
    second = asyncio.create_task(queue.take_batch(1))
    await wait_until(lambda: len(queue._waiters) == 2)
    query = make_query(b"a", now() + 10)
    queue.put(query)  # wakes `first` ...
    first.cancel()  # ... which goes away before running
    assert await asyncio.wait_for(second, 1) == [query]


async def test_two_waiters_both_get_work() -> None:
    queue = ModelQueue(MODEL)
    takers = [asyncio.create_task(queue.take_batch(1)) for _ in range(2)]
    await wait_until(lambda: len(queue._waiters) == 2)
    queue.put(make_query(b"a", now() + 10))
    queue.put(make_query(b"b", now() + 10))
    results = await asyncio.wait_for(asyncio.gather(*takers), 1)
    assert sorted(q.key[2] for batch in results for q in batch) == [b"a", b"b"]


async def test_close_fails_queued_queries_and_wakes_waiters() -> None:
    queue = ModelQueue(MODEL)
    waiter = asyncio.create_task(queue.take_batch(1))
    await wait_until(lambda: len(queue._waiters) == 1)
    queue.close(ModelFailed("model removed"))
    with pytest.raises(QueueClosed):
        await asyncio.wait_for(waiter, 1)
    queue2 = ModelQueue(MODEL)
    queued = make_query(b"a", now() + 10)
    queue2.put(queued)
    queue2.close(ModelFailed("model removed"))
    assert isinstance(queued.future.exception(), ModelFailed)
    with pytest.raises(QueueClosed):
        await queue2.take_batch(1)


async def test_delayed_batching_fills_the_batch() -> None:
    queue = ModelQueue(MODEL, batch_wait_s=0.05)
    queue.put(make_query(b"a", now() + 10))
    taker = asyncio.create_task(queue.take_batch(3))
    await asyncio.sleep(0)
    queue.put(make_query(b"b", now() + 10))
    queue.put(make_query(b"c", now() + 10))
    assert [q.key[2] for q in await taker] == [b"a", b"b", b"c"]


# ---------------------------------------------------------------------------- replicas


class RecordingSender:
    """In-process stand-in for the RPC service: records batches, answers when released."""

    def __init__(self, fail_with: Exception | None = None) -> None:
        self.batches: list[list[bytes]] = []
        self.release = asyncio.Event()
        self.release.set()
        self.fail_with = fail_with
        self.abandoned: list[tuple[int, str]] = []

    def abandon(self, connection_id: int, reason: str) -> None:
        self.abandoned.append((connection_id, reason))

    async def send_batch(
        self, connection_id: int, input_type: InputType, inputs: Sequence[bytes]
    ) -> list[bytes]:
        self.batches.append(list(inputs))
        await self.release.wait()
        if self.fail_with is not None:
            raise self.fail_with
        return [b"out:" + i for i in inputs]


async def first_batch_sent(sender: RecordingSender) -> None:
    for _ in range(1000):
        if sender.batches:
            return
        await asyncio.sleep(0.001)
    raise AssertionError("no batch was sent")


async def run_queries(queue: ModelQueue, sender: RecordingSender, count: int) -> list[PendingQuery]:
    """Hold the replica on a first query, queue ``count`` more, then let everything through."""
    sender.release.clear()
    first = make_query(b"first", now() + 10)
    queue.put(first)
    await first_batch_sent(sender)
    queries = [make_query(b"%d" % i, now() + 10) for i in range(count)]
    for query in queries:
        queue.put(query)
    sender.release.set()
    await asyncio.wait_for(asyncio.gather(first.future, *(q.future for q in queries)), 2)
    return queries


async def test_fixed_batch_size_is_honoured_exactly() -> None:
    queue = ModelQueue(MODEL, batch_size=4)
    sender = RecordingSender()
    queue.add_replica(Replica(queue, 0, 0, InputType.BYTES, sender))
    queries = await run_queries(queue, sender, 10)
    assert [len(b) for b in sender.batches] == [1, 4, 4, 2]
    assert [q.future.result() for q in queries] == [b"out:%d" % i for i in range(10)]
    queue.close(ModelFailed("done"))


async def test_adaptive_replica_starts_with_batches_of_one_and_never_pads() -> None:
    queue = ModelQueue(MODEL)
    sender = RecordingSender()
    replica = Replica(queue, 0, 0, InputType.BYTES, sender)
    queue.add_replica(replica)
    query = make_query(b"only", now() + 10)
    queue.put(query)
    assert await asyncio.wait_for(query.future, 1) == b"out:only"
    assert sender.batches == [[b"only"]]
    assert replica.policy.batch_size == 2  # a full batch of 1 well within target
    queue.close(ModelFailed("done"))


async def test_adaptive_replica_grows_its_batches_under_load() -> None:
    queue = ModelQueue(MODEL)
    sender = RecordingSender()
    replica = Replica(queue, 0, 0, InputType.BYTES, sender)
    queue.add_replica(replica)
    await run_queries(queue, sender, 20)
    assert [len(b) for b in sender.batches] == [1, 2, 3, 4, 5, 6]
    queue.close(ModelFailed("done"))


async def test_send_failure_fails_the_batch_and_the_replica_keeps_pulling() -> None:
    queue = ModelQueue(MODEL, batch_size=10)
    sender = RecordingSender(fail_with=ModelFailed("container exploded"))
    queue.add_replica(Replica(queue, 0, 0, InputType.BYTES, sender))
    query = make_query(b"a", now() + 10)
    queue.put(query)
    with pytest.raises(ModelFailed, match="exploded"):
        await asyncio.wait_for(query.future, 1)
    sender.fail_with = None
    again = make_query(b"b", now() + 10)
    queue.put(again)
    assert await asyncio.wait_for(again.future, 1) == b"out:b"
    queue.close(ModelFailed("done"))


async def test_removing_a_replica_mid_batch_fails_its_queries() -> None:
    queue = ModelQueue(MODEL)
    sender = RecordingSender()
    sender.release.clear()
    queue.add_replica(Replica(queue, 0, 7, InputType.BYTES, sender))
    query = make_query(b"a", now() + 10)
    queue.put(query)
    await first_batch_sent(sender)
    assert queue.inflight_batches == 1
    queue.remove_replica(7)
    with pytest.raises(ModelFailed, match="removed"):
        await asyncio.wait_for(query.future, 1)
    assert queue.inflight_batches == 0 and not queue.has_replicas


async def test_observer_sees_outputs_and_drops() -> None:
    seen: list[tuple[str, list[bytes]]] = []

    class Observer:
        def batch_done(self, queue, batch, outputs, latency_s):  # type: ignore[no-untyped-def]
            seen.append(("done", outputs))

        def queries_dropped(self, queue, queries):  # type: ignore[no-untyped-def]
            seen.append(("dropped", [q.key[2] for q in queries]))

    queue = ModelQueue(MODEL, observer=Observer())
    queue.put(make_query(b"old", now() - 1))
    sender = RecordingSender()
    queue.add_replica(Replica(queue, 0, 0, InputType.BYTES, sender))
    query = make_query(b"a", now() + 10)
    queue.put(query)
    await asyncio.wait_for(query.future, 1)
    assert seen == [("dropped", [b"old"]), ("done", [b"out:a"])]
    queue.close(ModelFailed("done"))


async def test_replica_of_a_vanished_connection_stops_pulling() -> None:
    queue = ModelQueue(MODEL)
    sender = RecordingSender(fail_with=ContainerGone("connection 3 is gone"))
    replica = Replica(queue, 0, 3, InputType.BYTES, sender)
    queue.add_replica(replica)
    query = make_query(b"a", now() + 10)
    queue.put(query)
    with pytest.raises(ContainerGone):
        await asyncio.wait_for(query.future, 1)
    await asyncio.wait_for(replica.wait_stopped(), 1)
    assert not queue.has_replicas
    queue.put(make_query(b"b", now() + 10))
    await asyncio.sleep(0.01)
    assert len(sender.batches) == 1


async def test_hopeless_queries_are_dropped_while_feasible_ones_wait() -> None:
    queue = ModelQueue(MODEL)
    hopeless = make_query(b"hopeless", now() + 0.01)
    feasible = make_query(b"feasible", now() + 10)
    queue.put(hopeless)
    queue.put(feasible)
    assert await queue.take_batch(5, min_budget_s=0.5) == [feasible]
    assert isinstance(hopeless.future.exception(), QueryExpired)


async def test_hopeless_queries_are_still_sent_when_nothing_else_is_queued() -> None:
    queue = ModelQueue(MODEL)
    queries = [make_query(b"%d" % i, now() + 0.01 * (i + 1)) for i in range(3)]
    for query in queries:
        queue.put(query)
    assert await queue.take_batch(2, min_budget_s=5) == queries[:2]
    assert len(queue) == 1 and not queries[2].future.done()


async def test_a_coalesced_later_deadline_keeps_a_query_feasible() -> None:
    queue = ModelQueue(MODEL)
    query = make_query(b"x", now() + 0.01)
    query.latest_deadline = now() + 10
    other = make_query(b"y", now() + 5)
    queue.put(query)
    queue.put(other)
    assert await queue.take_batch(5, min_budget_s=0.5) == [other, query]
    assert not query.future.done()


async def test_replica_learns_its_batch_latency() -> None:
    queue = ModelQueue(MODEL, batch_size=1)
    sender = RecordingSender()
    replica = Replica(queue, 0, 0, InputType.BYTES, sender)
    assert replica.latency_estimate_s == 0.0
    queue.add_replica(replica)
    query = make_query(b"a", now() + 10)
    queue.put(query)
    await asyncio.wait_for(query.future, 1)
    assert 0.0 < replica.latency_estimate_s < 1.0
    queue.close(ModelFailed("done"))


async def test_replica_backs_off_when_a_batch_exceeds_its_latency_target() -> None:
    class SlowSender(RecordingSender):
        async def send_batch(
            self, connection_id: int, input_type: InputType, inputs: Sequence[bytes]
        ) -> list[bytes]:
            self.batches.append(list(inputs))
            await asyncio.sleep(0.05)
            return list(inputs)

    queue = ModelQueue(MODEL)
    policy = AimdPolicy()
    policy.limit = 5.0
    queue.add_replica(Replica(queue, 0, 0, InputType.BYTES, SlowSender(), policy))
    # 1 s left: target 0.5 s, the batch takes 0.05 s -> grow (it was full).
    full = [make_query(b"%d" % i, now() + 1) for i in range(5)]
    for query in full:
        queue.put(query)
    await asyncio.wait_for(asyncio.gather(*(q.future for q in full)), 2)
    assert policy.limit == 6.0
    # 60 ms left: target 30 ms < 50 ms -> back off by 10%.
    tight = make_query(b"tight", now() + 0.06)
    queue.put(tight)
    await asyncio.wait_for(tight.future, 2)
    assert policy.limit == pytest.approx(5.4)
    queue.close(ModelFailed("done"))


async def test_a_batch_unanswered_past_its_deadline_and_grace_fails_and_drops_the_replica() -> None:
    queue = ModelQueue(MODEL, batch_size=1)
    sender = RecordingSender()
    sender.release.clear()  # the container never answers
    replica = Replica(queue, 3, 7, InputType.BYTES, sender, response_grace_s=0.05)
    queue.add_replica(replica)
    query, queued = make_query(b"a", now() + 0.05), make_query(b"b", now() + 10)
    queue.put(query)
    await first_batch_sent(sender)
    queue.put(queued)
    with pytest.raises(ModelFailed, match=r"replica 3 of m:1 did not answer a batch of 1 within 0\.05 s"):
        await asyncio.wait_for(query.future, 5)
    await asyncio.wait_for(replica.wait_stopped(), 5)
    assert queue.replicas == {}
    assert [connection for connection, _ in sender.abandoned] == [7]
    assert "wedged" in sender.abandoned[0][1]
    assert not queued.future.done()  # still queued for the next replica (the gateway decides)
    queue.close(ModelFailed("done"))
