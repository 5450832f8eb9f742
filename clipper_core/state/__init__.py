"""Clipper's Redis state: schema, typed records, async accessors and change events."""

from clipper_core.state.records import AppInfo, ContainerInfo, ModelId, ModelInfo
from clipper_core.state.schema import DEFAULT_BATCH_SIZE, DEFAULT_SELECTION_POLICY, Db
from clipper_core.state.store import RedisSettings, StateStore
from clipper_core.state.watch import Resync, StateChange, watch_changes

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_SELECTION_POLICY",
    "AppInfo",
    "ContainerInfo",
    "Db",
    "ModelId",
    "ModelInfo",
    "RedisSettings",
    "Resync",
    "StateChange",
    "StateStore",
    "watch_changes",
]
