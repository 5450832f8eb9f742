"""A model container for tests: a real zmq DEALER speaking the shared RPC codec on loopback."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import zmq
import zmq.asyncio

from clipper_core.rpc import (
    ContainerError,
    ContainerErrorKind,
    HeartbeatReply,
    HeartbeatType,
    InputType,
    NewContainer,
    PredictRequest,
    PredictResponse,
    decode_from_frontend,
    encode_container_draining,
    encode_container_error,
    encode_container_heartbeat,
    encode_new_container,
    encode_predict_response,
)

Handler = Callable[[list[bytes]], Awaitable[list[bytes]] | list[bytes]]


def echo_handler(inputs: list[bytes]) -> list[bytes]:
    return [b"out:" + item for item in inputs]


@dataclass
class FakeContainer:
    """Registers as (name, version) and answers predict requests with ``handler``.

    ``handler`` may raise to make the container send our ContainerError extension.
    """

    port: int
    name: str = "m"
    version: str = "1"
    input_type: InputType = InputType.BYTES
    handler: Handler = echo_handler
    heartbeat_period_s: float = 0.1
    requests: list[PredictRequest] = field(default_factory=list)
    heartbeat_replies: list[HeartbeatType] = field(default_factory=list)
    is_silent: bool = False  # stop sending anything (simulates a hung container)
    ignores_predictions: bool = False  # heartbeats on, never answers a batch (a wedged model)
    registered: asyncio.Event = field(default_factory=asyncio.Event)
    is_draining: bool = False  # said it is draining: never registers again
    released: asyncio.Event = field(default_factory=asyncio.Event)  # metadata asked while draining

    def __post_init__(self) -> None:
        self._ctx = zmq.asyncio.Context()
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> FakeContainer:
        self._sock.connect(f"tcp://127.0.0.1:{self.port}")
        await self._sock.send_multipart(encode_container_heartbeat())
        self._tasks = [asyncio.create_task(self._serve()), asyncio.create_task(self._beat())]
        return self

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._sock.close(0)
        self._ctx.term()

    async def __aenter__(self) -> FakeContainer:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def drain(self) -> None:
        """Send our draining extension message, as the runtime does on SIGTERM."""
        self.is_draining = True
        await self._sock.send_multipart(encode_container_draining())

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_period_s)
            if not self.is_silent:
                await self._sock.send_multipart(encode_container_heartbeat())

    async def _serve(self) -> None:
        while True:
            frames = await self._sock.recv_multipart()
            if self.is_silent:
                continue
            message = decode_from_frontend(frames)
            if isinstance(message, HeartbeatReply):
                self.heartbeat_replies.append(message.heartbeat_type)
                if message.heartbeat_type is HeartbeatType.REQUEST_CONTAINER_METADATA:
                    if self.is_draining:
                        self.released.set()  # the frontend forgot us: the runtime exits here
                        continue
                    await self._sock.send_multipart(
                        encode_new_container(NewContainer(self.name, self.version, self.input_type))
                    )
                    self.registered.set()
                continue
            assert isinstance(message, PredictRequest)
            self.requests.append(message)
            if self.ignores_predictions:
                continue
            try:
                result = self.handler(list(message.inputs))
                outputs = await result if asyncio.iscoroutine(result) else result
            except Exception as exc:
                reply = encode_container_error(
                    ContainerError(message.message_id, ContainerErrorKind.MODEL_EXCEPTION, str(exc))
                )
            else:
                reply = encode_predict_response(PredictResponse(message.message_id, list(outputs)))
            if not self.is_silent:
                await self._sock.send_multipart(reply)
