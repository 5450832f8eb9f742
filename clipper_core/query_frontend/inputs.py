"""Request bodies -> input wire bytes, per input type (pure; no I/O).

Matches the original's parsing rules and error texts (core spec 2.2, 2.3, 2.5): doubles and
floats accept only numbers written with a fraction or exponent, ints only integral numbers in
int32 range, strings are sent as their UTF-8 bytes, bytes arrive base64-encoded. orjson keeps
the distinction we need: ``1`` parses to ``int`` and ``1.0`` / ``1e0`` to ``float``, and an
integer literal too large for 64 bits becomes a ``float``, exactly as rapidjson types them.

Every failure raises :class:`JsonInputError` with the original's bare message; the HTTP edge
wraps it as ``"Error parsing JSON: <msg>. Expected JSON schema: <schema>"``. The JSON syntax
errors, type names and shared message texts come from :mod:`clipper_core.jsontext`, which the
management frontend uses too.

Known differences from rapidjson, kept on purpose: a duplicated key keeps its last value
(rapidjson's lookup finds the first); a NUL byte does not end the document (both would cost the
hot path a pass over the body); a root that is not an object is a 400 (the original asserts); an
empty ``input_batch`` is a 400; base64 outside the alphabet is a 400.
"""

from __future__ import annotations

import binascii
import sys
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from clipper_core.errors import PayloadTooLarge
from clipper_core.jsontext import (
    INT32_MAX,
    INT32_MIN,
    JsonError,
    array_element_message,
    missing_key_message,
    parse_json,
    prediction_data_message,
    type_mismatch_message,
    type_name,
)
from clipper_core.rpc.messages import InputType

__all__ = [
    "PREDICT_SCHEMA",
    "UPDATE_SCHEMA",
    "FeedbackRequest",
    "JsonInputError",
    "decode_base64_lenient",
    "parse_feedback",
    "parse_json_object",
    "parse_predict_inputs",
    "parse_uid",
    "parse_version",
    "too_many_inputs_message",
]

PREDICT_SCHEMA: Final = '\n  {\n   "input" := [double] | [int] | [string] | [byte] | [float],\n  }\n'
UPDATE_SCHEMA: Final = (
    '\n  {\n   "uid" := string,\n   "input" := [double] | [int] | [string] | [byte] | [float],\n'
    '   "label" := double\n  }\n'
)

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
# rapidjson's Value::IsFloat() bound (slightly below FLT_MAX), which the original applies.
FLOAT32_LIMIT: Final = 3.4028234e38

_LITTLE_ENDIAN: Final = sys.byteorder == "little"
_INT32_CODE: Final = "i" if array("i").itemsize == 4 else "l"


# Every problem with a body (syntax or content) is a JsonError carrying the original's bare text.
JsonInputError = JsonError


@dataclass(slots=True, frozen=True)
class FeedbackRequest:
    """A parsed ``/update`` body."""

    uid: int
    payload: bytes
    label: float


# ---------------------------------------------------------------------------------- JSON text


def parse_json_object(body: bytes) -> dict[str, Any]:
    """Parse a request body that must be a JSON object.

    Raises:
        JsonInputError: ``"JSON parse error: <rapidjson message> (offset <n>)\\n"`` for bad syntax,
            or a semantic message when the root is not an object (the original asserts there; we
            refuse).
    """
    doc = parse_json(body)
    if not isinstance(doc, dict):
        raise JsonInputError(f"JSON document of type {type_name(doc)} is not of type Object")
    return doc


# ---------------------------------------------------------------------------------- helpers


def _require(doc: dict[str, Any], key: str, expected: type | tuple[type, ...], expected_name: str) -> Any:
    if key not in doc:
        raise JsonInputError(missing_key_message(key))
    value = doc[key]
    if not isinstance(value, expected) or isinstance(value, bool):
        raise JsonInputError(type_mismatch_message(key, expected_name, value))
    return value


def _first_not(values: list[Any], ok: Callable[[Any], bool]) -> Any:
    return next(v for v in values if not ok(v))


def _to_bytes(code: str, values: list[Any]) -> bytes:
    packed = array(code, values)
    if not _LITTLE_ENDIAN:
        packed.byteswap()
    return packed.tobytes()


def _doubles(values: list[Any]) -> bytes:
    # One C-level pass over the types; the slow search only runs to name the offender.
    if values and set(map(type, values)) != {float}:
        bad = _first_not(values, lambda v: type(v) is float)
        raise JsonInputError(array_element_message(bad, "double"))
    return _to_bytes("d", values)


def _floats(values: list[Any]) -> bytes:
    if values and (
        set(map(type, values)) != {float} or max(values) > FLOAT32_LIMIT or min(values) < -FLOAT32_LIMIT
    ):
        bad = _first_not(values, lambda v: type(v) is float and -FLOAT32_LIMIT <= v <= FLOAT32_LIMIT)
        raise JsonInputError(array_element_message(bad, "float"))
    return _to_bytes("f", values)


def _ints(values: list[Any]) -> bytes:
    if values and (set(map(type, values)) != {int} or max(values) > INT32_MAX or min(values) < INT32_MIN):
        bad = _first_not(values, lambda v: type(v) is int and INT32_MIN <= v <= INT32_MAX)
        raise JsonInputError(array_element_message(bad, "int"))
    return _to_bytes(_INT32_CODE, values)


