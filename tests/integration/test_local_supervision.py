# ruff: noqa: E501  (expected values read best unwrapped)
"""A local cluster looks after itself (issue 11.1, 11.5, 11.8): the supervisor starts again a
replica or Redis killed by the OS, gives up on a crash loop and says so; Redis keeps every record
across a restart (AOF), asks for the cluster's generated password and binds the loopback; the
management API can require a bearer token that ClipperConnection sends, also after connect()."""

from __future__ import annotations

import os
import pickle
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis
import requests

from clipper_admin import ClipperConnection, ClipperException, LocalContainerManager
from clipper_admin.deployers import python as python_deployer
from clipper_admin.local.cluster_record import ClusterRecord, ReplicaRecord
from tests.helpers import free_port, wait_for

MAX_RESTARTS = 3
BACKOFF_S = 0.2


def make_manager(home: Path, name: str, **options: Any) -> LocalContainerManager:
    return LocalContainerManager(
        cluster_name=name, clipper_home=str(home), redis_port=free_port(), query_port=free_port(),
        management_port=free_port(), rpc_port=free_port(), restart_backoff_s=BACKOFF_S,
        max_restarts=MAX_RESTARTS, **options,
    )


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[ClipperConnection]:
    connection = ClipperConnection(make_manager(tmp_path, "supervised"))
    connection.start_clipper()
    try:
        yield connection
    finally:
        connection.stop_all()


def record_of(conn: ClipperConnection) -> ClusterRecord:
    record = ClusterRecord.load(conn.cm.paths)
    assert record is not None
    return record


def replica_of(conn: ClipperConnection, name: str) -> ReplicaRecord:
    (replica,) = [r for r in record_of(conn).replicas if r.name == name]
    return replica


def predict(conn: ClipperConnection, app: str, value: float) -> dict[str, Any]:
    reply = requests.post(f"http://{conn.get_query_addr()}/{app}/predict", json={"input": [value, 1.0]}, timeout=10)
    return reply.json()  # type: ignore[no-any-return]


def deploy_sum(conn: ClipperConnection, app: str, model: str) -> None:
    conn.register_application(app, "doubles", "default", 1_000_000)
    python_deployer.deploy_python_closure(
        conn, name=model, version=1, input_type="doubles", func=lambda xs: [str(sum(x)) for x in xs]
    )
    conn.link_model_to_app(app, model)
    wait_for(lambda: not predict(conn, app, 1.0)["default"], 30, "the model to answer")


def redis_client(conn: ClipperConnection, db: int = 0) -> redis.Redis:
    record = record_of(conn)
    return redis.Redis(record.redis_ip, record.redis_port, db=db, password=record.redis_password,
                       socket_timeout=5, decode_responses=True)


# -- supervision ---------------------------------------------------------------------------------


def test_a_killed_replica_comes_back_and_serves(conn: ClipperConnection) -> None:
    deploy_sum(conn, "sum-app", "sum-model")
    before = replica_of(conn, "sum-model")
    os.kill(before.process.pid, signal.SIGKILL)
    after = wait_for(
        lambda: (r := replica_of(conn, "sum-model")).process.pid != before.process.pid
        and r.process.is_alive() and r,
        20, "the replica to be started again",
    )
    assert (after.state, after.restarts) == ("running", 1)
    assert after.last_exit is not None and after.last_exit.startswith("exited after")
    assert conn.get_num_replicas("sum-model", "1") == 1
    # It serves again: a value never asked before (no cache hit) is answered by the model.
    reply = wait_for(lambda: (r := predict(conn, "sum-app", 41.0)) and not r["default"] and r, 30, "an answer")
    assert reply["output"] == 42.0
    supervisor_log = (conn.cm.paths.log_dir / "supervisor.log").read_text()
    assert f"Model replica {after.replica_name} (pid {before.process.pid}) exited" in supervisor_log
    assert f"Model replica {after.replica_name} started again (pid {after.process.pid}; restart 1)" in supervisor_log


class _ExitAtLoad:
    """Unpickling this runs ``os._exit(3)``: a model whose loading kills its process."""

    def __reduce__(self) -> tuple[Any, tuple[int]]:
        return os._exit, (3,)


def test_a_replica_that_exits_at_load_crash_loops_and_is_reported(conn: ClipperConnection) -> None:
    deploy_sum(conn, "loop-app", "loop-model")
    replica = replica_of(conn, "loop-model")
    # The model directory goes bad after deployment: every start now exits while loading.
    model_path = Path(replica.launch.env["CLIPPER_MODEL_PATH"]) if replica.launch else None
    assert model_path is not None and (model_path / "func.pkl").exists()
    (model_path / "func.pkl").write_bytes(pickle.dumps(_ExitAtLoad()))
    os.kill(replica.process.pid, signal.SIGKILL)

    looped = wait_for(
        lambda: (r := replica_of(conn, "loop-model")).state == "crash-loop" and r, 60, "the crash loop"
    )
    assert looped.restarts == MAX_RESTARTS  # started again exactly that often, then left down
    assert looped.last_exit is not None and looped.last_exit.startswith("exit status 3 after")
    assert not looped.process.is_alive()
    time.sleep(2 * BACKOFF_S * 2**MAX_RESTARTS)  # longer than any back-off: nothing starts again
    assert replica_of(conn, "loop-model").restarts == MAX_RESTARTS
    assert conn.get_num_replicas("loop-model", "1") == 0
    reported = [r for r in conn.get_all_model_replicas(verbose=True) if r.get("state") == "crash-loop"]
    assert reported == [{
        "model_id": "loop-model:1", "model_name": "loop-model", "model_version": "1", "model_replica_id": None,
        "state": "crash-loop", "restarts": MAX_RESTARTS, "last_exit": looped.last_exit,
        "replica_name": looped.replica_name,
    }]
    assert "crash loop" in (conn.cm.paths.log_dir / "supervisor.log").read_text()
    # Asking for replicas again starts afresh (and fails loudly, the model still exits at load).
    with pytest.raises(ClipperException, match="exited"):
        conn.set_num_replicas("loop-model", 1, "1")
    assert [r for r in record_of(conn).replicas if r.name == "loop-model"] == []


