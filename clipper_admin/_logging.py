"""Progress lines for REPL and notebook users, without taking over an application's logging.

The original called ``logging.basicConfig`` at import: a notebook user saw ``Clipper is running``,
but an application that configured logging after the import found its configuration ignored
(basicConfig does nothing once the root logger has a handler). Here, while the application has
configured no logging (the root logger has no handler), the ``clipper_admin`` logger is at INFO
and writes to stderr through a handler of its own. Once the application has configured logging,
that handler stays silent and the package logger's level is whatever the application says
(unset: the root's), as if this module did not exist.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Final

__all__ = [
    "LOG_DATE_FORMAT",
    "LOG_FORMAT",
    "PROGRESS_EXTRA",
    "WAIT_REPORT_INTERVAL_S",
    "WaitProgress",
    "install_default_logging",
]

# The original's log format (programs may also pass these to logging.basicConfig).
LOG_FORMAT: Final = "%(asctime)s %(levelname)-8s [%(filename)s:%(lineno)d] %(message)s"
LOG_DATE_FORMAT: Final = "%y-%m-%d:%H:%M:%S"
PACKAGE_LOGGER: Final = "clipper_admin"
# A waiting line is repeated this often while the wait lasts (INFO; a notebook shows each).
WAIT_REPORT_INTERVAL_S: Final = 5.0
# Key of a LogRecord attribute (``extra=``) carrying structured progress for a terminal display
# (the ``clipper`` command draws it; log handlers ignore it): a dict with ``kind`` ("wait",
# "ready" or "build-step") and the numbers of that kind.
PROGRESS_EXTRA: Final = "clipper_progress"


def _application_configured_logging() -> bool:
    return bool(logging.getLogger().handlers)


class _PackageLogger(logging.Logger):
    """The package logger: INFO by default only while nobody configured logging.

    ``Logger.getEffectiveLevel`` reads ``.level`` up the chain, so a property is enough for every
    ``clipper_admin.*`` logger to follow. A level the application sets is kept and always wins.
    """

    _level_set_by_application: int = logging.NOTSET

    @property  # type: ignore[override]
    def level(self) -> int:
        if self._level_set_by_application != logging.NOTSET:
            return self._level_set_by_application
        return logging.NOTSET if _application_configured_logging() else logging.INFO

    @level.setter
    def level(self, value: int) -> None:
        self._level_set_by_application = value


class _UntilConfigured(logging.StreamHandler):  # type: ignore[type-arg]
    """stderr, while the application has configured no logging of its own."""

    def emit(self, record: logging.LogRecord) -> None:
        if not _application_configured_logging():
            super().emit(record)
        else:
            # Levels cached while nothing was configured must not outlive that state.
            logging.getLogger().manager._clear_cache()


def install_default_logging() -> None:
    """Idempotent: make the package logger follow the rules above."""
    package = logging.getLogger(PACKAGE_LOGGER)
    if any(isinstance(h, _UntilConfigured) for h in package.handlers):
        return
    own_level = package.__dict__.pop("level", logging.NOTSET)
    package.__class__ = _PackageLogger
    package.level = own_level
    handler = _UntilConfigured(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT, LOG_DATE_FORMAT))
    package.addHandler(handler)
    package.manager._clear_cache()


class WaitProgress:
    """INFO lines while waiting for a component: which one, for how long so far, the timeout.

    ``what`` names the component ("the query frontend"), ``until`` the condition awaited ("to
    answer http://...").
    Creating it says what is awaited; ``tick()``, called from the polling loop, repeats that
    every ``interval_s`` with the time waited so far; ``done()`` says how long it took.
    """

    def __init__(
        self,
        log: logging.Logger | logging.LoggerAdapter[Any],
        what: str,
        timeout_s: float,
        until: str = "",
        interval_s: float | None = None,
    ) -> None:
        self._log = log
        self.what = what
        self._awaited = f"{what} {until}" if until else what
        self.timeout_s = timeout_s
        self._interval_s = WAIT_REPORT_INTERVAL_S if interval_s is None else interval_s
        self._started = time.monotonic()
        self._next_report = self._started + self._interval_s
        self._log.info("Waiting for %s (timeout %.0f s)", self._awaited, self.timeout_s,
                       extra=self._extra("wait"))

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self._started

    def _extra(self, kind: str) -> dict[str, Any]:
        return {PROGRESS_EXTRA: {"kind": kind, "what": self.what, "elapsed_s": self.elapsed_s,
                                 "timeout_s": self.timeout_s}}

    def tick(self) -> None:
        now = time.monotonic()
        if now < self._next_report:
            return
        self._next_report = now + self._interval_s
        self._log.info("Still waiting for %s: %.0f s of %.0f s", self._awaited, self.elapsed_s,
                       self.timeout_s, extra=self._extra("wait"))

    def done(self) -> None:
        self._log.info("%s is ready after %.1f s", _capitalised(self.what), self.elapsed_s,
                       extra=self._extra("ready"))


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]
