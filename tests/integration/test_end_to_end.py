"""Live configuration end to end (issue 4): both frontends as real processes, real closure
containers, every change made through the management frontend's REST API. The running query
frontend must follow add/delete app, link/unlink, set_model_version and set_model_batch_size
without a restart."""

from __future__ import annotations

import requests

from tests.integration.cluster_processes import (
    NO_CONNECTED_MODELS,
    Cluster,
    cluster,
    eventually,
    make_batch_size_model,
    make_sum_model,
)

__all__ = ["cluster"]  # the fixture, imported so pytest finds it


def _default_cause(cluster: Cluster, app: str) -> str | None:
    answer = cluster.predict(app, {"input": [1.0]}).json()
    return answer["default_explanation"] if answer.get("default") else None


def test_apps_links_and_versions_follow_the_management_api(cluster: Cluster) -> None:
    cluster.start_management()
    cluster.start_query()
    cluster.start_container(make_sum_model(), "m", "1")
    cluster.start_container(make_sum_model("v2:"), "m", "2")

    # add_app: the endpoint appears without a restart; with no link it answers the default.
    assert cluster.predict("app", {"input": [1.0]}).status_code == 404
    cluster.add_app("app")
    cause = eventually(lambda: _default_cause(cluster, "app"), what="new app answering")
    assert cause == NO_CONNECTED_MODELS
    assert cluster.predict("app", {"input": [1.0]}).json()["output"] == -1.0

    # add_model + link: the connected container of version 1 serves.
    cluster.add_model("m", "1")
    cluster.admin("add_model_links", {"app_name": "app", "model_names": ["m"]})
    assert eventually(lambda: cluster.real_output("app", [1.0, 2.0]), what="linked model") == 3.0

    # set_model_version: a second version registered, then made current, then rolled back.
    cluster.add_model("m", "2")  # add_model makes the new version current, as the original
    assert eventually(lambda: cluster.real_output("app", [1.0, 2.0]) == "v2:3.0" or None, what="v2")
    cluster.admin("set_model_version", {"model_name": "m", "model_version": "1"})
    assert eventually(lambda: cluster.real_output("app", [1.0, 2.0]) == 3.0 or None, what="back to v1")
    # An explicit version still reaches the other one.
    explicit = cluster.predict("app", {"input": [1.0, 2.0], "version": "2"}).json()
    assert explicit["default"] is False and explicit["output"] == "v2:3.0", explicit

    # unlink: the app stays but answers the default at once.
    cluster.admin("delete_model_links", {"app_name": "app", "model_names": ["m"]})
    assert eventually(lambda: _default_cause(cluster, "app"), what="unlinked") == NO_CONNECTED_MODELS

    # delete_app: the endpoint disappears at once (404 JSON, never a 500).
    cluster.admin("delete_app", {"name": "app"})
    def gone_or_none() -> requests.Response | None:
        response = cluster.predict("app", {"input": [1.0]})
        return response if response.status_code == 404 else None

    gone = eventually(gone_or_none, what="deleted app gone")
    assert gone.json()["error"]


def _batch_sizes(cluster: Cluster, n: int) -> list[int] | None:
    answer = cluster.predict("batchy", {"input_batch": [[float(i)] for i in range(n)]}).json()
    predictions = answer["batch_predictions"]
    if any(p["default"] for p in predictions):
        return None
    return [int(p["output"]) for p in predictions]


def test_batch_size_changes_reach_the_running_frontend(cluster: Cluster) -> None:
    cluster.start_management()
    cluster.start_query()
    cluster.add_app("batchy", slo_micros=20_000_000)
    cluster.add_model("b", "1", batch_size=1)
    cluster.admin("add_model_links", {"app_name": "batchy", "model_names": ["b"]})
    cluster.start_container(make_batch_size_model(0.02), "b", "1")

    sizes = eventually(lambda: _batch_sizes(cluster, 20), what="batch of 1")
    assert set(sizes) == {1}, sizes

    cluster.admin("set_model_batch_size", {"model_name": "b", "model_version": "1", "batch_size": 7})
    # 40 inputs queued at once against a replica that takes 7 at a time: no batch above 7,
    # and the queue is deep enough that full batches of 7 happen.
    sizes = eventually(lambda: ((s := _batch_sizes(cluster, 40)) and max(s) == 7 and s) or None,
                       what="batches of 7")
    assert max(sizes) == 7 and all(size <= 7 for size in sizes), sizes


def make_pid_model() -> object:
    def predict(inputs: list[object]) -> list[str]:
        import os
        import time as _time

        _time.sleep(0.05)  # long enough that concurrent queries find the first replica busy
        return [str(os.getpid())] * len(inputs)

    return predict


def test_two_replicas_share_the_load(cluster: Cluster) -> None:
    from concurrent.futures import ThreadPoolExecutor

    cluster.start_management()
    cluster.start_query()
    cluster.add_app("shared", slo_micros=10_000_000)
    cluster.add_model("p", "1", batch_size=1)
    cluster.admin("add_model_links", {"app_name": "shared", "model_names": ["p"]})
    replicas = [cluster.start_container(make_pid_model(), "p", "1") for _ in range(2)]
    eventually(lambda: cluster.real_output("shared", [0.0]), what="first replica serving")
    pids = {str(r.pid) for r in replicas}

    def both_serving() -> set[str] | None:
        with ThreadPoolExecutor(16) as pool:
            seen = {str(out) for out in pool.map(lambda i: cluster.real_output("shared", [float(i), 0.5]),
                                                   range(1, 33))}
        return seen if seen == pids else None

    # Each query has a new input (no cache hit); batches of 1, so both replicas must be used.
    assert eventually(both_serving, what="both replicas serving") == pids


def test_console_scripts_are_installed(subprocess_env: dict[str, str]) -> None:
    import shutil
    import subprocess

    for name, flag in (("clipper-query-frontend", b"--rpc_service_port"),
                       ("clipper-management-frontend", b"--redis_port")):
        script = shutil.which(name)
        assert script is not None, f"{name} missing: run `pip install -e .` (make install)"
        result = subprocess.run([script, "--help"], env=subprocess_env, capture_output=True, timeout=60)
        assert result.returncode == 0 and flag in result.stdout, result
    closure = shutil.which("clipper-closure-container")
    assert closure is not None
    missing = subprocess.run([closure], env={k: v for k, v in subprocess_env.items()
                                             if not k.startswith("CLIPPER_")},
                             capture_output=True, timeout=60)
    assert missing.returncode == 1
    assert b"CLIPPER_MODEL_NAME environment variable must be set" in missing.stderr
