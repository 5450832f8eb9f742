"""Clipper's Redis state: schema, typed records, async accessors and change events."""

from clipper_core.rpc.messages import InputType
from clipper_core.state.names import invalid_name_message, is_dns1123_subdomain
from clipper_core.state.records import AppInfo, ContainerInfo, ModelId, ModelInfo, PolicyState
from clipper_core.state.schema import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_CONFIDENCE_THRESHOLD,
    DEFAULT_SELECTION_POLICY,
    FORBIDDEN_NAME_CHARS,
    SELECTION_POLICIES,
    Db,
    SelectionPolicyName,
)
from clipper_core.state.store import StateStore
from clipper_core.state.watch import Barrier, KeyspaceWatch, Resync, StateChange, watch_changes

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_CONFIDENCE_THRESHOLD",
    "DEFAULT_SELECTION_POLICY",
    "FORBIDDEN_NAME_CHARS",
    "SELECTION_POLICIES",
    "AppInfo",
    "Barrier",
    "ContainerInfo",
    "Db",
    "InputType",
    "KeyspaceWatch",
    "ModelId",
    "ModelInfo",
    "PolicyState",
    "Resync",
    "SelectionPolicyName",
    "StateChange",
    "StateStore",
    "invalid_name_message",
    "is_dns1123_subdomain",
    "watch_changes",
]
