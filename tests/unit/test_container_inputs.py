"""Container input decoding (payloads -> what the model sees) and output checking."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from clipper_core.rpc import InputType
from containers.python.inputs import BadModelOutput, InputDecodeError, decode_inputs, encode_outputs


@pytest.mark.parametrize(
    ("input_type", "fmt", "dtype"),
    [
        (InputType.INTS, "<3i", np.int32),
        (InputType.FLOATS, "<3f", np.float32),
        (InputType.DOUBLES, "<3d", np.float64),
    ],
)
def test_equal_sized_numeric_inputs_become_one_2d_array(input_type: InputType, fmt: str, dtype: type) -> None:
    rows = [(1, 2, 3), (-4, 5, 6)]
    decoded = decode_inputs(input_type, [struct.pack(fmt, *row) for row in rows])
    assert isinstance(decoded, np.ndarray)
    assert decoded.dtype == dtype
    assert decoded.shape == (2, 3)
    assert decoded.tolist() == [list(map(dtype, row)) for row in rows]
    decoded[0, 0] = 9  # models may work in place, as with the original's buffer
    assert decoded[0, 0] == 9


def test_unequal_sized_inputs_become_a_list_of_1d_arrays() -> None:
    payloads = [struct.pack("<2d", 1.0, 2.0), struct.pack("<d", 3.0), struct.pack("<3d", 4.0, 5.0, 6.0)]
    decoded = decode_inputs(InputType.DOUBLES, payloads)
    assert isinstance(decoded, list)
    assert [a.tolist() for a in decoded] == [[1.0, 2.0], [3.0], [4.0, 5.0, 6.0]]
    assert all(a.dtype == np.float64 and a.ndim == 1 and a.flags.writeable for a in decoded)


def test_single_input_is_a_one_row_array() -> None:
    decoded = decode_inputs(InputType.INTS, [struct.pack("<2i", 7, 8)])
    assert isinstance(decoded, np.ndarray)
    assert decoded.tolist() == [[7, 8]]


def test_empty_numeric_inputs_of_equal_size() -> None:
    decoded = decode_inputs(InputType.FLOATS, [b"", b""])
    assert isinstance(decoded, np.ndarray)
    assert decoded.shape == (2, 0)


def test_empty_numeric_batch() -> None:
    decoded = decode_inputs(InputType.DOUBLES, [])
    assert len(decoded) == 0


@pytest.mark.parametrize("input_type", [InputType.INTS, InputType.FLOATS, InputType.DOUBLES])
def test_numeric_payload_not_whole_elements_is_refused(input_type: InputType) -> None:
    with pytest.raises(InputDecodeError, match="input 1 has 5 bytes"):
        decode_inputs(input_type, [b"\x00" * 8, b"\x00" * 5])


def test_strings_are_decoded_utf8() -> None:
    assert decode_inputs(InputType.STRINGS, ["héllo".encode(), b"", "日本".encode()]) == ["héllo", "", "日本"]


def test_invalid_utf8_string_is_refused() -> None:
    with pytest.raises(InputDecodeError, match="UTF-8"):
        decode_inputs(InputType.STRINGS, [b"ok", b"\xff\xfe"])


def test_bytes_are_passed_as_bytes_objects() -> None:
    payloads = [b"\x00\xff", b"", b"abc"]
    decoded = decode_inputs(InputType.BYTES, payloads)
    assert decoded == payloads
    assert all(type(x) is bytes for x in decoded)


def test_invalid_input_type_is_refused() -> None:
    with pytest.raises(InputDecodeError):
        decode_inputs(InputType.INVALID, [b"x"])


def test_outputs_are_utf8_encoded() -> None:
    assert encode_outputs(["1.0", "ü", ""], 3) == [b"1.0", "ü".encode(), b""]


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        (("a", "b"), "returned tuple"),
        (np.array(["a", "b"]), "returned ndarray"),
        ("ab", "returned str"),
        (None, "returned NoneType"),
        (["a"], "1 outputs for 2 inputs"),
        (["a", "b", "c"], "3 outputs for 2 inputs"),
        (["a", b"b"], "output 1 is bytes"),
        ([1.0, "b"], "output 0 is float"),
        (["a", "\ud800"], "output 1 cannot be encoded"),
    ],
)
def test_bad_outputs_are_named(outputs: object, message: str) -> None:
    with pytest.raises(BadModelOutput, match=message):
        encode_outputs(outputs, 2)
