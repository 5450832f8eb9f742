"""Several query frontends on one machine (issue 16.3): ``start_clipper(num_frontend_replicas=2)``
with LocalContainerManager runs two query-frontend processes on one shared REST port
(SO_REUSEPORT), each with its own RPC port, instance port and replicas of every model.

Every query is answered by the model and both frontends take traffic (their own metrics say
so); scaling and a new version reach both; a frontend killed outright is started again by the
supervisor while the other one keeps serving every query.
"""

from __future__ import annotations

import collections
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from clipper_admin import ClipperConnection, ClipperException, LocalContainerManager
from clipper_admin.deployers import python as python_deployer
from clipper_admin.local.cluster_record import ClusterRecord, query_frontend_role
from tests.helpers import free_port

pytestmark = pytest.mark.timeout(240)

APP = "frontends-app"
MODEL = "frontends-model"


def wait_for(condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if value := condition():
                return value
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


@pytest.fixture(scope="module")
def conn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClipperConnection]:
    home: Path = tmp_path_factory.mktemp("frontends")
    rpc_port = free_port()
    manager = LocalContainerManager(
        cluster_name="two-frontends", clipper_home=str(home), redis_port=free_port(),
        query_port=free_port(), management_port=free_port(), rpc_port=rpc_port,
        restart_backoff_s=0.2,
    )
    connection = ClipperConnection(manager)
    connection.start_clipper(num_frontend_replicas=2)
    try:
        # The first frontend keeps the requested RPC port (a free one).
        assert manager.rpc_port == rpc_port
        connection.register_application(APP, "doubles", "default", 1_000_000)
        python_deployer.deploy_python_closure(
            connection, name=MODEL, version=1, input_type="doubles",
            func=lambda xs: [str(sum(x)) for x in xs],
        )
        connection.link_model_to_app(APP, MODEL)
        for addr in manager.get_query_frontend_addrs():
            wait_for(lambda a=addr: not predict(a, -1.0)["default"], 30, f"the model behind {addr}")
        yield connection
    finally:
        connection.stop_all()


_counter = iter(range(1, 10**9))


def predict(addr: str, value: float | None = None) -> dict[str, Any]:
    """One query on a new connection (so the kernel picks a frontend for each); a value never
    asked before unless given, so no cache answers it."""
    x = float(next(_counter)) if value is None else value
    reply = requests.post(f"http://{addr}/{APP}/predict", json={"input": [x, 0.5]}, timeout=10)
    assert reply.status_code == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


QUERIES = f"app:{APP}:num_predictions"


def queries_in(report: dict[str, Any]) -> int:
    counts = [e[QUERIES]["count"] for e in report.get("counters", []) if QUERIES in e]
    return int(counts[0]) if counts else 0


def app_queries(addr: str) -> int:
    """The app's queries that the frontend serving ``addr`` alone has answered."""
    report = requests.get(f"http://{addr}/metrics", headers={"Accept": "application/json"}, timeout=5)
    return queries_in(report.json())


def record_of(conn: ClipperConnection) -> ClusterRecord:
    record = ClusterRecord.load(conn.cm.paths)
    assert record is not None
    return record


def replicas_per_frontend(conn: ClipperConnection) -> dict[int, int]:
    replicas = conn.cm.replica_supervision()
    return dict(collections.Counter(
        r["frontend"] for r in replicas if r["model_name"] == MODEL and r["state"] == "running"
    ))


