"""Local processes of a cluster: spawn in their own process group, check liveness, stop, pick ports."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import psutil

__all__ = [
    "ProcessHandle",
    "choose_port",
    "free_port",
    "is_port_free",
    "log_tail",
    "spawn",
    "stop_processes",
]

logger = logging.getLogger(__name__)

# psutil's create_time is boot time (/proc/stat btime, whole seconds, recomputed from the wall
# clock on every read, so it can step by a second between two readings) plus the start tick. A
# larger gap than that means the pid was reused (pids wrap after pid_max, not within a second).
_CREATE_TIME_SLACK_S: Final = 1.05
LOG_TAIL_LINES: Final = 30

# Popen objects of the processes this interpreter spawned, by pid, so they can be reaped (no
# zombies, no "subprocess still running" warnings) whoever stops them.
_own_children: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True, slots=True)
class ProcessHandle:
    """A process of the cluster as recorded on disk: enough to find it again from any process."""

    pid: int
    create_time: float
    log_path: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProcessHandle:
        return cls(int(data["pid"]), float(data["create_time"]), str(data["log_path"]))

    def process(self) -> psutil.Process | None:
        """The live process this handle names, or None (exited, zombie, or pid reused)."""
        child = _own_children.get(self.pid)
        if child is not None and child.poll() is not None:
            return None  # exited (and reaped); kept until stopped so exit_code() can report it
        try:
            proc = psutil.Process(self.pid)
            # Our own child's pid cannot be reused before we reap it, and only reaping tells its
            # end reliably: a multi-threaded process whose main thread has exited shows as a
            # zombie while its other threads still run (and waitpid cannot reap it yet).
            if child is None and (
                abs(proc.create_time() - self.create_time) > _CREATE_TIME_SLACK_S
                or proc.status() == psutil.STATUS_ZOMBIE
            ):
                return None
        except psutil.Error:
            return None
        return proc

    def is_alive(self) -> bool:
        return self.process() is not None

    def exit_code(self) -> int | None:
        """The exit status if this interpreter spawned the process and it has ended."""
        child = _own_children.get(self.pid)
        return None if child is None else child.poll()


def spawn(
    argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> ProcessHandle:
    """Start ``argv`` in a new session (its own process group), stdout+stderr to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log_file:
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
    _own_children[popen.pid] = popen
    try:
        create_time = psutil.Process(popen.pid).create_time()
    except psutil.Error:
        create_time = time.time()  # already gone; the caller's readiness check reports it
    logger.debug("Started pid %s: %s (log %s)", popen.pid, " ".join(argv), log_path)
    return ProcessHandle(popen.pid, create_time, str(log_path))


def _group_members(handle: ProcessHandle) -> list[psutil.Process]:
    proc = handle.process()
    if proc is None:
        return []
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return [proc]


def _signal_group(pid: int, members: Iterable[psutil.Process], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
    # Descendants that started their own session are outside the group; signal them directly.
    for member in members:
        with contextlib.suppress(psutil.Error):
            member.send_signal(sig)


def _reap(pids: Iterable[int]) -> None:
    for pid in pids:
        child = _own_children.pop(pid, None)
        if child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=1.0)


def stop_processes(
    handles: Iterable[ProcessHandle], graceful: bool = True, timeout_s: float = 5.0
) -> None:
    """Stop every handle's process group: SIGTERM, then SIGKILL after ``timeout_s`` (at once if
    not ``graceful``). All groups are signalled before waiting, so stopping many costs one timeout."""
    groups = {handle.pid: _group_members(handle) for handle in handles}
    everyone = [member for members in groups.values() for member in members]
    first_signal = signal.SIGTERM if graceful else signal.SIGKILL
    for pid, members in groups.items():
        if members:
            _signal_group(pid, members, first_signal)
    alive = _wait_gone(everyone, timeout_s)
    if alive:
        logger.warning(
            "Processes %s did not exit %.1f s after SIGTERM; killing them",
            sorted(p.pid for p in alive), timeout_s,
        )
        for pid, members in groups.items():
            if any(member in alive for member in members):
                _signal_group(pid, [m for m in members if m in alive], signal.SIGKILL)
        _wait_gone(alive, timeout_s)
    _reap(groups)


def _still_running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _wait_gone(procs: list[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    """Wait until every process has exited; return those still running after ``timeout_s``.

    A zombie counts as exited. psutil.wait_procs waits for zombies to be reaped, which only
    their parent can do: stopping a cluster from another Python process than the one that
    started it would then wait out the whole timeout (and SIGKILL) for processes long gone.
    """
    deadline = time.monotonic() + timeout_s
    delay_s = 0.005
    alive = [p for p in procs if _still_running(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(delay_s)
        delay_s = min(delay_s * 2, 0.1)
        alive = [p for p in alive if _still_running(p)]
    return alive


def is_port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def choose_port(
    preferred: int,
    what: str,
    host: str = "127.0.0.1",
    taken: Iterable[int] = (),
    log: logging.Logger | logging.LoggerAdapter | None = None,  # type: ignore[type-arg]
) -> int:
    """``preferred`` if nothing listens there, else a free port (logged as a warning)."""
    avoid = set(taken)
    if preferred not in avoid and is_port_free(preferred, host):
        return preferred
    port = free_port(host, avoid)
    (log or logger).warning("Port %s for the %s is in use; using port %s instead", preferred, what, port)
    return port


def free_port(host: str = "127.0.0.1", taken: Iterable[int] = ()) -> int:
    """A port the OS considers free now (not one of ``taken``)."""
    avoid = set(taken)
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if port not in avoid:
            return port


def log_tail(log_path: str | Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file (for error messages)."""
    try:
        text = Path(log_path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"<cannot read {log_path}: {exc}>"
    tail = text.splitlines()[-lines:]
    return "\n".join(tail) if tail else "<empty log>"
