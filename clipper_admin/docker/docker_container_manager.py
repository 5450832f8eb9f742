"""DockerContainerManager: a Clipper cluster (Redis, both frontends, model replicas) in Docker.

Deliberate differences from the original (documented in the README):
- ``docker_network="host"`` is supported: nothing is published, every process gets its port by
  flag, and model containers reach the query frontend at ``127.0.0.1:<rpc port>``.
- No Prometheus, exporter or fluentd containers: the query frontend serves Prometheus text itself
  at ``/metrics``, so ``get_metric_addr()`` is the query address and ``use_centralized_log=True``
  is refused.
- Removed replicas, ``stop_*`` and ``stop_all`` delete the containers (not just stop them);
  ``stop_all`` also deletes the network when this library created it and nothing else uses it.
- Missing Clipper images are built from ``dockerfiles/`` (see ``images.ensure_image``).
- Every container restarts ``unless-stopped`` (the original set no restart policy), as the local
  supervisor restarts every process; the management frontend gets every query frontend's
  address (``--query_frontend_address``) for its dashboard.
- ``num_frontend_replicas=N`` runs N query-frontend containers on the host network sharing
  the REST port (``SO_REUSEPORT``), each with its own RPC port, instance port and replicas of
  every model, as the original's Kubernetes manager did with pods.
"""

from __future__ import annotations

import copy
import logging
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import docker
import docker.errors
from docker.models.containers import Container

from clipper_admin._validation import validate_versioned_model_name
from clipper_admin.container_manager import (
    ADMIN_TOKEN_ENV,
    CLIPPER_DOCKER_LABEL,
    CLIPPER_DOCKER_PORT_LABELS,
    CLIPPER_MGMT_FRONTEND_CONTAINER_LABEL,
    CLIPPER_MODEL_CONTAINER_LABEL,
    CLIPPER_QUERY_FRONTEND_CONTAINER_LABEL,
    CLIPPER_QUERY_FRONTEND_ID_LABEL,
    REDIS_PASSWORD_ENV,
    RPC_SECRET_ENV,
    ClusterAdapter,
    ContainerManager,
    create_model_container_label,
    new_secret,
    parse_model_container_label,
)
from clipper_admin.docker import docker_api_utils as api
from clipper_admin.docker.container_specs import (
    ContainerSpec,
    NetworkLayout,
    management_frontend_spec,
    model_replica_spec,
    query_frontend_address,
    query_frontend_spec,
    redis_address_for_frontends,
    redis_spec,
)
from clipper_admin.docker.images import build_model_image, clipper_image, ensure_image, push_image
from clipper_admin.exceptions import ClipperException

__all__ = ["DockerContainerManager"]

logger = logging.getLogger(__name__)

HOST_NETWORK: Final = "host"
# Marks networks this library created, so stop_all deletes only those.
CLIPPER_NETWORK_LABEL: Final = "ai.clipper.network"
NAME_SUFFIX_MAX: Final = 100000
NAME_ATTEMPTS: Final = 5


@dataclass(frozen=True, slots=True)
class _Frontend:
    """One query frontend's ports and container name (as its labels record them)."""

    rpc_port: int
    instance_port: int | None
    container_name: str


