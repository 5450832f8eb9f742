"""Client-side checks: model names and versions, and the local dry run of a predict function."""

from __future__ import annotations

import base64
import binascii
import pickle
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import cloudpickle
import numpy as np

from clipper_admin.exceptions import ClipperException

__all__ = [
    "DNS1123_SUBDOMAIN_REGEX",
    "canonical_input_type",
    "check_predict_function",
    "validate_pkgs_to_install",
    "validate_versioned_model_name",
]

# A DNS-1123 subdomain, as Kubernetes defines it: dot-separated labels of lowercase alphanumerics
# and '-', each starting and ending alphanumeric, 253 characters at most. The original's regex
# forgot the dots that its own error message allows; we accept them.
_DNS1123_LABEL: Final = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN_REGEX: Final = rf"{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*"
_DNS1123_MAX_LENGTH: Final = 253

_INPUT_TYPE_ALIASES: Final = {
    "bytes": ("bytes", "byte", "b"),
    "integers": ("integers", "ints", "integer", "int", "i"),
    "floats": ("floats", "float", "f"),
    "doubles": ("doubles", "double", "d"),
    "strings": ("strings", "string", "str", "strs", "s"),
}
_CANONICAL_INPUT_TYPE: Final = {
    alias: canonical for canonical, aliases in _INPUT_TYPE_ALIASES.items() for alias in aliases
}
_NUMPY_DTYPE: Final = {"integers": np.int32, "floats": np.float32, "doubles": np.float64}


def _check_dns1123(kind: str, value: str) -> None:
    if len(value) <= _DNS1123_MAX_LENGTH and re.fullmatch(DNS1123_SUBDOMAIN_REGEX, value):
        return
    raise ClipperException(
        f"Invalid value: {value!r}: {kind} must be a valid DNS-1123 subdomain: at most "
        f"{_DNS1123_MAX_LENGTH} characters, lowercase letters, digits, '-' and '.', starting and "
        f"ending with a letter or digit (for example 'my-model' or 'v1.2'; validation regex "
        f"'{DNS1123_SUBDOMAIN_REGEX}')"
    )


def validate_versioned_model_name(name: str, version: str) -> None:
    """Raise ClipperException unless both are DNS-1123 subdomains (the name is checked first)."""
    _check_dns1123("model name", str(name))
    _check_dns1123("model version", str(version))


def canonical_input_type(input_type: str) -> str:
    """``bytes``/``integers``/``floats``/``doubles``/``strings`` for any accepted spelling."""
    canonical = _CANONICAL_INPUT_TYPE.get(str(input_type).strip().lower())
    if canonical is None:
        raise ClipperException(
            f"Invalid input type {input_type!r}: use one of {', '.join(_INPUT_TYPE_ALIASES)}"
        )
    return canonical


