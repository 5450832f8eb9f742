"""Deploy a Keras 3 model: ``func(model, inputs)`` served by ``python311-keras-container``.

A model object is saved in Keras 3's format (``keras_model.keras``); a saved model file is
copied as ``keras_model.h5`` (legacy HDF5) or ``keras_model.keras``.
"""

from __future__ import annotations

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

__all__ = ["create_endpoint", "deploy_keras_model"]

logger = logging.getLogger(__name__)

KERAS_MODEL_STEM: Final = "keras_model"


def create_endpoint(
    clipper_conn: ClipperConnection,
    name: str,
    input_type: str,
    func: Callable[[Any, list[Any]], list[str]],
    model_path_or_object: Any,
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
    """Register app ``name``, deploy the Keras model with ``func`` as model ``name``, link them.

    Raises:
        ClipperException: see ``deploy_keras_model``; or the app or link was refused.
    """
    create_endpoint_with(
        clipper_conn, name, input_type, default_output, slo_micros,
        lambda: deploy_keras_model(
            clipper_conn, name, version, input_type, func, model_path_or_object, base_image,
            labels, registry, num_replicas, batch_size, pkgs_to_install,
        ),
    )


def deploy_keras_model(
    clipper_conn: ClipperConnection,
    name: str,
    version: Any,
    input_type: str,
    func: Callable[[Any, list[Any]], list[str]],
    model_path_or_object: Any,
    base_image: str = "default",
    labels: list[str] | None = None,
    registry: str | None = None,
    num_replicas: int = 1,
    batch_size: int = -1,
    pkgs_to_install: list[str] | None = None,
) -> None:
    """Deploy a ``keras.Model`` (or a saved ``.keras`` / ``.h5`` file) as model ``name:version``.

    Args:
        model_path_or_object: a ``keras.Model`` or the path of a model saved by Keras.
        func: called as ``func(model, inputs)``; returns one str per input.
        The others: as in ``deployers.python.deploy_python_closure``; "default" picks
            ``<registry>/python<MAJOR><MINOR>-keras-container:<version>``.

    Raises:
        ClipperException: ``<x> should be wither a Keras Model object or a saved Model ('.h5')``
            (the original's text) for anything else; or the deployment failed.
    """

    def save_model(directory: Path) -> None:
        _save_keras_model(model_path_or_object, directory)

    deploy_with_model_files(
        clipper_conn, "keras", name, version, input_type, func, save_model, base_image, labels,
        registry, num_replicas, batch_size, pkgs_to_install,
    )


def _save_keras_model(model: Any, directory: Path) -> None:
    import keras

    if isinstance(model, keras.Model):
        model.save(directory / f"{KERAS_MODEL_STEM}.keras")
    elif isinstance(model, str | os.PathLike) and os.path.isfile(model):
        suffix = ".keras" if os.fspath(model).endswith(".keras") else ".h5"
        shutil.copyfile(model, directory / f"{KERAS_MODEL_STEM}{suffix}")
    else:
        raise ClipperException(
            f"{model} should be wither a Keras Model object or a saved Model ('.h5')"
        )
    logger.info("Keras model saved")
