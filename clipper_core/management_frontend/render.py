"""Response bodies: the original's JSON shapes, written like rapidjson's compact Writer (pure).

Key order is insertion order; strings escape ``"`` ``\\`` and control bytes (``\\b \\t \\n \\f \\r``,
the rest as ``\\u00XX`` with upper-case hex); other characters are written raw as UTF-8.
"""

from __future__ import annotations

from typing import Final

from clipper_core.state import AppInfo, ContainerInfo, ModelInfo

__all__ = ["JsonValue", "app_json", "container_json", "model_json", "to_json_bytes"]

JsonValue = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]

_ESCAPES: Final[dict[int, str]] = {
    **{code: f"\\u{code:04X}" for code in range(0x20)},
    0x08: "\\b",
    0x09: "\\t",
    0x0A: "\\n",
    0x0C: "\\f",
    0x0D: "\\r",
    ord('"'): '\\"',
    ord("\\"): "\\\\",
}


def _write(value: JsonValue, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("JSON has no NaN or infinity")
        out.append(repr(value))
    elif isinstance(value, str):
        out.append('"' + value.translate(_ESCAPES) + '"')
    elif isinstance(value, list):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _write(item, out)
        out.append("]")
    elif isinstance(value, dict):
        out.append("{")
        for index, (key, item) in enumerate(value.items()):
            if index:
                out.append(",")
            out.append('"' + key.translate(_ESCAPES) + '":')
            _write(item, out)
        out.append("}")
    else:
        raise TypeError(f"cannot write {type(value).__name__} as JSON")


def to_json_bytes(value: JsonValue) -> bytes:
    out: list[str] = []
    _write(value, out)
    return "".join(out).encode("utf-8")


def app_json(
    app: AppInfo, linked_models: list[str], selection: dict[str, JsonValue] | None = None
) -> dict[str, JsonValue]:
    """Verbose application entry: input_type, default_output, latency_slo_micros, name, linked_models,
    then (ours, only for an application on another policy than the original's) ``selection``'s keys."""
    entry: dict[str, JsonValue] = {
        "input_type": app.input_type.readable_name,
        "default_output": app.default_output,
        "latency_slo_micros": app.latency_slo_micros,
        "name": app.name,
        "linked_models": list[JsonValue](linked_models),
    }
    if selection:
        entry.update(selection)
    return entry


def model_json(model: ModelInfo, is_current_version: bool) -> dict[str, JsonValue]:
    """Verbose model entry; a model without labels shows ``[""]`` as the original (split of "")."""
    labels: list[JsonValue] = list(model.labels) if model.labels else [""]
    return {
        "model_name": model.name,
        "model_version": model.version,
        "input_type": model.input_type.readable_name,
        "labels": labels,
        "container_name": model.container_name,
        "model_data_path": model.model_data_path,
        "is_current_version": is_current_version,
    }


def container_json(container: ContainerInfo) -> dict[str, JsonValue]:
    return {
        "model_id": str(container.model_id),
        "model_name": container.model_name,
        "model_version": container.model_version,
        "model_replica_id": container.replica_id,
        "input_type": container.input_type.readable_name,
    }
