"""Deploy a PySpark model: ``func(spark, model, inputs)`` served by
``python311-pyspark-container``. Both ``pyspark.ml`` models (saved with ``model.save(path)``)
and ``pyspark.mllib`` models (``model.save(sc, path)``) are supported."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from clipper_admin.deployers.deployer_utils import create_endpoint_with, deploy_with_model_files
from clipper_admin.exceptions import ClipperException

if TYPE_CHECKING:
    from clipper_admin.clipper_admin import ClipperConnection

__all__ = ["create_endpoint", "deploy_pyspark_model"]

logger = logging.getLogger(__name__)

MODEL_DATA_DIR: Final = "pyspark_model_data"
METADATA_FILE: Final = "metadata.json"
_CLASS_RE: Final = re.compile(r"pyspark[^']*")


def create_endpoint(
    clipper_conn: ClipperConnection,
    name: str,
    input_type: str,
    func: Callable[[Any, Any, list[Any]], list[str]],
    pyspark_model: Any,
    sc: Any,
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
    """Register app ``name``, deploy the PySpark model with ``func`` as model ``name``, link them.

    Raises:
        ClipperException: see ``deploy_pyspark_model``; or the app or link was refused.
    """
    create_endpoint_with(
        clipper_conn, name, input_type, default_output, slo_micros,
        lambda: deploy_pyspark_model(
            clipper_conn, name, version, input_type, func, pyspark_model, sc, base_image, labels,
            registry, num_replicas, batch_size, pkgs_to_install,
        ),
    )


def deploy_pyspark_model(
    clipper_conn: ClipperConnection,
    name: str,
    version: Any,
    input_type: str,
    func: Callable[[Any, Any, list[Any]], list[str]],
    pyspark_model: Any,
    sc: Any,
    base_image: str = "default",
    labels: list[str] | None = None,
    registry: str | None = None,
    num_replicas: int = 1,
    batch_size: int = -1,
    pkgs_to_install: list[str] | None = None,
) -> None:
    """Deploy a PySpark model as model ``name:version``.

    Writes ``func.pkl``, ``pyspark_model_data/`` (the model's own save) and ``metadata.json``
    ``{"model_class": "<dotted class>"}``; the container loads the class from a local
    SparkSession and calls ``func(spark, model, inputs)``.

    Args:
        pyspark_model: a ``pyspark.ml`` model (or ``PipelineModel``) or a ``pyspark.mllib`` model.
        sc: the SparkContext the model lives in (``pyspark.mllib`` saves need it).
        The others: as in ``deployers.python.deploy_python_closure``; "default" picks
            ``<registry>/python<MAJOR><MINOR>-pyspark-container:<version>``.

    Raises:
        ClipperException: the model is not a PySpark model; or the deployment failed. Errors of
            the model's own save are logged and re-raised.
    """

    def save_model(directory: Path) -> None:
        _save_pyspark_model(pyspark_model, sc, directory)

    deploy_with_model_files(
        clipper_conn, "pyspark", name, version, input_type, func, save_model, base_image, labels,
        registry, num_replicas, batch_size, pkgs_to_install,
    )


def _save_pyspark_model(model: Any, sc: Any, directory: Path) -> None:
    match = _CLASS_RE.search(str(type(model)))
    if match is None:
        raise ClipperException(f"{type(model)} is not a PySpark model class")
    model_class = match.group(0)
    from pyspark.ml import PipelineModel
    from pyspark.ml.base import Model

    path = str(directory / MODEL_DATA_DIR)
    try:
        if isinstance(model, PipelineModel | Model):
            model.save(path)
        else:
            model.save(sc, path)
    except Exception:
        logger.warning("Error saving spark model %s to %s", model_class, path, exc_info=True)
        raise
    (directory / METADATA_FILE).write_text(json.dumps({"model_class": model_class}), encoding="utf-8")
    logger.info("Spark model saved")
