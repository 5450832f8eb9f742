"""Input parsing per input type, with every error text of the original (core spec 2.2-2.5)."""

from __future__ import annotations

import base64
import json
import struct

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clipper_core.jsontext import type_name as json_type_name
from clipper_core.query_frontend.inputs import (
    PREDICT_SCHEMA,
    UPDATE_SCHEMA,
    FeedbackRequest,
    JsonInputError,
    decode_base64_lenient,
    parse_feedback,
    parse_json_object,
    parse_predict_inputs,
    parse_uid,
    parse_version,
)
from clipper_core.rpc import InputType

D, F, INTS, S, B = InputType.DOUBLES, InputType.FLOATS, InputType.INTS, InputType.STRINGS, InputType.BYTES


def parse(body: str | bytes, input_type: InputType) -> list[bytes]:
    raw = body.encode() if isinstance(body, str) else body
    return parse_predict_inputs(parse_json_object(raw), input_type)


def error_of(body: str, input_type: InputType) -> str:
    with pytest.raises(JsonInputError) as info:
        parse(body, input_type)
    return info.value.message


# ------------------------------------------------------------------------------- schemas


def test_schema_strings_are_the_originals() -> None:
    assert len(PREDICT_SCHEMA) == 71
    assert PREDICT_SCHEMA == '\n  {\n   "input" := [double] | [int] | [string] | [byte] | [float],\n  }\n'
    assert UPDATE_SCHEMA.startswith('\n  {\n   "uid" := string,\n')
    assert UPDATE_SCHEMA.endswith('   "label" := double\n  }\n')


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (None, "Null"),
        (True, "True"),
        (False, "False"),
        ({}, "Object"),
        ([], "Array"),
        ("", "String"),
        (0, "Number"),
        (1.5, "Number"),
    ],
)
def test_type_names_are_rapidjsons(value: object, name: str) -> None:
    assert json_type_name(value) == name


# ------------------------------------------------------------------------------- doubles


def test_doubles_single_packs_float64_little_endian() -> None:
    assert parse('{"input": [1.5, -2.0, 1e3, 2E-1]}', D) == [struct.pack("<4d", 1.5, -2.0, 1000.0, 0.2)]


def test_doubles_batch_one_payload_per_element() -> None:
    assert parse('{"input_batch": [[1.0], [2.5, 3.5]]}', D) == [
        struct.pack("<d", 1.0),
        struct.pack("<2d", 2.5, 3.5),
    ]


def test_doubles_empty_array_is_an_empty_payload() -> None:
    assert parse('{"input": []}', D) == [b""]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"input": [1]}', "Array input of type Number is not of type double"),
        ('{"input": [1.0, 2]}', "Array input of type Number is not of type double"),
        ('{"input": [1.0, "x"]}', "Array input of type String is not of type double"),
        ('{"input": [true]}', "Array input of type True is not of type double"),
        ('{"input": [null]}', "Array input of type Null is not of type double"),
        ('{"input": [[1.0]]}', "Array input of type Array is not of type double"),
        ('{"input": "1.0"}', "Type mismatch! JSON key input expected type Arraybut found type String"),
        ('{"input": 1.0}', "Type mismatch! JSON key input expected type Arraybut found type Number"),
        ('{"input": {}}', "Type mismatch! JSON key input expected type Arraybut found type Object"),
        ('{"input_batch": [1.0]}', "Array input of type Number is not of type array"),
        ('{"input_batch": [[1.0], "a"]}', "Array input of type String is not of type array"),
        ('{"input_batch": [[1.0], [3]]}', "Array input of type Number is not of type double"),
        (
            '{"input_batch": {"a": 1}}',
            "Type mismatch! JSON key input_batch expected type Arraybut found type Object",
        ),
        ('{"inputs": [1.0]}', "JSON object does not have required keys input or input_batch"),
        ("{}", "JSON object does not have required keys input or input_batch"),
    ],
)
def test_doubles_errors(body: str, message: str) -> None:
    assert error_of(body, D) == message


