"""Rclipper's fixed points that need no R: its version is the one of Clipper's images (its
build_model builds FROM clipper/r-container:<version>), and the local manager and the image
builder know the r-container image."""

from __future__ import annotations

import re

from clipper_admin.docker.images import CLIPPER_IMAGE_DOCKERFILES, ON_REQUEST_IMAGES, _default_images
from clipper_admin.local.runtimes import runtime_module_for_image
from clipper_admin.version import __version__
from tests.helpers import REPO_ROOT

RCLIPPER = REPO_ROOT / "containers" / "R" / "Rclipper"


def test_rclipper_version_is_the_image_version() -> None:
    description = (RCLIPPER / "DESCRIPTION").read_text(encoding="utf-8")
    match = re.search(r"^Version:\s*(\S+)$", description, re.MULTILINE)
    assert match is not None and match.group(1) == __version__


def test_r_container_runs_locally_through_rscript() -> None:
    assert runtime_module_for_image("r-container") == "containers.python.r_container"
    assert runtime_module_for_image(f"clipper/r-container:{__version__}") == "containers.python.r_container"


def test_r_base_image_is_built_on_request_only() -> None:
    assert CLIPPER_IMAGE_DOCKERFILES["r-container"] == "RContainerDockerfile"
    assert "r-container" in ON_REQUEST_IMAGES
    assert "r-container" not in _default_images()
    dockerfile = (REPO_ROOT / "dockerfiles" / "RContainerDockerfile").read_text(encoding="utf-8")
    assert "r-cran-pbdzmq" in dockerfile and "containers/R/Rclipper" in dockerfile
