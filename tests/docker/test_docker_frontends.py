"""Several query frontends in Docker (issue 16.3): ``start_clipper(num_frontend_replicas=2)`` on
the host network runs two query-frontend containers on one shared REST port, each with its own
RPC port and its own replica of the model; every query is answered and both take traffic."""

from __future__ import annotations

from collections.abc import Callable

import docker
import pytest
import requests

from clipper_admin.container_manager import (
    CLIPPER_DOCKER_LABEL,
    CLIPPER_MODEL_CONTAINER_LABEL,
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
