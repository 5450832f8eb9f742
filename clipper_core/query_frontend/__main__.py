"""``python -m clipper_core.query_frontend`` / ``clipper-query-frontend``: parse flags, log, serve.

Runs on uvloop when it is installed: its libuv-based loop and transports roughly double the
request rate the HTTP server sustains on one core, which is where the query frontend spends its time.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Coroutine, Sequence
from typing import Any

from clipper_core.errors import ClipperError
from clipper_core.logs import configure_logging
from clipper_core.query_frontend.server import serve
from clipper_core.settings import QuerySettings

logger = logging.getLogger("clipper_core.query_frontend")


async def _serve_until_signalled(settings: QuerySettings) -> None:
    # Cancelling the task (rather than setting an event) also stops a start-up that is still
    # waiting for Redis; every started part is closed on the way out.
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    try:
        await serve(settings)
    except asyncio.CancelledError:
        logger.info("Query frontend stopped")


def _run(coro: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
        return
    uvloop.run(coro)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    settings = QuerySettings.parse(sys.argv[1:] if argv is None else argv, os.environ)
    configure_logging(settings.logging.level)
    try:
        _run(_serve_until_signalled(settings))
    except ClipperError as exc:
        logger.error("Query frontend cannot run: %s", exc.cause)
        return 1
    except OSError as exc:  # e.g. the REST or RPC port is taken
        logger.error("Query frontend cannot run: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
