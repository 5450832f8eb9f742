"""ZMTP 3.x (RFC 23 / RFC 37), NULL mechanism, as a sans-I/O state machine (no sockets here).

The query frontend's ROUTER (an asyncio Protocol) and the container runtime's DEALER (a
blocking socket) both speak ZeroMQ's wire protocol through :class:`ZmtpConnection` instead of
going through libzmq's I/O thread. The transport owns the socket; this class only turns
bytes into events and frames into bytes:

* ``ZmtpConnection(...)`` queues our greeting and READY command at once; the transport sends
  ``data_to_send()`` first, then any ``encode(frames)`` output, in order.
* ``receive_data(data)`` takes whatever the socket returned (any split, any coalescing) and
  returns the complete events: one :class:`Ready` when the peer's READY arrives, then one
  :class:`Message` per multipart message. A PING is answered with a PONG (queued in
  ``data_to_send()``); other commands are ignored. Anything malformed raises :class:`ZmtpError`,
  and the connection stays failed.

Wire layout (network byte order):

* greeting (64 bytes): ``0xFF``, 8 padding bytes, ``0x7F``, major 3, minor 0, mechanism
  ``b"NULL"`` zero-padded to 20 bytes, as-server byte, 31 zero bytes. A peer's major version
  must be 3 or more (libzmq 4 says 3.1); ZMTP 1.0/2.0 peers are refused.
* frame: flags byte (``0x01`` MORE, ``0x02`` LONG, ``0x04`` COMMAND), size (u8, or u64 when
  LONG), body. A command body is ``name-len u8, name, data``.
* READY data: properties ``name-len u8, name, value-len u32, value``; we send ``Socket-Type``
  and, when we have one, ``Identity``.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from clipper_core.errors import RpcProtocolError
from clipper_core.rpc.codec import Buffer

__all__ = [
    "ZMTP_GREETING_BYTES",
    "Message",
    "Ready",
    "ZmtpConnection",
    "ZmtpError",
    "ZmtpEvent",
]

ZMTP_GREETING_BYTES: Final = 64

_MORE: Final = 0x01
_LONG: Final = 0x02
_COMMAND: Final = 0x04
_RESERVED_FLAGS: Final = 0xF8
_SIGNATURE_END: Final = 0x7F
_MECHANISM: Final = b"NULL".ljust(20, b"\0")
_MAX_SHORT: Final = 255
# A 64-bit size with the top bit set is not allowed (RFC 23, "the most significant bit
# SHALL be zero").
_MAX_LONG: Final = (1 << 63) - 1
_U64: Final = struct.Struct(">Q")
_U32: Final = struct.Struct(">I")
# Payloads at least this large go out as their own buffer (no copy); smaller ones are joined
# with the frame headers around them into one buffer, so a small message is one send buffer.
_JOIN_BELOW_BYTES: Final = 2048
# Received views smaller than this are copied to bytes once before frames are cut out of them.
_COPY_VIEW_BELOW_BYTES: Final = 16384
# A PING's context is at most 16 bytes (RFC 37); longer pings are still answered, truncated.
_PING_CONTEXT_BYTES: Final = 16

# Which peer socket types each of ours may talk to (RFC 28 request-reply; ROUTER<->ROUTER and
# DEALER<->DEALER are allowed by libzmq too).
_COMPATIBLE: Final[dict[str, frozenset[str]]] = {
    "REQ": frozenset({"REP", "ROUTER"}),
    "REP": frozenset({"REQ", "DEALER"}),
    "DEALER": frozenset({"REP", "DEALER", "ROUTER"}),
    "ROUTER": frozenset({"REQ", "DEALER", "ROUTER"}),
}


class ZmtpError(RpcProtocolError):
    """The peer broke ZMTP: bad greeting, mechanism, socket type, framing or an oversize message."""


class ZmtpEvent:
    """Base of what :meth:`ZmtpConnection.receive_data` returns."""

    __slots__ = ()


@dataclass(slots=True)
class Ready(ZmtpEvent):
    """The handshake is complete; the peer said who it is."""

    peer_socket_type: str
    peer_identity: bytes


@dataclass(slots=True)
class Message(ZmtpEvent):
    """One complete multipart message."""

    frames: list[bytes]


def _command(name: bytes, data: bytes) -> bytes:
    body = bytes((len(name),)) + name + data
    return _frame_header(_COMMAND, len(body)) + body


def _frame_header(flags: int, size: int) -> bytes:
    if size <= _MAX_SHORT:
        return bytes((flags, size))
    return bytes((flags | _LONG,)) + _U64.pack(size)


def _property(name: bytes, value: bytes) -> bytes:
    return bytes((len(name),)) + name + _U32.pack(len(value)) + value


# Frame headers of the common small sizes, built once (encode's hot path).
_SHORT_HEADERS: Final = tuple(tuple(bytes((flags, size)) for size in range(256)) for flags in (0, _MORE))


class ZmtpConnection:
    """One ZMTP connection's protocol state (NULL mechanism). See the module docstring.

    Args:
        socket_type: our ZeroMQ socket type (``"DEALER"``, ``"ROUTER"``, ``"REQ"``, ``"REP"``).
        identity: our routing identity, sent in READY when non-empty (1-255 bytes).
        as_server: the greeting's as-server byte (the side that accepted the connection).
        max_message_bytes: refuse (ZmtpError) a message whose frames add up to more.

    Raises:
        ValueError: unknown socket type, or an identity longer than 255 bytes.
    """

    __slots__ = (
        "_buf",
        "_failed",
        "_frames",
        "_have_greeting",
        "_max",
        "_message_bytes",
        "_need",
        "_out",
        "peer_identity",
        "peer_socket_type",
        "ready",
        "socket_type",
    )

    def __init__(
        self,
        socket_type: str,
        *,
        identity: bytes = b"",
        as_server: bool,
        max_message_bytes: int | None = None,
    ) -> None:
        if socket_type not in _COMPATIBLE:
            raise ValueError(f"unsupported ZMTP socket type {socket_type!r}")
        if len(identity) > _MAX_SHORT:
            raise ValueError(f"identity of {len(identity)} bytes is longer than 255")
        self.socket_type = socket_type
        self.ready = False
        self.peer_socket_type = ""
        self.peer_identity = b""
        self._max = max_message_bytes
        self._buf = bytearray()
        # Bytes needed at the start of _buf before parsing can progress (avoids re-parsing a
        # large frame's growing body on every chunk).
        self._need = 1
        self._have_greeting = False
        self._failed: ZmtpError | None = None
        self._frames: list[bytes] = []
        self._message_bytes = 0
        greeting = (
            b"\xff"
            + bytes(8)
            + bytes((_SIGNATURE_END, 3, 0))
            + _MECHANISM
            + bytes((int(as_server),))
            + bytes(31)
        )
        metadata = _property(b"Socket-Type", socket_type.encode("ascii"))
        if identity:
            metadata += _property(b"Identity", identity)
        self._out = bytearray(greeting + _command(b"READY", metadata))

    # ------------------------------------------------------------------ outgoing

    def data_to_send(self) -> bytes:
        """Pending protocol bytes (greeting, READY, PONGs); ``b""`` when there are none."""
        if not self._out:
            return b""
        out = bytes(self._out)
        self._out.clear()
        return out

    def encode(self, frames: Sequence[Buffer]) -> list[Buffer]:
        """The wire buffers of one multipart message, for ``sendmsg`` / ``writelines``.

        Small payloads are joined with the headers; payloads of 2 KiB or more are returned
        as they are (not copied), so the caller must not change them until they are sent.

        Raises:
            ValueError: ``frames`` is empty.
        """
        last = len(frames) - 1
        if last < 0:
            raise ValueError("a ZMTP message has at least one frame")
        out: list[Buffer] = []
        small = bytearray()
        for index, frame in enumerate(frames):
            size = frame.nbytes if isinstance(frame, memoryview) else len(frame)
            more = _MORE if index < last else 0
            if size <= _MAX_SHORT:
                small += _SHORT_HEADERS[more][size]
            else:
                small += bytes((more | _LONG,))
                small += _U64.pack(size)
            if size < _JOIN_BELOW_BYTES:
                small += frame
            else:
                out.append(bytes(small))
                small.clear()
                out.append(frame)
        if small:
            out.append(bytes(small))
        return out

    # ------------------------------------------------------------------ incoming

    def receive_data(self, data: Buffer) -> list[ZmtpEvent]:
        """Feed received bytes; return the events they complete (possibly none).

        ``data`` may be a view of a reusable receive buffer: everything returned is copied
        out of it, and what is kept for later too.

        Raises:
            ZmtpError: the peer broke the protocol (also on every later call).
        """
        if self._failed is not None:
            raise self._failed
        buf = self._buf
        events: list[ZmtpEvent] = []
        if buf:
            buf += data
            if len(buf) < self._need:
                return events
            # Parse in place: a large frame is copied once more, into its own bytes.
            view = memoryview(buf)
            try:
                pos = self._parse(view, events)
            finally:
                view.release()
            del buf[:pos]
            return events
        if len(data) < self._need:
            buf += data
            return events
        if len(data) < _COPY_VIEW_BELOW_BYTES and not isinstance(data, bytes):
            data = bytes(data)  # slicing frames out of bytes is faster than out of a view
        pos = self._parse(data, events)
        if pos < len(data):
            buf += memoryview(data)[pos:]
        return events

    def _parse(self, src: Buffer, events: list[ZmtpEvent]) -> int:
        """Consume whole units from ``src``; set ``_need``; return the position reached."""
        try:
            return self._parse_units(src, events)
        except ZmtpError as exc:
            self._failed = exc
            raise

    def _parse_units(self, src: Buffer, events: list[ZmtpEvent]) -> int:
        pos = 0
        if not self._have_greeting:
            if len(src) < ZMTP_GREETING_BYTES:
                _check_greeting_prefix(bytes(src))
                self._need = ZMTP_GREETING_BYTES
                return 0
            _check_greeting(bytes(src[:ZMTP_GREETING_BYTES]))
            self._have_greeting = True
            pos = ZMTP_GREETING_BYTES
        end = len(src)
        frames = self._frames
        limit = self._max
        while True:
            if end - pos < 2:
                self._need = 2
                return pos
            flags = src[pos]
            if flags & _LONG:
                if end - pos < 9:
                    self._need = 9
                    return pos
                size = _U64.unpack_from(src, pos + 1)[0]
                start = pos + 9
                if size > _MAX_LONG:
                    raise ZmtpError(f"frame size {size} has the reserved top bit set")
            else:
                size = src[pos + 1]
                start = pos + 2
            if flags & _RESERVED_FLAGS:
                raise ZmtpError(f"frame flags {flags:#04x} use reserved bits")
            if flags & _COMMAND:
                if flags & _MORE:
                    raise ZmtpError("a command frame has the MORE flag")
                if limit is not None and size > limit:
                    raise ZmtpError(f"command larger than {limit} bytes")
            elif limit is not None and self._message_bytes + size > limit:
                raise ZmtpError(f"message larger than {limit} bytes")
            stop = start + size
            if stop > end:
                self._need = stop - pos
                return pos
            body = src[start:stop]
            if not isinstance(body, bytes):  # a view: copy the frame out of the buffer
                body = bytes(body)
            pos = stop
            if flags & _COMMAND:
                self._command(body, events)
            elif not self.ready:
                raise ZmtpError("message frame before the peer's READY command")
            elif flags & _MORE:
                frames.append(body)
                self._message_bytes += size
            else:
                frames.append(body)
                events.append(Message(frames))
                frames = self._frames = []
                self._message_bytes = 0

    def _command(self, body: bytes, events: list[ZmtpEvent]) -> None:
        if not body or len(body) < 1 + body[0]:
            raise ZmtpError("command frame shorter than its name")
        name = body[1 : 1 + body[0]]
        data = body[1 + body[0] :]
        if not self.ready:
            if name == b"ERROR":
                reason = data[1 : 1 + data[0]] if data else b""
                raise ZmtpError(f"peer refused the handshake: {reason.decode('utf-8', 'replace')}")
            if name != b"READY":
                raise ZmtpError(f"expected READY, got command {name!r}")
            self._ready(data, events)
        elif name == b"PING":
            # data = TTL (u16) + context; the PONG echoes the context.
            self._out += _command(b"PONG", data[2 : 2 + _PING_CONTEXT_BYTES])
        elif name == b"READY":
            raise ZmtpError("second READY command")
        # Other commands (PONG, SUBSCRIBE, ERROR after the handshake, ...) mean nothing to
        # the socket types we speak; ignored as libzmq ignores unknown ones.

    def _ready(self, data: bytes, events: list[ZmtpEvent]) -> None:
        properties = _parse_properties(data)
        peer_type = properties.get("socket-type", b"").decode("ascii", "replace")
        if peer_type not in _COMPATIBLE[self.socket_type]:
            raise ZmtpError(f"peer socket type {peer_type!r} cannot talk to a {self.socket_type}")
        self.peer_socket_type = peer_type
        self.peer_identity = properties.get("identity", b"")
        self.ready = True
        events.append(Ready(peer_type, self.peer_identity))


def _check_greeting_prefix(src: bytes) -> None:
    """Refuse a non-ZMTP peer as soon as its first bytes show it (before 64 arrive)."""
    n = len(src)
    if n >= 1 and src[0] != 0xFF:
        raise ZmtpError("peer did not send a ZMTP greeting")
    if n >= 10 and not src[9] & 0x01:
        raise ZmtpError("peer speaks ZMTP 1.0")
    if n >= 11 and src[10] < 3:
        raise ZmtpError(f"peer speaks ZMTP {src[10]}.x; 3.0 or later needed")


def _check_greeting(src: bytes) -> None:
    _check_greeting_prefix(src)
    if src[9] != _SIGNATURE_END:
        raise ZmtpError("peer's greeting signature does not end with 0x7F")
    mechanism = src[12:32]
    if mechanism != _MECHANISM:
        shown = mechanism.rstrip(b"\0").decode("ascii", "replace")
        raise ZmtpError(f"peer asks for the {shown!r} security mechanism; only NULL is spoken here")


def _parse_properties(data: bytes) -> dict[str, bytes]:
    """READY metadata; names are case-insensitive (RFC 23), so they are lower-cased."""
    properties: dict[str, bytes] = {}
    pos, end = 0, len(data)
    while pos < end:
        name_len = data[pos]
        value_at = pos + 1 + name_len + 4
        if value_at > end:
            raise ZmtpError("READY metadata truncated")
        name = data[pos + 1 : pos + 1 + name_len].decode("ascii", "replace").lower()
        value_len = _U32.unpack_from(data, value_at - 4)[0]
        pos = value_at + value_len
        if pos > end:
            raise ZmtpError("READY metadata value truncated")
        properties[name] = data[value_at:pos]
    return properties
