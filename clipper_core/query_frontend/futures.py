"""The one way the query path fails a future: set the exception unless it is already done."""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["fail_unless_done"]


def fail_unless_done(future: asyncio.Future[Any], exc: BaseException) -> None:
    """Set ``exc`` on ``future`` unless it is done, marked retrieved.

    Every waiter on the query path may be gone by then (a caller past its SLO, a coalesced
    query already answered), so an unread failure is expected, not a bug to log at collection.
    """
    if not future.done():
        future.set_exception(exc)
        future.exception()
