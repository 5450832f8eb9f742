"""Clipper's own Docker images: names, versions, and building them from ``dockerfiles/``.

An engine without a registry (or a fresh machine before ``make docker-images``) has none of the
Clipper images; :func:`ensure_image` then builds the missing one from the repository's
``dockerfiles/``, found through ``CLIPPER_SOURCE_DIR`` or next to the installed package.

``python -m clipper_admin.docker.images [--network host] [image ...]`` builds the core images (or
the named ones; ``--frameworks``: the framework images); ``make docker-images`` and
``make docker-framework-images`` run it. Which Dockerfile builds which image is the image
catalogue's (``clipper_admin.image_catalogue``).
"""

from __future__ import annotations

import argparse
import collections
import importlib
import logging
import os
import re
import shlex
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import docker
import docker.errors

from clipper_admin._logging import PROGRESS_EXTRA
from clipper_admin.docker.docker_api_utils import connect_to_engine
from clipper_admin.exceptions import ClipperException
from clipper_admin.image_catalogue import CATALOGUE, dockerfile_images
from clipper_admin.image_catalogue import image_stem as _image_stem

__all__ = [
    "CLIPPER_IMAGE_DOCKERFILES",
    "CLIPPER_IMAGE_VERSION",
    "build_clipper_image",
    "build_model_image",
    "clipper_image",
    "clipper_registry",
    "clipper_version",
    "ensure_image",
    "find_source_dir",
    "push_image",
    "stream_build",
]

logger = logging.getLogger(__name__)

# Used when ``clipper_admin.__version__`` does not exist; keep in step with setup.py.
CLIPPER_IMAGE_VERSION: Final = "0.1.0"
SOURCE_DIR_ENV: Final = "CLIPPER_SOURCE_DIR"
REGISTRY_ENV: Final = "CLIPPER_REGISTRY"
DEFAULT_REGISTRY: Final = "clipper"
BUILD_LOG_TAIL_LINES: Final = 25
# The classic builder's step header, e.g. "Step 3/7 : RUN pip install ...".
_BUILD_STEP: Final = re.compile(r"Step (\d+)/(\d+) : (.*)")
# Passed through to builds when set in the caller's environment (never written anywhere).
PIP_BUILD_ARGS: Final = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST")

# Image name (without registry and tag) -> Dockerfile under dockerfiles/, from the catalogue.
CLIPPER_IMAGE_DOCKERFILES: Final[Mapping[str, str]] = dockerfile_images()
# Built only when named (or missing when a model needs it): R is not part of every cluster.
ON_REQUEST_IMAGES: Final = frozenset(
    entry.docker_stem for entry in CATALOGUE if entry.on_request
)


def clipper_version() -> str:
    """The tag of Clipper's images: ``clipper_admin.__version__`` when it exists."""
    # Looked up lazily: clipper_admin/__init__ may import this package before defining it.
    try:
        version = importlib.import_module("clipper_admin.version").__version__
    except (ImportError, AttributeError):
        version = getattr(importlib.import_module("clipper_admin"), "__version__", None)
    return str(version) if version else CLIPPER_IMAGE_VERSION


def clipper_registry() -> str:
    """``CLIPPER_REGISTRY`` or ``clipper``, as the original's ``__registry__``."""
    return os.environ.get(REGISTRY_ENV) or DEFAULT_REGISTRY


def clipper_image(name: str) -> str:
    """``<registry>/<name>:<version>``, e.g. ``clipper/query_frontend:0.1.0``."""
    return f"{clipper_registry()}/{name}:{clipper_version()}"


def find_source_dir() -> Path:
    """The repository root holding ``dockerfiles/`` (``CLIPPER_SOURCE_DIR`` wins)."""
    candidates: list[Path] = []
    if os.environ.get(SOURCE_DIR_ENV):
        candidates.append(Path(os.environ[SOURCE_DIR_ENV]).expanduser())
    # A source checkout or an editable install: clipper_admin/docker/images.py -> repo root.
    candidates.append(Path(__file__).resolve().parent.parent.parent)
    for candidate in candidates:
        if (candidate / "dockerfiles").is_dir() and (candidate / "setup.py").is_file():
            return candidate
    raise ClipperException(
        "Cannot find Clipper's dockerfiles/ to build its images; set "
        f"{SOURCE_DIR_ENV} to a checkout of the Clipper for Python repository "
        f"(looked in: {', '.join(str(c) for c in candidates)})"
    )


