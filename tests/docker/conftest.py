"""Fixtures for tests against a real Docker engine (``make test-docker``).

Every cluster uses host networking (the only kind the local engine offers), a random name and
random free loopback ports, and is torn down with ``stop_all()`` after the test, which must leave
no container of the cluster behind.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
import requests

from clipper_admin import ClipperConnection
from clipper_admin.container_manager import CLIPPER_DOCKER_LABEL
from clipper_admin.docker import DockerContainerManager, clipper_image
from tests.helpers import free_port, stop_process

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

    def start(prefix: str = "docker-test", docker_network: str = "host", **start_options: Any) -> Cluster:
        name = f"{prefix}-{random.randint(0, 10**6)}"
        manager = host_manager(name, docker_network)
        conn = ClipperConnection(manager)
        started.append(Cluster(name, manager, conn))
        conn.start_clipper(**start_options)
        return started[-1]

    yield start
    for cluster in started:
        try:
            cluster.conn.stop_all()
        finally:
            remove_model_images(docker_client, cluster.name)
        assert cluster_containers(docker_client, cluster.name) == []


def remove_model_images(client: docker.DockerClient, cluster_name: str) -> None:
    """Delete the ``[<registry>/]<cluster>-<model>:<version>`` images build_model made for a
    test cluster."""
    for image in client.images.list():
        for tag in image.tags:
            if tag.rsplit("/", 1)[-1].startswith(f"{cluster_name}-"):
                client.images.remove(tag, noprune=False)


@pytest.fixture
def cluster(make_cluster: Callable[..., Cluster]) -> Cluster:
    return make_cluster()


@pytest.fixture
def fake_model_data(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An empty model directory, as the original's tests use for the no-op image."""
    return str(tmp_path_factory.mktemp("fake_model_data"))


REGISTRY_START_TIMEOUT_S = 20.0


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    """A real registry (Debian's ``docker-registry``, Distribution 2.8) on a free loopback port.

    Yields its address ``127.0.0.1:<port>``; engines treat 127.0.0.0/8 as an insecure registry,
    so plain HTTP works without engine configuration. Storage lives in ``tmp_path``.
    """
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.fail("docker-registry is not installed; run `make test-docker`, which installs it")
    address = f"127.0.0.1:{free_port()}"
    config = tmp_path / "registry.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: info\n"
        f"storage:\n  filesystem:\n    rootdirectory: {tmp_path / 'registry-data'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: {address}\n",
        encoding="utf-8",
    )
    # REGISTRY_* variables override the config file; the test's registry must be the file's.
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    log_path = tmp_path / "registry.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT, env=env
        )
    try:
        _wait_for_registry(process, address, log_path)
        yield address
    finally:
        stop_process(process)


def _wait_for_registry(process: subprocess.Popen[bytes], address: str, log_path: Path) -> None:
    deadline = time.monotonic() + REGISTRY_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if requests.get(f"http://{address}/v2/", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    log_tail = log_path.read_text(errors="replace")[-2000:]
    pytest.fail(
        f"docker-registry did not answer GET http://{address}/v2/ "
        f"(exit code {process.poll()}); its log:\n{log_tail}"
    )
