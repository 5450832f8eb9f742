"""LocalContainerManager(secure_rpc=True) (issue 11 item 4): the cluster generates an RPC
secret, its own replicas register and serve over CurveZMQ, a stranger's plain RPC v3
connection is not answered."""

from __future__ import annotations

import stat
import struct
import time
import uuid
from pathlib import Path

import requests
import zmq

from clipper_admin import ClipperConnection, LocalContainerManager
from clipper_admin.deployers import python as python_deployer
from tests.helpers import free_port


def test_a_secure_cluster_serves_its_replicas_and_ignores_strangers(tmp_path: Path) -> None:
    manager = LocalContainerManager(
        cluster_name=f"secure-{uuid.uuid4().hex[:8]}", query_port=free_port(),
        management_port=free_port(), rpc_port=free_port(), redis_port=free_port(),
        clipper_home=str(tmp_path), secure_rpc=True,
    )
    conn = ClipperConnection(manager)
    conn.start_clipper()
    try:
        secret_file = manager.paths.run_dir / "rpc.secret"
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600 and len(secret_file.read_text()) >= 32
        conn.register_application("app", "doubles", "DEFAULT", 3_000_000)
        python_deployer.deploy_python_closure(conn, "m", 1, "doubles", lambda xs: [str(len(x)) for x in xs])
        conn.link_model_to_app("app", "m")
        deadline = time.monotonic() + 60
        while True:
            reply = requests.post(f"http://{conn.get_query_addr()}/app/predict",
                                  json={"input": [1.0, 2.0]}, timeout=30).json()
            if not reply["default"] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert reply["output"] == 2, reply
        context = zmq.Context()
        try:
            stranger = context.socket(zmq.DEALER)
            stranger.setsockopt(zmq.LINGER, 0)
            stranger.connect(f"tcp://127.0.0.1:{manager.rpc_port}")
            stranger.send_multipart([b"", struct.pack("<I", 2)])
            assert not stranger.poll(2000), "a plain RPC v3 heartbeat was answered"
        finally:
            context.destroy(linger=0)
    finally:
        conn.stop_all()
