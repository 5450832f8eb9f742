"""``python -m clipper_core.management_frontend`` / ``clipper-management-frontend``."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence

from clipper_core.logs import configure_logging
from clipper_core.management_frontend.server import serve
from clipper_core.settings import ManagementSettings

logger = logging.getLogger("clipper_core.management_frontend")


async def _serve_until_signalled(settings: ManagementSettings) -> None:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await serve(settings)
    except asyncio.CancelledError:
        logger.info("Management frontend stopped")


def main(argv: Sequence[str] | None = None) -> int:
    settings = ManagementSettings.parse(sys.argv[1:] if argv is None else argv, os.environ)
    configure_logging(settings.logging.level)
    asyncio.run(_serve_until_signalled(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
