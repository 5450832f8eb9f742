"""Several query frontends in Docker (issue 16.3): ``start_clipper(num_frontend_replicas=2)`` on
the host network runs two query-frontend containers on one shared REST port, each with its own
RPC port and its own replica of the model; every query is answered and both take traffic. The
management frontend's dashboard sums both frontends' queries, and a query frontend killed is
started again by the engine (restart policy) and serves again once its replica reconnects."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import docker
import pytest
import requests

from clipper_admin.container_manager import (
    CLIPPER_DOCKER_LABEL,
    CLIPPER_MODEL_CONTAINER_LABEL,
    CLIPPER_QUERY_FRONTEND_CONTAINER_LABEL,
    CLIPPER_QUERY_FRONTEND_ID_LABEL,
)
from tests.docker.conftest import NOOP_IMAGE, Cluster

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]


def app_queries(addr: str, app: str) -> int:
    report = requests.get(f"http://{addr}/metrics", headers={"Accept": "application/json"}, timeout=5)
    name = f"app:{app}:num_predictions"
    counts = [e[name]["count"] for e in (report.json() if report.text.strip() else {}).get("counters", [])
              if name in e]
    return int(counts[0]) if counts else 0


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        time.sleep(0.2)


def dashboard_requests(admin_addr: str, app: str) -> int:
    """The queries of ``app`` the management frontend's dashboard reports (-1: not sampled yet)."""
    body = requests.get(f"http://{admin_addr}/dashboard/api/metrics", timeout=5).json()
    entry = body["apps"].get(app)
    return -1 if entry is None else int(entry["total"]["requests"])


def answered_by_model(addr: str, app: str) -> bool:
    try:
        reply = requests.post(f"http://{addr}/{app}/predict", json={"input": [1.0]}, timeout=5)
    except requests.ConnectionError:
        return False
    return reply.status_code == 200 and not reply.json()["default"]


def test_two_query_frontends_share_the_rest_port_and_both_serve(
    docker_client: docker.DockerClient, make_cluster: Callable[..., Cluster], fake_model_data: str
) -> None:
    cluster = make_cluster("docker-frontends", num_frontend_replicas=2)
    conn, manager = cluster.conn, cluster.manager
    addrs = manager.get_query_frontend_addrs()
    assert len(addrs) == 2 and conn.get_query_addr() not in addrs

    conn.register_application("app", "doubles", "default", 1_000_000)
    conn.build_and_deploy_model("m", "1", "doubles", fake_model_data, NOOP_IMAGE)
    conn.link_model_to_app("app", "m")
    replicas = docker_client.containers.list(
        filters={"label": [f"{CLIPPER_DOCKER_LABEL}={cluster.name}", CLIPPER_MODEL_CONTAINER_LABEL]}
    )
    env = [dict(i.split("=", 1) for i in c.attrs["Config"]["Env"]) for c in replicas]
    assert sorted(c.labels[CLIPPER_QUERY_FRONTEND_ID_LABEL] for c in replicas) == ["0", "1"]
    assert len({e["CLIPPER_PORT"] for e in env}) == 2
    assert conn.get_num_replicas("m", "1") == 1

    answers = []
    for i in range(100):
        reply = requests.post(f"http://{conn.get_query_addr()}/app/predict", json={"input": [float(i)]},
                              timeout=10)
        assert reply.status_code == 200, reply.text
        answers.append(reply.json())
    assert [a for a in answers if a["default"]] == []
    taken = [app_queries(a, "app") for a in addrs]
    assert sum(taken) == 100 and min(taken) > 0, taken

    # The dashboard samples each frontend's instance address and sums them.
    frontend = requests.get(f"http://{manager.get_admin_addr()}/dashboard/api/cluster", timeout=5).json()
    sampled = frontend["query_frontend"]["frontends"]
    assert [f["address"] for f in sampled] == [a.replace("localhost", "127.0.0.1") for a in addrs]
    wait_for(lambda: dashboard_requests(manager.get_admin_addr(), "app") == 100, 20,
             "the dashboard to count both frontends' 100 queries")  # fmt: skip

    # Frontend 1 killed (its Python, not its container: as a crash) is started again by the
    # engine, and answers from the model again once its replica has reconnected.
    (second,) = docker_client.containers.list(filters={"label": [
        f"{CLIPPER_DOCKER_LABEL}={cluster.name}", CLIPPER_QUERY_FRONTEND_CONTAINER_LABEL,
        f"{CLIPPER_QUERY_FRONTEND_ID_LABEL}=1"]})  # fmt: skip
    assert second.attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    top = second.top()
    pid_column, cmd_column = top["Titles"].index("PID"), top["Titles"].index("CMD")
    # The Python process, not the container's init (docker-init, which runs it).
    (frontend_pid,) = [int(row[pid_column]) for row in top["Processes"]
                       if row[cmd_column].startswith("python -m clipper_core.query_frontend")]  # fmt: skip
    os.kill(frontend_pid, signal.SIGKILL)

    def restarted() -> bool:
        second.reload()
        return second.attrs["RestartCount"] >= 1 and second.attrs["State"]["Status"] == "running"

    wait_for(restarted, 30, "the engine to start query frontend 1 again")
    wait_for(lambda: answered_by_model(addrs[1], "app"), 60, "frontend 1 to answer from its replica again")
