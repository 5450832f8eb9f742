"""Typed records <-> Redis hash dicts (pure)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from clipper_core.errors import StateError
from clipper_core.rpc.messages import InputType
from clipper_core.state.schema import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_SELECTION_POLICY,
    AppField,
    ContainerField,
    ModelField,
    model_id,
)

__all__ = [
    "AppInfo",
    "ContainerInfo",
    "ModelId",
    "ModelInfo",
    "PolicyState",
    "parse_input_type_name",
    "parse_policy_weights",
]


def parse_input_type_name(name: str) -> InputType:
    """Readable or alias input-type name from Redis -> enum; StateError if unknown."""
    try:
        return InputType.parse(name)
    except ValueError as exc:
        raise StateError(str(exc)) from None


def _int(fields: dict[str, str], key: str, default: int | None = None) -> int:
    raw = fields.get(key)
    if raw is None or raw == "":
        if default is None:
            raise StateError(f"record has no field {key}")
        return default
    try:
        return int(raw)
    except ValueError:
        raise StateError(f"field {key}={raw!r} is not an integer") from None


@dataclass(slots=True, frozen=True)
class ModelId:
    """A versioned model; ``str()`` is ``<name>:<version>`` as in Redis and metrics."""

    name: str
    version: str

    def __str__(self) -> str:
        return model_id(self.name, self.version)


def parse_policy_weights(text: str) -> tuple[tuple[str, float], ...]:
    """A JSON object of model name -> weight (the A/B split) -> pairs; StateError if malformed."""
    if not text:
        return ()
    try:
        doc = json.loads(text)
    except ValueError:
        raise StateError(f"policy weights {text!r} are not JSON") from None
    if not isinstance(doc, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in doc.values()
    ):
        raise StateError(f"policy weights {text!r} are not an object of numbers")
    return tuple((str(k), float(v)) for k, v in doc.items())


def _weights_text(weights: tuple[tuple[str, float], ...]) -> str:
    return json.dumps(dict(weights), separators=(",", ":"), ensure_ascii=False)


@dataclass(slots=True, frozen=True)
class AppInfo:
    """An application record; the last three fields are ours (selection policies).

    ``to_hash`` writes the original's four fields only, unless the application is on another
    policy than the original's one, so an application that does not opt in is stored as before.
    """

    name: str
    input_type: InputType
    default_output: str
    latency_slo_micros: int
    policy: str = DEFAULT_SELECTION_POLICY
    confidence_threshold: float | None = None
    policy_weights: tuple[tuple[str, float], ...] = ()

    def to_hash(self) -> dict[str, str]:
        fields = {
            AppField.INPUT_TYPE: self.input_type.readable_name,
            AppField.POLICY: self.policy,
            AppField.DEFAULT_OUTPUT: self.default_output,
            AppField.LATENCY_SLO_MICROS: str(self.latency_slo_micros),
        }
        if self.policy != DEFAULT_SELECTION_POLICY:
            fields.update(self.policy_fields())
        return fields

    def policy_fields(self) -> dict[str, str]:
        """The fields a policy change writes (never deleted: an ``hdel`` means "app gone")."""
        threshold = "" if self.confidence_threshold is None else repr(self.confidence_threshold)
        return {
            AppField.POLICY: self.policy,
            AppField.CONFIDENCE_THRESHOLD: threshold,
            AppField.POLICY_WEIGHTS: _weights_text(self.policy_weights),
        }

    @classmethod
    def from_hash(cls, name: str, fields: dict[str, str]) -> AppInfo:
        if not fields:
            raise StateError(f"application {name} has no record")
        threshold_text = fields.get(AppField.CONFIDENCE_THRESHOLD, "")
        try:
            threshold = float(threshold_text) if threshold_text else None
        except ValueError:
            raise StateError(
                f"field {AppField.CONFIDENCE_THRESHOLD}={threshold_text!r} is not a number"
            ) from None
        return cls(
            name=name,
            input_type=parse_input_type_name(fields.get(AppField.INPUT_TYPE, "")),
            default_output=fields.get(AppField.DEFAULT_OUTPUT, ""),
            latency_slo_micros=_int(fields, AppField.LATENCY_SLO_MICROS),
            policy=fields.get(AppField.POLICY, DEFAULT_SELECTION_POLICY),
            confidence_threshold=threshold,
            policy_weights=parse_policy_weights(fields.get(AppField.POLICY_WEIGHTS, "")),
        )


@dataclass(slots=True, frozen=True)
class PolicyState:
    """A learning selection policy's state in DB 1: a weight per model name and the number of
    feedback rounds applied. Models without a weight have the policy's initial weight."""

    weights: Mapping[str, float] = field(default_factory=dict)
    rounds: int = 0

    def to_json(self) -> str:
        return json.dumps(
            {"weights": dict(self.weights), "rounds": self.rounds}, separators=(",", ":"), ensure_ascii=False
        )

    @classmethod
    def from_json(cls, text: str) -> PolicyState:
        try:
            doc = json.loads(text)
            weights = {str(k): float(v) for k, v in doc["weights"].items()}
            rounds = int(doc["rounds"])
        except (ValueError, KeyError, TypeError, AttributeError):
            raise StateError(f"selection state {text[:80]!r} is not readable") from None
        if not all(math.isfinite(w) and w >= 0 for w in weights.values()):
            raise StateError(f"selection state {text[:80]!r} holds a negative or non-finite weight")
        return cls(weights, rounds)


