"""RPC v3 codec: golden frames written from original-core 1.4, round trips, malformed input.

Expected frames are spelled with ``struct.pack`` / byte literals here, never produced by the
encoder under test, so an encoder and decoder that agree on a wrong layout still fail.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest

from clipper_core.errors import RpcProtocolError
from clipper_core.rpc import (
    ContainerDraining,
    ContainerError,
    ContainerErrorKind,
    ContainerHeartbeat,
    HeartbeatReply,
    HeartbeatType,
    InputType,
    NewContainer,
    PredictRequest,
    PredictResponse,
    decode_from_container,
    decode_from_frontend,
    encode_container_draining,
    encode_container_error,
    encode_container_heartbeat,
    encode_heartbeat_reply,
    encode_new_container,
    encode_predict_request,
    encode_predict_response,
)


def u32(value: int) -> bytes:
    return struct.pack("<I", value)


def u64(value: int) -> bytes:
    return struct.pack("<Q", value)


def wire(frames: list) -> list[bytes]:
    """What the peer receives: every frame as plain bytes (zmq copies buffers)."""
    return [bytes(f) for f in frames]


def request_frames(
    msg_id: int, input_type: int, payloads: list[bytes], *, count: int | None = None
) -> list[bytes]:
    """A predict request spelled out by hand (original-core 1.4 (e))."""
    n = len(payloads) if count is None else count
    header = struct.pack(f"<{2 + len(payloads)}Q", input_type, n, *(len(p) for p in payloads))
    return [b"", u32(3), u32(1), u32(msg_id), u32(0), u64(len(header)), header, *payloads]


def response_frames(msg_id: int, outputs: list[bytes]) -> list[bytes]:
    """A prediction response spelled out by hand (original-core 1.4 (c))."""
    header = struct.pack(f"<{1 + len(outputs)}Q", len(outputs), *(len(o) for o in outputs))
    return [b"", u32(1), u32(msg_id), u64(len(header)), header, *outputs]


# ------------------------------------------------------------------ golden: container -> frontend


def test_heartbeat_golden_both_directions() -> None:
    expected = [b"", b"\x02\x00\x00\x00"]
    assert wire(encode_container_heartbeat()) == expected
    assert decode_from_container(expected) == ContainerHeartbeat()


@pytest.mark.parametrize(
    ("input_type", "digit"),
    [(InputType.BYTES, b"0"), (InputType.INTS, b"1"), (InputType.FLOATS, b"2"),
     (InputType.DOUBLES, b"3"), (InputType.STRINGS, b"4")],
)
def test_new_container_golden_both_directions(input_type: InputType, digit: bytes) -> None:
    expected = [b"", b"\x00\x00\x00\x00", b"sum-model", b"12", digit, b"\x03\x00\x00\x00"]
    msg = NewContainer("sum-model", "12", input_type)
    assert wire(encode_new_container(msg)) == expected
    assert decode_from_container(expected) == msg


def test_new_container_non_ascii_name() -> None:
    name = "modèle-日本"
    frames = [b"", u32(0), name.encode("utf-8"), "v1é".encode(), b"4", u32(3)]
    assert wire(encode_new_container(NewContainer(name, "v1é", InputType.STRINGS))) == frames
    assert decode_from_container(frames) == NewContainer(name, "v1é", InputType.STRINGS)


def test_predict_response_golden_both_directions() -> None:
    expected = [
        b"",
        b"\x01\x00\x00\x00",
        b"\x07\x00\x00\x00",
        b"\x18\x00\x00\x00\x00\x00\x00\x00",  # 8 * (n + 1) = 24
        struct.pack("<3Q", 2, 3, 2),
        b"1.0",
        b"ab",
    ]
    msg = PredictResponse(7, [b"1.0", b"ab"])
    assert wire(encode_predict_response(msg)) == expected
    assert decode_from_container(expected) == msg


def test_predict_response_echoes_full_u32_message_id() -> None:
    frames = response_frames(0xFFFFFFFF, [b"x"])
    frames[2] = b"\xff\xff\xff\xff"
    decoded = decode_from_container(frames)
    assert decoded == PredictResponse(0xFFFFFFFF, [b"x"])
    assert wire(encode_predict_response(decoded))[2] == b"\xff\xff\xff\xff"


def test_empty_predict_response_golden() -> None:
    expected = [b"", u32(1), u32(0), u64(8), u64(0)]
    assert wire(encode_predict_response(PredictResponse(0, []))) == expected
    assert decode_from_container(expected) == PredictResponse(0, [])


@pytest.mark.parametrize("kind", list(ContainerErrorKind))
def test_container_error_golden_both_directions(kind: ContainerErrorKind) -> None:
    text = "ValueError: négatif"
    expected = [b"", b"\x03\x00\x00\x00", u32(41), u32(int(kind)), text.encode("utf-8")]
    msg = ContainerError(41, kind, text)
    assert wire(encode_container_error(msg)) == expected
    assert decode_from_container(expected) == msg


def test_container_error_kind_numbers() -> None:
    assert [int(k) for k in ContainerErrorKind] == [0, 1, 2]
    assert [k.name for k in ContainerErrorKind] == ["MODEL_EXCEPTION", "BAD_OUTPUT", "BAD_INPUT"]


def test_container_draining_golden_both_directions() -> None:
    expected = [b"", b"\x04\x00\x00\x00"]
    assert wire(encode_container_draining()) == expected
    assert decode_from_container(expected) == ContainerDraining()


# ------------------------------------------------------------------ golden: frontend -> container


@pytest.mark.parametrize(
    ("heartbeat_type", "last_frame"),
    [
        (HeartbeatType.KEEP_ALIVE, b"\x00\x00\x00\x00"),
        (HeartbeatType.REQUEST_CONTAINER_METADATA, b"\x01\x00\x00\x00"),
    ],
)
def test_heartbeat_reply_golden_both_directions(heartbeat_type: HeartbeatType, last_frame: bytes) -> None:
    expected = [b"", b"\x03\x00\x00\x00", b"\x02\x00\x00\x00", last_frame]
    assert wire(encode_heartbeat_reply(heartbeat_type)) == expected
    assert decode_from_frontend(expected) == HeartbeatReply(heartbeat_type)


def test_predict_request_golden_both_directions() -> None:
    first = struct.pack("<2d", 1.5, -2.0)
    second = struct.pack("<3d", 0.0, 1.0, 2.0)
    expected = [
        b"",
        b"\x03\x00\x00\x00",  # RPC version
        b"\x01\x00\x00\x00",  # ContainerContent
        b"\x05\x00\x00\x00",  # message id
        b"\x00\x00\x00\x00",  # Predict
        b"\x20\x00\x00\x00\x00\x00\x00\x00",  # header length 8 * (2 + 2) = 32
        struct.pack("<4Q", 3, 2, 16, 24),  # doubles, n = 2, sizes in bytes
        first,
        second,
    ]
    assert wire(encode_predict_request(5, InputType.DOUBLES, [first, second])) == expected
    assert decode_from_frontend(expected) == PredictRequest(5, InputType.DOUBLES, [first, second])


def test_empty_predict_request_golden() -> None:
    expected = [b"", u32(3), u32(1), u32(0), u32(0), u64(16), struct.pack("<2Q", 4, 0)]
    assert wire(encode_predict_request(0, InputType.STRINGS, [])) == expected
    assert decode_from_frontend(expected) == PredictRequest(0, InputType.STRINGS, [])


def test_predict_request_sizes_count_bytes_of_memoryviews() -> None:
    values = np.arange(3, dtype="<i4")
    frames = encode_predict_request(1, InputType.INTS, [memoryview(values)])
    assert bytes(frames[6]) == struct.pack("<3Q", 1, 1, 12)
    assert bytes(frames[7]) == values.tobytes()


# ------------------------------------------------------------------ round trips per input type

PAYLOADS: dict[InputType, list[bytes]] = {
    InputType.BYTES: [b"\x00\xff\x10", b"", b"png\x89"],
    InputType.INTS: [struct.pack("<3i", -1, 0, 2**31 - 1), struct.pack("<i", 7)],
    InputType.FLOATS: [struct.pack("<2f", 0.5, -1.25)],
    InputType.DOUBLES: [struct.pack("<d", 3.141592653589793), struct.pack("<2d", 1e300, -0.0)],
    InputType.STRINGS: ["héllo".encode(), "日本語".encode(), b"", "🙂".encode()],
}


@pytest.mark.parametrize("input_type", list(PAYLOADS))
def test_predict_request_round_trip_every_input_type(input_type: InputType) -> None:
    payloads = PAYLOADS[input_type]
    frames = wire(encode_predict_request(99, input_type, payloads))
    assert frames == request_frames(99, int(input_type), payloads)
    assert decode_from_frontend(frames) == PredictRequest(99, input_type, payloads)


@pytest.mark.parametrize("input_type", list(PAYLOADS))
def test_empty_batch_round_trip_every_input_type(input_type: InputType) -> None:
    frames = wire(encode_predict_request(3, input_type, []))
    assert decode_from_frontend(frames) == PredictRequest(3, input_type, [])


def test_large_batch_round_trip_both_directions() -> None:
    payloads = [struct.pack("<2d", i, -i) for i in range(10_000)]
    frames = wire(encode_predict_request(123, InputType.DOUBLES, payloads))
    assert len(frames) == 7 + 10_000
    assert frames[5] == u64(8 * 10_002)
    assert decode_from_frontend(frames) == PredictRequest(123, InputType.DOUBLES, payloads)

    outputs = [str(i).encode() for i in range(10_000)]
    frames = wire(encode_predict_response(PredictResponse(123, outputs)))
    assert frames == response_frames(123, outputs)
    assert decode_from_container(frames) == PredictResponse(123, outputs)


def test_non_ascii_outputs_round_trip() -> None:
    outputs = ["{\"label\": \"chat 猫\"}".encode(), "ü".encode()]
    frames = wire(encode_predict_response(PredictResponse(2, outputs)))
    assert frames[4] == struct.pack("<3Q", 2, len(outputs[0]), 2)
    assert decode_from_container(frames).outputs[0].decode("utf-8") == "{\"label\": \"chat 猫\"}"


def test_decoders_accept_non_bytes_buffers() -> None:
    frames = [bytearray(f) for f in request_frames(4, 1, [struct.pack("<i", 5)])]
    assert decode_from_frontend(frames) == PredictRequest(4, InputType.INTS, [struct.pack("<i", 5)])
    views = [memoryview(f) for f in response_frames(4, [b"ok"])]
    assert decode_from_container(views) == PredictResponse(4, [b"ok"])


# ------------------------------------------------------------------ encoder refusals


@pytest.mark.parametrize("message_id", [-1, 2**32])
def test_encoders_refuse_message_ids_outside_u32(message_id: int) -> None:
    with pytest.raises(RpcProtocolError):
        encode_predict_request(message_id, InputType.DOUBLES, [])
    with pytest.raises(RpcProtocolError):
        encode_predict_response(PredictResponse(message_id, []))
    with pytest.raises(RpcProtocolError):
        encode_container_error(ContainerError(message_id, ContainerErrorKind.BAD_INPUT, "x"))


def test_encoders_refuse_invalid_input_type() -> None:
    with pytest.raises(RpcProtocolError):
        encode_predict_request(1, InputType.INVALID, [])
    with pytest.raises(RpcProtocolError):
        encode_new_container(NewContainer("m", "1", InputType.INVALID))


# ------------------------------------------------------------------ malformed: frontend -> container

_GOOD_REQUEST = request_frames(8, 3, [struct.pack("<d", 1.0), struct.pack("<d", 2.0)])


def _with(frames: list[bytes], index: int, value: bytes) -> list[bytes]:
    changed = list(frames)
    changed[index] = value
    return changed


MALFORMED_FROM_FRONTEND: dict[str, list[bytes]] = {
    "no frames": [],
    "only the delimiter": [b""],
    "two frames": [b"", u32(3)],
    "heartbeat without type": [b"", u32(3), u32(2)],
    "heartbeat with an extra frame": [b"", u32(3), u32(2), u32(0), b""],
    "unknown heartbeat type": [b"", u32(3), u32(2), u32(2)],
    "heartbeat type of 8 bytes": [b"", u32(3), u32(2), u64(0)],
    "wrong RPC version": [b"", u32(2), u32(2), u32(0)],
    "RPC version of 2 bytes": [b"", b"\x03\x00", u32(2), u32(0)],
    "missing delimiter": [u32(3), u32(2), u32(0)],
    "non-empty delimiter": [b"x", u32(3), u32(2), u32(0)],
    "unknown message type": [b"", u32(3), u32(7), u32(0)],
    "our error type from the frontend": [b"", u32(3), u32(3), u32(0)],
    "new-container from the frontend": [b"", u32(3), u32(0), b"m", b"1", b"3", u32(3)],
    "request cut before the header": _GOOD_REQUEST[:6],
    "request missing a payload": _GOOD_REQUEST[:-1],
    "request with an extra payload": [*_GOOD_REQUEST, struct.pack("<d", 3.0)],
    "feedback request type": _with(_GOOD_REQUEST, 4, u32(1)),
    "message id of 8 bytes": _with(_GOOD_REQUEST, 3, u64(8)),
    "header length frame too large": _with(_GOOD_REQUEST, 5, u64(40)),
    "header length frame too small": _with(_GOOD_REQUEST, 5, u64(24)),
    "header length frame of 4 bytes": _with(_GOOD_REQUEST, 5, u32(32)),
    "short header": [*_GOOD_REQUEST[:5], u64(8), u64(3), *_GOOD_REQUEST[7:]],
    "header not whole words": [*_GOOD_REQUEST[:5], u64(33), _GOOD_REQUEST[6] + b"\x00", *_GOOD_REQUEST[7:]],
    "oversized header": [
        *_GOOD_REQUEST[:5], u64(40), struct.pack("<5Q", 3, 2, 8, 8, 8), *_GOOD_REQUEST[7:]
    ],
    "count larger than the sizes": [
        *_GOOD_REQUEST[:5], u64(32), struct.pack("<4Q", 3, 3, 8, 8), *_GOOD_REQUEST[7:]
    ],
    "huge count": [*_GOOD_REQUEST[:5], u64(16), struct.pack("<2Q", 3, 2**63), *_GOOD_REQUEST[7:]],
    "size not matching its payload": [
        *_GOOD_REQUEST[:5], u64(32), struct.pack("<4Q", 3, 2, 8, 16), *_GOOD_REQUEST[7:]
    ],
    "unknown input type": request_frames(1, 5, [b"x"]),
    "input type -1 as u64": request_frames(1, 2**64 - 1, [b"x"]),
    "count says one, no payload": request_frames(1, 3, [], count=1),
}


@pytest.mark.parametrize("frames", list(MALFORMED_FROM_FRONTEND.values()), ids=list(MALFORMED_FROM_FRONTEND))
def test_malformed_frontend_messages_raise_rpc_protocol_error(frames: list[bytes]) -> None:
    with pytest.raises(RpcProtocolError):
        decode_from_frontend(frames)


def test_the_malformed_table_starts_from_a_valid_request() -> None:
    # Guards the table above: its mutations must be what makes those messages invalid.
    decoded = decode_from_frontend(_GOOD_REQUEST)
    assert isinstance(decoded, PredictRequest) and len(decoded.inputs) == 2


# ------------------------------------------------------------------ malformed: container -> frontend

_GOOD_REGISTRATION = [b"", u32(0), b"m", b"1", b"3", u32(3)]
_GOOD_RESPONSE = response_frames(6, [b"1.0", b"2.0"])
_GOOD_ERROR = [b"", u32(3), u32(6), u32(0), b"boom"]

MALFORMED_FROM_CONTAINER: dict[str, list[bytes]] = {
    "no frames": [],
    "only the delimiter": [b""],
    "missing delimiter": [u32(2)],
    "non-empty delimiter": [b"\x00", u32(2)],
    "message type of 3 bytes": [b"", b"\x02\x00\x00"],
    "unknown message type": [b"", u32(5)],
    "draining with an extra frame": [b"", u32(4), b""],
    "huge message type": [b"", u32(0xFFFFFFFF)],
    "heartbeat with an extra frame": [b"", u32(2), b""],
    "registration without RPC version": _GOOD_REGISTRATION[:5],
    "registration with an extra frame": [*_GOOD_REGISTRATION, b""],
    "registration with RPC version 2": _with(_GOOD_REGISTRATION, 5, u32(2)),
    "registration with RPC version as text": _with(_GOOD_REGISTRATION, 5, b"3"),
    "registration with input type 5": _with(_GOOD_REGISTRATION, 4, b"5"),
    "registration with input type -1": _with(_GOOD_REGISTRATION, 4, b"-1"),
    "registration with input type as u32": _with(_GOOD_REGISTRATION, 4, u32(3)),
    "registration with empty input type": _with(_GOOD_REGISTRATION, 4, b""),
    "registration with non-ASCII digit": _with(_GOOD_REGISTRATION, 4, "٣".encode()),
    "registration with a 5000-digit input type": _with(_GOOD_REGISTRATION, 4, b"3" * 5000),
    "registration with bad UTF-8 name": _with(_GOOD_REGISTRATION, 2, b"m\xff"),
    "registration with bad UTF-8 version": _with(_GOOD_REGISTRATION, 3, b"\xc3"),
    "registration with empty name": _with(_GOOD_REGISTRATION, 2, b""),
    "response cut before the header": _GOOD_RESPONSE[:4],
    "response missing an output": _GOOD_RESPONSE[:-1],
    "response with an extra output": [*_GOOD_RESPONSE, b"3.0"],
    "response header length mismatch": _with(_GOOD_RESPONSE, 3, u64(16)),
    "response header length of 4 bytes": _with(_GOOD_RESPONSE, 3, u32(24)),
    "response short header": [*_GOOD_RESPONSE[:3], u64(4), b"\x02\x00\x00\x00", *_GOOD_RESPONSE[5:]],
    "response empty header": [*_GOOD_RESPONSE[:3], u64(0), b"", *_GOOD_RESPONSE[5:]],
    "response oversized header": [
        *_GOOD_RESPONSE[:3], u64(32), struct.pack("<4Q", 2, 3, 3, 3), *_GOOD_RESPONSE[5:]
    ],
    "response size not matching": [
        *_GOOD_RESPONSE[:3], u64(24), struct.pack("<3Q", 2, 3, 4), *_GOOD_RESPONSE[5:]
    ],
    "response message id of 2 bytes": _with(_GOOD_RESPONSE, 2, b"\x06\x00"),
    "error without text": _GOOD_ERROR[:4],
    "error with an extra frame": [*_GOOD_ERROR, b""],
    "error with unknown kind": _with(_GOOD_ERROR, 3, u32(9)),
    "error with kind of 8 bytes": _with(_GOOD_ERROR, 3, u64(0)),
}


@pytest.mark.parametrize(
    "frames", list(MALFORMED_FROM_CONTAINER.values()), ids=list(MALFORMED_FROM_CONTAINER)
)
def test_malformed_container_messages_raise_rpc_protocol_error(frames: list[bytes]) -> None:
    with pytest.raises(RpcProtocolError):
        decode_from_container(frames)


@pytest.mark.parametrize(
    "frames", [_GOOD_REGISTRATION, _GOOD_RESPONSE, _GOOD_ERROR], ids=["reg", "resp", "err"]
)
def test_the_container_table_starts_from_valid_messages(frames: list[bytes]) -> None:
    decode_from_container(frames)


def test_container_error_text_with_bad_utf8_is_replaced_not_refused() -> None:
    # The error text is for humans; a broken byte must not lose the whole report.
    decoded = decode_from_container([b"", u32(3), u32(1), u32(2), b"bad \xff byte"])
    assert decoded == ContainerError(1, ContainerErrorKind.BAD_INPUT, "bad \ufffd byte")
