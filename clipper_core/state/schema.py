"""The Redis schema of the original Clipper: DB numbers, key formats, hash fields.

The only place that spells a key. Pure: no I/O.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

__all__ = [
    "CURRENT_VERSION_PREFIX",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_CONFIDENCE_THRESHOLD",
    "DEFAULT_SELECTION_POLICY",
    "FORBIDDEN_NAME_CHARS",
    "SELECTION_POLICIES",
    "AppField",
    "ContainerField",
    "Db",
    "ModelField",
    "SelectionPolicyName",
    "app_key",
    "container_key",
    "current_version_key",
    "keyspace_pattern",
    "links_key",
    "model_id",
    "model_key",
    "model_key_pattern",
    "parse_container_key",
    "parse_model_key",
    "parse_policy_state_key",
    "policy_state_key",
    "policy_state_pattern",
    "selection_state_key",
]


class Db(IntEnum):
    STATE = 1
    MODEL = 2
    CONTAINER = 3
    RESOURCE = 4
    APPLICATION = 5
    METADATA = 6
    APP_MODEL_LINKS = 7


class AppField:
    INPUT_TYPE: Final = "input_type"
    POLICY: Final = "policy"
    DEFAULT_OUTPUT: Final = "default_output"
    LATENCY_SLO_MICROS: Final = "latency_slo_micros"
    # Ours, written only for applications on a selection policy other than the original's one.
    CONFIDENCE_THRESHOLD: Final = "confidence_threshold"
    POLICY_WEIGHTS: Final = "policy_weights"


class ModelField:
    MODEL_NAME: Final = "model_name"
    MODEL_VERSION: Final = "model_version"
    LOAD: Final = "load"
    INPUT_TYPE: Final = "input_type"
    LABELS: Final = "labels"
    CONTAINER_NAME: Final = "container_name"
    MODEL_DATA_PATH: Final = "model_data_path"
    BATCH_SIZE: Final = "batch_size"
    VALID: Final = "valid"


class ContainerField:
    MODEL_ID: Final = "model_id"
    MODEL_NAME: Final = "model_name"
    MODEL_VERSION: Final = "model_version"
    MODEL_REPLICA_ID: Final = "model_replica_id"
    ZMQ_CONNECTION_ID: Final = "zmq_connection_id"
    BATCH_SIZE: Final = "batch_size"
    INPUT_TYPE: Final = "input_type"


DEFAULT_SELECTION_POLICY: Final = "DefaultOutputSelectionPolicy"


class SelectionPolicyName:
    """The ``policy`` values of an application record: the original's one, then ours."""

    DEFAULT: Final = DEFAULT_SELECTION_POLICY
    EXP3: Final = "exp3"
    EXP4: Final = "exp4"
    AB: Final = "ab"


SELECTION_POLICIES: Final = (
    SelectionPolicyName.DEFAULT, SelectionPolicyName.EXP3, SelectionPolicyName.EXP4, SelectionPolicyName.AB,
)
# An Exp4 ensemble answers with the default output when its weighted agreement is below this.
DEFAULT_CONFIDENCE_THRESHOLD: Final = 0.5
# The original's sentinel for "no fixed batch size": the query frontend batches adaptively (AIMD).
DEFAULT_BATCH_SIZE: Final = -1
CURRENT_VERSION_PREFIX: Final = "CURRENT_MODEL_VERSION:"
# Names, versions and labels containing these would break the key formats.
FORBIDDEN_NAME_CHARS: Final = (",", ":")


def app_key(app_name: str) -> str:
    return app_name


def links_key(app_name: str) -> str:
    return app_name


def model_key(model_name: str, model_version: str) -> str:
    return f"{model_name}:{model_version}"


model_id = model_key  # "<name>:<version>" is also the model id shown to users


def model_key_pattern(model_name: str) -> str:
    """``KEYS`` pattern for every version of one model (glob characters escaped)."""
    return f"{_escape_glob(model_name)}:*"


def parse_model_key(key: str) -> tuple[str, str]:
    name, _, version = key.partition(":")
    return name, version


def container_key(model_name: str, model_version: str, replica_id: int) -> str:
    return f"{model_name},{model_version},{replica_id}"


def parse_container_key(key: str) -> tuple[str, str, int]:
    name, version, replica = key.split(",")
    return name, version, int(replica)


def current_version_key(model_name: str) -> str:
    return f"{CURRENT_VERSION_PREFIX}{model_name}"


def selection_state_key(app_name: str, uid: int = 0) -> str:
    return f"{app_name}:{uid}:0"


def policy_state_key(app_name: str, uid: int, policy: str) -> str:
    """A learning policy's state (weights) in DB 1: the original's ``<app>:<uid>:<model_hash>``
    format with the policy name in the last slot, so ``<app>:0:0`` keeps the original's value."""
    return f"{app_name}:{uid}:{policy}"


def parse_policy_state_key(key: str) -> tuple[str, int, str] | None:
    """``(app, uid, policy)`` of a DB 1 key, or None if it is not one (app names may hold ``:``)."""
    parts = key.rsplit(":", 2)
    if len(parts) != 3:
        return None
    try:
        return parts[0], int(parts[1]), parts[2]
    except ValueError:
        return None


def policy_state_pattern(app_name: str) -> str:
    """``SCAN`` pattern covering every DB 1 key of one app (filter with :func:`parse_policy_state_key`)."""
    return f"{_escape_glob(app_name)}:*"


def keyspace_pattern(db: Db, prefix: str = "") -> str:
    """``PSUBSCRIBE`` pattern for keyspace events of one DB (and key prefix)."""
    return f"__keyspace@{int(db)}__:{prefix}*"


def _escape_glob(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
