"""The documentation's Rclipper example through a local cluster (LocalContainerManager): R's
build_model(local = TRUE), the printed line run from Python, queries answered by R processes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from clipper_admin import ClipperConnection, LocalContainerManager
from tests.helpers import free_port
from tests.r.conftest import deploy_and_query_examples, deploy_line, query, run_deploy_line, run_r

pytestmark = [pytest.mark.r, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def conn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClipperConnection]:
    manager = LocalContainerManager(
        cluster_name=f"r-test-{uuid.uuid4().hex[:8]}",
        query_port=free_port(),
        management_port=free_port(),
        rpc_port=free_port(),
        redis_port=free_port(),
        clipper_home=str(tmp_path_factory.mktemp("clipper_home")),
    )
    connection = ClipperConnection(manager)
    connection.start_clipper()
    yield connection
    connection.stop_all()


def test_documentation_example_for_every_input_kind(conn: ClipperConnection, tmp_path: Path) -> None:
    deploy_and_query_examples(conn, tmp_path, local=True, prefix="local")
    # Each replica is an R process started through the r-container runtime.
    replicas = conn.cm.replica_supervision()  # type: ignore[attr-defined]
    assert len([r for r in replicas if r["state"] == "running"]) == 5


def test_model_errors_answer_the_default_and_the_replica_keeps_serving(
    conn: ClipperConnection, tmp_path: Path
) -> None:
    pred_fn = """\
pred_fn = function(inputs) {
  if (any(vapply(inputs, function(x) 13L %in% x, logical(1)))) stop("unlucky thirteen")
  if (any(vapply(inputs, function(x) 7L %in% x, logical(1)))) return(list())
  lapply(inputs, function(input) as.character(sum(input)))
}
"""
    code = (
        f"library(Rclipper)\n{pred_fn}\nRclipper::build_model(\"r-flaky\", \"1\", pred_fn, "
        f'sample_input = 1:3, local = TRUE, model_dir = "{tmp_path / "flaky"}")\n'
    )
    run_deploy_line(deploy_line(run_r(code, tmp_path)), conn)
    conn.register_application("flaky", "ints", "no answer", 20_000_000)
    conn.link_model_to_app("flaky", "r-flaky")
    failed = query(conn, "flaky", {"input": [1, 13]})
    assert failed["default"] is True and failed["output"] == "no answer"
    assert "unlucky thirteen" in str(failed["default_explanation"])
    wrong_count = query(conn, "flaky", {"input": [7]})
    assert wrong_count["default"] is True
    assert "0 outputs for 1 inputs" in str(wrong_count["default_explanation"])
    assert query(conn, "flaky", {"input": [2, 3]})["output"] == 5
