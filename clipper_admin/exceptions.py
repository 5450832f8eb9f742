"""The two exceptions of the original clipper_admin API."""

from __future__ import annotations

__all__ = ["ClipperException", "UnconnectedException"]


class ClipperException(Exception):
    """A Clipper operation failed; ``msg`` holds the reason (also ``str(e)``)."""

    def __init__(self, msg: str, *args: object) -> None:
        self.msg = msg
        super().__init__(msg, *args)

    def __str__(self) -> str:
        return str(self.msg)


class UnconnectedException(ClipperException):
    """A method that needs a cluster was called before ``connect()`` or ``start_clipper()``."""

    def __init__(self, *args: object) -> None:
        message = (
            "No connection to Clipper cluster. Call ClipperConnection.connect to "
            "connect to an existing cluster or ClipperConnection.start_clipper to "
            "create a new one"
        )
        self.message = message
        super().__init__(message, *args)
