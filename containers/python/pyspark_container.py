"""PySpark container: serves ``func(spark, model, inputs)`` saved by ``deployers.pyspark``.

Model directory: ``func.pkl``, ``metadata.json`` (``{"model_class": "pyspark.ml...."}``) and
``pyspark_model_data/``; ``pyspark.ml`` classes load with ``Class.load(path)``, ``pyspark.mllib``
classes with ``Class.load(sparkContext, path)``. The SparkSession is local, named
``clipper-pyspark``, without its web UI, and bound to loopback.
Run ``python -m containers.python.pyspark_container``.
"""

from __future__ import annotations

import importlib
import json
import os
from typing import Any, Final

from containers.python.inputs import ModelInputs
from containers.python.model_loading import (
    FunctionModelContainer,
    ModelFileError,
    load_model_file,
    run_model_container,
)

__all__ = ["METADATA_FILE", "MODEL_DATA_DIR", "PySparkContainer", "local_spark_session", "main"]

METADATA_FILE: Final = "metadata.json"
MODEL_DATA_DIR: Final = "pyspark_model_data"
_LOOPBACK: Final = "127.0.0.1"


def local_spark_session() -> Any:
    """A local SparkSession for serving: one core, no UI, driver bound to loopback."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("SPARK_LOCAL_IP", _LOOPBACK)
    return (
        SparkSession.builder.appName("clipper-pyspark")
        .master("local[1]")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", _LOOPBACK)
        .config("spark.driver.bindAddress", _LOOPBACK)
        .getOrCreate()
    )


def _model_class(path: str) -> type:
    with open(path, encoding="utf-8") as file:
        metadata = json.load(file)
    dotted = metadata.get("model_class") if isinstance(metadata, dict) else None
    if not dotted:
        raise ModelFileError(f"{path} has no model_class")
    module_name, _, class_name = str(dotted).rpartition(".")
    return getattr(importlib.import_module(module_name), class_name)  # type: ignore[no-any-return]


class PySparkContainer(FunctionModelContainer):
    def __init__(self, path: str, input_type: str) -> None:
        import pyspark  # noqa: F401  (a missing package is an ImportError, exit status 3)

        super().__init__(path, input_type)
        model_class = load_model_file(path, METADATA_FILE, _model_class)
        self.spark = local_spark_session()
        if model_class.__module__.startswith("pyspark.mllib"):
            def load(data: str) -> Any:
                return model_class.load(self.spark.sparkContext, data)  # type: ignore[attr-defined]
        else:
            def load(data: str) -> Any:
                return model_class.load(data)  # type: ignore[attr-defined]
        self.model = load_model_file(path, MODEL_DATA_DIR, load)

    def call(self, inputs: ModelInputs) -> object:
        return self.predict_func(self.spark, self.model, inputs)


def main() -> None:
    run_model_container(PySparkContainer, "Starting PySpark container")


if __name__ == "__main__":
    main()
