"""A warning per bad event, but never a flood of them: the RPC port's refusals and drops."""

from __future__ import annotations

import logging
import math
import time

__all__ = ["RateLimitedWarning"]


class RateLimitedWarning:
    """Logs a warning per call, but at most ``burst`` per ``period_s`` (then a count).

    A peer that floods the RPC port with bad frames (or a burst of them reconnecting) must not
    be able to flood the log as well.
    """

    __slots__ = ("_in_window", "_logger", "_suppressed", "_window_start", "burst", "period_s")

    def __init__(self, logger: logging.Logger, burst: int = 10, period_s: float = 60.0) -> None:
        self._logger = logger
        self.burst = burst
        self.period_s = period_s
        self._window_start = -math.inf
        self._in_window = 0
        self._suppressed = 0

    def warn(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._window_start >= self.period_s:
            if self._suppressed:
                self._logger.warning(
                    "%d more such warnings were suppressed in the last %g s", self._suppressed, self.period_s
                )
            self._window_start, self._in_window, self._suppressed = now, 0, 0
        if self._in_window < self.burst:
            self._in_window += 1
            self._logger.warning(message, *args)
        else:
            self._suppressed += 1
