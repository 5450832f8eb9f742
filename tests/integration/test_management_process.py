# ruff: noqa: E501  (request bodies read best unwrapped)
"""The management frontend as a real process (and a Redis outage): state survives a restart, it
waits for a late Redis, speaks AUTH, and recovers after Redis comes back."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from aiohttp.test_utils import TestClient, TestServer

from clipper_core.management_frontend import build_app
from clipper_core.settings import RedisOptions
from tests.helpers import PYTHON, RedisServer, free_port, start_redis, stop_process, wait_for_port

ADD_MODEL_BODY = {"model_name": "m", "model_version": "1", "labels": [], "input_type": "doubles",
                  "container_name": "c", "model_data_path": "p", "batch_size": -1}


async def ok(client: TestClient, endpoint: str, body: object) -> str:
    response = await client.post(f"/admin/{endpoint}", data=json.dumps(body).encode())
    assert response.status == 200, await response.text()
    return await response.text()


async def add_app(client: TestClient, name: str) -> None:
    await ok(client, "add_app", {"name": name, "input_type": "doubles", "default_output": "-1", "latency_slo_micros": 1000})


# ------------------------------------------------------------------ Redis outage


async def test_redis_outage_is_500_json_and_recovers(tmp_path: Path) -> None:
    server = start_redis(tmp_path)
    app = build_app(RedisOptions(server.host, server.port))
    async with TestClient(TestServer(app)) as test_client:
        await add_app(test_client, "a")
        stop_process(server.process)
        response = await test_client.post("/admin/get_all_applications", data=b'{"verbose":false}')
        assert response.status == 500
        assert (await response.json())["error"] == "State error"
        server = start_redis(tmp_path, server.port)  # same port, empty: --save ""
        try:
            assert await ok(test_client, "get_all_applications", {"verbose": False}) == "[]"
            await add_app(test_client, "b")
        finally:
            stop_process(server.process)


# ------------------------------------------------------------------ the real process


def _start_frontend(redis_port: int, env: dict[str, str], *extra: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen(
        [PYTHON, "-m", "clipper_core.management_frontend", "--redis_ip", "127.0.0.1",
         "--redis_port", str(redis_port), "--host", "127.0.0.1", "--port", str(port), *extra],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    return process, port


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        stop_process(process)


def _admin(port: int, endpoint: str, body: dict[str, object]) -> requests.Response:
    return requests.post(f"http://127.0.0.1:{port}/admin/{endpoint}", data=json.dumps(body), timeout=10)


def test_restart_keeps_state(redis_clean: RedisServer, subprocess_env: dict[str, str], processes: list[subprocess.Popen[bytes]]) -> None:
    process, port = _start_frontend(redis_clean.port, subprocess_env)
    processes.append(process)
    wait_for_port(port, 20)
    assert _admin(port, "add_app", {"name": "a", "input_type": "doubles", "default_output": "-1", "latency_slo_micros": 1000}).status_code == 200
    assert _admin(port, "add_model", {**ADD_MODEL_BODY, "container_name": "c"}).status_code == 200
    assert _admin(port, "add_model_links", {"app_name": "a", "model_names": ["m"]}).status_code == 200
    stop_process(process)
    assert process.returncode == 0  # SIGTERM is a clean shutdown

    restarted, port = _start_frontend(redis_clean.port, subprocess_env)
    processes.append(restarted)
    wait_for_port(port, 20)
    assert _admin(port, "get_application", {"name": "a"}).json() == {
        "input_type": "doubles", "default_output": "-1", "latency_slo_micros": 1000, "name": "a", "linked_models": ["m"]}
    assert _admin(port, "get_model", {"model_name": "m", "model_version": "1"}).json()["is_current_version"] is True


def _wait_for_stderr(process: subprocess.Popen[bytes], needle: bytes, timeout_s: float = 30.0) -> None:
    """Block until ``needle`` appears on the child's stderr; keep draining it afterwards."""
    found = threading.Event()
    seen: list[bytes] = []

    def drain() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            seen.append(line)
            if needle in line:
                found.set()

    threading.Thread(target=drain, daemon=True).start()
    assert found.wait(timeout_s), b"".join(seen)


