"""The cluster as ``clipper status`` shows it, gathered through ``ClipperConnection``."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Final

from clipper_admin.clipper_admin import ClipperConnection
from clipper_admin.exceptions import ClipperException

__all__ = ["DEFAULT_POLICY", "SELECTION_KEYS", "app_entry", "apps_of", "cluster_status", "models_of"]

# The selection policy of an application registered without one (the original's).
DEFAULT_POLICY: Final = "DefaultOutputSelectionPolicy"
# What the management API adds to an application's entry when it is on another policy.
SELECTION_KEYS: Final = ("selection_weights", "feedback_rounds", "confidence_threshold")


def app_entry(app: dict[str, Any]) -> dict[str, Any]:
    """One app as the command shows it: name, input_type, policy, latency_slo_micros,
    default_output, linked_models; for an app on a selection policy also ``selection_weights``
    (model -> share), ``feedback_rounds`` and (exp4) ``confidence_threshold``."""
    entry = {"name": app["name"], "input_type": app["input_type"],
             "policy": app.get("selection_policy", DEFAULT_POLICY),
             "latency_slo_micros": app["latency_slo_micros"], "default_output": app["default_output"],
             "linked_models": list(app.get("linked_models") or [])}  # fmt: skip
    entry.update({key: app[key] for key in SELECTION_KEYS if key in app})
    return entry


def apps_of(conn: ClipperConnection) -> list[dict[str, Any]]:
    """Every app (see ``app_entry``), by name."""
    return [app_entry(app) for app in sorted(conn.get_all_apps(verbose=True), key=lambda a: str(a["name"]))]


def models_of(conn: ClipperConnection) -> list[dict[str, Any]]:
    """Each model: name, input_type, current_version and its versions; each version with
    ``replicas`` (processes or containers running), ``connected`` (replicas the query frontend
    serves with) and ``replica_states`` (one entry per replica: its id or process name and
    ``ready``, ``starting``, ``restarting`` or ``crash-loop``)."""
    replicas_by_version: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for replica in conn.get_all_model_replicas(verbose=True):
        replicas_by_version[(replica["model_name"], str(replica["model_version"]))].append(replica)
    versions_by_model: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for model in conn.get_all_models(verbose=True):
        versions_by_model[model["model_name"]].append(model)
    models = []
    for name in sorted(versions_by_model):
        entries = sorted(versions_by_model[name], key=lambda m: _version_key(str(m["model_version"])))
        versions = [_version_status(conn, name, entry, replicas_by_version) for entry in entries]
        current = next((v["version"] for v in versions if v["is_current"]), None)
        models.append({"name": name, "input_type": entries[-1]["input_type"],
                       "current_version": current, "versions": versions})
    return models


def _version_status(
    conn: ClipperConnection, name: str, entry: dict[str, Any],
    replicas_by_version: dict[tuple[str, str], list[dict[str, Any]]],
) -> dict[str, Any]:
    version = str(entry["model_version"])
    known = replicas_by_version.get((name, version), [])
    connected = [r for r in known if r.get("model_replica_id") is not None]
    states = [{"replica": r["model_replica_id"], "state": "ready"} for r in connected]
    states += [{"replica": r.get("replica_name"), "state": r.get("state")} for r in known
               if r.get("model_replica_id") is None]
    try:
        running = conn.cm.get_num_replicas(name, version)
    except ClipperException:
        running = len(connected)  # e.g. a containerless model: nothing of ours runs it
    states += [{"replica": None, "state": "starting"}] * max(0, running - len(connected))
    return {"version": version, "is_current": bool(entry["is_current_version"]),
            "container": entry["container_name"], "replicas": running,
            "connected": len(connected), "replica_states": states}


def _version_key(version: str) -> tuple[int, int | str]:
    return (0, int(version)) if version.isdigit() else (1, version)


def cluster_status(conn: ClipperConnection, manager: str) -> dict[str, Any]:
    return {
        "cluster": conn.cm.cluster_identifier,
        "manager": manager,
        "addresses": {"query": conn.cm.get_query_addr(), "management": conn.cm.get_admin_addr(),
                      "metrics": conn.cm.get_metric_addr()},
        "apps": apps_of(conn),
        "models": models_of(conn),
    }
