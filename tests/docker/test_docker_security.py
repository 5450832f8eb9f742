# ruff: noqa: E501  (expected values read best unwrapped)
"""A Docker cluster's Redis: generated password, loopback bind on the host network, records kept
across a SIGKILL (AOF in a volume, restarted by the engine), volume removed by stop_all; and the
management API's bearer token, recovered by connect() from the container's environment."""

from __future__ import annotations

import random
import signal
import time

import docker
import psutil
import pytest
import redis
import requests

from clipper_admin import ClipperConnection, DockerContainerManager
from clipper_admin.container_manager import CLIPPER_DOCKER_LABEL, CLIPPER_DOCKER_PORT_LABELS
from tests.helpers import free_port

pytestmark = pytest.mark.docker


def test_redis_password_persistence_and_admin_token(docker_client: docker.DockerClient) -> None:
    name = f"docker-secure-{random.randint(0, 10**6)}"
    manager = DockerContainerManager(
        cluster_name=name, clipper_query_port=free_port(), clipper_management_port=free_port(),
        clipper_rpc_port=free_port(), redis_port=free_port(), docker_network="host", admin_token="tok-9",
    )
    conn = ClipperConnection(manager)
    conn.start_clipper()
    try:
        port = manager.redis_port
        with pytest.raises(redis.AuthenticationError):
            redis.Redis("127.0.0.1", port, socket_timeout=5).ping()
        assert manager.redis_password and redis.Redis("127.0.0.1", port, password=manager.redis_password).ping()
        admin = f"http://{manager.get_admin_addr()}/admin"
        assert requests.post(f"{admin}/get_all_applications", json={"verbose": False}, timeout=10).status_code == 401

        conn.register_application("kept-app", "doubles", "-1", 100000)
        conn.register_model("kept-model", "1", "doubles")
        conn.link_model_to_app("kept-app", "kept-model")
        (container,) = docker_client.containers.list(
            filters={"label": [f"{CLIPPER_DOCKER_LABEL}={name}", CLIPPER_DOCKER_PORT_LABELS["redis"]]}
        )
        # SIGKILL redis-server itself, as the OS would (``docker kill`` counts as a manual stop,
        # for which the engine's restart policy does not apply); the engine restarts it.
        container.reload()
        init = psutil.Process(container.attrs["State"]["Pid"])
        (server,) = [p for p in [init, *init.children(recursive=True)] if p.name() == "redis-server"]
        server.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 60
        while True:
            try:
                if conn.get_linked_models("kept-app") == ["kept-model"]:
                    break
            except Exception:  # Redis or the API is still coming back
                pass
            assert time.monotonic() < deadline, "records not back after the Redis restart"
            time.sleep(0.5)
        assert conn.get_all_apps() == ["kept-app"]
        assert conn.get_all_models() == ["kept-model:1"]

        other = ClipperConnection(DockerContainerManager(cluster_name=name, docker_network="host"))
        other.connect()  # ports from labels, token and password from the management frontend's env
        assert other.cm.admin_token == "tok-9"
        assert other.get_all_apps() == ["kept-app"]
    finally:
        conn.stop_all()
    assert docker_client.volumes.list(filters={"label": f"{CLIPPER_DOCKER_LABEL}={name}"}) == []
