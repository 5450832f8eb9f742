"""docker-compose.yml: a local cluster (Redis and both frontends) started with docker-compose."""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest
import requests

from tests.helpers import PYTHON, REPO_ROOT, free_port, stop_process

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
    for port in ("1337", "1338", "7000", "6379", "9090"):
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
        CLIPPER_PROMETHEUS_PORT=str(free_port()),
        CLIPPER_PROMETHEUS_SCRAPE_INTERVAL="1s",
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


# -- Prometheus and the Grafana dashboard (issue 18.5) --------------------------------------------

GRAFANA_DASHBOARD = REPO_ROOT / "monitoring" / "grafana" / "clipper.json"
# What Grafana substitutes before it sends a panel's query: a range wide enough for the test's
# traffic, and "All" for the app and model variables.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$app": ".*", "$model": ".*"}


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(GRAFANA_DASHBOARD.read_text(encoding="utf-8"))
    expressions = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    assert len(expressions) >= 10
    return expressions


def grafana_substituted(expression: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expression = expression.replace(variable, value)
    assert "$" not in expression, expression
    return expression


def wait_for(probe: Callable[[], object], what: str, timeout_s: float = HEALTHY_DEADLINE_S) -> object:
    deadline = time.monotonic() + timeout_s
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = probe()
            if last:
                return last
        except requests.RequestException as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"{what} within {timeout_s} s; last: {last!r}")


def test_prometheus_scrapes_the_query_frontend_and_every_dashboard_query_has_data(
    compose_cluster: dict[str, str], subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    admin = f"http://127.0.0.1:{compose_cluster['CLIPPER_MANAGEMENT_PORT']}"
    query = f"http://127.0.0.1:{compose_cluster['CLIPPER_QUERY_PORT']}"
    prometheus = f"http://127.0.0.1:{compose_cluster['CLIPPER_PROMETHEUS_PORT']}"
    wait_for(lambda: requests.get(f"{admin}/admin/ping", timeout=2).text == "PONG", "management frontend")
    wait_for(lambda: requests.get(f"{query}/healthz", timeout=2).ok, "query frontend")

    def admin_post(endpoint: str, body: dict[str, object]) -> None:
        reply = requests.post(f"{admin}/admin/{endpoint}", json=body, timeout=10)
        assert reply.status_code == 200, (endpoint, reply.text)

    # One app served by a model (a no-op replica on the host, connected to the RPC port) and one
    # without a model, whose queries are all SLO misses answered with the default output.
    for app in ("served", "unserved"):
        admin_post("add_app", {"name": app, "input_type": "doubles", "default_output": "-1",
                               "latency_slo_micros": 5_000_000})
    admin_post("add_model", {"model_name": "noop", "model_version": "1", "labels": [],
                             "input_type": "doubles", "container_name": "noop",
                             "model_data_path": "/tmp/none", "batch_size": -1})
    admin_post("add_model_links", {"app_name": "served", "model_names": ["noop"]})
    log = (tmp_path / "noop.log").open("wb")
    replica = subprocess.Popen(
        [PYTHON, "-m", "containers.python.noop_container"],
        env={**subprocess_env, "CLIPPER_MODEL_NAME": "noop", "CLIPPER_MODEL_VERSION": "1",
             "CLIPPER_IP": "127.0.0.1", "CLIPPER_PORT": compose_cluster["CLIPPER_RPC_PORT"],
             "CLIPPER_INPUT_TYPE": "doubles"},
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        def served() -> bool:
            reply = requests.post(f"{query}/served/predict", json={"input": [1.0]}, timeout=10)
            return reply.ok and not reply.json()["default"]

        wait_for(served, "the no-op replica answering")

        scrape_url_end = f":{compose_cluster['CLIPPER_QUERY_PORT']}/metrics"

        def target_up() -> list[dict[str, object]]:
            targets = requests.get(f"{prometheus}/api/v1/targets", timeout=5).json()["data"]
            return [t for t in targets["activeTargets"]
                    if t["health"] == "up" and t["scrapeUrl"].endswith(scrape_url_end)]

        assert wait_for(target_up, "Prometheus scraping the query frontend (target up)")
        # Traffic across several scrapes (1 s apart), so that every rate sees an increase.
        for i in range(60):  # repeated inputs: cache hits
            requests.post(f"{query}/served/predict", json={"input": [float(i % 10)]}, timeout=10)
            requests.post(f"{query}/unserved/predict", json={"input": [float(i)]}, timeout=10)
            time.sleep(0.05)

        def values(expression: str) -> list[float]:
            reply = requests.get(f"{prometheus}/api/v1/query", params={"query": expression}, timeout=5)
            assert reply.status_code == 200, (expression, reply.text)
            return [float(r["value"][1]) for r in reply.json()["data"]["result"]]

        missing: list[str] = []
        for expression in map(grafana_substituted, dashboard_expressions()):
            # Two scrapes after the traffic are needed for a rate: poll.
            try:
                found = wait_for(lambda e=expression: [v for v in values(e) if math.isfinite(v)],
                                 f"data for {expression}", timeout_s=30)
            except AssertionError:
                missing.append(expression)
                continue
            assert found
        assert missing == [], missing
        # The numbers are the frontend's: the SLO misses are the unserved app's queries.
        misses = 'clipper_app_default_predictions_total{app="unserved"}'
        wait_for(lambda: values(misses) == [60.0], "all 60 SLO misses scraped", timeout_s=30)

        # The management frontend's dashboard samples the same frontend (issue 18.3).
        def dashboard_counts() -> bool:
            body = requests.get(f"{admin}/dashboard/api/metrics", timeout=5).json()
            app = body["apps"].get("unserved")
            return bool(body["query_frontend"]["reachable"] and app and app["total"]["slo_misses"] == 60)

        wait_for(dashboard_counts, "the dashboard showing the SLO misses", timeout_s=30)
    finally:
        stop_process(replica)
        log.close()
