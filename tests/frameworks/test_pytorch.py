"""deployers.pytorch end to end: a two-layer torch net served by containers.python.pytorch_container
through LocalContainerManager answers like the net in this process."""

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

pytestmark = [pytest.mark.frameworks, pytest.mark.timeout(600)]

IMAGE = f"{__registry__}/python311-pytorch-container:{__version__}"


def two_layer_net():  # type: ignore[no-untyped-def]
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))


def predict_with_net(model, inputs):  # type: ignore[no-untyped-def]
    import numpy as np
    import torch

    batch = np.stack(inputs).astype("float32")
    if (batch < -100).any():
        raise ValueError("inputs below -100 are refused by this model")
    with torch.no_grad():
        return [str(float(y)) for y in model(torch.from_numpy(batch))[:, 0]]


def test_pytorch_model_answers_like_in_process_and_survives_a_raising_func(cluster: Cluster) -> None:
    import torch

    from clipper_admin.deployers import pytorch as pytorch_deployer

    net = two_layer_net()
    app = unique("torch")
    pytorch_deployer.create_endpoint(cluster.conn, app, "floats", predict_with_net, net)

    def expected(x: list[float]) -> float:
        with torch.no_grad():
            return float(net(torch.tensor([x], dtype=torch.float32))[0, 0])

    single = [0.5, -1.0, 2.0, 0.25]
    batch = [[float(i), 1.0, -float(i), 0.5] for i in range(5)]
    assert_answers_match(cluster.conn, app, single, batch, expected)
    assert_raising_func_answers_default(
        cluster.conn, app, [-500.0, 0.0, 0.0, 0.0], "inputs below -100 are refused by this model"
    )
    # The replica keeps serving after the model raised.
    assert predict(cluster.conn, app, {"input": single})["default"] is False
    assert cluster.replica_pids(app)


def test_pytorch_model_dir_with_corrupt_weights_is_refused_naming_the_file(
    cluster: Cluster, tmp_path: Path
) -> None:
    net = two_layer_net()
    model_dir = model_dir_without(tmp_path, {
        "func.pkl": cloudpickle.dumps(predict_with_net),
        "pytorch_model.pkl": cloudpickle.dumps(net),
        "pytorch_weights.pkl": b"these are not torch weights",
    })
    name = unique("torch-bad")
    with pytest.raises(ClipperException) as info:
        cluster.conn.build_and_deploy_model(name, 1, "floats", model_dir, IMAGE)
    assert "pytorch_weights.pkl cannot be loaded" in str(info.value)
    assert "ERROR: cannot load the model from" in cluster.replica_log(name)


def test_pytorch_model_dir_without_weights_is_refused_naming_the_file(
    cluster: Cluster, tmp_path: Path
) -> None:
    model_dir = model_dir_without(tmp_path, {
        "func.pkl": cloudpickle.dumps(predict_with_net),
        "pytorch_model.pkl": cloudpickle.dumps(two_layer_net()),
    })
    name = unique("torch-missing")
    with pytest.raises(ClipperException, match=r"pytorch_weights\.pkl is missing"):
        cluster.conn.build_and_deploy_model(name, 1, "floats", model_dir, IMAGE)


def test_saving_errors_are_reported_as_the_original_does(cluster: Cluster) -> None:
    from clipper_admin.deployers import pytorch as pytorch_deployer

    with pytest.raises(ClipperException, match=r"^Error saving torch model: "):
        pytorch_deployer.deploy_pytorch_model(
            cluster.conn, unique("torch-none"), 1, "floats", predict_with_net, object()
        )
