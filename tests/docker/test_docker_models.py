"""Model replicas in Docker: the Docker items of the original admin suite (original-admin.md 9.1).

Each test gets a fresh host-network cluster (fixture ``cluster``) built from the no-op image.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import docker
import pytest
import requests

from clipper_admin.container_manager import CLIPPER_DOCKER_LABEL, CLIPPER_MODEL_CONTAINER_LABEL
from tests.docker.conftest import NOOP_IMAGE, Cluster

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]


def model_containers(client: docker.DockerClient, cluster: Cluster, include_stopped: bool = False) -> list:
    filters = {"label": [f"{CLIPPER_DOCKER_LABEL}={cluster.name}", CLIPPER_MODEL_CONTAINER_LABEL]}
    return client.containers.list(all=include_stopped, filters=filters)


def registered(cluster: Cluster) -> set[tuple[str, str]]:
    return {(m["model_name"], m["model_version"]) for m in cluster.conn.get_all_models(verbose=True)}


def wait_registered(cluster: Cluster, expected: set[tuple[str, str]], timeout_s: float = 30.0) -> None:
    """Unregistering is asynchronous, as in the original: the management frontend marks a
    version invalid and the query frontend deletes its record when it sees the event."""
    deadline = time.monotonic() + timeout_s
    while (current := registered(cluster)) != expected and time.monotonic() < deadline:
        time.sleep(0.2)
    assert current == expected


def test_model_deploys_successfully(
    docker_client: docker.DockerClient, cluster: Cluster, fake_model_data: str
) -> None:
    cluster.conn.build_and_deploy_model("m", "v1", "doubles", fake_model_data, NOOP_IMAGE)

    assert isinstance(cluster.conn.get_model_info("m", "v1"), dict)
    running = docker_client.containers.list(
        filters={"ancestor": NOOP_IMAGE, "label": f"{CLIPPER_DOCKER_LABEL}={cluster.name}"}
    )
    assert len(running) == 1
    container = running[0]
    assert container.image.tags == [f"{cluster.name}-m:v1"]
    assert container.labels[CLIPPER_MODEL_CONTAINER_LABEL] == "m_v1"
    env = dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])
    assert env["CLIPPER_MODEL_NAME"] == "m"
    assert env["CLIPPER_MODEL_VERSION"] == "v1"
    assert env["CLIPPER_INPUT_TYPE"] == "doubles"
    assert env["CLIPPER_IP"] == "127.0.0.1"
    assert env["CLIPPER_PORT"] == str(cluster.manager.clipper_rpc_port)
    assert container.attrs["State"]["Health"]["Status"] == "healthy"


def test_set_num_replicas_adds_and_deletes_containers(
    docker_client: docker.DockerClient, cluster: Cluster, fake_model_data: str
) -> None:
    name = "set-num-reps-model"
    cluster.conn.build_and_deploy_model(name, 1, "doubles", fake_model_data, NOOP_IMAGE)

    cluster.conn.set_num_replicas(name, 4)
    assert cluster.conn.get_num_replicas(name) == 4
    cluster.conn.set_num_replicas(name, 2, "1")
    assert cluster.conn.get_num_replicas(name, "1") == 2
    # Removed replicas are deleted, not left behind as stopped containers.
    assert len(model_containers(docker_client, cluster, include_stopped=True)) == 2


def test_stop_inactive_model_versions(
    docker_client: docker.DockerClient, cluster: Cluster, fake_model_data: str
) -> None:
    name = "inactive-model"
    cluster.conn.build_and_deploy_model(name, 1, "doubles", fake_model_data, NOOP_IMAGE, num_replicas=2)
    assert len(model_containers(docker_client, cluster)) == 2
    assert registered(cluster) == {(name, "1")}

    cluster.conn.build_and_deploy_model(name, 2, "doubles", fake_model_data, NOOP_IMAGE, num_replicas=3)
    assert len(model_containers(docker_client, cluster)) == 5
    assert registered(cluster) == {(name, "1"), (name, "2")}

    cluster.conn.stop_inactive_model_versions([name])
    assert len(model_containers(docker_client, cluster, include_stopped=True)) == 3
    wait_registered(cluster, {(name, "2")})


def test_stop_models_versioned_models_and_all_model_containers(
    docker_client: docker.DockerClient, cluster: Cluster
) -> None:
    for model in ("jimmypage", "robertplant"):
        for version in ("i", "ii"):
            cluster.conn.deploy_model(model, version, "doubles", NOOP_IMAGE)
    assert len(model_containers(docker_client, cluster)) == 4
    assert len(registered(cluster)) == 4

    cluster.conn.stop_models(["jimmypage"])
    assert len(model_containers(docker_client, cluster, include_stopped=True)) == 2
    wait_registered(cluster, {("robertplant", "i"), ("robertplant", "ii")})

    cluster.conn.stop_versioned_models({"robertplant": ["ii"]})
    remaining = model_containers(docker_client, cluster, include_stopped=True)
    assert [c.labels[CLIPPER_MODEL_CONTAINER_LABEL] for c in remaining] == ["robertplant_i"]
    wait_registered(cluster, {("robertplant", "i")})

    cluster.conn.stop_all_model_containers()
    assert model_containers(docker_client, cluster, include_stopped=True) == []
    wait_registered(cluster, set())
    # The cluster itself keeps running.
    assert cluster.conn.get_all_apps() == []


def test_get_logs_writes_one_file_per_container(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> None:
    cluster.conn.deploy_model("logged", "1", "doubles", NOOP_IMAGE, num_replicas=2)
    logging_dir = tmp_path_factory.mktemp("logs") / "nested"

    paths = cluster.conn.get_clipper_logs(logging_dir=str(logging_dir))

    # Redis, both frontends and two replicas.
    assert len(paths) == 5
    assert len(set(paths)) == 5
    for path in paths:
        with open(path, "rb") as f:
            assert f.read(), f"{path} is empty"
    assert any("mgmt_frontend" in p for p in paths)
    assert any("logged_1" in p for p in paths)


def test_noop_model_answers_queries(make_cluster: Callable[..., Cluster]) -> None:
    cluster = make_cluster()
    cluster.conn.register_application("noop-app", "doubles", "DEFAULT", 3000000)
    cluster.conn.deploy_model("noop", "1", "doubles", NOOP_IMAGE)
    cluster.conn.link_model_to_app("noop-app", "noop")
    url = f"http://{cluster.conn.get_query_addr()}/noop-app/predict"
    deadline = time.monotonic() + 60
    while True:
        reply = requests.post(url, json={"input_batch": [[1.0], [2.0], [3.0], [4.0]]}, timeout=10).json()
        if not any(p["default"] for p in reply.get("batch_predictions", [{"default": True}])):
            break
        assert time.monotonic() < deadline, reply
        time.sleep(0.5)
    assert [p["output"] for p in reply["batch_predictions"]] == [1.0] * 4
