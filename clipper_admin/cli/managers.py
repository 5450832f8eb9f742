"""The container manager a ``clipper`` command drives, built from its global options."""

from __future__ import annotations

import enum
import importlib
from dataclasses import dataclass
from typing import Any

from clipper_admin.clipper_admin import ClipperConnection
from clipper_admin.container_manager import ContainerManager
from clipper_admin.exceptions import ClipperException
from clipper_admin.local import LocalContainerManager

__all__ = ["ClusterOptions", "ManagerKind", "StartPorts", "connect", "make_manager"]


class ManagerKind(enum.StrEnum):
    LOCAL = "local"
    DOCKER = "docker"
    KUBERNETES = "kubernetes"


@dataclass(frozen=True, slots=True)
class StartPorts:
    """Preferred ports of a new cluster (``clipper start``); a taken one is replaced and logged."""

    query: int = 1337
    management: int = 1338
    rpc: int = 7000
    redis: int = 6379


@dataclass(frozen=True, slots=True)
class ClusterOptions:
    """The global options: which manager, which cluster, and the manager's own settings."""

    manager: ManagerKind = ManagerKind.LOCAL
    cluster_name: str = "default-cluster"
    clipper_home: str | None = None
    host_network: bool = False
    docker_network: str = "clipper_network"
    namespace: str = "default"
    kube_config: str | None = None
    admin_token: str | None = None


def make_manager(options: ClusterOptions, ports: StartPorts | None = None) -> ContainerManager:
    """A manager for ``options``; ``ports`` only when starting (else the cluster's are found)."""
    ports = ports or StartPorts()
    if options.manager is ManagerKind.LOCAL:
        return LocalContainerManager(
            cluster_name=options.cluster_name, clipper_home=options.clipper_home,
            query_port=ports.query, management_port=ports.management, rpc_port=ports.rpc,
            redis_port=ports.redis, admin_token=options.admin_token,
        )
    if options.manager is ManagerKind.DOCKER:
        docker_manager = _lazy("DockerContainerManager")
        return docker_manager(  # type: ignore[no-any-return]
            cluster_name=options.cluster_name,
            docker_network="host" if options.host_network else options.docker_network,
            clipper_query_port=ports.query, clipper_management_port=ports.management,
            clipper_rpc_port=ports.rpc, redis_port=ports.redis, admin_token=options.admin_token,
        )
    kubernetes_manager = _lazy("KubernetesContainerManager")
    return kubernetes_manager(  # type: ignore[no-any-return]
        cluster_name=options.cluster_name, namespace=options.namespace,
        kube_config_file=options.kube_config, use_host_network=options.host_network,
        clipper_query_port=ports.query, clipper_management_port=ports.management,
        clipper_rpc_port=ports.rpc, redis_port=ports.redis,
    )


def _lazy(name: str) -> Any:
    # The Docker and Kubernetes SDKs load only for the commands that use them.
    return getattr(importlib.import_module("clipper_admin"), name)


def connect(options: ClusterOptions) -> ClipperConnection:
    """A connection to the running cluster ``options`` names.

    Raises:
        ClipperException: no such cluster is running (the message says how to start one).
    """
    manager = make_manager(options)
    if isinstance(manager, LocalContainerManager) and not manager.paths.record_file.exists():
        raise ClipperException(
            f"No local cluster {options.cluster_name!r} is running (no {manager.paths.record_file}); "
            "start one with `clipper start`"
        )
    conn = ClipperConnection(manager)
    conn.connect()
    return conn
