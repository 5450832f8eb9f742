"""Public API of the model-container runtime, shaped like the original ``rpc.py``.

A container program builds an :class:`RPCService` (which reads the ``CLIPPER_*``
environment), builds its model from ``get_model_path()`` / ``get_input_type()`` and calls
``start(model)``, which blocks serving requests. The model is any object with the
``predict_<type>`` method of its input type (see :class:`ModelContainerBase`); what each
method receives is described in :mod:`containers.python.inputs`.

The link to the frontend (``containers.python.transport``) is a plain TCP socket speaking
ZMTP through ``clipper_core.rpc.zmtp``, or, when ``CLIPPER_RPC_SECRET`` is set, a libzmq
DEALER with CurveZMQ keys derived from the secret.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import zmq

from clipper_core.rpc import CurveKeys, InputType
from containers.python.inputs import ModelInputs
from containers.python.server import (
    PREDICT_METHOD_NAMES,
    WAKE_DRAIN,
    WAKE_STOP,
    ContainerServer,
    PredictFunction,
)
from containers.python.settings import ContainerConfigError, ContainerSettings
from containers.python.transport import NativeTransport, RpcTransport, ZmqTransport

__all__ = [
    "AnyInputModelContainer",
    "ModelContainerBase",
    "RPCService",
    "configure_logging",
    "exit_with_error",
    "string_to_input_type",
]

logger = logging.getLogger(__name__)


class ModelContainerBase:
    """Base class for models; override the ``predict_*`` method of your input type.

    Each method gets one batch and must return a ``list`` with one ``str`` per input.
    """

    def predict_ints(self, inputs: ModelInputs) -> list[str]:
        raise NotImplementedError

    def predict_floats(self, inputs: ModelInputs) -> list[str]:
        raise NotImplementedError

    def predict_doubles(self, inputs: ModelInputs) -> list[str]:
        raise NotImplementedError

    def predict_bytes(self, inputs: ModelInputs) -> list[str]:
        raise NotImplementedError

    def predict_strings(self, inputs: ModelInputs) -> list[str]:
        raise NotImplementedError


class AnyInputModelContainer(ModelContainerBase):
    """A model with one ``predict`` for every input type (closures, no-op, test models)."""

    def predict(self, inputs: ModelInputs) -> list[str]:
        raise NotImplementedError

    def predict_ints(self, inputs: ModelInputs) -> list[str]:
        return self.predict(inputs)

    def predict_floats(self, inputs: ModelInputs) -> list[str]:
        return self.predict(inputs)

    def predict_doubles(self, inputs: ModelInputs) -> list[str]:
        return self.predict(inputs)

    def predict_bytes(self, inputs: ModelInputs) -> list[str]:
        return self.predict(inputs)

    def predict_strings(self, inputs: ModelInputs) -> list[str]:
        return self.predict(inputs)


def string_to_input_type(name: str) -> int:
    """Wire code of an input-type alias after ``strip().lower()``; -1 when unknown."""
    return int(InputType.parse_lenient(name))


def exit_with_error(message: str, code: int = 1) -> NoReturn:
    """Write ``ERROR: <message>`` as one line on stderr and exit (container entry points only)."""
    sys.stderr.write(f"ERROR: {message}\n")
    sys.stderr.flush()
    raise SystemExit(code)


def configure_logging(level: int = logging.INFO) -> None:
    """Log to stderr; called by container ``main()`` functions, never by library code."""
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


class RPCService:
    """Connects a model to the query frontend and serves it.

    Args:
        collect_metrics: serve Prometheus metrics when ``CLIPPER_METRICS_PORT`` is set.
        read_config: read the ``CLIPPER_*`` environment now; a bad or missing variable
            prints one ``ERROR:`` line on stderr and exits with status 1.
        settings: use these settings instead of the environment (tests, embedding).
        require_model_path: treat a missing ``CLIPPER_MODEL_PATH`` as a configuration error.
    """

    def __init__(
        self,
        collect_metrics: bool = True,
        read_config: bool = True,
        *,
        settings: ContainerSettings | None = None,
        require_model_path: bool = False,
    ) -> None:
        self.collect_metrics = collect_metrics
        if settings is None and read_config:
            try:
                settings = ContainerSettings.from_environ(require_model_path=require_model_path)
            except ContainerConfigError as exc:
                exit_with_error(str(exc))
        self._settings = settings
        self._lock = threading.RLock()
        self._is_stopped = False
        self._is_draining = False
        self._wake_fds: tuple[int, int] | None = None
        self.server: ContainerServer | None = None

    @property
    def settings(self) -> ContainerSettings:
        if self._settings is None:
            raise ContainerConfigError("RPCService was built with read_config=False and no settings")
        return self._settings

    def get_model_path(self) -> str:
        path = self.settings.model_path
        if path is None:
            raise ContainerConfigError("CLIPPER_MODEL_PATH environment variable must be set")
        return path

    def get_input_type(self) -> str:
        """The container's input type, canonically spelled (e.g. ``"doubles"``)."""
        return self.settings.input_type.readable_name

    def start(self, model: Any) -> None:
        """Serve ``model`` until the process is told to stop (SIGTERM drains); blocking.

        A host name in ``CLIPPER_IP`` that does not resolve prints one ``ERROR:`` line and
        exits with status 1.
        """
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda _signo, _frame: self.drain())
        try:
            self.serve(model)
        except ContainerConfigError as exc:
            exit_with_error(str(exc))

    def serve(self, model: Any) -> None:
        """Serve ``model`` until :meth:`stop` is called (from any thread or a signal handler).

        Raises:
            ContainerConfigError: ``CLIPPER_IP`` does not resolve, or the model lacks the
                predict method of the input type.
        """
        settings = self.settings
        predict = _predict_function(model, settings.input_type)
        try:
            ip = socket.gethostbyname(settings.clipper_ip)
        except OSError as exc:
            raise ContainerConfigError(f"cannot resolve CLIPPER_IP {settings.clipper_ip!r}: {exc}") from None
        _write_ready_file(settings.ready_file)
        metrics = None
        if self.collect_metrics and settings.metrics_port is not None:
            # Imported here: prometheus_client costs ~50 ms and several MB when unused.
            from containers.python.metrics import ContainerMetrics

            metrics = ContainerMetrics(settings.metrics_port, settings.metrics_host)
        # Publish the pipe before checking the flag, and stop() sets the flag before
        # reading the pipe: whatever the interleaving, one of the two sees the other.
        wake_fds = os.pipe()
        os.set_blocking(wake_fds[1], False)
        self._wake_fds = wake_fds
        if self._is_stopped or self._is_draining:  # no frontend knows us yet: nothing to drain
            self._close_wake_fds()
            return
        # With an RPC secret the link must be libzmq's (CurveZMQ); otherwise the runtime speaks
        # ZMTP on a plain socket, which saves libzmq's I/O thread hops (issue 16).
        context: zmq.Context[zmq.Socket[bytes]] | None = None
        new_transport: Callable[[int], RpcTransport]
        if settings.rpc_secret:
            curve = CurveKeys.from_secret(settings.rpc_secret)
            zmq_context = context = zmq.Context(io_threads=1)
            address = f"tcp://{ip}:{settings.clipper_port}"

            def new_transport(wake_fd: int) -> RpcTransport:
                return ZmqTransport(zmq_context, address, wake_fd, curve)
        else:
            port = settings.clipper_port
            spin_max_s = settings.rpc_spin_us / 1e6

            def new_transport(wake_fd: int) -> RpcTransport:
                return NativeTransport(ip, port, wake_fd, spin_max_s=spin_max_s)

        self.server = ContainerServer(
            new_transport,
            settings.model_name,
            settings.model_version,
            settings.input_type,
            predict,
            poll_ms=settings.poll_ms,
            activity_timeout_ms=settings.activity_timeout_ms,
            metrics=metrics,
        )
        logger.info(
            "serving model %s:%s (%s inputs)",
            settings.model_name,
            settings.model_version,
            settings.input_type.readable_name,
        )
        try:
            self.server.run(wake_fds[0])
        finally:
            if context is not None:
                context.term()
            self._close_wake_fds()
            logger.info("stopped serving")

    def stop(self) -> None:
        """Make :meth:`serve` return soon; safe from other threads and signal handlers."""
        self._is_stopped = True
        self._wake(WAKE_STOP)

    def drain(self) -> None:
        """Make :meth:`serve` return once the frontend has stopped sending it work (SIGTERM).

        The container tells the frontend it is draining (an RPC extension, see
        ``clipper_core.rpc.codec``), answers every request it still receives, and returns
        when the frontend lets it go or after ``server.DRAIN_QUIET_S`` without a request.
        Safe from other threads and signal handlers.
        """
        self._is_draining = True
        self._wake(WAKE_DRAIN)

    def _wake(self, command: bytes) -> None:
        with self._lock:
            if self._wake_fds is not None:
                with contextlib.suppress(BlockingIOError):  # full pipe: a wake-up is pending
                    os.write(self._wake_fds[1], command)

    def _close_wake_fds(self) -> None:
        # Reentrant lock: a SIGTERM handler calling stop() may interrupt this very thread.
        with self._lock:
            fds, self._wake_fds = self._wake_fds, None
        if fds is not None:
            os.close(fds[0])
            os.close(fds[1])


def _predict_function(model: Any, input_type: InputType) -> PredictFunction:
    method_name = PREDICT_METHOD_NAMES[input_type]
    predict = getattr(model, method_name, None)
    if not callable(predict):
        raise ContainerConfigError(
            f"the model has no {method_name} method for {input_type.readable_name} inputs"
        )
    return predict  # type: ignore[no-any-return]


def _write_ready_file(path: str | None) -> None:
    """Write the original's readiness marker; failing to (e.g. not root) is not fatal."""
    if path is None:
        return
    try:
        Path(path).write_text("READY", encoding="ascii")
    except OSError as exc:
        logger.warning("cannot write the readiness file %s: %s", path, exc)
