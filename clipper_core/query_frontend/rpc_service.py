"""RPC service: the query frontend's ROUTER (ZMTP 3) towards model containers.

Registration, heartbeats and liveness follow the original (spec 1.5-1.6): an unknown
identity's heartbeat is answered with RequestContainerMetadata, a known one's with
KeepAlive; NewContainer allocates a connection id (per process) and a replica id (per
model, never one that a DB 3 record holds, across restarts and frontends), writes the DB 3
record and hands the replica to the listener in-process. Records expire unless refreshed
(``record_ttl_s``, twice the inactivity timeout): after a restart, the previous run's records
of containers that do not register again disappear on their own. A container silent for
``inactivity_timeout_s`` is removed; unlike the original, its in-flight batch fails at once
instead of waiting for the SLO.

Draining (our extension, see ``clipper_core.rpc.codec``): a container about to exit says
so; the listener takes its replica out of rotation at once without failing the batch it
holds, and once that batch is answered the DB 3 record is deleted, the connection forgotten
and the container sent RequestContainerMetadata, on which a draining container exits.

I/O model: this module does no I/O itself. It talks to the containers through an
``RpcTransport`` (``rpc_transport``): send one multipart message to a peer id; be told of a
peer's messages and of its connection closing. Without a cluster secret that is
``rpc_native.NativeRouterTransport``: ZMTP 3 (the shared sans-I/O codec ``clipper_core.rpc.zmtp``)
on the event loop's own TCP server, one asyncio Protocol per container connection, so a
message goes from the kernel to ``peer_message`` in one callback, and a closed connection fails
its in-flight batch at once (``peer_gone``). With a secret it is ``rpc_zmq.ZmqRouterTransport``,
a libzmq ROUTER doing CurveZMQ, whose edge-triggered FD is watched with ``loop.add_reader``;
libzmq reports no disconnects, so a gone peer is found by a send (``ROUTER_MANDATORY``), which
the busy probe below makes at least every ``BUSY_PROBE_PERIOD_S``. Sends never block on
either: a full send buffer (libzmq's high-water mark, the native connection's write-buffer
bound) fails that batch with ModelFailed, and a send to a vanished peer with ContainerGone.
While a batch is out, the loop polls instead of sleeping for as long as that container's
replies have lately taken (``busy_poll``, ``clipper_core.rpc.spin``; at most ``spin_max_s``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Final, Protocol

from clipper_core.errors import ContainerGone, ModelFailed, RpcProtocolError, StateError
from clipper_core.query_frontend.busy_poll import BusyPoll
from clipper_core.query_frontend.futures import BackgroundTasks, fail_unless_done
from clipper_core.query_frontend.log_limit import RateLimitedWarning
from clipper_core.query_frontend.rpc_native import NativeRouterTransport
from clipper_core.query_frontend.rpc_transport import PeerBusy, PeerGone, RpcTransport
from clipper_core.query_frontend.rpc_zmq import ZmqRouterTransport
from clipper_core.rpc import (
    ContainerDraining,
    ContainerError,
    ContainerHeartbeat,
    CurveKeys,
    HeartbeatType,
    InputType,
    NewContainer,
    PredictResponse,
    decode_from_container,
    encode_heartbeat_reply,
    encode_predict_request,
)
from clipper_core.rpc.spin import SpinWindow
from clipper_core.rpc.stage_trace import TRACE
from clipper_core.settings import (
    DEFAULT_INACTIVITY_TIMEOUT_S,
    DEFAULT_RPC_MAX_MESSAGE_BYTES,
    DEFAULT_RPC_SPIN_US,
)
from clipper_core.state import (
    ContainerInfo,
    ModelId,
    StateStore,
    invalid_name_message,
    is_dns1123_subdomain,
)

__all__ = [
    "ReplicaListener",
    "RpcService",
]

logger = logging.getLogger(__name__)

ACTIVITY_CHECK_PERIOD_S: Final = 10.0
# A container busy with a batch sends nothing; while a batch is out this long without any
# message from its container, the frontend sends it a KeepAlive. Over libzmq the send itself
# is the probe: with ROUTER_MANDATORY a peer whose connection closed (a killed container)
# raises EHOSTUNREACH, and its batch fails at once instead of at the SLO. (The native
# transport hears of a closed connection at once; the probe then only finds nothing.)
BUSY_PROBE_PERIOD_S: Final = 0.25
_U32_MASK: Final = 0xFFFFFFFF
# DB 3 records carry an expiry of this many inactivity timeouts, refreshed this often per TTL
# while the replica lives: after a restart, the previous run's records expire on their own.
RECORD_TTL_PER_INACTIVITY_TIMEOUT: Final = 2.0
RECORD_REFRESHES_PER_TTL: Final = 4
MAX_CLAIM_ATTEMPTS: Final = 1000
SHUTDOWN_DELETE_S: Final = 2.0

_KEEP_ALIVE: Final = encode_heartbeat_reply(HeartbeatType.KEEP_ALIVE)
_REQUEST_METADATA: Final = encode_heartbeat_reply(HeartbeatType.REQUEST_CONTAINER_METADATA)


class ReplicaListener(Protocol):
    """Told about replicas as they come and go (the gateway's model queues)."""

    async def replica_added(self, info: ContainerInfo) -> None: ...

    def replica_removed(self, info: ContainerInfo) -> None: ...

    def replica_draining(self, info: ContainerInfo) -> None:
        """Send the replica no new batch; the one it holds completes as usual."""


@dataclass(slots=True, eq=False)
class _Connection:
    identity: bytes
    connection_id: int
    info: ContainerInfo
    last_activity: float
    inflight: set[int] = field(default_factory=set)
    # The model version was deleted: keep answering heartbeats (so the container does not
    # re-register) but never route work to it again.
    is_retired: bool = False
    # The container said it is about to exit: no new batch; forgotten once it holds none.
    is_draining: bool = False
    registration: asyncio.Task[None] | None = None
    # How long the loop polls for this container's reply before sleeping (clipper_core.rpc.spin).
    spin: SpinWindow = field(default_factory=lambda: SpinWindow(0.0))


@dataclass(slots=True, eq=False)
class _InFlight:
    connection: _Connection
    future: asyncio.Future[list[bytes]]
    size: int
    sent_at: float


class RpcService:
    """A ZMTP ROUTER speaking RPC v3 (+ the ContainerError extension) to model containers.

    Without ``curve`` it listens with the native transport (ZMTP on the event loop), with
    ``curve`` through libzmq; ``transport`` overrides that choice (tests run both)."""

    def __init__(
        self,
        store: StateStore,
        host: str,
        port: int,
        *,
        listener: ReplicaListener | None = None,
        inactivity_timeout_s: float = DEFAULT_INACTIVITY_TIMEOUT_S,
        check_period_s: float | None = None,
        max_message_bytes: int = DEFAULT_RPC_MAX_MESSAGE_BYTES,
        curve: CurveKeys | None = None,
        transport: RpcTransport | None = None,
        spin_max_s: float = DEFAULT_RPC_SPIN_US / 1e6,
    ) -> None:
        self._store = store
        self._spin_max_s = spin_max_s
        self._busy_poll: BusyPoll | None = None
        self.max_message_bytes = max_message_bytes
        if transport is None:
            if curve is None:
                transport = NativeRouterTransport(host, port, max_message_bytes=max_message_bytes)
            else:
                transport = ZmqRouterTransport(host, port, max_message_bytes=max_message_bytes, curve=curve)
        self._transport = transport
        # DB 3 records expire unless refreshed: a replica's record outlives it by at most this.
        self.record_ttl_s = max(1, math.ceil(RECORD_TTL_PER_INACTIVITY_TIMEOUT * inactivity_timeout_s))
        self._refusals = RateLimitedWarning(logger)
        self.port = port
        self.listener = listener
        self.inactivity_timeout_s = inactivity_timeout_s
        self._check_period_s = (
            check_period_s
            if check_period_s is not None
            else min(ACTIVITY_CHECK_PERIOD_S, max(0.05, inactivity_timeout_s / 3))
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._by_identity: dict[bytes, _Connection] = {}
        self._by_id: dict[int, _Connection] = {}
        self._inflight: dict[int, _InFlight] = {}
        self._next_connection_id = 0
        self._next_message_id = 0
        self._replica_counters: dict[ModelId, int] = {}
        self._tasks = BackgroundTasks(logger, "RPC service")
        self._checker: asyncio.Task[None] | None = None
        # (direction, message type name) -> count; read by the metrics collector.
        self.message_counts: dict[tuple[str, str], int] = {}
        # Told how long encoding and handing a request to the transport took (the original's
        # ``internal:rpc_request_queueing_delay``; we have no outbound queue of our own).
        self.on_send_delay: Callable[[float], None] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Reconcile DB 3, bind the ROUTER and start reading; port 0 picks a free port
        (see ``self.port``).

        Raises:
            OSError: the port cannot be bound (e.g. it is in use).
        """
        await self._reconcile_records()
        self._loop = asyncio.get_running_loop()
        self._busy_poll = BusyPoll(self._loop, lambda: bool(self._inflight))
        await self._transport.start(self)
        self.port = self._transport.port
        self._checker = self._tasks.spawn(self._check_activity_forever())
        self._tasks.spawn(self._probe_busy_forever())
        self._tasks.spawn(self._refresh_records_forever())
        logger.info("RPC service listening on %s", self._transport.description)

    async def aclose(self) -> None:
        """Close the transport (no message is read after this), fail every in-flight batch,
        delete our replicas' DB 3 records (they are served by nobody once we stop; a crash
        leaves them to expire)."""
        if self._loop is None:
            return
        self._loop = None
        await self._transport.aclose()
        for entry in list(self._inflight.values()):
            fail_unless_done(entry.future, ModelFailed("the query frontend is shutting down"))
        self._inflight.clear()
        await self._tasks.cancel_all()
        recorded = [
            c.info
            for c in self._by_identity.values()
            if not c.is_retired and c.registration is not None and c.registration.done()
        ]
        if recorded:
            try:
                async with asyncio.timeout(SHUTDOWN_DELETE_S):
                    await self._store.delete_containers(recorded)
            except (StateError, TimeoutError) as exc:
                logger.warning("Replica records left to expire in Redis: %s", exc)

    @property
    def is_busy_polling(self) -> bool:
        """The loop is polling for a reply instead of sleeping (``busy_poll``)."""
        return self._busy_poll is not None and self._busy_poll.is_running

    @property
    def connection_count(self) -> int:
        """Registered containers (connected peers that have not registered do not count)."""
        return len(self._by_identity)

    # ------------------------------------------------------------------ sending

    def send_batch(
        self, connection_id: int, input_type: InputType, inputs: Sequence[bytes]
    ) -> asyncio.Future[list[bytes]]:
        """Send one predict request; the future gets one output per input, or ModelFailed."""
        assert self._loop is not None
        future: asyncio.Future[list[bytes]] = self._loop.create_future()
        conn = self._by_id.get(connection_id)
        if conn is None or conn.is_retired or conn.is_draining:
            fail_unless_done(future, ContainerGone(f"model container connection {connection_id} is gone"))
            return future
        started = self._loop.time()
        message_id = self._allocate_message_id()
        frames = encode_predict_request(message_id, input_type, inputs)
        if TRACE is not None:
            TRACE.mark("rpc_send")
        try:
            self._transport.send(conn.identity, frames)
        except PeerBusy:
            stuck = ModelFailed(f"{_describe(conn)} is not reading its requests (send queue full)")
            fail_unless_done(future, stuck)
            return future
        except PeerGone:
            fail_unless_done(future, ContainerGone(f"{_describe(conn)} disconnected"))
            self._remove_connection(conn, "disconnected")
            return future
        except OSError as exc:
            fail_unless_done(future, ModelFailed(f"could not send to {_describe(conn)}: {exc}"))
            return future
        sent_at = time.monotonic() if conn.spin.max_s else 0.0
        self._inflight[message_id] = _InFlight(conn, future, len(inputs), sent_at)
        conn.inflight.add(message_id)
        if conn.spin.window_s and self._busy_poll is not None:
            self._busy_poll.extend(conn.spin.window_s)
        self._count("sent", "predict_request")
        if self.on_send_delay is not None:
            self.on_send_delay(self._loop.time() - started)
        return future

    def abandon(self, connection_id: int, reason: str) -> None:
        """Drop a wedged connection as if it had gone silent: its in-flight batches fail with
        ``reason``, the listener loses the replica and its DB 3 record is deleted. A container
        that still heartbeats is asked for its metadata and registers again as a new replica."""
        conn = self._by_id.get(connection_id)
        if conn is not None:
            logger.warning("%s %s; removing it", _describe(conn), reason)
            self._remove_connection(conn, reason)

    def _allocate_message_id(self) -> int:
        message_id = self._next_message_id
        # u32 wraps; skip an id still outstanding after a wrap (a batch stuck for 2^32 sends).
        while message_id in self._inflight:
            message_id = (message_id + 1) & _U32_MASK
        self._next_message_id = (message_id + 1) & _U32_MASK
        return message_id

    def _send_control(self, identity: bytes, frames: list[bytes], kind: str) -> None:
        try:
            self._transport.send(identity, frames)
            self._count("sent", kind)
        except OSError as exc:
            logger.debug("Dropped %s to a container: %s", kind, exc)

    # ------------------------------------------------------------------ receiving

    def peer_connected(self, peer: bytes) -> None:
        """Nothing to do: a container introduces itself with a heartbeat."""

    def peer_gone(self, peer: bytes) -> None:
        """The container's connection closed: its batch fails now, not at the SLO."""
        conn = self._by_identity.get(peer)
        if conn is not None:
            if conn.inflight:
                logger.warning("%s disconnected with a batch in flight; removing it", _describe(conn))
            else:
                logger.info("%s disconnected; removing it", _describe(conn))
            self._remove_connection(conn, "disconnected")

    def peer_message(self, peer: bytes, frames: list[bytes]) -> None:
        """One message from a container (``frames`` start with the empty delimiter)."""
        if TRACE is not None:
            TRACE.mark("rpc_received")
        try:
            self._handle(peer, frames)
        except Exception:
            logger.exception("Error while handling a message from a model container")

    def _handle(self, identity: bytes, frames: list[bytes]) -> None:
        assert self._loop is not None
        conn = self._by_identity.get(identity)
        if conn is not None:
            conn.last_activity = self._loop.time()
        try:
            message = decode_from_container(frames)
        except RpcProtocolError as exc:
            self._refusals.warn("Ignoring a malformed message from a model container: %s", exc.cause)
            self._count("received", "malformed")
            return
        if type(message) is PredictResponse:
            self._count("received", "predict_response")
            self._on_response(conn, message)
        elif type(message) is ContainerHeartbeat:
            self._count("received", "heartbeat")
            if conn is None:
                self._send_control(identity, _REQUEST_METADATA, "request_metadata")
            else:
                self._send_control(identity, _KEEP_ALIVE, "keep_alive")
        elif type(message) is NewContainer:
            self._count("received", "new_container")
            if conn is not None:
                logger.debug("Ignoring repeated registration of %s", _describe(conn))
            elif self._admissible(message):
                self._register(identity, message)
        elif type(message) is ContainerError:
            self._count("received", "container_error")
            self._on_container_error(conn, message)
        elif type(message) is ContainerDraining:
            self._count("received", "draining")
            if conn is not None:
                self._on_draining(conn)

    def _take_inflight(self, conn: _Connection | None, message_id: int) -> _InFlight | None:
        if conn is None:
            return None  # an unregistered identity: read and discarded, as in the original
        entry = self._inflight.get(message_id)
        if entry is None or entry.connection is not conn:
            logger.debug("Response %d from %s matches no batch in flight", message_id, _describe(conn))
            return None
        del self._inflight[message_id]
        conn.inflight.discard(message_id)
        if conn.spin.max_s:  # off by default: no clock read on the reply path
            conn.spin.waited(time.monotonic() - entry.sent_at)
        if conn.is_draining and not conn.inflight:
            self._tasks.spawn(self._finish_drain(conn))
        return entry

    def _on_response(self, conn: _Connection | None, message: PredictResponse) -> None:
        entry = self._take_inflight(conn, message.message_id)
        if entry is None or entry.future.done():
            return
        outputs = message.outputs
        if len(outputs) != entry.size:
            fail_unless_done(
                entry.future,
                ModelFailed(
                    f"{_describe(entry.connection)} returned {len(outputs)} outputs "
                    f"for {entry.size} inputs"
                ),
            )
        else:
            entry.future.set_result(outputs)

    def _on_container_error(self, conn: _Connection | None, message: ContainerError) -> None:
        entry = self._take_inflight(conn, message.message_id)
        if entry is None:
            return
        kind = message.kind.name.lower().replace("_", " ")
        fail_unless_done(
            entry.future,
            ModelFailed(f"{_describe(entry.connection)} failed ({kind}): {message.message}"),
        )

    # ------------------------------------------------------------------ registration

    def _admissible(self, message: NewContainer) -> bool:
        """Names the management API would accept (DNS-1123, so no ',' or ':' for the keys)."""
        for value, what in ((message.model_name, "model name"), (message.model_version, "model version")):
            if not is_dns1123_subdomain(value):
                self._count("received", "refused_registration")
                self._refusals.warn(
                    "Refused a model container registration: %s", invalid_name_message(what, value[:100])
                )
                return False
        return True

    def _register(self, identity: bytes, message: NewContainer) -> None:
        assert self._loop is not None
        model = ModelId(message.model_name, message.model_version)
        replica_id = self._replica_counters.get(model, 0)
        self._replica_counters[model] = replica_id + 1
        connection_id = self._next_connection_id
        self._next_connection_id = (connection_id + 1) & _U32_MASK
        info = ContainerInfo(model.name, model.version, replica_id, connection_id, message.input_type)
        spin = SpinWindow(self._spin_max_s)
        conn = _Connection(identity, connection_id, info, self._loop.time(), spin=spin)
        self._by_identity[identity] = conn
        self._by_id[connection_id] = conn
        conn.registration = self._tasks.spawn(self._publish_replica(conn))

    async def _publish_replica(self, conn: _Connection) -> None:
        try:
            conn.info = await self._claim_record(conn.info)
        except StateError as exc:
            # Serving does not need the record; management views will miss this replica.
            logger.error("Could not record %s in Redis: %s", _describe(conn), exc.cause)
        info = conn.info
        logger.info(
            "Model container %s replica %d registered (connection %d, input type %s)",
            info.model_id, info.replica_id, info.zmq_connection_id, info.input_type.readable_name,
        )
        if not self._is_routable(conn):
            return
        if self.listener is not None:
            await self.listener.replica_added(conn.info)
            if not self._is_routable(conn):
                # Removed while the listener was setting the replica up: undo it.
                self.listener.replica_removed(conn.info)

    def _is_routable(self, conn: _Connection) -> bool:
        return not (conn.is_retired or conn.is_draining) and self._by_id.get(conn.connection_id) is conn

    # ------------------------------------------------------------------ draining

    def _on_draining(self, conn: _Connection) -> None:
        if conn.is_draining:
            return
        conn.is_draining = True
        logger.info("%s is draining (%d batch(es) in flight)", _describe(conn), len(conn.inflight))
        registered = conn.registration is None or conn.registration.done()
        if not conn.is_retired and self.listener is not None and registered:
            self.listener.replica_draining(conn.info)
        if not conn.inflight:
            self._tasks.spawn(self._finish_drain(conn))

    async def _finish_drain(self, conn: _Connection) -> None:
        """Delete the record, then forget the connection and say so: a draining container
        exits on RequestContainerMetadata, so its record is gone by the time its process is."""
        if not conn.is_retired:  # a retired replica's record went with its model
            await self._delete_record(conn)
        if self._by_identity.get(conn.identity) is conn:
            del self._by_identity[conn.identity]
            self._by_id.pop(conn.connection_id, None)
            logger.info("%s drained and removed", _describe(conn))
            # Unprompted, so it need not wait for its next heartbeat; only a container that
            # sent the draining extension ever gets a heartbeat reply it did not ask for.
            self._send_control(conn.identity, _REQUEST_METADATA, "request_metadata")

    async def _claim_record(self, info: ContainerInfo) -> ContainerInfo:
        """Write the DB 3 record under the first replica id no record holds (another frontend's,
        or one left by our previous run and not expired yet): ids are never reused."""
        model = info.model_id
        for _ in range(MAX_CLAIM_ATTEMPTS):
            if await self._store.claim_container(info, self.record_ttl_s):
                return info
            replica_id = max(info.replica_id + 1, self._replica_counters.get(model, 0))
            self._replica_counters[model] = replica_id + 1
            info = replace(info, replica_id=replica_id)
        raise StateError(f"no free replica id for {model} after {MAX_CLAIM_ATTEMPTS} attempts")

    async def _reconcile_records(self) -> None:
        """At start-up: records nobody refreshes (our previous run's) get an expiry, and replica
        ids continue above those still recorded, so a live record's id is never handed out."""
        try:
            expiring = await self._store.expire_unowned_containers(self.record_ttl_s)
            recorded = await self._store.list_container_ids()
        except StateError as exc:
            logger.error("Could not reconcile the replica records in Redis: %s", exc.cause)
            return
        for name, version, replica_id in recorded:
            model = ModelId(name, version)
            self._replica_counters[model] = max(self._replica_counters.get(model, 0), replica_id + 1)
        if expiring:
            logger.info(
                "%d replica record(s) left by an earlier run expire in %d s unless their containers"
                " register again", expiring, self.record_ttl_s,
            )

    async def _refresh_records_forever(self) -> None:
        while True:
            await asyncio.sleep(self.record_ttl_s / RECORD_REFRESHES_PER_TTL)
            live = [
                c.info
                for c in self._by_identity.values()
                if not c.is_retired and c.registration is not None and c.registration.done()
            ]
            try:
                await self._store.refresh_containers(live, self.record_ttl_s)
            except StateError as exc:
                logger.warning("Could not refresh the replica records in Redis: %s", exc.cause)

    # ------------------------------------------------------------------ removal

    async def _check_activity_forever(self) -> None:
        assert self._loop is not None
        while True:
            await asyncio.sleep(self._check_period_s)
            self.remove_inactive(self._loop.time())

    async def _probe_busy_forever(self) -> None:
        assert self._loop is not None
        while True:
            await asyncio.sleep(BUSY_PROBE_PERIOD_S)
            self.probe_busy(self._loop.time())

    def probe_busy(self, now: float) -> int:
        """KeepAlive to every container holding a batch and quiet for a probe period;
        a container whose connection is gone is removed (its batches fail at once)."""
        busy = [
            c
            for c in self._by_identity.values()
            if c.inflight and now - c.last_activity > BUSY_PROBE_PERIOD_S
        ]
        gone = 0
        for conn in busy:
            try:
                self._transport.send(conn.identity, _KEEP_ALIVE)
                self._count("sent", "keep_alive")
            except PeerBusy:
                pass  # its pipe is full: it is alive but slow; the inactivity check decides
            except PeerGone:
                logger.warning("%s disconnected with a batch in flight; removing it", _describe(conn))
                self._remove_connection(conn, "disconnected while answering a batch")
                gone += 1
        return gone

    def remove_inactive(self, now: float) -> int:
        """Remove every container silent for longer than the inactivity timeout."""
        stale = [
            c for c in self._by_identity.values() if now - c.last_activity > self.inactivity_timeout_s
        ]
        for conn in stale:
            logger.warning("%s stopped responding; removing it", _describe(conn))
            self._remove_connection(conn, "stopped responding")
        return len(stale)

    def _remove_connection(self, conn: _Connection, reason: str) -> None:
        if self._by_identity.get(conn.identity) is not conn:
            return
        del self._by_identity[conn.identity]
        self._by_id.pop(conn.connection_id, None)
        self._fail_inflight(conn, ModelFailed(f"{_describe(conn)} {reason}"))
        if conn.is_retired:
            return  # already unregistered and its record deleted with the model
        registered = conn.registration is None or conn.registration.done()
        if self.listener is not None and registered and not conn.is_draining:
            self.listener.replica_removed(conn.info)
        self._tasks.spawn(self._delete_record(conn))

    def retire_model(self, model: ModelId) -> list[ContainerInfo]:
        """The model version was deleted: stop routing to its replicas, DEL their DB 3 records."""
        retired = []
        for conn in self._by_identity.values():
            if conn.info.model_id == model and not conn.is_retired:
                conn.is_retired = True
                self._fail_inflight(conn, ModelFailed(f"model {model} was removed"))
                self._tasks.spawn(self._delete_record(conn))
                if conn.is_draining:
                    self._tasks.spawn(self._finish_drain(conn))  # let it exit now
                retired.append(conn.info)
        return retired

    def _fail_inflight(self, conn: _Connection, exc: ModelFailed) -> None:
        for message_id in conn.inflight:
            entry = self._inflight.pop(message_id, None)
            if entry is not None:
                fail_unless_done(entry.future, exc)
        conn.inflight.clear()

    async def _delete_record(self, conn: _Connection) -> None:
        # Never let a slow registration write land after the delete.
        if conn.registration is not None and not conn.registration.done():
            await asyncio.wait([conn.registration])
        info = conn.info
        try:
            await self._store.delete_container(info.model_name, info.model_version, info.replica_id)
        except StateError as exc:
            logger.error("Could not delete the Redis record of %s: %s", _describe(conn), exc.cause)

    # ------------------------------------------------------------------ helpers

    def _count(self, direction: str, kind: str) -> None:
        key = (direction, kind)
        counts = self.message_counts
        counts[key] = counts.get(key, 0) + 1



def _describe(conn: _Connection) -> str:
    info = conn.info
    return f"model container {info.model_id} replica {info.replica_id}"
