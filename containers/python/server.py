"""The container's serving loop: one DEALER session after another, one request at a time.

Session protocol (original-core 1.6): connect a new DEALER, send a heartbeat, then poll.
Any inbound message marks the session connected. A poll timeout while connected sends a
heartbeat, unless nothing came in for the activity timeout, in which case the socket is
closed and a new session (new socket, so a new routing identity) starts.

The DEALER is a :class:`containers.python.transport.RpcTransport`: by default a plain TCP
socket speaking ZMTP itself (``NativeTransport``: no libzmq I/O thread on the hot path), or a
libzmq DEALER when the cluster has an RPC secret (``ZmqTransport``: CurveZMQ is libzmq's).
Within a session either one reconnects on its own every 100 ms when the frontend goes away
(a frontend restart), and what was sent meanwhile goes out once the connection is back.
The loop waits on the link and the wake pipe in one poll.

Errors from the model never end the loop: they are reported to the frontend with our
``ContainerError`` extension (see ``clipper_core.rpc.codec``). Malformed frontend messages
are logged and dropped.

Stopping: the wake pipe given to :meth:`ContainerServer.run` carries commands. ``WAKE_STOP``
ends the loop at once. ``WAKE_DRAIN`` (what SIGTERM sends) drains: the container sends our
draining extension message once, keeps answering every request it receives, heartbeats every
``DRAIN_HEARTBEAT_MS`` and exits when the frontend has let it go (it sends
RequestContainerMetadata: it has forgotten this connection and will send nothing more; the
container does not register again), or after ``DRAIN_QUIET_S`` without a request (an
original frontend, which ignores the message, or none at all). A container that never heard
from a frontend exits at once. The loop is single-threaded, so a batch in hand is always
finished and answered before the command is read.
"""

from __future__ import annotations

import enum
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final

from clipper_core.rpc import (
    ContainerError,
    ContainerErrorKind,
    HeartbeatReply,
    HeartbeatType,
    InputType,
    NewContainer,
    PredictRequest,
    PredictResponse,
    RpcProtocolError,
    decode_from_frontend,
    encode_container_draining,
    encode_container_error,
    encode_container_heartbeat,
    encode_new_container,
    encode_predict_response,
)
from clipper_core.rpc.codec import Buffer
from clipper_core.rpc.stage_trace import TRACE
from containers.python.inputs import (
    BadModelOutput,
    InputDecodeError,
    ModelInputs,
    decode_inputs,
    encode_outputs,
)

if TYPE_CHECKING:
    from containers.python.metrics import ContainerMetrics
    from containers.python.transport import RpcTransport

__all__ = [
    "DRAIN_HEARTBEAT_MS",
    "DRAIN_QUIET_S",
    "PREDICT_METHOD_NAMES",
    "WAKE_DRAIN",
    "WAKE_STOP",
    "ContainerServer",
    "PredictFunction",
    "PredictionHandler",
]

logger = logging.getLogger(__name__)

PredictFunction = Callable[[ModelInputs], object]

PREDICT_METHOD_NAMES: Final[dict[InputType, str]] = {
    InputType.BYTES: "predict_bytes",
    InputType.INTS: "predict_ints",
    InputType.FLOATS: "predict_floats",
    InputType.DOUBLES: "predict_doubles",
    InputType.STRINGS: "predict_strings",
}

# An exception text can embed a whole input array; the frontend only needs the gist.
MAX_ERROR_MESSAGE_CHARS: Final = 4096

# Wake-pipe commands (one byte each).
WAKE_STOP: Final = b"s"
WAKE_DRAIN: Final = b"d"
# While draining: how often to heartbeat (each answer says whether the frontend still holds
# this connection), and how long without a request before exiting anyway.
DRAIN_HEARTBEAT_MS: Final = 50
DRAIN_QUIET_S: Final = 1.0

_HEARTBEAT: Final = encode_container_heartbeat()
_DRAINING: Final = encode_container_draining()


class _Inbound(enum.Enum):
    """What one frontend message was, as far as the session loop cares."""

    PREDICT = enum.auto()
    KEEP_ALIVE = enum.auto()
    METADATA_REQUEST = enum.auto()
    MALFORMED = enum.auto()


class PredictionHandler:
    """Turns one predict request into its reply frames; pure, no sockets."""

    def __init__(self, input_type: InputType, predict: PredictFunction) -> None:
        self._input_type = input_type
        self._predict = predict

    def answer(self, request: PredictRequest) -> list[Buffer]:
        """Frames answering ``request``: a prediction response or a ContainerError."""
        message_id = request.message_id
        if request.input_type is not self._input_type:
            return self._error(
                message_id,
                ContainerErrorKind.BAD_INPUT,
                f"request input type {request.input_type.readable_name} does not match the "
                f"container input type {self._input_type.readable_name}",
            )
        count = len(request.inputs)
        if count == 0:
            # Nothing to predict; answering at once keeps the replica pulling work.
            return encode_predict_response(PredictResponse(message_id, []))
        try:
            inputs = decode_inputs(self._input_type, request.inputs)
        except InputDecodeError as exc:
            return self._error(message_id, ContainerErrorKind.BAD_INPUT, str(exc))
        if TRACE is not None:
            TRACE.mark("ct_decoded")
        try:
            outputs = encode_outputs(self._predict(inputs), count)
        except BadModelOutput as exc:
            return self._error(message_id, ContainerErrorKind.BAD_OUTPUT, str(exc))
        except Exception as exc:
            logger.exception("model raised on request %d (%d inputs)", message_id, count)
            return self._error(
                message_id, ContainerErrorKind.MODEL_EXCEPTION, f"{type(exc).__name__}: {exc}", logged=True
            )
        if TRACE is not None:
            TRACE.mark("ct_predicted")
        return encode_predict_response(PredictResponse(message_id, outputs))

    @staticmethod
    def _error(
        message_id: int, kind: ContainerErrorKind, text: str, *, logged: bool = False
    ) -> list[Buffer]:
        if not logged:
            logger.error("request %d: %s: %s", message_id, kind.name, text)
        if len(text) > MAX_ERROR_MESSAGE_CHARS:
            text = text[: MAX_ERROR_MESSAGE_CHARS - 3] + "..."
        return list(encode_container_error(ContainerError(message_id, kind, text)))


