"""Which container runtime module a local replica runs for an image name.

The local manager runs no images: a replica is ``python -m <module>`` with the model-container
environment (``CLIPPER_MODEL_NAME``, ``CLIPPER_MODEL_PATH``, ...). The module comes from the
image catalogue (``clipper_admin.image_catalogue``): ``clipper/python311-pytorch-container:0.1.0``
-> ``containers.python.pytorch_container``; the original's names (``pytorch36-container``,
``tf-container``, ...) map to the same modules.

Images built by ``LocalContainerManager.build_model`` map through their base image.
``LocalContainerManager(image_runtimes={"my-image": "my_pkg.my_runtime"})`` adds or overrides
stems.
"""

from __future__ import annotations

from collections.abc import Mapping

from clipper_admin.exceptions import ClipperException
from clipper_admin.image_catalogue import CATALOGUE, entry_for_image, image_stem

__all__ = ["image_stem", "known_runtime_images", "runtime_module_for_image"]


def known_runtime_images() -> list[str]:
    """The image names (``{py}`` for the Python digits) that have a runtime module."""
    return [entry.stem for entry in CATALOGUE if entry.runtime_module is not None]


def runtime_module_for_image(image: str, extra: Mapping[str, str] | None = None) -> str:
    """The module a replica of ``image`` runs; ClipperException when the image is unknown."""
    stem = image_stem(image)
    if extra and stem in extra:
        return extra[stem]
    found = entry_for_image(image)
    if found is not None and found[0].runtime_module is not None:
        return found[0].runtime_module
    raise ClipperException(
        f"LocalContainerManager cannot run image {image!r}: it runs model replicas as local "
        f"processes and knows only these image names: {', '.join(known_runtime_images())} "
        "({py} = Python MAJOR MINOR digits). Pass "
        f"image_runtimes={{'{stem}': '<python module>'}} to map it, or use DockerContainerManager."
    )
