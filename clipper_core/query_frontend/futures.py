"""Futures and tasks on the query path: one way to fail a future, one owner of background tasks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["BackgroundTasks", "fail_unless_done"]

T = TypeVar("T")


def fail_unless_done(future: asyncio.Future[Any], exc: BaseException) -> None:
    """Set ``exc`` on ``future`` unless it is done, marked retrieved.

    Every waiter on the query path may be gone by then (a caller past its SLO, a coalesced
    query already answered), so an unread failure is expected, not a bug to log at collection.
    """
    if not future.done():
        future.set_exception(exc)
        future.exception()


class BackgroundTasks:
    """Tasks kept referenced until they end; a failure is logged once as ``<owner> background
    task failed``, and :meth:`cancel_all` stops the rest."""

    __slots__ = ("_logger", "_owner", "_tasks")

    def __init__(self, logger: logging.Logger, owner: str) -> None:
        self._logger = logger
        self._owner = owner
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    async def cancel_all(self) -> None:
        """Cancel every task still running and wait until all have ended."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._logger.error("%s background task failed", self._owner, exc_info=task.exception())
