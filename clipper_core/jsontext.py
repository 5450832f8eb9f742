"""Strict JSON request bodies with the original's rapidjson-worded errors, for both frontends (pure).

The original parsed every request with rapidjson and read fields with small getters whose
messages reach the client verbatim. Both frontends share this module so that the texts are
written once:

- :func:`parse_json` parses with orjson (the query path is hot) and, on failure, raises
  :class:`JsonParseError` with ``JSON parse error: <rapidjson's reason> (offset <byte offset>)\\n``.
  orjson's reason and character position are mapped to rapidjson's English text and byte offset;
  an offset may still differ from rapidjson's by a few bytes for unusual inputs.
- the message builders (:func:`missing_key_message`, :func:`type_mismatch_message`, ...) and the
  ``read_*`` field getters raise :class:`JsonSemanticError` with the original's texts, e.g.
  ``Type mismatch! JSON key <k> expected type <T>but found type <F>`` (no space before ``but``).

rapidjson behaviours a caller may ask for (the management frontend does): ``c_string`` ends the
body at its first NUL byte (rapidjson parsed a C string); ``first_key_wins`` keeps the first of
duplicate keys (rapidjson's member lookup finds the first). Always: ``NaN``/``Infinity`` are
invalid values, lone surrogates are invalid, and numbers written with a fraction or exponent are
never integers (``1.0`` parses to a float).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Final

import orjson

__all__ = [
    "INT32_MAX",
    "INT32_MIN",
    "JsonError",
    "JsonParseError",
    "JsonSemanticError",
    "array_element_message",
    "missing_key_message",
    "parse_json",
    "prediction_data_message",
    "read_bool",
    "read_int",
    "read_string",
    "read_string_array",
    "schema_error_text",
    "type_mismatch_message",
    "type_name",
]

INT32_MIN: Final = -(2**31)
INT32_MAX: Final = 2**31 - 1

# rapidjson's parse-error texts (rapidjson/error/en.h).
_EMPTY: Final = "The document is empty."
_ROOT_NOT_SINGULAR: Final = "The document root must not be followed by other values."
_INVALID_VALUE: Final = "Invalid value."
_MISS_NAME: Final = "Missing a name for object member."
_MISS_COLON: Final = "Missing a colon after a name of object member."
_MISS_COMMA_OBJECT: Final = "Missing a comma or '}' after an object member."
_MISS_COMMA_ARRAY: Final = "Missing a comma or ']' after an array element."
_BAD_HEX: Final = "Incorrect hex digit after \\u escape in string."
_BAD_SURROGATE: Final = "The surrogate pair in string is invalid."
_BAD_ESCAPE: Final = "Invalid escape character in string."
_MISS_QUOTE: Final = "Missing a closing quotation mark in string."
_BAD_ENCODING: Final = "Invalid encoding in string."
_NUMBER_TOO_BIG: Final = "Number too big to be stored in double."
_MISS_FRACTION: Final = "Miss fraction part in number."
_MISS_EXPONENT: Final = "Miss exponent in number."
# Not rapidjson's (its recursive parser overflowed the stack instead); kept from our first version.
_TOO_DEEP: Final = "Document nested too deeply."

_JSON_WHITESPACE: Final = " \t\n\r"
# A \u escape that the end of the body cuts short (the backslash itself not escaped).
_CUT_UNICODE_ESCAPE: Final = re.compile(r"(?<!\\)(?:\\\\)*\\(?P<u>u)[0-9a-fA-F]{0,3}\Z")


class JsonError(Exception):
    """A request body the endpoint cannot use; ``message`` is the original's bare text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class JsonParseError(JsonError):
    """The body is not JSON."""


class JsonSemanticError(JsonError):
    """The body is JSON but lacks a field or has a field of the wrong type."""


# ---------------------------------------------------------------------------- message texts


def type_name(value: object) -> str:
    """rapidjson's type name of a parsed value: Null, False, True, Object, Array, String, Number."""
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def missing_key_message(key: str) -> str:
    return f"JSON object does not have required key: {key}"


def type_mismatch_message(key: str, expected: str, value: object) -> str:
    # The missing space before "but" is the original's.
    return f"Type mismatch! JSON key {key} expected type {expected}but found type {type_name(value)}"


def array_element_message(element: object, expected: str) -> str:
    return f"Array input of type {type_name(element)} is not of type {expected}"


def prediction_data_message(value: object, expected: str) -> str:
    return f"PredictionData of type {type_name(value)} is not of type {expected}"


