"""MXNet: train a small Module, deploy it with deployers.mxnet, query. MXNet 1.9.1 needs
numpy < 1.24: run this in an environment of its own (`make test-frameworks` makes .venv-mxnet).

    .venv-mxnet/bin/python examples/frameworks/mxnet_example.py   # `pip install .[mxnet]`
"""

from __future__ import annotations

from collections import namedtuple

import mxnet as mx
import numpy as np
from _common import run_example

from clipper_admin.deployers import mxnet as mxnet_deployer

Batch = namedtuple("Batch", ["data"])


def predict(module, inputs):
    module.forward(Batch([mx.nd.array(np.stack(inputs).astype("float32"))]), is_train=False)
    return [str(float(y)) for y in module.get_outputs()[0].asnumpy()[:, 0]]


def main() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((256, 4)).astype("float32")
    y = (x @ np.array([1.0, -2.0, 0.5, 3.0], dtype="float32") + 0.1).reshape(-1, 1)
    data = mx.sym.Variable("data")
    out = mx.sym.LinearRegressionOutput(
        mx.sym.FullyConnected(mx.sym.Activation(mx.sym.FullyConnected(data, num_hidden=16), act_type="relu"),
                              num_hidden=1),
        name="lro",
    )
    module = mx.mod.Module(out, label_names=["lro_label"])
    train = mx.io.NDArrayIter(x, y, batch_size=32, label_name="lro_label")
    module.fit(train, num_epoch=20, optimizer="adam", optimizer_params={"learning_rate": 0.01})
    # Serve the network without its loss head's label.
    serving = mx.mod.Module(out.get_children()[0], label_names=None)
    serving.bind(data_shapes=[("data", (1, 4))], for_training=False)
    serving.set_params(*module.get_params())
    run_example(
        "mxnet-example",
        lambda conn: mxnet_deployer.create_endpoint(
            conn, "mxnet-example", "floats", predict, serving, [("data", (1, 4))]
        ),
        [0.1, 0.2, 0.3, 0.4], [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]],
        lambda f: float(predict(serving, [np.array(f, dtype="float32")])[0]),
    )


if __name__ == "__main__":
    main()
