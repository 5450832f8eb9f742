"""The seed quickstart on the real Kubernetes test cluster: the answer comes from a model pod that
the kubelet started through cri-dockerd.

Verbatim except for the manager: ``KubernetesContainerManager(use_host_network=True)`` with a
random cluster name and free loopback ports (the test cluster has no pod network).
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
from kubernetes import client

from clipper_admin import ClipperConnection
from clipper_admin.container_manager import CLIPPER_MODEL_CONTAINER_LABEL
from clipper_admin.deployers import python as python_deployer
from tests.docker.conftest import remove_model_images
from tests.k8s.conftest import NODE_NAME, cluster_objects, host_network_manager, ready_pods

pytestmark = [pytest.mark.k8s, pytest.mark.timeout(900)]

PREDICT_DEADLINE_S = 120.0


def feature_sum(xs):
    return [str(sum(x)) for x in xs]


# feature_sum lives in an importable test module, which the container does not have.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def predict(url: str, body: dict[str, object]) -> dict[str, object]:
    """POST until the model (not the default output) answers or the deadline passes."""
    deadline = time.monotonic() + PREDICT_DEADLINE_S
    while True:
        reply = requests.post(
            url, headers={"Content-type": "application/json"}, data=json.dumps(body), timeout=10
        ).json()
        if not reply["default"] or time.monotonic() > deadline:
            return reply
        time.sleep(0.5)


def test_quickstart_answers_from_a_model_pod(
    kubeconfig: str, k8s_api: client.ApiClient, docker_client: docker.DockerClient
) -> None:
    cluster_name = f"quickstart-{random.randint(0, 10**6)}"
    manager = host_network_manager(kubeconfig, cluster_name)
    clipper_conn = ClipperConnection(manager)
    try:
        clipper_conn.start_clipper()
        clipper_conn.register_application(
            name="hello-world", input_type="doubles", default_output="-1.0", slo_micros=100000
        )
        python_deployer.deploy_python_closure(
            clipper_conn, name="sum-model", version=1, input_type="doubles", func=feature_sum
        )
        clipper_conn.link_model_to_app(app_name="hello-world", model_name="sum-model")

        reply = predict(
            f"http://{clipper_conn.get_query_addr()}/hello-world/predict", {"input": [1.1, 2.2, 3.3]}
        )
        assert reply["default"] is False, reply
        assert float(reply["output"]) == pytest.approx(6.6)

        # The replica is a pod on the kubelet's node, its container run by Docker via cri-dockerd.
        (pod,) = ready_pods(k8s_api, "default", f"{CLIPPER_MODEL_CONTAINER_LABEL}=sum-model_1")
        assert pod.spec.node_name == NODE_NAME and pod.spec.host_network is True
        (status,) = pod.status.container_statuses
        assert status.container_id.startswith("docker://")
        assert status.image.endswith(f"{manager.cluster_identifier}-sum-model:1")
        container = docker_client.containers.get(status.container_id.removeprefix("docker://"))
        assert container.status == "running"
        assert container.labels["io.kubernetes.pod.name"] == pod.metadata.name
    finally:
        clipper_conn.stop_all()
        remove_model_images(docker_client, manager.cluster_identifier)
    assert cluster_objects(k8s_api, "default", cluster_name) == []
