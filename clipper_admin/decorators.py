"""``retry``: call a function again after listed exceptions, with exponential back-off."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

__all__ = ["retry"]

P = ParamSpec("P")
R = TypeVar("R")

_default_logger = logging.getLogger(__name__)


def retry(
    ExceptionToCheck: type[BaseException] | tuple[type[BaseException], ...],  # the original's name
    tries: int = 4,
    delay: float = 3,
    backoff: float = 2,
    logger: logging.Logger | logging.LoggerAdapter | None = None,  # type: ignore[type-arg]
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Retry the decorated function.

    Args:
        ExceptionToCheck: exception class (or tuple) that triggers a retry.
        tries: total number of attempts; the last one runs unguarded so its error propagates.
        delay: seconds to wait before the second attempt.
        backoff: factor applied to the delay after each failed attempt.
        logger: where the "Retrying" warnings go (this module's logger when None).
    """
    if tries < 1:
        raise ValueError("tries must be at least 1")
    log = logger if logger is not None else _default_logger

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            wait_s = delay
            for _ in range(tries - 1):
                try:
                    return func(*args, **kwargs)
                except ExceptionToCheck as exc:
                    log.warning("%s, Retrying in %s seconds...", exc, wait_s)
                    time.sleep(wait_s)
                    wait_s *= backoff
            return func(*args, **kwargs)

        return wrapper

    return decorate
