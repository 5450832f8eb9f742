"""The container-manager interface and the constants shared by every manager."""

from __future__ import annotations

import abc
import logging
import secrets
from typing import Any, Final

from clipper_admin.exceptions import ClipperException

__all__ = [
    "ADMIN_TOKEN_ENV",
    "CLIPPER_DOCKER_LABEL",
    "CLIPPER_DOCKER_PORT_LABELS",
    "CLIPPER_FLUENTD_CONFIG_LABEL",
    "CLIPPER_INTERNAL_FLUENTD_PORT",
    "CLIPPER_INTERNAL_MANAGEMENT_PORT",
    "CLIPPER_INTERNAL_METRIC_PORT",
    "CLIPPER_INTERNAL_QUERY_PORT",
    "CLIPPER_INTERNAL_REDIS_PORT",
    "CLIPPER_INTERNAL_RPC_PORT",
    "CLIPPER_METRIC_CONFIG_LABEL",
    "CLIPPER_MGMT_FRONTEND_CONTAINER_LABEL",
    "CLIPPER_MODEL_CONTAINER_LABEL",
    "CLIPPER_NAME_LABEL",
    "CLIPPER_QUERY_FRONTEND_CONTAINER_LABEL",
    "CLIPPER_QUERY_FRONTEND_ID_LABEL",
    "CONTAINERLESS_MODEL_IMAGE",
    "QUERY_FRONTEND_ADDRESS_ENV",
    "REDIS_PASSWORD_ENV",
    "REDIS_PERSISTENCE_ARGS",
    "RPC_SECRET_ENV",
    "ClusterAdapter",
    "ContainerManager",
    "create_model_container_label",
    "new_secret",
    "parse_model_container_label",
]

CLIPPER_INTERNAL_QUERY_PORT: Final = 1337
CLIPPER_INTERNAL_MANAGEMENT_PORT: Final = 1338
CLIPPER_INTERNAL_RPC_PORT: Final = 7000
CLIPPER_INTERNAL_METRIC_PORT: Final = 1390
CLIPPER_INTERNAL_REDIS_PORT: Final = 6379
CLIPPER_INTERNAL_FLUENTD_PORT: Final = 24224

CLIPPER_DOCKER_LABEL: Final = "ai.clipper.container.label"
CLIPPER_NAME_LABEL: Final = "ai.clipper.name"
CLIPPER_MODEL_CONTAINER_LABEL: Final = "ai.clipper.model_container.label"
CLIPPER_QUERY_FRONTEND_CONTAINER_LABEL: Final = "ai.clipper.query_frontend.label"
CLIPPER_MGMT_FRONTEND_CONTAINER_LABEL: Final = "ai.clipper.management_frontend.label"
# Which query frontend (0, 1, ...) a query-frontend or model container belongs to, when a
# cluster runs several (start_clipper(num_frontend_replicas=N)); absent means 0.
CLIPPER_QUERY_FRONTEND_ID_LABEL: Final = "ai.clipper.query_frontend.id"
CONTAINERLESS_MODEL_IMAGE: Final = "NO_CONTAINER"

# A managed Redis keeps every record in an append-only file, written before each reply and
# fsynced every second: a restarted Redis (SIGTERM or SIGKILL) comes back with all of them.
REDIS_PERSISTENCE_ARGS: Final = ("--appendonly", "yes", "--appendfsync", "everysec", "--save", "")
# Environment variables the frontends read (clipper_core.settings): Redis AUTH, admin API token,
# the query frontends whose /metrics the management frontend's dashboard samples.
REDIS_PASSWORD_ENV: Final = "REDIS_PASSWORD"
ADMIN_TOKEN_ENV: Final = "CLIPPER_ADMIN_TOKEN"
QUERY_FRONTEND_ADDRESS_ENV: Final = "CLIPPER_QUERY_FRONTEND_ADDRESS"
# The cluster's RPC secret (secure_rpc=True), read by the query frontend and model containers.
RPC_SECRET_ENV: Final = "CLIPPER_RPC_SECRET"


def new_secret() -> str:
    """A random password or token (192 bits, URL-safe text)."""
    return secrets.token_urlsafe(24)

CLIPPER_DOCKER_PORT_LABELS: Final = {
    "redis": "ai.clipper.redis.port",
    "query_rest": "ai.clipper.query_frontend.query.port",
    "query_rpc": "ai.clipper.query_frontend.rpc.port",
    # A query frontend's own REST listener (--instance_port) when several share the REST port.
    "query_instance": "ai.clipper.query_frontend.instance.port",
    "management": "ai.clipper.management.port",
    "metric": "ai.clipper.metric.port",
    "fluentd": "ai.clipper.fluentd.port",
}
CLIPPER_METRIC_CONFIG_LABEL: Final = "ai.clipper.metric.config"
CLIPPER_FLUENTD_CONFIG_LABEL: Final = "ai.clipper.fluentd.config"


