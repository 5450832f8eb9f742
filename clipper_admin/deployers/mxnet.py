"""Deploy an MXNet module: ``func(module, inputs)`` served by ``python311-mxnet-container``.

MXNet is retired upstream; its last release (1.9.1) needs numpy < 1.24, so deploy from (and
serve in) an environment of its own: ``pip install .[mxnet]`` in a separate virtual
environment, or the image ``python311-mxnet-container`` (see the README).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from clipper_admin.deployers.deployer_utils import create_endpoint_with, deploy_with_model_files

if TYPE_CHECKING:
    from clipper_admin.clipper_admin import ClipperConnection

__all__ = ["create_endpoint", "deploy_mxnet_model"]

logger = logging.getLogger(__name__)

CHECKPOINT_PREFIX: Final = "mxnet_model"
METADATA_FILE: Final = "mxnet_model_metadata.json"


def create_endpoint(
    clipper_conn: ClipperConnection,
    name: str,
    input_type: str,
    func: Callable[[Any, list[Any]], list[str]],
    mxnet_model: Any,
    mxnet_data_shapes: Any,
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
    """Register app ``name``, deploy the MXNet module with ``func`` as model ``name``, link them.

    Raises:
        ClipperException: see ``deploy_mxnet_model``; or the app or link was refused.
    """
    create_endpoint_with(
        clipper_conn, name, input_type, default_output, slo_micros,
        lambda: deploy_mxnet_model(
            clipper_conn, name, version, input_type, func, mxnet_model, mxnet_data_shapes,
            base_image, labels, registry, num_replicas, batch_size, pkgs_to_install,
        ),
    )


def deploy_mxnet_model(
    clipper_conn: ClipperConnection,
    name: str,
    version: Any,
    input_type: str,
    func: Callable[[Any, list[Any]], list[str]],
    mxnet_model: Any,
    mxnet_data_shapes: Any,
    base_image: str = "default",
    labels: list[str] | None = None,
    registry: str | None = None,
    num_replicas: int = 1,
    batch_size: int = -1,
    pkgs_to_install: list[str] | None = None,
) -> None:
    """Deploy a bound ``mx.mod.Module`` as model ``name:version``.

    Writes ``func.pkl``, the checkpoint ``mxnet_model`` (epoch 0) and
    ``mxnet_model_metadata.json`` ``{"data_shapes": mxnet_data_shapes}``; the container binds
    the symbol to those shapes and calls ``func(module, inputs)``.

    Args:
        mxnet_model: an ``mx.mod.Module`` with its parameters set.
        mxnet_data_shapes: the ``data_shapes`` to bind, e.g. ``[("data", (1, 4))]``.
        The others: as in ``deployers.python.deploy_python_closure``; "default" picks
            ``<registry>/python<MAJOR><MINOR>-mxnet-container:<version>``.

    Raises:
        ClipperException: the deployment failed. Errors of the checkpoint save are logged and
            re-raised.
    """

    def save_model(directory: Path) -> None:
        try:
            mxnet_model.save_checkpoint(prefix=str(directory / CHECKPOINT_PREFIX), epoch=0)
        except Exception:
            logger.exception("Error saving MXNet model")
            raise
        (directory / METADATA_FILE).write_text(
            json.dumps({"data_shapes": mxnet_data_shapes}), encoding="utf-8"
        )
        logger.info("MXNet model saved")

    deploy_with_model_files(
        clipper_conn, "mxnet", name, version, input_type, func, save_model, base_image, labels,
        registry, num_replicas, batch_size, pkgs_to_install,
    )
