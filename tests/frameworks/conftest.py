"""Framework deployers against a real local cluster: one cluster (free ports, a temporary
CLIPPER_HOME) for the whole session; every test registers its own app and model names.

These tests need the frameworks installed (``make test-frameworks`` installs them); they are
marked ``frameworks`` and excluded from plain ``make test``.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cloudpickle
import pytest
import requests

from clipper_admin import ClipperConnection, LocalContainerManager
from clipper_admin.local.cluster_record import ClusterRecord
from tests.helpers import free_port

ANSWER_TIMEOUT_S = 120.0
STARTUP_TIMEOUT_S = 300.0


@dataclass
class Cluster:
    conn: ClipperConnection
    manager: LocalContainerManager

    def replica_log(self, model: str) -> str:
        """Text of the newest log file of ``model``'s replicas."""
        logs = sorted(self.manager.paths.log_dir.glob(f"{model}_*.log"), key=os.path.getmtime)
        return logs[-1].read_text(errors="replace") if logs else ""

    def replica_pids(self, model: str) -> list[int]:
        record = ClusterRecord.load(self.manager.paths)
        assert record is not None
        return [r.process.pid for r in record.replicas if r.name == model and r.process.is_alive()]


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    home = tmp_path_factory.mktemp("clipper_home")
    manager = LocalContainerManager(
        cluster_name=f"fw-test-{uuid.uuid4().hex[:8]}",
        query_port=free_port(),
        management_port=free_port(),
        rpc_port=free_port(),
        redis_port=free_port(),
        clipper_home=str(home),
        # A JVM (PySpark) or TensorFlow replica starting beside others on two shared cores.
        startup_timeout_s=STARTUP_TIMEOUT_S,
    )
    conn = ClipperConnection(manager)
    conn.start_clipper()
    try:
        yield Cluster(conn, manager)
    finally:
        conn.stop_all()


@pytest.fixture(scope="session", autouse=True)
def _pickle_test_functions_by_value() -> Iterator[None]:
    """The functions these tests deploy travel by value, as a user's ``__main__`` functions do:
    a container (a Docker image above all) cannot import this repository's ``tests`` package."""
    modules = [m for name, m in list(sys.modules.items()) if name.startswith("tests.frameworks.test_")]
    for module in modules:
        cloudpickle.register_pickle_by_value(module)
    yield
    for module in modules:
        cloudpickle.unregister_pickle_by_value(module)


@pytest.fixture(autouse=True)
def _stop_model_replicas(cluster: Cluster) -> Iterator[None]:
    """Each test's replicas (a JVM, a TensorFlow runtime) are stopped after it."""
    yield
    cluster.conn.stop_all_model_containers()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def predict(conn: ClipperConnection, app: str, body: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(f"http://{conn.get_query_addr()}/{app}/predict", json=body, timeout=120)
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


def predict_until_model_answers(conn: ClipperConnection, app: str, body: dict[str, Any]) -> dict[str, Any]:
    """A new replica registers with the query frontend shortly after it is ready: poll."""
    deadline = time.monotonic() + ANSWER_TIMEOUT_S
    while True:
        reply = predict(conn, app, body)
        explanation = str(reply.get("default_explanation", ""))
        waiting = reply.get("default", False) and "No connected models" in explanation
        if not waiting or time.monotonic() > deadline:
            return reply
        time.sleep(0.2)


def assert_answers_match(
    conn: ClipperConnection, app: str, single: list[Any], batch: list[list[Any]], expected: Any
) -> None:
    """Query ``single`` with ``input`` and ``batch`` with ``input_batch``; every answer must be
    the float ``expected(x)`` to float32 tolerance (the model's in-process prediction)."""
    reply = predict_until_model_answers(conn, app, {"input": single})
    assert reply["default"] is False, reply
    assert float(reply["output"]) == pytest.approx(expected(single), rel=1e-4, abs=1e-5)
    replies = predict(conn, app, {"input_batch": batch})["batch_predictions"]
    assert [r["default"] for r in replies] == [False] * len(batch), replies
    got = [float(r["output"]) for r in replies]
    assert got == pytest.approx([expected(x) for x in batch], rel=1e-4, abs=1e-5)


def assert_raising_func_answers_default(conn: ClipperConnection, app: str, x: list[Any], cause: str) -> None:
    reply = predict_until_model_answers(conn, app, {"input": x})
    assert reply["default"] is True, reply
    assert cause in reply["default_explanation"], reply


def model_dir_without(tmp_path: Path, files: dict[str, bytes]) -> str:
    """A model directory holding exactly ``files`` (name -> bytes; nested names allowed)."""
    for name, data in files.items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return str(tmp_path)
