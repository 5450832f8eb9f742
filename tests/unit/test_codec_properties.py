"""Property tests of the RPC v3 codec: garbage and damaged messages only ever raise
RpcProtocolError, and random batches survive a round trip unchanged."""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clipper_core.errors import RpcProtocolError
from clipper_core.rpc import (
    ContainerDraining,
    ContainerError,
    ContainerErrorKind,
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

PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

VALID_TYPES = [t for t in InputType if t is not InputType.INVALID]
message_ids = st.integers(min_value=0, max_value=2**32 - 1)
payload_lists = st.lists(st.binary(max_size=64), max_size=20)
# Text that UTF-8 can encode (no lone surrogates).
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)


def _wire(frames: list) -> list[bytes]:
    return [bytes(f) for f in frames]


def _decodes_or_refuses(decoder, frames: list[bytes]) -> None:  # type: ignore[no-untyped-def]
    try:
        decoder(frames)
    except RpcProtocolError:
        pass


@st.composite
def frontend_messages(draw: st.DrawFn) -> list[bytes]:
    if draw(st.booleans()):
        return _wire(encode_heartbeat_reply(draw(st.sampled_from(list(HeartbeatType)))))
    input_type = draw(st.sampled_from(VALID_TYPES))
    return _wire(encode_predict_request(draw(message_ids), input_type, draw(payload_lists)))


@st.composite
def container_messages(draw: st.DrawFn) -> list[bytes]:
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return _wire(encode_container_heartbeat())
    if kind == 4:
        return _wire(encode_container_draining())
    if kind == 1:
        message = NewContainer(draw(texts.filter(bool)), draw(texts), draw(st.sampled_from(VALID_TYPES)))
        return _wire(encode_new_container(message))
    if kind == 2:
        return _wire(encode_predict_response(PredictResponse(draw(message_ids), draw(payload_lists))))
    error = ContainerError(draw(message_ids), draw(st.sampled_from(list(ContainerErrorKind))), draw(texts))
    return _wire(encode_container_error(error))


@st.composite
def mutated(draw: st.DrawFn, messages: st.SearchStrategy[list[bytes]]) -> list[bytes]:
    frames = list(draw(messages))
    for _ in range(draw(st.integers(1, 3))):
        mutation = draw(st.sampled_from(["truncate", "drop", "duplicate", "flip", "cut", "insert"]))
        if not frames and mutation != "insert":
            continue
        index = draw(st.integers(0, max(len(frames) - 1, 0)))
        if mutation == "truncate":
            frames = frames[:index]
        elif mutation == "drop":
            del frames[index]
        elif mutation == "duplicate":
            frames.insert(index, frames[index])
        elif mutation == "insert":
            frames.insert(index, draw(st.binary(max_size=16)))
        elif mutation == "cut":
            frame = frames[index]
            frames[index] = frame[: draw(st.integers(0, len(frame)))]
        elif frames[index]:
            frame = bytearray(frames[index])
            position = draw(st.integers(0, len(frame) - 1))
            frame[position] ^= draw(st.integers(1, 255))
            frames[index] = bytes(frame)
    return frames


small_u32 = st.integers(0, 8).map(lambda v: struct.pack("<I", v))
# Random frames, biased toward the small integers and empty frames a decoder branches on.
garbage_frames = st.lists(st.one_of(st.binary(max_size=40), small_u32, st.just(b"")), max_size=12)


@PROPERTY_SETTINGS
@given(garbage_frames)
def test_random_frames_never_raise_anything_but_protocol_errors(frames: list[bytes]) -> None:
    _decodes_or_refuses(decode_from_frontend, frames)
    _decodes_or_refuses(decode_from_container, frames)


@PROPERTY_SETTINGS
@given(mutated(frontend_messages()))
def test_damaged_frontend_messages_decode_or_raise_protocol_errors(frames: list[bytes]) -> None:
    _decodes_or_refuses(decode_from_frontend, frames)
    _decodes_or_refuses(decode_from_container, frames)


@PROPERTY_SETTINGS
@given(mutated(container_messages()))
def test_damaged_container_messages_decode_or_raise_protocol_errors(frames: list[bytes]) -> None:
    _decodes_or_refuses(decode_from_container, frames)
    _decodes_or_refuses(decode_from_frontend, frames)


@PROPERTY_SETTINGS
@given(message_ids, st.sampled_from(VALID_TYPES), payload_lists)
def test_predict_request_round_trip(message_id: int, input_type: InputType, payloads: list[bytes]) -> None:
    frames = _wire(encode_predict_request(message_id, input_type, payloads))
    assert decode_from_frontend(frames) == PredictRequest(message_id, input_type, payloads)


@PROPERTY_SETTINGS
@given(message_ids, payload_lists)
def test_predict_response_round_trip(message_id: int, outputs: list[bytes]) -> None:
    frames = _wire(encode_predict_response(PredictResponse(message_id, outputs)))
    assert decode_from_container(frames) == PredictResponse(message_id, outputs)


@PROPERTY_SETTINGS
@given(texts.filter(bool), texts, st.sampled_from(VALID_TYPES))
def test_new_container_round_trip(name: str, version: str, input_type: InputType) -> None:
    message = NewContainer(name, version, input_type)
    assert decode_from_container(_wire(encode_new_container(message))) == message


@PROPERTY_SETTINGS
@given(message_ids, st.sampled_from(list(ContainerErrorKind)), texts)
def test_container_error_round_trip(message_id: int, kind: ContainerErrorKind, text: str) -> None:
    message = ContainerError(message_id, kind, text)
    assert decode_from_container(_wire(encode_container_error(message))) == message


def test_container_draining_round_trip() -> None:
    assert decode_from_container(_wire(encode_container_draining())) == ContainerDraining()
