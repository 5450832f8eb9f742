"""One shallow exception tree for the serving system.

Every error carries the two texts the REST layer renders as ``{"error", "cause"}``
and the HTTP status it maps to. Nothing here imports anything of ours.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "BadRequest",
    "ClipperError",
    "ContainerGone",
    "ModelFailed",
    "NoConnectedModels",
    "NotFound",
    "Overloaded",
    "PayloadTooLarge",
    "QueryExpired",
    "Rejected",
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
    """The request asks for more work than one request may (HTTP 413)."""

    http_status = 413
    default_error = "Request Entity Too Large"


class StateError(ClipperError):
    """Redis is unreachable or holds a record we cannot read."""

    http_status = 500
    default_error = "State error"


class RpcProtocolError(ClipperError):
    """A ZeroMQ multipart message does not follow RPC v3 (or our error extension)."""

    http_status = 500
    default_error = "RPC protocol error"


# ---------------------------------------------------------------------------- the query path
# Outcomes of one query below the processor, which turns each into a reply with the default
# output; none reaches the HTTP layer as an error.


class ModelFailed(ClipperError):
    """A container reported an error, or crashed or was removed while holding the batch."""

    default_error = "Model failed"

    def __init__(self, explanation: str) -> None:
        super().__init__(explanation)
        self.explanation = explanation


class ContainerGone(ModelFailed):
    """The batch was addressed to a connection that is no longer registered."""


class Overloaded(ModelFailed):
    """The model's queue is full: the query is shed and answered with the default output."""


class NoConnectedModels(ClipperError):
    """The model has no queue or no connected replica, and the input is not cached."""

    default_error = "No connected models"

    def __init__(self, cause: str = "no connected replica of the model") -> None:
        super().__init__(cause)


class QueryExpired(ClipperError, TimeoutError):
    """The query's deadline passed while it waited in the model queue."""

    default_error = "Query expired"


# ---------------------------------------------------------------------------- management


class Rejected(ClipperError):
    """A management request is refused with HTTP 400 and ``message`` as plain-text body."""

    http_status = 400
    default_error = "Request rejected"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
