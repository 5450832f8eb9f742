"""Deploy a PyTorch model: ``func(model, inputs)`` served by ``python311-pytorch-container``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from clipper_admin.deployers.deployer_utils import (
    create_endpoint_with,
    deploy_with_model_files,
    serialize_object,
)
from clipper_admin.exceptions import ClipperException

if TYPE_CHECKING:
    from clipper_admin.clipper_admin import ClipperConnection

__all__ = ["create_endpoint", "deploy_pytorch_model"]

logger = logging.getLogger(__name__)

PYTORCH_WEIGHTS_RELATIVE_PATH: Final = "pytorch_weights.pkl"
PYTORCH_MODEL_RELATIVE_PATH: Final = "pytorch_model.pkl"


def create_endpoint(
    clipper_conn: ClipperConnection,
    name: str,
    input_type: str,
    func: Callable[[Any, list[Any]], list[str]],
    pytorch_model: Any,
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
    """Register app ``name``, deploy ``pytorch_model`` with ``func`` as model ``name``, link them.

    Raises:
        ClipperException: see ``deploy_pytorch_model``; or the app or link was refused.
    """
    create_endpoint_with(
        clipper_conn, name, input_type, default_output, slo_micros,
        lambda: deploy_pytorch_model(
            clipper_conn, name, version, input_type, func, pytorch_model, base_image, labels,
            registry, num_replicas, batch_size, pkgs_to_install,
        ),
    )


def deploy_pytorch_model(
    clipper_conn: ClipperConnection,
    name: str,
    version: Any,
    input_type: str,
    func: Callable[[Any, list[Any]], list[str]],
    pytorch_model: Any,
    base_image: str = "default",
    labels: list[str] | None = None,
    registry: str | None = None,
    num_replicas: int = 1,
    batch_size: int = -1,
    pkgs_to_install: list[str] | None = None,
) -> None:
    """Deploy a ``torch.nn.Module`` as model ``name:version``.

    Writes ``func.pkl``, ``pytorch_model.pkl`` (the module, cloudpickle) and
    ``pytorch_weights.pkl`` (``torch.save(pytorch_model.state_dict())``); the container loads the
    module, restores the weights and calls ``func(model, inputs)``, which returns one str per input.

    Args:
        clipper_conn: a connected ClipperConnection.
        name, version, input_type, base_image, labels, registry, num_replicas, batch_size,
            pkgs_to_install: as in ``deployers.python.deploy_python_closure``; "default" picks
            ``<registry>/python<MAJOR><MINOR>-pytorch-container:<version>``.
        func: the predict function.
        pytorch_model: the module to serve.

    Raises:
        ClipperException: ``Error saving torch model: <cause>`` for any failure, saving or
            deploying (as the original).
    """

    def save_model(directory: Path) -> None:
        import torch

        torch.save(pytorch_model.state_dict(), directory / PYTORCH_WEIGHTS_RELATIVE_PATH)
        (directory / PYTORCH_MODEL_RELATIVE_PATH).write_bytes(serialize_object(pytorch_model))

    try:
        deploy_with_model_files(
            clipper_conn, "pytorch", name, version, input_type, func, save_model, base_image,
            labels, registry, num_replicas, batch_size, pkgs_to_install,
        )
        logger.info("Torch model saved")
    except Exception as e:
        raise ClipperException(f"Error saving torch model: {e}") from e
