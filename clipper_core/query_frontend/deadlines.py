"""Waiting for shared work until a per-caller deadline, with one loop timer for all callers.

Every query waits for its model's answer until its SLO deadline and then gives up without
cancelling the shared work (a late output still fills the cache; coalesced callers keep
waiting). ``asyncio.timeout_at`` + ``asyncio.shield`` do this but cost ~10 us per query on
uvloop (a Timeout object, a libuv timer per query, task-cancellation bookkeeping, an extra
future). Here each caller gets one small future, fed by a done-callback on the shared
future, and deadlines sit in one heap served by a single re-armed timer: O(log n) per
query and at most one timer wake-up per ``TIMER_TICK_S``. libuv timers have millisecond
granularity anyway; with ``TIMER_SLACK_S`` a caller is answered at most ~1 ms after its
deadline (and at most 0.5 ms before it).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from typing import Any, Final, TypeVar

from clipper_core.query_frontend.futures import fail_unless_done

__all__ = ["TIMER_SLACK_S", "TIMER_TICK_S", "DeadlineWaiter"]

TIMER_TICK_S: Final = 0.0005
# uvloop rounds timers to whole milliseconds, so the timer may fire a little before the
# earliest deadline; callers due within this slack are expired then rather than one more
# tick later (at most half a millisecond early, as uvloop's own rounding already allows).
TIMER_SLACK_S: Final = 0.0005
# Finished callers stay in the heap until their deadline (lazy deletion); a heap larger than
# this (and than twice its size after the last rebuild) drops them, so memory follows the
# callers still waiting.
_COMPACT_MIN_ENTRIES: Final = 4096

T = TypeVar("T")


def _relay(mine: asyncio.Future[T], shared: asyncio.Future[T]) -> None:
    if mine.done():
        if not shared.cancelled():
            shared.exception()  # the caller gave up; the outcome is not an unretrieved error
        return
    if shared.cancelled():
        mine.cancel()
        return
    exc = shared.exception()
    if exc is not None:
        mine.set_exception(exc)
    else:
        mine.set_result(shared.result())


class DeadlineWaiter:
    """Waits for shared futures until per-caller deadlines (``loop.time()`` seconds)."""

    __slots__ = ("_compact_above", "_heap", "_loop", "_sequence", "_timer", "_timer_at")

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._heap: list[tuple[float, int, asyncio.Future[Any]]] = []
        self._sequence = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = float("inf")
        self._compact_above = _COMPACT_MIN_ENTRIES

    @property
    def heap_size(self) -> int:
        """Entries in the deadline heap, finished callers included (for tests)."""
        return len(self._heap)

    def until(self, shared: asyncio.Future[T], deadline: float) -> asyncio.Future[T]:
        """A future for one caller to await: ``shared``'s outcome, or ``TimeoutError`` once
        ``deadline`` has passed.

        Cancelling the returned future (e.g. by cancelling the task awaiting it) never
        cancels ``shared``. An outcome already there is returned even past the deadline.
        Not a coroutine: the caller awaits the future directly, one frame fewer per query.
        """
        if shared.done():
            return shared
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        mine: asyncio.Future[T] = loop.create_future()
        shared.add_done_callback(lambda done: _relay(mine, done))
        heapq.heappush(self._heap, (deadline, next(self._sequence), mine))
        if deadline < self._timer_at:
            self._arm(deadline)
        return mine

    def _arm(self, when: float) -> None:
        assert self._loop is not None
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self._loop.call_at(when, self._expire)

    def _expire(self) -> None:
        assert self._loop is not None
        self._timer = None
        self._timer_at = float("inf")
        now = self._loop.time()
        due = now + TIMER_SLACK_S
        heap = self._heap
        # Finished callers at the head go too, whatever their deadline: the timer is then armed
        # for the earliest caller still waiting, not every tick for callers long answered (at
        # low load that was a loop wake-up per millisecond with nothing to do).
        while heap and (heap[0][0] <= due or heap[0][2].done()):
            waiter = heapq.heappop(heap)[2]
            fail_unless_done(waiter, TimeoutError())
        if len(heap) > self._compact_above:
            heap[:] = [entry for entry in heap if not entry[2].done()]
            heapq.heapify(heap)
            # Amortised O(1): the next rebuild waits until the heap has doubled again.
            self._compact_above = max(_COMPACT_MIN_ENTRIES, 2 * len(heap))
        if heap:
            self._arm(max(heap[0][0] - TIMER_SLACK_S, now + TIMER_TICK_S))
