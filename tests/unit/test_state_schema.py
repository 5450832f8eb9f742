"""The Redis schema of the original: DB numbers, key formats, field names, keyspace channels."""

from __future__ import annotations

import pytest

from clipper_core.state import schema
from clipper_core.state.schema import Db
from clipper_core.state.watch import StateChange, parse_keyspace_channel


def test_db_numbers_are_the_originals() -> None:
    assert {db.name: int(db) for db in Db} == {
        "STATE": 1, "MODEL": 2, "CONTAINER": 3, "RESOURCE": 4, "APPLICATION": 5, "METADATA": 6,
        "APP_MODEL_LINKS": 7,
    }


def test_key_formats() -> None:
    assert schema.app_key("app") == "app"
    assert schema.links_key("app") == "app"
    assert schema.model_key("m", "v1") == "m:v1"
    assert schema.model_id("m", "v1") == "m:v1"
    assert schema.container_key("m", "v1", 3) == "m,v1,3"  # commas, not colons
    assert schema.current_version_key("m") == "CURRENT_MODEL_VERSION:m"
    assert schema.selection_state_key("app") == "app:0:0"


def test_key_parsers_invert_the_builders() -> None:
    assert schema.parse_model_key(schema.model_key("m", "v1")) == ("m", "v1")
    assert schema.parse_container_key(schema.container_key("m", "v1", 12)) == ("m", "v1", 12)


@pytest.mark.parametrize(
    ("name", "pattern"),
    [("m", "m:*"), ("a*b", "a\\*b:*"), ("q?[x]", "q\\?\\[x\\]:*"), ("back\\slash", "back\\\\slash:*")],
)
def test_model_key_pattern_escapes_glob_characters(name: str, pattern: str) -> None:
    assert schema.model_key_pattern(name) == pattern


def test_constants() -> None:
    assert schema.DEFAULT_SELECTION_POLICY == "DefaultOutputSelectionPolicy"
    assert schema.DEFAULT_BATCH_SIZE == -1
    assert schema.FORBIDDEN_NAME_CHARS == (",", ":")
    assert schema.keyspace_pattern(Db.APPLICATION) == "__keyspace@5__:*"
    assert schema.keyspace_pattern(Db.METADATA, schema.CURRENT_VERSION_PREFIX) == (
        "__keyspace@6__:CURRENT_MODEL_VERSION:*"
    )


def test_field_names() -> None:
    assert [getattr(schema.ModelField, f) for f in (
        "MODEL_NAME", "MODEL_VERSION", "LOAD", "INPUT_TYPE", "LABELS", "CONTAINER_NAME",
        "MODEL_DATA_PATH", "BATCH_SIZE", "VALID",
    )] == [
        "model_name", "model_version", "load", "input_type", "labels", "container_name",
        "model_data_path", "batch_size", "valid",
    ]
    assert schema.AppField.LATENCY_SLO_MICROS == "latency_slo_micros"
    assert schema.ContainerField.ZMQ_CONNECTION_ID == "zmq_connection_id"


@pytest.mark.parametrize(
    ("channel", "event", "change"),
    [
        ("__keyspace@5__:myapp", "hset", StateChange(Db.APPLICATION, "myapp", "hset")),
        ("__keyspace@5__:a:b", "del", StateChange(Db.APPLICATION, "a:b", "del")),
        ("__keyspace@2__:m:1", "hdel", StateChange(Db.MODEL, "m:1", "hdel")),
        ("__keyspace@6__:CURRENT_MODEL_VERSION:m", "set", StateChange(Db.METADATA, "m", "set")),
        ("__keyspace@6__:other", "set", None),
        ("__keyspace@9__:x", "set", None),
        ("__keyevent@5__:hset", "app", None),
        ("garbage", "set", None),
    ],
)
def test_parse_keyspace_channel(channel: str, event: str, change: StateChange | None) -> None:
    assert parse_keyspace_channel(channel, event) == change
