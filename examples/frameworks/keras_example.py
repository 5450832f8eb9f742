"""Keras 3: train a small dense model, deploy it with deployers.keras, query.

    python examples/frameworks/keras_example.py       # needs `pip install .[keras]`
"""

from __future__ import annotations

import keras
import numpy as np
from _common import run_example

from clipper_admin.deployers import keras as keras_deployer


def predict(model, inputs):
    return [str(float(y)) for y in model.predict(np.stack(inputs).astype("float32"), verbose=0)[:, 0]]


def main() -> None:
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).random((256, 4)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5], [3.0]], dtype="float32") + 0.1
    layers = keras.layers
    model = keras.Sequential([keras.Input((4,)), layers.Dense(16, activation="relu"), layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, epochs=20, verbose=0)

    run_example(
        "keras-example",
        lambda conn: keras_deployer.create_endpoint(conn, "keras-example", "floats", predict, model),
        [0.1, 0.2, 0.3, 0.4], [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]],
        lambda f: float(model.predict(np.array([f], dtype="float32"), verbose=0)[0, 0]),
    )


if __name__ == "__main__":
    main()
