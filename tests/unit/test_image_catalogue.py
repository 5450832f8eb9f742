"""The image catalogue is the one table the deployers, the local runtime table and the image
builder read: every row's Dockerfile, runtime module, extra and deployer exist."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import tomllib

import pytest

from clipper_admin import ClipperException
from clipper_admin.deployers.deployer_utils import check_closure_image_python, default_closure_image
from clipper_admin.docker.images import CLIPPER_IMAGE_DOCKERFILES
from clipper_admin.image_catalogue import (
    CATALOGUE,
    DOCKER_PYTHON,
    dockerfile_images,
    entry_for_image,
    image_python_version,
)
from clipper_admin.local.runtimes import runtime_module_for_image
from clipper_admin.version import __registry__, __version__
from tests.helpers import REPO_ROOT

FRAMEWORKS = ["pytorch", "tensorflow", "keras", "pyspark", "mxnet", "onnx"]


def _setup_extras() -> set[str]:
    with open(REPO_ROOT / "pyproject.toml", "rb") as file:
        return set(tomllib.load(file)["project"]["optional-dependencies"])


def test_every_row_points_at_things_that_exist() -> None:
    extras = _setup_extras()
    for entry in CATALOGUE:
        if entry.dockerfile:
            text = (REPO_ROOT / "dockerfiles" / entry.dockerfile).read_text()
            from_lines = [line for line in text.splitlines() if line.startswith("FROM ")]
            assert from_lines == ["FROM python:3.11-slim"], entry.dockerfile
            if entry.runtime_module and 'ENTRYPOINT ["python"' in text:
                assert f'"-m", "{entry.runtime_module}"' in text, entry.dockerfile
        if entry.runtime_module:
            assert importlib.util.find_spec(entry.runtime_module) is not None, entry.runtime_module
        if entry.extra:
            assert entry.extra in extras
            assert importlib.import_module(f"clipper_admin.deployers.{entry.key}")


def test_the_builder_reads_the_catalogue() -> None:
    assert dict(CLIPPER_IMAGE_DOCKERFILES) == dockerfile_images()
    frameworks = dockerfile_images(core=False)
    assert list(frameworks) == [f"python311-{key}-container" for key in FRAMEWORKS]
    assert set(dockerfile_images(frameworks=False)).isdisjoint(frameworks)
    assert DOCKER_PYTHON == (3, 11)


@pytest.mark.parametrize(
    ("image", "module"),
    [
        ("clipper/python311-pytorch-container:0.1.0", "pytorch_container"),
        ("clipper/pytorch36-container:0.1.0", "pytorch_container"),
        ("clipper/python311-tensorflow-container:0.1.0", "tf_container"),
        ("tf-container", "tf_container"),
        ("localhost:5000/x/python312-keras-container:dev", "keras_container"),
        ("python311-pyspark-container", "pyspark_container"),
        ("mxnet37-container", "mxnet_container"),
        ("clipper/python311-onnx-container:0.1.0", "onnx_container"),
        ("clipper/caffe2-onnx-container:0.1.0", "onnx_container"),
    ],
)
def test_local_runtimes_come_from_the_catalogue(image: str, module: str) -> None:
    assert runtime_module_for_image(image) == f"containers.python.{module}"


def test_images_without_a_runtime_are_refused_locally() -> None:
    with pytest.raises(ClipperException, match="python\\{py\\}-pytorch-container"):
        runtime_module_for_image("clipper/query_frontend:0.1.0")


@pytest.mark.parametrize("key", FRAMEWORKS)
def test_default_framework_image_carries_this_python(key: str) -> None:
    major, minor = sys.version_info[:2]
    image = default_closure_image(key)
    assert image == f"{__registry__}/python{major}{minor}-{key}-container:{__version__}"
    assert image_python_version(image) == (major, minor)
    check_closure_image_python(image)


@pytest.mark.parametrize(
    ("image", "version"),
    [("keras-container", (2, 7)), ("pyspark35-container", (3, 5)), ("caffe2-onnx-container", None),
     ("python310-onnx-container", (3, 10)), ("noop-container", None), ("mine/x:1", None)],
)
def test_python_version_in_framework_names(image: str, version: tuple[int, int] | None) -> None:
    assert image_python_version(image) == version


def test_framework_image_of_another_python_is_refused_naming_the_right_default() -> None:
    with pytest.raises(ClipperException) as info:
        check_closure_image_python("clipper/pytorch36-container:0.1.0")
    assert default_closure_image("pytorch") in str(info.value)
    found = entry_for_image("clipper/pytorch36-container:0.1.0")
    assert found is not None and found[0].framework == "PyTorch"
