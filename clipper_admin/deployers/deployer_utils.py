"""Helpers shared by the deployers: serialise a function, pick and check closure images."""

from __future__ import annotations

import logging
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import cloudpickle

from clipper_admin.exceptions import ClipperException
from clipper_admin.version import __registry__, __version__

__all__ = [
    "FUNC_FILENAME",
    "check_closure_image_python",
    "closure_image_python_version",
    "default_closure_image",
    "save_python_function",
    "serialize_object",
]

logger = logging.getLogger(__name__)

FUNC_FILENAME: Final = "func.pkl"
# "python<MAJOR><MINOR>-closure-container" and the framework images "<fw><MAJOR><MINOR>-container";
# the original's digit-less names were its Python 2 images.
_CLOSURE_IMAGE_RE: Final = re.compile(
    r"(?P<stem>python|pytorch|tf|keras|mxnet|pyspark)(?P<digits>\d*)(?:-closure)?-container"
)


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


def default_closure_image(stem: str = "python") -> str:
    """``<registry>/<stem><MAJOR><MINOR>-closure-container:<version>`` for this interpreter."""
    major, minor = sys.version_info[:2]
    return f"{__registry__}/{stem}{major}{minor}-closure-container:{__version__}"


def closure_image_python_version(image: str) -> tuple[int, int] | None:
    """(major, minor) a closure/framework image name promises, (2, 7) for the original's
    digit-less Python 2 names, or None for any other image name (custom images are trusted)."""
    stem = image.rsplit("/", 1)[-1].split("@", 1)[0].split(":", 1)[0]
    match = _CLOSURE_IMAGE_RE.fullmatch(stem)
    if match is None:
        return None
    digits = match.group("digits")
    if not digits:
        return (2, 7)
    return int(digits[0]), int(digits[1:] or 0)


def check_closure_image_python(image: str) -> None:
    """Refuse to ship a closure pickled here to an image of another Python minor version:
    cloudpickle output only loads reliably on the interpreter version that wrote it."""
    promised = closure_image_python_version(image)
    running = sys.version_info[:2]
    if promised is not None and promised != running:
        raise ClipperException(
            f"Cannot deploy a closure serialized by Python {running[0]}.{running[1]} to image "
            f"{image}, which runs Python {promised[0]}.{promised[1]}: cloudpickle cannot load "
            f"functions across Python versions. Use base_image='default' (that is "
            f"{default_closure_image()}) or deploy from a Python {promised[0]}.{promised[1]} "
            "interpreter."
        )