def test_both_frontends_answer_every_query_on_the_one_rest_address(conn: ClipperConnection) -> None:
    addrs = conn.cm.get_query_frontend_addrs()
    assert len(addrs) == 2 and conn.get_query_addr() not in addrs
    health = [requests.get(f"http://{a}/healthz", timeout=5).json() for a in addrs]
    record = record_of(conn)
    assert [h["pid"] for h in health] == [record.core[query_frontend_role(i)].pid for i in range(2)]
    assert len({f.rpc_port for f in record.frontends}) == 2

    before = [app_queries(a) for a in addrs]
    answers = [predict(conn.get_query_addr()) for _ in range(200)]
    assert [a for a in answers if a["default"]] == []
    after = [app_queries(a) for a in addrs]
    taken = [b - a for a, b in zip(before, after, strict=True)]
    assert sum(taken) == 200
    assert min(taken) >= 20, f"the kernel spread 200 connections as {taken}"
    # The admin's report is both frontends' together.
    assert queries_in(conn.inspect_instance()) == sum(after)
    # So is the dashboard's: the management frontend samples each frontend's own address.
    dashboard = f"http://{conn.cm.get_admin_addr()}/dashboard/api/metrics"

    def dashboard_queries() -> int:
        app = requests.get(dashboard, timeout=5).json()["apps"].get(APP)  # absent until sampled
        return -1 if app is None else int(app["total"]["requests"])

    wait_for(lambda: dashboard_queries() == sum(after), 15, "the dashboard to count both frontends' queries")


def test_scaling_and_a_new_version_reach_both_frontends(conn: ClipperConnection) -> None:
    assert replicas_per_frontend(conn) == {0: 1, 1: 1}
    conn.set_num_replicas(MODEL, 2)
    assert replicas_per_frontend(conn) == {0: 2, 1: 2}
    assert conn.get_num_replicas(MODEL) == 2
    wait_for(lambda: len(conn.get_all_model_replicas()) == 4, 30, "four replicas registered")

    python_deployer.deploy_python_closure(
        conn, name=MODEL, version=2, input_type="doubles",
        func=lambda xs: [str(100 + sum(x)) for x in xs], num_replicas=1,
    )
    assert conn.get_current_model_version(MODEL) == "2"
    for addr in conn.cm.get_query_frontend_addrs():
        reply = wait_for(lambda a=addr: (r := predict(a)) and not r["default"] and r["output"] >= 100 and r,
                         30, f"version 2 behind {addr}")
        assert reply["output"] >= 100
    assert {(r["model_version"], r["frontend"]) for r in conn.cm.replica_supervision()
            if r["model_name"] == MODEL} >= {("2", 0), ("2", 1)}

    conn.set_num_replicas(MODEL, 1, version="1")
    replicas = conn.cm.replica_supervision()
    version_1 = [r for r in replicas if (r["model_name"], r["model_version"]) == (MODEL, "1")]
    assert sorted(r["frontend"] for r in version_1) == [0, 1]


def test_a_killed_frontend_comes_back_while_the_other_serves(conn: ClipperConnection) -> None:
    victim_role = query_frontend_role(1)
    victim = record_of(conn).core[victim_role]
    os.kill(victim.pid, signal.SIGKILL)
    wait_for(lambda: not victim.is_alive(), 5, "the frontend to die")
    # A connection the kernel handed to the dying listener in its last instant is reset (seen
    # a few ms after the process was reaped, about one run in three); after that the shared
    # port has one listener left and every new connection reaches it.
    time.sleep(0.2)
    answers = [predict(conn.get_query_addr()) for _ in range(100)]
    assert [a for a in answers if a["default"]] == []

    restarted = wait_for(
        lambda: (h := record_of(conn).core[victim_role]).pid != victim.pid and h.is_alive() and h,
        20, "the supervisor to start the frontend again",
    )
    addr = conn.cm.get_query_frontend_addrs()[1]
    wait_for(lambda: requests.get(f"http://{addr}/healthz", timeout=2).json()["pid"] == restarted.pid, 30,
             "the restarted frontend to answer")
    # Its replicas register with it again and it answers from the model.
    wait_for(lambda: not predict(addr)["default"], 30, "the restarted frontend's model answers")
    assert record_of(conn).core_restarts[victim_role] == 1
    supervisor_log = (conn.cm.paths.log_dir / "supervisor.log").read_text()
    assert f"Query frontend-1 (pid {victim.pid})" in supervisor_log


def test_num_frontend_replicas_must_be_positive(tmp_path: Path) -> None:
    manager = LocalContainerManager(cluster_name="zero", clipper_home=str(tmp_path))
    with pytest.raises(ClipperException, match="num_frontend_replicas must be a positive integer"):
        ClipperConnection(manager).start_clipper(num_frontend_replicas=0)
