"""The ``clipper`` command with ``--manager docker`` (host network) against a real engine: start,
deploy from a file (a real model image build, its steps streamed as log lines), predict, status
--json, logs, stop, and nothing of the cluster left behind."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from typing import Any

import docker
import pytest

from tests.docker.conftest import cluster_containers, remove_model_images
from tests.helpers import REPO_ROOT, free_port

pytestmark = pytest.mark.docker
SUM_MODEL = REPO_ROOT / "examples" / "cli" / "sum_model.py"


def test_clipper_command_drives_a_docker_cluster(docker_client: docker.DockerClient) -> None:
    name = f"cli-docker-{random.randint(0, 10**6)}"
    env = {**os.environ, "COLUMNS": "200",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}

    def clipper(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "clipper_admin.cli", "--manager", "docker", "--host-network",
             "--cluster", name, *args],
            env=env, capture_output=True, text=True, timeout=600,
        )
        if check:
            assert done.returncode == 0, f"clipper {' '.join(args)}: {done.returncode}\n{done.stderr}"
        return done

    def as_json(*args: str) -> Any:
        return json.loads(clipper(*args, "--json").stdout)

    try:
        started = clipper("start", "--json", "--query-port", str(free_port()), "--management-port",
                          str(free_port()), "--rpc-port", str(free_port()), "--redis-port", str(free_port()))
        assert json.loads(started.stdout)["manager"] == "docker"
        assert "Waiting for container query_frontend-" in started.stderr
        deployed = clipper("deploy", f"{SUM_MODEL}:predict", "--name", "sum", "--input-type", "doubles",
                           "--app", "adder")
        # The model image build, step by step, then the wait for its container.
        assert "Step 1/2 : FROM clipper/python311-closure-container:" in deployed.stderr
        assert "Step 2/2 : COPY model /model/" in deployed.stderr
        assert "Waiting for container sum_1-" in deployed.stderr
        assert as_json("predict", "adder", "--input", "[1.0, 2.0]")["output"] == 3.0
        status = as_json("status")
        model = next(m for m in status["models"] if m["name"] == "sum")
        assert model["current_version"] == "1"
        assert [r["state"] for r in model["versions"][0]["replica_states"]] == ["ready"]
        logs = as_json("logs", "-n", "5")
        assert any(process.startswith("query_frontend-") for process in logs)
        failed = clipper("link", "no-such-app", "sum", check=False)
        assert failed.returncode == 1
        assert failed.stderr.strip().splitlines() == [
            "error: No app with name 'no-such-app' exists. (HTTP 400)"
        ]
        clipper("stop")
        assert cluster_containers(docker_client, name) == []
    finally:
        clipper("stop", check=False)
        remove_model_images(docker_client, name)
