"""Run a Clipper cluster in Docker: the container manager and Clipper's image helpers."""

from clipper_admin.docker.docker_container_manager import DockerContainerManager
from clipper_admin.docker.images import clipper_image, clipper_version

__all__ = ["DockerContainerManager", "clipper_image", "clipper_version"]
