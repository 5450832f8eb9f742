"""Strict JSON parsing and field readers with the original's (rapidjson-worded) messages."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from clipper_core.jsontext import (
    JsonParseError,
    JsonSemanticError,
    parse_json,
    read_bool,
    read_int,
    read_string,
    read_string_array,
    type_name,
)


def parse_document(body: bytes) -> object:
    """The management frontend's reading: a C string, the first duplicate key wins."""
    return parse_json(body, c_string=True, first_key_wins=True)


SYNTAX_ERRORS = [
    (b"", "The document is empty.", 0),
    (b"  \n\t ", "The document is empty.", 5),
    (b'{"a":1} x', "The document root must not be followed by other values.", 8),
    (b'{"a":}', "Invalid value.", 5),
    (b"nope", "Invalid value.", 0),
    (b'{"a":NaN}', "Invalid value.", 5),
    (b'{"a":-Infinity}', "Invalid value.", 5),
    (b"{1:2}", "Missing a name for object member.", 1),
    (b'{"a":1,}', "Missing a name for object member.", 7),
    (b'{"a" 1}', "Missing a colon after a name of object member.", 5),
    (b'{"a":1 "b":2}', "Missing a comma or '}' after an object member.", 7),
    (b'{"a":[1 2]}', "Missing a comma or ']' after an array element.", 8),
    (b'{"a":"[" "b"}', "Missing a comma or '}' after an object member.", 9),
    (b'{"a":"x', "Missing a closing quotation mark in string.", 5),
    (b'{"a":"\\q"}', "Invalid escape character in string.", 6),
    (b'{"a":"\\u12g4"}', "Incorrect hex digit after \\u escape in string.", 7),
    (b'{"a":"\x01"}', "Invalid encoding in string.", 6),
    (b'{"a":"\xff"}', "Invalid encoding in string.", 6),
    (b'{"a":"\\ud800"}', "The surrogate pair in string is invalid.", 6),
    (b'{"a":[{"\\udc00":"x"}]}', "The surrogate pair in string is invalid.", 8),
    (b'{"a":1e999}', "Number too big to be stored in double.", 5),
    (b'{"a":[1.', "Miss fraction part in number.", 8),
    (b'{"a":[1.5e', "Miss exponent in number.", 10),
    (b'{"a":[1.5e-', "Miss exponent in number.", 11),
    (b'{"a":[1', "Missing a comma or ']' after an array element.", 7),
    (b'{"a":[1,', "Invalid value.", 8),
    (b'{"a":[tr', "Invalid value.", 6),
    (b'{"a":[true', "Missing a comma or ']' after an array element.", 10),
    (b'{"a":1', "Missing a comma or '}' after an object member.", 6),
    (b'{"a":1,', "Missing a name for object member.", 7),
    (b'{"a"', "Missing a colon after a name of object member.", 4),
    (b'{"a":', "Invalid value.", 5),
    (b'{"a":"\\u12', "Incorrect hex digit after \\u escape in string.", 7),
    (b'{"a":"\\\\u12', "Missing a closing quotation mark in string.", 5),
    (b"[-]", "Invalid value.", 1),
    (b"[01]", "Missing a comma or ']' after an array element.", 2),
    (b"[1,]", "Invalid value.", 3),
    (b"[1.x]", "Miss fraction part in number.", 3),
    (b"[" * 1100 + b"]" * 1100, "Document nested too deeply.", 0),
    (b"[" * 700, "Invalid value.", 700),
]


# Both readings (the management frontend's and the query frontend's default) word errors alike.
@pytest.mark.parametrize("read", [parse_document, parse_json])
@pytest.mark.parametrize(("body", "reason", "offset"), SYNTAX_ERRORS)
def test_parse_errors_use_rapidjson_wording(
    read: Callable[[bytes], object], body: bytes, reason: str, offset: int
) -> None:
    with pytest.raises(JsonParseError) as info:
        read(body)
    assert info.value.message == f"JSON parse error: {reason} (offset {offset})\n"


def test_offset_counts_bytes_not_characters() -> None:
    with pytest.raises(JsonParseError) as info:
        parse_document('{"é":1 x}'.encode())
    assert info.value.message.endswith("(offset 8)\n")  # "x" is character 7, byte 8


def test_body_ends_at_first_nul_like_a_c_string() -> None:
    assert parse_document(b'{"a":"b"}\x00garbage') == {"a": "b"}


def test_first_duplicate_key_wins() -> None:
    assert parse_document(b'{"a":1,"a":2}') == {"a": 1}


def test_valid_surrogate_pair_is_accepted() -> None:
    assert parse_document(b'{"a":"\\ud83d\\ude00"}') == {"a": "\U0001f600"}