def test_a_second_process_sees_supervision(conn: ClipperConnection, tmp_path: Path) -> None:
    other = ClipperConnection(LocalContainerManager(cluster_name="supervised", clipper_home=str(tmp_path)))
    other.connect()
    supervisor = record_of(conn).core["supervisor"]
    assert supervisor.is_alive()
    assert other.cm.replica_supervision() == []
    other.stop_all()  # stops the supervisor first: nothing is started again afterwards
    assert not supervisor.is_alive()
    assert ClusterRecord.load(conn.cm.paths) is None


# -- Redis: persistence, password, loopback ------------------------------------------------------


def _every_record(conn: ClipperConnection) -> dict[str, Any]:
    return {
        "apps": conn.get_all_apps(verbose=True),
        "models": sorted(conn.get_all_models(verbose=True), key=lambda m: (m["model_name"], m["model_version"])),
        "links": conn.get_linked_models("persist-app"),
        "current": conn.get_current_model_version("persist-model"),
        "redis": {db: sorted(redis_client(conn, db).keys("*")) for db in (2, 5, 6, 7)},
    }


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_redis_restart_loses_no_record(conn: ClipperConnection, sig: signal.Signals) -> None:
    conn.register_application("persist-app", "doubles", "-1", 100000)
    conn.register_model("persist-model", "1", "doubles")
    conn.register_model("persist-model", "2", "doubles")
    conn.set_model_version("persist-model", "1")
    conn.link_model_to_app("persist-app", "persist-model")
    before = _every_record(conn)
    assert before["current"] == "1" and before["links"] == ["persist-model"]
    old = record_of(conn).core["redis"]
    # No pause: every write is in the append-only file before Redis answers it.
    os.kill(old.pid, sig)
    new = wait_for(
        lambda: (h := record_of(conn).core["redis"]).pid != old.pid and h.is_alive() and h, 20, "Redis to restart"
    )
    assert record_of(conn).core_restarts == {"redis": 1}
    after = wait_for(lambda: _try(lambda: _every_record(conn)), 20, "the management API over the new Redis")
    assert after == before
    assert new.pid == int(redis_client(conn).info("server")["process_id"])
    # The cluster keeps working on the restarted Redis: new records are accepted, and the query
    # frontend (which resubscribed) serves the new app at once, with its default output.
    conn.register_application("after-app", "doubles", "-1", 100000)
    assert "after-app" in conn.get_all_apps()
    reply = requests.post(f"http://{conn.get_query_addr()}/after-app/predict", json={"input": [1.0]}, timeout=10)
    assert reply.status_code == 200 and reply.json()["output"] == -1


def _try(read: Callable[[], Any]) -> Any:
    try:
        return read()
    except (ClipperException, redis.RedisError):
        return None


def test_redis_asks_for_the_generated_password_and_binds_the_loopback(conn: ClipperConnection) -> None:
    record = record_of(conn)
    assert record.redis_password and len(record.redis_password) >= 24
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(record.redis_ip, record.redis_port, socket_timeout=5).ping()
    assert redis_client(conn).ping()
    # The password is in no command line, and cluster.json (which holds it) is private.
    for handle in record.core.values():
        assert record.redis_password not in " ".join(psutil.Process(handle.pid).cmdline())
    assert conn.cm.paths.record_file.stat().st_mode & 0o077 == 0
    assert (conn.cm.paths.redis_dir / "redis.conf").stat().st_mode & 0o077 == 0
    listening = {c.laddr for c in psutil.Process(record.core["redis"].pid).net_connections("inet")
                 if c.status == psutil.CONN_LISTEN}
    assert listening and {addr.ip for addr in listening} == {"127.0.0.1"}
    assert (conn.cm.paths.redis_dir / "appendonlydir").is_dir()


def test_the_admin_token_is_required_sent_and_found_by_connect(tmp_path: Path) -> None:
    first = ClipperConnection(make_manager(tmp_path, "tokened", admin_token="tok-123"))
    first.start_clipper()
    try:
        admin = f"http://{first.cm.get_admin_addr()}/admin"
        refused = requests.post(f"{admin}/get_all_applications", json={"verbose": False}, timeout=10)
        assert refused.status_code == 401 and refused.json()["error"] == "Unauthorized"
        assert requests.get(f"{admin}/ping", timeout=10).text == "PONG"
        first.register_application("tok-app", "doubles", "-1", 100000)
        second = ClipperConnection(LocalContainerManager(cluster_name="tokened", clipper_home=str(tmp_path)))
        second.connect()  # the token comes from the cluster record
        assert second.get_all_apps() == ["tok-app"]
    finally:
        first.stop_all()
