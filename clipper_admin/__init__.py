"""clipper_admin: the Python library that drives a Clipper cluster.

Public surface as in the original 0.x: ``ClipperConnection``, the container managers, the
``deployers`` subpackage, the constants of ``clipper_admin.clipper_admin``, ``__version__``,
``__registry__`` and the two exceptions. The Docker and Kubernetes managers are imported on first
use, so ``import clipper_admin`` works without their SDKs.
"""

from __future__ import annotations

import importlib
from typing import Any

from clipper_admin import deployers
from clipper_admin._logging import install_default_logging
from clipper_admin.clipper_admin import (
    CLIPPER_TEMP_DIR,
    CONTAINERLESS_MODEL_IMAGE,
    DEFAULT_HTTP_TIMEOUT_S,
    DEFAULT_LABEL,
    DEFAULT_PREDICTION_CACHE_SIZE_BYTES,
    ClipperConnection,
)
from clipper_admin.container_manager import (
    CLIPPER_DOCKER_LABEL,
    CLIPPER_DOCKER_PORT_LABELS,
    CLIPPER_INTERNAL_MANAGEMENT_PORT,
    CLIPPER_INTERNAL_METRIC_PORT,
    CLIPPER_INTERNAL_QUERY_PORT,
    CLIPPER_INTERNAL_REDIS_PORT,
    CLIPPER_INTERNAL_RPC_PORT,
    CLIPPER_MODEL_CONTAINER_LABEL,
    ClusterAdapter,
    ContainerManager,
)
from clipper_admin.exceptions import ClipperException, UnconnectedException
from clipper_admin.local import LocalContainerManager
from clipper_admin.version import __registry__, __version__

# INFO progress lines in a REPL or notebook until the application configures logging itself.
install_default_logging()

__all__ = [
    "CLIPPER_DOCKER_LABEL",
    "CLIPPER_DOCKER_PORT_LABELS",
    "CLIPPER_INTERNAL_MANAGEMENT_PORT",
    "CLIPPER_INTERNAL_METRIC_PORT",
    "CLIPPER_INTERNAL_QUERY_PORT",
    "CLIPPER_INTERNAL_REDIS_PORT",
    "CLIPPER_INTERNAL_RPC_PORT",
    "CLIPPER_MODEL_CONTAINER_LABEL",
    "CLIPPER_TEMP_DIR",
    "CONTAINERLESS_MODEL_IMAGE",
    "DEFAULT_HTTP_TIMEOUT_S",
    "DEFAULT_LABEL",
    "DEFAULT_PREDICTION_CACHE_SIZE_BYTES",
    "ClipperConnection",
    "ClipperException",
    "ClusterAdapter",
    "ContainerManager",
    "LocalContainerManager",
    "UnconnectedException",
    "__registry__",
    "__version__",
    "deployers",
]

# name -> module that defines it; imported on first access (PEP 562) because the Docker and
# Kubernetes SDKs are heavy and optional. Left out of __all__ so that a star import never
# needs them.
_LAZY_MANAGERS: dict[str, str] = {
    "DockerContainerManager": "clipper_admin.docker.docker_container_manager",
    "KubernetesContainerManager": "clipper_admin.kubernetes.kubernetes_container_manager",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY_MANAGERS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'clipper_admin' has no attribute {name!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(
            f"clipper_admin.{name} is unavailable: importing {module_name} failed ({exc}). "
            "The docker and kubernetes clients are dependencies of clipper-python: reinstall it "
            "(pip install clipper-python), or use LocalContainerManager."
        ) from exc
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_MANAGERS))
