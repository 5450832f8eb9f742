"""Bounded queues and abandoned work (issue 11 item 3): the query frontend as a real process.

A model queue holds at most ``--max_queue_length`` queries (more are answered at once with the
default output and an explanation naming the overload), and the queries of a client that
disconnects leave the queue: with clients giving up early at an overloaded model, the queue
and the frontend's memory stay bounded.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from pathlib import Path

import aiohttp
import pytest

from tests.integration.cluster_processes import Cluster, cluster, eventually, make_batch_size_model

__all__ = ["cluster"]  # the fixture, imported so pytest finds it

logger = logging.getLogger(__name__)

MAX_SLO_MICROS = 60_000_000
INPUT_DOUBLES = 1000  # ~20 KB of JSON per request, so abandoned work shows in RSS
GIVE_UP_S = 0.3
SEND_PERIOD_S = 0.005
REQUESTS = 1000


def _serve_slow_model(cluster: Cluster, slo_micros: int, delay_s: float) -> None:
    cluster.add_app("app", slo_micros=slo_micros)
    cluster.add_model("slow", "1", batch_size=1)
    cluster.admin("add_model_links", {"app_name": "app", "model_names": ["slow"]})
    cluster.start_container(make_batch_size_model(delay_s), "slow", "1")
    eventually(lambda: cluster.real_output("app", [0.5]), what="the slow model serving")


def _rss_bytes(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    assert match is not None
    return int(match.group(1)) * 1024


async def _queue_length(http: aiohttp.ClientSession, base: str) -> int:
    async with http.get(f"{base}/metrics", headers={"Accept": "text/plain"}) as response:
        text = await response.text()
    match = re.search(r'^clipper_model_queue_length\{model="slow:1"\} (\d+)', text, re.MULTILINE)
    return int(match.group(1)) if match else 0


async def _impatient(http: aiohttp.ClientSession, url: str, value: float) -> None:
    body = {"input": [value] * INPUT_DOUBLES}
    try:
        async with http.post(url, json=body, timeout=aiohttp.ClientTimeout(total=GIVE_UP_S)) as response:
            await response.read()
    except (TimeoutError, aiohttp.ClientError):
        pass  # gave up: the connection is closed


@pytest.mark.timeout(120)
async def test_clients_giving_up_leave_no_queued_work_behind(cluster: Cluster) -> None:
    cluster.start_management()
    cluster.start_query()
    assert cluster.query is not None
    _serve_slow_model(cluster, MAX_SLO_MICROS, delay_s=0.2)  # 5 queries/s, offered 200/s
    base = f"http://127.0.0.1:{cluster.query_port}"
    rss_before = _rss_bytes(cluster.query.pid)
    lengths: list[int] = []
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as http:
        senders = []
        for i in range(REQUESTS):
            senders.append(asyncio.create_task(_impatient(http, f"{base}/app/predict", float(i + 1))))
            await asyncio.sleep(SEND_PERIOD_S)
            if i % 100 == 99:
                lengths.append(await _queue_length(http, base))
        await asyncio.gather(*senders)
        await asyncio.sleep(1.0)
        after = await _queue_length(http, base)
    rss_growth = _rss_bytes(cluster.query.pid) - rss_before
    summary = f"queue lengths {lengths}, after {after}, RSS growth {rss_growth / 2**20:.1f} MiB"
    logger.info("%s", summary)
    # Clients wait 0.3 s at most: about 60 of them are waiting at any moment.
    assert max(lengths) <= 150, summary
    assert after <= 5, summary
    assert rss_growth < 40 * 2**20, summary


@pytest.mark.timeout(60)
async def test_a_full_queue_sheds_at_once_with_an_explanation(cluster: Cluster) -> None:
    cluster.start_management()
    cluster.start_query("--max_queue_length", "4")
    _serve_slow_model(cluster, 10_000_000, delay_s=1.0)
    url = f"http://127.0.0.1:{cluster.query_port}/app/predict"

    async def ask(http: aiohttp.ClientSession, value: float) -> tuple[float, dict[str, object]]:
        started = time.monotonic()
        async with http.post(url, json={"input": [value]}) as response:
            assert response.status == 200
            return time.monotonic() - started, await response.json()

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        answers = await asyncio.gather(*(ask(http, float(v + 10)) for v in range(10)))
    shed = [(t, a) for t, a in answers if a["default"] and "overloaded" in str(a["default_explanation"])]
    # One query in the replica's batch, four queued: the other five are shed.
    assert len(shed) >= 4, answers
    for took_s, answer in shed:
        assert took_s < 0.9, answers  # at once, not after the model or the SLO
        assert answer["output"] == -1.0
        assert "--max_queue_length" in str(answer["default_explanation"])
