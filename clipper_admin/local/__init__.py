"""The embedded local cluster: Redis, both frontends and model replicas as local processes."""

from __future__ import annotations

from clipper_admin.local.local_container_manager import LocalContainerManager

__all__ = ["LocalContainerManager"]
