"""Progress of long work on the ``clipper`` command's stderr, fed by the library's log records.

On a terminal, a Rich progress line shows what is going on now (the component awaited and for
how long, the image build's step out of all steps) and finished milestones stay as lines;
elsewhere (a pipe, CI) every INFO record is one plain log line. Warnings are always printed.
Errors are not: the command reports the exception it catches, once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Final

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text

from clipper_admin._logging import PROGRESS_EXTRA

__all__ = ["ProgressDisplay"]

PACKAGE_LOGGER: Final = "clipper_admin"
# Progress kinds that only update the live line (they are transient states, not milestones).
_TRANSIENT: Final = frozenset({"wait", "build-step", "build-output"})
_PLAIN_FORMAT: Final = "%(asctime)s %(levelname)s %(message)s"


class ProgressDisplay(logging.Handler):
    """A logging handler on the root logger for the lifetime of one command (a context manager).

    Records of ``loggers`` (the package's) pass from ``level``; other libraries' from WARNING.
    """

    def __init__(
        self, console: Console, level: int = logging.INFO, loggers: Sequence[str] = (PACKAGE_LOGGER,)
    ) -> None:
        super().__init__(logging.DEBUG)
        self._loggers = tuple(loggers)
        self._console = console
        self._level = level
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._formatter = logging.Formatter(_PLAIN_FORMAT, "%H:%M:%S")
        self._saved: list[tuple[logging.Logger, int]] = []
        self._activity = ""

    def __enter__(self) -> ProgressDisplay:
        ours = [logging.getLogger(name) for name in self._loggers]
        root = logging.getLogger()
        self._saved = [(logger, logger.level) for logger in [*ours, root]]
        for logger in ours:
            logger.setLevel(self._level)
        if root.level == logging.NOTSET or root.level > logging.WARNING:
            root.setLevel(logging.WARNING)
        root.addHandler(self)
        if self._console.is_terminal and self._level <= logging.INFO:
            self._progress = Progress(
                SpinnerColumn(), TextColumn("{task.description}"), BarColumn(bar_width=20),
                TextColumn("{task.fields[steps]}"), TimeElapsedColumn(),
                console=self._console, transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task("", total=None, steps="")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        logging.getLogger().removeHandler(self)
        for logger, level in self._saved:
            logger.setLevel(level)
        self.finish()

    def finish(self) -> None:
        """Take the live line off the terminal (before a result is printed); idempotent. Later
        records are printed as lines."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._task = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if record.levelno >= logging.ERROR:
                return  # the command prints the exception it catches, once
            message = record.getMessage()
            if record.levelno >= logging.WARNING:
                self._console.print(Text(f"warning: {message}", style="yellow"))
                return
            if self._progress is None or self._task is None:
                self._console.print(Text(self._formatter.format(record)), soft_wrap=True)
                return
            self._show(message, getattr(record, PROGRESS_EXTRA, None))
        except Exception:  # a display problem must never fail the command
            self.handleError(record)

    def _show(self, message: str, progress: dict[str, Any] | None) -> None:
        assert self._progress is not None and self._task is not None
        kind = progress.get("kind") if progress else None
        if kind == "build-output":
            return  # the step stays on the line; the builder's output is in the log
        if progress is not None and kind == "build-step":
            self._switch(f"build {progress['image']}")
            self._progress.update(
                self._task, description=f"Building {progress['image']}: {progress['instruction']}"[:100],
                total=progress["steps"], completed=progress["step"],
                steps=f"step {progress['step']}/{progress['steps']}",
            )
            return
        if progress is not None and kind == "wait":
            if self._switch(f"wait {progress['what']}"):
                self._progress.update(
                    self._task, description=f"Waiting for {progress['what']}"[:100], total=None,
                    completed=0, steps=f"(timeout {progress['timeout_s']:.0f} s)",
                )
            return
        self._switch(message)
        self._progress.update(self._task, description=message[:100], total=None, completed=0, steps="")
        self._progress.console.print(Text(f"{time.strftime('%H:%M:%S')} {message}", style="dim"))

    def _switch(self, activity: str) -> bool:
        """Restart the elapsed-time clock when a new activity begins; True if it is new."""
        assert self._progress is not None and self._task is not None
        if activity == self._activity:
            return False
        self._activity = activity
        self._progress.reset(self._task, total=None, completed=0)
        return True
