"""Cluster-level behaviour of DockerContainerManager and its image building, on a real engine."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from pathlib import Path

import docker
import docker.errors
import pytest
import redis
import requests

from clipper_admin import ClipperConnection, ClipperException, DockerContainerManager
from clipper_admin.docker import clipper_image, clipper_version
from clipper_core.state.schema import Db
from tests.docker.conftest import NOOP_IMAGE, Cluster, cluster_containers, host_manager
from tests.helpers import RedisServer, free_port

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]


def predict_until_answered(query_addr: str, app: str, deadline_s: float = 60.0) -> dict:
    deadline = time.monotonic() + deadline_s
    while True:
        reply = requests.post(f"http://{query_addr}/{app}/predict", json={"input": [1.0, 2.0]}, timeout=10)
        body = reply.json()
        if reply.status_code == 200 and not body["default"]:
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.5)


def test_two_clusters_side_by_side(
    docker_client: docker.DockerClient, make_cluster: Callable[..., Cluster]
) -> None:
    alpha = make_cluster("alpha")
    beta = make_cluster("beta")
    assert alpha.conn.get_query_addr() != beta.conn.get_query_addr()
    assert alpha.manager.get_admin_addr() != beta.manager.get_admin_addr()
    for cluster in (alpha, beta):
        cluster.conn.register_application("app", "doubles", "DEFAULT", 3000000)
        cluster.conn.deploy_model("noop", "1", "doubles", NOOP_IMAGE)
        cluster.conn.link_model_to_app("app", "noop")
    for cluster in (alpha, beta):
        assert predict_until_answered(cluster.conn.get_query_addr(), "app")["output"] == 1.0
        assert len(cluster_containers(docker_client, cluster.name)) == 4

    alpha.conn.stop_all(graceful=False)

    assert cluster_containers(docker_client, alpha.name) == []
    assert len(cluster_containers(docker_client, beta.name)) == 4
    assert predict_until_answered(beta.conn.get_query_addr(), "app")["output"] == 1.0


def test_external_redis_is_used_and_not_started(
    docker_client: docker.DockerClient, redis_clean: RedisServer
) -> None:
    name = f"external-{random.randint(0, 10**6)}"
    manager = DockerContainerManager(
        cluster_name=name,
        clipper_query_port=free_port(),
        clipper_management_port=free_port(),
        clipper_rpc_port=free_port(),
        redis_ip=redis_clean.host,
        redis_port=redis_clean.port,
        docker_network="host",
    )
    conn = ClipperConnection(manager)
    try:
        conn.start_clipper()
        names = sorted(c.name.split("-")[0] for c in cluster_containers(docker_client, name))
        assert names == ["mgmt_frontend", "query_frontend"]
        conn.register_application("stored-outside", "doubles", "DEFAULT", 100000)
        client = redis.Redis(host=redis_clean.host, port=redis_clean.port, db=int(Db.APPLICATION))
        try:
            assert client.exists("stored-outside") == 1
        finally:
            client.close()
    finally:
        conn.stop_all()
    assert cluster_containers(docker_client, name) == []


def test_a_replica_that_crashes_on_start_fails_the_deploy_with_its_log(
    cluster: Cluster, tmp_path: Path
) -> None:
    (tmp_path / "func.pkl").write_bytes(b"this is not a pickle")
    image = cluster.conn.build_model(
        "crashy", "1", str(tmp_path), clipper_image("python311-closure-container")
    )

    with pytest.raises(ClipperException, match="failed to start") as info:
        cluster.conn.deploy_model("crashy", "1", "doubles", image)
    # The container's own last log lines explain why.
    assert "crashy_1-" in str(info.value)
    assert "UnpicklingError" in str(info.value)
    assert cluster.conn.get_num_replicas("crashy", "1") == 0


def test_connect_recovers_ports_from_labels(cluster: Cluster) -> None:
    cluster.conn.register_application("seen", "doubles", "DEFAULT", 100000)
    # Default ports: connect() must replace them with the cluster's own from the labels.
    other = ClipperConnection(DockerContainerManager(cluster_name=cluster.name, docker_network="host"))
    other.connect()
    assert other.get_query_addr() == cluster.conn.get_query_addr()
    assert other.cm.get_admin_addr() == cluster.manager.get_admin_addr()
    assert other.cm.clipper_rpc_port == cluster.manager.clipper_rpc_port
    assert other.cm.redis_port == cluster.manager.redis_port
    assert other.get_all_apps() == ["seen"]


def test_starting_an_existing_cluster_fails(cluster: Cluster) -> None:
    with pytest.raises(ClipperException, match="already exists"):
        host_manager(cluster.name).start_clipper()


def test_connect_to_a_missing_cluster_fails(docker_client: docker.DockerClient) -> None:
    with pytest.raises(ClipperException, match="No running Clipper cluster"):
        host_manager(f"absent-{random.randint(0, 10**6)}").connect()


def test_build_model_installs_packages_and_copies_the_model(
    docker_client: docker.DockerClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "weights.txt").write_text("42")
    manager = host_manager(f"build-{random.randint(0, 10**6)}")
    caplog.set_level(logging.INFO)
    image = ClipperConnection(manager).build_model(
        "built", 3, str(tmp_path), NOOP_IMAGE, pkgs_to_install=["six"]
    )
    try:
        assert image == f"{manager.cluster_name}-built:3"
        output = docker_client.containers.run(
            image,
            entrypoint=["python", "-c", "import six; print(open('/model/weights.txt').read())"],
            network_mode="host",
            remove=True,
        )
        assert output.decode().strip() == "42"
        # The build's output is logged step by step.
        messages = [r.getMessage() for r in caplog.records]
        assert any(m.startswith("Step ") and "RUN pip install" in m for m in messages)
        assert any("Successfully installed six" in m for m in messages)
    finally:
        docker_client.images.remove(image)


def test_build_model_failure_reports_the_build_output(tmp_path: Path) -> None:
    manager = host_manager(f"broken-{random.randint(0, 10**6)}")
    with pytest.raises(ClipperException) as info:
        manager.build_model(
            "broken", "1", str(tmp_path), NOOP_IMAGE, pkgs_to_install=["/no/such/package-dir"]
        )
    message = str(info.value)
    assert "Building image" in message
    assert "/no/such/package-dir" in message
    assert "returned a non-zero code" in message


def test_missing_clipper_image_is_built_from_dockerfiles(
    docker_client: docker.DockerClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A registry that exists nowhere: the image cannot be pulled, so it is built from source.
    base_image = f"cliptest{random.randint(0, 10**6)}/noop-container:{clipper_version()}"
    manager = host_manager(f"rebuild-{random.randint(0, 10**6)}")
    caplog.set_level(logging.INFO)
    image = manager.build_model("rebuilt", "1", str(tmp_path), base_image)
    try:
        docker_client.images.get(base_image)
        assert any(
            "building it from dockerfiles/NoopContainerDockerfile" in r.getMessage() for r in caplog.records
        )
    finally:
        docker_client.images.remove(image)
        docker_client.images.remove(base_image)


def test_absent_foreign_image_is_an_error(tmp_path: Path) -> None:
    manager = host_manager(f"foreign-{random.randint(0, 10**6)}")
    with pytest.raises(ClipperException, match="cannot be pulled"):
        manager.build_model("x", "1", str(tmp_path), f"nowhere{random.randint(0, 10**6)}/someimage:1")
