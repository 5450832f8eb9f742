"""deployers.tensorflow end to end: a tf.Module and a SavedModel directory served by
containers.python.tf_container through LocalContainerManager answer like the model here."""

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

IMAGE = f"{__registry__}/python311-tensorflow-container:{__version__}"


def affine_module():  # type: ignore[no-untyped-def]
    import tensorflow as tf

    class Affine(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = tf.Variable([[0.5], [-1.5], [2.0]], dtype=tf.float64)
            self.b = tf.Variable([0.25], dtype=tf.float64)

        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float64)])
        def __call__(self, x):  # type: ignore[no-untyped-def]
            return tf.nn.relu(tf.matmul(x, self.w) + self.b)

    return Affine()


def predict_with_loaded(model, inputs):  # type: ignore[no-untyped-def]
    import numpy as np

    batch = np.stack(inputs).astype("float64")
    if (batch > 1e6).any():
        raise ValueError("inputs above 1e6 are refused by this model")
    return [str(float(y)) for y in model(batch).numpy()[:, 0]]


def expected_of(module):  # type: ignore[no-untyped-def]
    def expected(x: list[float]) -> float:
        return float(module([x]).numpy()[0, 0])

    return expected


def test_tf_module_answers_like_in_process_and_survives_a_raising_func(cluster: Cluster) -> None:
    from clipper_admin.deployers import tensorflow as tf_deployer

    module = affine_module()
    app = unique("tf")
    tf_deployer.create_endpoint(cluster.conn, app, "doubles", predict_with_loaded, module)
    batch = [[1.0, 0.0, 1.0], [0.0, -2.0, 3.0], [5.0, 5.0, 5.0]]
    assert_answers_match(cluster.conn, app, [1.0, 2.0, 3.0], batch, expected_of(module))
    assert_raising_func_answers_default(cluster.conn, app, [1e7, 0.0, 0.0], "inputs above 1e6 are refused")
    assert predict(cluster.conn, app, {"input": [1.0, 2.0, 3.0]})["default"] is False


def test_saved_model_directory_answers_like_in_process(cluster: Cluster, tmp_path: Path) -> None:
    import tensorflow as tf

    from clipper_admin.deployers import tensorflow as tf_deployer

    module = affine_module()
    saved = tmp_path / "saved"
    tf.saved_model.save(module, str(saved))
    app = unique("tf-dir")
    tf_deployer.create_endpoint(cluster.conn, app, "doubles", predict_with_loaded, str(saved))
    batch = [[0.5, 0.5, 0.5], [1.0, -1.0, 2.0]]
    assert_answers_match(cluster.conn, app, [3.0, 2.0, 1.0], batch, expected_of(module))


def test_paths_that_are_no_model_are_refused_with_the_original_texts(
    cluster: Cluster, tmp_path: Path
) -> None:
    from clipper_admin.deployers import tensorflow as tf_deployer

    (tmp_path / "empty").mkdir()
    with pytest.raises(ClipperException, match=r"not found or some files are missing $"):
        tf_deployer.deploy_tensorflow_model(
            cluster.conn, unique("tf-empty"), 1, "doubles", predict_with_loaded, str(tmp_path / "empty")
        )
    (tmp_path / "model.txt").write_text("x")
    with pytest.raises(ClipperException, match=r"^Frozen Tensorflow Model: .*model\.txt not found $"):
        tf_deployer.deploy_tensorflow_model(
            cluster.conn, unique("tf-file"), 1, "doubles", predict_with_loaded, str(tmp_path / "model.txt")
        )


def test_corrupt_saved_model_is_refused_naming_it(cluster: Cluster, tmp_path: Path) -> None:
    model_dir = model_dir_without(tmp_path, {
        "func.pkl": cloudpickle.dumps(predict_with_loaded),
        "tfmodel/saved_model.pb": b"garbage, not a SavedModel",
    })
    name = unique("tf-bad")
    with pytest.raises(ClipperException, match=r"saved_model\.pb cannot be loaded"):
        cluster.conn.build_and_deploy_model(name, 1, "doubles", model_dir, IMAGE)
    assert "ERROR: cannot load the model from" in cluster.replica_log(name)
