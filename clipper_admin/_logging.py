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
from typing import Final

__all__ = ["LOG_DATE_FORMAT", "LOG_FORMAT", "install_default_logging"]

# The original's log format (programs may also pass these to logging.basicConfig).
LOG_FORMAT: Final = "%(asctime)s %(levelname)-8s [%(filename)s:%(lineno)d] %(message)s"
LOG_DATE_FORMAT: Final = "%y-%m-%d:%H:%M:%S"
PACKAGE_LOGGER: Final = "clipper_admin"


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
