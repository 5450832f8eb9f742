"""Progress and failure reports of long steps (issue 18.2) against a real local cluster: each
wait says what it waits for and for how long, and a replica that never becomes ready (or exits
while loading) fails the deploy with the last lines of its own log, not a bare timeout."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import clipper_admin._logging as admin_logging
from clipper_admin import ClipperConnection, ClipperException, LocalContainerManager
from tests.helpers import free_port

BROKEN_IMAGE = "broken-container:1"
STARTUP_TIMEOUT_S = 3.0


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self) -> list[str]:
        return [r.getMessage() for r in self.records]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ClipperConnection, _Records]]:
    records = _Records()
    package = logging.getLogger("clipper_admin")
    old_level = package.level
    package.addHandler(records)
    package.setLevel(logging.INFO)
    patch = pytest.MonkeyPatch()
    patch.setattr(admin_logging, "WAIT_REPORT_INTERVAL_S", 1.0)
    manager = LocalContainerManager(
        cluster_name=f"progress-{uuid.uuid4().hex[:6]}", clipper_home=str(tmp_path_factory.mktemp("home")),
        query_port=free_port(), management_port=free_port(), rpc_port=free_port(),
        redis_port=free_port(), startup_timeout_s=STARTUP_TIMEOUT_S, supervise=False,
        image_runtimes={"broken-container": "tests.integration.broken_model_runtime"},
    )
    conn = ClipperConnection(manager)
    try:
        conn.start_clipper()
        yield conn, records
    finally:
        conn.stop_all()
        patch.undo()
        package.removeHandler(records)
        package.setLevel(old_level)


def test_start_says_which_component_it_waits_for_and_how_long_it_took(
    cluster: tuple[ClipperConnection, _Records],
) -> None:
    conn, records = cluster
    messages = records.messages()
    query = f"http://{conn.cm.get_query_addr()}/healthz"
    wanted = f"Waiting for the query frontend to answer {query} (timeout 3 s)"
    assert any(m.endswith(wanted) for m in messages)
    assert any("Waiting for Redis to listen on" in m for m in messages)
    ready = [r for r in records.records if "The management frontend is ready after" in r.getMessage()]
    assert len(ready) == 1 and ready[0].levelno == logging.INFO
    # The structured form a terminal display draws from.
    progress = getattr(ready[0], admin_logging.PROGRESS_EXTRA)
    assert progress["kind"] == "ready" and progress["what"] == "the management frontend"
    assert 0 <= progress["elapsed_s"] < STARTUP_TIMEOUT_S


def test_replica_that_never_gets_ready_fails_with_its_log_tail(
    cluster: tuple[ClipperConnection, _Records],
) -> None:
    conn, records = cluster
    conn.register_model("never-ready", "1", "doubles", image=BROKEN_IMAGE)
    del records.records[:]
    with pytest.raises(ClipperException) as info:
        conn.cm.deploy_model("never-ready", "1", "doubles", BROKEN_IMAGE, 1)
    text = str(info.value)
    first, _, tail = text.partition("\n")
    assert first.startswith("Model replica never-ready_1-") and "did not become ready within 3.0 s" in first
    assert "loading weights for never-ready from /models/never-ready.bin" in tail
    assert "waiting for the GPU to become available" in tail
    messages = records.messages()
    waiting = [m for m in messages if "Waiting for model replica never-ready_1-" in m]
    assert len(waiting) == 1 and "to load its model (log " in waiting[0]
    still = [m for m in messages if "Still waiting for model replica never-ready_1-" in m]
    assert still and all(m.endswith("s of 3 s") for m in still)  # the time waited so far
    assert conn.cm.get_num_replicas("never-ready", "1") == 0  # stopped, not left hanging


def test_replica_that_exits_while_loading_fails_at_once_with_its_log_tail(
    cluster: tuple[ClipperConnection, _Records],
) -> None:
    conn, _ = cluster
    conn.register_model("exits-early", "1", "doubles", image=BROKEN_IMAGE)
    with pytest.raises(ClipperException) as info:
        conn.cm.deploy_model("exits-early", "1", "doubles", BROKEN_IMAGE, 1)
    first, _, tail = str(info.value).partition("\n")
    assert "exited with status 3 while starting" in first
    assert tail.splitlines()[-1] == "FATAL: /models/exits-early.bin is truncated (4096 of 1048576 bytes)"
    assert Path(first.rsplit("Last lines of ", 1)[1].rstrip(":")).is_file()
