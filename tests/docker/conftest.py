"""Fixtures for tests against a real Docker engine (``make test-docker``).

Every cluster uses host networking (the only kind the local engine offers), a random name and
random free loopback ports, and is torn down with ``stop_all()`` after the test, which must leave
no container of the cluster behind.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import docker
import docker.errors
import pytest

from clipper_admin import ClipperConnection
from clipper_admin.container_manager import CLIPPER_DOCKER_LABEL
from clipper_admin.docker import DockerContainerManager, clipper_image
from tests.helpers import free_port

NOOP_IMAGE = clipper_image("noop-container")


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as e:
        pytest.fail(
            f"No Docker engine answers ({e}). Start one with "
            '`eval "$(../shared/docker/local-engine.sh start)"` and build the base image with '
            "`../shared/docker/local-engine.sh base-image`, then run `make test-docker`."
        )
    return client


def cluster_containers(client: docker.DockerClient, cluster_name: str) -> list[object]:
    """Every container (running or not) labelled with the cluster's name."""
    return client.containers.list(all=True, filters={"label": f"{CLIPPER_DOCKER_LABEL}={cluster_name}"})


def host_manager(cluster_name: str, docker_network: str = "host") -> DockerContainerManager:
    """A manager (host network unless told) with random free ports for every process."""
    return DockerContainerManager(
        cluster_name=cluster_name,
        clipper_query_port=free_port(),
        clipper_management_port=free_port(),
        clipper_rpc_port=free_port(),
        redis_port=free_port(),
        docker_network=docker_network,
    )


@dataclass
class Cluster:
    name: str
    manager: DockerContainerManager
    conn: ClipperConnection


@pytest.fixture
def make_cluster(docker_client: docker.DockerClient) -> Iterator[Callable[..., Cluster]]:
    """Start clusters on demand; each is stopped after the test and must leave nothing behind."""
    started: list[Cluster] = []

    def start(prefix: str = "docker-test", docker_network: str = "host") -> Cluster:
        name = f"{prefix}-{random.randint(0, 10**6)}"
        manager = host_manager(name, docker_network)
        conn = ClipperConnection(manager)
        started.append(Cluster(name, manager, conn))
        conn.start_clipper()
        return started[-1]

    yield start
    for cluster in started:
        try:
            cluster.conn.stop_all()
        finally:
            remove_model_images(docker_client, cluster.name)
        assert cluster_containers(docker_client, cluster.name) == []


def remove_model_images(client: docker.DockerClient, cluster_name: str) -> None:
    """Delete the ``<cluster>-<model>:<version>`` images build_model made for a test cluster."""
    for image in client.images.list():
        for tag in image.tags:
            if tag.startswith(f"{cluster_name}-"):
                client.images.remove(tag, noprune=False)


@pytest.fixture
def cluster(make_cluster: Callable[..., Cluster]) -> Cluster:
    return make_cluster()


@pytest.fixture
def fake_model_data(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An empty model directory, as the original's tests use for the no-op image."""
    return str(tmp_path_factory.mktemp("fake_model_data"))