def create_model_container_label(name: str, version: str) -> str:
    """``<name>_<version>``: names are DNS-1123, so ``_`` is a safe separator."""
    return f"{name}_{version}"


def parse_model_container_label(label: str) -> tuple[str, str]:
    parts = label.split("_")
    if len(parts) != 2:
        raise ClipperException(f"Unable to parse model container label {label}")
    return parts[0], parts[1]


class ClusterAdapter(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Prefixes every message with ``[<cluster_name>] ``."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        extra = self.extra or {}
        return f"[{extra.get('cluster_name', '')}] {msg}", kwargs


class ContainerManager(abc.ABC):
    """What ClipperConnection needs from a cluster back end (local, Docker, Kubernetes).

    Every concrete manager also exposes ``cluster_identifier`` (used in logs and image tags).
    """

    cluster_identifier: str
    # Sent as ``Authorization: Bearer <token>`` on /admin/* when set (the management frontend's
    # --admin_token); a manager takes it from its options or from the running cluster.
    admin_token: str | None = None

    @abc.abstractmethod
    def start_clipper(
        self,
        query_frontend_image: str,
        mgmt_frontend_image: str,
        frontend_exporter_image: str,
        cache_size: int,
        qf_http_thread_pool_size: int,
        qf_http_timeout_request: int,
        qf_http_timeout_content: int,
        num_frontend_replicas: int,
    ) -> None:
        """Bring up Redis and both frontends; leaves the manager connected."""

    def build_model(
        self,
        name: str,
        version: str,
        model_data_path: str,
        base_image: str,
        container_registry: str | None = None,
        pkgs_to_install: list[str] | None = None,
    ) -> str:
        """Package a model directory so that ``deploy_model`` can run it; return the image name.

        ``ClipperConnection.build_model`` validates ``name``/``version`` and delegates here. The
        Docker manager builds (and pushes) an image ``[<registry>/]<cluster>-<name>:<version>``
        ``FROM base_image`` with ``model_data_path`` copied to ``/model/`` and ``pkgs_to_install``
        pip-installed. The local manager copies the directory into its cluster directory and puts
        ``pkgs_to_install`` in a per-model virtual environment. ``model_data_path`` may be deleted
        by the caller once this returns. A manager that cannot build raises NotImplementedError.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot build model images")

    @abc.abstractmethod
    def connect(self) -> None:
        """Attach to an existing cluster (discover its addresses)."""

    @abc.abstractmethod
    def deploy_model(
        self, name: str, version: str, input_type: str, image: str, num_replicas: int = 1
    ) -> None:
        """Start ``num_replicas`` replicas of a model version."""

    @abc.abstractmethod
    def get_num_replicas(self, name: str, version: str) -> int:
        """Number of running replicas of a model version."""

    @abc.abstractmethod
    def set_num_replicas(
        self, name: str, version: str, input_type: str, image: str, num_replicas: int
    ) -> None:
        """Grow or shrink a model version's replicas to ``num_replicas``."""

    @abc.abstractmethod
    def get_logs(self, logging_dir: str) -> list[str]:
        """Write every process's / container's log under ``logging_dir``; return the paths."""

    @abc.abstractmethod
    def stop_models(self, models: dict[str, list[str]]) -> None:
        """Stop every replica of each listed ``{name: [versions]}``."""

    @abc.abstractmethod
    def stop_all_model_containers(self) -> None:
        """Stop every model replica of the cluster."""

    @abc.abstractmethod
    def stop_all(self, graceful: bool = True) -> None:
        """Stop everything this cluster runs."""

    def replica_supervision(self) -> list[dict[str, Any]]:
        """Replica processes the manager restarts itself, with their ``state`` and ``restarts``
        (see ``LocalContainerManager``); none for managers that leave this to an orchestrator."""
        return []

    @abc.abstractmethod
    def get_admin_addr(self) -> str:
        """``host:port`` of the management frontend."""

    @abc.abstractmethod
    def get_query_addr(self) -> str:
        """``host:port`` of the query frontend."""

    def get_query_frontend_addrs(self) -> list[str]:
        """``host:port`` of each query frontend that only that process serves (its ``/metrics``
        and ``/healthz``); a manager running one query frontend lists ``get_query_addr()``."""
        return [self.get_query_addr()]

    @abc.abstractmethod
    def get_metric_addr(self) -> str:
        """``host:port`` where metrics are scraped."""