def schema_error_text(message: str, schema: str) -> str:
    """How both frontends wrap a JSON problem in their 400 answers."""
    return f"Error parsing JSON: {message}. Expected JSON schema: {schema}"


# ---------------------------------------------------------------------------- parsing


def parse_json(body: bytes, *, c_string: bool = False, first_key_wins: bool = False) -> object:
    """Parse a request body as strict JSON (see the module docstring for the two options).

    Raises:
        JsonParseError: with rapidjson's wording.
    """
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        # A raw NUL byte is never valid JSON, so the C-string cut is only needed on this path.
        if c_string and b"\0" in body:
            return parse_json(body.split(b"\0", 1)[0], first_key_wins=first_key_wins)
        raise _syntax_error(body, str(exc), exc.pos) from None
    if first_key_wins and isinstance(document, dict | list):
        # orjson keeps the last duplicate and has no pairs hook; the stdlib re-reads a body
        # already known to be valid (this option is for cold paths only).
        try:
            document = json.loads(body, object_pairs_hook=_first_pair_wins)
        except RecursionError:
            raise JsonParseError(f"JSON parse error: {_TOO_DEEP} (offset 0)\n") from None
    return document


def _first_pair_wins(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        result.setdefault(key, value)
    return result


def _syntax_error(body: bytes, error: str, char_pos: int) -> JsonParseError:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        # orjson checks the encoding first and reports position 0; name the bad byte instead.
        return JsonParseError(f"JSON parse error: {_BAD_ENCODING} (offset {exc.start})\n")
    reason, pos = _rapidjson_reason(error, text, char_pos)
    offset = len(text[:pos].encode("utf-8"))
    return JsonParseError(f"JSON parse error: {reason} (offset {offset})\n")


# orjson message fragment -> rapidjson reason, for the errors orjson places where rapidjson does.
_REASON_AT_POSITION: Final = (
    ("after document", _ROOT_NOT_SINGULAR),
    ("expected ',' or ']'", _MISS_COMMA_ARRAY),
    ("expected ',' or '}'", _MISS_COMMA_OBJECT),
    ("expected ':'", _MISS_COLON),
    ("string key", _MISS_NAME),
    ("surrogate", _BAD_SURROGATE),
    ("control character", _BAD_ENCODING),
    ("infinity", _NUMBER_TOO_BIG),
    ("after decimal point", _MISS_FRACTION),
    ("after exponent", _MISS_EXPONENT),
    ("expected a JSON value", _INVALID_VALUE),
    ("invalid literal", _INVALID_VALUE),
)


def _rapidjson_reason(error: str, text: str, pos: int) -> tuple[str, int]:
    """rapidjson's reason and character position for orjson's ``error`` at ``pos``."""
    if "empty" in error:
        return _EMPTY, len(text)  # rapidjson reports the end of the whitespace
    if "depth limit" in error:
        return _TOO_DEEP, 0
    for fragment, reason in _REASON_AT_POSITION:
        if fragment in error:
            return reason, pos
    if "escaped sequence" in error:
        if text[pos + 1 : pos + 2] == "u":
            return _BAD_HEX, pos + 1
        return _BAD_ESCAPE, pos
    if "no digit after sign" in error:
        # orjson points after a '-', rapidjson at the value's start.
        return _INVALID_VALUE, pos - 1 if pos and text[pos - 1] == "-" else pos
    if "end of data" in error or "allocate memory" in error:
        # orjson reports a body that ends inside deep nesting as an allocation failure.
        return _end_of_data_reason(text, _scan(text, len(text)))
    scan = _scan(text, pos)
    if "trailing comma" in error:
        after_comma = _skip_whitespace(text, pos + 1)
        return (_MISS_NAME if scan.container == "{" else _INVALID_VALUE), after_comma
    if "leading zero" in error and scan.is_known:
        return _missing_comma(scan.container), pos + 1
    return _INVALID_VALUE, pos


def _skip_whitespace(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _JSON_WHITESPACE:
        pos += 1
    return pos


def _missing_comma(container: str | None) -> str:
    if container is None:
        return _ROOT_NOT_SINGULAR
    return _MISS_COMMA_ARRAY if container == "[" else _MISS_COMMA_OBJECT


# Error path only: beyond this prefix the wording falls back to what the tail alone tells, so a
# large malformed body costs the event loop little (the scan runs at about 150 ns a character).
_SCAN_LIMIT_CHARS: Final = 16 * 1024
_STRING_OR_BRACKET: Final = re.compile(r'"(?:[^"\\]|\\.)*(?P<closed>")?|[\[\]{}]', re.DOTALL)


@dataclass(slots=True)
class _Scan:
    """What a scan of ``text[:end]`` knows at ``end``; enough to word a syntax error."""

    is_known: bool = True  # False: the prefix was too long to scan; only the tail is used
    container: str | None = None  # innermost open '{' or '['
    string_start: int | None = None  # the opening quote of an unterminated string
    last_string_is_key: bool = False  # the last complete string names an object member


def _scan(text: str, end: int) -> _Scan:
    if end > _SCAN_LIMIT_CHARS:
        return _Scan(is_known=False)
    stack: list[str] = []
    last_string: re.Match[str] | None = None
    last_string_container: str | None = None
    for token in _STRING_OR_BRACKET.finditer(text, 0, end):
        first = token.group()[0]
        if first == '"':
            if token.group("closed") is None:
                return _Scan(container=stack[-1] if stack else None, string_start=token.start())
            last_string = token
            last_string_container = stack[-1] if stack else None
        elif first in "[{":
            stack.append(first)
        elif stack:
            stack.pop()
    state = _Scan(container=stack[-1] if stack else None)
    if last_string is not None and last_string_container == "{":
        before = text[: last_string.start()].rstrip(_JSON_WHITESPACE)[-1:]
        state.last_string_is_key = before in ("{", ",")
    return state


def _end_of_data_reason(text: str, scan: _Scan) -> tuple[str, int]:
    end = len(text)
    if scan.string_start is not None:
        cut_escape = _CUT_UNICODE_ESCAPE.search(text, scan.string_start)
        if cut_escape is not None:
            return _BAD_HEX, cut_escape.end("u") - 1
        return _MISS_QUOTE, scan.string_start
    body = text.rstrip(_JSON_WHITESPACE)
    last, before = body[-1:], body[-2:-1]
    if last == ".":
        return _MISS_FRACTION, end
    if (last in ("e", "E") and (before.isdigit() or before == ".")) or (
        last in ("+", "-") and before in ("e", "E")
    ):
        return _MISS_EXPONENT, end
    if last == "-":
        return _INVALID_VALUE, len(body) - 1
    if last.isalpha():
        start = len(body) - 1
        while start > 0 and body[start - 1].isalpha():
            start -= 1
        if body[start:] not in ("true", "false", "null"):
            return _INVALID_VALUE, start  # a literal cut short
    if scan.container == "[":
        return (_INVALID_VALUE if last in ("[", ",") else _MISS_COMMA_ARRAY), end
    if scan.container == "{":
        if last in ("{", ","):
            return _MISS_NAME, end
        if last == ":":
            return _INVALID_VALUE, end
        if last == '"' and scan.last_string_is_key:
            return _MISS_COLON, end
        return _MISS_COMMA_OBJECT, end
    return _INVALID_VALUE, end


# ---------------------------------------------------------------------------- field readers


def _member(document: object, key: str) -> object:
    if not isinstance(document, dict):
        raise JsonSemanticError("Can only get key-value pair from an object")
    if key not in document:
        raise JsonSemanticError(missing_key_message(key))
    return document[key]


def read_string(document: object, key: str) -> str:
    value = _member(document, key)
    if not isinstance(value, str):
        raise JsonSemanticError(type_mismatch_message(key, "String", value))
    return value


def read_int(document: object, key: str) -> int:
    """An integral JSON number (no fraction or exponent) within int32."""
    value = _member(document, key)
    if type_name(value) != "Number":
        raise JsonSemanticError(type_mismatch_message(key, "Number", value))
    if type(value) is not int or not INT32_MIN <= value <= INT32_MAX:
        raise JsonSemanticError(prediction_data_message(value, "int"))
    return value


def read_bool(document: object, key: str) -> bool:
    value = _member(document, key)
    if not isinstance(value, bool):
        # This getter of the original spells its message with a space and lower-case "bool".
        raise JsonSemanticError(
            f"Type mismatch! JSON key {key} expected type bool but found type {type_name(value)}"
        )
    return value


def read_string_array(document: object, key: str) -> list[str]:
    value = _member(document, key)
    if not isinstance(value, list):
        raise JsonSemanticError(type_mismatch_message(key, "Array", value))
    for element in value:
        if not isinstance(element, str):
            raise JsonSemanticError(array_element_message(element, "string"))
    return list(value)
