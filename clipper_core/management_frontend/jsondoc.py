"""Strict JSON request documents and typed field readers with the original's error texts (pure).

The original parsed with rapidjson and read fields with small getters whose messages reach the
client verbatim. This module reproduces those messages:

- :func:`parse_document` raises :class:`JsonParseError` with
  ``JSON parse error: <rapidjson-style reason> (offset <byte offset>)\\n``. Python's parser
  finds the same errors; the reason is mapped to rapidjson's English text and the offset is
  converted to bytes, though it may differ from rapidjson's by a few bytes.
- the ``read_*`` functions raise :class:`JsonSemanticError` with ``JSON object does not have
  required key: <k>``, ``Type mismatch! JSON key <k> expected type <T>but found type <F>`` (no
  space before ``but``, as the original) and the element messages.

rapidjson behaviours kept on purpose: the body ends at its first NUL byte (it parsed a C string);
the first of duplicate keys wins; ``NaN``/``Infinity`` are invalid values; numbers written with a
fraction or exponent are never integers (``1.0`` is not an int).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Final

__all__ = [
    "INT32_MAX",
    "INT32_MIN",
    "JsonError",
    "JsonParseError",
    "JsonSemanticError",
    "parse_document",
    "read_bool",
    "read_int",
    "read_string",
    "read_string_array",
    "type_name",
]

INT32_MIN: Final = -(2**31)
INT32_MAX: Final = 2**31 - 1

# rapidjson's parse-error texts (rapidjson/error/en.h) for the cases Python's parser reports.
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
_UNSPECIFIC: Final = "Unspecific syntax error."

_PY_MESSAGE_TO_REASON: Final = {
    "Expecting value": _INVALID_VALUE,
    "Expecting property name enclosed in double quotes": _MISS_NAME,
    "Expecting ':' delimiter": _MISS_COLON,
    "Unterminated string starting at": _MISS_QUOTE,
    "Invalid control character at": _BAD_ENCODING,
    "Invalid \\escape": _BAD_ESCAPE,
    "Invalid \\uXXXX escape": _BAD_HEX,
    "Extra data": _ROOT_NOT_SINGULAR,
}

_JSON_WHITESPACE: Final = " \t\n\r"
_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class JsonError(Exception):
    """A request body the endpoint cannot use; ``message`` is the original's text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class JsonParseError(JsonError):
    """The body is not JSON."""


class JsonSemanticError(JsonError):
    """The body is JSON but lacks a field or has a field of the wrong type."""


class _RejectedNumber(ValueError):
    def __init__(self, reason: str, literal: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.literal = literal


def _reject_constant(literal: str) -> object:
    raise _RejectedNumber(_INVALID_VALUE, literal)


def _checked_float(literal: str) -> float:
    value = float(literal)
    if value in (float("inf"), float("-inf")):
        raise _RejectedNumber(_NUMBER_TOO_BIG, literal)
    return value


def _first_key_wins(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        result.setdefault(key, value)
    return result


_DECODER: Final = json.JSONDecoder(
    object_pairs_hook=_first_key_wins,
    parse_constant=_reject_constant,
    parse_float=_checked_float,
)


def _parse_error(reason: str, text: str, char_pos: int) -> JsonParseError:
    offset = len(text[:char_pos].encode("utf-8", "surrogatepass"))
    return JsonParseError(f"JSON parse error: {reason} (offset {offset})\n")


def _innermost_container(text: str, end: int) -> str | None:
    """``{`` or ``[`` that is open at ``end`` (strings skipped), to word the comma message."""
    stack: list[str] = []
    in_string = escaped = False
    for ch in text[:end]:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            stack.append(ch)
        elif ch in "]}" and stack:
            stack.pop()
    return stack[-1] if stack else None


def _strings(value: object) -> Iterator[str]:
    """Every string and key in a parsed document (iterative: nesting depth is the client's)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            yield from item.keys()
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


def _has_lone_surrogate(value: object) -> bool:
    # json accepts "\ud800" alone; rapidjson does not, and Redis could not store it as UTF-8.
    return any(any("\ud800" <= ch <= "\udfff" for ch in s) for s in _strings(value))


def parse_document(body: bytes) -> object:
    """Parse a request body as strict JSON.

    Raises:
        JsonParseError: with rapidjson's wording (see the module docstring).
    """
    body = body.split(b"\0", 1)[0]
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonParseError(f"JSON parse error: {_BAD_ENCODING} (offset {exc.start})\n") from None
    if not text.strip(_JSON_WHITESPACE):
        raise _parse_error(_EMPTY, text, len(text))
    try:
        document = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        reason = _PY_MESSAGE_TO_REASON.get(exc.msg)
        if reason is None and exc.msg == "Expecting ',' delimiter":
            in_array = _innermost_container(text, exc.pos) == "["
            reason = _MISS_COMMA_ARRAY if in_array else _MISS_COMMA_OBJECT
        raise _parse_error(reason or _UNSPECIFIC, text, exc.pos) from None
    except _RejectedNumber as exc:
        raise _parse_error(exc.reason, text, max(text.find(exc.literal), 0)) from None
    except RecursionError:
        raise JsonParseError("JSON parse error: Document nested too deeply. (offset 0)\n") from None
    if _has_lone_surrogate(document):
        match = _SURROGATE_ESCAPE.search(text)
        raise _parse_error(_BAD_SURROGATE, text, match.start() if match else 0)
    return document


# ---------------------------------------------------------------------------- field readers


def type_name(value: object) -> str:
    """rapidjson's type names: Null, False, True, Object, Array, String, Number."""
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


def _member(document: object, key: str) -> object:
    if not isinstance(document, dict):
        raise JsonSemanticError("Can only get key-value pair from an object")
    if key not in document:
        raise JsonSemanticError(f"JSON object does not have required key: {key}")
    return document[key]


def _mismatch(key: str, expected: str, value: object) -> JsonSemanticError:
    # The missing space before "but" is the original's.
    return JsonSemanticError(
        f"Type mismatch! JSON key {key} expected type {expected}but found type {type_name(value)}"
    )


def read_string(document: object, key: str) -> str:
    value = _member(document, key)
    if not isinstance(value, str):
        raise _mismatch(key, "String", value)
    return value


def read_int(document: object, key: str) -> int:
    """An integral JSON number (no fraction or exponent) within int32."""
    value = _member(document, key)
    if type_name(value) != "Number":
        raise _mismatch(key, "Number", value)
    if type(value) is not int or not INT32_MIN <= value <= INT32_MAX:
        raise JsonSemanticError("PredictionData of type Number is not of type int")
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
        raise _mismatch(key, "Array", value)
    for element in value:
        if not isinstance(element, str):
            raise JsonSemanticError(f"Array input of type {type_name(element)} is not of type string")
    return list(value)
