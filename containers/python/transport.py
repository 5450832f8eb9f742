"""How the container runtime reaches the query frontend: one DEALER-like link per session.

The serving loop (``containers.python.server``) sees one interface, :class:`RpcTransport`:
wait for a message or a wake-up, take one message, send one message. Two implementations:

* :class:`NativeTransport` (no RPC secret, the default): a non-blocking TCP socket speaking
  ZMTP 3 itself through the sans-I/O codec ``clipper_core.rpc.zmtp``, polled with the wake
  pipe in one ``poll(2)``. No libzmq I/O thread sits between the socket and the loop, which
  saves two thread wake-ups per message each way (issue 16). It keeps what the libzmq DEALER
  gave the loop: a connection refused or lost is retried every ``RECONNECT_INTERVAL_S``
  (libzmq's default ``ZMQ_RECONNECT_IVL``) with a fresh handshake; messages sent while no
  handshake is complete wait in a queue of at most ``SEND_QUEUE_MESSAGES`` (libzmq's default
  ``ZMQ_SNDHWM``) and go out, in order, once it is; a send never blocks (what the kernel does
  not take is written when the socket is writable again); the peer's PINGs are answered.
  After each message it polls the socket a while before sleeping (``clipper_core.rpc.spin``,
  bounded by ``CLIPPER_RPC_SPIN_US``), so a request that follows soon does not have to wake it.
* :class:`ZmqTransport` (``CLIPPER_RPC_SECRET`` set): a libzmq DEALER, because CurveZMQ
  (``clipper_core.rpc.curve``) is libzmq's.

Neither sets a routing identity: the frontend's ROUTER assigns one per connection, as it did
for the original containers.
"""

from __future__ import annotations

import errno
import logging
import math
import select
import socket
import time
from collections import deque
from collections.abc import Sequence
from typing import Final, Protocol

import zmq
from zmq.backend import zmq_poll

from clipper_core.rpc import CurveKeys
from clipper_core.rpc.codec import Buffer
from clipper_core.rpc.frames import recv_frames, send_frames
from clipper_core.rpc.spin import SpinWindow
from clipper_core.rpc.zmtp import Message, Ready, ZmtpConnection, ZmtpError

__all__ = [
    "RECONNECT_INTERVAL_S",
    "SEND_QUEUE_MESSAGES",
    "NativeTransport",
    "RpcTransport",
    "ZmqTransport",
]

logger = logging.getLogger(__name__)

RECONNECT_INTERVAL_S: Final = 0.1
SEND_QUEUE_MESSAGES: Final = 1000
# One reusable receive buffer; a predict request larger than this arrives in several reads.
RECV_BUFFER_BYTES: Final = 256 * 1024
# sendmsg takes at most IOV_MAX (1024 on Linux) buffers per call.
_MAX_IOV: Final = 512

_POLLIN: Final = select.POLLIN
_POLLOUT: Final = select.POLLOUT
_ZMQ_POLLIN: Final = int(zmq.POLLIN)


class RpcTransport(Protocol):
    """A DEALER-like link to the frontend, polled together with the runtime's wake pipe."""

    address: str

    def connect(self) -> None:
        """Start connecting (returns at once; connecting and reconnecting go on in ``wait``)."""

    def wait(self, timeout_ms: int) -> tuple[bool, bool]:
        """Block until a message is queued, the wake pipe is readable, or the timeout passes.

        Returns:
            ``(is_readable, is_woken)``.
        """

    def recv(self) -> list[bytes] | None:
        """The next received message, or None when none is queued."""

    def send(self, frames: Sequence[Buffer]) -> bool:
        """Queue or write one message without blocking; False when it was dropped (queue full).

        Large buffers may be written later: do not change them after the call.
        """

    def close(self) -> None:
        """Close the connection; queued messages are dropped."""


