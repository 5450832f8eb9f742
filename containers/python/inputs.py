"""Batch conversion between RPC payloads and what model functions see. Pure; no I/O.

What a model's ``predict_*`` method receives for a batch of ``n`` inputs:

* ints / floats / doubles: when every input has the same length, ONE writable 2-D
  ``numpy`` array of shape ``(n, length)`` (dtype ``int32`` / ``float32`` / ``float64``);
  otherwise a ``list`` of ``n`` writable 1-D arrays. Either way it is indexable per input.
* strings: a ``list`` of ``str`` (the UTF-8 decoded payloads).
* bytes: a ``list`` of ``bytes`` objects, one per input (the original handed out signed
  ``int8`` numpy arrays; ``bytes`` is what Python image/audio decoders take directly, and
  ``np.frombuffer(x, np.uint8)`` gets an array back without a copy).

A model must return a ``list`` of exactly ``n`` ``str``; :func:`encode_outputs` checks that.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np

from clipper_core.rpc import InputType

__all__ = [
    "BadModelOutput",
    "InputDecodeError",
    "ModelInputs",
    "decode_inputs",
    "encode_outputs",
]

ModelInputs = np.ndarray | list[np.ndarray] | list[str] | list[bytes]

_NUMERIC_DTYPES: Final[dict[InputType, np.dtype]] = {
    InputType.INTS: np.dtype("<i4"),
    InputType.FLOATS: np.dtype("<f4"),
    InputType.DOUBLES: np.dtype("<f8"),
}


class InputDecodeError(ValueError):
    """The request's payloads cannot be converted to the container's input type."""


class BadModelOutput(ValueError):
    """The model's result is not one ``str`` per input; ``str()`` says what is wrong.

    Model adapters may raise it themselves (e.g. when a result is not iterable) to have
    the runtime report ``BAD_OUTPUT`` rather than ``MODEL_EXCEPTION``.
    """


def decode_inputs(input_type: InputType, payloads: Sequence[bytes]) -> ModelInputs:
    """Convert raw payloads to the model's view of the batch (see the module docstring).

    Raises:
        InputDecodeError: a numeric payload is not a whole number of elements, a string
            is not valid UTF-8, or the input type is INVALID.
    """
    if input_type is InputType.BYTES:
        return list(payloads)
    if input_type is InputType.STRINGS:
        try:
            return [p.decode("utf-8") for p in payloads]
        except UnicodeDecodeError as exc:
            raise InputDecodeError(f"a string input is not valid UTF-8: {exc}") from None
    dtype = _NUMERIC_DTYPES.get(input_type)
    if dtype is None:
        raise InputDecodeError(f"cannot decode inputs of type {input_type.readable_name}")
    return _decode_numeric(dtype, payloads)


def _decode_numeric(dtype: np.dtype, payloads: Sequence[bytes]) -> np.ndarray | list[np.ndarray]:
    n = len(payloads)
    if n == 0:
        return np.empty((0, 0), dtype=dtype)
    itemsize = dtype.itemsize
    sizes = [len(p) for p in payloads]
    for i, size in enumerate(sizes):
        if size % itemsize:
            raise InputDecodeError(
                f"input {i} has {size} bytes, not a multiple of {itemsize} ({dtype.name})"
            )
    # One copy into a bytearray: the arrays the model gets are contiguous and writable,
    # as the original's reused buffer was.
    flat = np.frombuffer(bytearray().join(payloads), dtype=dtype)
    first = sizes[0]
    if all(size == first for size in sizes):
        return flat.reshape(n, first // itemsize)
    bounds = np.cumsum([size // itemsize for size in sizes[:-1]])
    return list(np.split(flat, bounds))


def encode_outputs(outputs: object, expected_count: int) -> list[bytes]:
    """UTF-8 encode a model's result after checking it is a list of ``expected_count`` str.

    Raises:
        BadModelOutput: with a message naming the problem.
    """
    if not isinstance(outputs, list):
        raise BadModelOutput(
            f"model returned {type(outputs).__name__}, expected a list of {expected_count} str"
        )
    if len(outputs) != expected_count:
        raise BadModelOutput(f"model returned {len(outputs)} outputs for {expected_count} inputs")
    encoded = []
    for i, output in enumerate(outputs):
        # isinstance, not hasattr(encode): anything else could smuggle non-bytes into frames.
        if not isinstance(output, str):
            raise BadModelOutput(f"output {i} is {type(output).__name__}, expected str")
        try:
            encoded.append(output.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise BadModelOutput(f"output {i} cannot be encoded as UTF-8: {exc.reason}") from None
    return encoded
