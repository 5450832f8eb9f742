"""Thin helpers over the Docker SDK: free ports, networks, retried calls, waiting for health."""

from __future__ import annotations

import functools
import logging
import random
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

import docker
import docker.errors
import requests.exceptions
import urllib3.exceptions
from docker.models.containers import Container

from clipper_admin._logging import WaitProgress
from clipper_admin.exceptions import ClipperException

__all__ = [
    "create_network",
    "find_unbound_port",
    "list_containers",
    "remove_containers",
    "run_container",
    "wait_for_containers",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_PORT_RANGE: Final = (10000, 50000)
CONTAINER_WAIT_TIMEOUT_S: Final = 300.0
CONTAINER_POLL_INTERVAL_S: Final = 0.5
CONTAINER_STOP_TIMEOUT_S: Final = 10
LOG_TAIL_LINES: Final = 20
# Errors worth retrying: the engine was briefly busy or the socket timed out.
TRANSIENT_ERRORS: Final = (
    docker.errors.APIError,
    urllib3.exceptions.TimeoutError,
    requests.exceptions.Timeout,
)


def _retry_transient(
    tries: int = 5, delay_s: float = 3.0, backoff: float = 2.0
) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Retry on TRANSIENT_ERRORS, but not on client errors (4xx: bad image, name in use, ...)."""

    def decorate(func: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> T:
            wait_s = delay_s
            for attempt in range(1, tries + 1):
                try:
                    return func(*args, **kwargs)
                except TRANSIENT_ERRORS as e:
                    if attempt == tries or (isinstance(e, docker.errors.APIError) and e.is_client_error()):
                        raise
                    logger.warning("%s, Retrying in %s seconds...", e, wait_s)
                    time.sleep(wait_s)
                    wait_s *= backoff
            raise AssertionError("unreachable")

        return wrapper

    return decorate


def _is_port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def find_unbound_port(
    start: int | None = None,
    increment: bool = False,
    port_range: tuple[int, int] = DEFAULT_PORT_RANGE,
    exclude: Sequence[int] = (),
) -> int:
    """``start`` if nothing is bound to it on 127.0.0.1, else another free port.

    Requested ports are preferences, as in the original: the next port (``increment``) or a
    random one in ``port_range`` replaces a taken one. ``exclude`` holds ports already promised to
    other containers of the same cluster but not yet bound.
    """
    port = start if start is not None else random.randint(*port_range)
    for _ in range(1000):
        if port not in exclude and _is_port_free(port):
            return port
        port = port + 1 if increment else random.randint(*port_range)
    raise ClipperException(f"No free port found in {port_range}")


def connect_to_engine() -> docker.DockerClient:
    """A client for the engine named by the environment (DOCKER_HOST, ...), or a ClipperException."""
    try:
        return docker.from_env()
    except docker.errors.DockerException as e:
        raise ClipperException(f"Unable to Connect to Docker. Please Check if Docker is running: {e}") from e


def create_network(client: docker.DockerClient, name: str, labels: dict[str, str]) -> bool:
    """Create a bridge network unless it exists; True when this call created it."""
    try:
        # The engine's name filter matches substrings; compare exactly.
        if any(network.name == name for network in client.networks.list(names=[name])):
            return False
        client.networks.create(name, check_duplicate=True, labels=labels)
        return True
    except docker.errors.APIError as e:
        logger.debug("Network %s not created (probably exists): %s", name, e)
        return False
    except requests.exceptions.ConnectionError as e:
        raise ClipperException(f"Unable to Connect to Docker. Please Check if Docker is running: {e}") from e


@_retry_transient()
def list_containers(
    client: docker.DockerClient, filters: dict[str, Any], include_stopped: bool = False
) -> list[Container]:
    return list(client.containers.list(all=include_stopped, filters=filters))


@_retry_transient()
def run_container(client: docker.DockerClient, image: str, **kwargs: Any) -> Container:
    """``containers.run(image, detach=True, ...)`` retried on transient engine errors."""
    kwargs.setdefault("detach", True)
    return client.containers.run(image, **kwargs)


def _health_status(container: Container) -> str | None:
    health = container.attrs.get("State", {}).get("Health")
    return health.get("Status") if health else None


def _log_tail(container: Container) -> str:
    try:
        return container.logs(tail=LOG_TAIL_LINES).decode("utf-8", "replace").rstrip()
    except docker.errors.APIError as e:
        return f"(logs unavailable: {e})"


def wait_for_containers(containers: Sequence[Container], timeout_s: float = CONTAINER_WAIT_TIMEOUT_S) -> None:
    """Wait until each container is healthy (when its image has a HEALTHCHECK) or running.

    Raises:
        ClipperException: a container exited, turned unhealthy or missed the deadline; the
            message holds its last log lines.
    """
    deadline = time.monotonic() + timeout_s
    pending = list(containers)
    progress = {c.id: WaitProgress(logger, f"container {c.name}", timeout_s, "to be healthy")
                for c in containers}
    while pending:
        still_pending = []
        for container in pending:
            progress[container.id].tick()
            try:
                container.reload()
            except docker.errors.NotFound as e:
                raise ClipperException(f"Container {container.name} disappeared while starting") from e
            state = container.attrs.get("State", {})
            status = state.get("Status")
            health = _health_status(container)
            # A container with a restart policy that exits is "restarting", then runs again:
            # one that exited while starting has failed, whatever the engine does next.
            restarts = container.attrs.get("RestartCount") or 0
            if status in ("exited", "dead", "restarting") or health == "unhealthy" or restarts:
                raise ClipperException(
                    f"Container {container.name} failed to start (status {status}, health {health}, "
                    f"exit code {state.get('ExitCode')}, restarts {restarts}). "
                    f"Last log lines:\n{_log_tail(container)}"
                )
            if status == "running" and health in (None, "healthy"):
                progress[container.id].done()
                continue
            still_pending.append(container)
        pending = still_pending
        if pending and time.monotonic() > deadline:
            names = ", ".join(c.name for c in pending)
            raise ClipperException(
                f"Containers {names} are not running yet or broken after {timeout_s:.0f}s. "
                f"Last log lines of {pending[0].name}:\n{_log_tail(pending[0])}"
            )
        if pending:
            time.sleep(CONTAINER_POLL_INTERVAL_S)


def remove_containers(containers: Sequence[Container], graceful: bool = True) -> None:
    """Stop (or kill) then delete each container; one already gone is not an error."""
    for container in containers:
        try:
            if graceful:
                container.stop(timeout=CONTAINER_STOP_TIMEOUT_S)
            else:
                container.kill()
        except docker.errors.NotFound:
            continue
        except docker.errors.APIError as e:
            # Killing an exited container is a 409; removal below still applies.
            logger.debug("Stopping %s: %s", container.name, e)
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as e:
            if "already in progress" not in str(e):
                raise