def _query_inputs(query: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> list[Any]:
    """The inputs of a REST-style body: ``input`` (one) wins over ``input_batch`` (many).

    A list of such bodies (the documented "JSON or list of dicts") gives all their inputs, in order.
    """
    if isinstance(query, Sequence) and not isinstance(query, str | bytes):
        if not query:
            raise ClipperException("The list of queries is empty: give at least one query dict")
        return [value for one in query for value in _query_inputs(_one_query(one))]
    return _body_inputs(_one_query(query))


def _one_query(query: Any) -> Mapping[str, Any]:
    if not isinstance(query, Mapping):
        raise ClipperException(
            f"The query must be a dict like the REST body, e.g. {{'input': [1.0, 2.0]}}, or a list "
            f"of such dicts, not a {type(query).__name__}"
        )
    return query


def _body_inputs(query: Mapping[str, Any]) -> list[Any]:
    if "input" in query:
        return [query["input"]]
    if "input_batch" in query:
        batch = query["input_batch"]
        if not isinstance(batch, list):
            raise ClipperException(
                f"'input_batch' must be a list of inputs, not a {type(batch).__name__}"
            )
        return batch
    raise ClipperException(
        f"Invalid input type or JSON key: the query needs the key 'input' or 'input_batch', "
        f"found {sorted(query)}"
    )


def _convert_input(value: Any, input_type: str, index: int) -> Any:
    """One REST input -> what the container runtime hands the function for it: a numpy array
    for numbers, ``str`` for strings, ``bytes`` for bytes (given as bytes or base64 text)."""
    where = f"input {index} ({value!r:.60})"
    if input_type == "strings":
        if not isinstance(value, str):
            raise ClipperException(f"Invalid input type: {where} must be a str for input type strings")
        return value
    if input_type == "bytes":
        if isinstance(value, bytes | bytearray):
            raw = bytes(value)
        elif isinstance(value, str):
            try:
                raw = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ClipperException(f"Invalid input type: {where} is not valid base64: {exc}") from exc
        else:
            raise ClipperException(
                f"Invalid input type: {where} must be bytes or a base64 str for input type bytes"
            )
        return raw
    if not isinstance(value, list):
        raise ClipperException(
            f"Invalid input type: {where} must be a list of numbers for input type {input_type}"
        )
    wanted: type = int if input_type == "integers" else float
    for item in value:
        # bool is an int subclass, and the REST API rejects integers written without a decimal
        # point for floats/doubles; mirror both rules.
        if isinstance(item, bool) or not isinstance(item, wanted):
            raise ClipperException(
                f"Invalid input type: {where} holds {item!r} ({type(item).__name__}); input type "
                f"{input_type} needs every item to be a {wanted.__name__}"
            )
    return np.array(value, dtype=_NUMPY_DTYPE[input_type])


def _reload(func: Callable[..., Any]) -> Callable[..., Any]:
    """Round-trip through cloudpickle, as deploying does; raise if that fails."""
    try:
        reloaded = pickle.loads(cloudpickle.dumps(func))
    except Exception as exc:  # cloudpickle raises many types for unpicklable closures
        raise ClipperException(
            f"Function does not properly serialize and reload: {type(exc).__name__}: {exc}"
        ) from exc
    if not callable(reloaded):
        raise ClipperException("Function does not properly serialize and reload: result is not callable")
    return reloaded


def check_outputs(outputs: Any, num_inputs: int) -> list[str]:
    """Raise unless ``outputs`` is a list of exactly ``num_inputs`` str (what containers return)."""
    if not isinstance(outputs, list):
        raise ClipperException(
            f"The predict function must return a list with one str per input; it returned a "
            f"{type(outputs).__name__}"
        )
    if len(outputs) != num_inputs:
        raise ClipperException(
            f"The predict function returned {len(outputs)} outputs for {num_inputs} inputs; it "
            "must return exactly one str per input"
        )
    for position, output in enumerate(outputs):
        if not isinstance(output, str):
            raise ClipperException(
                f"Output {position} of the predict function is a {type(output).__name__} "
                f"({output!r:.60}), not a str; return e.g. [str(p) for p in predictions]"
            )
    return outputs


def check_predict_function(
    query: Mapping[str, Any] | Sequence[Mapping[str, Any]], func: Callable[..., Any], input_type: str
) -> list[str]:
    """Dry-run ``func`` locally as a container would; return its outputs or raise ClipperException."""
    canonical = canonical_input_type(input_type)
    inputs: Any = [
        _convert_input(value, canonical, index) for index, value in enumerate(_query_inputs(query))
    ]
    num_inputs = len(inputs)
    if canonical in _NUMPY_DTYPE and num_inputs and len({len(array) for array in inputs}) == 1:
        # Like the container runtime: equal-length numeric inputs arrive as one 2-D array.
        inputs = np.stack(inputs)
    reloaded = _reload(func)
    try:
        outputs = reloaded(inputs)
    except Exception as exc:  # the user's code: report whatever it raised
        raise ClipperException(
            f"The predict function raised {type(exc).__name__}: {exc}"
        ) from exc
    return check_outputs(outputs, num_inputs)


def validate_pkgs_to_install(pkgs_to_install: list[str] | None) -> list[str]:
    """The requirements as a list of strings; pip options are refused, not handed to pip.

    ``pkgs_to_install`` names packages (``numpy==1.26``, ``pkg[extra]``, a wheel file or URL).
    An entry starting with ``-`` (``--index-url``, ``-r FILE``, ``--no-index``, ...) would change
    how pip runs, for the whole environment; configure pip itself for that (pip.conf or PIP_*).

    Raises:
        ClipperException: an entry is not a non-empty string, or is a pip option.
    """
    if pkgs_to_install is None:
        return []
    if isinstance(pkgs_to_install, str):
        raise ClipperException(
            f"pkgs_to_install must be a list of package requirements, not the string {pkgs_to_install!r}"
        )
    checked = []
    for entry in pkgs_to_install:
        if not isinstance(entry, str) or not entry.strip():
            raise ClipperException(f"pkgs_to_install entries must be non-empty strings, got {entry!r}")
        if entry.strip().startswith("-"):
            raise ClipperException(
                f"pkgs_to_install entry {entry!r} is a pip option, not a package; options such as "
                "--index-url, -r or --no-index are refused (set them in pip's configuration, e.g. "
                "pip.conf or PIP_INDEX_URL, instead)"
            )
        checked.append(entry.strip())
    return checked
