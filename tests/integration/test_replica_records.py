"""Restarts reconcile (issue 11 item 7): after a query-frontend restart, the replica records in
Redis DB 3 match the live containers again, and no replica id held by a record is reused.

Real processes: both frontends and three closure containers of one model; the query frontend
is killed (SIGKILL, nothing cleaned up) and started again. A leftover record without expiry
(``m,1,7``, as a replica that died while no frontend ran would leave) is written by hand. A
graceful stop deletes the stopping frontend's records (``test_frontend_restart.py``).
"""

from __future__ import annotations

import time

import redis
import requests

from tests.integration.cluster_processes import Cluster, cluster, eventually, make_sum_model

__all__ = ["cluster"]  # the fixture, imported so pytest finds it

# Records expire 2 x the inactivity timeout after their last refresh: 2 s here.
FLAGS = ("--inactivity_timeout_s", "1")


def _replica_ids(cluster: Cluster) -> list[int]:
    response = requests.post(f"http://127.0.0.1:{cluster.management_port}/admin/get_all_containers",
                             json={"verbose": True}, timeout=10)
    assert response.status_code == 200, response.text
    return sorted(c["model_replica_id"] for c in response.json())


def test_after_a_restart_records_match_the_live_containers_and_ids_are_not_reused(cluster: Cluster) -> None:
    cluster.start_management()
    cluster.start_query(*FLAGS)
    cluster.add_model("m", "1")
    for _ in range(3):
        cluster.start_container(make_sum_model(), "m", "1")
    eventually(lambda: _replica_ids(cluster) == [0, 1, 2] or None, what="three replicas recorded")
    client = redis.Redis(host=cluster.redis.host, port=cluster.redis.port, db=3, decode_responses=True)
    try:
        client.hset("m,1,7", mapping={"model_id": "m:1", "model_name": "m", "model_version": "1",
                                      "model_replica_id": "7", "zmq_connection_id": "9",
                                      "batch_size": "1", "input_type": "doubles"})
        assert cluster.query is not None
        cluster.query.kill()  # a crash: nothing is cleaned up
        cluster.query.wait(10)
        cluster.start_query(*FLAGS)
        # The containers register again under ids no record held (not 0-2, not 7) ...
        eventually(lambda: len([i for i in _replica_ids(cluster) if i not in (0, 1, 2, 7)]) == 3 or None,
                   what="the containers registered again")
        # ... and the records of the previous run expire: one record per live container.
        eventually(lambda: len(_replica_ids(cluster)) == 3 or None, timeout_s=15,
                   what="stale records expired")
        ids = _replica_ids(cluster)
        assert not set(ids) & {0, 1, 2, 7}, ids
        assert client.ttl(f"m,1,{ids[0]}") > 0  # live records carry an expiry that is refreshed
        # Live records stay while their containers live (refreshed before they expire).
        time.sleep(3)
        assert _replica_ids(cluster) == ids
    finally:
        client.close()
