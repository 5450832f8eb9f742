"""The JSON error answers of both frontends, free of any HTTP library (pure).

Every error a frontend answers is ``{"error": ..., "cause": ...}`` (keys in that order) as
``application/json`` without a charset parameter, as the original wrote them. The management
frontend renders these through aiohttp (:mod:`clipper_core.http`); the query frontend writes
them with its own HTTP/1.1 server (:mod:`clipper_core.query_frontend.wire`). Both take the
texts from here, so a 404 or 405 reads the same on either port.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from clipper_core.errors import ClipperError

__all__ = [
    "JSON_CONTENT_TYPE",
    "ErrorAnswer",
    "answer_for_exception",
    "json_error_body",
    "method_not_allowed",
    "not_found",
]

logger = logging.getLogger(__name__)

JSON_CONTENT_TYPE: Final = "application/json"


def json_error_body(error: str, cause: str) -> bytes:
    """``{"error":...,"cause":...}`` as UTF-8 bytes, non-ASCII text kept as is."""
    return json.dumps({"error": error, "cause": cause}, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(slots=True, frozen=True)
class ErrorAnswer:
    """A status, the two texts of the JSON body, and the ``Allow`` header value of a 405."""

    status: int
    error: str
    cause: str
    allow: str | None = None

    @property
    def body(self) -> bytes:
        return json_error_body(self.error, self.cause)


def not_found(method: str, path: str) -> ErrorAnswer:
    """No route for the path."""
    return ErrorAnswer(404, "Not Found", f"No endpoint for {method} {path}")


def method_not_allowed(method: str, path: str, allowed: Iterable[str]) -> ErrorAnswer:
    """A route for the path, not for the method."""
    ordered = sorted(allowed)
    return ErrorAnswer(
        405,
        "Method Not Allowed",
        f"Method {method} is not allowed for {path}; allowed: {', '.join(ordered)}",
        allow=",".join(ordered),
    )


def answer_for_exception(method: str, path: str, exc: Exception) -> ErrorAnswer:
    """The answer for an exception a handler raised; logged once when it is the server's fault."""
    if isinstance(exc, ClipperError):
        if exc.http_status >= 500:
            logger.error("%s %s failed: %s", method, path, exc.cause)
        return ErrorAnswer(exc.http_status, exc.error, exc.cause)
    logger.error("Unhandled error in %s %s", method, path, exc_info=exc)
    return ErrorAnswer(500, "Internal error", f"{type(exc).__name__}: {exc}")
