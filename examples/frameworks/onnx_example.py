"""ONNX: export a torch net to ONNX and serve it with ONNX Runtime (deployers.onnx), query.

    python examples/frameworks/onnx_example.py        # needs `pip install .[onnx]`
"""

from __future__ import annotations

import numpy as np
import torch
from _common import run_example

from clipper_admin.deployers import onnx as onnx_deployer


def predict(session, inputs):
    (out,) = session.run(None, {session.get_inputs()[0].name: np.stack(inputs).astype("float32")})
    return [str(float(y)) for y in out[:, 0]]


def main() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1)).eval()

    def expected(features):
        with torch.no_grad():
            return float(net(torch.tensor([features]))[0, 0])

    run_example(
        "onnx-example",
        lambda conn: onnx_deployer.create_pytorch_endpoint(
            conn, "onnx-example", "floats", torch.zeros(2, 4), predict, net
        ),
        [0.1, 0.2, 0.3, 0.4], [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]], expected,
    )


if __name__ == "__main__":
    main()
