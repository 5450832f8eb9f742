"""deployers.onnx end to end: a torch net exported to ONNX, served with onnxruntime by
containers.python.onnx_container, answers like the net in this process."""

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

IMAGE = f"{__registry__}/python311-onnx-container:{__version__}"


def predict_with_session(session, inputs):  # type: ignore[no-untyped-def]
    import numpy as np

    batch = np.stack(inputs).astype("float32")
    if (batch > 1e6).any():
        raise ValueError("inputs above 1e6 are refused by this model")
    (out,) = session.run(None, {session.get_inputs()[0].name: batch})
    return [str(float(y)) for y in out[:, 0]]


def test_onnx_model_answers_like_torch_in_process(cluster: Cluster) -> None:
    import torch

    from clipper_admin.deployers import onnx as onnx_deployer

    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.Tanh(), torch.nn.Linear(6, 1))
    app = unique("onnx")
    onnx_deployer.create_pytorch_endpoint(
        cluster.conn, app, "floats", torch.zeros(2, 3), predict_with_session, net
    )

    def expected(x: list[float]) -> float:
        with torch.no_grad():
            return float(net(torch.tensor([x], dtype=torch.float32))[0, 0])

    assert_answers_match(cluster.conn, app, [0.1, 0.2, 0.3], [[1.0, 2.0, 3.0], [-1.0, 0.0, 4.0]], expected)
    assert_raising_func_answers_default(
        cluster.conn, app, [1e7, 0.0, 0.0], "inputs above 1e6 are refused by this model"
    )
    assert predict(cluster.conn, app, {"input": [0.1, 0.2, 0.3]})["default"] is False


def test_caffe2_backend_is_refused_naming_the_replacement(cluster: Cluster) -> None:
    from clipper_admin.deployers import onnx as onnx_deployer

    with pytest.raises(ClipperException, match="onnx_backend='onnxruntime'"):
        onnx_deployer.deploy_pytorch_model(
            cluster.conn, unique("onnx-c2"), 1, "floats", None, predict_with_session, None,
            onnx_backend="caffe2",
        )


def test_corrupt_onnx_file_is_refused_naming_it(cluster: Cluster, tmp_path: Path) -> None:
    model_dir = model_dir_without(tmp_path, {
        "func.pkl": cloudpickle.dumps(predict_with_session), "model.onnx": b"\x00not onnx",
    })
    name = unique("onnx-bad")
    with pytest.raises(ClipperException, match=r"model\.onnx cannot be loaded"):
        cluster.conn.build_and_deploy_model(name, 1, "floats", model_dir, IMAGE)
    assert "ERROR: cannot load the model from" in cluster.replica_log(name)
