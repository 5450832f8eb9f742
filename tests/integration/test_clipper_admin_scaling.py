"""LocalContainerManager scaling (issue 5, long suite): a model scaled to zero replicas answers the
default with "No connected models found for query" and serves again when scaled back up;
``stop_all()`` leaves no process behind after replicas were added and removed; a scale-down under
load drains the removed replicas (issue 10.5); a removed version's cached outputs are never served."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psutil
import pytest
import requests

from clipper_admin import ClipperConnection, LocalContainerManager
from clipper_admin.deployers import python as python_deployer
from clipper_admin.local.cluster_record import ClusterRecord
from tests.helpers import free_port

NO_CONNECTED_MODELS = "No connected models found for query"
LOAD_CLIENTS = 8
MAX_LOAD_QUERIES = 3000  # bounds the load test whatever happens
Local = tuple[ClipperConnection, LocalContainerManager]


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    manager = LocalContainerManager(
        cluster_name=f"scaling-{uuid.uuid4().hex[:8]}", query_port=free_port(), management_port=free_port(),
        rpc_port=free_port(), redis_port=free_port(), clipper_home=str(tmp_path_factory.mktemp("home")),
    )
    conn = ClipperConnection(manager)
    conn.start_clipper()
    try:
        yield conn, manager
    finally:
        conn.stop_all()


_queries = itertools.count()


def _answer(conn: ClipperConnection, app: str) -> dict[str, Any]:
    """Each query has a new input, so the prediction cache never answers it."""
    url = f"http://{conn.get_query_addr()}/{app}/predict"
    x = [1.0, 2.0, 0.0, float(next(_queries))]
    return requests.post(url, json={"input": x}, timeout=30).json()  # type: ignore[no-any-return]


def _until(conn: ClipperConnection, app: str, want_default: bool, timeout_s: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while (answer := _answer(conn, app))["default"] is not want_default and time.monotonic() < deadline:
        time.sleep(0.2)
    return answer


def _replica_processes(manager: LocalContainerManager) -> list[psutil.Process]:
    record = ClusterRecord.load(manager.paths)
    assert record is not None
    return [p for r in record.replicas if (p := r.process.process()) is not None]


def _family(processes: list[psutil.Process]) -> list[psutil.Process]:
    return [p for root in processes for p in [root, *root.children(recursive=True)]]


def _running(processes: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for p in processes:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p)
        except psutil.NoSuchProcess:
            pass
    return alive


def test_zero_replicas_answer_no_connected_models_then_scale_back(local: Local) -> None:
    conn, manager = local
    app, model = f"zero-{uuid.uuid4().hex[:6]}", f"zm-{uuid.uuid4().hex[:6]}"
    conn.register_application(app, "doubles", "DEFAULT", 5_000_000)
    python_deployer.deploy_python_closure(conn, model, 1, "doubles", lambda xs: [str(sum(x[:3])) for x in xs])
    conn.link_model_to_app(app, model)
    assert _until(conn, app, want_default=False)["output"] == 3.0

    before = _family(_replica_processes(manager))
    conn.set_num_replicas(model, 0)
    assert conn.get_num_replicas(model) == 0
    assert _running(before) == []  # the replica's process (and any child) is gone
    answer = _until(conn, app, want_default=True)
    assert answer["default"] is True and answer["output"] == "DEFAULT"
    started = time.monotonic()
    answer = _answer(conn, app)
    assert answer["default_explanation"] == NO_CONNECTED_MODELS, answer
    assert time.monotonic() - started < 4.0  # not the 5 s SLO: nothing to wait for

    conn.set_num_replicas(model, 1)
    assert _until(conn, app, want_default=False)["output"] == 3.0


def _slow_sum(xs: list[Any]) -> list[str]:
    time.sleep(0.02)  # a deliberately slow-ish model: every batch takes 20 ms
    return [str(sum(x[:3])) for x in xs]


def test_scale_down_under_load_drains_the_removed_replicas(local: Local) -> None:
    """3 -> 1 replicas while queries keep coming: the removed replicas finish their batches and
    get no new one, so every query gets the model's answer; DB 3 lists only the survivor."""
    conn, _manager = local
    app, model = f"drain-{uuid.uuid4().hex[:6]}", f"dm-{uuid.uuid4().hex[:6]}"
    conn.register_application(app, "doubles", "DEFAULT", 20_000_000)
    python_deployer.deploy_python_closure(conn, model, 1, "doubles", _slow_sum, num_replicas=3)
    conn.link_model_to_app(app, model)
    assert _until(conn, app, want_default=False)["output"] == 3.0
    deadline = time.monotonic() + 30
    while len([r for r in conn.get_all_model_replicas() if r.startswith(f"{model}:")]) < 3:
        assert time.monotonic() < deadline, conn.get_all_model_replicas()
        time.sleep(0.1)

    url = f"http://{conn.get_query_addr()}/{app}/predict"
    answers: list[dict[str, Any]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def send() -> None:
        with requests.Session() as session:
            while not stop.is_set() and len(answers) < MAX_LOAD_QUERIES:
                x = [1.0, 2.0, 0.0, float(next(_queries))]
                reply = session.post(url, json={"input": x}, timeout=60).json()
                with lock:
                    answers.append(reply)

    def answered_at_least(count: int) -> None:
        deadline = time.monotonic() + 60
        while len(answers) < count and not stop.is_set():
            assert time.monotonic() < deadline, f"only {len(answers)} answers"
            time.sleep(0.01)

    workers = [threading.Thread(target=send, daemon=True) for _ in range(LOAD_CLIENTS)]
    for worker in workers:
        worker.start()
    try:
        answered_at_least(100)
        before = len(answers)
        conn.set_num_replicas(model, 1)
        during = len(answers) - before
        replicas = [r for r in conn.get_all_model_replicas() if r.startswith(f"{model}:")]
        answered_at_least(len(answers) + 100)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=60)
    assert conn.get_num_replicas(model) == 1
    assert len(replicas) == 1, replicas
    defaults = [a for a in answers if a["default"] or "output" not in a]
    assert defaults == [], f"{len(defaults)} of {len(answers)} answers were defaults: {defaults[:3]}"
    assert len(answers) >= before + during + 100
    assert all(a["output"] == 3.0 for a in answers)