def _build_args() -> dict[str, str]:
    args = {name: os.environ[name] for name in PIP_BUILD_ARGS if os.environ.get(name)}
    try:
        # Closures are pickled here; the container must unpickle them with the same version.
        import cloudpickle

        args["CLOUDPICKLE_VERSION"] = cloudpickle.__version__
    except ImportError:
        pass
    return args


def stream_build(
    client: docker.DockerClient,
    *,
    tag: str,
    path: str | None = None,
    dockerfile: str | None = None,
    buildargs: Mapping[str, str] | None = None,
    network_mode: str | None = None,
) -> None:
    """Build an image, logging the builder's output line by line as it arrives.

    Raises:
        ClipperException: the build failed; the message holds the build's last lines.
    """
    tail: collections.deque[str] = collections.deque(maxlen=BUILD_LOG_TAIL_LINES)
    try:
        chunks: Iterator[dict[str, Any]] = client.api.build(
            path=path,
            dockerfile=dockerfile,
            tag=tag,
            buildargs=dict(buildargs or {}),
            network_mode=network_mode,
            rm=True,
            forcerm=True,
            decode=True,
        )
        for chunk in chunks:
            error = chunk.get("error") or (chunk.get("errorDetail") or {}).get("message")
            if error:
                tail.append(str(error).rstrip())
                raise ClipperException(
                    f"Building image {tag} failed: {str(error).strip()}\nLast build output:\n"
                    + "\n".join(tail)
                )
            for line in str(chunk.get("stream", "")).splitlines():
                if line.strip():
                    tail.append(line.rstrip())
                    logger.info("%s", line.rstrip(), extra=_build_step_extra(tag, line))
    except docker.errors.APIError as e:
        raise ClipperException(f"Building image {tag} failed: {e}") from e


def _build_step_extra(tag: str, line: str) -> dict[str, Any]:
    """Structured progress for a terminal display when ``line`` starts a build step
    (``Step 3/7 : RUN ...``); the log line itself is the same either way."""
    step = _BUILD_STEP.match(line.strip())
    if step is None:
        return {PROGRESS_EXTRA: {"kind": "build-output", "image": tag}}
    return {PROGRESS_EXTRA: {"kind": "build-step", "image": tag, "step": int(step[1]),
                             "steps": int(step[2]), "instruction": step[3]}}


def build_clipper_image(
    client: docker.DockerClient, stem: str, tag: str | None = None, network_mode: str | None = None
) -> str:
    """Build one of Clipper's images from ``dockerfiles/``; returns its tag."""
    if stem not in CLIPPER_IMAGE_DOCKERFILES:
        raise ClipperException(
            f"No Dockerfile for image {stem}; known: {', '.join(CLIPPER_IMAGE_DOCKERFILES)}"
        )
    tag = tag or clipper_image(stem)
    source = find_source_dir()
    dockerfile = f"dockerfiles/{CLIPPER_IMAGE_DOCKERFILES[stem]}"
    logger.info("Building %s from %s/%s", tag, source, dockerfile)
    stream_build(
        client,
        tag=tag,
        path=str(source),
        dockerfile=dockerfile,
        buildargs=_build_args(),
        network_mode=network_mode,
    )
    return tag


def _image_exists(client: docker.DockerClient, image: str) -> bool:
    try:
        client.images.get(image)
        return True
    except docker.errors.ImageNotFound:
        return False