_BASE64_ALPHABET: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def decode_base64_lenient(text: str) -> bytes:
    """Decode like the original's decoder for every well-formed input, padded or not.

    Decoding stops at the first ``=``; a trailing lone sextet (length % 4 == 1) carries no whole
    byte and is dropped, as the original's length formula does. Deliberate difference: characters
    outside the base64 alphabet (whitespace included) are refused, where the original decodes them
    as garbage bits; and the empty string decodes to empty bytes (the original reads before its
    buffer).

    Raises:
        JsonInputError: the text contains a character outside the base64 alphabet.
    """
    data = text.encode("utf-8", "surrogatepass").split(b"=", 1)[0]
    outside = data.translate(None, _BASE64_ALPHABET)
    if outside:
        bad = outside[:1].decode("latin-1")
        raise JsonInputError(f"PredictionData is not a valid base64-encoded string (character {bad!r})")
    if len(data) % 4 == 1:
        data = data[:-1]
    return binascii.a2b_base64(data + b"=" * (-len(data) % 4))


def _string_payload(value: str) -> bytes:
    return value.encode("utf-8")


# ---------------------------------------------------------------------------------- per type

_ARRAY_PARSERS: Final[dict[InputType, Callable[[list[Any]], bytes]]] = {
    InputType.DOUBLES: _doubles,
    InputType.FLOATS: _floats,
    InputType.INTS: _ints,
}


def _single(doc: dict[str, Any], key: str, input_type: InputType) -> bytes:
    array_parser = _ARRAY_PARSERS.get(input_type)
    if array_parser is not None:
        return array_parser(_require(doc, key, list, "Array"))
    text = _require(doc, key, str, "String")
    if input_type is InputType.STRINGS:
        return _string_payload(text)
    if input_type is InputType.BYTES:
        return decode_base64_lenient(text)
    raise JsonInputError(f"Unsupported input type {input_type.readable_name}")


def too_many_inputs_message(count: int, max_inputs: int) -> str:
    return (
        f"input_batch has {count} inputs; this query frontend accepts at most {max_inputs} "
        "inputs per request (--max_inputs_per_request). Split the batch into several requests."
    )


def _batch(doc: dict[str, Any], input_type: InputType, max_inputs: int | None) -> list[bytes]:
    elements = _require(doc, "input_batch", list, "Array")
    if not elements:
        # Our fix: the original answers an empty batch with {"batch_predictions":[]}; a request
        # that asks nothing is a client error, so we refuse it with 400.
        raise JsonInputError("input_batch must contain at least one input")
    if max_inputs is not None and len(elements) > max_inputs:
        # Checked before any input is converted: the refusal costs nothing per input.
        raise PayloadTooLarge(too_many_inputs_message(len(elements), max_inputs))
    array_parser = _ARRAY_PARSERS.get(input_type)
    if array_parser is not None:
        payloads = []
        for element in elements:
            if type(element) is not list:
                raise JsonInputError(array_element_message(element, "array"))
            payloads.append(array_parser(element))
        return payloads
    for element in elements:
        if type(element) is not str:
            if input_type is InputType.BYTES:
                raise JsonInputError(prediction_data_message(element, "base64-encoded string"))
            raise JsonInputError(array_element_message(element, "string"))
    if input_type is InputType.STRINGS:
        return [_string_payload(e) for e in elements]
    if input_type is InputType.BYTES:
        return [decode_base64_lenient(e) for e in elements]
    raise JsonInputError(f"Unsupported input type {input_type.readable_name}")


def parse_predict_inputs(
    doc: dict[str, Any], input_type: InputType, max_inputs: int | None = None
) -> list[bytes]:
    """``input`` (one query) or, if absent, ``input_batch`` (one query each) -> wire payloads.

    Raises:
        JsonInputError: with the original's semantic message.
        PayloadTooLarge: ``input_batch`` holds more than ``max_inputs`` inputs (HTTP 413).
    """
    if "input" in doc:
        return [_single(doc, "input", input_type)]
    if "input_batch" in doc:
        return _batch(doc, input_type, max_inputs)
    raise JsonInputError("JSON object does not have required keys input or input_batch")


def parse_version(doc: dict[str, Any]) -> str | None:
    """The optional ``version`` key; it must be a JSON string when present."""
    if "version" not in doc:
        return None
    version: str = _require(doc, "version", str, "String")
    return version


def parse_uid(doc: dict[str, Any]) -> int:
    """The optional ``uid`` of a predict body (ours: read only for apps on a learning or ensemble
    policy, whose per-user weights it selects); 0 when absent."""
    if "uid" not in doc:
        return 0
    uid = _require(doc, "uid", (int, float), "Number")
    if type(uid) is not int or not INT64_MIN <= uid <= INT64_MAX:
        raise JsonInputError(prediction_data_message(uid, "long"))
    return int(uid)


def parse_feedback(doc: dict[str, Any], input_type: InputType) -> FeedbackRequest:
    """An ``/update`` body, checked in the original's order: ``uid``, ``input``, ``label``."""
    uid = _require(doc, "uid", (int, float), "Number")
    if type(uid) is not int or not INT64_MIN <= uid <= INT64_MAX:
        raise JsonInputError(prediction_data_message(uid, "long"))
    payload = _single(doc, "input", input_type)
    label = _require(doc, "label", (int, float), "Number")
    if type(label) is not float:
        raise JsonInputError(prediction_data_message(label, "double"))
    return FeedbackRequest(uid=uid, payload=payload, label=label)
