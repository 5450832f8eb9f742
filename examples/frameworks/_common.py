"""What every framework example does around its model: start a local cluster on free loopback
ports, deploy (the example's own code), send the first query and a batch, print the first-query
latency and the replica's memory (RSS, with its child processes, e.g. Spark's JVM), stop."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

import psutil
import requests

from clipper_admin import ClipperConnection, LocalContainerManager
from clipper_admin.clipper_admin import LOG_DATE_FORMAT, LOG_FORMAT
from clipper_admin.local.cluster_record import ClusterRecord

ANSWER_TIMEOUT_S = 300.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _replica_rss_mb(manager: LocalContainerManager, model: str) -> float:
    record = ClusterRecord.load(manager.paths)
    total = 0
    for replica in record.replicas if record else []:
        if replica.name == model:
            process = psutil.Process(replica.process.pid)
            total += sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])
    return total / 2**20


def run_example(
    app: str,
    deploy: Callable[[ClipperConnection], None],
    single: list[Any],
    batch: list[list[Any]],
    expected: Callable[[list[Any]], float] | None = None,
) -> dict[str, Any]:
    """Start a cluster, ``deploy(conn)`` (which creates app/model ``app``), query, report, stop."""
    logging.basicConfig(format=LOG_FORMAT, datefmt=LOG_DATE_FORMAT, level=logging.INFO)
    manager = LocalContainerManager(
        cluster_name=f"example-{app}", query_port=_free_port(), management_port=_free_port(),
        rpc_port=_free_port(), redis_port=_free_port(), startup_timeout_s=300.0,
    )
    conn = ClipperConnection(manager)
    conn.start_clipper()
    try:
        deploy(conn)
        url = f"http://{conn.get_query_addr()}/{app}/predict"
        deadline = time.monotonic() + ANSWER_TIMEOUT_S
        while True:  # the new replica registers with the query frontend a moment after it starts
            started = time.perf_counter()
            reply = requests.post(url, json={"input": single}, timeout=120).json()
            first_query_ms = (time.perf_counter() - started) * 1000.0
            waiting = reply.get("default") and "No connected models" in reply.get("default_explanation", "")
            if not waiting or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        batch_reply = requests.post(url, json={"input_batch": batch}, timeout=120).json()
        report = {
            "app": app,
            "first_query_ms": round(first_query_ms, 1),
            "replica_rss_mb": round(_replica_rss_mb(manager, app), 1),
            "output": reply.get("output"),
            "default": reply.get("default"),
            "batch_outputs": [p.get("output") for p in batch_reply.get("batch_predictions", [])],
        }
        if expected is not None:
            report["expected"] = expected(single)
        print(json.dumps(report))
        return report
    finally:
        conn.stop_all()