def ensure_image(client: docker.DockerClient, image: str, network_mode: str | None = None) -> None:
    """Make ``image`` available: present, else pulled, else (a Clipper image) built from source.

    Raises:
        ClipperException: the image is absent, cannot be pulled and is not one of Clipper's.
    """
    if _image_exists(client, image):
        return
    try:
        client.images.pull(image)
        logger.info("Pulled image %s", image)
        return
    except docker.errors.APIError as e:
        pull_error = str(e)
    stem = _image_stem(image)
    if stem not in CLIPPER_IMAGE_DOCKERFILES:
        raise ClipperException(f"Image {image} is not available locally and cannot be pulled: {pull_error}")
    logger.info(
        "Image %s is not available locally and cannot be pulled; building it from dockerfiles/%s",
        image,
        CLIPPER_IMAGE_DOCKERFILES[stem],
    )
    build_clipper_image(client, stem, tag=image, network_mode=network_mode)


def build_model_image(
    client: docker.DockerClient,
    tag: str,
    model_data_path: str,
    base_image: str,
    pkgs_to_install: Sequence[str] | None = None,
    network_mode: str | None = None,
) -> None:
    """``FROM base_image``, ``pip install`` of the packages, the model directory at ``/model/``."""
    lines = [f"FROM {base_image}"]
    if pkgs_to_install:
        lines += [f"ARG {arg}" for arg in PIP_BUILD_ARGS]
        lines.append("RUN pip install --no-cache-dir " + " ".join(shlex.quote(p) for p in pkgs_to_install))
    lines.append("COPY model /model/")
    with tempfile.TemporaryDirectory(prefix="clipper-build-") as context:
        shutil.copytree(model_data_path, Path(context) / "model")
        (Path(context) / "Dockerfile").write_text("\n".join(lines) + "\n", encoding="utf-8")
        buildargs = {arg: os.environ[arg] for arg in PIP_BUILD_ARGS if os.environ.get(arg)}
        stream_build(
            client,
            tag=tag,
            path=context,
            buildargs=buildargs if pkgs_to_install else None,
            network_mode=network_mode,
        )


def push_image(client: docker.DockerClient, image: str) -> None:
    """Push ``image``, logging progress at DEBUG; an error in the stream raises."""
    repository, tag = image.rsplit(":", 1)
    try:
        for line in client.images.push(repository, tag=tag, stream=True, decode=True):
            if "error" in line:
                raise ClipperException(f"Pushing {image} failed: {line['error']}")
            logger.debug("%s", line)
    except docker.errors.APIError as e:
        raise ClipperException(f"Pushing {image} failed: {e}") from e


def build_all(
    client: docker.DockerClient, stems: Iterable[str], network_mode: str | None = None
) -> list[str]:
    return [build_clipper_image(client, stem, network_mode=network_mode) for stem in stems]


def _default_images() -> list[str]:
    return [stem for stem in CLIPPER_IMAGE_DOCKERFILES if stem not in ON_REQUEST_IMAGES]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build Clipper's Docker images from dockerfiles/.")
    parser.add_argument(
        "images", nargs="*",
        help=f"images to build (default: the core images {list(dockerfile_images(frameworks=False))})",
    )
    parser.add_argument(
        "--frameworks", action="store_true",
        help=f"build the framework images {list(dockerfile_images(core=False))} instead",
    )
    parser.add_argument("--network", default=None, help="network for RUN steps, e.g. host")
    parser.add_argument("--print-version", action="store_true", help="print the image tag and exit")
    args = parser.parse_args(argv)
    if args.print_version:
        sys.stdout.write(clipper_version() + "\n")
        return 0
    # A progress line with the current build step on a terminal, the build's log lines elsewhere.
    from rich.console import Console

    from clipper_admin.cli.display import ProgressDisplay

    default = dockerfile_images(core=False) if args.frameworks else dockerfile_images(frameworks=False)
    stderr = Console(stderr=True, highlight=False)
    try:
        # Run as a script, this module's records come from the "__main__" logger.
        with ProgressDisplay(stderr, loggers=("clipper_admin", __name__)):
            tags = build_all(connect_to_engine(), args.images or list(default), args.network)
            logger.info("Built: %s", " ".join(tags))
    except ClipperException as e:
        stderr.print(f"error: {e}", markup=False, highlight=False)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