@pytest.mark.parametrize(
    ("value", "name"),
    [(None, "Null"), (False, "False"), (True, "True"), ({}, "Object"), ([], "Array"), ("", "String"),
     (0, "Number"), (1.5, "Number")],
)
def test_type_names(value: object, name: str) -> None:
    assert type_name(value) == name


def _semantic(reader, doc: object, key: str) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(JsonSemanticError) as info:
        reader(doc, key)
    return info.value.message


def test_missing_key_and_non_object_document() -> None:
    assert _semantic(read_string, {}, "name") == "JSON object does not have required key: name"
    assert _semantic(read_string, [1], "name") == "Can only get key-value pair from an object"


@pytest.mark.parametrize(
    ("value", "found"), [(1, "Number"), (None, "Null"), (True, "True"), ([], "Array"), ({}, "Object")]
)
def test_read_string_type_mismatch_has_no_space_before_but(value: object, found: str) -> None:
    message = _semantic(read_string, {"name": value}, "name")
    assert message == f"Type mismatch! JSON key name expected type Stringbut found type {found}"


@pytest.mark.parametrize("value", [1.0, 1e3, 2**31, -(2**31) - 1, 10**30])
def test_read_int_rejects_non_int32_numbers(value: object) -> None:
    message = _semantic(read_int, {"n": value}, "n")
    assert message == "PredictionData of type Number is not of type int"


@pytest.mark.parametrize(("value", "found"), [("1", "String"), (False, "False"), (None, "Null")])
def test_read_int_type_mismatch(value: object, found: str) -> None:
    assert _semantic(read_int, {"n": value}, "n") == (
        f"Type mismatch! JSON key n expected type Numberbut found type {found}"
    )


@pytest.mark.parametrize("value", [0, -1, 2**31 - 1, -(2**31)])
def test_read_int_accepts_int32(value: int) -> None:
    assert read_int({"n": value}, "n") == value


def test_int_parsed_from_text_distinguishes_integer_literals() -> None:
    doc = parse_document(b'{"a": 5, "b": 5.0, "c": 5e0}')
    assert read_int(doc, "a") == 5
    for key in ("b", "c"):
        assert _semantic(read_int, doc, key) == "PredictionData of type Number is not of type int"


def test_read_bool() -> None:
    assert read_bool({"verbose": True}, "verbose") is True
    assert read_bool({"verbose": False}, "verbose") is False
    assert _semantic(read_bool, {"verbose": 1}, "verbose") == (
        "Type mismatch! JSON key verbose expected type bool but found type Number"
    )
    assert _semantic(read_bool, {"verbose": "true"}, "verbose") == (
        "Type mismatch! JSON key verbose expected type bool but found type String"
    )


def test_read_string_array() -> None:
    assert read_string_array({"m": ["a", "b"]}, "m") == ["a", "b"]
    assert read_string_array({"m": []}, "m") == []
    assert _semantic(read_string_array, {"m": "a"}, "m") == (
        "Type mismatch! JSON key m expected type Arraybut found type String"
    )
    assert _semantic(read_string_array, {"m": ["a", 1]}, "m") == (
        "Array input of type Number is not of type string"
    )
    assert _semantic(read_string_array, {"m": [None]}, "m") == (
        "Array input of type Null is not of type string"
    )


# ---------------------------------------------------------------------------- shared parser options


def test_default_reading_keeps_last_duplicate_and_refuses_nul() -> None:
    # The query frontend's reading: no extra pass over the body on its hot path.
    assert parse_json(b'{"a":1,"a":2}') == {"a": 2}
    with pytest.raises(JsonParseError) as info:
        parse_json(b'{"a":"b"}\x00garbage')
    assert info.value.message == (
        "JSON parse error: The document root must not be followed by other values. (offset 9)\n"
    )


def test_first_key_wins_applies_at_every_depth() -> None:
    assert parse_document(b'{"a":[{"b":1,"b":2}],"a":0}') == {"a": [{"b": 1}]}


def test_nul_alone_is_an_empty_c_string() -> None:
    with pytest.raises(JsonParseError) as info:
        parse_document(b"\x00{}")
    assert info.value.message == "JSON parse error: The document is empty. (offset 0)\n"


def test_a_long_malformed_body_is_still_worded_from_its_tail() -> None:
    body = b'{"a":[' + b'"xy",' * 20_000 + b"1."
    with pytest.raises(JsonParseError) as info:
        parse_json(body)
    assert info.value.message == f"JSON parse error: Miss fraction part in number. (offset {len(body)})\n"
