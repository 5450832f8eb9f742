"""Clipper's Redis state: schema, typed records, async accessors and change events."""

from clipper_core.rpc.messages import InputType
from clipper_core.state.records import AppInfo, ContainerInfo, ModelId, ModelInfo
from clipper_core.state.schema import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_SELECTION_POLICY,
    FORBIDDEN_NAME_CHARS,
    Db,
)
from clipper_core.state.store import RedisSettings, StateStore
from clipper_core.state.watch import Resync, StateChange, watch_changes

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_SELECTION_POLICY",
    "FORBIDDEN_NAME_CHARS",
    "AppInfo",
    "ContainerInfo",
    "Db",
    "InputType",
    "ModelId",
    "ModelInfo",
    "RedisSettings",
    "Resync",
    "StateChange",
    "StateStore",
    "watch_changes",
]
