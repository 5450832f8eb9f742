"""Deployer helpers: function serialisation and the Python-version check of closure images."""

from __future__ import annotations

import pickle
import sys
import threading
from pathlib import Path

import pytest

from clipper_admin import ClipperException, __registry__, __version__
from clipper_admin.deployers.deployer_utils import (
    check_closure_image_python,
    closure_image_python_version,
    default_closure_image,
    save_python_function,
    serialize_object,
)

RUNNING = sys.version_info[:2]


def test_save_python_function_writes_a_loadable_func_pkl() -> None:
    offset = 10

    def add_offset(xs):
        return [str(x + offset) for x in xs]

    directory = Path(save_python_function("m", add_offset))
    try:
        assert directory.name.endswith("clipper")
        assert [p.name for p in directory.iterdir()] == ["func.pkl"]
        loaded = pickle.loads((directory / "func.pkl").read_bytes())
        assert loaded([1, 2]) == ["11", "12"]
    finally:
        for child in directory.iterdir():
            child.unlink()
        directory.rmdir()


def test_unpicklable_function_is_refused_saying_why() -> None:
    lock = threading.Lock()
    with pytest.raises(ClipperException) as info:
        save_python_function("m", lambda xs: [str(lock.locked()) for _ in xs])
    text = str(info.value)
    assert "Could not serialize" in text and "lock" in text
    assert "create those inside the function" in text


def test_serialize_object_round_trips() -> None:
    assert pickle.loads(serialize_object({"a": [1, 2]})) == {"a": [1, 2]}


def test_default_closure_image_carries_the_python_minor_version() -> None:
    major, minor = RUNNING
    assert default_closure_image() == f"{__registry__}/python{major}{minor}-closure-container:{__version__}"
    assert closure_image_python_version(default_closure_image()) == RUNNING
    check_closure_image_python(default_closure_image())


@pytest.mark.parametrize(
    ("image", "version"),
    [
        ("clipper/python37-closure-container:develop", (3, 7)),
        ("localhost:5000/clipper/python311-closure-container:0.1.0", (3, 11)),
        ("python312-closure-container", (3, 12)),
        ("clipper/python-closure-container:develop", (2, 7)),
        ("clipper/pytorch36-container:develop", (3, 6)),
        ("clipper/noop-container:develop", None),
        ("my/custom-image:1", None),
    ],
)
def test_closure_image_python_version(image: str, version) -> None:
    assert closure_image_python_version(image) == version


@pytest.mark.parametrize(
    "image",
    ["clipper/python37-closure-container:develop", "clipper/python-closure-container:develop",
     f"clipper/python{RUNNING[0]}{RUNNING[1] + 1}-closure-container:0.1.0"],
)
def test_closure_to_another_python_minor_is_refused(image: str) -> None:
    with pytest.raises(ClipperException) as info:
        check_closure_image_python(image)
    assert f"Python {RUNNING[0]}.{RUNNING[1]}" in str(info.value)
    assert default_closure_image() in str(info.value)


def test_custom_images_are_trusted() -> None:
    check_closure_image_python("registry.example.com/team/my-model-server:3")


def test_deploy_python_closure_refuses_another_python_before_building(tmp_path) -> None:
    from clipper_admin import ClipperConnection, LocalContainerManager
    from clipper_admin.deployers import python as python_deployer

    conn = ClipperConnection(LocalContainerManager(cluster_name="unit", clipper_home=str(tmp_path)))
    with pytest.raises(ClipperException, match="cloudpickle cannot load functions across Python versions"):
        python_deployer.deploy_python_closure(
            conn, "m", 1, "doubles", lambda xs: [str(x) for x in xs],
            base_image="clipper/python36-closure-container:0.1.0",
        )
    assert not (tmp_path / "clusters").exists()  # nothing was stored


def test_deploy_python_closure_refuses_unpicklable_functions_before_building(tmp_path) -> None:
    from clipper_admin import ClipperConnection, LocalContainerManager
    from clipper_admin.deployers import python as python_deployer

    conn = ClipperConnection(LocalContainerManager(cluster_name="unit", clipper_home=str(tmp_path)))
    lock = threading.Lock()
    with pytest.raises(ClipperException, match="Could not serialize"):
        python_deployer.deploy_python_closure(
            conn, "m", 1, "doubles", lambda xs: [str(lock.locked()) for _ in xs]
        )
    assert not (tmp_path / "clusters").exists()
