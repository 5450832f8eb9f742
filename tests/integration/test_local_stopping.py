"""Stopping a local cluster from another process, and model containers without the API (issue 10.5)."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from clipper_admin import ClipperConnection, LocalContainerManager, __registry__, __version__
from clipper_admin.local.cluster_record import ClusterRecord
from tests.helpers import free_port

NOOP_IMAGE = f"{__registry__}/noop-container:{__version__}"


def manager(home: Path, name: str) -> LocalContainerManager:
    return LocalContainerManager(
        cluster_name=name, clipper_home=str(home), redis_port=free_port(), query_port=free_port(),
        management_port=free_port(), rpc_port=free_port(),
    )


def cluster_pids(conn: ClipperConnection) -> list[int]:
    record = ClusterRecord.load(conn.cm.paths)
    assert record is not None
    return [h.pid for h in record.core.values()] + [r.process.pid for r in record.replicas]


def running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.slow
def test_stop_all_from_a_second_process_stops_gracefully(
    tmp_path: Path, subprocess_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """The first process stays alive (a notebook, say), so the cluster's exited processes stay
    its zombies: the second process must not wait for them, nor SIGKILL them."""
    name = "second-process"
    first = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from clipper_admin import ClipperConnection, LocalContainerManager\n"
         f"conn = ClipperConnection(LocalContainerManager(cluster_name={name!r}, "
         f"clipper_home={str(tmp_path)!r}, redis_port={free_port()}, query_port={free_port()}, "
         f"management_port={free_port()}, rpc_port={free_port()}))\n"
         "conn.start_clipper()\n"
         f"conn.deploy_model('m', '1', 'doubles', {NOOP_IMAGE!r})\n"
         "print('READY', flush=True)\n"
         "time.sleep(600)\n"],
        env=subprocess_env, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert first.stdout is not None
        assert first.stdout.readline().strip() == "READY"
        second = ClipperConnection(LocalContainerManager(cluster_name=name, clipper_home=str(tmp_path)))
        second.connect()
        pids = cluster_pids(second)
        with caplog.at_level(logging.WARNING, logger="clipper_admin"):
            second.stop_all()
        assert not [r.getMessage() for r in caplog.records if "killing them" in r.getMessage()]
        assert not [pid for pid in pids if running(pid)]
    finally:
        first.kill()
        first.wait(10)


@pytest.mark.slow
@pytest.mark.parametrize("down", ["management_frontend", "redis"])
def test_stop_all_model_containers_needs_no_connection_nor_the_api(tmp_path: Path, down: str) -> None:
    conn = ClipperConnection(manager(tmp_path, f"no-api-{down.replace('_', '-')}"))
    conn.start_clipper()
    try:
        conn.deploy_model("m", "1", "doubles", NOOP_IMAGE, num_replicas=2)
        record = ClusterRecord.load(conn.cm.paths)
        assert record is not None
        replicas = [r.process.pid for r in record.replicas]
        assert len(replicas) == 2 and all(running(pid) for pid in replicas)
        victim = record.core[down].process()
        assert victim is not None
        victim.kill()
        victim.wait(10)
        name = conn.cm.cluster_name
        fresh = ClipperConnection(LocalContainerManager(cluster_name=name, clipper_home=str(tmp_path)))
        fresh.stop_all_model_containers()  # never connected; the API cannot answer
        deadline = time.monotonic() + 10
        while any(running(pid) for pid in replicas) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in replicas if running(pid)]
    finally:
        conn.stop_all()


@pytest.mark.slow
def test_get_clipper_logs_copies_only_the_current_run_without_overwriting_earlier_copies(
    tmp_path: Path,
) -> None:
    copies = tmp_path / "copies"
    conn = ClipperConnection(manager(tmp_path, "two-runs"))
    conn.start_clipper()
    try:
        conn.deploy_model("first-run-model", "1", "doubles", NOOP_IMAGE)
        first = conn.get_clipper_logs(str(copies))
    finally:
        conn.stop_all()
    first_text = {p: Path(p).read_bytes() for p in first}
    assert any("first-run-model" in Path(p).name for p in first)

    again = ClipperConnection(manager(tmp_path, "two-runs"))
    again.start_clipper()
    try:
        second = again.get_clipper_logs(str(copies))
    finally:
        again.stop_all()
    assert not set(first) & set(second)  # new names: nothing of the first run overwritten
    assert {p: Path(p).read_bytes() for p in first} == first_text
    assert not [p for p in second if "first-run-model" in Path(p).name]  # the old replica's log
    archived = list((again.cm.paths.previous_logs_dir).rglob("first-run-model*.log"))
    assert len(archived) == 1
