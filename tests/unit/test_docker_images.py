"""Pure parts of clipper_admin.docker: image names, source lookup, manager configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from clipper_admin.container_manager import CLIPPER_DOCKER_LABEL
from clipper_admin.docker import DockerContainerManager, clipper_image, clipper_version
from clipper_admin.docker.images import CLIPPER_IMAGE_DOCKERFILES, _image_stem, find_source_dir
from clipper_admin.exceptions import ClipperException
from clipper_admin.version import __version__
from tests.helpers import REPO_ROOT


def test_image_names_follow_registry_and_version(monkeypatch: pytest.MonkeyPatch) -> None:
    assert clipper_version() == __version__
    monkeypatch.delenv("CLIPPER_REGISTRY", raising=False)
    assert clipper_image("query_frontend") == f"clipper/query_frontend:{__version__}"
    monkeypatch.setenv("CLIPPER_REGISTRY", "localhost:5000/team")
    assert clipper_image("noop-container") == f"localhost:5000/team/noop-container:{__version__}"


@pytest.mark.parametrize(
    ("image", "stem"),
    [
        ("clipper/noop-container:0.1.0", "noop-container"),
        ("localhost:5000/a/b/python311-closure-container:dev", "python311-closure-container"),
        ("redis", "redis"),
        ("clipper/query_frontend@sha256:abc", "query_frontend"),
    ],
)
def test_image_stem(image: str, stem: str) -> None:
    assert _image_stem(image) == stem


def test_every_clipper_image_has_a_dockerfile() -> None:
    for dockerfile in CLIPPER_IMAGE_DOCKERFILES.values():
        text = (REPO_ROOT / "dockerfiles" / dockerfile).read_text()
        assert text.count("FROM python:3.11-slim") == 1


def test_source_dir_from_checkout_and_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CLIPPER_SOURCE_DIR", raising=False)
    assert find_source_dir() == REPO_ROOT
    (tmp_path / "dockerfiles").mkdir()
    (tmp_path / "setup.py").write_text("")
    monkeypatch.setenv("CLIPPER_SOURCE_DIR", str(tmp_path))
    assert find_source_dir() == tmp_path


@pytest.fixture
def no_docker_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Point the Docker client at a socket nobody listens on, whatever runs on this machine."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/absent.sock")


def test_manager_configuration_for_host_and_bridge_networks(no_docker_engine: None) -> None:
    host = DockerContainerManager(
        cluster_name="c1", docker_network="host", extra_container_kwargs={"labels": {"team": "x"}}
    )
    assert host.cluster_identifier == "c1"
    assert host.common_labels == {"team": "x", CLIPPER_DOCKER_LABEL: "c1"}
    assert host.extra_container_kwargs["network_mode"] == "host"
    assert "network" not in host.extra_container_kwargs
    assert "labels" not in host.extra_container_kwargs

    bridge = DockerContainerManager(clipper_query_port=2000, clipper_management_port=2001)
    assert bridge.extra_container_kwargs["network"] == "clipper_network"
    assert bridge.get_query_addr() == "localhost:2000"
    assert bridge.get_admin_addr() == "localhost:2001"
    assert bridge.get_metric_addr() == "localhost:2000"


def test_engine_is_contacted_on_first_use_with_a_clear_error(no_docker_engine: None) -> None:
    manager = DockerContainerManager(docker_network="host")
    with pytest.raises(ClipperException, match="Unable to Connect to Docker"):
        manager.get_num_replicas("m", "1")


def test_centralized_logging_is_refused() -> None:
    with pytest.raises(ClipperException, match="not supported"):
        DockerContainerManager(use_centralized_log=True)
