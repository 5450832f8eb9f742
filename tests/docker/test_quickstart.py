"""The seed quickstart, verbatim except for ``DockerContainerManager(docker_network="host")``.

The manager also gets a random cluster name and random free ports, so the test never collides
with another cluster on this machine; the query address therefore comes from the connection.
"""

from __future__ import annotations

import json
import random
import sys
import time

import cloudpickle
import docker
import pytest
import requests

from clipper_admin import ClipperConnection, DockerContainerManager
from clipper_admin.deployers import python as python_deployer
from tests.docker.conftest import cluster_containers, remove_model_images
from tests.helpers import free_port

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

PREDICT_DEADLINE_S = 120.0


def feature_sum(xs):
    return [str(sum(x)) for x in xs]


# In the quickstart script feature_sum lives in __main__, which cloudpickle serialises by value;
# here it lives in an importable test module, which the container does not have.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def test_quickstart_serves_the_sum_in_docker(docker_client: docker.DockerClient) -> None:
    cluster_name = f"quickstart-{random.randint(0, 10**6)}"
    clipper_conn = ClipperConnection(
        DockerContainerManager(
            cluster_name=cluster_name,
            clipper_query_port=free_port(),
            clipper_management_port=free_port(),
            clipper_rpc_port=free_port(),
            redis_port=free_port(),
            docker_network="host",
        )
    )
    try:
        clipper_conn.start_clipper()
        clipper_conn.register_application(
            name="hello-world", input_type="doubles", default_output="-1.0", slo_micros=100000
        )
        python_deployer.deploy_python_closure(
            clipper_conn, name="sum-model", version=1, input_type="doubles", func=feature_sum
        )
        clipper_conn.link_model_to_app(app_name="hello-world", model_name="sum-model")

        url = f"http://{clipper_conn.get_query_addr()}/hello-world/predict"
        headers = {"Content-type": "application/json"}
        # The replica registers with the query frontend asynchronously; until then (and for a
        # first query slower than the 100 ms SLO) the answer is the default.
        deadline = time.monotonic() + PREDICT_DEADLINE_S
        while True:
            reply = requests.post(
                url, headers=headers, data=json.dumps({"input": [1.1, 2.2, 3.3]}), timeout=10
            ).json()
            if not reply["default"] or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert reply["default"] is False, reply
        assert float(reply["output"]) == pytest.approx(6.6)
    finally:
        clipper_conn.stop_all()
        remove_model_images(docker_client, cluster_name)
    assert cluster_containers(docker_client, cluster_name) == []
