"""What the RPC port admits (issue 11 item 4): the query frontend as a real process, fake
containers as raw zmq DEALER sockets speaking RPC v3 by hand.

- a registration whose model name or version breaks the admin API's rule is refused, and
  ``/admin/get_all_containers`` keeps answering;
- a frame over ``--rpc_max_message_bytes`` disconnects its sender without growing the
  frontend's memory;
- replicas that register under made-up names and go away leave no DB 3 record and no metric
  series behind, even after a burst of them.
"""

from __future__ import annotations

import re
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests
import zmq

from tests.integration.cluster_processes import Cluster, cluster, eventually

__all__ = ["cluster"]  # the fixture, imported so pytest finds it

BURST = 200


def u32(value: int) -> bytes:
    return struct.pack("<I", value)


def register(ctx: zmq.Context, port: int, name: bytes, version: bytes = b"1") -> zmq.Socket:
    """Heartbeat, then NewContainer as soon as the frontend asks for metadata."""
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(f"tcp://127.0.0.1:{port}")
    sock.send_multipart([b"", u32(2)])
    assert sock.poll(10_000), "the frontend did not answer a heartbeat"
    assert sock.recv_multipart() == [b"", u32(3), u32(2), u32(1)]  # RequestContainerMetadata
    sock.send_multipart([b"", u32(0), name, version, b"3", u32(3)])
    return sock


def _rss_bytes(pid: int) -> int:
    match = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.MULTILINE)
    assert match is not None
    return int(match.group(1)) * 1024


def _containers(cluster: Cluster) -> list[str]:
    response = requests.post(f"http://127.0.0.1:{cluster.management_port}/admin/get_all_containers",
                             json={"verbose": False}, timeout=10)
    assert response.status_code == 200, response.text
    return list(response.json())


def _metrics(cluster: Cluster) -> str:
    return requests.get(f"http://127.0.0.1:{cluster.query_port}/metrics",
                        headers={"Accept": "text/plain"}, timeout=10).text


@pytest.fixture
def frontend(cluster: Cluster) -> Iterator[Cluster]:
    cluster.start_management()
    cluster.start_query("--rpc_max_message_bytes", str(1 << 20), "--inactivity_timeout_s", "1")
    yield cluster


@pytest.fixture
def ctx() -> Iterator[zmq.Context]:
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


def test_a_registration_with_a_bad_name_is_refused(frontend: Cluster, ctx: zmq.Context) -> None:
    bad = [register(ctx, frontend.rpc_port, name, version)
           for name, version in ((b"evil,name", b"1"), (b"evil", b"1:2"), (b"Evil_Name", b"1"),
                                 (b"x" * 1024, b"1"), (b"../../escape", b"1"))]
    good = register(ctx, frontend.rpc_port, b"fine-name", b"1")
    eventually(lambda: _containers(frontend) or None, what="the good registration")
    time.sleep(0.3)  # the refused ones would have been recorded by now too
    assert _containers(frontend) == ["fine-name:1:0"]
    assert "evil" not in _metrics(frontend) and "xxxx" not in _metrics(frontend)
    # A refused container is still asked for its metadata (it may be fixed and come back).
    bad[0].send_multipart([b"", u32(2)])
    assert bad[0].poll(5000) and bad[0].recv_multipart()[-1] == u32(1)
    for sock in (*bad, good):
        sock.close(0)


def test_an_oversized_frame_is_dropped_without_memory_growth(frontend: Cluster, ctx: zmq.Context) -> None:
    assert frontend.query is not None
    before = _rss_bytes(frontend.query.pid)
    payload = b"\0" * (64 << 20)  # 64 MiB against a 1 MiB limit
    for _ in range(3):
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(f"tcp://127.0.0.1:{frontend.rpc_port}")
        sock.send_multipart([b"", u32(1), u32(0), payload])
        time.sleep(1.0)
        sock.close(0)
    growth = _rss_bytes(frontend.query.pid) - before
    assert growth < 16 << 20, f"RSS grew {growth / 2**20:.1f} MiB"
    # Still serving the RPC port.
    ok = register(ctx, frontend.rpc_port, b"after-flood", b"1")
    eventually(lambda: _containers(frontend) or None, what="a registration after the oversized frames")
    ok.close(0)


def test_replicas_under_made_up_names_leave_nothing_behind(frontend: Cluster, ctx: zmq.Context) -> None:
    sockets = [register(ctx, frontend.rpc_port, f"ghost-{i:04d}".encode() + b"-" + b"n" * 200)
               for i in range(BURST)]
    eventually(lambda: len(_containers(frontend)) == BURST or None, timeout_s=30, what="the burst recorded")
    assert _metrics(frontend).count("ghost-") >= BURST
    for sock in sockets:
        sock.close(0)  # they go silent: removed after --inactivity_timeout_s 1
    eventually(lambda: not _containers(frontend) or None, timeout_s=30, what="every ghost record deleted")
    eventually(lambda: "ghost-" not in _metrics(frontend) or None, timeout_s=10, what="ghost series gone")
    client = redis.Redis(host=frontend.redis.host, port=frontend.redis.port, db=3)
    assert client.dbsize() == 0
    client.close()
