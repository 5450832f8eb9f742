"""RPC v3 enumerations and typed messages (no I/O, no encoding).

Numbers and names follow the original Clipper wire protocol; see ``codec.py`` for the
byte layouts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Final

__all__ = [
    "RPC_VERSION",
    "ContainerDraining",
    "ContainerError",
    "ContainerErrorKind",
    "ContainerHeartbeat",
    "HeartbeatReply",
    "HeartbeatType",
    "InputType",
    "MessageType",
    "NewContainer",
    "PredictRequest",
    "PredictResponse",
    "RequestType",
]

RPC_VERSION: Final = 3


class MessageType(IntEnum):
    NEW_CONTAINER = 0
    CONTAINER_CONTENT = 1
    HEARTBEAT = 2
    # Our extensions (container -> frontend only); the original never sends 3 or 4.
    CONTAINER_ERROR = 3
    CONTAINER_DRAINING = 4


class HeartbeatType(IntEnum):
    KEEP_ALIVE = 0
    REQUEST_CONTAINER_METADATA = 1


class RequestType(IntEnum):
    PREDICT = 0
    FEEDBACK = 1


class ContainerErrorKind(IntEnum):
    """Why a container could not answer a predict request (error extension)."""

    MODEL_EXCEPTION = 0
    BAD_OUTPUT = 1
    BAD_INPUT = 2


_READABLE: Final[dict[int, str]] = {
    -1: "Invalid input type",
    0: "bytes",
    1: "integers",
    2: "floats",
    3: "doubles",
    4: "strings",
}

_ALIASES: Final[dict[str, int]] = {
    **dict.fromkeys(("bytes", "byte", "b"), 0),
    **dict.fromkeys(("integers", "ints", "integer", "int", "i"), 1),
    **dict.fromkeys(("floats", "float", "f"), 2),
    **dict.fromkeys(("doubles", "double", "d"), 3),
    **dict.fromkeys(("strings", "string", "str", "strs", "s"), 4),
}


class InputType(IntEnum):
    """Data type of model inputs; the value is the wire code."""

    INVALID = -1
    BYTES = 0
    INTS = 1
    FLOATS = 2
    DOUBLES = 3
    STRINGS = 4

    @property
    def readable_name(self) -> str:
        """Canonical spelling used in Redis, REST bodies and logs (e.g. ``"doubles"``)."""
        return _READABLE[self.value]

    @classmethod
    def parse(cls, name: str) -> InputType:
        """Exact, case-sensitive alias lookup, as the original frontends do.

        Raises:
            ValueError: ``"<name> is not a valid input string"``.
        """
        code = _ALIASES.get(name)
        if code is None:
            raise ValueError(f"{name} is not a valid input string")
        return cls(code)

    @classmethod
    def parse_lenient(cls, name: str) -> InputType:
        """Alias lookup after ``strip().lower()`` (the container runtime's rule); INVALID if unknown."""
        return cls(_ALIASES.get(name.strip().lower(), -1))

    @classmethod
    def accepted_names(cls) -> tuple[str, ...]:
        """Every alias, canonical names first (for error messages)."""
        canonical = tuple(_READABLE[c] for c in range(5))
        return canonical + tuple(a for a in _ALIASES if a not in canonical)


@dataclass(slots=True, frozen=True)
class ContainerHeartbeat:
    """Container -> frontend: ``["", u32 2]``."""


@dataclass(slots=True, frozen=True)
class NewContainer:
    """Container -> frontend registration metadata."""

    model_name: str
    model_version: str
    input_type: InputType
    rpc_version: int = RPC_VERSION


@dataclass(slots=True, frozen=True)
class PredictResponse:
    """Container -> frontend: one UTF-8 output per input of the request."""

    message_id: int
    outputs: list[bytes] = field(default_factory=list)


@dataclass(slots=True, frozen=True)
class ContainerError:
    """Container -> frontend (extension): the model could not answer request ``message_id``."""

    message_id: int
    kind: ContainerErrorKind
    message: str


@dataclass(slots=True, frozen=True)
class ContainerDraining:
    """Container -> frontend (extension): send no new batch; this container is about to exit."""


@dataclass(slots=True, frozen=True)
class HeartbeatReply:
    """Frontend -> container: keep-alive, or a request for the container's metadata."""

    heartbeat_type: HeartbeatType


@dataclass(slots=True, frozen=True)
class PredictRequest:
    """Frontend -> container: a batch of raw input payloads of one input type."""

    message_id: int
    input_type: InputType
    inputs: list[bytes] = field(default_factory=list)
