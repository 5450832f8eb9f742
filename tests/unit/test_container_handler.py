"""PredictionHandler (one request -> reply frames) and the closure model adapter."""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import cloudpickle
import pytest

from clipper_core.rpc import (
    ContainerError,
    ContainerErrorKind,
    InputType,
    PredictRequest,
    PredictResponse,
    decode_from_container,
)
from containers.python.closure_container import PythonContainer
from containers.python.server import MAX_ERROR_MESSAGE_CHARS, PredictionHandler


def answer(handler: PredictionHandler, request: PredictRequest) -> object:
    return decode_from_container([bytes(f) for f in handler.answer(request)])


def doubles(*values: float) -> bytes:
    return struct.pack(f"<{len(values)}d", *values)


def test_successful_prediction_frames() -> None:
    handler = PredictionHandler(InputType.DOUBLES, lambda xs: [str(float(x.sum())) for x in xs])
    frames = [
        bytes(f)
        for f in handler.answer(PredictRequest(12, InputType.DOUBLES, [doubles(1, 2), doubles(3, 4)]))
    ]
    assert frames == [
        b"",
        struct.pack("<I", 1),
        struct.pack("<I", 12),
        struct.pack("<Q", 24),
        struct.pack("<3Q", 2, 3, 3),
        b"3.0",
        b"7.0",
    ]


def test_model_exception_is_reported_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    def broken(inputs: object) -> list[str]:
        raise ZeroDivisionError("division by zero")

    handler = PredictionHandler(InputType.DOUBLES, broken)
    with caplog.at_level(logging.ERROR):
        reply = answer(handler, PredictRequest(5, InputType.DOUBLES, [doubles(1)]))
    assert reply == ContainerError(
        5, ContainerErrorKind.MODEL_EXCEPTION, "ZeroDivisionError: division by zero"
    )
    assert any(r.exc_info is not None for r in caplog.records)


def test_handler_keeps_working_after_an_exception() -> None:
    calls = []

    def flaky(inputs: list[str]) -> list[str]:
        calls.append(inputs)
        if len(calls) == 1:
            raise RuntimeError("first call fails")
        return list(inputs)

    handler = PredictionHandler(InputType.STRINGS, flaky)
    first = answer(handler, PredictRequest(1, InputType.STRINGS, [b"a"]))
    second = answer(handler, PredictRequest(2, InputType.STRINGS, [b"b"]))
    assert isinstance(first, ContainerError)
    assert second == PredictResponse(2, [b"b"])


def test_wrong_output_count_is_bad_output() -> None:
    handler = PredictionHandler(InputType.STRINGS, lambda xs: ["only one"])
    reply = answer(handler, PredictRequest(3, InputType.STRINGS, [b"a", b"b"]))
    assert reply == ContainerError(3, ContainerErrorKind.BAD_OUTPUT, "model returned 1 outputs for 2 inputs")


def test_non_string_output_is_bad_output() -> None:
    handler = PredictionHandler(InputType.INTS, lambda xs: [1 for _ in xs])
    reply = answer(handler, PredictRequest(3, InputType.INTS, [struct.pack("<i", 1)]))
    assert isinstance(reply, ContainerError)
    assert reply.kind is ContainerErrorKind.BAD_OUTPUT
    assert "output 0 is int" in reply.message


def test_input_type_mismatch_is_bad_input_and_the_model_is_not_called() -> None:
    def never(inputs: object) -> list[str]:
        raise AssertionError("must not be called")

    handler = PredictionHandler(InputType.DOUBLES, never)
    reply = answer(handler, PredictRequest(4, InputType.STRINGS, [b"x"]))
    assert reply == ContainerError(
        4,
        ContainerErrorKind.BAD_INPUT,
        "request input type strings does not match the container input type doubles",
    )


def test_undecodable_payload_is_bad_input() -> None:
    handler = PredictionHandler(InputType.FLOATS, lambda xs: ["x"] * len(xs))
    reply = answer(handler, PredictRequest(4, InputType.FLOATS, [b"\x00\x00\x00"]))
    assert isinstance(reply, ContainerError)
    assert reply.kind is ContainerErrorKind.BAD_INPUT


def test_empty_batch_is_answered_without_calling_the_model() -> None:
    def never(inputs: object) -> list[str]:
        raise AssertionError("must not be called")

    handler = PredictionHandler(InputType.BYTES, never)
    assert answer(handler, PredictRequest(9, InputType.BYTES, [])) == PredictResponse(9, [])


def test_long_error_text_is_truncated() -> None:
    def loud(inputs: object) -> list[str]:
        raise ValueError("x" * 100_000)

    reply = answer(PredictionHandler(InputType.BYTES, loud), PredictRequest(1, InputType.BYTES, [b"a"]))
    assert isinstance(reply, ContainerError)
    assert len(reply.message) == MAX_ERROR_MESSAGE_CHARS
    assert reply.message.startswith("ValueError: xxx") and reply.message.endswith("...")


# ------------------------------------------------------------------ closure adapter


def write_closure(model_dir: Path, func: object) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "func.pkl").write_bytes(cloudpickle.dumps(func))


def test_closure_outputs_are_converted_with_str(tmp_path: Path) -> None:
    write_closure(tmp_path, lambda xs: [x.sum() * 2 for x in xs])
    model = PythonContainer(str(tmp_path), "doubles")
    handler = PredictionHandler(InputType.DOUBLES, model.predict_doubles)
    assert answer(handler, PredictRequest(1, InputType.DOUBLES, [doubles(1.5)])) == PredictResponse(
        1, [b"3.0"]
    )


@pytest.mark.parametrize("result", ["abc", b"abc", 42, None])
def test_closure_returning_a_single_value_is_bad_output(tmp_path: Path, result: object) -> None:
    write_closure(tmp_path, lambda xs: result)
    model = PythonContainer(str(tmp_path), "strings")
    reply = answer(
        PredictionHandler(InputType.STRINGS, model.predict_strings),
        PredictRequest(1, InputType.STRINGS, [b"a", b"b", b"c"]),
    )
    assert isinstance(reply, ContainerError)
    assert reply.kind is ContainerErrorKind.BAD_OUTPUT


def test_closure_modules_dir_is_importable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.path", list(__import__("sys").path))
    (tmp_path / "modules").mkdir()
    (tmp_path / "modules" / "clipper_test_helper_mod.py").write_text("def double(x):\n    return 2 * x\n")

    def uses_module(xs: list[str]) -> list[str]:
        import clipper_test_helper_mod

        return [clipper_test_helper_mod.double(x) for x in xs]

    write_closure(tmp_path, uses_module)
    model = PythonContainer(str(tmp_path), "strings")
    assert model.predict_strings(["ab"]) == ["abab"]
