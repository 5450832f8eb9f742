"""docker-compose.yml: a local cluster (Redis and both frontends) started with docker-compose."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import time
from collections.abc import Iterator

import docker
import pytest
import requests

from tests.helpers import REPO_ROOT, free_port

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

HEALTHY_DEADLINE_S = 120.0


def compose_binary() -> str:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose is not installed; `make test-docker` installs Debian's package")
    return binary


def run_compose(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [compose_binary(), *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_default_compose_file_is_valid_and_publishes_the_documented_ports() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLIPPER_")}
    result = run_compose(["config"], env)
    assert result.returncode == 0, result.stderr
    for port in ("1337", "1338", "7000", "6379"):
        # Published on the loopback only unless CLIPPER_PUBLISH_HOST says otherwise (issue 11.5).
        assert f"127.0.0.1:{port}:{port}/tcp" in result.stdout


@pytest.fixture
def compose_cluster(docker_client: docker.DockerClient) -> Iterator[dict[str, str]]:
    project = f"cliptest{random.randint(0, 10**6)}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLIPPER_")}
    env.update(
        CLIPPER_BIND_HOST="127.0.0.1",
        CLIPPER_QUERY_PORT=str(free_port()),
        CLIPPER_MANAGEMENT_PORT=str(free_port()),
        CLIPPER_RPC_PORT=str(free_port()),
        CLIPPER_REDIS_PORT=str(free_port()),
    )
    files = ["-p", project, "-f", "docker-compose.yml", "-f", "docker-compose.host.yml"]
    up = run_compose([*files, "up", "-d", "--no-build"], env)
    try:
        assert up.returncode == 0, up.stderr
        yield env
    finally:
        down = run_compose([*files, "down", "-v"], env)  # -v: the Redis data volume too
        assert down.returncode == 0, down.stderr
        leftovers = docker_client.containers.list(
            all=True, filters={"label": f"com.docker.compose.project={project}"}
        )
        assert leftovers == []


def test_host_network_compose_cluster_serves(
    docker_client: docker.DockerClient, compose_cluster: dict[str, str]
) -> None:
    admin = f"http://127.0.0.1:{compose_cluster['CLIPPER_MANAGEMENT_PORT']}"
    query = f"http://127.0.0.1:{compose_cluster['CLIPPER_QUERY_PORT']}"
    deadline = time.monotonic() + HEALTHY_DEADLINE_S
    while True:
        try:
            if requests.get(f"{admin}/admin/ping", timeout=2).text == "PONG":
                break
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, "management frontend never answered"
        time.sleep(0.5)

    app = {
        "name": "compose-app",
        "input_type": "doubles",
        "default_output": "DEFAULT",
        "latency_slo_micros": 100000,
    }
    assert requests.post(f"{admin}/admin/add_app", json=app, timeout=10).status_code == 200
    assert requests.post(
        f"{admin}/admin/get_all_applications", json={"verbose": False}, timeout=10
    ).json() == ["compose-app"]
    while True:  # the query frontend may still be starting when the management one answers
        try:
            reply = requests.post(f"{query}/compose-app/predict", json={"input": [1.0]}, timeout=10)
            if reply.status_code == 200:
                break
            last = reply.text
        except requests.RequestException as exc:
            last = str(exc)
        assert time.monotonic() < deadline, last
        time.sleep(0.5)
    body = reply.json()
    assert body["default"] is True
    assert body["output"] == "DEFAULT"
