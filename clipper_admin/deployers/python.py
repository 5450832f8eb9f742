"""Deploy a plain Python function ("closure") as a Clipper model."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from clipper_admin.deployers.deployer_utils import (
    check_closure_image_python,
    default_closure_image,
    save_python_function,
)

if TYPE_CHECKING:
    from clipper_admin.clipper_admin import ClipperConnection

__all__ = ["create_endpoint", "deploy_python_closure"]

logger = logging.getLogger(__name__)


def create_endpoint(
    clipper_conn: ClipperConnection,
    name: str,
    input_type: str,
    func: Callable[[list[Any]], list[str]],
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
    """Register app ``name``, deploy ``func`` as model ``name`` and link the two.

    Args:
        clipper_conn: a connected ClipperConnection.
        name: the application and model name (a DNS-1123 subdomain).
        input_type: one of "integers", "floats", "doubles", "bytes", "strings".
        func: takes a list of inputs, returns a list with one str per input.
        default_output: the app's answer when no prediction arrives within ``slo_micros``.
        version, labels, registry, base_image, num_replicas, batch_size, pkgs_to_install: as in
            ``deploy_python_closure``.

    Raises:
        ClipperException: see ``deploy_python_closure``; or the app or link was refused.
    """
    clipper_conn.register_application(name, input_type, default_output, slo_micros)
    deploy_python_closure(
        clipper_conn, name, version, input_type, func, base_image, labels, registry,
        num_replicas, batch_size, pkgs_to_install,
    )
    clipper_conn.link_model_to_app(name, name)


def deploy_python_closure(
    clipper_conn: ClipperConnection,
    name: str,
    version: Any,
    input_type: str,
    func: Callable[[list[Any]], list[str]],
    base_image: str = "default",
    labels: list[str] | None = None,
    registry: str | None = None,
    num_replicas: int = 1,
    batch_size: int = -1,
    pkgs_to_install: list[str] | None = None,
) -> None:
    """Serialise ``func`` with cloudpickle (``func.pkl``) and deploy it as model ``name:version``.

    The closure container calls ``func(inputs)`` with a list of inputs (numpy arrays for
    numeric input types, ``str`` for strings) and expects a list of one str per input.

    Args:
        clipper_conn: a connected ClipperConnection.
        name, version: the model's name and version (DNS-1123 subdomains; version is str()-ed).
        input_type: one of "integers", "floats", "doubles", "bytes", "strings".
        func: the predict function.
        base_image: "default" picks ``<registry>/python<MAJOR><MINOR>-closure-container:<version>``
            for the running interpreter.
        labels: model labels.
        registry: container registry the built image is pushed to (Docker only).
        num_replicas: replicas to start.
        batch_size: fixed batch size, or -1 for adaptive batching.
        pkgs_to_install: pip requirements installed with the model (a per-model virtual
            environment locally, a RUN pip install line in Docker).

    Raises:
        ClipperException: ``func`` cannot be pickled; ``base_image`` runs another Python minor
            version; invalid name or version; the cluster refused the model.
    """
    if base_image == "default":
        base_image = default_closure_image()
    check_closure_image_python(base_image)
    serialization_dir = save_python_function(name, func)
    try:
        clipper_conn.build_and_deploy_model(
            name, version, input_type, serialization_dir, base_image, labels, registry,
            num_replicas, batch_size, pkgs_to_install,
        )
    finally:
        shutil.rmtree(serialization_dir, ignore_errors=True)