class ZmqTransport:
    """:class:`RpcTransport` over a libzmq DEALER (the CurveZMQ path)."""

    def __init__(
        self, context: zmq.Context[zmq.Socket[bytes]], address: str, wake_fd: int, curve: CurveKeys | None
    ) -> None:
        self.address = address
        self._sock = context.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        if curve is not None:
            curve.apply_to_client(self._sock)  # the cluster's RPC secret (CLIPPER_RPC_SECRET)
        # zmq_poll itself, not zmq.Poller: its wrapper (and a dict per wake-up) cost several us a
        # message at concurrency 1.
        self._poll_items = [(self._sock, _ZMQ_POLLIN), (wake_fd, _ZMQ_POLLIN)]

    def connect(self) -> None:
        self._sock.connect(self.address)

    def wait(self, timeout_ms: int) -> tuple[bool, bool]:
        # zmq_poll takes plain file descriptors too; pyzmq's stub names sockets only.
        ready = zmq_poll(self._poll_items, timeout_ms)  # type: ignore[arg-type]
        is_readable = is_woken = False
        for item, _events in ready:
            if item is self._sock:
                is_readable = True
            else:
                is_woken = True
        return is_readable, is_woken

    def recv(self) -> list[bytes] | None:
        try:
            return recv_frames(self._sock)
        except zmq.Again:
            return None  # the poll's event was stale: nothing is queued

    def send(self, frames: Sequence[Buffer]) -> bool:
        try:
            send_frames(self._sock, frames)
        except zmq.Again:
            return False  # only at the high-water mark
        return True

    def close(self) -> None:
        self._sock.close(linger=0)


