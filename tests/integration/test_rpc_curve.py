"""The RPC port with a cluster secret (issue 11 item 4): CurveZMQ keys derived from
``CLIPPER_RPC_SECRET``. A container without the secret, or with another one, cannot even
complete the handshake, so it cannot register; the closure container given the secret by its
environment registers and serves. Without a secret the port speaks plain RPC v3 (every other
test, and the original's containers)."""

from __future__ import annotations

import struct
import time

import requests
import zmq

from clipper_core.rpc import CurveKeys
from tests.integration.cluster_processes import Cluster, cluster, eventually, make_sum_model
from tests.integration.container_harness import zmq_thread_names

__all__ = ["cluster"]  # the fixture, imported so pytest finds it

SECRET = "test-cluster-secret-3f9c2a"
NO_REPLY_WAIT_MS = 2000


def _answers_heartbeat(port: int, keys: CurveKeys | None) -> bool:
    context = zmq.Context()
    try:
        sock = context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        if keys is not None:
            keys.apply_to_client(sock)
        sock.connect(f"tcp://127.0.0.1:{port}")
        sock.send_multipart([b"", struct.pack("<I", 2)])
        return bool(sock.poll(NO_REPLY_WAIT_MS))
    finally:
        context.destroy(linger=0)


def test_only_containers_with_the_cluster_secret_register(cluster: Cluster) -> None:
    cluster.env["CLIPPER_RPC_SECRET"] = SECRET  # the frontend and the containers started below
    cluster.start_management()
    cluster.start_query()
    cluster.add_app("app")
    cluster.add_model("m", "1")
    cluster.admin("add_model_links", {"app_name": "app", "model_names": ["m"]})
    assert not _answers_heartbeat(cluster.rpc_port, None)  # the original's plain RPC v3
    assert not _answers_heartbeat(cluster.rpc_port, CurveKeys.from_secret("another-secret"))
    assert _answers_heartbeat(cluster.rpc_port, CurveKeys.from_secret(SECRET))
    container = cluster.start_container(make_sum_model(), "m", "1")
    assert eventually(lambda: cluster.real_output("app", [1.0, 2.0]), what="served over CurveZMQ") == 3.0
    assert zmq_thread_names(container.pid), "with a secret the runtime must use libzmq (CurveZMQ)"
    containers = requests.post(f"http://127.0.0.1:{cluster.management_port}/admin/get_all_containers",
                               json={"verbose": False}, timeout=10).json()
    assert containers == ["m:1:0"]


def test_a_container_without_the_secret_cannot_register(cluster: Cluster) -> None:
    cluster.env["CLIPPER_RPC_SECRET"] = SECRET
    cluster.start_management()
    cluster.start_query()
    cluster.add_app("app")
    cluster.add_model("m", "1")
    cluster.admin("add_model_links", {"app_name": "app", "model_names": ["m"]})
    del cluster.env["CLIPPER_RPC_SECRET"]
    container = cluster.start_container(make_sum_model(), "m", "1")  # plain RPC v3, as the original's
    time.sleep(4)  # with the secret, a container registers within ~1 s
    assert container.poll() is None  # it keeps trying, it is not crashed
    deadline_answers = [cluster.predict("app", {"input": [1.0]}).json() for _ in range(3)]
    assert all(answer["default"] for answer in deadline_answers), deadline_answers
    containers = requests.post(f"http://127.0.0.1:{cluster.management_port}/admin/get_all_containers",
                               json={"verbose": False}, timeout=10).json()
    assert containers == []
