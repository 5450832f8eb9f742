"""The Kubernetes objects of a Clipper cluster, as plain manifests (dicts the client sends as is).

Pure functions, no API calls, so every name, label, port and probe can be checked as data
(``tests/unit/test_k8s_manifests.py``). ``KubernetesContainerManager`` creates what they return.

Object names and labels are the original Clipper's (``redis-at-<cluster>``,
``query-frontend-<i>-at-<cluster>``, ``<name>-<version>-deployment-at-<i>-at-<cluster>``, ...),
with today's API groups (``apps/v1``, ``rbac.authorization.k8s.io/v1``). Unlike the original's
model template, every Deployment carries the labels in its own metadata too, so label-selector
deletes find it.

Two pod network layouts (:class:`PodNetwork`):

- the cluster network (default): processes listen on the original's fixed ports (6379, 1338,
  1337, 7000) on the pod IP, and find each other through Service names;
- the node network (``hostNetwork: true``): each process listens on the node's address (from the
  downward API, ``status.hostIP``) at a port of its own, for clusters without a pod network or
  kube-proxy. Clients and model containers then use node address + port, never a Service.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import yaml

from clipper_admin.container_manager import (
    CLIPPER_DOCKER_LABEL,
    CLIPPER_INTERNAL_MANAGEMENT_PORT,
    CLIPPER_INTERNAL_QUERY_PORT,
    CLIPPER_INTERNAL_REDIS_PORT,
    CLIPPER_INTERNAL_RPC_PORT,
    CLIPPER_MODEL_CONTAINER_LABEL,
    CLIPPER_NAME_LABEL,
    QUERY_FRONTEND_ADDRESS_ENV,
    create_model_container_label,
)
from clipper_admin.exceptions import ClipperException

__all__ = [
    "CLIPPER_QUERY_FRONTEND_ID_LABEL",
    "DEFAULT_SERVICE_TYPES",
    "Manifest",
    "PodNetwork",
    "PortPlan",
    "cluster_role",
    "cluster_role_binding",
    "cluster_selector",
    "dashboard_sources",
    "management_deployment",
    "management_service",
    "metrics_config_map",
    "model_deployment",
    "model_deployment_name",
    "model_selector",
    "next_untaken_port",
    "plan_ports",
    "query_frontend_deployment",
    "query_frontend_name",
    "query_rpc_service",
    "query_service",
    "redis_deployment",
    "redis_service",
    "validate_service_types",
]

Manifest = dict[str, Any]

CLIPPER_QUERY_FRONTEND_ID_LABEL: Final = "ai.clipper.query_frontend.id"
# Values of the ai.clipper.name label (the original's).
REDIS_ROLE: Final = "redis"
MANAGEMENT_ROLE: Final = "mgmt-frontend"
QUERY_FRONTEND_ROLE: Final = "query-frontend"
MODEL_ROLE: Final = "model"

# Service types, keyed as in the original's ``service_types`` argument.
SERVICE_TYPE_KEYS: Final = ("redis", "management", "query", "query-rpc", "metric")
NODE_PORT: Final = "NodePort"
LOAD_BALANCER: Final = "LoadBalancer"
EXTERNAL_NAME: Final = "ExternalName"
OFFICIAL_SERVICE_TYPES: Final = ("ClusterIP", NODE_PORT, LOAD_BALANCER, EXTERNAL_NAME)
DEFAULT_SERVICE_TYPES: Final[Mapping[str, str]] = dict.fromkeys(SERVICE_TYPE_KEYS, NODE_PORT)

# Named container ports: a Service's targetPort names them, so one Service fits pods that listen
# on different ports (the node network gives each query frontend its own).
REDIS_PORT_NAME: Final = "redis"
MANAGEMENT_PORT_NAME: Final = "management"
QUERY_PORT_NAME: Final = "query"
RPC_PORT_NAME: Final = "rpc"
# Written by the model-container runtime once the model serves (the original's readiness probe).
MODEL_READY_FILE: Final = "/model_is_ready.check"
NODE_IP_ENV: Final = "NODE_IP"


def validate_service_types(service_types: Any) -> dict[str, str]:
    """The service type per key: the defaults (all NodePort) updated with ``service_types``.

    Raises:
        ClipperException: the original's texts: not a dict, unknown keys (the five keys must all
            be given), unknown values, or ``ExternalName``.
    """
    if service_types is None:
        return dict(DEFAULT_SERVICE_TYPES)
    if not isinstance(service_types, dict):
        raise ClipperException(f"service_types must be 'dict' type: {service_types}")
    if set(service_types) != set(SERVICE_TYPE_KEYS):
        raise ClipperException(f"service_types has unknown keys: {service_types.keys()}")
    if any(value not in OFFICIAL_SERVICE_TYPES for value in service_types.values()):
        raise ClipperException(f"service_types has unknown values: {service_types.values()}")
    if EXTERNAL_NAME in service_types.values():
        raise ClipperException(f"Clipper does not support '{EXTERNAL_NAME}' service")
    return {**DEFAULT_SERVICE_TYPES, **service_types}


# ---------------------------------------------------------------------------------------- names


def redis_name(cluster: str) -> str:
    return f"redis-at-{cluster}"


def management_name(cluster: str) -> str:
    return f"mgmt-frontend-at-{cluster}"


def query_frontend_name(cluster: str, frontend_id: int) -> str:
    """The Deployment and the RPC Service of query frontend ``frontend_id``."""
    return f"query-frontend-{frontend_id}-at-{cluster}"


def query_service_name(cluster: str) -> str:
    """The one REST Service in front of every query frontend."""
    return f"query-frontend-at-{cluster}"


def metrics_config_map_name(cluster: str) -> str:
    return f"prometheus-config-at-{cluster}"


def rbac_name(cluster: str) -> str:
    return f"{cluster}-prometheus"


def model_deployment_name(name: str, version: str, frontend_id: int, cluster: str) -> str:
    return f"{name}-{version}-deployment-at-{frontend_id}-at-{cluster}"


def cluster_selector(cluster: str) -> str:
    return f"{CLIPPER_DOCKER_LABEL}={cluster}"


def model_selector(cluster: str, name: str | None = None, version: str | None = None) -> str:
    """Every model pod/Deployment of the cluster, or those of one ``name:version``."""
    if name is None or version is None:
        model = CLIPPER_MODEL_CONTAINER_LABEL
    else:
        model = f"{CLIPPER_MODEL_CONTAINER_LABEL}={create_model_container_label(name, version)}"
    return f"{model},{cluster_selector(cluster)}"


# ---------------------------------------------------------------------------------------- ports


@dataclass(frozen=True, slots=True)
class PortPlan:
    """The port each process listens on (its container port)."""

    redis: int
    management: int
    query: tuple[int, ...]
    rpc: tuple[int, ...]


def next_untaken_port(start: int, taken: Sequence[int]) -> int:
    """The first port from ``start`` upwards not in ``taken``."""
    port = start
    while port in taken:
        port += 1
    if port > 65535:
        raise ClipperException(f"No free port from {start} upwards for the Clipper cluster")
    return port


def plan_ports(
    host_network: bool,
    num_frontends: int,
    redis_port: int,
    management_port: int,
    query_port: int,
    rpc_port: int,
    choose_port: Callable[[int, Sequence[int]], int] = next_untaken_port,
) -> PortPlan:
    """Ports for one cluster.

    On the cluster network every pod has its own IP, so the original's fixed ports are used. On
    the node network all processes share the node: each takes ``choose_port(requested, taken)``,
    by default the first port from the requested one upwards that no other process of the
    cluster took (the manager also skips locally bound ports when the nodes are this machine).
    Query frontend ``i`` requests ``query_port + i`` and ``rpc_port + i``.
    """
    if not host_network:
        return PortPlan(
            CLIPPER_INTERNAL_REDIS_PORT,
            CLIPPER_INTERNAL_MANAGEMENT_PORT,
            (CLIPPER_INTERNAL_QUERY_PORT,) * num_frontends,
            (CLIPPER_INTERNAL_RPC_PORT,) * num_frontends,
        )
    taken: list[int] = []

    def take(start: int) -> int:
        taken.append(choose_port(start, tuple(taken)))
        return taken[-1]

    redis = take(redis_port)
    management = take(management_port)
    query = tuple(take(query_port + i) for i in range(num_frontends))
    rpc = tuple(take(rpc_port + i) for i in range(num_frontends))
    return PortPlan(redis, management, query, rpc)


# ---------------------------------------------------------------------------------------- pods


@dataclass(frozen=True, slots=True)
class PodNetwork:
    """Where pods listen: the cluster network, or the node's (``hostNetwork: true``)."""

    host_network: bool

    @property
    def listen_host(self) -> str:
        """``$(NODE_IP)`` (expanded by the kubelet) on the node network, else every interface."""
        return f"$({NODE_IP_ENV})" if self.host_network else "0.0.0.0"

    def container_env(self) -> list[dict[str, Any]]:
        if not self.host_network:
            return []
        return [{"name": NODE_IP_ENV, "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}}]

    def pod_spec(self, containers: list[Manifest]) -> Manifest:
        spec: Manifest = {"containers": containers}
        if self.host_network:
            # ClusterFirstWithHostNet keeps Service names resolvable where a cluster DNS exists.
            spec.update(hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet")
        return spec


def _meta(
    name: str | None, labels: Mapping[str, str], annotations: Mapping[str, str] | None = None
) -> Manifest:
    meta: Manifest = {"name": name} if name else {}
    meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def _deployment(
    name: str,
    labels: Mapping[str, str],
    selector: Mapping[str, str],
    pod_spec: Manifest,
    replicas: int = 1,
    pod_annotations: Mapping[str, str] | None = None,
) -> Manifest:
    """An apps/v1 Deployment labelled like its pods (the original left the Deployment unlabelled)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name, labels),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(selector)},
            "template": {"metadata": _meta(None, labels, pod_annotations), "spec": pod_spec},
        },
    }


def _container(
    name: str,
    image: str,
    pull_policy: str,
    args: list[str],
    ports: Mapping[str, int],
    network: PodNetwork,
    env: Mapping[str, str] | None = None,
    readiness_probe: Manifest | None = None,
) -> Manifest:
    container: Manifest = {
        "name": name,
        "image": image,
        "imagePullPolicy": pull_policy,
        "ports": [{"name": port_name, "containerPort": port} for port_name, port in ports.items()],
    }
    if args:
        container["args"] = args
    environment = network.container_env() + [{"name": k, "value": v} for k, v in (env or {}).items()]
    if environment:
        container["env"] = environment
    if readiness_probe:
        container["readinessProbe"] = readiness_probe
    return container


def _http_probe(path: str, port_name: str) -> Manifest:
    return {"httpGet": {"path": path, "port": port_name}, "periodSeconds": 2, "failureThreshold": 3}


def _healthcheck_env(network: PodNetwork, port: int, path: str) -> dict[str, str]:
    """The frontend images' Docker HEALTHCHECK URL (its default is 127.0.0.1 and the fixed port)."""
    host = network.listen_host if network.host_network else "127.0.0.1"
    return {"HEALTHCHECK_URL": f"http://{host}:{port}{path}"}


def _service(
    name: str,
    labels: Mapping[str, str],
    selector: Mapping[str, str],
    service_type: str,
    port_name: str,
    port: int,
    target_port: str,
) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(name, labels),
        "spec": {
            "type": service_type,
            "selector": dict(selector),
            "ports": [{"name": port_name, "port": port, "targetPort": target_port, "protocol": "TCP"}],
        },
    }


def _labels(cluster: str, role: str, **extra: str) -> dict[str, str]:
    return {CLIPPER_DOCKER_LABEL: cluster, CLIPPER_NAME_LABEL: role, **extra}


# ---------------------------------------------------------------------------------------- redis


def redis_deployment(cluster: str, image: str, pull_policy: str, network: PodNetwork, port: int) -> Manifest:
    labels = _labels(cluster, REDIS_ROLE)
    args = ["redis-server", "--port", str(port), "--bind", network.listen_host, "--protected-mode", "no",
            "--save", "", "--appendonly", "no"]  # fmt: skip
    container = _container(
        "redis", image, pull_policy, [], {REDIS_PORT_NAME: port}, network, {"REDIS_PORT": str(port)}
    )
    # command, not args: the image's CMD is the whole redis-server line.
    container["command"] = args
    container["readinessProbe"] = {"tcpSocket": {"port": REDIS_PORT_NAME}, "periodSeconds": 2}
    return _deployment(redis_name(cluster), labels, labels, network.pod_spec([container]))


def redis_service(cluster: str, service_type: str, public_port: int) -> Manifest:
    """Port ``public_port`` (the original's ``redis_port``), named "6379", to the Redis port."""
    labels = _labels(cluster, REDIS_ROLE)
    return _service(redis_name(cluster), labels, labels, service_type,
                    str(CLIPPER_INTERNAL_REDIS_PORT), public_port, REDIS_PORT_NAME)  # fmt: skip


# ---------------------------------------------------------------------------------------- frontends


def dashboard_sources(cluster: str, network: PodNetwork, query_ports: Sequence[int]) -> list[str]:
    """Where the management frontend's dashboard reads each query frontend's ``/metrics``: an
    address only that frontend serves (the shared REST Service would answer from any of them).

    On the cluster network, each frontend's own Service (``query_rpc_service``, which carries
    its REST port too); on the node network, the node address and each frontend's port, which
    assumes the query frontends run on the management frontend's node (a single node, as the
    loopback-only test cluster). One on another node is reported unreachable, and the dashboard
    records no round that misses a frontend, so such a cluster's dashboard has no metrics.
    """
    if network.host_network:
        return [f"{network.listen_host}:{port}" for port in query_ports]
    return [f"{query_frontend_name(cluster, i)}:{CLIPPER_INTERNAL_QUERY_PORT}"
            for i in range(len(query_ports))]  # fmt: skip


def management_deployment(
    cluster: str,
    image: str,
    pull_policy: str,
    network: PodNetwork,
    redis_host: str,
    redis_port: int,
    port: int,
    query_frontend_addresses: Sequence[str] = (),
) -> Manifest:
    """The management frontend; its dashboard sums the ``/metrics`` of
    ``query_frontend_addresses`` (``CLIPPER_QUERY_FRONTEND_ADDRESS``, see ``dashboard_sources``)."""
    labels = _labels(cluster, MANAGEMENT_ROLE)
    args = [f"--redis_ip={redis_host}", f"--redis_port={redis_port}", f"--host={network.listen_host}",
            f"--port={port}"]  # fmt: skip
    env = _healthcheck_env(network, port, "/admin/ping")
    if query_frontend_addresses:
        # After NODE_IP in the container's env, so a $(NODE_IP) here is expanded.
        env[QUERY_FRONTEND_ADDRESS_ENV] = ",".join(query_frontend_addresses)
    container = _container(
        "mgmt-frontend", image, pull_policy, args, {MANAGEMENT_PORT_NAME: port}, network,
        env, _http_probe("/admin/ping", MANAGEMENT_PORT_NAME),
    )  # fmt: skip
    return _deployment(management_name(cluster), labels, labels, network.pod_spec([container]))


def management_service(cluster: str, service_type: str) -> Manifest:
    labels = _labels(cluster, MANAGEMENT_ROLE)
    return _service(management_name(cluster), labels, labels, service_type,
                    str(CLIPPER_INTERNAL_MANAGEMENT_PORT), CLIPPER_INTERNAL_MANAGEMENT_PORT,
                    MANAGEMENT_PORT_NAME)  # fmt: skip


def query_frontend_deployment(
    cluster: str,
    frontend_id: int,
    image: str,
    pull_policy: str,
    network: PodNetwork,
    redis_host: str,
    redis_port: int,
    port: int,
    rpc_port: int,
    cache_size: int,
) -> Manifest:
    """One query frontend (REST + RPC); it serves Prometheus text itself at ``/metrics``."""
    labels = _labels(cluster, QUERY_FRONTEND_ROLE, **{CLIPPER_QUERY_FRONTEND_ID_LABEL: str(frontend_id)})
    args = [f"--redis_ip={redis_host}", f"--redis_port={redis_port}", f"--host={network.listen_host}",
            f"--port={port}", f"--rpc_service_port={rpc_port}",
            f"--prediction_cache_size={cache_size}"]  # fmt: skip
    container = _container(
        "query-frontend", image, pull_policy, args, {QUERY_PORT_NAME: port, RPC_PORT_NAME: rpc_port},
        network, _healthcheck_env(network, port, "/metrics"), _http_probe("/metrics", QUERY_PORT_NAME),
    )  # fmt: skip
    annotations = {"prometheus.io/scrape": "true", "prometheus.io/port": str(port),
                   "prometheus.io/path": "/metrics"}  # fmt: skip
    return _deployment(
        query_frontend_name(cluster, frontend_id), labels, labels, network.pod_spec([container]),
        pod_annotations=annotations,
    )  # fmt: skip


def query_rpc_service(cluster: str, frontend_id: int, service_type: str) -> Manifest:
    """The Service of one query frontend: its RPC port (the original's; what its model
    containers connect to), then its REST port, which the dashboard reads ``/metrics`` at."""
    labels = _labels(cluster, QUERY_FRONTEND_ROLE, **{CLIPPER_QUERY_FRONTEND_ID_LABEL: str(frontend_id)})
    service = _service(query_frontend_name(cluster, frontend_id), labels, labels, service_type,
                       str(CLIPPER_INTERNAL_RPC_PORT), CLIPPER_INTERNAL_RPC_PORT, RPC_PORT_NAME)  # fmt: skip
    service["spec"]["ports"].append(
        {"name": str(CLIPPER_INTERNAL_QUERY_PORT), "port": CLIPPER_INTERNAL_QUERY_PORT,
         "targetPort": QUERY_PORT_NAME, "protocol": "TCP"}
    )  # fmt: skip
    return service


def query_service(cluster: str, service_type: str) -> Manifest:
    """The REST Service in front of every query frontend of the cluster."""
    labels = _labels(cluster, QUERY_FRONTEND_ROLE)
    return _service(query_service_name(cluster), labels, labels, service_type,
                    str(CLIPPER_INTERNAL_QUERY_PORT), CLIPPER_INTERNAL_QUERY_PORT,
                    QUERY_PORT_NAME)  # fmt: skip


# ---------------------------------------------------------------------------------------- models


def model_deployment(
    cluster: str,
    frontend_id: int,
    name: str,
    version: str,
    input_type: str,
    image: str,
    pull_policy: str,
    network: PodNetwork,
    clipper_ip: str,
    clipper_port: int,
    replicas: int,
) -> Manifest:
    """Replicas of ``name:version`` attached to query frontend ``frontend_id``.

    ``clipper_ip``/``clipper_port``: the frontend's RPC Service name and 7000 on the cluster
    network, its node address and RPC port on the node network.
    """
    deployment = model_deployment_name(name, version, frontend_id, cluster)
    labels = _labels(
        cluster, MODEL_ROLE,
        **{CLIPPER_MODEL_CONTAINER_LABEL: create_model_container_label(name, version),
           CLIPPER_QUERY_FRONTEND_ID_LABEL: str(frontend_id)},
    )  # fmt: skip
    env = {
        "CLIPPER_MODEL_NAME": name,
        "CLIPPER_MODEL_VERSION": str(version),
        "CLIPPER_IP": clipper_ip,
        "CLIPPER_PORT": str(clipper_port),
        "CLIPPER_INPUT_TYPE": input_type,
    }
    probe = {"exec": {"command": ["cat", MODEL_READY_FILE]}, "initialDelaySeconds": 3, "periodSeconds": 3}
    # The original names the container like the Deployment; a container name must be a DNS-1123
    # label (no dots, at most 63 characters), which a dotted version or a long name is not.
    container_name = deployment if _is_dns_label(deployment) else "model"
    container = _container(container_name, image, pull_policy, [], {}, network, env, probe)
    del container["ports"]
    return _deployment(deployment, labels, labels, network.pod_spec([container]), replicas=replicas)


def _is_dns_label(value: str) -> bool:
    return len(value) <= 63 and "." not in value


# ---------------------------------------------------------------------------------------- metrics


def metrics_config_map(cluster: str) -> Manifest:
    """The original's Prometheus configuration: scrape this cluster's annotated pods.

    No Prometheus is started (each query frontend serves Prometheus text at ``/metrics``); the
    ConfigMap and the RBAC objects below are what a Prometheus of your own needs to scrape them.
    """
    config = {
        "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
        "scrape_configs": [
            {
                "job_name": "Clipper Metrics",
                "kubernetes_sd_configs": [{"role": "pod"}],
                "relabel_configs": [
                    {
                        "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
                        "action": "keep",
                        "regex": True,
                    },
                    {
                        "source_labels": ["__meta_kubernetes_pod_label_ai_clipper_container_label"],
                        "action": "keep",
                        "regex": cluster,
                    },
                    {
                        "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_path"],
                        "action": "replace",
                        "target_label": "__metrics_path__",
                        "regex": "(.+)",
                    },
                    {
                        "source_labels": [
                            "__address__",
                            "__meta_kubernetes_pod_annotation_prometheus_io_port",
                        ],
                        "action": "replace",
                        "regex": r"([^:]+)(?::\d+)?;(\d+)",
                        "replacement": "$1:$2",
                        "target_label": "__address__",
                    },
                    {
                        "action": "labelmap",
                        "regex": "__meta_kubernetes_pod_label_ai_clipper_(metric|model_container)_label",
                    },
                    {
                        "source_labels": ["__meta_kubernetes_namespace"],
                        "action": "replace",
                        "target_label": "kubernetes_namespace",
                    },
                    {
                        "source_labels": ["__meta_kubernetes_pod_name"],
                        "action": "replace",
                        "target_label": "kubernetes_pod_name",
                    },
                ],
            }
        ],
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(metrics_config_map_name(cluster), _labels(cluster, "metrics")),
        "data": {"prom_config.yml": yaml.safe_dump(config, sort_keys=False)},
    }


def cluster_role(cluster: str) -> Manifest:
    """Read access a Prometheus needs for pod discovery (the original's ``<cluster>-prometheus``)."""
    read = ["get", "list", "watch"]
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": _meta(rbac_name(cluster), _labels(cluster, "prom-cluster-role")),
        "rules": [
            {
                "apiGroups": [""],
                "resources": ["nodes", "nodes/proxy", "services", "endpoints", "pods"],
                "verbs": read,
            },
            {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": read},
            {"nonResourceURLs": ["/metrics"], "verbs": ["get"]},
        ],
    }


def cluster_role_binding(cluster: str, namespace: str) -> Manifest:
    """Grants :func:`cluster_role` to the namespace's ``default`` service account."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": _meta(rbac_name(cluster), _labels(cluster, "prom-cluster-role-binding")),
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": rbac_name(cluster),
        },
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": namespace}],
    }
