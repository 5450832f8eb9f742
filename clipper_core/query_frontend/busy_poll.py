"""Keep the event loop polling, not sleeping, while a model's reply is due soon.

An asyncio loop (uvloop's too) blocks in ``epoll_wait`` whenever it has no callback ready;
the reply from a model container then has to wake the process, which on a virtual machine
costs tens of microseconds (``clipper_core.rpc.spin``). :class:`BusyPoll` keeps one callback
ready that re-schedules itself, so each loop turn polls with a zero timeout, until its deadline
passes or nothing is awaited any more. Other callbacks and I/O run as usual in between; the
cost is the polling turns' CPU, bounded by the deadline (a ``SpinWindow`` per container
connection sets it in ``rpc_service``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

__all__ = ["BusyPoll"]


class BusyPoll:
    """Zero-timeout loop turns until a deadline, while ``is_wanted()`` holds."""

    __slots__ = ("_deadline", "_is_running", "_is_wanted", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, is_wanted: Callable[[], bool]) -> None:
        self._loop = loop
        self._is_wanted = is_wanted
        self._deadline = 0.0
        self._is_running = False

    @property
    def is_running(self) -> bool:
        return self._is_running

    def extend(self, seconds: float) -> None:
        """Poll for at least ``seconds`` from now (no-op for 0)."""
        if seconds <= 0:
            return
        # time.monotonic, not loop.time(): uvloop's clock ticks in whole milliseconds.
        self._deadline = max(self._deadline, time.monotonic() + seconds)
        if not self._is_running:
            self._is_running = True
            self._loop.call_soon(self._turn)

    def _turn(self) -> None:
        if self._is_wanted() and time.monotonic() < self._deadline:
            self._loop.call_soon(self._turn)
        else:
            self._is_running = False
