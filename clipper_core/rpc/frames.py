"""Frame-level libzmq calls for the RPC hot path: the query frontend's ROUTER, and the container
runtime's DEALER when it speaks CurveZMQ (without an RPC secret the runtime speaks ZMTP itself
through ``clipper_core.rpc.zmtp`` and does not come here).

They go straight to pyzmq's compiled backend with int flags: ``send_multipart``/
``recv_multipart`` re-check every buffer and combine IntFlag enums per frame, which measured
4-5x slower for a 20-frame batch request (and ~10 us per message at concurrency 1 in the
container runtime). tests/integration/test_pinned_internals.py watches the backend calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, cast

import zmq

from clipper_core.rpc.codec import Buffer

__all__ = ["is_readable", "recv_frames", "send_frames"]

_backend_send: Final = zmq.backend.Socket.send
_backend_recv: Final = zmq.backend.Socket.recv
_backend_get: Final = zmq.backend.Socket.get
_NOBLOCK: Final = int(zmq.NOBLOCK)
_MORE_NOBLOCK: Final = int(zmq.SNDMORE) | int(zmq.NOBLOCK)
_EVENTS: Final = int(zmq.EVENTS)
_POLLIN: Final = int(zmq.POLLIN)
_RCVMORE: Final = int(zmq.RCVMORE)
# Payloads at least this large are handed to zmq without a copy (zmq.COPY_THRESHOLD).
_ZERO_COPY_BYTES: Final = 65536


def send_frames(sock: zmq.Socket[bytes], frames: Sequence[Buffer], identity: bytes | None = None) -> None:
    """Non-blocking multipart send, after ``identity`` (a ROUTER's peer) when given.

    Raises zmq.Again (at the high-water mark) or ZMQError on the first frame; once the first
    frame is taken, zmq takes the rest of the message.
    """
    if identity is not None:
        _backend_send(sock, identity, _MORE_NOBLOCK)
    last = len(frames) - 1
    for index, frame in enumerate(frames):
        flags = _NOBLOCK if index == last else _MORE_NOBLOCK
        if len(frame) < _ZERO_COPY_BYTES:
            _backend_send(sock, frame, flags)
        else:
            _backend_send(sock, frame, flags, copy=False)


def recv_frames(sock: zmq.Socket[bytes]) -> list[bytes]:
    """Non-blocking multipart receive (zmq.Again when nothing is queued)."""
    frames = [_backend_recv(sock, _NOBLOCK)]
    while _backend_get(sock, _RCVMORE):
        frames.append(_backend_recv(sock, _NOBLOCK))
    return frames


def is_readable(sock: zmq.Socket[bytes]) -> bool:
    """``ZMQ_EVENTS`` has POLLIN (reading it also processes zmq's pending commands)."""
    return bool(cast(int, _backend_get(sock, _EVENTS)) & _POLLIN)
