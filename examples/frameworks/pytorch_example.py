"""PyTorch: train a two-layer net on a toy regression, deploy it with deployers.pytorch, query.

    python examples/frameworks/pytorch_example.py     # needs `pip install .[pytorch]`
"""

from __future__ import annotations

import numpy as np
import torch
from _common import run_example

from clipper_admin.deployers import pytorch as pytorch_deployer


def predict(model, inputs):
    with torch.no_grad():
        return [str(float(y)) for y in model(torch.from_numpy(np.stack(inputs).astype("float32")))[:, 0]]


def main() -> None:
    torch.manual_seed(0)
    x = torch.rand(256, 4)
    y = (x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])) + 0.1
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(300):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(net(x), y)
        loss.backward()
        optimizer.step()

    def expected(features):
        with torch.no_grad():
            return float(net(torch.tensor([features]))[0, 0])

    run_example(
        "pytorch-example",
        lambda conn: pytorch_deployer.create_endpoint(conn, "pytorch-example", "floats", predict, net),
        [0.1, 0.2, 0.3, 0.4], [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]], expected,
    )


if __name__ == "__main__":
    main()