def test_starts_before_redis_and_answers_once_it_is_up(tmp_path: Path, subprocess_env: dict[str, str], processes: list[subprocess.Popen[bytes]]) -> None:
    redis_port = free_port()
    process, port = _start_frontend(redis_port, subprocess_env)
    processes.append(process)
    _wait_for_stderr(process, b"Waiting for Redis")  # it tried and failed: Redis is really late
    assert process.poll() is None
    with pytest.raises(OSError):  # Redis first, then the port: a PONG means the API is usable
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    server = start_redis(tmp_path, redis_port)
    try:
        wait_for_port(port, 20)
        assert requests.get(f"http://127.0.0.1:{port}/admin/ping", timeout=5).text == "PONG"
        assert _admin(port, "add_app", {"name": "late", "input_type": "s", "default_output": "", "latency_slo_micros": 1}).text == (
            "Successfully added application with name 'late'")
    finally:
        stop_process(server.process)


@pytest.mark.parametrize("how", ["flag", "REDIS_PASSWORD", "CLIPPER_REDIS_PASSWORD"])
def test_password_protected_redis(tmp_path: Path, subprocess_env: dict[str, str], processes: list[subprocess.Popen[bytes]], how: str) -> None:
    server = start_redis(tmp_path, extra_args=["--requirepass", "pw-123"])
    try:
        env = dict(subprocess_env)
        env.pop("REDIS_PASSWORD", None)
        env.pop("CLIPPER_REDIS_PASSWORD", None)
        extra: tuple[str, ...] = ("--redis_password", "pw-123") if how == "flag" else ()
        if how != "flag":
            env[how] = "pw-123"
        process, port = _start_frontend(server.port, env, *extra)
        processes.append(process)
        wait_for_port(port, 20)
        assert _admin(port, "add_app", {"name": "p", "input_type": "b", "default_output": "", "latency_slo_micros": 1}).status_code == 200
        assert _admin(port, "get_all_applications", {"verbose": False}).json() == ["p"]
    finally:
        stop_process(server.process)


def test_console_script_runs_main(subprocess_env: dict[str, str]) -> None:
    script = shutil.which("clipper-management-frontend")
    assert script is not None, "console script missing: run `pip install -e .` (make install)"
    result = subprocess.run([script, "--help"], env=subprocess_env, capture_output=True, timeout=60)
    assert result.returncode == 0
    assert b"--redis_password" in result.stdout and b"--redis_port" in result.stdout
    bad = subprocess.run([script, "--port", "x"], env=subprocess_env, capture_output=True, timeout=60)
    assert bad.returncode == 2 and b"invalid value for --port" in bad.stderr


@pytest.mark.parametrize("how", ["flag", "CLIPPER_ADMIN_TOKEN"])
def test_admin_token_is_required_on_every_admin_path_but_ping(redis_clean: RedisServer, subprocess_env: dict[str, str], processes: list[subprocess.Popen[bytes]], how: str) -> None:
    env = {k: v for k, v in subprocess_env.items() if k != "CLIPPER_ADMIN_TOKEN"}
    extra: tuple[str, ...] = ("--admin_token", "s3cret-token") if how == "flag" else ()
    if how != "flag":
        env[how] = "s3cret-token"
    process, port = _start_frontend(redis_clean.port, env, *extra)
    processes.append(process)
    wait_for_port(port, 20)
    base = f"http://127.0.0.1:{port}"
    app_body = json.dumps({"name": "t", "input_type": "doubles", "default_output": "-1", "latency_slo_micros": 1000})
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret-token"},
                    {"Authorization": "Bearer"}, {"Authorization": "s3cret-token"}):
        for path in ("/admin/add_app", "/admin/get_all_applications", "/admin/no_such_endpoint"):
            refused = requests.post(base + path, data=app_body, headers=headers, timeout=10)
            assert refused.status_code == 401, (path, headers, refused.text)
            assert refused.json()["error"] == "Unauthorized"
            assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert requests.get(base + "/admin/ping", timeout=10).text == "PONG"  # open: liveness probes
    assert requests.get(base + "/healthz", timeout=10).json()["status"] == "ok"
    good = {"Authorization": "Bearer s3cret-token"}
    assert requests.post(base + "/admin/add_app", data=app_body, headers=good, timeout=10).status_code == 200
    listed = requests.post(base + "/admin/get_all_applications", data=b'{"verbose":false}', headers=good, timeout=10)
    assert listed.json() == ["t"]
    assert requests.post(base + "/admin/no_such_endpoint", data=b"{}", headers=good, timeout=10).status_code == 404


def test_without_a_token_the_api_stays_open(redis_clean: RedisServer, subprocess_env: dict[str, str], processes: list[subprocess.Popen[bytes]]) -> None:
    env = {k: v for k, v in subprocess_env.items() if k != "CLIPPER_ADMIN_TOKEN"}
    process, port = _start_frontend(redis_clean.port, env)
    processes.append(process)
    wait_for_port(port, 20)
    assert _admin(port, "get_all_applications", {"verbose": False}).status_code == 200
