"""The one catalogue of Clipper's images: name, runtime module, setup extra, Dockerfile.

Every other place that needs to know about an image reads this table: the deployers (the
default image of a framework, the Python-version guard), the local manager (which runtime
module a replica runs, ``clipper_admin.local.runtimes``) and the Docker image builder (which
Dockerfile builds an image, ``clipper_admin.docker.images``). Adding a framework is one row
here plus its deployer, runtime module and Dockerfile.

| key        | image built from ``dockerfiles/``  | runtime module          | extra        |
|------------|------------------------------------|-------------------------|--------------|
| closure    | ``python311-closure-container``    | ``closure_container``   | --           |
| pytorch    | ``python311-pytorch-container``    | ``pytorch_container``   | ``pytorch``    |
| tensorflow | ``python311-tensorflow-container`` | ``tf_container``        | ``tensorflow`` |
| keras      | ``python311-keras-container``      | ``keras_container``     | ``keras``      |
| pyspark    | ``python311-pyspark-container``    | ``pyspark_container``   | ``pyspark``    |
| mxnet      | ``python311-mxnet-container``      | ``mxnet_container``     | ``mxnet``      |
| onnx       | ``python311-onnx-container``       | ``onnx_container``      | ``onnx``       |
| noop       | ``noop-container``                 | ``noop_container``      | --           |
| sum        | (no Dockerfile)                    | ``sum_container``       | --           |
| r          | ``r-container`` (built on request) | ``r_container``         | --           |
| frontends  | ``redis``, ``query_frontend``, ``management_frontend`` (no runtime module) | |
| monitoring | ``prometheus`` (Debian's Prometheus scraping the query frontend; compose)  | |

Runtime modules live in ``containers.python``.

Images that run a function pickled by the deploying interpreter carry its Python version in
their name (``python<MAJOR><MINOR>-<framework>-container``): cloudpickle output only loads in the
Python minor version that wrote it. The original's names (``pytorch36-container``,
``tf-container``, ``caffe2-onnx-container``, ...) are recognised too, for the version guard and
the local runtime table; the digit-less ones were its Python 2.7 images.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "CATALOGUE",
    "DOCKER_PYTHON",
    "ImageEntry",
    "catalogue_entry",
    "dockerfile_images",
    "entry_for_image",
    "image_python_version",
    "image_stem",
    "model_image_name",
]

# The Python of every image built from dockerfiles/ (they are all FROM python:3.11-slim).
DOCKER_PYTHON: Final = (3, 11)
_PKG: Final = "containers.python"


@dataclass(frozen=True, slots=True)
class ImageEntry:
    """One image (or family of images differing only in their Python version)."""

    key: str
    """Short name: the deployer module and the setup extra are named after it."""
    stem: str
    """Image name without registry and tag; ``{py}`` stands for ``<MAJOR><MINOR>``."""
    runtime_module: str | None = None
    """Module a model replica runs (``python -m``); None for the frontends and Redis."""
    extra: str | None = None
    """``pip install .[extra]`` brings the framework this image serves."""
    dockerfile: str | None = None
    """File under ``dockerfiles/`` building the ``DOCKER_PYTHON`` variant of ``stem``."""
    framework: str = ""
    """Human name for messages (``PyTorch``)."""
    legacy_stems: tuple[str, ...] = field(default=())
    """Regexes of the original's names for the same runtime; group ``py`` holds the digits."""
    on_request: bool = False
    """Built only when named or needed by a model, not with the core images (R)."""

    @property
    def carries_python(self) -> bool:
        """The image loads a function pickled by the deploying interpreter."""
        return "{py}" in self.stem

    @property
    def docker_stem(self) -> str:
        """The name the Dockerfile builds (``python311-pytorch-container``)."""
        return self.stem.format(py=f"{DOCKER_PYTHON[0]}{DOCKER_PYTHON[1]}")

    def patterns(self) -> tuple[re.Pattern[str], ...]:
        own = re.escape(self.stem).replace(re.escape("{py}"), r"(?P<py>\d+)")
        return (re.compile(own), *(re.compile(p) for p in self.legacy_stems))


def _model(key: str, module: str, framework: str, dockerfile: str, *legacy: str) -> ImageEntry:
    return ImageEntry(
        key=key,
        stem=f"python{{py}}-{key}-container",
        runtime_module=f"{_PKG}.{module}",
        extra=key,
        dockerfile=dockerfile,
        framework=framework,
        legacy_stems=legacy,
    )


