"""Which container runtime module a local replica runs for an image name.

The local manager runs no images: a replica is ``python -m <module>`` with the model-container
environment (``CLIPPER_MODEL_NAME``, ``CLIPPER_MODEL_PATH``, ...). The image name picks the
module by its last path component without the tag (``clipper/noop-container:0.1.0`` ->
``noop-container``):

| image name (stem)                                  | runtime module                           |
|----------------------------------------------------|------------------------------------------|
| ``noop-container``                                 | ``containers.python.noop_container``     |
| ``sum-container``                                  | ``containers.python.sum_container``      |
| ``python<MAJOR><MINOR>-closure-container``         | ``containers.python.closure_container``  |
| ``pytorch<MM>-container``, ``pytorch-container``   | ``containers.python.pytorch_container``  |
| ``tf<MM>-container``, ``tf-container``             | ``containers.python.tf_container``       |
| ``keras<MM>-container``                            | ``containers.python.keras_container``    |
| ``mxnet<MM>-container``                            | ``containers.python.mxnet_container``    |
| ``pyspark<MM>-container``                          | ``containers.python.pyspark_container``  |
| ``caffe2-onnx-container``                          | ``containers.python.caffe2_onnx_container`` |
| ``r-container``                                    | ``containers.python.r_container`` (execs ``Rscript``) |

Images built by ``LocalContainerManager.build_model`` map through their base image.
``LocalContainerManager(image_runtimes={"my-image": "my_pkg.my_runtime"})`` adds or overrides
stems.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from clipper_admin.exceptions import ClipperException

__all__ = ["DEFAULT_IMAGE_RUNTIMES", "image_stem", "runtime_module_for_image"]

_PKG: Final = "containers.python"
DEFAULT_IMAGE_RUNTIMES: Final[tuple[tuple[str, str], ...]] = (
    (r"noop-container", f"{_PKG}.noop_container"),
    (r"sum-container", f"{_PKG}.sum_container"),
    (r"python\d*-closure-container", f"{_PKG}.closure_container"),
    (r"pytorch\d*-container", f"{_PKG}.pytorch_container"),
    (r"tf\d*-container", f"{_PKG}.tf_container"),
    (r"keras\d*-container", f"{_PKG}.keras_container"),
    (r"mxnet\d*-container", f"{_PKG}.mxnet_container"),
    (r"pyspark\d*-container", f"{_PKG}.pyspark_container"),
    (r"caffe2-onnx-container", f"{_PKG}.caffe2_onnx_container"),
    (r"r-container", f"{_PKG}.r_container"),
)


def image_stem(image: str) -> str:
    """``registry:5000/ns/name:tag`` -> ``name`` (a digest or tag is dropped)."""
    last = image.rsplit("/", 1)[-1]
    return last.split("@", 1)[0].split(":", 1)[0]


def runtime_module_for_image(image: str, extra: Mapping[str, str] | None = None) -> str:
    """The module a replica of ``image`` runs; ClipperException when the image is unknown."""
    stem = image_stem(image)
    if extra and stem in extra:
        return extra[stem]
    for pattern, module in DEFAULT_IMAGE_RUNTIMES:
        if re.fullmatch(pattern, stem):
            return module
    known = ", ".join(pattern for pattern, _ in DEFAULT_IMAGE_RUNTIMES)
    raise ClipperException(
        f"LocalContainerManager cannot run image {image!r}: it runs model replicas as local "
        f"processes and knows only these image names: {known}. Pass "
        f"image_runtimes={{'{stem}': '<python module>'}} to map it, or use DockerContainerManager."
    )
