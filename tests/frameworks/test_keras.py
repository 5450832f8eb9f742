"""deployers.keras end to end: a Keras 3 dense model served by containers.python.keras_container
through LocalContainerManager answers like the model here."""

from __future__ import annotations

import re
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

IMAGE = f"{__registry__}/python311-keras-container:{__version__}"


def dense_model():  # type: ignore[no-untyped-def]
    import keras

    keras.utils.set_random_seed(2)
    layers = keras.layers
    return keras.Sequential([keras.Input((4,)), layers.Dense(5, activation="relu"), layers.Dense(1)])


def predict_with_keras(model, inputs):  # type: ignore[no-untyped-def]
    import numpy as np

    batch = np.stack(inputs).astype("float32")
    if (batch == 13).any():
        raise ValueError("13 is an unlucky input")
    return [str(float(y)) for y in model.predict(batch, verbose=0)[:, 0]]


def expected_of(model):  # type: ignore[no-untyped-def]
    import numpy as np

    def expected(x: list[float]) -> float:
        return float(model.predict(np.array([x], dtype="float32"), verbose=0)[0, 0])

    return expected


def test_keras_model_answers_like_in_process_and_survives_a_raising_func(cluster: Cluster) -> None:
    from clipper_admin.deployers import keras as keras_deployer

    model = dense_model()
    app = unique("keras")
    keras_deployer.create_endpoint(cluster.conn, app, "floats", predict_with_keras, model)
    batch = [[1.0, 2.0, 3.0, 4.0], [-1.0, 0.5, 0.0, 2.0]]
    assert_answers_match(cluster.conn, app, [0.5, 0.5, 1.0, -1.0], batch, expected_of(model))
    assert_raising_func_answers_default(cluster.conn, app, [13.0, 0.0, 0.0, 0.0], "13 is an unlucky input")
    assert predict(cluster.conn, app, {"input": [0.5, 0.5, 1.0, -1.0]})["default"] is False


def test_saved_h5_file_answers_like_in_process(cluster: Cluster, tmp_path: Path) -> None:
    from clipper_admin.deployers import keras as keras_deployer

    model = dense_model()
    path = tmp_path / "model.h5"
    model.save(path)
    app = unique("keras-h5")
    keras_deployer.create_endpoint(cluster.conn, app, "floats", predict_with_keras, str(path))
    batch = [[2.0, 0.0, 2.0, 0.0], [0.0, 1.0, 0.0, 1.0]]
    assert_answers_match(cluster.conn, app, [1.0, 1.0, 1.0, 1.0], batch, expected_of(model))


def test_bad_argument_gets_the_original_text(cluster: Cluster) -> None:
    from clipper_admin.deployers import keras as keras_deployer

    text = "should be wither a Keras Model object or a saved Model ('.h5')"
    with pytest.raises(ClipperException, match=re.escape(text)):
        keras_deployer.deploy_keras_model(
            cluster.conn, unique("keras-bad"), 1, "floats", predict_with_keras, "/no/such/model.h5"
        )


def test_missing_model_file_is_refused_naming_it(cluster: Cluster, tmp_path: Path) -> None:
    model_dir = model_dir_without(tmp_path, {"func.pkl": cloudpickle.dumps(predict_with_keras)})
    name = unique("keras-missing")
    with pytest.raises(ClipperException, match=r"keras_model\.keras is missing"):
        cluster.conn.build_and_deploy_model(name, 1, "floats", model_dir, IMAGE)
    assert "ERROR: cannot load the model from" in cluster.replica_log(name)
