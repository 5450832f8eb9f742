"""Deploy a TensorFlow model: ``func(model_or_session, inputs)`` served by
``python311-tensorflow-container``.

TF 2 has no ``tf.Session`` to save: pass a SavedModel directory, a frozen graph (``.pb``), a
checkpoint directory (``.meta``, ``.index``, ``checkpoint``, ``.data*``), or a ``tf.Module`` /
Keras model object, which is written as a SavedModel. The container loads a SavedModel with
``tf.saved_model.load`` and hands the function the loaded object; a frozen graph or checkpoint
arrives as a ``tf.compat.v1.Session``, as in the original.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from clipper_admin.deployers.deployer_utils import create_endpoint_with, deploy_with_model_files
from clipper_admin.exceptions import ClipperException

if TYPE_CHECKING:
    from clipper_admin.clipper_admin import ClipperConnection

__all__ = ["create_endpoint", "deploy_tensorflow_model"]

logger = logging.getLogger(__name__)

TF_MODEL_DIR: Final = "tfmodel"


def create_endpoint(
    clipper_conn: ClipperConnection,
    name: str,
    input_type: str,
    func: Callable[[Any, list[Any]], list[str]],
    tf_sess_or_saved_model_path: Any,
    default_output: str = "None",
    version: Any = 1,
    slo_micros: int = 3000000,
    labels: list[str] | None = None,
    registry: str | None = None,
    base_image: str = "default",
    num_replicas: int = 1,
    batch_size: int = -1,
    pkgs_to_install: list[str] | None = None,
) -> None:
    """Register app ``name``, deploy the model with ``func`` as model ``name``, link them.

    Raises:
        ClipperException: see ``deploy_tensorflow_model``; or the app or link was refused.
    """
    create_endpoint_with(
        clipper_conn, name, input_type, default_output, slo_micros,
        lambda: deploy_tensorflow_model(
            clipper_conn, name, version, input_type, func, tf_sess_or_saved_model_path,
            base_image, labels, registry, num_replicas, batch_size, pkgs_to_install,
        ),
    )


def deploy_tensorflow_model(
    clipper_conn: ClipperConnection,
    name: str,
    version: Any,
    input_type: str,
    func: Callable[[Any, list[Any]], list[str]],
    tf_sess_or_saved_model_path: Any,
    base_image: str = "default",
    labels: list[str] | None = None,
    registry: str | None = None,
    num_replicas: int = 1,
    batch_size: int = -1,
    pkgs_to_install: list[str] | None = None,
) -> None:
    """Deploy a TensorFlow model as model ``name:version``; files go to ``tfmodel/``.

    Args:
        tf_sess_or_saved_model_path: a SavedModel or checkpoint directory, a frozen ``.pb``
            file, or a ``tf.Module`` / Keras model (saved as a SavedModel).
        func: called as ``func(model_or_session, inputs)``; returns one str per input.
        The others: as in ``deployers.python.deploy_python_closure``; "default" picks
            ``<registry>/python<MAJOR><MINOR>-tensorflow-container:<version>``.

    Raises:
        ClipperException: ``Frozen Tensorflow Model: <p> not found or some files are missing ``
            (a directory that is neither), ``Frozen Tensorflow Model: <p> not found `` (a file
            that is not ``.pb``), a ``tf.compat.v1.Session`` (TF 2 cannot save one as a model
            to serve), or the deployment failed.
    """

    def save_model(directory: Path) -> None:
        _save_tf_model(tf_sess_or_saved_model_path, directory / TF_MODEL_DIR)

    deploy_with_model_files(
        clipper_conn, "tensorflow", name, version, input_type, func, save_model, base_image,
        labels, registry, num_replicas, batch_size, pkgs_to_install,
    )


def _is_checkpoint_dir(path: str) -> bool:
    return all(
        glob.glob(os.path.join(path, pattern)) for pattern in ("*.meta", "*.index", "checkpoint", "*.data*")
    )


def _save_tf_model(model: Any, target: Path) -> None:
    if isinstance(model, str | os.PathLike):
        path = os.fspath(model)
        try:
            if os.path.isdir(path):
                if glob.glob(os.path.join(path, "*.pb")) or _is_checkpoint_dir(path):
                    shutil.copytree(path, target)
                else:
                    raise ClipperException(
                        f"Frozen Tensorflow Model: {path} not found or some files are missing "
                    )
            elif os.path.isfile(path) and path.endswith(".pb"):
                target.mkdir()
                shutil.copyfile(path, target / os.path.basename(path))
            else:
                raise ClipperException(f"Frozen Tensorflow Model: {path} not found ")
        except OSError:
            logger.exception("Copying the TensorFlow model from %s failed", path)
            raise
        return
    import tensorflow as tf

    if isinstance(model, tf.compat.v1.Session):
        raise ClipperException(
            "TensorFlow 2 cannot save a tf.compat.v1.Session as a servable model; save it with "
            "tf.compat.v1.train.Saver (or as a SavedModel) and pass that path, or pass a "
            "tf.Module / Keras model"
        )
    export = getattr(model, "export", None)
    if callable(export) and _is_keras_model(model):
        export(str(target))  # Keras 3 writes a SavedModel with a "serve" endpoint
    elif isinstance(model, tf.Module):
        tf.saved_model.save(model, str(target))
    else:
        raise ClipperException(
            f"{model!r:.80} is neither a saved model path nor a tf.Module / Keras model"
        )
    logger.info("TensorFlow model saved to %s", target)


def _is_keras_model(model: Any) -> bool:
    try:
        import keras
    except ImportError:
        return False
    return isinstance(model, keras.Model)
