"""TensorFlow: a tf.Module saved as a SavedModel and served by deployers.tensorflow, query.

    python examples/frameworks/tensorflow_example.py  # needs `pip install .[tensorflow]`
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from _common import run_example

from clipper_admin.deployers import tensorflow as tf_deployer


class Linear(tf.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = tf.Variable(tf.zeros([4, 1], tf.float64))
        self.b = tf.Variable(tf.zeros([1], tf.float64))

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float64)])
    def __call__(self, x):
        return tf.matmul(x, self.w) + self.b


def predict(model, inputs):
    return [str(float(y)) for y in model(np.stack(inputs)).numpy()[:, 0]]


def main() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((256, 4))
    y = x @ np.array([[1.0], [-2.0], [0.5], [3.0]]) + 0.1
    model = Linear()
    optimizer = tf.keras.optimizers.SGD(0.1)
    for _ in range(200):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((model(x) - y) ** 2)
        variables = [model.w, model.b]
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))

    run_example(
        "tensorflow-example",
        lambda conn: tf_deployer.create_endpoint(conn, "tensorflow-example", "doubles", predict, model),
        [0.1, 0.2, 0.3, 0.4], [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]],
        lambda f: float(model(np.array([f])).numpy()[0, 0]),
    )


if __name__ == "__main__":
    main()
