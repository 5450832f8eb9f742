"""Container runtime settings: the ``CLIPPER_*`` environment contract, parsed in one place.

Public variables (same names and defaults as the original ``rpc.py``):

* ``CLIPPER_MODEL_NAME``, ``CLIPPER_MODEL_VERSION``: required.
* ``CLIPPER_MODEL_PATH``: required by containers that load files (closure, frameworks).
* ``CLIPPER_IP`` (default ``127.0.0.1``), ``CLIPPER_PORT`` (default ``7000``).
* ``CLIPPER_INPUT_TYPE`` (default ``doubles``; any alias, case-insensitive).

Our additions (all optional):

* ``CLIPPER_READY_FILE``: readiness file, default ``/model_is_ready.check``.
* ``CLIPPER_METRICS_PORT``: serve Prometheus metrics on this port (off when unset; the
  original always used 1390), bound to ``CLIPPER_METRICS_HOST`` (default ``0.0.0.0``).
* ``CLIPPER_RPC_SECRET``: the cluster's RPC secret; when set, the container speaks CurveZMQ
  with keys derived from it (``clipper_core.rpc.curve``); unset = plain RPC v3, as the original.
* ``CLIPPER_RPC_POLL_MS`` / ``CLIPPER_RPC_ACTIVITY_TIMEOUT_MS``: keep-alive intervals
  (defaults 5000 / 30000 ms, as the original); tests shrink them.
* ``CLIPPER_RPC_SPIN_US``: the longest the runtime polls for the next request after a message
  before it sleeps, adapted to the traffic below that (``clipper_core.rpc.spin``; default 0,
  never poll). Plain RPC only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from clipper_core.rpc import RPC_SECRET_ENV, InputType
from clipper_core.rpc.spin import DEFAULT_SPIN_US

__all__ = [
    "DEFAULT_ACTIVITY_TIMEOUT_MS",
    "DEFAULT_CLIPPER_IP",
    "DEFAULT_CLIPPER_PORT",
    "DEFAULT_INPUT_TYPE",
    "DEFAULT_METRICS_HOST",
    "DEFAULT_POLL_MS",
    "DEFAULT_READY_FILE",
    "ContainerConfigError",
    "ContainerSettings",
]

DEFAULT_CLIPPER_IP: Final = "127.0.0.1"
DEFAULT_CLIPPER_PORT: Final = 7000
DEFAULT_INPUT_TYPE: Final = "doubles"
DEFAULT_READY_FILE: Final = "/model_is_ready.check"
DEFAULT_METRICS_HOST: Final = "0.0.0.0"
DEFAULT_POLL_MS: Final = 5000
DEFAULT_ACTIVITY_TIMEOUT_MS: Final = 30000


class ContainerConfigError(ValueError):
    """The environment does not describe a runnable container; ``str()`` is a one-line message."""


@dataclass(slots=True, frozen=True)
class ContainerSettings:
    """Everything the runtime needs to know, validated."""

    model_name: str
    model_version: str
    input_type: InputType
    model_path: str | None = None
    clipper_ip: str = DEFAULT_CLIPPER_IP
    clipper_port: int = DEFAULT_CLIPPER_PORT
    ready_file: str | None = DEFAULT_READY_FILE
    metrics_port: int | None = None
    metrics_host: str = DEFAULT_METRICS_HOST
    poll_ms: int = DEFAULT_POLL_MS
    activity_timeout_ms: int = DEFAULT_ACTIVITY_TIMEOUT_MS
    rpc_spin_us: int = DEFAULT_SPIN_US
    # The cluster's RPC secret: when set, the container speaks CurveZMQ (clipper_core.rpc.curve).
    rpc_secret: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.model_name:
            raise ContainerConfigError("model name must not be empty")
        if self.input_type is InputType.INVALID:
            raise ContainerConfigError("input type must not be INVALID")
        if self.poll_ms <= 0 or self.activity_timeout_ms <= 0:
            raise ContainerConfigError("RPC poll and activity timeout must be positive")

    @classmethod
    def from_environ(
        cls, environ: Mapping[str, str] | None = None, *, require_model_path: bool = False
    ) -> ContainerSettings:
        """Parse and validate the ``CLIPPER_*`` variables.

        Args:
            environ: the environment to read; ``os.environ`` when omitted.
            require_model_path: fail when ``CLIPPER_MODEL_PATH`` is missing.

        Raises:
            ContainerConfigError: with the one-line message to print, e.g.
                ``CLIPPER_MODEL_NAME environment variable must be set``.
        """
        env = os.environ if environ is None else environ
        name = _required(env, "CLIPPER_MODEL_NAME")
        version = _required(env, "CLIPPER_MODEL_VERSION")
        model_path = env.get("CLIPPER_MODEL_PATH") or None
        if require_model_path and model_path is None:
            raise ContainerConfigError("CLIPPER_MODEL_PATH environment variable must be set")
        raw_type = env.get("CLIPPER_INPUT_TYPE", DEFAULT_INPUT_TYPE)
        input_type = InputType.parse_lenient(raw_type)
        if input_type is InputType.INVALID:
            accepted = ", ".join(t.readable_name for t in _VALID_TYPES)
            raise ContainerConfigError(
                f"CLIPPER_INPUT_TYPE {raw_type!r} is not a valid input type (use one of {accepted})"
            )
        metrics_port = _optional_int(env, "CLIPPER_METRICS_PORT", minimum=1, maximum=65535)
        return cls(
            model_name=name,
            model_version=version,
            input_type=input_type,
            model_path=model_path,
            clipper_ip=env.get("CLIPPER_IP") or DEFAULT_CLIPPER_IP,
            clipper_port=_int(env, "CLIPPER_PORT", DEFAULT_CLIPPER_PORT, minimum=1, maximum=65535),
            ready_file=env.get("CLIPPER_READY_FILE", DEFAULT_READY_FILE) or None,
            metrics_port=metrics_port,
            metrics_host=env.get("CLIPPER_METRICS_HOST") or DEFAULT_METRICS_HOST,
            poll_ms=_int(env, "CLIPPER_RPC_POLL_MS", DEFAULT_POLL_MS, minimum=1),
            activity_timeout_ms=_int(
                env, "CLIPPER_RPC_ACTIVITY_TIMEOUT_MS", DEFAULT_ACTIVITY_TIMEOUT_MS, minimum=1
            ),
            rpc_spin_us=_int(env, "CLIPPER_RPC_SPIN_US", DEFAULT_SPIN_US, minimum=0, maximum=1_000_000),
            rpc_secret=env.get(RPC_SECRET_ENV) or None,
        )


_VALID_TYPES: Final = tuple(t for t in InputType if t is not InputType.INVALID)


def _required(env: Mapping[str, str], key: str) -> str:
    value = env.get(key)
    if not value:
        raise ContainerConfigError(f"{key} environment variable must be set")
    return value


def _int(
    env: Mapping[str, str], key: str, default: int, *, minimum: int, maximum: int | None = None
) -> int:
    value = _optional_int(env, key, minimum=minimum, maximum=maximum)
    return default if value is None else value


def _optional_int(
    env: Mapping[str, str], key: str, *, minimum: int, maximum: int | None = None
) -> int | None:
    raw = env.get(key, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ContainerConfigError(f"{key} must be an integer, got {raw!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and {maximum}" if maximum is not None else ""
        raise ContainerConfigError(f"{key} must be between {minimum}{upper}, got {value}")
    return value
