"""One shallow exception tree for the serving system.

Every error carries the two texts the REST layer renders as ``{"error", "cause"}``
and the HTTP status it maps to. Nothing here imports anything of ours.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "BadRequest",
    "ClipperError",
    "NotFound",
    "PayloadTooLarge",
    "RpcProtocolError",
    "StateError",
]


class ClipperError(Exception):
    """Root of every error raised by ``clipper_core``."""

    http_status: ClassVar[int] = 500
    default_error: ClassVar[str] = "Internal error"

    def __init__(self, cause: str, error: str | None = None) -> None:
        super().__init__(cause)
        self.cause = cause
        self.error = error if error is not None else self.default_error


class BadRequest(ClipperError):
    """The client sent something we refuse (HTTP 400)."""

    http_status = 400
    default_error = "Json error"


class NotFound(ClipperError):
    """The path or the named object does not exist (HTTP 404)."""

    http_status = 404
    default_error = "Not found"


class PayloadTooLarge(ClipperError):
    """Request body over the configured limit (HTTP 413)."""

    http_status = 413
    default_error = "Request too large"


class StateError(ClipperError):
    """Redis is unreachable or holds a record we cannot read."""

    http_status = 500
    default_error = "State error"


class RpcProtocolError(ClipperError):
    """A ZeroMQ multipart message does not follow RPC v3 (or our error extension)."""

    http_status = 500
    default_error = "RPC protocol error"
