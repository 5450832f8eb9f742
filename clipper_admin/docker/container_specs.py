"""What each container of a Docker cluster looks like: command, labels, environment, ports.

Pure functions (no Docker calls), so the host-network and bridge layouts can be checked without
an engine; ``DockerContainerManager`` runs the specs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from clipper_admin.container_manager import (
    ADMIN_TOKEN_ENV,
    CLIPPER_DOCKER_PORT_LABELS,
    CLIPPER_INTERNAL_MANAGEMENT_PORT,
    CLIPPER_INTERNAL_QUERY_PORT,
    CLIPPER_INTERNAL_REDIS_PORT,
    CLIPPER_INTERNAL_RPC_PORT,
    CLIPPER_MGMT_FRONTEND_CONTAINER_LABEL,
    CLIPPER_MODEL_CONTAINER_LABEL,
    CLIPPER_QUERY_FRONTEND_CONTAINER_LABEL,
    CLIPPER_QUERY_FRONTEND_ID_LABEL,
    REDIS_PASSWORD_ENV,
    REDIS_PERSISTENCE_ARGS,
    RPC_SECRET_ENV,
    create_model_container_label,
)

__all__ = [
    "CONTAINER_RESTART_POLICY",
    "ContainerSpec",
    "NetworkLayout",
    "management_frontend_spec",
    "model_replica_spec",
    "query_frontend_address",
    "query_frontend_spec",
    "redis_address_for_frontends",
    "redis_spec",
]

LOOPBACK_ADDRESSES: Final = frozenset({"localhost", "127.0.0.1"})
LOOPBACK_IP: Final = "127.0.0.1"
# Where the managed Redis keeps its append-only file inside its container (a named volume).
REDIS_DATA_DIR: Final = "/data"
# Every container of a cluster (Redis, both frontends, model replicas), as the local supervisor
# restarts every process: the engine starts an exited one again after a back-off (100 ms,
# doubling to 1 min, reset once it has run 10 s) and after an engine restart; a container
# stopped on purpose (``stop_all``, scaling down) stays down.
CONTAINER_RESTART_POLICY: Final[Mapping[str, str]] = {"Name": "unless-stopped"}


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """Arguments for one ``containers.run``; the name gets a random suffix when run."""

    name_prefix: str
    image: str
    labels: dict[str, str]
    command: list[str] | None = None
    environment: dict[str, str] = field(default_factory=dict)
    ports: dict[str, Any] = field(default_factory=dict)
    volumes: dict[str, dict[str, str]] = field(default_factory=dict)
    restart_policy: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class NetworkLayout:
    """How processes find each other: the host network, or a bridge with published ports."""

    host_network: bool
    public_hostname: str

    @property
    def bind_host(self) -> str:
        """Interface the frontends listen on inside their container."""
        if self.host_network and self.public_hostname in LOOPBACK_ADDRESSES:
            return LOOPBACK_IP
        return "0.0.0.0"

    def listen_port(self, internal: int, external: int) -> int:
        """On the host network a process takes its host port; on a bridge its internal one."""
        return external if self.host_network else internal

    def publish(self, internal: int, external: int) -> dict[str, Any]:
        """``ports`` entries (none on the host network); loopback-only for localhost clients."""
        if self.host_network:
            return {}
        if self.public_hostname in LOOPBACK_ADDRESSES:
            return {f"{internal}/tcp": (LOOPBACK_IP, external)}
        return {f"{internal}/tcp": external}


def redis_spec(
    layout: NetworkLayout, image: str, port: int, password: str, data_volume: str
) -> ContainerSpec:
    """The managed Redis: AOF in ``data_volume``, AUTH with ``password``, restarted by the engine.

    The password reaches the server through the environment (not the command line), and
    ``REDISCLI_AUTH`` lets the image's health check ping. The port label lets ``connect()`` find it.
    """
    labels = {CLIPPER_DOCKER_PORT_LABELS["redis"]: str(port)}
    listen = layout.listen_port(CLIPPER_INTERNAL_REDIS_PORT, port)
    server_args = ["--port", str(listen), "--bind", layout.bind_host, *REDIS_PERSISTENCE_ARGS,
                   "--dir", REDIS_DATA_DIR]  # fmt: skip
    command = ["sh", "-c", f'exec redis-server "$@" --requirepass "${REDIS_PASSWORD_ENV}"', "redis-server",
               *server_args]  # fmt: skip
    # REDIS_PORT is read by the image's HEALTHCHECK, REDISCLI_AUTH by its redis-cli.
    environment = {"REDIS_PORT": str(listen), REDIS_PASSWORD_ENV: password, "REDISCLI_AUTH": password}
    return ContainerSpec(
        "redis", image, labels, command, environment,
        ports=layout.publish(CLIPPER_INTERNAL_REDIS_PORT, port),
        volumes={data_volume: {"bind": REDIS_DATA_DIR, "mode": "rw"}},
        restart_policy=dict(CONTAINER_RESTART_POLICY),
    )  # fmt: skip


def redis_address_for_frontends(
    layout: NetworkLayout, redis_container_name: str, port: int
) -> tuple[str, int]:
    """Where the frontends reach the managed Redis: loopback, or its container name on a bridge."""
    if layout.host_network:
        return LOOPBACK_IP, port
    return redis_container_name, CLIPPER_INTERNAL_REDIS_PORT


def _secrets_environment(redis_password: str | None, admin_token: str | None = None) -> dict[str, str]:
    """Secrets go through the environment, never the command line (``ps``, ``docker inspect``
    of the command); ``connect()`` reads them back from the management frontend's."""
    environment = {}
    if redis_password is not None:
        environment[REDIS_PASSWORD_ENV] = redis_password
    if admin_token is not None:
        environment[ADMIN_TOKEN_ENV] = admin_token
    return environment


