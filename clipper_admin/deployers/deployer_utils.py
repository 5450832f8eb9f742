"""Helpers shared by the deployers: serialise a function, pick and check images (from the image
catalogue), and the common create_endpoint / deploy bodies of the framework deployers."""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import cloudpickle

from clipper_admin.exceptions import ClipperException
from clipper_admin.image_catalogue import entry_for_image, image_python_version, model_image_name
from clipper_admin.version import __registry__, __version__

if TYPE_CHECKING:
    from clipper_admin.clipper_admin import ClipperConnection

__all__ = [
    "FUNC_FILENAME",
    "check_closure_image_python",
    "closure_image_python_version",
    "create_endpoint_with",
    "default_closure_image",
    "deploy_with_model_files",
    "save_python_function",
    "serialize_object",
]

logger = logging.getLogger(__name__)

FUNC_FILENAME: Final = "func.pkl"


def serialize_object(obj: Any) -> bytes:
    """cloudpickle bytes of ``obj``; ClipperException saying why when it cannot be pickled."""
    try:
        return cloudpickle.dumps(obj)
    except Exception as exc:  # cloudpickle raises TypeError, PicklingError, RecursionError, ...
        raise ClipperException(
            f"Could not serialize {obj!r:.80} with cloudpickle: {type(exc).__name__}: {exc}. "
            "A deployed function must not capture unpicklable objects such as locks, sockets, "
            "open files, database connections or generators; create those inside the function."
        ) from exc


def save_python_function(name: str, func: Callable[..., Any]) -> str:
    """Pickle ``func`` into ``func.pkl`` in a new temporary directory and return the directory."""
    serialized = serialize_object(func)
    serialization_dir = tempfile.mkdtemp(suffix="clipper")
    logger.info("Saving function to %s", serialization_dir)
    (Path(serialization_dir) / FUNC_FILENAME).write_bytes(serialized)
    logger.info("Serialized and supplied predict function")
    return serialization_dir


def default_closure_image(key: str = "closure") -> str:
    """``<registry>/<image>:<version>`` of catalogue row ``key`` (default: the closure image)
    for this interpreter, e.g. ``clipper/python311-pytorch-container:0.1.0``."""
    return f"{__registry__}/{model_image_name(key)}:{__version__}"


def closure_image_python_version(image: str) -> tuple[int, int] | None:
    """(major, minor) a closure/framework image name promises, (2, 7) for the original's
    digit-less Python 2 names, or None for any other image name (custom images are trusted)."""
    return image_python_version(image)


def check_closure_image_python(image: str) -> None:
    """Refuse to ship a closure pickled here to an image of another Python minor version:
    cloudpickle output only loads reliably on the interpreter version that wrote it."""
    promised = closure_image_python_version(image)
    running = sys.version_info[:2]
    if promised is not None and promised != running:
        found = entry_for_image(image)
        key = found[0].key if found is not None else "closure"
        raise ClipperException(
            f"Cannot deploy a closure serialized by Python {running[0]}.{running[1]} to image "
            f"{image}, which runs Python {promised[0]}.{promised[1]}: cloudpickle cannot load "
            f"functions across Python versions. Use base_image='default' (that is "
            f"{default_closure_image(key)}) or deploy from a Python {promised[0]}.{promised[1]} "
            "interpreter."
        )


def create_endpoint_with(
    clipper_conn: ClipperConnection,
    name: str,
    input_type: str,
    default_output: str,
    slo_micros: int,
    deploy: Callable[[], None],
) -> None:
    """Every ``create_endpoint``: register app ``name``, run ``deploy`` (which deploys model
    ``name``), link the two."""
    clipper_conn.register_application(name, input_type, default_output, slo_micros)
    deploy()
    clipper_conn.link_model_to_app(name, name)


def deploy_with_model_files(
    clipper_conn: ClipperConnection,
    image_key: str,
    name: str,
    version: Any,
    input_type: str,
    func: Callable[..., Any],
    save_model: Callable[[Path], None],
    base_image: str | None = "default",
    labels: list[str] | None = None,
    registry: str | None = None,
    num_replicas: int = 1,
    batch_size: int = -1,
    pkgs_to_install: list[str] | None = None,
) -> None:
    """The common body of the framework deployers: pickle ``func`` into a new directory, let
    ``save_model(directory)`` write the framework's files next to it, build and deploy the
    directory on ``base_image`` ("default" or None: the catalogue image of ``image_key`` for this
    interpreter), then remove the directory."""
    if base_image in (None, "default"):
        base_image = default_closure_image(image_key)
    check_closure_image_python(base_image)
    serialization_dir = save_python_function(name, func)
    try:
        save_model(Path(serialization_dir))
        clipper_conn.build_and_deploy_model(
            name, version, input_type, serialization_dir, base_image, labels, registry,
            num_replicas, batch_size, pkgs_to_install,
        )
    finally:
        shutil.rmtree(serialization_dir, ignore_errors=True)
