"""The documentation's Rclipper example through Docker: R's build_model builds the model image
FROM clipper/r-container (Debian's R on python:3.11-slim, host network, no registry), the printed
``conn.deploy_model(...)`` line runs from Python against a DockerContainerManager cluster, and
the R container answers queries."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import docker
import docker.errors
import pytest

from tests.docker.conftest import Cluster, docker_client, make_cluster  # noqa: F401  (fixtures)
from tests.r.conftest import (
    DOC_PRED_FN,
    deploy_and_query_examples,
    deploy_line,
    query,
    run_deploy_line,
    run_r,
)

pytestmark = [pytest.mark.r, pytest.mark.docker, pytest.mark.timeout(900)]

# The documentation's section, verbatim: import, the function, the build line.
DOC_EXAMPLE = f"""\
library(Rclipper)
{DOC_PRED_FN}
print(pred_fn(list(c(1,2), c(3))))

# Specify that the prediction function expects integer vectors
# by supplying an integer vector as the sample input
Rclipper::build_model("test-model", "1", pred_fn, sample_input = as.integer(c(1,2,3)))
"""


def test_documentation_example_verbatim(
    make_cluster: Callable[..., Cluster],  # noqa: F811
    docker_client: docker.DockerClient,  # noqa: F811
    tmp_path: Path,
) -> None:
    cluster = make_cluster("r-doc")
    try:
        output = run_r(DOC_EXAMPLE, tmp_path)
        assert '[1] "Serialized model function!"' in output
        line = deploy_line(output)
        assert line == (
            'conn.deploy_model("test-model", "1", "ints", "test-model:1", '
            "num_replicas=<num_container_replicas>)"
        )
        cluster.conn.register_application("app1", "ints", "-1.0", 20_000_000)
        run_deploy_line(line, cluster.conn)
        cluster.conn.link_model_to_app(app_name="app1", model_name="test-model")
        result = query(cluster.conn, "app1", {"input": [1, 2, 3, 4]})
        assert result["output"] == 4 and result["default"] is False
    finally:
        cluster.conn.stop_all()
        try:
            docker_client.images.remove("test-model:1")
        except docker.errors.ImageNotFound:
            pass


def test_every_input_kind_through_docker(
    make_cluster: Callable[..., Cluster],  # noqa: F811
    tmp_path: Path,
) -> None:
    cluster = make_cluster("r-kinds")
    # Image names start with the cluster's name, so make_cluster's teardown removes them.
    deploy_and_query_examples(cluster.conn, tmp_path, local=False, prefix=cluster.name)