def _rpc_secret_environment(rpc_secret: str | None) -> dict[str, str]:
    """The cluster's RPC secret (``secure_rpc=True``): the query frontend then speaks CurveZMQ
    with keys derived from it and admits only containers that have it too."""
    return {} if rpc_secret is None else {RPC_SECRET_ENV: rpc_secret}


def query_frontend_address(
    layout: NetworkLayout, container_name: str, port: int, instance_port: int | None = None
) -> str:
    """Where the management frontend reads one query frontend's ``/metrics``: on the host network
    ``127.0.0.1`` and the port only that frontend serves (its instance port, or the REST port
    when it is alone); on a bridge its container name and internal REST port."""
    if layout.host_network:
        return f"{LOOPBACK_IP}:{instance_port or port}"
    return f"{container_name}:{CLIPPER_INTERNAL_QUERY_PORT}"


def management_frontend_spec(
    layout: NetworkLayout,
    image: str,
    redis_host: str,
    redis_port: int,
    port: int,
    redis_password: str | None = None,
    admin_token: str | None = None,
    query_frontend_addresses: Sequence[str] = (),
) -> ContainerSpec:
    """The management frontend; its dashboard samples ``query_frontend_addresses`` (each one
    served by one query frontend alone, see ``query_frontend_address``) and sums them."""
    listen = layout.listen_port(CLIPPER_INTERNAL_MANAGEMENT_PORT, port)
    command = [f"--redis_ip={redis_host}", f"--redis_port={redis_port}", f"--host={layout.bind_host}",
               f"--port={listen}"]  # fmt: skip
    if query_frontend_addresses:
        command.append(f"--query_frontend_address={','.join(query_frontend_addresses)}")
    labels = {
        CLIPPER_MGMT_FRONTEND_CONTAINER_LABEL: "",
        CLIPPER_DOCKER_PORT_LABELS["management"]: str(port),
    }
    environment = {
        "HEALTHCHECK_URL": f"http://{LOOPBACK_IP}:{listen}/admin/ping",
        **_secrets_environment(redis_password, admin_token),
    }
    ports = layout.publish(CLIPPER_INTERNAL_MANAGEMENT_PORT, port)
    return ContainerSpec("mgmt_frontend", image, labels, command, environment, ports,
                         restart_policy=dict(CONTAINER_RESTART_POLICY))  # fmt: skip


