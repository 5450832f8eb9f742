"""``clipper logs``: the last lines of each process's (container's, pod's) log, or follow them."""

from __future__ import annotations

import queue
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

from clipper_admin.cli.managers import ManagerKind
from clipper_admin.clipper_admin import ClipperConnection
from clipper_admin.exceptions import ClipperException
from clipper_admin.local import LocalContainerManager

__all__ = ["follow", "tails"]

_FOLLOW_POLL_S: Final = 0.25


def _matches(name: str, only: str | None) -> bool:
    return only is None or only in name


def tails(conn: ClipperConnection, lines: int, only: str | None = None) -> dict[str, list[str]]:
    """``{process: its last lines}`` for every process (container, pod) whose name contains
    ``only``: a local cluster's own log files, else the copies ``get_clipper_logs`` writes."""
    manager = conn.cm
    if isinstance(manager, LocalContainerManager):
        return {path.stem: _last_lines(path.read_bytes(), lines)
                for path in _local_logs(manager) if _matches(path.stem, only)}
    with tempfile.TemporaryDirectory(prefix="clipper-logs-") as directory:
        copies = sorted(Path(p) for p in conn.get_clipper_logs(directory))
        return {p.stem: _last_lines(p.read_bytes(), lines) for p in copies if _matches(p.stem, only)}


def follow(
    conn: ClipperConnection, kind: ManagerKind, lines: int, emit: Callable[[str, str], None],
    only: str | None = None, stop: threading.Event | None = None,
) -> None:
    """Emit ``(process, line)`` for the last ``lines`` lines, then for each new line, until
    ``stop`` is set (or Ctrl-C)."""
    stop = stop or threading.Event()
    manager = conn.cm
    if isinstance(manager, LocalContainerManager):
        _follow_local(manager, lines, emit, only, stop)
    elif kind is ManagerKind.DOCKER:
        _follow_docker(manager, lines, emit, only, stop)
    else:
        raise ClipperException(
            "clipper logs --follow is supported for the local and Docker managers; "
            "use kubectl logs -f for Kubernetes pods"
        )


def _local_logs(manager: LocalContainerManager) -> list[Path]:
    return sorted(manager.paths.log_dir.glob("*.log"))


def _last_lines(data: bytes, lines: int) -> list[str]:
    text = data.decode("utf-8", "replace").splitlines()
    return text[-lines:] if lines > 0 else []


def _follow_local(
    manager: LocalContainerManager, lines: int, emit: Callable[[str, str], None], only: str | None,
    stop: threading.Event,
) -> None:
    offsets: dict[Path, int] = {}
    partial: dict[Path, bytes] = {}
    while not stop.is_set():
        for path in _local_logs(manager):  # new replicas' logs appear while following
            if not _matches(path.stem, only):
                continue
            try:
                size = path.stat().st_size
                if path not in offsets:
                    for line in _last_lines(path.read_bytes(), lines):
                        emit(path.stem, line)
                    offsets[path] = size
                    continue
                if size < offsets[path]:
                    offsets[path] = 0  # truncated or replaced
                if size == offsets[path]:
                    continue
                with path.open("rb") as log_file:
                    log_file.seek(offsets[path])
                    chunk = partial.pop(path, b"") + log_file.read(size - offsets[path])
                offsets[path] = size
            except OSError:
                continue
            *complete, rest = chunk.split(b"\n")
            if rest:
                partial[path] = rest
            for raw in complete:
                emit(path.stem, raw.decode("utf-8", "replace"))
        stop.wait(_FOLLOW_POLL_S)


def _follow_docker(
    manager: Any, lines: int, emit: Callable[[str, str], None], only: str | None, stop: threading.Event
) -> None:
    from clipper_admin.container_manager import CLIPPER_DOCKER_LABEL
    from clipper_admin.docker.docker_api_utils import list_containers

    received: queue.Queue[tuple[str, str]] = queue.Queue()

    def pump(container: Any) -> None:
        stream: Iterator[bytes] = container.logs(stream=True, follow=True, tail=lines)
        for raw in stream:
            for line in raw.decode("utf-8", "replace").splitlines():
                received.put((container.name, line))

    label = f"{CLIPPER_DOCKER_LABEL}={manager.cluster_name}"
    for container in list_containers(manager.docker_client, {"label": label}):
        if _matches(container.name, only):
            threading.Thread(target=pump, args=(container,), daemon=True).start()
    while not stop.is_set():
        try:
            emit(*received.get(timeout=_FOLLOW_POLL_S))
        except queue.Empty:
            continue
