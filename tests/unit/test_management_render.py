"""Response shapes and the rapidjson-compatible compact writer."""

from __future__ import annotations

import json

import pytest

from clipper_core.management_frontend.render import app_json, container_json, model_json, to_json_bytes
from clipper_core.state import AppInfo, ContainerInfo, InputType, ModelInfo


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, b"null"),
        (True, b"true"),
        (False, b"false"),
        (-12, b"-12"),
        (2**40, b"1099511627776"),
        ("", b'""'),
        ([], b"[]"),
        ({}, b"{}"),
        (["a", 1, [True]], b'["a",1,[true]]'),
        ({"b": 1, "a": {"c": None}}, b'{"b":1,"a":{"c":null}}'),
        ('q"b\\s/', b'"q\\"b\\\\s/"'),
        ("\b\t\n\f\r", b'"\\b\\t\\n\\f\\r"'),
        ("\x00\x01\x1f\x7f", b'"\\u0000\\u0001\\u001F\x7f"'),
        ("é€", "\"é€\"".encode()),
    ],
)
def test_writer_matches_rapidjson(value: object, expected: bytes) -> None:
    assert to_json_bytes(value) == expected  # type: ignore[arg-type]


def test_writer_writes_finite_floats_only() -> None:
    """Floats appear only in ours (selection weights, confidence thresholds), written as repr."""
    assert to_json_bytes({"w": [0.5, 1e-05, 1.0]}) == b'{"w":[0.5,1e-05,1.0]}'
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError):
            to_json_bytes(bad)


def test_app_shape_and_key_order() -> None:
    app = AppInfo("a", InputType.DOUBLES, "-1", 20000)
    assert list(app_json(app, ["m"]).items()) == [
        ("input_type", "doubles"),
        ("default_output", "-1"),
        ("latency_slo_micros", 20000),
        ("name", "a"),
        ("linked_models", ["m"]),
    ]


def test_model_shape_and_labels_quirk() -> None:
    model = ModelInfo("m", "1", InputType.INTS, (), "img", "DEPRECATED", 4)
    body = model_json(model, True)
    assert list(body) == [
        "model_name", "model_version", "input_type", "labels", "container_name", "model_data_path",
        "is_current_version",
    ]
    assert body["labels"] == [""]
    assert body["input_type"] == "integers"
    assert body["is_current_version"] is True
    assert "batch_size" not in body and "valid" not in body
    labelled = model_json(ModelInfo("m", "2", InputType.INTS, ("a", "b")), False)
    assert labelled["labels"] == ["a", "b"] and labelled["is_current_version"] is False


def test_container_shape() -> None:
    container = ContainerInfo("m", "1", 3, 7, InputType.STRINGS)
    assert json.loads(to_json_bytes(container_json(container))) == {
        "model_id": "m:1", "model_name": "m", "model_version": "1", "model_replica_id": 3,
        "input_type": "strings",
    }
    assert list(container_json(container)) == [
        "model_id", "model_name", "model_version", "model_replica_id", "input_type",
    ]