CATALOGUE: Final[tuple[ImageEntry, ...]] = (
    ImageEntry("redis", "redis", dockerfile="RedisDockerfile", framework="Redis"),
    ImageEntry("query_frontend", "query_frontend", dockerfile="QueryFrontendDockerfile"),
    ImageEntry("management_frontend", "management_frontend", dockerfile="ManagementFrontendDockerfile"),
    # docker-compose.yml's Prometheus (monitoring/prometheus/): built with the core images.
    ImageEntry("prometheus", "prometheus", dockerfile="PrometheusDockerfile", framework="Prometheus"),
    ImageEntry(
        "closure",
        "python{py}-closure-container",
        runtime_module=f"{_PKG}.closure_container",
        dockerfile="Python311ClosureContainerDockerfile",
        framework="Python closure",
        legacy_stems=(r"python(?P<py>\d*)-closure-container",),
    ),
    ImageEntry("noop", "noop-container", f"{_PKG}.noop_container", dockerfile="NoopContainerDockerfile"),
    ImageEntry("sum", "sum-container", f"{_PKG}.sum_container"),
    ImageEntry(
        "r", "r-container", f"{_PKG}.r_container", dockerfile="RContainerDockerfile", framework="R",
        on_request=True,
    ),
    _model("pytorch", "pytorch_container", "PyTorch", "PyTorchDockerfile", r"pytorch(?P<py>\d*)-container"),
    _model("tensorflow", "tf_container", "TensorFlow", "TensorFlowDockerfile", r"tf(?P<py>\d*)-container"),
    _model("keras", "keras_container", "Keras", "KerasDockerfile", r"keras(?P<py>\d*)-container"),
    _model("pyspark", "pyspark_container", "PySpark", "PySparkDockerfile", r"pyspark(?P<py>\d*)-container"),
    _model("mxnet", "mxnet_container", "MXNet", "MXNetDockerfile", r"mxnet(?P<py>\d*)-container"),
    # The original's ONNX image ran Caffe2 (no Python-version variants); ours runs onnxruntime.
    _model("onnx", "onnx_container", "ONNX", "OnnxDockerfile", r"caffe2-onnx-container"),
)


def image_stem(image: str) -> str:
    """``registry:5000/ns/name:tag`` -> ``name`` (a tag or digest is dropped)."""
    last = image.rsplit("/", 1)[-1]
    return last.split("@", 1)[0].split(":", 1)[0]


def catalogue_entry(key: str) -> ImageEntry:
    """The row named ``key``; KeyError for an unknown key (a programming error)."""
    for entry in CATALOGUE:
        if entry.key == key:
            return entry
    raise KeyError(key)


def entry_for_image(image: str) -> tuple[ImageEntry, tuple[int, int] | None] | None:
    """The row an image name belongs to and the Python (major, minor) its name promises
    (None when the name carries no Python version); None for an image not in the catalogue."""
    stem = image_stem(image)
    for entry in CATALOGUE:
        for pattern in entry.patterns():
            match = pattern.fullmatch(stem)
            if match is None:
                continue
            if "py" not in pattern.groupindex:
                return entry, None
            digits = match.group("py")
            if not digits:
                return entry, (2, 7)  # the original's digit-less names were its Python 2 images
            return entry, (int(digits[0]), int(digits[1:] or 0))
    return None


def image_python_version(image: str) -> tuple[int, int] | None:
    """(major, minor) the image name promises, or None (no version in the name, or a custom
    image, which is trusted)."""
    found = entry_for_image(image)
    return found[1] if found is not None else None


def model_image_name(key: str, python: tuple[int, int] | None = None) -> str:
    """The image stem of row ``key`` for ``python`` (default: the running interpreter)."""
    major, minor = python or sys.version_info[:2]
    return catalogue_entry(key).stem.format(py=f"{major}{minor}")


def dockerfile_images(*, core: bool = True, frameworks: bool = True) -> dict[str, str]:
    """Image stem -> Dockerfile for the images ``dockerfiles/`` builds, in build order: the core
    ones (frontends, Redis, closure, noop) and/or the framework ones (those with an extra); the
    on-request ones (R) only in the full table."""
    return {
        entry.docker_stem: entry.dockerfile
        for entry in CATALOGUE
        if entry.dockerfile
        and (frameworks if entry.extra else core)
        and (not entry.on_request or (core and frameworks))
    }
