"""Framework images through DockerContainerManager (``make test-frameworks-docker``): a PyTorch
model served end to end (input, input_batch, a raising function), and every other framework's
image starts and answers a query like the model in this process. Host networking only.

MXNet's Docker test is in test_mxnet.py (it runs in the MXNet environment)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

# Imported here, not in the tests: the conftest registers these modules' functions to be
# pickled by value once collection is done.
from tests.frameworks import test_keras, test_onnx, test_pyspark, test_pytorch, test_tensorflow
from tests.frameworks.conftest import (
    assert_answers_match,
    assert_raising_func_answers_default,
    predict,
    unique,
)

pytestmark = [pytest.mark.frameworks, pytest.mark.docker, pytest.mark.timeout(1200)]


class DockerCluster:
    def __init__(self, conn) -> None:  # type: ignore[no-untyped-def]
        self.conn = conn


@pytest.fixture(scope="module")
def docker_cluster() -> Iterator[DockerCluster]:
    import docker

    from clipper_admin import ClipperConnection
    from tests.docker.conftest import cluster_containers, host_manager, remove_model_images

    client = docker.from_env()
    client.ping()
    name = f"fw-docker-{random.randint(0, 10**6)}"
    conn = ClipperConnection(host_manager(name))
    conn.start_clipper()
    try:
        yield DockerCluster(conn)
    finally:
        try:
            conn.stop_all()
        finally:
            remove_model_images(client, name)
        assert cluster_containers(client, name) == []


def test_pytorch_model_end_to_end_in_docker(docker_cluster: DockerCluster) -> None:
    import torch

    from clipper_admin.deployers import pytorch as pytorch_deployer

    net = test_pytorch.two_layer_net()
    app = unique("dtorch")
    pytorch_deployer.create_endpoint(docker_cluster.conn, app, "floats", test_pytorch.predict_with_net, net)

    def expected(x: list[float]) -> float:
        with torch.no_grad():
            return float(net(torch.tensor([x], dtype=torch.float32))[0, 0])

    single = [0.5, -1.0, 2.0, 0.25]
    batch = [[1.0, 1.0, 1.0, 1.0], [0.0, 2.0, -2.0, 1.0]]
    assert_answers_match(docker_cluster.conn, app, single, batch, expected)
    assert_raising_func_answers_default(
        docker_cluster.conn, app, [-500.0, 0.0, 0.0, 0.0], "inputs below -100 are refused by this model"
    )
    assert predict(docker_cluster.conn, app, {"input": single})["default"] is False


def test_onnx_image_answers(docker_cluster: DockerCluster) -> None:
    import torch

    from clipper_admin.deployers import onnx as onnx_deployer

    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Tanh(), torch.nn.Linear(2, 1))
    app = unique("donnx")
    onnx_deployer.create_pytorch_endpoint(
        docker_cluster.conn, app, "floats", torch.zeros(2, 3), test_onnx.predict_with_session, net
    )

    def expected(x: list[float]) -> float:
        with torch.no_grad():
            return float(net(torch.tensor([x], dtype=torch.float32))[0, 0])

    batch = [[1.0, 2.0, 3.0], [0.0, 0.0, 1.0]]
    assert_answers_match(docker_cluster.conn, app, [0.1, 0.2, 0.3], batch, expected)


def test_tensorflow_image_answers(docker_cluster: DockerCluster) -> None:
    from clipper_admin.deployers import tensorflow as tf_deployer

    module = test_tensorflow.affine_module()
    app = unique("dtf")
    tf = test_tensorflow
    tf_deployer.create_endpoint(docker_cluster.conn, app, "doubles", tf.predict_with_loaded, module)
    batch = [[1.0, 0.0, 1.0], [0.0, -2.0, 3.0]]
    assert_answers_match(docker_cluster.conn, app, [1.0, 2.0, 3.0], batch, tf.expected_of(module))


def test_keras_image_answers(docker_cluster: DockerCluster) -> None:
    from clipper_admin.deployers import keras as keras_deployer

    model = test_keras.dense_model()
    app = unique("dkeras")
    keras_deployer.create_endpoint(docker_cluster.conn, app, "floats", test_keras.predict_with_keras, model)
    assert_answers_match(
        docker_cluster.conn, app, [0.5, 0.5, 1.0, -1.0], [[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 1.0]],
        test_keras.expected_of(model),
    )


def test_pyspark_image_answers(docker_cluster: DockerCluster, tmp_path: Path) -> None:
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.linalg import Vectors

    from clipper_admin.deployers import pyspark as pyspark_deployer
    from containers.python.pyspark_container import local_spark_session

    spark = local_spark_session()
    try:
        rows = [(Vectors.dense(x), y) for x, y in test_pyspark.ROWS]
        frame = spark.createDataFrame(rows, ["features", "label"])
        model = LogisticRegression(maxIter=20, regParam=0.01).fit(frame)
        app = unique("dspark")
        pyspark_deployer.create_endpoint(
            docker_cluster.conn, app, "doubles", test_pyspark.ml_probability, model, spark.sparkContext,
            slo_micros=test_pyspark.SLO_MICROS,
        )

        def expected(x: list[float]) -> float:
            return float(test_pyspark.ml_probability(spark, model, [x])[0])

        assert_answers_match(docker_cluster.conn, app, [2.0, 0.5], [[0.0, 1.0], [4.0, 0.0]], expected)
    finally:
        spark.stop()
