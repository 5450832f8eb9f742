"""The query frontend as a process: flags, signals, start-up failures (real redis-server)."""

from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from clipper_core.errors import StateError
from clipper_core.query_frontend.server import QueryFrontend
from clipper_core.settings import QuerySettings, RedisOptions
from tests.helpers import PYTHON, RedisServer, free_port, stop_process, wait_for_port
from tests.integration.cluster_processes import eventually


def test_runs_as_a_module_and_stops_on_sigterm(
    redis_clean: RedisServer, subprocess_env: dict[str, str]
) -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "clipper_core.query_frontend",
            "--redis_ip",
            redis_clean.host,
            "--redis_port",
            str(redis_clean.port),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--rpc_host",
            "127.0.0.1",
            "--rpc_service_port",
            str(free_port()),
            "--thread_pool_size",
            "4",
            "--timeout_request",
            "5",
            "--timeout_content",
            "300",
        ],
        env=subprocess_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, timeout_s=30)
        import requests

        health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        missing = requests.post(f"http://127.0.0.1:{port}/none/predict", json={"input": [1.0]}, timeout=10)
        assert missing.status_code == 404
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        stop_process(process)


def test_negative_cache_size_exits_with_a_message(subprocess_env: dict[str, str]) -> None:
    result = subprocess.run(
        [PYTHON, "-m", "clipper_core.query_frontend", "--prediction_cache_size", "-1"],
        env=subprocess_env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert b"--prediction_cache_size" in result.stderr and b"negative" in result.stderr


def test_unreachable_redis_keeps_retrying_rather_than_crashing(
    subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    env = dict(subprocess_env, CLIPPER_REDIS_PORT=str(free_port()), CLIPPER_QUERY_PORT=str(port))
    stderr_path = tmp_path / "stderr.log"
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [PYTHON, "-m", "clipper_core.query_frontend", "--redis_ip", "127.0.0.1", "--host", "127.0.0.1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        eventually(
            lambda: "Waiting for Redis" in stderr_path.read_text(errors="replace") or None,
            what="the frontend to report that it waits for Redis",
        )
        assert process.poll() is None  # still waiting for Redis, as the original's retry loop
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
    finally:
        stop_process(process)
    assert "Waiting for Redis" in stderr_path.read_text(errors="replace")


@pytest.fixture
def redis_without_config(tmp_path: Path) -> Iterator[int]:
    """A redis-server whose CONFIG command is disabled (as on many managed Redis services)."""
    port = free_port()
    redis = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(tmp_path),
            "--rename-command",
            "CONFIG",
            "",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield port
    finally:
        stop_process(redis)


async def test_forbidden_config_command_fails_start_up_with_a_clear_error(redis_without_config: int) -> None:
    settings = QuerySettings(
        redis=RedisOptions("127.0.0.1", redis_without_config),
        host="127.0.0.1",
        port=0,
        rpc_host="127.0.0.1",
        rpc_service_port=free_port(),
    )
    with pytest.raises(StateError) as info:
        await QueryFrontend.start(settings)
    assert "notify-keyspace-events" in info.value.cause
    assert "Allow the CONFIG command" in info.value.cause


def test_rest_port_in_use_exits_with_a_message(
    redis_clean: RedisServer, subprocess_env: dict[str, str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                PYTHON, "-m", "clipper_core.query_frontend",
                "--redis_ip", redis_clean.host, "--redis_port", str(redis_clean.port),
                "--host", "127.0.0.1", "--port", str(port),
                "--rpc_host", "127.0.0.1", "--rpc_service_port", str(free_port()),
            ],
            env=subprocess_env,
            capture_output=True,
            timeout=60,
            check=False,
        )  # fmt: skip
    assert result.returncode == 1
    assert b"Query frontend cannot run" in result.stderr
