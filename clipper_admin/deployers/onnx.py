"""Deploy a PyTorch model exported to ONNX: ``func(session, inputs)`` served by
``python311-onnx-container`` with ``onnxruntime``.

The original served ONNX with Caffe2, which is gone: ``onnx_backend`` defaults to
``"onnxruntime"``, and ``"caffe2"`` is refused with a message naming the replacement.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from clipper_admin.deployers.deployer_utils import create_endpoint_with, deploy_with_model_files
from clipper_admin.exceptions import ClipperException

if TYPE_CHECKING:
    from clipper_admin.clipper_admin import ClipperConnection

__all__ = ["create_pytorch_endpoint", "deploy_pytorch_model"]

logger = logging.getLogger(__name__)

ONNX_MODEL_FILE: Final = "model.onnx"
ONNX_BACKEND: Final = "onnxruntime"


def create_pytorch_endpoint(
    clipper_conn: ClipperConnection,
    name: str,
    input_type: str,
    inputs: Any,
    func: Callable[[Any, list[Any]], list[str]],
    pytorch_model: Any,
    default_output: str = "None",
    version: Any = 1,
    slo_micros: int = 3000000,
    labels: list[str] | None = None,
    registry: str | None = None,
    base_image: str | None = None,
    num_replicas: int = 1,
    onnx_backend: str = ONNX_BACKEND,
    batch_size: int = -1,
    pkgs_to_install: list[str] | None = None,
) -> None:
    """Register app ``name``, deploy the exported model with ``func`` as model ``name``, link them.

    Raises:
        ClipperException: see ``deploy_pytorch_model``; or the app or link was refused.
    """
    _check_backend(onnx_backend)
    create_endpoint_with(
        clipper_conn, name, input_type, default_output, slo_micros,
        lambda: deploy_pytorch_model(
            clipper_conn, name, version, input_type, inputs, func, pytorch_model, base_image,
            labels, registry, num_replicas, onnx_backend, batch_size, pkgs_to_install,
        ),
    )


def deploy_pytorch_model(
    clipper_conn: ClipperConnection,
    name: str,
    version: Any,
    input_type: str,
    inputs: Any,
    func: Callable[[Any, list[Any]], list[str]],
    pytorch_model: Any,
    base_image: str | None = None,
    labels: list[str] | None = None,
    registry: str | None = None,
    num_replicas: int = 1,
    onnx_backend: str = ONNX_BACKEND,
    batch_size: int = -1,
    pkgs_to_install: list[str] | None = None,
) -> None:
    """Export ``pytorch_model`` to ONNX (``model.onnx``, traced with the sample ``inputs``) and
    deploy it as model ``name:version``; the container calls ``func(session, inputs)`` with an
    ``onnxruntime.InferenceSession``.

    Args:
        inputs: sample input tensor (or tuple of tensors) for ``torch.onnx.export``; the first
            dimension of each is exported as the (dynamic) batch dimension.
        base_image: None or "default" picks
            ``<registry>/python<MAJOR><MINOR>-onnx-container:<version>``.
        onnx_backend: "onnxruntime" (the only backend; "caffe2" is refused).
        The others: as in ``deployers.python.deploy_python_closure``.

    Raises:
        ClipperException: ``onnx_backend`` is not onnxruntime; the export failed (the original
            only logged it and deployed nothing usable); or the deployment failed.
    """
    _check_backend(onnx_backend)

    def save_model(directory: Path) -> None:
        import torch

        sample = inputs if isinstance(inputs, tuple) else (inputs,)
        # The first dimension of every input is the batch: Clipper batches queries adaptively,
        # so the exported graph must not fix it at the sample's size.
        batch = torch.export.Dim("batch")
        try:
            torch.onnx.export(
                pytorch_model, sample, str(directory / ONNX_MODEL_FILE), export_params=True,
                dynamic_shapes=tuple({0: batch} for _ in sample),
            )
        except Exception as e:
            logger.exception("Exporting the torch model to ONNX failed")
            raise ClipperException(f"Error exporting torch model to ONNX: {e}") from e
        logger.info("Torch model has been serialized to ONNX format")

    deploy_with_model_files(
        clipper_conn, "onnx", name, version, input_type, func, save_model, base_image, labels,
        registry, num_replicas, batch_size, pkgs_to_install,
    )


def _check_backend(onnx_backend: str) -> None:
    if onnx_backend == "caffe2":
        raise ClipperException(
            "onnx_backend='caffe2' is no longer available: Caffe2 was removed from PyTorch. "
            f"Use onnx_backend='{ONNX_BACKEND}' (the default), which serves model.onnx with "
            "ONNX Runtime in the python311-onnx-container image."
        )
    if onnx_backend != ONNX_BACKEND:
        raise ClipperException(
            f"Unsupported onnx_backend {onnx_backend!r}; the only backend is '{ONNX_BACKEND}'"
        )
