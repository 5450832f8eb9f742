"""The RPC transport as ZMTP 3 spoken on the event loop: a ROUTER without libzmq.

``loop.create_server`` listens on the RPC host/port, and each container connection gets a
:class:`_PeerProtocol` driving a sans-I/O :class:`~clipper_core.rpc.zmtp.ZmtpConnection` as a
ROUTER (as server). Bytes go from the kernel to the codec to the RPC service in one callback,
with no I/O thread in between (through libzmq a loopback round trip measured 78-115 us against
29-63 us for plain TCP). Peers are libzmq DEALERs (the original's containers, ours, the tests').

As libzmq's ROUTER does:
- a peer's id is the Identity it sent in its handshake when it has one not starting with a
  zero byte and not in use, else a generated one (a zero byte and a 4-byte counter);
- a message over ``max_message_bytes`` disconnects its peer before it is buffered (the codec
  refuses the frame from its header); so does a bad greeting, a peer of an incompatible socket
  type, or broken framing, each with a rate-limited warning; the other peers keep working;
- a send never blocks: when the connection's write buffer is over ``WRITE_BUFFER_HIGH_BYTES``
  (``pause_writing``) a send raises :class:`PeerBusy` (libzmq's EAGAIN at the high-water mark).
Unlike libzmq, a closed connection is known at once (``connection_lost``), so ``peer_gone``
fails the peer's batch right away instead of at the next send to it.

Fairness: at most ``MAX_MESSAGES_PER_DRAIN`` messages of one connection are handled per loop
turn; the rest wait (reading paused) for the next turn.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections import deque
from collections.abc import Sequence
from typing import Final, cast

from clipper_core.query_frontend.log_limit import RateLimitedWarning
from clipper_core.query_frontend.rpc_transport import MAX_MESSAGES_PER_DRAIN, PeerBusy, PeerEvents, PeerGone
from clipper_core.rpc.codec import Buffer
from clipper_core.rpc.stage_trace import TRACE
from clipper_core.rpc.zmtp import Message, Ready, ZmtpConnection, ZmtpError, ZmtpEvent

__all__ = ["WRITE_BUFFER_HIGH_BYTES", "NativeRouterTransport"]

logger = logging.getLogger(__name__)

# A connection whose unsent bytes pass this is "full" (pause_writing) until they drop below a
# quarter of it: a container that stops reading gets its batches refused, not buffered forever.
WRITE_BUFFER_HIGH_BYTES: Final = 32 * 1024 * 1024
_GENERATED_ID_PREFIX: Final = b"\0"
_U32_MASK: Final = 0xFFFFFFFF


class _PeerProtocol(asyncio.Protocol):
    """One container connection: bytes in -> codec events -> the transport; frames out."""

    __slots__ = ("_backlog", "_codec", "_owner", "_paused", "is_writable", "peer", "transport")

    def __init__(self, owner: NativeRouterTransport) -> None:
        self._owner = owner
        self._codec = ZmtpConnection("ROUTER", as_server=True, max_message_bytes=owner.max_message_bytes)
        self.transport: asyncio.Transport | None = None
        self.peer: bytes | None = None  # set when the handshake completes
        self.is_writable = True
        # Events parsed but not handled yet (more than one turn's worth arrived at once).
        self._backlog: deque[ZmtpEvent] = deque()
        self._paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCPTransport is not an asyncio.Transport subclass, but has its methods.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Requests and replies are small and latency-bound (asyncio sets this too, uvloop may not).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH_BYTES)
        self._owner.connections.add(self)
        transport.write(self._codec.data_to_send())  # our greeting and READY, at once

    def data_received(self, data: bytes) -> None:
        if TRACE is not None:
            TRACE.mark("rpc_data")
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        try:
            events = self._codec.receive_data(data)
        except ZmtpError as exc:
            self._owner.drop(self, exc)
            return
        reply = self._codec.data_to_send()  # e.g. a PONG
        if reply:
            transport.write(reply)
        if self._backlog or len(events) > MAX_MESSAGES_PER_DRAIN:
            self._backlog.extend(events)
            if not self._paused:  # else a turn of the backlog is scheduled already
                self._handle_backlog()
            return
        for event in events:  # the common case: one or a few messages, handled at once
            self._handle(event)

    def _handle(self, event: ZmtpEvent) -> None:
        if type(event) is Message:
            if self.peer is not None:
                self._owner.deliver(self.peer, event.frames)
        elif type(event) is Ready:
            self._owner.peer_ready(self, event)

    def _handle_backlog(self) -> None:
        backlog = self._backlog
        for _ in range(MAX_MESSAGES_PER_DRAIN):
            if not backlog:
                break
            self._handle(backlog.popleft())
        transport = self.transport
        if transport is None or transport.is_closing():
            backlog.clear()
            return
        if backlog:
            if not self._paused:
                self._paused = True
                transport.pause_reading()
            asyncio.get_running_loop().call_soon(self._handle_backlog)
        elif self._paused:
            self._paused = False
            transport.resume_reading()

    def eof_received(self) -> bool | None:
        return None  # close our side too: a ROUTER peer that stops sending is gone

    def connection_lost(self, exc: Exception | None) -> None:
        self._backlog.clear()
        self._owner.connection_closed(self)
        self.transport = None

    def pause_writing(self) -> None:
        self.is_writable = False

    def resume_writing(self) -> None:
        self.is_writable = True

    def send(self, frames: Sequence[Buffer]) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            raise PeerGone(errno.ENOTCONN, "disconnected")
        if not self.is_writable:
            raise PeerBusy(errno.EAGAIN, "send buffer full")
        transport.writelines(self._codec.encode(frames))


class NativeRouterTransport:
    """A ZMTP 3 ROUTER (NULL mechanism) on ``host:port`` (port 0: a free one)."""

    def __init__(self, host: str, port: int, *, max_message_bytes: int) -> None:
        # "" and 0.0.0.0 mean every IPv4 interface, as libzmq's "*" did.
        self._host = "0.0.0.0" if host in ("", "*") else host
        self.port = port
        self.max_message_bytes = max_message_bytes
        self.connections: set[_PeerProtocol] = set()
        self._peers: dict[bytes, _PeerProtocol] = {}
        self._next_generated_id = 0
        self._server: asyncio.Server | None = None
        self._events: PeerEvents | None = None
        self._drops = RateLimitedWarning(logger)

    @property
    def description(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"tcp://{host}:{self.port} (native ZMTP 3, no authentication)"

    @property
    def peer_count(self) -> int:
        return len(self._peers)

    async def start(self, events: PeerEvents) -> None:
        loop = asyncio.get_running_loop()
        # One address, as libzmq binds: a name resolving to several would get one port each
        # with port 0.
        infos = await loop.getaddrinfo(
            self._host, self.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        family, _type, _proto, _name, address = infos[0]
        self._events = events
        self._server = await loop.create_server(
            lambda: _PeerProtocol(self),
            host=str(address[0]),
            port=self.port,
            family=family,
            reuse_address=True,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def aclose(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._events = None  # no callbacks from here on
        server.close()
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.abort()
        self.connections.clear()
        self._peers.clear()

    def send(self, peer: bytes, frames: Sequence[Buffer]) -> None:
        connection = self._peers.get(peer)
        if connection is None:
            raise PeerGone(errno.EHOSTUNREACH, "no such peer")
        connection.send(frames)

    # ------------------------------------------------------------ called by _PeerProtocol

    def deliver(self, peer: bytes, frames: list[bytes]) -> None:
        events = self._events
        if events is not None:
            events.peer_message(peer, frames)

    def peer_ready(self, connection: _PeerProtocol, ready: Ready) -> None:
        """Handshake done (the codec checked the socket type): give the connection its peer id."""
        identity = ready.peer_identity
        if not identity or identity.startswith(_GENERATED_ID_PREFIX) or identity in self._peers:
            identity = self._generate_id()
        connection.peer = identity
        self._peers[identity] = connection
        if self._events is not None:
            self._events.peer_connected(identity)

    def _generate_id(self) -> bytes:
        while True:
            number = self._next_generated_id
            self._next_generated_id = (number + 1) & _U32_MASK
            identity = _GENERATED_ID_PREFIX + number.to_bytes(4, "big")
            if identity not in self._peers:
                return identity

    def drop(self, connection: _PeerProtocol, exc: ZmtpError) -> None:
        """Disconnect a peer that broke the protocol; the others are not affected."""
        transport = connection.transport
        where = transport.get_extra_info("peername") if transport is not None else None
        self._drops.warn("Disconnected an RPC peer (%s): %s", where, exc)
        if transport is not None:
            transport.abort()  # connection_lost follows and reports the peer gone

    def connection_closed(self, connection: _PeerProtocol) -> None:
        self.connections.discard(connection)
        peer = connection.peer
        if peer is None or self._peers.get(peer) is not connection:
            return
        del self._peers[peer]
        if self._events is not None:
            self._events.peer_gone(peer)
