"""``build_model(..., container_registry=...)`` pushes to a real registry (fixture ``registry``).

``build_model`` needs only the engine, not a running cluster, so no cluster is started: each test
builds with a manager named after a random cluster and removes the images it made.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import docker
import pytest
import requests

from clipper_admin import ClipperConnection, ClipperException
from tests.docker.conftest import NOOP_IMAGE, host_manager, remove_model_images
from tests.helpers import free_port

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"


@pytest.fixture
def cluster_name(docker_client: docker.DockerClient) -> Iterator[str]:
    """A random cluster name whose ``[<registry>/]<cluster>-*`` images are removed afterwards."""
    name = f"registry-push-{random.randint(0, 10**6)}"
    yield name
    remove_model_images(docker_client, name)


@pytest.fixture
def model_data(tmp_path_factory: pytest.TempPathFactory, cluster_name: str) -> str:
    """A one-file model directory unique to the test, so its image shares no ID (and no
    repository digests) with images other tests built from the same base."""
    directory = tmp_path_factory.mktemp("model_data")
    (directory / "model.txt").write_text(f"model of {cluster_name}\n", encoding="utf-8")
    return str(directory)


def unstarted_connection(cluster_name: str) -> ClipperConnection:
    return ClipperConnection(host_manager(cluster_name))


def catalog(registry: str) -> list[str]:
    response = requests.get(f"http://{registry}/v2/_catalog", timeout=10)
    response.raise_for_status()
    return list(response.json()["repositories"] or [])


def test_build_model_pushes_to_the_given_registry(
    docker_client: docker.DockerClient, registry: str, cluster_name: str, model_data: str
) -> None:
    conn = unstarted_connection(cluster_name)

    image = conn.build_model("pushed", 3, model_data, NOOP_IMAGE, container_registry=registry)

    repository = f"{cluster_name}-pushed"
    assert image == f"{registry}/{repository}:3"
    tags = requests.get(f"http://{registry}/v2/{repository}/tags/list", timeout=10)
    assert tags.status_code == 200
    assert tags.json() == {"name": repository, "tags": ["3"]}
    # The registry holds this very image: its manifest digest is the one the engine recorded
    # for the push.
    manifest = requests.head(
        f"http://{registry}/v2/{repository}/manifests/3", headers={"Accept": MANIFEST_V2}, timeout=10
    )
    assert manifest.status_code == 200
    digest = manifest.headers["Docker-Content-Digest"]
    assert docker_client.images.get(image).attrs["RepoDigests"] == [f"{registry}/{repository}@{digest}"]


def test_build_model_without_registry_pushes_nothing(
    docker_client: docker.DockerClient, registry: str, cluster_name: str, model_data: str
) -> None:
    conn = unstarted_connection(cluster_name)

    image = conn.build_model("local-only", "v1", model_data, NOOP_IMAGE)

    assert image == f"{cluster_name}-local-only:v1"
    assert f"{cluster_name}-local-only" not in catalog(registry)
    # Never pushed anywhere: an image gets repository digests only from a push or a pull.
    assert docker_client.images.get(image).attrs["RepoDigests"] == []


def test_push_to_a_registry_where_nothing_listens_raises(
    docker_client: docker.DockerClient, cluster_name: str, model_data: str
) -> None:
    dead_registry = f"127.0.0.1:{free_port()}"
    conn = unstarted_connection(cluster_name)

    with pytest.raises(ClipperException) as raised:
        conn.build_model("unpushed", "v1", model_data, NOOP_IMAGE, container_registry=dead_registry)

    assert f"{dead_registry}/{cluster_name}-unpushed:v1" in str(raised.value)
    # The build itself succeeded; only the push failed.
    assert docker_client.images.get(f"{dead_registry}/{cluster_name}-unpushed:v1").attrs["RepoDigests"] == []
