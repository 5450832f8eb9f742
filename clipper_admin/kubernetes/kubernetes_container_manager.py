"""KubernetesContainerManager: a Clipper cluster as Deployments and Services on Kubernetes.

Deliberate differences from the original (documented in the README):
- Current API groups (``apps/v1``, ``rbac.authorization.k8s.io/v1``); every Deployment carries
  its labels (the original's model template wrote ``label:``, so label-selector deletes missed it).
- ``use_host_network=True`` runs every pod with ``hostNetwork: true`` for clusters without a pod
  network or kube-proxy: processes listen on their node's address at ports of their own, and
  clients and model containers use node address + port instead of Services.
- No Prometheus or exporter Deployment: each query frontend serves Prometheus text at
  ``/metrics`` (``get_metric_addr()`` is the query address). The Prometheus ConfigMap and RBAC
  objects are still created, for a Prometheus of your own.
- ``imagePullPolicy`` is ``IfNotPresent`` by default (the original: ``Always``), so images that
  a node already has need no registry.
- The service types are read back from the Services by ``connect()``; nothing is written into
  the package directory. Deletes wait until the pods are gone, and every API error is a
  ``ClipperException`` naming the call and the API server's reason.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import urllib3.exceptions
from kubernetes import client
from kubernetes.client.rest import ApiException

from clipper_admin.container_manager import (
    CLIPPER_DOCKER_LABEL,
    CLIPPER_INTERNAL_MANAGEMENT_PORT,
    CLIPPER_INTERNAL_QUERY_PORT,
    CLIPPER_INTERNAL_RPC_PORT,
    CLIPPER_NAME_LABEL,
    ClusterAdapter,
    ContainerManager,
)
from clipper_admin.docker.docker_api_utils import find_unbound_port
from clipper_admin.docker.docker_container_manager import DockerContainerManager
from clipper_admin.docker.images import clipper_image
from clipper_admin.exceptions import ClipperException
from clipper_admin.kubernetes import manifests as m
from clipper_admin.kubernetes.api import KubernetesApiMixin, api_errors, load_api_client, reason

__all__ = ["KubernetesContainerManager"]

logger = logging.getLogger(__name__)

DEFAULT_IMAGE_PULL_POLICY: Final = "IfNotPresent"
DEFAULT_DEPLOYMENT_TIMEOUT_S: Final = 600.0


class KubernetesContainerManager(KubernetesApiMixin, ContainerManager):
    """Runs a Clipper cluster on Kubernetes: Redis, the management frontend, query frontends
    and model versions as Deployments with Services, labelled with the cluster name.

    Args:
        cluster_name: unique per namespace; a valid label value and DNS-1123 name part.
        kubernetes_proxy_addr: the address of ``kubectl proxy``; addresses then go through the
            API server's service proxy.
        redis_ip, redis_port: an external Redis; when ``redis_ip`` is None a Redis Deployment is
            started and its Service listens on ``redis_port``.
        useInternalIP: use the nodes' InternalIP when none has an ExternalDNS address.
        namespace: the namespace of every namespaced object.
        service_types: ``{"redis", "management", "query", "query-rpc", "metric"} -> type``
            (``ClusterIP``, ``NodePort`` or ``LoadBalancer``; all ``NodePort`` by default).
        create_namespace_if_not_exists: create ``namespace`` when it does not exist.
        use_host_network: run every pod with ``hostNetwork: true`` (for clusters without a pod
            network or kube-proxy, like the project's test cluster). Each process then listens
            on its node's address at its own port, chosen from ``redis_port``,
            ``clipper_management_port``, ``clipper_query_port`` and ``clipper_rpc_port`` upwards
            (query frontend ``i`` from ``+ i``; ports taken on this machine are skipped when the
            nodes are this machine). Addresses are node address + port, not Services.
        clipper_query_port, clipper_management_port, clipper_rpc_port: see ``use_host_network``.
        image_pull_policy: of every container (``IfNotPresent``; ``Always`` as in the original
            needs a registry for every image).
        kube_config_file: a kubeconfig path instead of ``KUBECONFIG`` / ``~/.kube/config``.
        deployment_timeout_s: how long to wait for a Deployment to become available.

    Raises:
        ClipperException: no Kubernetes configuration, the API server failed, the namespace does
            not exist (and may not be created), or invalid ``service_types``.
    """

    def __init__(
        self,
        cluster_name: str = "default-cluster",
        kubernetes_proxy_addr: str | None = None,
        redis_ip: str | None = None,
        redis_port: int = 6379,
        useInternalIP: bool = False,
        namespace: str = "default",
        service_types: dict[str, str] | None = None,
        create_namespace_if_not_exists: bool = False,
        *,
        use_host_network: bool = False,
        clipper_query_port: int = CLIPPER_INTERNAL_QUERY_PORT,
        clipper_management_port: int = CLIPPER_INTERNAL_MANAGEMENT_PORT,
        clipper_rpc_port: int = CLIPPER_INTERNAL_RPC_PORT,
        image_pull_policy: str = DEFAULT_IMAGE_PULL_POLICY,
        kube_config_file: str | None = None,
        deployment_timeout_s: float = DEFAULT_DEPLOYMENT_TIMEOUT_S,
    ) -> None:
        self.cluster_name = cluster_name
        self.kubernetes_proxy_addr = kubernetes_proxy_addr
        self.use_k8s_proxy = kubernetes_proxy_addr is not None
        self.redis_ip = redis_ip
        self.redis_port = redis_port
        self.external_redis = redis_ip is not None
        self.useInternalIP = useInternalIP
        self.service_types = m.validate_service_types(service_types)
        self.use_host_network = use_host_network
        self.network = m.PodNetwork(use_host_network)
        self.clipper_query_port = clipper_query_port
        self.clipper_management_port = clipper_management_port
        self.clipper_rpc_port = clipper_rpc_port
        self.image_pull_policy = image_pull_policy
        self.deployment_timeout_s = deployment_timeout_s
        self.num_frontend_replicas = 0
        # Filled by connect(): "host:port" of the management frontend and of each query frontend.
        self._admin_addr: str | None = None
        self._query_addrs: list[str] = []
        self.external_node_hosts: list[str] = []

        api_client = load_api_client(kube_config_file)
        self._core = client.CoreV1Api(api_client)
        self._apps = client.AppsV1Api(api_client)
        self._rbac = client.RbacAuthorizationV1Api(api_client)
        self.k8s_namespace = self._ensure_namespace(namespace, create_namespace_if_not_exists)
        # The original's rule (it looks inverted, but clusters have always been named so).
        if self.k8s_namespace != "default":
            self.cluster_identifier = cluster_name
        else:
            self.cluster_identifier = f"{self.k8s_namespace}-{cluster_name}"
        self.logger = ClusterAdapter(logger, {"cluster_name": self.cluster_identifier})

    def _ensure_namespace(self, namespace: str, create: bool) -> str:
        try:
            self._core.read_namespace(namespace)
            return namespace
        except ApiException as e:
            if e.status != 404:
                raise ClipperException(f"Error connecting to Kubernetes cluster. Reason: {reason(e)}") from e
        except urllib3.exceptions.HTTPError as e:
            raise ClipperException(
                f"Error connecting to Kubernetes cluster. Reason: the API server is unreachable: {e}"
            ) from e
        if not create:
            msg = (
                "Error connecting to Kubernetes cluster. Namespace does not exist. You can pass in "
                "KubernetesContainerManager(create_namespace_if_not_exists=True) to crate this namespcae"
            )
            logger.error(msg)
            raise ClipperException(msg)
        try:
            self._core.create_namespace(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
            )
        except ApiException as e:
            logger.error("Exception creating Kubernetes namespace: %s", e)
            raise ClipperException(f"Could not create Kubernetes namespace. Reason: {e.reason}") from e
        return namespace

    def _deployment_labels(self, role: str, **extra: str) -> str:
        labels = {CLIPPER_DOCKER_LABEL: self.cluster_name, CLIPPER_NAME_LABEL: role, **extra}
        return ",".join(f"{k}={v}" for k, v in labels.items())

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
        """RBAC, Redis (unless external), the management frontend, ``num_frontend_replicas``
        query frontends (each with its RPC Service) and the metrics ConfigMap; waits until each
        Deployment is available, then connects.

        ``frontend_exporter_image`` and the ``qf_http_*`` settings are accepted for
        compatibility and unused (the query frontend serves ``/metrics`` itself).

        Raises:
            ClipperException: an API call failed or a Deployment did not become available.
        """
        if num_frontend_replicas < 1:
            raise ClipperException("num_frontend_replicas must be at least 1")
        query_frontend_image = query_frontend_image or clipper_image("query_frontend")
        mgmt_frontend_image = mgmt_frontend_image or clipper_image("management_frontend")
        cluster, network, pull = self.cluster_name, self.network, self.image_pull_policy
        choose = m.next_untaken_port
        if self.use_host_network and self._nodes_are_this_machine():

            def choose(start: int, taken: Sequence[int]) -> int:
                return find_unbound_port(start, increment=True, exclude=taken)

        ports = m.plan_ports(
            self.use_host_network, num_frontend_replicas, self.redis_port,
            self.clipper_management_port, self.clipper_query_port, self.clipper_rpc_port, choose,
        )  # fmt: skip

        self._create(self._rbac.create_cluster_role, m.cluster_role(cluster), namespaced=False)
        self._create(
            self._rbac.create_cluster_role_binding,
            m.cluster_role_binding(cluster, self._ns),
            namespaced=False,
        )
        if self.external_redis:
            assert self.redis_ip is not None
            redis_host, redis_port = self.redis_ip, self.redis_port
        else:
            self.logger.info("Starting managed Redis instance in Kubernetes")
            self._create(
                self._apps.create_namespaced_deployment,
                m.redis_deployment(cluster, clipper_image("redis"), pull, network, ports.redis),
            )
            self._create(
                self._core.create_namespaced_service,
                m.redis_service(cluster, self.service_types["redis"], self.redis_port),
            )
            name = m.redis_name(cluster)
            self._wait_for_deployment(name, 1, f"Could not create a Kubernetes deployment: {name}")
            if self.use_host_network:
                pod = self._running_pod(self._deployment_labels(m.REDIS_ROLE), name)
                redis_host, redis_port = pod.status.host_ip, ports.redis
            else:
                redis_host, redis_port = name, self.redis_port
        self._create(
            self._apps.create_namespaced_deployment,
            m.management_deployment(
                cluster, mgmt_frontend_image, pull, network, redis_host, redis_port, ports.management,
                m.dashboard_sources(cluster, network, ports.query),
            ),
        )
        self._create(
            self._core.create_namespaced_service,
            m.management_service(cluster, self.service_types["management"]),
        )
        for i in range(num_frontend_replicas):
            self._create(
                self._apps.create_namespaced_deployment,
                m.query_frontend_deployment(
                    cluster, i, query_frontend_image, pull, network, redis_host, redis_port,
                    ports.query[i], ports.rpc[i], cache_size,
                ),
            )  # fmt: skip
            self._create(
                self._core.create_namespaced_service,
                m.query_rpc_service(cluster, i, self.service_types["query-rpc"]),
            )
        self._create(
            self._core.create_namespaced_service, m.query_service(cluster, self.service_types["query"])
        )
        self._create(self._core.create_namespaced_config_map, m.metrics_config_map(cluster))
        for name in [m.management_name(cluster)] + [
            m.query_frontend_name(cluster, i) for i in range(num_frontend_replicas)
        ]:
            self._wait_for_deployment(name, 1, f"Could not create a Kubernetes deployment: {name}")
        self.connect()

    def connect(self) -> None:
        """Find the cluster's frontends: Services' node ports (or load balancers, or the
        ``kubectl proxy``), or on the node network the frontend pods' node addresses and ports.

        Raises:
            ClipperException: the cluster does not exist, has no node address, or an API call failed.
        """
        action = "Could not connect to Clipper Kubernetes cluster"
        with api_errors(action):
            frontends = self._apps.list_namespaced_deployment(
                self._ns, label_selector=self._deployment_labels(m.QUERY_FRONTEND_ROLE)
            ).items
        if not frontends:
            raise ClipperException(
                f"{action}. Reason: no query frontend Deployment of cluster {self.cluster_name} "
                f"in namespace {self._ns}"
            )
        self.num_frontend_replicas = len(frontends)
        if self.use_host_network:
            self._connect_host_network(frontends)
        else:
            self._connect_services()
        self.logger.info("Connected: management %s, query %s", self._admin_addr, ", ".join(self._query_addrs))

    def _connect_host_network(self, frontends: list[Any]) -> None:
        def node_addr(selector: str, what: str, port_name: str, deployment: Any) -> str:
            pod = self._running_pod(selector, what)
            ports = {p.name: p.container_port for p in deployment.spec.template.spec.containers[0].ports}
            return f"{pod.status.host_ip}:{ports[port_name]}"

        with api_errors("Could not connect to Clipper Kubernetes cluster"):
            management = self._apps.read_namespaced_deployment(m.management_name(self.cluster_name), self._ns)
        self._admin_addr = node_addr(
            self._deployment_labels(m.MANAGEMENT_ROLE),
            "the management frontend",
            m.MANAGEMENT_PORT_NAME,
            management,
        )
        by_id = sorted(frontends, key=lambda d: int(d.metadata.labels[m.CLIPPER_QUERY_FRONTEND_ID_LABEL]))
        self._query_addrs = [
            node_addr(
                self._deployment_labels(m.QUERY_FRONTEND_ROLE, **{m.CLIPPER_QUERY_FRONTEND_ID_LABEL: str(i)}),
                f"query frontend {i}",
                m.QUERY_PORT_NAME,
                deployment,
            )
            for i, deployment in enumerate(by_id)
        ]

    def _connect_services(self) -> None:
        if (
            any(t in ("ClusterIP", m.NODE_PORT) for t in self.service_types.values())
            and not self.use_k8s_proxy
        ):
            self.external_node_hosts = self._node_hosts()
        action = "Could not connect to Clipper Kubernetes cluster"
        with api_errors(action):
            management = self._core.read_namespaced_service(m.management_name(self.cluster_name), self._ns)
            query = self._core.read_namespaced_service(m.query_service_name(self.cluster_name), self._ns)
        self._admin_addr = self._service_addr(management, str(CLIPPER_INTERNAL_MANAGEMENT_PORT))
        self._query_addrs = [self._service_addr(query, str(CLIPPER_INTERNAL_QUERY_PORT))]

    def _node_hosts(self) -> list[str]:
        with api_errors("Could not connect to Clipper Kubernetes cluster"):
            nodes = self._core.list_node().items
        hosts = [a.address for n in nodes for a in (n.status.addresses or []) if a.type == "ExternalDNS"]
        if not hosts and self.useInternalIP:
            self.logger.warning("No external node addresses found. Using Internal IP address")
            hosts = [a.address for n in nodes for a in (n.status.addresses or []) if a.type == "InternalIP"]
        if not hosts:
            msg = (
                "Error connecting to Kubernetes cluster. No external node addresses found. You may pass "
                "in KubernetesContainerManager(useInternalIP=True) to connect to local Kubernetes cluster"
            )
            self.logger.error(msg)
            raise ClipperException(msg)
        self.logger.info("Found %d nodes: %s", len(hosts), ", ".join(hosts))
        return hosts

    def _service_addr(self, service: Any, port_name: str) -> str:
        """The original's rules: LoadBalancer ingress, else the proxy URL, else node:nodePort."""
        port = next((p for p in service.spec.ports if p.name == port_name), None)
        if port is None:
            raise ClipperException(f"Service {service.metadata.name} has no port named {port_name}")
        if service.spec.type == m.LOAD_BALANCER:
            ingress = (service.status.load_balancer.ingress or []) if service.status.load_balancer else []
            if not ingress:
                raise ClipperException(f"LoadBalancer Service {service.metadata.name} has no ingress yet")
            return f"{ingress[0].ip or ingress[0].hostname}:{port.node_port}"
        if self.use_k8s_proxy:
            return (
                f"{self.kubernetes_proxy_addr}/api/v1/namespaces/{self._ns}/services/"
                f"{service.metadata.name}:{port.port}/proxy"
            )
        if service.spec.type != m.NODE_PORT:
            raise ClipperException(
                f"Service {service.metadata.name} is of type {service.spec.type}, which has no address "
                "outside the cluster; use NodePort or LoadBalancer, kubernetes_proxy_addr, or "
                "use_host_network=True"
            )
        return f"{self.external_node_hosts[0]}:{port.node_port}"

    # ------------------------------------------------------------------ model replicas

    def _frontend_rpc_target(self, frontend_id: int) -> tuple[str, int]:
        """Where model containers of frontend ``frontend_id`` connect: its RPC Service, or on
        the node network its pod's node address and RPC port."""
        name = m.query_frontend_name(self.cluster_name, frontend_id)
        if not self.use_host_network:
            return name, CLIPPER_INTERNAL_RPC_PORT
        with api_errors(f"Could not read Deployment {name}"):
            deployment = self._apps.read_namespaced_deployment(name, self._ns)
        ports = {p.name: p.container_port for p in deployment.spec.template.spec.containers[0].ports}
        selector = self._deployment_labels(
            m.QUERY_FRONTEND_ROLE, **{m.CLIPPER_QUERY_FRONTEND_ID_LABEL: str(frontend_id)}
        )
        pod = self._running_pod(selector, f"query frontend {frontend_id}")
        return pod.status.host_ip, ports[m.RPC_PORT_NAME]

    def _require_frontends(self) -> int:
        if not self.num_frontend_replicas:
            self.connect()
        return self.num_frontend_replicas

    def deploy_model(
        self, name: str, version: str, input_type: str, image: str, num_replicas: int = 1
    ) -> None:
        """One Deployment of ``num_replicas`` per query frontend; waits until available.

        Raises:
            ClipperException: an API call failed, or the replicas did not become ready in time
                (the message names the pods' problems, e.g. an image that cannot be pulled).
        """
        version = str(version)
        frontends = self._require_frontends()
        names = []
        for i in range(frontends):
            clipper_ip, clipper_port = self._frontend_rpc_target(i)
            body = m.model_deployment(
                self.cluster_name, i, name, version, input_type, image, self.image_pull_policy,
                self.network, clipper_ip, clipper_port, num_replicas,
            )  # fmt: skip
            self._create(self._apps.create_namespaced_deployment, body)
            names.append(body["metadata"]["name"])
        for deployment in names:
            self._wait_for_deployment(
                deployment, num_replicas,
                f"Could not create a Kubernetes deployment. Model: {name}-{version} Image: {image}",
            )  # fmt: skip

    def get_num_replicas(self, name: str, version: str) -> int:
        """``spec.replicas`` of the version's Deployment for query frontend 0 (0 when none)."""
        deployment = m.model_deployment_name(name, str(version), 0, self.cluster_name)
        try:
            scale = self._apps.read_namespaced_deployment_scale(deployment, self._ns)
        except ApiException as e:
            if e.status == 404:
                return 0
            raise ClipperException(f"Could not read the scale of {deployment}. Reason: {reason(e)}") from e
        return int(scale.spec.replicas or 0)

    def set_num_replicas(
        self, name: str, version: str, input_type: str, image: str, num_replicas: int
    ) -> None:
        """Scale each per-frontend Deployment (creating missing ones) and wait until done."""
        version = str(version)
        for i in range(self._require_frontends()):
            deployment = m.model_deployment_name(name, version, i, self.cluster_name)
            try:
                self._apps.patch_namespaced_deployment_scale(
                    deployment, self._ns, {"spec": {"replicas": num_replicas}}
                )
            except ApiException as e:
                if e.status != 404:
                    raise ClipperException(
                        f"Could not update scale of the specified Deployment. Reason: {reason(e)}"
                    ) from e
                clipper_ip, clipper_port = self._frontend_rpc_target(i)
                self._create(
                    self._apps.create_namespaced_deployment,
                    m.model_deployment(
                        self.cluster_name, i, name, version, input_type, image, self.image_pull_policy,
                        self.network, clipper_ip, clipper_port, num_replicas,
                    ),
                )  # fmt: skip
            self._wait_for_deployment(
                deployment, num_replicas,
                f"Could not update scale of the specified Deployment. Model: {name}-{version} Image: {image}",
            )  # fmt: skip

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
        """Build ``[<registry>/]<cluster_identifier>-<name>:<version>`` with the local Docker
        engine, exactly as ``DockerContainerManager.build_model`` does, and push it when
        ``container_registry`` is given. The cluster's nodes must be able to get the image: from
        that registry, or (a single-machine cluster on this engine, ``IfNotPresent``) locally.

        Raises:
            ClipperException: no Docker engine, or the build or the push failed.
        """
        # The host network serves RUN steps on engines with or without a bridge.
        builder = DockerContainerManager(cluster_name=self.cluster_identifier, docker_network="host")
        return builder.build_model(
            name, version, model_data_path, base_image, container_registry, pkgs_to_install
        )

    # ------------------------------------------------------------------ logs, stopping, addresses

    def get_logs(self, logging_dir: str) -> list[str]:
        """Write ``<pod>_<k>.log`` for container ``k`` of every pod of this cluster; return paths."""
        directory = Path(os.path.abspath(os.path.expanduser(logging_dir)))
        if not directory.exists():
            directory.mkdir(parents=True)
            self.logger.info("Created logging directory: %s", directory)
        paths = []
        with api_errors("Could not read the cluster's logs"):
            pods = self._core.list_namespaced_pod(
                self._ns, label_selector=m.cluster_selector(self.cluster_name)
            )
            for pod in pods.items:
                for k, status in enumerate(pod.status.container_statuses or []):
                    path = directory / f"{pod.metadata.name}_{k}.log"
                    text = self._core.read_namespaced_pod_log(
                        pod.metadata.name, self._ns, container=status.name
                    )
                    path.write_text(text or "", encoding="utf-8")
                    paths.append(str(path))
        return paths

    def _delete_workloads(self, selector: str) -> None:
        """Delete the Deployments, ReplicaSets and pods matching ``selector``; wait for the pods."""
        with api_errors("Could not delete Kubernetes deployments"):
            self._apps.delete_collection_namespaced_deployment(
                self._ns, label_selector=selector, propagation_policy="Background"
            )
            self._apps.delete_collection_namespaced_replica_set(
                self._ns, label_selector=selector, propagation_policy="Background"
            )
            self._core.delete_collection_namespaced_pod(self._ns, label_selector=selector)
        self._wait_until_no_pods(selector)

    def stop_models(self, models: dict[str, list[str]]) -> None:
        """Delete every Deployment (and pod) of each listed ``{name: [versions]}``."""
        for name, versions in models.items():
            for version in versions:
                self._delete_workloads(m.model_selector(self.cluster_name, name, str(version)))

    def stop_all_model_containers(self) -> None:
        """Delete every model Deployment (and pod) of this cluster."""
        self._delete_workloads(m.model_selector(self.cluster_name))

    def stop_all(self, graceful: bool = True) -> None:
        """Delete every object of this cluster: Services, Deployments, ReplicaSets, pods,
        ConfigMaps, the ClusterRole and ClusterRoleBinding; wait until its pods are gone.
        ``graceful`` is accepted for compatibility (pods always get their grace period)."""
        self.logger.info("Stopping all running Clipper resources")
        selector = m.cluster_selector(self.cluster_name)
        with api_errors("Could not delete the Clipper cluster's Kubernetes resources"):
            for service in self._core.list_namespaced_service(self._ns, label_selector=selector).items:
                self._core.delete_namespaced_service(service.metadata.name, self._ns)
            self._core.delete_collection_namespaced_replication_controller(self._ns, label_selector=selector)
            self._core.delete_collection_namespaced_config_map(self._ns, label_selector=selector)
            self._rbac.delete_collection_cluster_role_binding(label_selector=selector)
            self._rbac.delete_collection_cluster_role(label_selector=selector)
        self._delete_workloads(selector)
        self._admin_addr, self._query_addrs, self.num_frontend_replicas = None, [], 0

    def _addr(self, addr: str | None) -> str:
        if addr is None:
            raise ClipperException(
                "Not connected to a Clipper cluster on Kubernetes; call start_clipper() or connect()"
            )
        return addr

    def get_admin_addr(self) -> str:
        return self._addr(self._admin_addr)

    def get_query_addr(self) -> str:
        """The REST Service's address, or on the node network query frontend 0's."""
        return self._addr(self._query_addrs[0] if self._query_addrs else None)

    def get_query_frontend_addrs(self) -> list[str]:
        """``host:port`` of each query frontend on the node network (else the one Service address)."""
        self._addr(self._query_addrs[0] if self._query_addrs else None)
        return list(self._query_addrs)

    def get_metric_addr(self) -> str:
        """The query frontend: it serves Prometheus text at ``/metrics`` (no Prometheus Deployment)."""
        return self.get_query_addr()
