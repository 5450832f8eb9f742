"""deployers.mxnet end to end: an MXNet symbol bound in a Module, served by
containers.python.mxnet_container through LocalContainerManager, answers like the module here.

MXNet 1.9.1 needs numpy < 1.24, so this file runs in an environment of its own
(``make test-frameworks`` runs it in the MXNet virtual environment)."""

from __future__ import annotations

from pathlib import Path

import cloudpickle
import pytest

from clipper_admin import ClipperException, __registry__, __version__
from tests.frameworks.conftest import (
    Cluster,
    assert_answers_match,
    assert_raising_func_answers_default,
    model_dir_without,
    predict,
    unique,
)

pytestmark = [pytest.mark.frameworks, pytest.mark.mxnet, pytest.mark.timeout(600)]

IMAGE = f"{__registry__}/python311-mxnet-container:{__version__}"
DATA_SHAPES = [("data", (1, 4))]


def bound_module():  # type: ignore[no-untyped-def]
    import mxnet as mx

    mx.random.seed(3)
    data = mx.sym.Variable("data")
    hidden = mx.sym.Activation(mx.sym.FullyConnected(data, num_hidden=6, name="fc1"), act_type="relu")
    out = mx.sym.FullyConnected(hidden, num_hidden=1, name="fc2")
    module = mx.mod.Module(symbol=out, label_names=None, context=mx.cpu())
    module.bind(data_shapes=DATA_SHAPES, for_training=False)
    module.init_params(initializer=mx.init.Uniform(0.7))
    return module


def predict_with_module(module, inputs):  # type: ignore[no-untyped-def]
    from collections import namedtuple

    import mxnet as mx
    import numpy as np

    batch = np.stack(inputs).astype("float32")
    if (batch == 7).all():
        raise ValueError("all-sevens input is refused")
    module.forward(namedtuple("Batch", ["data"])([mx.nd.array(batch)]), is_train=False)
    return [str(float(y)) for y in module.get_outputs()[0].asnumpy()[:, 0]]


def test_mxnet_module_answers_like_in_process_and_survives_a_raising_func(cluster: Cluster) -> None:
    from clipper_admin.deployers import mxnet as mxnet_deployer

    module = bound_module()
    app = unique("mxnet")
    mxnet_deployer.create_endpoint(cluster.conn, app, "floats", predict_with_module, module, DATA_SHAPES)

    def expected(x: list[float]) -> float:
        import numpy as np

        return float(predict_with_module(module, [np.array(x, dtype="float32")])[0])

    batch = [[1.0, 2.0, 3.0, 4.0], [0.0, -1.0, 0.5, 2.0], [3.0, 3.0, 3.0, 3.0]]
    assert_answers_match(cluster.conn, app, [0.5, 1.0, -0.5, 2.0], batch, expected)
    sevens = [7.0, 7.0, 7.0, 7.0]
    assert_raising_func_answers_default(cluster.conn, app, sevens, "all-sevens input is refused")
    assert predict(cluster.conn, app, {"input": [0.5, 1.0, -0.5, 2.0]})["default"] is False


def test_missing_params_file_is_refused_naming_it(cluster: Cluster, tmp_path: Path) -> None:
    model_dir = model_dir_without(tmp_path, {
        "func.pkl": cloudpickle.dumps(predict_with_module),
        "mxnet_model_metadata.json": b'{"data_shapes": [["data", [1, 4]]]}',
        "mxnet_model-symbol.json": b"{}",
    })
    name = unique("mxnet-missing")
    with pytest.raises(ClipperException, match=r"mxnet_model-0000\.params is missing"):
        cluster.conn.build_and_deploy_model(name, 1, "floats", model_dir, IMAGE)
    assert "ERROR: cannot load the model from" in cluster.replica_log(name)


@pytest.mark.docker
@pytest.mark.timeout(1200)
def test_mxnet_image_answers(tmp_path: Path) -> None:
    """python311-mxnet-container (its own environment: numpy < 1.24) starts and answers like the
    module here, through DockerContainerManager on the host network."""
    import random

    import docker

    from clipper_admin import ClipperConnection
    from clipper_admin.deployers import mxnet as mxnet_deployer
    from tests.docker.conftest import cluster_containers, host_manager, remove_model_images
    from tests.frameworks.conftest import predict_until_model_answers

    client = docker.from_env()
    name = f"fw-docker-mx-{random.randint(0, 10**6)}"
    conn = ClipperConnection(host_manager(name))
    conn.start_clipper()
    try:
        module = bound_module()
        app = unique("dmxnet")
        mxnet_deployer.create_endpoint(conn, app, "floats", predict_with_module, module, DATA_SHAPES)
        x = [0.5, 1.0, -0.5, 2.0]
        reply = predict_until_model_answers(conn, app, {"input": x})
        assert reply["default"] is False, reply
        import numpy as np

        expected = float(predict_with_module(module, [np.array(x, dtype="float32")])[0])
        assert float(reply["output"]) == pytest.approx(expected, rel=1e-4, abs=1e-5)
    finally:
        try:
            conn.stop_all()
        finally:
            remove_model_images(client, name)
        assert cluster_containers(client, name) == []