class NativeTransport:
    """:class:`RpcTransport` over a plain TCP socket and the ZMTP codec (see the module doc)."""

    def __init__(self, host: str, port: int, wake_fd: int, *, spin_max_s: float = 0.0) -> None:
        self.address = f"tcp://{host}:{port}"
        # Polls for the next request a while after each message before sleeping (rpc.spin).
        self._spin = SpinWindow(spin_max_s)
        self._peer = (host, port)
        self._family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._wake_fd = wake_fd
        self._poller = select.poll()
        self._poller.register(wake_fd, _POLLIN)
        self._sock: socket.socket | None = None
        self._fd = -1
        # Set from connect until the handshake is done, then None again after a loss.
        self._zmtp: ZmtpConnection | None = None
        self._is_connecting = False
        self._is_ready = False
        self._reconnect_at = math.inf  # until connect() is called
        self._has_lost = False
        self._inbox: deque[list[bytes]] = deque()
        # Whole messages waiting for a handshake, and the bytes the kernel has not taken yet.
        self._waiting: deque[Sequence[Buffer]] = deque()
        self._unsent: deque[memoryview] = deque()
        self._unsent_messages = 0
        self._recv_buffer = bytearray(RECV_BUFFER_BYTES)
        self._recv_view = memoryview(self._recv_buffer)

    @property
    def spin_window_s(self) -> float:
        """How long the next wait polls before it sleeps."""
        return self._spin.window_s

    # ------------------------------------------------------------------ interface

    def connect(self) -> None:
        self._start_connect()

    def wait(self, timeout_ms: int) -> tuple[bool, bool]:
        if self._inbox:
            return True, False
        started = time.monotonic()
        deadline = started + timeout_ms / 1000.0
        result = None
        if self._spin.window_s and self._is_ready:
            result = self._poll_until(min(deadline, started + self._spin.window_s))
        if result is None:
            result = self._sleep_until(deadline)
        if self._spin.max_s and not result[1]:  # a wake-up says nothing of the frontend's pace
            self._spin.waited(time.monotonic() - started)
        return result

    def recv(self) -> list[bytes] | None:
        return self._inbox.popleft() if self._inbox else None

    def send(self, frames: Sequence[Buffer]) -> bool:
        zmtp = self._zmtp
        if not self._is_ready or zmtp is None:
            if len(self._waiting) >= SEND_QUEUE_MESSAGES:
                return False
            self._waiting.append(frames)
            return True
        if self._unsent and self._unsent_messages >= SEND_QUEUE_MESSAGES:
            return False
        self._write(zmtp.encode(frames))
        return True

    def close(self) -> None:
        self._close_socket()
        self._waiting.clear()
        self._poller.unregister(self._wake_fd)

    # ------------------------------------------------------------------ waiting

    def _poll_until(self, spin_until: float) -> tuple[bool, bool] | None:
        """Poll without sleeping until a message or a wake-up comes (its result) or
        ``spin_until`` passes (None)."""
        poll = self._poller.poll
        while True:
            ready = poll(0)
            if ready:
                is_woken = self._dispatch(ready)
                if is_woken or self._inbox:
                    return bool(self._inbox), is_woken
            if time.monotonic() >= spin_until:
                return None

    def _sleep_until(self, deadline: float) -> tuple[bool, bool]:
        while True:
            now = time.monotonic()
            if self._sock is None and now >= self._reconnect_at:
                self._start_connect()
            wake_at = deadline if self._sock is not None else min(deadline, self._reconnect_at)
            is_woken = self._dispatch(self._poller.poll(max(0, math.ceil((wake_at - now) * 1000.0))))
            if is_woken or self._inbox:
                return bool(self._inbox), is_woken
            if time.monotonic() >= deadline:
                return False, False

    def _dispatch(self, ready: list[tuple[int, int]]) -> bool:
        """Handle ``poll``'s events; True when the wake pipe is among them."""
        is_woken = False
        for fd, events in ready:
            if fd == self._fd:
                self._on_socket(events)
            else:
                is_woken = True
        return is_woken

    # ------------------------------------------------------------------ connection

    def _start_connect(self) -> None:
        sock = socket.socket(self._family, socket.SOCK_STREAM)
        sock.setblocking(False)
        # Messages are small and latency-bound; libzmq sets this too.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        error = sock.connect_ex(self._peer)
        if error not in (0, errno.EINPROGRESS):
            sock.close()
            self._lost(f"connect: {errno.errorcode.get(error, error)}")
            return
        self._sock = sock
        self._fd = sock.fileno()
        self._is_connecting = True
        # Writable once the connection is made or has failed.
        self._poller.register(self._fd, _POLLOUT)

    def _on_socket(self, events: int) -> None:
        if self._is_connecting:
            self._on_connected()
            return
        if events & _POLLOUT:
            self._flush()
        if events & ~_POLLOUT and self._sock is not None:
            self._read()

    def _on_connected(self) -> None:
        assert self._sock is not None
        error = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error:
            self._close_socket()
            self._lost(f"connect: {errno.errorcode.get(error, error)}")
            return
        self._is_connecting = False
        self._zmtp = ZmtpConnection("DEALER", as_server=False)
        self._poller.modify(self._fd, _POLLIN)
        self._write([self._zmtp.data_to_send()])

    def _read(self) -> None:
        zmtp = self._zmtp
        assert self._sock is not None and zmtp is not None
        try:
            count = self._sock.recv_into(self._recv_buffer)
        except BlockingIOError:
            return
        except OSError as exc:
            self._drop(f"receive failed: {exc}")
            return
        if count == 0:
            self._drop("the frontend closed the connection")
            return
        try:
            events = zmtp.receive_data(self._recv_view[:count])
        except ZmtpError as exc:
            # E.g. a frontend that requires CurveZMQ while this container has no secret.
            self._drop(f"ZMTP error: {exc}", level=logging.WARNING)
            return
        for event in events:
            if isinstance(event, Message):
                self._inbox.append(event.frames)
            elif isinstance(event, Ready):
                self._on_ready()
        # _on_ready's writes may have lost the connection; then the PONGs go with it.
        if self._zmtp is zmtp and (pongs := zmtp.data_to_send()):
            self._write([pongs])

    def _on_ready(self) -> None:
        assert self._zmtp is not None
        self._is_ready = True
        if self._has_lost:
            logger.info("reconnected to %s", self.address)
        else:
            logger.debug("ZMTP handshake with %s done", self.address)
        self._has_lost = False
        waiting, self._waiting = self._waiting, deque()
        zmtp = self._zmtp
        for frames in waiting:
            if self._zmtp is not zmtp:  # a write lost the connection: keep the rest waiting
                self._waiting.append(frames)
                continue
            self._write(zmtp.encode(frames))

    def _drop(self, reason: str, *, level: int = logging.INFO) -> None:
        """Close a connection that was made; reconnect after the interval."""
        if self._unsent:
            logger.warning("dropping %d unsent message(s) with the connection", self._unsent_messages)
        self._close_socket()
        self._lost(reason, level=level)

    def _lost(self, reason: str, *, level: int = logging.INFO) -> None:
        # Logged once per outage: a frontend that is down is retried every 100 ms.
        if not self._has_lost:
            logger.log(
                level,
                "no connection to %s (%s); retrying every %d ms",
                self.address,
                reason,
                RECONNECT_INTERVAL_S * 1000,
            )
        else:
            logger.debug("no connection to %s (%s)", self.address, reason)
        self._has_lost = True
        self._reconnect_at = time.monotonic() + RECONNECT_INTERVAL_S

    def _close_socket(self) -> None:
        if self._sock is not None:
            self._poller.unregister(self._fd)
            self._sock.close()
        self._sock = None
        self._fd = -1
        self._zmtp = None
        self._is_connecting = self._is_ready = False
        self._unsent.clear()
        self._unsent_messages = 0

    # ------------------------------------------------------------------ writing

    def _write(self, buffers: list[Buffer]) -> None:
        """Write one message's buffers now, or after what is still unsent."""
        if self._unsent:
            self._unsent.extend(memoryview(b).cast("B") for b in buffers)
            self._unsent_messages += 1
            return
        assert self._sock is not None
        sent = 0
        try:
            if len(buffers) <= _MAX_IOV:
                sent = self._sock.sendmsg(buffers)
            else:
                for start in range(0, len(buffers), _MAX_IOV):
                    chunk = buffers[start : start + _MAX_IOV]
                    sent_now = self._sock.sendmsg(chunk)
                    sent += sent_now
                    if sent_now < _total(chunk):
                        break
        except BlockingIOError:
            pass
        except OSError as exc:
            self._drop(f"send failed: {exc}")
            return
        if sent == _total(buffers):
            return
        for buffer in buffers:
            view = memoryview(buffer).cast("B")
            if sent >= len(view):
                sent -= len(view)
                continue
            self._unsent.append(view[sent:])
            sent = 0
        self._unsent_messages = 1
        self._poller.modify(self._fd, _POLLIN | _POLLOUT)

    def _flush(self) -> None:
        """The socket is writable again: write what the kernel did not take before."""
        assert self._sock is not None
        unsent = self._unsent
        while unsent:
            chunk = [unsent[i] for i in range(min(len(unsent), _MAX_IOV))]
            try:
                sent = self._sock.sendmsg(chunk)
            except BlockingIOError:
                return
            except OSError as exc:
                self._drop(f"send failed: {exc}")
                return
            is_partial = sent < _total(chunk)
            while sent:
                head = unsent[0]
                if sent >= len(head):
                    sent -= len(head)
                    unsent.popleft()
                else:
                    unsent[0] = head[sent:]
                    sent = 0
            if is_partial:
                return  # the kernel buffer is full again; wait for the next POLLOUT
        self._unsent_messages = 0
        self._poller.modify(self._fd, _POLLIN)


def _total(buffers: Sequence[Buffer]) -> int:
    return sum(b.nbytes if isinstance(b, memoryview) else len(b) for b in buffers)