class DockerContainerManager(ContainerManager):
    """Runs a Clipper cluster as Docker containers labelled with the cluster name.

    Args:
        cluster_name: value of the ``ai.clipper.container.label`` label on every container.
        docker_ip_address: host name clients use to reach the published (or host) ports.
        use_centralized_log: must be False; fluentd log collection is not supported.
        fluentd_port: accepted for compatibility; unused.
        clipper_query_port, clipper_management_port, clipper_rpc_port: preferred host ports;
            a taken port is replaced by a free one, and ``connect()`` recovers them from labels.
        redis_ip, redis_port: an external Redis; when ``redis_ip`` is None a Redis container is
            started (on ``redis_port`` or a free port).
        prometheus_port: accepted for compatibility; unused (metrics live at the query frontend).
        docker_network: the bridge network to create and use, or ``"host"``.
        extra_container_kwargs: extra ``containers.run`` arguments for every container; its
            ``labels`` are added to every container.
        redis_password: the password of an external Redis (``redis_ip``). A managed Redis gets a
            generated one; both frontends receive it as ``REDIS_PASSWORD``.
        admin_token: when given, the management API requires ``Authorization: Bearer <token>``
            (``CLIPPER_ADMIN_TOKEN`` of its container); ``ClipperConnection`` sends it, and
            ``connect()`` from another process reads it back from that container.
        secure_rpc: generate an RPC secret at ``start_clipper`` (``CLIPPER_RPC_SECRET`` of the
            query frontend and of every model container started afterwards): the RPC port then
            speaks CurveZMQ and admits only this cluster's containers. ``connect()`` reads it
            back from the query frontend's container.
    """

    def __init__(
        self,
        cluster_name: str = "default-cluster",
        docker_ip_address: str = "localhost",
        use_centralized_log: bool = False,
        fluentd_port: int = 24224,
        clipper_query_port: int = 1337,
        clipper_management_port: int = 1338,
        clipper_rpc_port: int = 7000,
        redis_ip: str | None = None,
        redis_port: int = 6379,
        prometheus_port: int = 9090,
        docker_network: str = "clipper_network",
        extra_container_kwargs: dict[str, Any] | None = None,
        redis_password: str | None = None,
        admin_token: str | None = None,
        secure_rpc: bool = False,
    ) -> None:
        if use_centralized_log:
            raise ClipperException(
                "Centralized logging (fluentd) is not supported by this DockerContainerManager; "
                "use get_logs() / ClipperConnection.get_clipper_logs() instead"
            )
        self.cluster_name = cluster_name
        self.cluster_identifier = cluster_name
        self.public_hostname = docker_ip_address
        self.centralize_log = False
        self.fluentd_port = fluentd_port
        self.clipper_query_port = clipper_query_port
        self.clipper_management_port = clipper_management_port
        self.clipper_rpc_port = clipper_rpc_port
        self.redis_ip = redis_ip
        self.redis_port = redis_port
        self.external_redis = redis_ip is not None
        self.redis_password = redis_password
        self.admin_token = admin_token
        self.secure_rpc = secure_rpc
        self.rpc_secret: str | None = None
        self._frontends: list[_Frontend] = []  # by frontend id; filled by connect()
        self.prometheus_port = prometheus_port
        self.docker_network = docker_network
        self.redis_image = clipper_image("redis")
        self._docker_client: docker.DockerClient | None = None
        self.logger = ClusterAdapter(logger, {"cluster_name": cluster_name})

        kwargs = copy.deepcopy(extra_container_kwargs or {})
        self.common_labels: dict[str, str] = dict(kwargs.pop("labels", None) or {})
        self.common_labels[CLIPPER_DOCKER_LABEL] = cluster_name
        if self.is_host_network:
            kwargs["network_mode"] = HOST_NETWORK
        else:
            kwargs["network"] = docker_network
        # init: Python as PID 1 ignores SIGTERM, so without it every stop waits for the timeout.
        kwargs.setdefault("init", True)
        kwargs.setdefault("log_config", {"type": "json-file"})
        kwargs["detach"] = True
        self.extra_container_kwargs = kwargs

    @property
    def docker_client(self) -> docker.DockerClient:
        """The engine client, connected on first use so a manager can be configured without one."""
        if self._docker_client is None:
            self._docker_client = api.connect_to_engine()
        return self._docker_client

    @property
    def is_host_network(self) -> bool:
        return self.docker_network == HOST_NETWORK

    @property
    def _build_network_mode(self) -> str | None:
        # An engine without a bridge can only give RUN steps network access through the host.
        return HOST_NETWORK if self.is_host_network else None

    @property
    def _layout(self) -> NetworkLayout:
        return NetworkLayout(self.is_host_network, self.public_hostname)

    # ------------------------------------------------------------------ cluster lifecycle

    def start_clipper(
        self,
        query_frontend_image: str | None = None,
        mgmt_frontend_image: str | None = None,
        frontend_exporter_image: str | None = None,
        cache_size: int = 33554432,
        qf_http_thread_pool_size: int = 1,
        qf_http_timeout_request: int = 5,
        qf_http_timeout_content: int = 300,
        num_frontend_replicas: int = 1,
    ) -> None:
        """Start Redis (unless external), the management frontend and ``num_frontend_replicas``
        query frontends; wait for health.

        Several query frontends need ``docker_network="host"``: they share the REST port
        (``SO_REUSEPORT``), each with its own RPC port and instance port (``connect()``
        recovers them from labels), and ``set_num_replicas(n)`` runs n replicas per frontend.
        ``frontend_exporter_image`` and the ``qf_http_*`` settings are accepted for
        compatibility and unused. Leaves the manager connected.

        Raises:
            ClipperException: the cluster exists already, an image is unavailable, or a
                container did not become healthy (with its last log lines).
        """
        if not isinstance(num_frontend_replicas, int) or num_frontend_replicas < 1:
            raise ClipperException(
                f"num_frontend_replicas must be a positive integer, not {num_frontend_replicas!r}"
            )
        if num_frontend_replicas > 1 and not self.is_host_network:
            raise ClipperException(
                "Several query frontends share one REST port (SO_REUSEPORT), which needs "
                "DockerContainerManager(docker_network='host'); on a bridge network each would "
                "need a port of its own. Use num_frontend_replicas=1 or the host network."
            )
        query_frontend_image = query_frontend_image or clipper_image("query_frontend")
        mgmt_frontend_image = mgmt_frontend_image or clipper_image("management_frontend")
        if self._cluster_containers():
            raise ClipperException(
                f"Cluster {self.cluster_name} cannot be started because it already exists. "
                "Please use ClipperConnection.connect() to connect to it."
            )
        if not self.is_host_network:
            api.create_network(self.docker_client, self.docker_network, {CLIPPER_NETWORK_LABEL: "true"})
        images = [query_frontend_image, mgmt_frontend_image]
        if not self.external_redis:
            images.append(self.redis_image)
        for image in images:
            ensure_image(self.docker_client, image, self._build_network_mode)
        taken = self._choose_ports()
        frontend_ports = self._choose_frontend_ports(num_frontend_replicas, taken)

        layout = self._layout
        if self.external_redis:
            assert self.redis_ip is not None
            redis_host, redis_port = self.redis_ip, self.redis_port
        else:
            self.logger.info("Starting managed Redis instance in Docker")
            self.redis_password = new_secret()
            redis = self._run_healthy(
                redis_spec(layout, self.redis_image, self.redis_port, self.redis_password,
                           self._create_redis_volume())
            )  # fmt: skip
            redis_host, redis_port = redis_address_for_frontends(layout, redis.name, self.redis_port)
        self.rpc_secret = new_secret() if self.secure_rpc else None
        frontends = [
            self._run(
                query_frontend_spec(
                    layout, query_frontend_image, redis_host, redis_port,
                    self.clipper_query_port, rpc_port, cache_size, self.redis_password,
                    self.rpc_secret, frontend_id=i, instance_port=instance_port,
                )
            )
            for i, (rpc_port, instance_port) in enumerate(frontend_ports)
        ]  # fmt: skip
        # The query frontends run first: on a bridge the dashboard reaches them by container name.
        metrics_sources = [
            query_frontend_address(layout, container.name, self.clipper_query_port, instance_port)
            for container, (_, instance_port) in zip(frontends, frontend_ports, strict=True)
        ]
        management = self._run(
            management_frontend_spec(
                layout, mgmt_frontend_image, redis_host, redis_port, self.clipper_management_port,
                self.redis_password, self.admin_token, metrics_sources,
            )
        )  # fmt: skip
        # Each frontend's health check reads its own port (the instance port when they share one).
        api.wait_for_containers([management, *frontends])
        self.connect()

    def _create_redis_volume(self) -> str:
        """A named volume for the managed Redis's append-only file, labelled with the cluster so
        ``stop_all`` removes it (it outlives restarts of the Redis container, not the cluster)."""
        name = f"clipper-redis-{self.cluster_name}-{random.randint(0, NAME_SUFFIX_MAX)}"
        self.docker_client.volumes.create(name, labels={CLIPPER_DOCKER_LABEL: self.cluster_name})
        return name

    def _choose_ports(self) -> list[int]:
        """Keep each requested host port if it is free, else take another free one; return them."""
        taken: list[int] = []
        for attr in ("redis_port", "clipper_management_port", "clipper_query_port", "clipper_rpc_port"):
            if attr == "redis_port" and self.external_redis:
                continue
            port = api.find_unbound_port(getattr(self, attr), exclude=taken)
            taken.append(port)
            setattr(self, attr, port)
        return taken

    def _choose_frontend_ports(self, count: int, taken: list[int]) -> list[tuple[int, int | None]]:
        """``(rpc port, instance port)`` per query frontend; one frontend has no instance port."""
        if count == 1:
            return [(self.clipper_rpc_port, None)]
        ports: list[tuple[int, int | None]] = []
        for i in range(count):
            rpc_port = self.clipper_rpc_port if i == 0 else api.find_unbound_port(
                self.clipper_rpc_port + i, increment=True, exclude=taken)
            taken.append(rpc_port)
            instance_port = api.find_unbound_port(exclude=taken)
            taken.append(instance_port)
            ports.append((rpc_port, instance_port))
        return ports

    def _run(self, spec: ContainerSpec) -> Container:
        """Run ``spec`` named ``<prefix>-<rand>``, drawing a new suffix if the name is taken."""
        run_kwargs = dict(self.extra_container_kwargs)
        run_kwargs["labels"] = {**self.common_labels, **spec.labels}
        if spec.command is not None:
            run_kwargs["command"] = spec.command
        if spec.environment:
            run_kwargs["environment"] = spec.environment
        if spec.ports:
            run_kwargs["ports"] = spec.ports
        if spec.volumes:
            run_kwargs["volumes"] = spec.volumes
        if spec.restart_policy is not None:
            run_kwargs["restart_policy"] = spec.restart_policy
        for attempt in range(NAME_ATTEMPTS):
            name = f"{spec.name_prefix}-{random.randint(0, NAME_SUFFIX_MAX)}"
            try:
                return api.run_container(self.docker_client, spec.image, name=name, **run_kwargs)
            except docker.errors.APIError as e:
                if e.status_code != 409 or attempt == NAME_ATTEMPTS - 1:
                    raise ClipperException(f"Could not start container from {spec.image}: {e}") from e
        raise AssertionError("unreachable")

    def _run_healthy(self, spec: ContainerSpec) -> Container:
        container = self._run(spec)
        api.wait_for_containers([container])
        return container

    def connect(self) -> None:
        """Recover the cluster's ports from the labels of its running containers."""
        containers = self._cluster_containers()
        if not containers:
            raise ClipperException(
                f"No running Clipper cluster named {self.cluster_name} found in Docker; "
                "start one with ClipperConnection.start_clipper()"
            )
        labels: dict[str, str] = {}
        frontends: dict[int, _Frontend] = {}
        ports = CLIPPER_DOCKER_PORT_LABELS
        for container in containers:
            labels.update(container.labels)
            if CLIPPER_MGMT_FRONTEND_CONTAINER_LABEL in container.labels:
                self._adopt_secrets(container)
            if CLIPPER_QUERY_FRONTEND_CONTAINER_LABEL in container.labels:
                self.rpc_secret = _environment(container).get(RPC_SECRET_ENV)
                own = container.labels
                instance = own.get(ports["query_instance"])
                frontends[int(own.get(CLIPPER_QUERY_FRONTEND_ID_LABEL, "0"))] = _Frontend(
                    int(own[ports["query_rpc"]]), None if instance is None else int(instance),
                    container.name,
                )
        self._frontends = [frontends[i] for i in sorted(frontends)]
        if self._frontends:
            labels[ports["query_rpc"]] = str(self._frontends[0].rpc_port)
        if ports["redis"] in labels:
            self.redis_port = int(labels[ports["redis"]])
        try:
            self.clipper_management_port = int(labels[ports["management"]])
            self.clipper_query_port = int(labels[ports["query_rest"]])
            self.clipper_rpc_port = int(labels[ports["query_rpc"]])
        except KeyError as e:
            raise ClipperException(
                f"Cluster {self.cluster_name} is incomplete: no container carries label {e}"
            ) from e

    def _adopt_secrets(self, management_frontend: Container) -> None:
        """The Redis password and admin token the cluster was started with (its environment)."""
        env = _environment(management_frontend)
        self.redis_password = env.get(REDIS_PASSWORD_ENV, self.redis_password)
        self.admin_token = env.get(ADMIN_TOKEN_ENV, self.admin_token)

    # ------------------------------------------------------------------ model replicas

    def deploy_model(
        self, name: str, version: str, input_type: str, image: str, num_replicas: int = 1
    ) -> None:
        """Start ``num_replicas`` containers of ``image`` for model ``name:version``."""
        self.set_num_replicas(name, str(version), input_type, image, num_replicas)

    def _model_filters(self, name: str | None = None, version: str | None = None) -> dict[str, Any]:
        model_label = (
            f"{CLIPPER_MODEL_CONTAINER_LABEL}={create_model_container_label(name, str(version))}"
            if name is not None
            else CLIPPER_MODEL_CONTAINER_LABEL
        )
        return {"label": [f"{CLIPPER_DOCKER_LABEL}={self.cluster_name}", model_label]}

    def _get_replicas(self, name: str, version: str) -> list[Container]:
        return api.list_containers(self.docker_client, self._model_filters(name, version))

    def _replicas_by_frontend(self, name: str, version: str) -> list[list[Container]]:
        """The containers of ``name:version``, per query frontend (index = frontend id)."""
        if not self._frontends:
            self.connect()
        groups: list[list[Container]] = [[] for _ in self._frontends] or [[]]
        for container in self._get_replicas(name, version):
            frontend = int(container.labels.get(CLIPPER_QUERY_FRONTEND_ID_LABEL, "0"))
            if frontend < len(groups):
                groups[frontend].append(container)
        return groups

    def get_num_replicas(self, name: str, version: str) -> int:
        """Number of running containers of ``name:version`` in this cluster; with several query
        frontends, per frontend (the fewest any of them has)."""
        validate_versioned_model_name(name, str(version))
        return min(len(group) for group in self._replicas_by_frontend(name, str(version)))

    def set_num_replicas(
        self, name: str, version: str, input_type: str, image: str, num_replicas: int
    ) -> None:
        """Add containers up to, or delete containers down to, ``num_replicas`` (per query
        frontend when the cluster has several).

        Raises:
            ClipperException: a new container did not become healthy (with its last log
                lines); every container this call added is deleted.
        """
        version = str(version)
        validate_versioned_model_name(name, version)
        groups = self._replicas_by_frontend(name, version)
        added: list[Container] = []
        removed: list[Container] = []
        for frontend, replicas in enumerate(groups):
            current = len(replicas)
            where = f" of query frontend {frontend}" if len(groups) > 1 else ""
            if current < num_replicas:
                self.logger.info("Found %d replicas for %s:%s%s. Adding %d", current, name, version,
                                 where, num_replicas - current)
                if not added:
                    ensure_image(self.docker_client, image, self._build_network_mode)
                added += [self._add_replica(name, version, input_type, image, frontend)
                          for _ in range(num_replicas - current)]
            elif current > num_replicas:
                self.logger.info("Found %d replicas for %s:%s%s. Removing %d", current, name, version,
                                 where, current - num_replicas)
                removed += replicas[num_replicas:]
        if removed:
            api.remove_containers(removed)
        if added:
            try:
                api.wait_for_containers(added)
            except ClipperException:
                # As the local manager: a failed scale-up leaves none of its new replicas
                # (with the restart policy one that crashed would otherwise loop).
                api.remove_containers(added, graceful=False)
                raise

    def _add_replica(
        self, name: str, version: str, input_type: str, image: str, frontend: int = 0
    ) -> Container:
        if frontend >= len(self._frontends):
            self.logger.warning("No Clipper query frontend found.")
            raise ClipperException("No Clipper query frontend to attach model container to")
        target = self._frontends[frontend]
        return self._run(
            model_replica_spec(
                self._layout, name, version, input_type, image, target.container_name,
                target.rpc_port, self.rpc_secret, frontend_id=frontend,
            )
        )

    # ------------------------------------------------------------------ image building

    def build_model(
        self,
        name: str,
        version: str,
        model_data_path: str,
        base_image: str,
        container_registry: str | None = None,
        pkgs_to_install: list[str] | None = None,
    ) -> str:
        """Build ``[<registry>/]<cluster>-<name>:<version>`` from ``base_image`` plus the model.

        The image is ``FROM base_image``, then ``pip install`` of ``pkgs_to_install`` (if any),
        then the model directory copied to ``/model/``. It is pushed only when
        ``container_registry`` is given. A missing Clipper base image is built first.

        Returns:
            The image tag.

        Raises:
            ClipperException: the build or the push failed (with the build's last lines).
        """
        validate_versioned_model_name(name, str(version))
        image = f"{self.cluster_identifier}-{name}:{version}"
        if container_registry is not None:
            image = f"{container_registry}/{image}"
        ensure_image(self.docker_client, base_image, self._build_network_mode)
        self.logger.info("Building model Docker image with model data from %s", model_data_path)
        build_model_image(
            self.docker_client, image, model_data_path, base_image, pkgs_to_install, self._build_network_mode
        )
        if container_registry is not None:
            self.logger.info("Pushing model Docker image to %s", image)
            push_image(self.docker_client, image)
        return image

    # ------------------------------------------------------------------ logs, stopping, addresses

    def _cluster_containers(self, include_stopped: bool = False) -> list[Container]:
        return api.list_containers(
            self.docker_client, {"label": f"{CLIPPER_DOCKER_LABEL}={self.cluster_name}"}, include_stopped
        )

    def get_logs(self, logging_dir: str) -> list[str]:
        """Write ``<container name>.log`` (stdout and stderr) per cluster container; return paths."""
        directory = Path(os.path.abspath(os.path.expanduser(logging_dir)))
        if not directory.exists():
            directory.mkdir(parents=True)
            self.logger.info("Created logging directory: %s", directory)
        paths = []
        for container in self._cluster_containers(include_stopped=True):
            path = directory / f"{container.name}.log"
            path.write_bytes(container.logs(stdout=True, stderr=True))
            paths.append(str(path))
        return paths

    def stop_models(self, models: dict[str, list[str]]) -> None:
        """Delete every replica of each listed ``{name: [versions]}``."""
        wanted = {(name, str(v)) for name, versions in models.items() for v in versions}
        containers = api.list_containers(self.docker_client, self._model_filters(), include_stopped=True)
        api.remove_containers(
            [
                c
                for c in containers
                if parse_model_container_label(c.labels[CLIPPER_MODEL_CONTAINER_LABEL]) in wanted
            ]
        )

    def stop_all_model_containers(self) -> None:
        """Delete every model container of this cluster."""
        api.remove_containers(
            api.list_containers(self.docker_client, self._model_filters(), include_stopped=True)
        )

    def stop_all(self, graceful: bool = True) -> None:
        """Stop (or kill) and delete every container of this cluster, then its unused network."""
        api.remove_containers(self._cluster_containers(include_stopped=True), graceful=graceful)
        cluster_label = {"label": f"{CLIPPER_DOCKER_LABEL}={self.cluster_name}"}
        for volume in self.docker_client.volumes.list(filters=cluster_label):
            try:
                volume.remove()
            except docker.errors.APIError as e:
                self.logger.warning("Redis data volume %s kept: %s", volume.name, e)
        if self.is_host_network:
            return
        for network in self.docker_client.networks.list(names=[self.docker_network]):
            if network.name != self.docker_network:  # the engine's name filter matches substrings
                continue
            network.reload()
            if (network.attrs.get("Labels") or {}).get(CLIPPER_NETWORK_LABEL) and not network.attrs.get(
                "Containers"
            ):
                try:
                    network.remove()
                except docker.errors.APIError as e:
                    self.logger.debug("Network %s kept: %s", self.docker_network, e)

    def get_admin_addr(self) -> str:
        return f"{self.public_hostname}:{self.clipper_management_port}"

    def get_query_addr(self) -> str:
        return f"{self.public_hostname}:{self.clipper_query_port}"

    def get_query_frontend_addrs(self) -> list[str]:
        """``host:port`` that each query frontend alone serves (its instance port; with one
        frontend, the REST port): read each one's ``/metrics`` and ``/healthz`` there."""
        if not self._frontends:
            return [self.get_query_addr()]
        host, shared = self.public_hostname, self.clipper_query_port
        return [f"{host}:{f.instance_port or shared}" for f in self._frontends]

    def get_metric_addr(self) -> str:
        """The query frontend: it serves Prometheus text at ``/metrics`` (no Prometheus container).
        With several, one of them per connection: scrape ``get_query_frontend_addrs()`` each."""
        return self.get_query_addr()


def _environment(container: Container) -> dict[str, str]:
    """A container's environment, as ``docker inspect`` shows it."""
    return dict(
        item.split("=", 1) for item in container.attrs.get("Config", {}).get("Env") or [] if "=" in item
    )
