"""Typed records <-> Redis hashes, in the original's field order and encodings."""

from __future__ import annotations

import pytest

from clipper_core.errors import StateError
from clipper_core.state import AppInfo, ContainerInfo, InputType, ModelId, ModelInfo
from clipper_core.state.records import parse_input_type_name


def test_app_round_trip() -> None:
    app = AppInfo("a", InputType.STRINGS, "{\"y\":1}", 5000)
    fields = app.to_hash()
    assert fields == {
        "input_type": "strings", "policy": "DefaultOutputSelectionPolicy",
        "default_output": "{\"y\":1}", "latency_slo_micros": "5000",
    }
    assert AppInfo.from_hash("a", fields) == app


def test_model_hash_order_and_values() -> None:
    model = ModelInfo("m", "v1", InputType.DOUBLES, ("a", "b"), "img:1", "/p", -1)
    fields = model.to_hash()
    assert list(fields.items()) == [
        ("model_name", "m"), ("model_version", "v1"), ("load", "0.000000"), ("input_type", "doubles"),
        ("labels", "a,b"), ("container_name", "img:1"), ("model_data_path", "/p"), ("batch_size", "-1"),
        ("valid", ""),
    ]
    assert ModelInfo.from_hash(fields) == model


def test_model_without_labels_and_invalid() -> None:
    model = ModelInfo("m", "1", InputType.BYTES, is_valid=False)
    fields = model.to_hash()
    assert fields["labels"] == "" and "valid" not in fields
    back = ModelInfo.from_hash(fields)
    assert back.labels == () and back.is_valid is False and back.batch_size == -1
    assert back.model_id == ModelId("m", "1") and str(back.model_id) == "m:1"


def test_model_missing_batch_size_defaults() -> None:
    fields = ModelInfo("m", "1", InputType.INTS).to_hash()
    del fields["batch_size"]
    assert ModelInfo.from_hash(fields).batch_size == -1


def test_container_round_trip() -> None:
    container = ContainerInfo("m", "1", 2, 9, InputType.FLOATS)
    fields = container.to_hash()
    assert fields == {
        "model_id": "m:1", "model_name": "m", "model_version": "1", "model_replica_id": "2",
        "zmq_connection_id": "9", "batch_size": "1", "input_type": "floats",
    }
    assert ContainerInfo.from_hash(fields) == container


@pytest.mark.parametrize(
    ("build", "fields"),
    [
        (lambda f: AppInfo.from_hash("a", f), {}),
        (lambda f: AppInfo.from_hash("a", f), {"input_type": "tensor", "latency_slo_micros": "1"}),
        (lambda f: AppInfo.from_hash("a", f), {"input_type": "ints", "latency_slo_micros": "fast"}),
        (lambda f: AppInfo.from_hash("a", f), {"input_type": "ints"}),
        (ModelInfo.from_hash, {}),
        (ContainerInfo.from_hash, {"model_replica_id": "x", "zmq_connection_id": "1", "input_type": "s"}),
    ],
)
def test_broken_records_raise_state_error(build, fields: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(StateError):
        build(fields)


def test_input_type_names_accept_aliases() -> None:
    assert parse_input_type_name("integers") is InputType.INTS
    assert parse_input_type_name("str") is InputType.STRINGS
    with pytest.raises(StateError):
        parse_input_type_name("Invalid input type")
