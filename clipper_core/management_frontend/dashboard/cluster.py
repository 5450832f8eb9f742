"""The cluster as the dashboard shows it: apps, models, versions and replicas, read from Redis.

A replica's record exists while a query frontend holds its connection: the frontend writes it
with an expiry when the container connects and pushes the expiry ahead while heartbeats arrive
(``rpc_service``), so a listed replica is a connected one. A model version without records
has no connected replica.
"""

from __future__ import annotations

from clipper_core.management_frontend.dashboard.digest import Json
from clipper_core.state import AppInfo, ContainerInfo, ModelInfo, StateStore

__all__ = ["cluster_json", "read_cluster"]


async def read_cluster(store: StateStore) -> dict[str, Json]:
    """Every app, model version and replica (a few pipelined Redis round trips)."""
    names = sorted(await store.list_app_names())
    apps = await store.get_apps(names)
    links = await store.get_links(names)
    model_keys = sorted(await store.list_model_keys())
    models = await store.get_models(model_keys)
    model_names = sorted({name for name, _ in model_keys})
    current = dict(zip(model_names, await store.get_current_versions(model_names), strict=True))
    containers = await store.list_containers()
    return cluster_json(
        [(app, linked) for app, linked in zip(apps, links, strict=True) if app is not None],
        [model for model in models if model is not None],
        current,
        containers,
    )


def cluster_json(
    apps: list[tuple[AppInfo, list[str]]],
    models: list[ModelInfo],
    current_versions: dict[str, str | None],
    containers: list[ContainerInfo],
) -> dict[str, Json]:
    """The page's ``cluster`` object (pure): apps with their links; models by name, each with
    its versions (current first) and each version's replicas."""
    replicas: dict[tuple[str, str], list[Json]] = {}
    for container in sorted(containers, key=lambda c: c.replica_id):
        replicas.setdefault((container.model_name, container.model_version), []).append(
            {"replica_id": container.replica_id, "state": "connected"}
        )
    by_name: dict[str, list[ModelInfo]] = {}
    for model in models:
        by_name.setdefault(model.name, []).append(model)
    model_entries: list[Json] = []
    for name in sorted(by_name):
        current = current_versions.get(name)
        versions: list[Json] = []
        for model in sorted(by_name[name], key=lambda m: (m.version != current, m.version)):
            connected = replicas.get((name, model.version), [])
            versions.append({
                "version": model.version,
                "id": f"{name}:{model.version}",
                "is_current": model.version == current,
                "is_valid": model.is_valid,
                "input_type": model.input_type.readable_name,
                "container": model.container_name,
                "batch_size": model.batch_size,
                "replicas": connected,
                "health": _health(model, current, len(connected)),
            })
        model_entries.append({"name": name, "current_version": current, "versions": versions})
    app_entries: list[Json] = [
        {
            "name": app.name,
            "input_type": app.input_type.readable_name,
            "policy": app.policy,
            "latency_slo_micros": app.latency_slo_micros,
            "default_output": app.default_output,
            "linked_models": list[Json](linked),
        }
        for app, linked in apps
    ]
    return {"apps": app_entries, "models": model_entries}


def _health(model: ModelInfo, current: str | None, replicas: int) -> str:
    """``ok``: serving (current version, replicas connected); ``down``: current but none
    connected; ``idle``: an older version; ``invalid``: its containers were stopped."""
    if not model.is_valid:
        return "invalid"
    if model.version != current:
        return "idle"
    return "ok" if replicas else "down"
