"""Fixtures for tests against the project's real Kubernetes cluster (``make test-k8s``).

The session starts the cluster with ``tests/k8s/cluster/cluster.sh up`` (real kube-apiserver,
controller-manager, scheduler and kubelet built from Kubernetes' Go modules, etcd, cri-dockerd in
front of the local Docker engine) and stops it afterwards; with ``CLIPPER_K8S_KUBECONFIG`` set
the tests use that running cluster instead and leave it up (``make k8s-cluster`` prints it).

Every Clipper cluster gets a random name, runs its pods with ``hostNetwork: true`` on free
loopback ports, and is stopped with ``stop_all()`` after its test, which must leave no object of
the cluster behind.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
from kubernetes import client, config

from clipper_admin import ClipperConnection
from clipper_admin.container_manager import CLIPPER_DOCKER_LABEL
from clipper_admin.docker import clipper_image
from clipper_admin.kubernetes import KubernetesContainerManager
from tests.docker.conftest import remove_model_images
from tests.helpers import free_port

CLUSTER_SCRIPT = Path(__file__).resolve().parent / "cluster" / "cluster.sh"
KUBECONFIG_ENV = "CLIPPER_K8S_KUBECONFIG"
NODE_NAME = "127.0.0.1"  # cluster.sh names the node by its address
NOOP_IMAGE = clipper_image("noop-container")
POD_WAIT_S = 240.0
CLUSTER_START_ATTEMPTS = 2


@pytest.fixture(scope="session")
def kubeconfig() -> Iterator[str]:
    """The kubeconfig of a running test cluster (started for the session unless given)."""
    given = os.environ.get(KUBECONFIG_ENV)
    if given:
        yield given
        return
    started = time.monotonic()
    # One more start after a failed one: cluster.sh picks its ports free before the components
    # bind them, and on a shared machine another process can take one in between. (Components
    # "exiting at start with an empty log" were cluster.sh's own pid check racing the exec; fixed
    # there.) Each failed start's logs are kept in /var/tmp/clipper-k8s.failed.
    for attempt in range(1, CLUSTER_START_ATTEMPTS + 1):
        result = subprocess.run(["bash", str(CLUSTER_SCRIPT), "up"], capture_output=True, text=True)
        if result.returncode == 0:
            break
        subprocess.run(["bash", str(CLUSTER_SCRIPT), "down"], capture_output=True)
        print(f"cluster.sh up failed (attempt {attempt}):\n{result.stderr[-4000:]}", file=sys.stderr)
    else:
        pytest.fail(f"cluster.sh up failed ({result.returncode}):\n{result.stderr[-4000:]}")
    path = result.stdout.strip().rsplit("=", 1)[-1]
    print(f"test cluster up in {time.monotonic() - started:.0f} s; {result.stderr.strip().splitlines()[-1]}")
    try:
        yield path
    finally:
        subprocess.run(["bash", str(CLUSTER_SCRIPT), "down"], capture_output=True)


@pytest.fixture(scope="session")
def k8s_api(kubeconfig: str) -> client.ApiClient:
    """The official client, for counting objects independently of the manager."""
    return config.new_client_from_config(config_file=kubeconfig)


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    return docker.from_env()


LABELLED_KINDS: tuple[tuple[str, str, bool], ...] = (
    ("AppsV1Api", "deployment", True),
    ("AppsV1Api", "replica_set", True),
    ("CoreV1Api", "service", True),
    ("CoreV1Api", "pod", True),
    ("CoreV1Api", "config_map", True),
    ("RbacAuthorizationV1Api", "cluster_role", False),
    ("RbacAuthorizationV1Api", "cluster_role_binding", False),
)


def cluster_objects(api: client.ApiClient, namespace: str, cluster_name: str) -> list[str]:
    """``kind/name`` of every Deployment, ReplicaSet, Service, Pod, ConfigMap, ClusterRole and
    ClusterRoleBinding labelled with the cluster's name."""
    selector = f"{CLIPPER_DOCKER_LABEL}={cluster_name}"
    found = []
    for api_class, kind, namespaced in LABELLED_KINDS:
        group = getattr(client, api_class)(api)
        if namespaced:
            items = getattr(group, f"list_namespaced_{kind}")(namespace, label_selector=selector).items
        else:
            items = getattr(group, f"list_{kind}")(label_selector=selector).items
        found += [f"{kind}/{item.metadata.name}" for item in items]
    return found


def pods(api: client.ApiClient, namespace: str, selector: str) -> list[Any]:
    return client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=selector).items


def ready_pods(api: client.ApiClient, namespace: str, selector: str) -> list[Any]:
    """Running pods, not being deleted, whose containers are all ready."""
    return [
        p
        for p in pods(api, namespace, selector)
        if p.status.phase == "Running"
        and p.metadata.deletion_timestamp is None
        and p.status.container_statuses
        and all(s.ready for s in p.status.container_statuses)
    ]


def wait_for_pods(api: client.ApiClient, namespace: str, selector: str, count: int) -> list[Any]:
    """Wait until exactly ``count`` pods match (all ready); return them."""
    deadline = time.monotonic() + POD_WAIT_S
    while True:
        every, ready = pods(api, namespace, selector), ready_pods(api, namespace, selector)
        if len(every) == count and len(ready) == count:
            return ready
        if time.monotonic() > deadline:
            pytest.fail(f"{len(ready)} ready of {len(every)} pods for {selector}, wanted {count}")
        time.sleep(1)


def host_network_manager(kubeconfig: str, cluster_name: str, **kwargs: Any) -> KubernetesContainerManager:
    """A manager for the test cluster: host network, free loopback ports."""
    kwargs.setdefault("useInternalIP", True)
    return KubernetesContainerManager(
        cluster_name=cluster_name,
        use_host_network=True,
        redis_port=free_port(),
        clipper_management_port=free_port(),
        clipper_query_port=free_port(),
        clipper_rpc_port=free_port(),
        kube_config_file=kubeconfig,
        deployment_timeout_s=POD_WAIT_S,
        **kwargs,
    )


@dataclass
class Cluster:
    name: str
    manager: KubernetesContainerManager
    conn: ClipperConnection

    @property
    def namespace(self) -> str:
        return self.manager.k8s_namespace


@pytest.fixture
def make_cluster(
    kubeconfig: str, k8s_api: client.ApiClient, docker_client: docker.DockerClient
) -> Iterator[Callable[..., Cluster]]:
    """Start clusters on demand; each is stopped after the test and must leave nothing behind."""
    started: list[Cluster] = []

    def start(prefix: str = "k8s-test", num_frontend_replicas: int = 1, **kwargs: Any) -> Cluster:
        name = f"{prefix}-{random.randint(0, 10**6)}"
        manager = host_network_manager(kubeconfig, name, **kwargs)
        conn = ClipperConnection(manager)
        started.append(Cluster(name, manager, conn))
        conn.start_clipper(num_frontend_replicas=num_frontend_replicas)
        return started[-1]

    yield start
    for cluster in started:
        try:
            cluster.conn.stop_all()
        finally:
            remove_model_images(docker_client, cluster.manager.cluster_identifier)
        assert cluster_objects(k8s_api, cluster.namespace, cluster.name) == []


@pytest.fixture
def cluster(make_cluster: Callable[..., Cluster]) -> Cluster:
    return make_cluster()
