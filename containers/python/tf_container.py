"""TensorFlow container: serves ``func(model_or_session, inputs)`` saved by
``deployers.tensorflow``.

Model directory: ``func.pkl`` and ``tfmodel/``, one of
* a SavedModel (``tfmodel/saved_model.pb``): loaded with ``tf.saved_model.load``, and the
  function gets the loaded object (TF 2 has no sessions; call its signatures or ``__call__``);
* a frozen graph (another ``tfmodel/*.pb``): imported into a new graph, and the function gets a
  ``tf.compat.v1.Session`` on it, as the original did;
* a checkpoint (``tfmodel/*.meta`` and its data): the first ``*.meta`` is imported and the
  checkpoint restored into a ``tf.compat.v1.Session``.
Run ``python -m containers.python.tf_container``.
"""

from __future__ import annotations

import glob
import os
from typing import Any, Final

from containers.python.inputs import ModelInputs
from containers.python.model_loading import (
    FunctionModelContainer,
    ModelFileError,
    load_model_file,
    run_model_container,
)

__all__ = ["MODEL_DIR", "TfContainer", "load_tf_model", "main"]

MODEL_DIR: Final = "tfmodel"
SAVED_MODEL_FILE: Final = "saved_model.pb"


def _frozen_graph_session(path: str) -> Any:
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    with open(path, "rb") as file:
        graph_def.ParseFromString(file.read())
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    return tf.compat.v1.Session(graph=graph)


def _checkpoint_session(meta_path: str) -> Any:
    import tensorflow as tf

    graph = tf.Graph()
    session = tf.compat.v1.Session(graph=graph)
    with graph.as_default():
        saver = tf.compat.v1.train.import_meta_graph(meta_path, clear_devices=True)
        saver.restore(session, meta_path[: -len(".meta")])
    return session


def load_tf_model(path: str) -> Any:
    """The object handed to the function for the model directory ``path``."""
    import tensorflow as tf

    model_dir = os.path.join(path, MODEL_DIR)
    if not os.path.isdir(model_dir):
        raise ModelFileError(f"model directory {model_dir} is missing")
    if os.path.exists(os.path.join(model_dir, SAVED_MODEL_FILE)):
        return load_model_file(model_dir, SAVED_MODEL_FILE, lambda _: tf.saved_model.load(model_dir))
    frozen = sorted(glob.glob(os.path.join(model_dir, "*.pb")))
    if frozen:
        return load_model_file(model_dir, os.path.basename(frozen[0]), _frozen_graph_session)
    metas = sorted(glob.glob(os.path.join(model_dir, "*.meta")))
    if metas:
        return load_model_file(model_dir, os.path.basename(metas[0]), _checkpoint_session)
    raise ModelFileError(
        f"model directory {model_dir} holds no SavedModel ({SAVED_MODEL_FILE}), frozen graph "
        "(*.pb) or checkpoint (*.meta)"
    )


class TfContainer(FunctionModelContainer):
    def __init__(self, path: str, input_type: str) -> None:
        import tensorflow  # noqa: F401  (a missing package is an ImportError, exit status 3)

        super().__init__(path, input_type)
        self.model = load_tf_model(path)

    def call(self, inputs: ModelInputs) -> object:
        return self.predict_func(self.model, inputs)


def main() -> None:
    run_model_container(TfContainer, "Starting TensorFlow container")


if __name__ == "__main__":
    main()