@dataclass(slots=True, frozen=True)
class ModelInfo:
    name: str
    version: str
    input_type: InputType
    labels: tuple[str, ...] = ()
    container_name: str = ""
    model_data_path: str = ""
    batch_size: int = DEFAULT_BATCH_SIZE
    is_valid: bool = True

    @property
    def model_id(self) -> ModelId:
        return ModelId(self.name, self.version)

    def to_hash(self) -> dict[str, str]:
        """Fields in the original's HMSET order; ``valid`` present only while valid."""
        fields = {
            ModelField.MODEL_NAME: self.name,
            ModelField.MODEL_VERSION: self.version,
            ModelField.LOAD: "0.000000",
            ModelField.INPUT_TYPE: self.input_type.readable_name,
            ModelField.LABELS: ",".join(self.labels),
            ModelField.CONTAINER_NAME: self.container_name,
            ModelField.MODEL_DATA_PATH: self.model_data_path,
            ModelField.BATCH_SIZE: str(self.batch_size),
        }
        if self.is_valid:
            fields[ModelField.VALID] = ""
        return fields

    @classmethod
    def from_hash(cls, fields: dict[str, str]) -> ModelInfo:
        if not fields:
            raise StateError("model has no record")
        labels = fields.get(ModelField.LABELS, "")
        return cls(
            name=fields.get(ModelField.MODEL_NAME, ""),
            version=fields.get(ModelField.MODEL_VERSION, ""),
            input_type=parse_input_type_name(fields.get(ModelField.INPUT_TYPE, "")),
            labels=tuple(labels.split(",")) if labels else (),
            container_name=fields.get(ModelField.CONTAINER_NAME, ""),
            model_data_path=fields.get(ModelField.MODEL_DATA_PATH, ""),
            batch_size=_int(fields, ModelField.BATCH_SIZE, DEFAULT_BATCH_SIZE),
            is_valid=ModelField.VALID in fields,
        )


@dataclass(slots=True, frozen=True)
class ContainerInfo:
    model_name: str
    model_version: str
    replica_id: int
    zmq_connection_id: int
    input_type: InputType

    @property
    def model_id(self) -> ModelId:
        return ModelId(self.model_name, self.model_version)

    def to_hash(self) -> dict[str, str]:
        return {
            ContainerField.MODEL_ID: str(self.model_id),
            ContainerField.MODEL_NAME: self.model_name,
            ContainerField.MODEL_VERSION: self.model_version,
            ContainerField.MODEL_REPLICA_ID: str(self.replica_id),
            ContainerField.ZMQ_CONNECTION_ID: str(self.zmq_connection_id),
            ContainerField.BATCH_SIZE: "1",
            ContainerField.INPUT_TYPE: self.input_type.readable_name,
        }

    @classmethod
    def from_hash(cls, fields: dict[str, str]) -> ContainerInfo:
        if not fields:
            raise StateError("container has no record")
        return cls(
            model_name=fields.get(ContainerField.MODEL_NAME, ""),
            model_version=fields.get(ContainerField.MODEL_VERSION, ""),
            replica_id=_int(fields, ContainerField.MODEL_REPLICA_ID),
            zmq_connection_id=_int(fields, ContainerField.ZMQ_CONNECTION_ID),
            input_type=parse_input_type_name(fields.get(ContainerField.INPUT_TYPE, "")),
        )