def query_frontend_spec(
    layout: NetworkLayout,
    image: str,
    redis_host: str,
    redis_port: int,
    port: int,
    rpc_port: int,
    cache_size: int,
    redis_password: str | None = None,
    rpc_secret: str | None = None,
    frontend_id: int = 0,
    instance_port: int | None = None,
) -> ContainerSpec:
    """Query frontend ``frontend_id``. With an ``instance_port`` (several query frontends, on the
    host network only) it shares the REST ``port`` with the others (``--reuse_port``) and
    serves ``instance_port`` alone; its health check reads that one."""
    if instance_port is not None and not layout.host_network:
        raise ValueError("query frontends share a REST port only on the host network")
    listen = layout.listen_port(CLIPPER_INTERNAL_QUERY_PORT, port)
    rpc_listen = layout.listen_port(CLIPPER_INTERNAL_RPC_PORT, rpc_port)
    command = [f"--redis_ip={redis_host}", f"--redis_port={redis_port}", f"--host={layout.bind_host}",
               f"--port={listen}", f"--rpc_host={layout.bind_host}", f"--rpc_service_port={rpc_listen}",
               f"--prediction_cache_size={cache_size}"]  # fmt: skip
    labels = {
        CLIPPER_QUERY_FRONTEND_CONTAINER_LABEL: "",
        CLIPPER_QUERY_FRONTEND_ID_LABEL: str(frontend_id),
        CLIPPER_DOCKER_PORT_LABELS["query_rest"]: str(port),
        CLIPPER_DOCKER_PORT_LABELS["query_rpc"]: str(rpc_port),
    }
    own_port = listen
    if instance_port is not None:
        command += ["--reuse_port=true", f"--instance_port={instance_port}"]
        labels[CLIPPER_DOCKER_PORT_LABELS["query_instance"]] = str(instance_port)
        own_port = instance_port
    environment = {
        "HEALTHCHECK_URL": f"http://{LOOPBACK_IP}:{own_port}/metrics",
        **_secrets_environment(redis_password),
        **_rpc_secret_environment(rpc_secret),
    }
    ports = {
        **layout.publish(CLIPPER_INTERNAL_QUERY_PORT, port),
        **layout.publish(CLIPPER_INTERNAL_RPC_PORT, rpc_port),
    }
    return ContainerSpec("query_frontend", image, labels, command, environment, ports,
                         restart_policy=dict(CONTAINER_RESTART_POLICY))  # fmt: skip


def model_replica_spec(
    layout: NetworkLayout,
    name: str,
    version: str,
    input_type: str,
    image: str,
    query_frontend_name: str,
    rpc_port: int,
    rpc_secret: str | None = None,
    frontend_id: int = 0,
) -> ContainerSpec:
    """A model replica of query frontend ``frontend_id`` (its RPC port), with the original's
    environment plus ``CLIPPER_PORT`` (and the cluster's ``CLIPPER_RPC_SECRET`` when it has one)."""
    if layout.host_network:
        clipper_ip, clipper_port = LOOPBACK_IP, rpc_port
    else:
        clipper_ip, clipper_port = query_frontend_name, CLIPPER_INTERNAL_RPC_PORT
    environment = {
        "CLIPPER_MODEL_NAME": name,
        "CLIPPER_MODEL_VERSION": version,
        "CLIPPER_IP": clipper_ip,
        "CLIPPER_PORT": str(clipper_port),
        "CLIPPER_INPUT_TYPE": input_type,
        **_rpc_secret_environment(rpc_secret),
    }
    labels = {
        CLIPPER_MODEL_CONTAINER_LABEL: create_model_container_label(name, version),
        CLIPPER_QUERY_FRONTEND_ID_LABEL: str(frontend_id),
    }
    return ContainerSpec(f"{name}_{version}", image, labels, environment=environment,
                         restart_policy=dict(CONTAINER_RESTART_POLICY))  # fmt: skip
