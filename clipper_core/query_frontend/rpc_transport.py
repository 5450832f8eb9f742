"""What the RPC service needs of the wire: a ROUTER's peers, their messages, and sends to them.

The RPC service (registration, heartbeats, liveness, draining, batches) talks to model
containers only through :class:`RpcTransport`: send one multipart message to a peer id, and
hear of peers connecting, sending and going away through :class:`PeerEvents`. Two
implementations: ``rpc_native`` (ZMTP 3 spoken on the event loop's own TCP server, used
without a cluster secret) and ``rpc_zmq`` (a libzmq ROUTER, kept for CurveZMQ).

A send never blocks. It raises :class:`PeerBusy` when the peer's outgoing buffer is full (it
is not reading; libzmq's EAGAIN at the high-water mark), :class:`PeerGone` when the peer has no
connection any more (libzmq's EHOSTUNREACH under ``ROUTER_MANDATORY``), and OSError otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Protocol

from clipper_core.rpc.codec import Buffer

__all__ = ["MAX_MESSAGES_PER_DRAIN", "PeerBusy", "PeerEvents", "PeerGone", "RpcTransport"]

# Bound on messages handled per loop turn (per connection for the native transport) so a
# flood of responses cannot starve HTTP.
MAX_MESSAGES_PER_DRAIN: Final = 256


class PeerGone(ConnectionError):
    """The peer has no connection (any more): a send to it can never be delivered."""


class PeerBusy(BlockingIOError):
    """The peer's outgoing buffer is full: it is not reading what it was sent."""


class PeerEvents(Protocol):
    """Told by a transport about its peers; called on the event loop, must not block."""

    def peer_connected(self, peer: bytes) -> None:
        """A peer completed its handshake (a libzmq transport may never say so)."""

    def peer_message(self, peer: bytes, frames: list[bytes]) -> None:
        """One multipart message from ``peer`` (without a ROUTER's identity frame)."""

    def peer_gone(self, peer: bytes) -> None:
        """``peer``'s connection closed (a libzmq transport learns of it only at a send)."""


class RpcTransport(Protocol):
    """A bound ROUTER endpoint; ``port`` is the bound port once :meth:`start` returned."""

    port: int

    @property
    def description(self) -> str:
        """Where and how it listens, for the start-up log line."""
        ...

    @property
    def peer_count(self) -> int:
        """Connected peers (handshake done), registered or not; libzmq cannot tell (-1)."""
        ...

    async def start(self, events: PeerEvents) -> None:
        """Bind and start delivering events; raises OSError (e.g. the port is in use)."""
        ...

    def send(self, peer: bytes, frames: Sequence[Buffer]) -> None:
        """Queue one multipart message to ``peer``; raises PeerBusy, PeerGone or OSError."""
        ...

    async def aclose(self) -> None:
        """Stop delivering events and close every connection; idempotent."""
        ...
