"""Read-your-writes for the registry: wait until every change made before now has been applied.

The registry learns of new apps, links and versions from keyspace notifications, which arrive a
moment after the management frontend's write has returned. A client that registers an app and
queries it at once must not get a 404 in that moment. Before answering "unknown app" (or "no
model") the query path calls :meth:`StateBarrier.wait`: it publishes a barrier message that the
keyspace subscription receives after every earlier notification (``state.KeyspaceWatch.ping``)
and returns once that message has passed through the registry's change stream, i.e. once every
notification published before it has been applied (or a resync reloaded everything).

At most one barrier is in flight; callers that arrive while one is in flight wait for the next
one (a barrier sent before they arrived could predate the write they depend on).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final

__all__ = ["StateBarrier"]

logger = logging.getLogger(__name__)

# Long enough for a resubscription after a Redis restart (~0.6 s), short enough to bound a 404.
BARRIER_TIMEOUT_S: Final = 2.0


class StateBarrier:
    """Coalesced barriers over a change stream; the stream's consumer calls :meth:`reached`."""

    def __init__(self, ping: Callable[[str], Awaitable[bool]], timeout_s: float = BARRIER_TIMEOUT_S) -> None:
        self._ping = ping
        self._timeout_s = timeout_s
        self._sequence = 0
        self._in_flight: dict[str, asyncio.Future[None]] = {}
        self._next: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[asyncio.Future[None]]] = set()

    async def wait(self) -> None:
        """Return once every change published before this call is applied (or after the timeout).

        Never raises: a lost subscription or a slow Redis only means answering from what the
        registry has, as before.
        """
        if self._in_flight:
            if self._next is None:
                self._next = asyncio.get_running_loop().create_future()
            waiter = self._next
        else:
            waiter = await self._send()
        try:
            await asyncio.wait_for(asyncio.shield(waiter), self._timeout_s)
        except TimeoutError:
            logger.debug("State barrier timed out after %.1f s", self._timeout_s)

    async def _send(self, future: asyncio.Future[None] | None = None) -> asyncio.Future[None]:
        self._sequence += 1
        token = str(self._sequence)
        future = future or asyncio.get_running_loop().create_future()
        self._in_flight[token] = future
        if not await self._ping(token):
            self._in_flight.pop(token, None)
            _resolve(future)
            self._send_next()
        return future

    def reached(self, token: str) -> None:
        """The change stream delivered the barrier ``token``: release its waiters."""
        future = self._in_flight.pop(token, None)
        if future is not None:
            _resolve(future)
        self._send_next()

    def release_all(self) -> None:
        """The stream was re-read from scratch (resync): every waiter is satisfied."""
        for future in self._in_flight.values():
            _resolve(future)
        self._in_flight.clear()
        if self._next is not None:
            _resolve(self._next)
            self._next = None

    def _send_next(self) -> None:
        if self._next is not None and not self._in_flight:
            future, self._next = self._next, None
            task = asyncio.get_running_loop().create_task(self._send(future))
            self._tasks.add(task)
            task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[asyncio.Future[None]]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("State barrier ping failed", exc_info=task.exception())


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)

