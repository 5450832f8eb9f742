"""Bounded work per request (issue 11 item 2): the query frontend as a real process.

A predict request may carry at most ``--max_inputs_per_request`` inputs (413 JSON above it),
and a maximal batch is processed without stalling the loop: small requests from other clients,
sent while maximal batches keep arriving, stay within their SLO and are answered by their model.
"""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
import pytest

from tests.integration.cluster_processes import Cluster, cluster, eventually, make_sum_model

__all__ = ["cluster"]  # the fixture, imported so pytest finds it

# The default --max_inputs_per_request (clipper_core.settings.DEFAULT_MAX_INPUTS_PER_REQUEST).
DEFAULT_MAX_INPUTS_PER_REQUEST = 2048
SMALL_SLO_MICROS = 300_000
LOAD_S = 6.0
SMALL_CLIENTS = 4
BIG_CLIENTS = 3


def _serve(cluster: Cluster, app: str, model: str, slo_micros: int) -> None:
    cluster.add_app(app, slo_micros=slo_micros)
    cluster.add_model(model, "1")
    cluster.admin("add_model_links", {"app_name": app, "model_names": [model]})
    cluster.start_container(make_sum_model(), model, "1")
    eventually(lambda: cluster.real_output(app, [1.0, 2.0]), what=f"{model} serving {app}")


def test_more_inputs_than_the_limit_is_413_with_a_clear_message(cluster: Cluster) -> None:
    cluster.start_management()
    cluster.start_query("--max_inputs_per_request", "10")
    cluster.add_app("app")
    eventually(lambda: cluster.predict("app", {"input": [1.0]}).status_code == 200 or None, what="app")
    at_limit = cluster.predict("app", {"input_batch": [[float(i)] for i in range(10)]})
    assert at_limit.status_code == 200
    assert len(at_limit.json()["batch_predictions"]) == 10
    over = cluster.predict("app", {"input_batch": [[float(i)] for i in range(11)]})
    assert over.status_code == 413, over.text
    assert over.headers["Content-Type"].startswith("application/json")
    body = over.json()
    assert body["error"] == "Request Entity Too Large"
    assert "input_batch has 11 inputs" in body["cause"] and "at most 10" in body["cause"]
    assert "--max_inputs_per_request" in body["cause"]


async def _small_client(
    http: aiohttp.ClientSession, url: str, stop_at: float, latencies: list[float], defaults: list[bool]
) -> None:
    value = 0.0
    while time.monotonic() < stop_at:
        value += 1.0  # distinct inputs: every query reaches the model, none is a cache hit
        started = time.monotonic()
        async with http.post(url, json={"input": [value, 0.5]}) as response:
            body = await response.json()
        latencies.append(time.monotonic() - started)
        defaults.append(bool(body["default"]))


async def _big_client(
    http: aiohttp.ClientSession, url: str, stop_at: float, answered: list[int], offset: float
) -> None:
    base = offset
    while time.monotonic() < stop_at:
        base += 1.0
        batch = [[base, float(i)] for i in range(DEFAULT_MAX_INPUTS_PER_REQUEST)]
        async with http.post(url, json={"input_batch": batch}) as response:
            assert response.status == 200, await response.text()
            body = await response.json()
        answered.append(len(body["batch_predictions"]))


@pytest.mark.timeout(120)
async def test_small_requests_stay_within_their_slo_while_maximal_batches_arrive(cluster: Cluster) -> None:
    cluster.start_management()
    cluster.start_query()
    _serve(cluster, "small", "small-model", SMALL_SLO_MICROS)
    _serve(cluster, "big", "big-model", 10_000_000)
    base = f"http://127.0.0.1:{cluster.query_port}"
    latencies: list[float] = []
    defaults: list[bool] = []
    answered: list[int] = []
    connector = aiohttp.TCPConnector(limit=SMALL_CLIENTS + BIG_CLIENTS)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as http:
        stop_at = time.monotonic() + LOAD_S
        await asyncio.gather(
            *(_small_client(http, f"{base}/small/predict", stop_at, latencies, defaults)
              for _ in range(SMALL_CLIENTS)),
            *(_big_client(http, f"{base}/big/predict", stop_at, answered, 1e6 * (k + 1))
              for k in range(BIG_CLIENTS)),
        )
    assert answered and all(n == DEFAULT_MAX_INPUTS_PER_REQUEST for n in answered)
    assert len(answered) >= 2, "the maximal batches were not processed during the run"
    latencies.sort()
    p99 = latencies[int(0.99 * (len(latencies) - 1))]
    slo_s = SMALL_SLO_MICROS / 1e6
    real = defaults.count(False) / len(defaults)
    summary = (f"{len(latencies)} small requests, p99 {p99 * 1000:.1f} ms, {real:.1%} answered by the model, "
               f"{len(answered)} maximal batches")
    logging.getLogger(__name__).info("%s", summary)
    assert p99 <= slo_s, summary
    assert real >= 0.95, summary
