"""DeadlineWaiter: per-caller deadlines on shared futures, one loop timer for all callers."""

from __future__ import annotations

import asyncio

import pytest

from clipper_core.query_frontend import deadlines
from clipper_core.query_frontend.deadlines import DeadlineWaiter


def now() -> float:
    return asyncio.get_running_loop().time()


def new_future() -> asyncio.Future[bytes]:
    return asyncio.get_running_loop().create_future()


async def test_outcome_before_the_deadline_is_returned() -> None:
    waiter, shared = DeadlineWaiter(), new_future()
    mine = waiter.until(shared, now() + 10)
    shared.set_result(b"out")
    assert await mine == b"out"


async def test_failure_of_the_shared_work_reaches_the_caller() -> None:
    waiter, shared = DeadlineWaiter(), new_future()
    mine = waiter.until(shared, now() + 10)
    shared.set_exception(ValueError("model failed"))
    with pytest.raises(ValueError, match="model failed"):
        await mine


async def test_deadline_raises_timeout_and_leaves_the_shared_work_running() -> None:
    waiter, shared = DeadlineWaiter(), new_future()
    with pytest.raises(TimeoutError):
        await waiter.until(shared, now() + 0.02)
    assert not shared.done()
    shared.set_result(b"late")  # a late outcome is fine (it fills the cache in the gateway)
    await asyncio.sleep(0)


async def test_a_past_deadline_times_out_unless_the_outcome_is_already_there() -> None:
    waiter, shared = DeadlineWaiter(), new_future()
    with pytest.raises(TimeoutError):
        await waiter.until(shared, now() - 1)
    done = new_future()
    done.set_result(b"cached")
    assert await waiter.until(done, now() - 1) == b"cached"


async def test_callers_of_one_shared_future_keep_their_own_deadlines() -> None:
    waiter, shared = DeadlineWaiter(), new_future()
    early = waiter.until(shared, now() + 0.02)
    late = waiter.until(shared, now() + 10)
    with pytest.raises(TimeoutError):
        await early
    shared.set_result(b"out")
    assert await late == b"out"


async def test_later_callers_with_earlier_deadlines_rearm_the_timer() -> None:
    waiter = DeadlineWaiter()
    slow = waiter.until(new_future(), now() + 10)
    fast = waiter.until(new_future(), now() + 0.02)
    started = now()
    with pytest.raises(TimeoutError):
        await fast
    assert now() - started < 5
    assert not slow.done()


async def test_cancelling_the_caller_never_cancels_the_shared_future() -> None:
    waiter, shared = DeadlineWaiter(), new_future()

    async def caller() -> bytes:
        return await waiter.until(shared, now() + 10)

    task = asyncio.create_task(caller())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not shared.done()
    shared.set_exception(ValueError("nobody is listening"))  # must not be logged as unretrieved
    await asyncio.sleep(0)


async def test_finished_callers_leave_the_heap_once_it_grows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deadlines, "_COMPACT_MIN_ENTRIES", 8)
    waiter = DeadlineWaiter()
    waiter._compact_above = 8
    for _ in range(50):  # answered long before their (far) deadlines
        shared = new_future()
        mine = waiter.until(shared, now() + 3600)
        shared.set_result(b"x")
        await mine
    waiting = waiter.until(new_future(), now() + 3600)
    with pytest.raises(TimeoutError):
        await waiter.until(new_future(), now() + 0.01)  # a timer run compacts the heap
    assert waiter.heap_size == 1
    assert not waiting.done()


async def test_the_timer_waits_for_the_earliest_caller_still_waiting() -> None:
    waiter = DeadlineWaiter()
    for index in range(20):  # answered at once, their deadlines spread over the next 0.2 s
        shared = new_future()
        mine = waiter.until(shared, now() + 0.02 + index * 0.01)
        shared.set_result(b"x")
        await mine
    live_deadline = now() + 3600
    waiting = waiter.until(new_future(), live_deadline)
    with pytest.raises(TimeoutError):
        await waiter.until(new_future(), now() + 0.01)
    # The answered callers are gone and no timer tick is spent on them: the next wake-up is the
    # live caller's deadline, not the next answered caller's.
    assert waiter.heap_size == 1
    assert waiter._timer_at == pytest.approx(live_deadline, abs=0.001)
    assert not waiting.done()