def test_large_integer_literal_counts_as_double_like_rapidjson() -> None:
    # Beyond 64 bits rapidjson stores the literal as a double, so the original accepts it.
    [payload] = parse('{"input": [123456789012345678901234567890]}', D)
    assert struct.unpack("<d", payload)[0] == pytest.approx(1.2345678901234568e29)


def test_input_wins_over_input_batch() -> None:
    assert parse('{"input": [1.0], "input_batch": "garbage"}', D) == [struct.pack("<d", 1.0)]


# ------------------------------------------------------------------------------- floats


def test_floats_pack_float32() -> None:
    assert parse('{"input": [0.5, -1.25, 3.4028234e38]}', F) == [struct.pack("<3f", 0.5, -1.25, 3.4028234e38)]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"input": [1]}', "Array input of type Number is not of type float"),
        ('{"input": [1.0, 3.5e38]}', "Array input of type Number is not of type float"),
        ('{"input": [-3.5e38]}', "Array input of type Number is not of type float"),
        ('{"input": [1e300]}', "Array input of type Number is not of type float"),
        ('{"input": ["a"]}', "Array input of type String is not of type float"),
        ('{"input_batch": [[1.0], [false]]}', "Array input of type False is not of type float"),
        ('{"input_batch": [null]}', "Array input of type Null is not of type array"),
    ],
)
def test_floats_errors(body: str, message: str) -> None:
    assert error_of(body, F) == message


# ------------------------------------------------------------------------------- ints


def test_ints_pack_int32_little_endian() -> None:
    assert parse('{"input": [1, -2, 2147483647, -2147483648]}', INTS) == [
        struct.pack("<4i", 1, -2, 2**31 - 1, -(2**31))
    ]


@pytest.mark.parametrize(
    "body",
    [
        '{"input": [1.0]}',
        '{"input": [1e2]}',
        '{"input": [2147483648]}',
        '{"input": [-2147483649]}',
        '{"input": [1, 99999999999999999999]}',
    ],
)
def test_ints_reject_decimals_and_out_of_range(body: str) -> None:
    assert error_of(body, INTS) == "Array input of type Number is not of type int"


def test_ints_reject_booleans_and_strings() -> None:
    assert error_of('{"input": [true]}', INTS) == "Array input of type True is not of type int"
    assert error_of('{"input": ["1"]}', INTS) == "Array input of type String is not of type int"
    assert error_of('{"input_batch": [[1], 2]}', INTS) == "Array input of type Number is not of type array"


# ------------------------------------------------------------------------------- strings


def test_strings_are_raw_utf8_with_escapes_resolved_and_nul_kept() -> None:
    assert parse('{"input": "caf\\u00e9 \\"q\\"\\u0000x"}', S) == ['café "q"\x00x'.encode()]
    assert parse('{"input_batch": ["a", "", "ü"]}', S) == [b"a", b"", "ü".encode()]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"input": ["a"]}', "Type mismatch! JSON key input expected type Stringbut found type Array"),
        ('{"input": 3}', "Type mismatch! JSON key input expected type Stringbut found type Number"),
        ('{"input": null}', "Type mismatch! JSON key input expected type Stringbut found type Null"),
        ('{"input_batch": ["a", 1]}', "Array input of type Number is not of type string"),
        ('{"input_batch": [["a"]]}', "Array input of type Array is not of type string"),
        (
            '{"input_batch": "a"}',
            "Type mismatch! JSON key input_batch expected type Arraybut found type String",
        ),
    ],
)
def test_strings_errors(body: str, message: str) -> None:
    assert error_of(body, S) == message


# ------------------------------------------------------------------------------- bytes


def test_bytes_are_base64_decoded() -> None:
    data = bytes(range(256))
    encoded = base64.b64encode(data).decode()
    assert parse(orjson.dumps({"input": encoded}), B) == [data]
    assert parse(orjson.dumps({"input_batch": [encoded, "QQ=="]}), B) == [data, b"A"]


