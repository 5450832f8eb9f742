"""Logging set-up for process entry points (``__main__`` only; library code never adds handlers)."""

from __future__ import annotations

import logging
import sys
from typing import Final

__all__ = ["LOG_FORMAT", "configure_logging"]

LOG_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Chatty third-party loggers stay at WARNING unless we debug.
_QUIET_LOGGERS: Final = ("aiohttp.access",)


def configure_logging(level: str | int = "INFO") -> None:
    """One stderr handler on the root logger with :data:`LOG_FORMAT`; safe to call twice."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_clipper_handler", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler._clipper_handler = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    quiet_level = logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(quiet_level)
