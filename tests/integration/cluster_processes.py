"""A cluster of real processes for end-to-end tests: both frontends as ``python -m`` processes
on fixed loopback ports (so they can be restarted in place), closure containers, and small
REST helpers. Everything is driven over HTTP, the way users and clipper_admin do it.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import cloudpickle
import pytest
import requests

from tests.helpers import PYTHON, RedisServer, free_port, stop_process, wait_for_port

T = TypeVar("T")

# Fast keep-alive so a container notices a restarted frontend within a second or two.
FAST_KEEPALIVE = {"CLIPPER_RPC_POLL_MS": "200", "CLIPPER_RPC_ACTIVITY_TIMEOUT_MS": "3000"}
NO_CONNECTED_MODELS = "No connected models found for query"


def eventually(probe: Callable[[], T | None], timeout_s: float = 20.0, what: str = "condition") -> T:
    """Poll ``probe`` until it returns something other than None (live changes are async)."""
    deadline = time.monotonic() + timeout_s
    last: object = None
    while time.monotonic() < deadline:
        try:
            result = probe()
        except requests.RequestException as e:  # a frontend still starting
            last = e
            result = None
        if result is not None:
            return result
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached within {timeout_s} s (last: {last!r})")


class Cluster:
    """Redis (from the fixture) plus both frontends and model containers as real processes."""

    def __init__(self, redis: RedisServer, env: dict[str, str], tmp_path: Path) -> None:
        self.redis = redis
        self.env = env
        self.tmp_path = tmp_path
        self.query_port = free_port()
        self.rpc_port = free_port()
        self.management_port = free_port()
        self.query: subprocess.Popen[bytes] | None = None
        self.management: subprocess.Popen[bytes] | None = None
        self.containers: list[subprocess.Popen[bytes]] = []
        self._logs = 0

    def _log(self, stem: str) -> Path:
        self._logs += 1
        return self.tmp_path / f"{self._logs:02d}-{stem}.log"

    def _spawn(
        self, args: list[str], stem: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        with open(self._log(stem), "wb") as log:
            return subprocess.Popen(args, env=env or self.env, stdout=log, stderr=subprocess.STDOUT)

    def logs(self) -> str:
        files = sorted(self.tmp_path.glob("*.log"))
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in files)

    # ---------------------------------------------------------------- frontends

    def start_query(self, *flags: str) -> None:
        """The query frontend with its ports and Redis, plus ``flags``."""
        redis = ["--redis_ip", self.redis.host, "--redis_port", str(self.redis.port)]
        self.query = self._spawn(
            [PYTHON, "-m", "clipper_core.query_frontend", *redis, "--host", "127.0.0.1",
             "--port", str(self.query_port), "--rpc_host", "127.0.0.1",
             "--rpc_service_port", str(self.rpc_port), *flags],
            "query",
        )
        wait_for_port(self.query_port, 30)

    def start_management(self) -> None:
        self.management = self._spawn(
            [PYTHON, "-m", "clipper_core.management_frontend", "--redis_ip", self.redis.host,
             "--redis_port", str(self.redis.port), "--host", "127.0.0.1",
             "--port", str(self.management_port)],
            "management",
        )
        wait_for_port(self.management_port, 30)

    def stop_query(self) -> None:
        assert self.query is not None
        stop_process(self.query)
        assert self.query.returncode == 0, self.logs()

    def stop_management(self) -> None:
        assert self.management is not None
        stop_process(self.management)
        assert self.management.returncode == 0, self.logs()

    # ---------------------------------------------------------------- model containers

    def start_container(
        self, func: Callable[..., object], name: str, version: str
    ) -> subprocess.Popen[bytes]:
        model_dir = self.tmp_path / f"model-{name}-{version}-{len(self.containers)}"
        model_dir.mkdir()
        (model_dir / "func.pkl").write_bytes(cloudpickle.dumps(func))
        env = {
            **self.env, **FAST_KEEPALIVE,
            "CLIPPER_MODEL_NAME": name, "CLIPPER_MODEL_VERSION": version,
            "CLIPPER_MODEL_PATH": str(model_dir), "CLIPPER_IP": "127.0.0.1",
            "CLIPPER_PORT": str(self.rpc_port), "CLIPPER_INPUT_TYPE": "doubles",
            "CLIPPER_READY_FILE": str(model_dir / "ready.check"),
        }
        process = self._spawn(
            [PYTHON, "-m", "containers.python.closure_container"], f"container-{name}-{version}", env
        )
        self.containers.append(process)
        return process

    # ---------------------------------------------------------------- REST

    def admin(self, endpoint: str, body: dict[str, object]) -> str:
        response = requests.post(
            f"http://127.0.0.1:{self.management_port}/admin/{endpoint}", data=json.dumps(body), timeout=10
        )
        assert response.status_code == 200, (endpoint, response.status_code, response.text)
        return response.text

    def predict(self, app: str, body: dict[str, object]) -> requests.Response:
        return requests.post(f"http://127.0.0.1:{self.query_port}/{app}/predict", json=body, timeout=15)

    def add_app(self, name: str, slo_micros: int = 2_000_000) -> None:
        self.admin("add_app", {"name": name, "input_type": "doubles", "default_output": "-1.0",
                               "latency_slo_micros": slo_micros})

    def add_model(self, name: str, version: str, batch_size: int = -1) -> None:
        self.admin("add_model", {"model_name": name, "model_version": version, "labels": [],
                                 "input_type": "doubles", "container_name": "closure",
                                 "model_data_path": "/tmp/none", "batch_size": batch_size})

    def real_output(self, app: str, x: list[float]) -> object | None:
        """The model's output for ``x``, or None while the query still gets the default."""
        response = self.predict(app, {"input": x})
        if response.status_code != 200:
            return None
        answer = response.json()
        return None if answer["default"] else answer["output"]

    def stop_all(self) -> None:
        for process in [*self.containers, self.query, self.management]:
            if process is not None:
                stop_process(process)


@pytest.fixture
def cluster(redis_clean: RedisServer, subprocess_env: dict[str, str], tmp_path: Path) -> Iterator[Cluster]:
    started = Cluster(redis_clean, subprocess_env, tmp_path)
    yield started
    started.stop_all()


def make_sum_model(tag: str = "") -> Callable[[list[object]], list[str]]:
    """A closure (pickled by value) returning ``<tag><sum of the input>`` per input."""

    def predict(inputs: list[object]) -> list[str]:
        return [f"{tag}{float(sum(x))}" for x in inputs]  # type: ignore[call-overload]

    return predict


def make_batch_size_model(delay_s: float = 0.05) -> Callable[[list[object]], list[str]]:
    """A closure answering, for each input, how many inputs its batch held."""

    def predict(inputs: list[object]) -> list[str]:
        import time as _time

        _time.sleep(delay_s)
        return [str(len(inputs))] * len(inputs)

    return predict