@pytest.mark.parametrize(
    ("text", "decoded"),
    [
        ("QQ==", b"A"),
        ("QQ", b"A"),  # unpadded decodes like padded
        ("QUI=", b"AB"),
        ("QUI", b"AB"),
        ("QUJD", b"ABC"),
        ("QUJDR", b"ABC"),  # a lone trailing sextet carries no whole byte
        ("QQ==QUJD", b"A"),  # decoding stops at the first '='
        ("", b""),
    ],
)
def test_base64_lenient_rules(text: str, decoded: bytes) -> None:
    assert decode_base64_lenient(text) == decoded


@pytest.mark.parametrize("text", ["QQ#=", "a b c d", "QUJD\n", "Ãé"])
def test_base64_outside_alphabet_is_refused(text: str) -> None:
    with pytest.raises(JsonInputError, match="not a valid base64-encoded string"):
        decode_base64_lenient(text)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"input": [1]}', "Type mismatch! JSON key input expected type Stringbut found type Array"),
        (
            '{"input_batch": ["QQ==", 5]}',
            "PredictionData of type Number is not of type base64-encoded string",
        ),
        ('{"input_batch": [{}]}', "PredictionData of type Object is not of type base64-encoded string"),
    ],
)
def test_bytes_errors(body: str, message: str) -> None:
    assert error_of(body, B) == message


# ------------------------------------------------------------------------------- batches


@pytest.mark.parametrize("input_type", [D, F, INTS, S, B])
def test_empty_batch_is_refused(input_type: InputType) -> None:
    assert error_of('{"input_batch": []}', input_type) == "input_batch must contain at least one input"


# ------------------------------------------------------------------------------- JSON syntax


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "The document is empty."),
        (b"   ", "The document is empty."),
        (b'{"input": [1.0]} x', "The document root must not be followed by other values."),
        (b'{"input": [1.0 2.0]}', "Missing a comma or ']' after an array element."),
        (b'{"input": [1.0] "x": 1}', "Missing a comma or '}' after an object member."),
        (b'{"input" [1.0]}', "Missing a colon after a name of object member."),
        (b"{input: 1}", "Missing a name for object member."),
        (b'{"input": "\\q"}', "Invalid escape character in string."),
        (b'{"input": "\xff"}', "Invalid encoding in string."),
        (b'{"input": [1e999]}', "Number too big to be stored in double."),
        (b'{"input": "abc', "Missing a closing quotation mark in string."),
        (b'{"input": [1.', "Miss fraction part in number."),
        (b'{"input": [1e', "Miss exponent in number."),
        (b'{"input": [NaN]}', "Invalid value."),
        (b'{"input": [1.0,]}', "Invalid value."),
    ],
)
def test_syntax_errors_use_rapidjson_messages(body: bytes, message: str) -> None:
    with pytest.raises(JsonInputError) as info:
        parse_json_object(body)
    assert info.value.message.startswith(f"JSON parse error: {message} (offset ")
    assert info.value.message.endswith(")\n")


@pytest.mark.parametrize(("body", "name"), [(b"[1.0]", "Array"), (b'"x"', "String"), (b"null", "Null")])
def test_non_object_document_is_refused(body: bytes, name: str) -> None:
    with pytest.raises(JsonInputError) as info:
        parse_json_object(body)
    assert info.value.message == f"JSON document of type {name} is not of type Object"


# ------------------------------------------------------------------------------- version


def test_version_is_optional_and_must_be_a_string() -> None:
    assert parse_version({"input": []}) is None
    assert parse_version({"version": "v2"}) == "v2"
    with pytest.raises(JsonInputError) as info:
        parse_version({"version": 2})
    assert info.value.message == "Type mismatch! JSON key version expected type Stringbut found type Number"


# ------------------------------------------------------------------------------- update