class ContainerServer:
    """Serves one model over RPC v3 until ``wake_fd`` becomes readable.

    Args:
        new_transport: builds one session's link to the frontend, given the wake pipe's read
            end (``containers.python.transport``: native ZMTP, or libzmq for CurveZMQ).
    """

    def __init__(
        self,
        new_transport: Callable[[int], RpcTransport],
        model_name: str,
        model_version: str,
        input_type: InputType,
        predict: PredictFunction,
        *,
        poll_ms: int,
        activity_timeout_ms: int,
        metrics: ContainerMetrics | None = None,
    ) -> None:
        self._new_transport = new_transport
        self._handler = PredictionHandler(input_type, predict)
        self._poll_ms = poll_ms
        self._activity_timeout_s = activity_timeout_ms / 1000.0
        self._metrics = metrics
        self._metadata = encode_new_container(NewContainer(model_name, model_version, input_type))
        self.sessions_started = 0

    def run(self, wake_fd: int) -> None:
        """Run sessions back to back until told to stop or drained through ``wake_fd``."""
        while self._run_session(wake_fd):
            pass

    def _run_session(self, wake_fd: int) -> bool:
        """One DEALER session; True when a new session should follow."""
        self.sessions_started += 1
        link = self._new_transport(wake_fd)
        try:
            link.connect()
            logger.info("session %d: connecting to %s", self.sessions_started, link.address)
            self._send(link, _HEARTBEAT)
            is_connected = False
            is_draining = False
            last_activity = last_request = time.monotonic()
            while True:
                is_readable, is_woken = link.wait(DRAIN_HEARTBEAT_MS if is_draining else self._poll_ms)
                if is_woken:
                    if _read_command(wake_fd) != WAKE_DRAIN or not is_connected:
                        return False
                    if not is_draining:
                        logger.info("draining: answering what comes, then exiting")
                        is_draining = True
                        last_request = time.monotonic()
                        self._send(link, _DRAINING)
                        self._send(link, _HEARTBEAT)
                    continue
                if is_readable:
                    if TRACE is not None:
                        TRACE.mark("ct_woke")
                    recv_start = time.perf_counter()
                    frames = link.recv()
                    if frames is None:
                        continue
                    if TRACE is not None:
                        TRACE.mark("ct_received")
                    recv_ms = (time.perf_counter() - recv_start) * 1000.0
                    is_connected = True
                    last_activity = time.monotonic()
                    inbound = self._handle_message(link, frames, recv_ms, is_draining=is_draining)
                    if inbound is _Inbound.PREDICT:
                        last_request = last_activity
                    elif is_draining and inbound is _Inbound.METADATA_REQUEST:
                        logger.info("drained: the frontend has let this container go")
                        return False
                elif is_draining:
                    if time.monotonic() - last_request >= DRAIN_QUIET_S:
                        logger.info("drained: no request for %.1f s", DRAIN_QUIET_S)
                        return False
                    self._send(link, _HEARTBEAT)
                elif is_connected:
                    idle_s = time.monotonic() - last_activity
                    if idle_s >= self._activity_timeout_s:
                        logger.warning(
                            "no message from the frontend for %.1f s; reconnecting with a new socket",
                            idle_s,
                        )
                        return True
                    self._send(link, _HEARTBEAT)
        finally:
            link.close()

    def _handle_message(
        self, link: RpcTransport, frames: list[bytes], recv_ms: float, *, is_draining: bool
    ) -> _Inbound:
        parse_start = time.perf_counter()
        try:
            message = decode_from_frontend(frames)
        except RpcProtocolError as exc:
            logger.warning("dropping a malformed message from the frontend: %s", exc)
            return _Inbound.MALFORMED
        if isinstance(message, HeartbeatReply):
            if message.heartbeat_type is not HeartbeatType.REQUEST_CONTAINER_METADATA:
                return _Inbound.KEEP_ALIVE
            if not is_draining:  # a draining container never registers again
                logger.info("frontend asked for metadata; registering")
                self._send(link, self._metadata)
            return _Inbound.METADATA_REQUEST
        handle_start = time.perf_counter()
        self._send(link, self._handler.answer(message))
        if TRACE is not None:
            TRACE.mark("ct_sent")
        if self._metrics is not None:
            done = time.perf_counter()
            self._metrics.observe_prediction(
                recv_ms, (handle_start - parse_start) * 1000.0, (done - handle_start) * 1000.0
            )
        return _Inbound.PREDICT

    @staticmethod
    def _send(link: RpcTransport, frames: Sequence[Buffer]) -> None:
        if not link.send(frames):
            # Only with a full outbound queue; the frontend falls back to the default output.
            logger.warning("outbound queue full; dropped a %d-frame message", len(frames))


def _read_command(wake_fd: int) -> bytes:
    """Everything written to the wake pipe so far, reduced to one command: ``WAKE_DRAIN`` only
    if nothing but drain requests came (a stop, or the pipe closing, wins)."""
    data = os.read(wake_fd, 4096)
    if data and not data.replace(WAKE_DRAIN, b""):
        return WAKE_DRAIN
    return WAKE_STOP