def test_idle_scale_down_unlists_the_removed_replicas_at_once(local: Local) -> None:
    conn, _manager = local
    model = f"idle-{uuid.uuid4().hex[:6]}"
    python_deployer.deploy_python_closure(conn, model, 1, "doubles", _slow_sum, num_replicas=2)
    deadline = time.monotonic() + 30
    while len(listed := [r for r in conn.get_all_model_replicas() if r.startswith(f"{model}:")]) < 2:
        assert time.monotonic() < deadline, listed
        time.sleep(0.1)
    conn.set_num_replicas(model, 1)
    assert len([r for r in conn.get_all_model_replicas() if r.startswith(f"{model}:")]) == 1


def test_cached_output_of_a_removed_version_is_never_served(local: Local) -> None:
    """Stop (and so unregister) a version, deploy the same name:version with another function:
    the same input gets the new function's answer, not the old cached one."""
    conn, _manager = local
    app, model = f"cache-{uuid.uuid4().hex[:6]}", f"cm-{uuid.uuid4().hex[:6]}"
    conn.register_application(app, "doubles", "DEFAULT", 5_000_000)
    python_deployer.deploy_python_closure(conn, model, 1, "doubles", lambda xs: ["old" for _ in xs])
    conn.link_model_to_app(app, model)
    url = f"http://{conn.get_query_addr()}/{app}/predict"
    body = {"input": [4.0, 2.0]}
    assert _until(conn, app, want_default=False)["output"] == "old"
    assert requests.post(url, json=body, timeout=30).json()["output"] == "old"  # now cached

    conn.stop_versioned_models({model: ["1"]})
    python_deployer.deploy_python_closure(conn, model, 1, "doubles", lambda xs: ["new" for _ in xs])
    deadline = time.monotonic() + 20
    while (answer := requests.post(url, json=body, timeout=30).json())["default"]:
        assert time.monotonic() < deadline, answer
        time.sleep(0.1)
    assert answer["output"] == "new", answer


def test_stop_all_after_scaling_leaves_no_process(local: Local) -> None:
    conn, manager = local
    model = f"scaled-{uuid.uuid4().hex[:6]}"
    python_deployer.deploy_python_closure(conn, model, 1, "doubles", lambda xs: [str(len(x)) for x in xs])
    ever: list[psutil.Process] = _family(_replica_processes(manager))
    conn.set_num_replicas(model, 3)
    ever += _family(_replica_processes(manager))
    conn.set_num_replicas(model, 1)
    conn.set_num_replicas(model, 2)
    ever += _family(_replica_processes(manager))
    assert len({p.pid for p in _replica_processes(manager)}) >= 2
    record = ClusterRecord.load(manager.paths)
    assert record is not None
    core = [p for h in record.core.values() if (p := h.process()) is not None]
    ever += _family(core)
    assert len(core) == 4  # Redis, both frontends, the supervisor

    conn.stop_all()
    assert _running(ever) == [], _running(ever)
    assert not manager.paths.record_file.exists()
