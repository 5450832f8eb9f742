"""RPC v3 codec: ZeroMQ multipart frames <-> typed messages. Pure; no sockets.

Frames are given as the container's DEALER sees them, i.e. starting with the empty
delimiter frame. The frontend's ROUTER strips/prepends the routing identity itself.
All integers are little-endian (``u32`` = ``<I``, ``u64`` = ``<Q``).

Container -> frontend (no RPC-version frame):

* heartbeat:      ``["", u32 2]``
* new container:  ``["", u32 0, name, version, "<input type digit>", u32 3]``
* response:       ``["", u32 1, msg_id (4 bytes), u64 8(n+1), u64[n+1] [n, len_0..], out_0 .. out_n-1]``
* error (ours):   ``["", u32 3, msg_id (4 bytes), u32 kind, utf-8 message]``
* draining (ours): ``["", u32 4]``

Frontend -> container:

* heartbeat:      ``["", u32 3, u32 2, u32 heartbeat_type]``
* predict:        ``["", u32 3, u32 1, u32 msg_id, u32 0, u64 8(2+n),
                    u64[2+n] [type, n, size_0..], in_0 .. in_n-1]``

Error extension: when the model raises, or returns something other than one ``str`` per
input, the original container crashes. Ours sends message type 3 instead, echoing the
request's message id, and keeps serving; the frontend answers that batch's queries with
the application's default output at once. The original frontend never receives type 3
from an original container, so the extension changes nothing for it.

Draining extension: a container told to stop (SIGTERM) sends message type 4 once, keeps
answering every request it receives, and exits when the frontend has let it go (see
``containers.python.server``). On type 4 the frontend sends that connection no new batch,
lets the batch it holds complete, deletes its DB 3 record, forgets the connection and sends
it a RequestContainerMetadata heartbeat reply (unprompted; any later heartbeat of the
unknown connection gets the same), which tells the draining container it may exit. Two
frames only, so an original frontend, which reads identity, delimiter and type and ignores a
type it does not know, reads nothing more and keeps routing batches to the container until
it exits, as it would for an original container. An original frontend sees type 4 only when
our container is stopped while attached to it; an original container never sends it.

Every malformed input raises :class:`clipper_core.errors.RpcProtocolError`, nothing else.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final

from clipper_core.errors import RpcProtocolError
from clipper_core.rpc.messages import (
    RPC_VERSION,
    ContainerDraining,
    ContainerError,
    ContainerErrorKind,
    ContainerHeartbeat,
    HeartbeatReply,
    HeartbeatType,
    InputType,
    MessageType,
    NewContainer,
    PredictRequest,
    PredictResponse,
    RequestType,
)

__all__ = [
    "Buffer",
    "FromContainer",
    "FromFrontend",
    "decode_from_container",
    "decode_from_frontend",
    "encode_container_draining",
    "encode_container_error",
    "encode_container_heartbeat",
    "encode_heartbeat_reply",
    "encode_new_container",
    "encode_predict_request",
    "encode_predict_response",
]

Buffer = bytes | bytearray | memoryview
FromContainer = ContainerHeartbeat | NewContainer | PredictResponse | ContainerError | ContainerDraining
FromFrontend = HeartbeatReply | PredictRequest

_U32: Final = struct.Struct("<I")
_U64: Final = struct.Struct("<Q")
_EMPTY: Final = b""
_U32_MAX: Final = 0xFFFFFFFF
# Bound on the item count a header may announce; far above any real batch and keeps a
# corrupt header from making us allocate a huge tuple.
MAX_BATCH_ITEMS: Final = 1 << 20

_VERSION_FRAME: Final = _U32.pack(RPC_VERSION)
_HEARTBEAT_FRAME: Final = _U32.pack(MessageType.HEARTBEAT)
_DRAINING_FRAME: Final = _U32.pack(MessageType.CONTAINER_DRAINING)
_CONTENT_FRAME: Final = _U32.pack(MessageType.CONTAINER_CONTENT)
_PREDICT_FRAME: Final = _U32.pack(RequestType.PREDICT)


# ---------------------------------------------------------------------------- encoding


def encode_container_heartbeat() -> list[bytes]:
    return [_EMPTY, _HEARTBEAT_FRAME]


def encode_new_container(msg: NewContainer) -> list[bytes]:
    if msg.input_type is InputType.INVALID:
        raise RpcProtocolError("cannot register a container with an invalid input type")
    return [
        _EMPTY,
        _U32.pack(MessageType.NEW_CONTAINER),
        msg.model_name.encode("utf-8"),
        msg.model_version.encode("utf-8"),
        str(int(msg.input_type)).encode("ascii"),
        _U32.pack(msg.rpc_version),
    ]


def encode_predict_response(msg: PredictResponse) -> list[Buffer]:
    n = len(msg.outputs)
    header = struct.pack(f"<{n + 1}Q", n, *map(len, msg.outputs))
    return [
        _EMPTY,
        _CONTENT_FRAME,
        _pack_u32(msg.message_id, "message id"),
        _U64.pack(len(header)),
        header,
        *msg.outputs,
    ]


def encode_container_error(msg: ContainerError) -> list[bytes]:
    return [
        _EMPTY,
        _U32.pack(MessageType.CONTAINER_ERROR),
        _pack_u32(msg.message_id, "message id"),
        _U32.pack(msg.kind),
        msg.message.encode("utf-8", "replace"),
    ]


def encode_container_draining() -> list[bytes]:
    return [_EMPTY, _DRAINING_FRAME]


def encode_heartbeat_reply(heartbeat_type: HeartbeatType) -> list[bytes]:
    return [_EMPTY, _VERSION_FRAME, _HEARTBEAT_FRAME, _U32.pack(heartbeat_type)]


def encode_predict_request(
    message_id: int, input_type: InputType, inputs: Sequence[Buffer]
) -> list[Buffer]:
    """Frames of a predict request; payload buffers are passed through uncopied."""
    if input_type is InputType.INVALID:
        raise RpcProtocolError("cannot send a request with an invalid input type")
    n = len(inputs)
    header = struct.pack(f"<{n + 2}Q", input_type, n, *map(_nbytes, inputs))
    return [
        _EMPTY,
        _VERSION_FRAME,
        _CONTENT_FRAME,
        _pack_u32(message_id, "message id"),
        _PREDICT_FRAME,
        _U64.pack(len(header)),
        header,
        *inputs,
    ]


def _nbytes(buf: Buffer) -> int:
    return buf.nbytes if isinstance(buf, memoryview) else len(buf)


def _pack_u32(value: int, what: str) -> bytes:
    if not 0 <= value <= _U32_MAX:
        raise RpcProtocolError(f"{what} {value} does not fit in a u32")
    return _U32.pack(value)


# ---------------------------------------------------------------------------- decoding


def decode_from_container(frames: Sequence[Buffer]) -> FromContainer:
    """Decode a message a container sent (frontend side, identity already stripped)."""
    _expect_min(frames, 2)
    _expect_delimiter(frames)
    kind = _read_u32(frames[1], "message type")
    if kind == MessageType.HEARTBEAT:
        _expect_exact(frames, 2, "heartbeat")
        return ContainerHeartbeat()
    if kind == MessageType.NEW_CONTAINER:
        return _decode_new_container(frames)
    if kind == MessageType.CONTAINER_CONTENT:
        return _decode_predict_response(frames)
    if kind == MessageType.CONTAINER_ERROR:
        return _decode_container_error(frames)
    if kind == MessageType.CONTAINER_DRAINING:
        _expect_exact(frames, 2, "draining message")
        return ContainerDraining()
    raise RpcProtocolError(f"unknown message type {kind}")


def decode_from_frontend(frames: Sequence[Buffer]) -> FromFrontend:
    """Decode a message the frontend sent (container side)."""
    _expect_min(frames, 3)
    _expect_delimiter(frames)
    version = _read_u32(frames[1], "RPC version")
    if version != RPC_VERSION:
        raise RpcProtocolError(f"RPC version {version} is not {RPC_VERSION}")
    kind = _read_u32(frames[2], "message type")
    if kind == MessageType.HEARTBEAT:
        _expect_exact(frames, 4, "heartbeat reply")
        raw = _read_u32(frames[3], "heartbeat type")
        try:
            return HeartbeatReply(HeartbeatType(raw))
        except ValueError:
            raise RpcProtocolError(f"unknown heartbeat type {raw}") from None
    if kind == MessageType.CONTAINER_CONTENT:
        return _decode_predict_request(frames)
    if kind == MessageType.NEW_CONTAINER:
        raise RpcProtocolError("frontend sent a new-container message")
    raise RpcProtocolError(f"unknown message type {kind}")


def _decode_new_container(frames: Sequence[Buffer]) -> NewContainer:
    _expect_exact(frames, 6, "new-container message")
    name = _read_text(frames[2], "model name")
    version = _read_text(frames[3], "model version")
    type_text = _read_text(frames[4], "input type")
    # The length bound keeps int() from raising ValueError on a huge digit string.
    if not type_text.isascii() or not type_text.isdigit() or len(type_text) > 10:
        raise RpcProtocolError(f"input type {type_text[:20]!r} is not a decimal code")
    code = int(type_text)
    if not 0 <= code <= InputType.STRINGS:
        raise RpcProtocolError(f"unknown input type {code}")
    rpc_version = _read_u32(frames[5], "RPC version")
    if rpc_version != RPC_VERSION:
        raise RpcProtocolError(f"RPC version {rpc_version} is not {RPC_VERSION}")
    if not name:
        raise RpcProtocolError("empty model name")
    return NewContainer(name, version, InputType(code), rpc_version)


def _decode_predict_response(frames: Sequence[Buffer]) -> PredictResponse:
    _expect_min(frames, 5)
    message_id = _read_u32(frames[2], "message id")
    sizes = _read_sized_header(frames[3], frames[4], offset=1)
    payloads = frames[5:]
    _check_payloads(sizes, payloads)
    return PredictResponse(message_id, [bytes(p) for p in payloads])


def _decode_container_error(frames: Sequence[Buffer]) -> ContainerError:
    _expect_exact(frames, 5, "container error")
    message_id = _read_u32(frames[2], "message id")
    raw_kind = _read_u32(frames[3], "error kind")
    try:
        kind = ContainerErrorKind(raw_kind)
    except ValueError:
        raise RpcProtocolError(f"unknown error kind {raw_kind}") from None
    return ContainerError(message_id, kind, bytes(frames[4]).decode("utf-8", "replace"))


def _decode_predict_request(frames: Sequence[Buffer]) -> PredictRequest:
    _expect_min(frames, 7)
    message_id = _read_u32(frames[3], "message id")
    request_type = _read_u32(frames[4], "request type")
    if request_type != RequestType.PREDICT:
        raise RpcProtocolError(f"unsupported request type {request_type}")
    header = _read_sized_header(frames[5], frames[6], offset=2)
    raw_type = header[0]
    if raw_type > InputType.STRINGS:
        raise RpcProtocolError(f"unknown input type {raw_type}")
    sizes = header[2:]
    payloads = frames[7:]
    _check_payloads(sizes, payloads)
    return PredictRequest(message_id, InputType(raw_type), [bytes(p) for p in payloads])


def _read_sized_header(length_frame: Buffer, header_frame: Buffer, *, offset: int) -> tuple[int, ...]:
    """Read ``u64 L`` + ``u64[offset-1 .. , n, sizes...]``; returns the full tuple.

    ``offset`` is the number of u64 words before the per-item sizes; the count ``n`` is
    the last of them.
    """
    declared = _read_u64(length_frame, "header length")
    actual = len(header_frame)
    if declared != actual:
        raise RpcProtocolError(f"header length frame says {declared} bytes, header has {actual}")
    if actual < 8 * offset or actual % 8:
        raise RpcProtocolError(f"header of {actual} bytes is not {offset} or more u64 words")
    words = actual // 8
    values = struct.unpack(f"<{words}Q", header_frame)
    n = values[offset - 1]
    if n > MAX_BATCH_ITEMS or words != offset + n:
        raise RpcProtocolError(f"header announces {n} items but holds {words - offset} sizes")
    return values if offset == 2 else values[1:]


def _check_payloads(sizes: Sequence[int], payloads: Sequence[Buffer]) -> None:
    if len(sizes) != len(payloads):
        raise RpcProtocolError(f"header announces {len(sizes)} payloads, message has {len(payloads)}")
    for i, (size, payload) in enumerate(zip(sizes, payloads, strict=True)):
        if size != len(payload):
            raise RpcProtocolError(f"payload {i} has {len(payload)} bytes, header says {size}")


def _expect_min(frames: Sequence[Buffer], count: int) -> None:
    if len(frames) < count:
        raise RpcProtocolError(f"expected at least {count} frames, got {len(frames)}")


def _expect_exact(frames: Sequence[Buffer], count: int, what: str) -> None:
    if len(frames) != count:
        raise RpcProtocolError(f"{what} must have {count} frames, got {len(frames)}")


def _expect_delimiter(frames: Sequence[Buffer]) -> None:
    if len(frames[0]) != 0:
        raise RpcProtocolError("first frame is not the empty delimiter")


def _read_u32(frame: Buffer, what: str) -> int:
    if len(frame) != 4:
        raise RpcProtocolError(f"{what} frame has {len(frame)} bytes, expected 4")
    return int(_U32.unpack(frame)[0])


def _read_u64(frame: Buffer, what: str) -> int:
    if len(frame) != 8:
        raise RpcProtocolError(f"{what} frame has {len(frame)} bytes, expected 8")
    return int(_U64.unpack(frame)[0])


def _read_text(frame: Buffer, what: str) -> str:
    try:
        return bytes(frame).decode("utf-8")
    except UnicodeDecodeError:
        raise RpcProtocolError(f"{what} is not valid UTF-8") from None