def test_feedback_parses_uid_input_label() -> None:
    doc = parse_json_object(b'{"uid": 0, "input": [1.0, 2.0], "label": 1.0}')
    assert parse_feedback(doc, D) == FeedbackRequest(0, struct.pack("<2d", 1.0, 2.0), 1.0)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"input": [1.0], "label": 1.0}', "JSON object does not have required key: uid"),
        (
            '{"uid": "0", "input": [1.0], "label": 1.0}',
            "Type mismatch! JSON key uid expected type Numberbut found type String",
        ),
        ('{"uid": 0.5, "input": [1.0], "label": 1.0}', "PredictionData of type Number is not of type long"),
        (
            '{"uid": 9223372036854775808, "input": [1.0], "label": 1.0}',
            "PredictionData of type Number is not of type long",
        ),
        ('{"uid": 0, "label": 1.0}', "JSON object does not have required key: input"),
        ('{"uid": 0, "input": [1], "label": 1.0}', "Array input of type Number is not of type double"),
        ('{"uid": 0, "input": [1.0]}', "JSON object does not have required key: label"),
        ('{"uid": 0, "input": [1.0], "label": 1}', "PredictionData of type Number is not of type double"),
        (
            '{"uid": 0, "input": [1.0], "label": true}',
            "Type mismatch! JSON key label expected type Numberbut found type True",
        ),
    ],
)
def test_feedback_errors_in_the_originals_order(body: str, message: str) -> None:
    with pytest.raises(JsonInputError) as info:
        parse_feedback(parse_json_object(body.encode()), D)
    assert info.value.message == message


# ------------------------------------------------------------------------------- robustness

_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)
_bodies = st.dictionaries(
    st.sampled_from(["input", "input_batch", "version", "uid", "label", "x"]), _json_values, max_size=4
)


@settings(max_examples=300, deadline=None)
@given(body=_bodies, input_type=st.sampled_from([D, F, INTS, S, B]))
def test_any_json_body_parses_or_fails_with_a_json_input_error(
    body: dict[str, object], input_type: InputType
) -> None:
    raw = json.dumps(body).encode()  # the stdlib writes integers beyond 64 bits too
    try:
        doc = parse_json_object(raw)
        parse_version(doc)
        payloads = parse_predict_inputs(doc, input_type)
    except JsonInputError as exc:
        assert exc.message
    else:
        assert payloads and all(isinstance(p, bytes) for p in payloads)
    try:
        parse_feedback(parse_json_object(raw), input_type)
    except JsonInputError as exc:
        assert exc.message


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=64))
def test_any_bytes_parse_or_fail_with_a_json_input_error(raw: bytes) -> None:
    try:
        parse_json_object(raw)
    except JsonInputError as exc:
        assert exc.message


def test_a_batch_over_the_input_limit_is_refused_before_any_input_is_parsed() -> None:
    from clipper_core.errors import PayloadTooLarge

    # The third element is malformed: the count is checked first, so the refusal is the 413.
    doc = {"input_batch": [[1.0], [2.0], ["x"]]}
    with pytest.raises(PayloadTooLarge) as refused:
        parse_predict_inputs(doc, InputType.DOUBLES, max_inputs=2)
    assert refused.value.http_status == 413
    assert "input_batch has 3 inputs" in refused.value.cause and "at most 2" in refused.value.cause
    assert parse_predict_inputs({"input_batch": [[1.0], [2.0]]}, InputType.DOUBLES, max_inputs=2) == [
        parse_predict_inputs({"input": [1.0]}, InputType.DOUBLES)[0],
        parse_predict_inputs({"input": [2.0]}, InputType.DOUBLES)[0],
    ]


def test_predict_uid_is_optional_and_must_be_an_int64() -> None:
    """Ours: the user whose selection weights a learning policy uses (absent -> 0)."""
    assert parse_uid({"input": [1.0]}) == 0
    assert parse_uid({"uid": 42}) == 42
    for bad, expected in ((1.5, "long"), ("7", "Number"), (2**63, "long")):
        with pytest.raises(JsonInputError) as info:
            parse_uid({"uid": bad})
        assert expected in info.value.message
