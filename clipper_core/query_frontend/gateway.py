"""Model gateway: the query processor's single entry to models (cache -> queue -> RPC).

``cached_output`` answers from the prediction cache; on a miss ``submit`` joins an identical
query already in flight or enqueues a new query on the model's earliest-deadline-first
queue, whose replicas batch it to their containers over the RPC service. The caller waits
on the shared future without cancelling it (the processor's ``DeadlineWaiter``): when it
gives up at its SLO the shared work carries on, and a late output still fills the cache for
the next identical query. The composition root (``server.start_gateway``) builds the RPC
service, wires it to the gateway and starts both.

Outcomes seen by the caller: output bytes; :class:`NoConnectedModels` (no queue or no
replica, and no cache hit); :class:`ModelFailed` (container error, crash, removal, model
deleted; :class:`Overloaded` when the model's queue is full, raised by ``submit`` itself);
``TimeoutError`` (:class:`QueryExpired`) if the deadline passed in the queue before the
caller's own timeout fired. A caller that goes away calls ``abandon``: a query nobody waits
for any more leaves its queue and is never sent.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from clipper_core.errors import ModelFailed, NoConnectedModels, Overloaded, StateError
from clipper_core.query_frontend.batching import (
    ModelQueue,
    PendingQuery,
    Replica,
)
from clipper_core.query_frontend.cache import CacheKey, PredictionCache
from clipper_core.query_frontend.futures import BackgroundTasks, fail_unless_done
from clipper_core.query_frontend.metrics import FrontendMetrics, ModelStats
from clipper_core.query_frontend.rpc_service import RpcService
from clipper_core.rpc.stage_trace import TRACE
from clipper_core.settings import DEFAULT_BATCH_RESPONSE_GRACE_S, DEFAULT_MAX_QUEUE_LENGTH
from clipper_core.state import DEFAULT_BATCH_SIZE, ContainerInfo, ModelId, StateStore

__all__ = ["ModelGateway"]

logger = logging.getLogger(__name__)

# How often queues are swept for expired queries; replicas also purge them on every pull,
# the sweep bounds the queue when every replica is busy with a long batch.
EXPIRY_SWEEP_PERIOD_S: Final = 0.01


class _ModelLane:
    """A model's queue with its metrics, so the hot path does one dict lookup."""

    __slots__ = ("queue", "stats")

    def __init__(self, queue: ModelQueue, stats: ModelStats) -> None:
        self.queue = queue
        self.stats = stats


class ModelGateway:
    """Owns the prediction cache, the model queues and the RPC service."""

    def __init__(
        self,
        store: StateStore,
        rpc: RpcService,
        cache_size_bytes: int,
        metrics: FrontendMetrics,
        *,
        batch_wait_s: float = 0.0,
        batch_response_grace_s: float = DEFAULT_BATCH_RESPONSE_GRACE_S,
        max_queue_length: int = DEFAULT_MAX_QUEUE_LENGTH,
    ) -> None:
        """Args:
            store: Redis state (DB 2 batch sizes).
            rpc: the RPC service the replicas send batches over; the gateway closes it in
                :meth:`aclose`. The composition root wires it to the gateway
                (``rpc.listener``) and starts it.
            cache_size_bytes: prediction cache bound.
            metrics: where to record model-side metrics.
            batch_wait_s: delayed batching wait (0 = off).
            batch_response_grace_s: how long after a batch's last deadline an unanswered batch
                fails and its (wedged) replica is dropped until the container registers again.
            max_queue_length: queued queries per model; a query beyond it is shed at once
                (:class:`Overloaded`, answered with the default output).
        """
        self._store = store
        self.batch_response_grace_s = batch_response_grace_s
        self.rpc = rpc
        self.cache: PredictionCache[PendingQuery] = PredictionCache(cache_size_bytes)
        self.metrics = metrics
        self.batch_wait_s = batch_wait_s
        self.max_queue_length = max_queue_length
        self._lanes: dict[ModelId, _ModelLane] = {}
        self._batch_sizes: dict[ModelId, int] = {}
        self._tasks = BackgroundTasks(logger, "Model gateway")
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Start the expiry sweeper; call on the serving loop before replicas can arrive."""
        self._loop = asyncio.get_running_loop()
        self._tasks.spawn(self._sweep_forever())

    async def aclose(self) -> None:
        """Fail queued queries, stop the replicas and the RPC service."""
        closing = ModelFailed("the query frontend is shutting down")
        replicas = [r for lane in self._lanes.values() for r in lane.queue.replicas.values()]
        for lane in self._lanes.values():
            lane.queue.close(closing)
        self._lanes.clear()
        await self.rpc.aclose()
        for replica in replicas:
            await replica.wait_stopped()
        await self._tasks.cancel_all()

    async def __aenter__(self) -> ModelGateway:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ the query path

    def cached_output(self, model: ModelId, payload: bytes) -> bytes | None:
        """The cached output of ``model`` for this input (counted as a cache hit), else None.

        Synchronous, so a hit is answered without a timer, a future or a task switch; a miss
        records nothing (the caller goes on to :meth:`submit`, which counts it).
        """
        output = self.cache.get((model.name, model.version, payload))
        if output is not None:
            lane = self._lanes.get(model)
            self.metrics.record_cache_lookup(lane.stats if lane is not None else None, "hit")
        return output

    def submit(self, model: ModelId, payload: bytes, deadline: float) -> asyncio.Future[bytes]:
        """The shared future of this (uncached) query: an identical one in flight, or a new one.

        Ask :meth:`cached_output` first: this does not look at completed outputs. The future
        is shared with coalesced callers: wait on it without cancelling it (``asyncio.shield``
        or :class:`~clipper_core.query_frontend.deadlines.DeadlineWaiter`). Its outcomes are
        listed in the module docstring.

        Raises:
            NoConnectedModels: no replica of the model and no identical query in flight.
        """
        key: CacheKey = (model.name, model.version, payload)
        cache = self.cache
        lane = self._lanes.get(model)
        pending = cache.get_pending(key)
        if pending is not None:
            self.metrics.record_cache_lookup(lane.stats if lane is not None else None, "coalesced")
            if deadline > pending.latest_deadline:
                pending.latest_deadline = deadline
            pending.waiters += 1
            return pending.future
        if lane is None or not lane.queue.replicas:
            raise NoConnectedModels(f"no connected replica of model {model}")
        if len(lane.queue) >= self.max_queue_length:
            raise Overloaded(
                f"model {model} is overloaded: {self.max_queue_length} queries are already "
                "queued for it (--max_queue_length), so this one was not queued"
            )
        self.metrics.record_cache_lookup(lane.stats, "miss")
        assert self._loop is not None
        future: asyncio.Future[bytes] = self._loop.create_future()
        query = PendingQuery(key, deadline, future, deadline)
        cache.set_pending(key, query)
        lane.queue.put(query)
        if TRACE is not None:
            TRACE.mark("queued")
        return future

    def abandon(self, model: ModelId, payload: bytes, future: asyncio.Future[bytes]) -> None:
        """A caller of :meth:`submit` went away (its client disconnected) before ``future``,
        the one it got, was done.

        When no other caller waits for the query, it leaves its queue and is never sent; one
        already in a batch still fills the cache.
        """
        key: CacheKey = (model.name, model.version, payload)
        pending = self.cache.get_pending(key)
        if pending is None or pending.future is not future or future.done():
            return  # finished, or the key's pending query is a newer one others wait for
        pending.waiters -= 1
        if pending.waiters > 0:
            return
        self.cache.discard_pending(key, pending)
        fail_unless_done(pending.future, ModelFailed("every client waiting for the query went away"))
        lane = self._lanes.get(model)
        if lane is not None:
            lane.queue.abandon(pending)

    # ------------------------------------------------------------------ BatchObserver

    def batch_done(
        self, queue: ModelQueue, batch: list[PendingQuery], outputs: list[bytes], latency_s: float
    ) -> None:
        lane = self._lanes.get(queue.model)
        if lane is None or lane.queue is not queue:
            # The version was removed after this batch was answered: its outputs must not
            # outlive it in the cache (the same name:version may come back as another model).
            return
        put = self.cache.put
        for query, output in zip(batch, outputs, strict=True):
            put(query.key, output)
        self.metrics.record_batch(lane.stats, len(batch), latency_s)

    def queries_dropped(self, queue: ModelQueue, queries: list[PendingQuery]) -> None:
        discard = self.cache.discard_pending
        for query in queries:
            discard(query.key, query)

    # ------------------------------------------------------------------ configuration

    def set_batch_size(self, model: ModelId, batch_size: int) -> None:
        """``-1`` (or any value < 1) = adaptive (AIMD); ``> 0`` = fixed, honoured exactly."""
        if batch_size < 1:
            if batch_size != DEFAULT_BATCH_SIZE:
                logger.warning("Batch size %d of %s is not valid; batching adaptively", batch_size, model)
            batch_size = DEFAULT_BATCH_SIZE
        self._batch_sizes[model] = batch_size
        lane = self._lanes.get(model)
        if lane is not None:
            lane.queue.batch_size = batch_size

    def replica_count(self, model: ModelId) -> int:
        lane = self._lanes.get(model)
        return len(lane.queue.replicas) if lane is not None else 0

    def remove_model(self, model: ModelId) -> None:
        """The version was deleted: fail its queued and in-flight queries, drop its replicas,
        delete their DB 3 records and forget its cached outputs."""
        lane = self._lanes.pop(model, None)
        if lane is not None:
            lane.queue.close(ModelFailed(f"model {model} was removed"))
        self.rpc.retire_model(model)
        purged = self.cache.purge_model(model.name, model.version)
        if purged:
            logger.info("Forgot %d cached outputs of %s", purged, model)
        self._batch_sizes.pop(model, None)
        self.metrics.remove_model(str(model))

    # ------------------------------------------------------------------ ReplicaListener

    async def replica_added(self, info: ContainerInfo) -> None:
        model = info.model_id
        lane = self._lanes.get(model)
        if lane is None:
            batch_size = await self._initial_batch_size(model)
            lane = self._lanes.get(model)  # another replica may have created it meanwhile
            if lane is None:
                lane = self._create_lane(model, batch_size)
        replica = Replica(
            lane.queue,
            info.replica_id,
            info.zmq_connection_id,
            info.input_type,
            self.rpc,
            response_grace_s=self.batch_response_grace_s,
        )
        lane.queue.add_replica(replica)

    def replica_removed(self, info: ContainerInfo) -> None:
        lane = self._lanes.get(info.model_id)
        if lane is None:
            return
        lane.queue.remove_replica(info.zmq_connection_id)
        self._fail_queued_if_unserved(lane.queue, info.model_id)
        if not lane.queue.replicas:
            self._tasks.spawn(self._forget_if_unregistered(info.model_id, lane.queue))

    def replica_draining(self, info: ContainerInfo) -> None:
        lane = self._lanes.get(info.model_id)
        if lane is None:
            return
        lane.queue.retire_replica(info.zmq_connection_id)
        self._fail_queued_if_unserved(lane.queue, info.model_id)

    def _fail_queued_if_unserved(self, queue: ModelQueue, model: ModelId) -> None:
        if not queue.replicas:
            # Nobody is left to take them: answer now rather than at the SLO.
            failed = queue.fail_queued(ModelFailed(f"no model container of {model} is left to answer"))
            if failed:
                logger.warning("Failed %d queued queries of %s: no replica left", failed, model)

    async def _forget_if_unregistered(self, model: ModelId, queue: ModelQueue) -> None:
        """The last replica of a model that is not registered (DB 2) left: drop its queue and
        its metric series, so registrations under made-up names leave nothing behind."""
        try:
            if await self._store.model_exists(model.name, model.version):
                return
        except StateError as exc:
            logger.debug("Could not check whether %s is registered: %s", model, exc.cause)
            return
        lane = self._lanes.get(model)
        if lane is None or lane.queue is not queue or queue.replicas:
            return  # replaced, or a replica came back meanwhile
        del self._lanes[model]
        queue.close(ModelFailed(f"model {model} is not registered and has no replica left"))
        self.metrics.remove_model(str(model))
        logger.info("Forgot model %s: not registered and no replica left", model)

    async def _initial_batch_size(self, model: ModelId) -> int:
        known = self._batch_sizes.get(model)
        if known is not None:
            return known
        try:
            record = await self._store.get_model(model.name, model.version)
        except StateError as exc:
            logger.error("Could not read the batch size of %s, batching adaptively: %s", model, exc.cause)
            return DEFAULT_BATCH_SIZE
        if record is None or record.batch_size < 1:
            return DEFAULT_BATCH_SIZE
        return record.batch_size

    def _create_lane(self, model: ModelId, batch_size: int) -> _ModelLane:
        queue = ModelQueue(model, batch_size, observer=self, batch_wait_s=self.batch_wait_s)
        stats = self.metrics.add_model(str(model), lambda: (len(queue), queue.inflight_batches))
        lane = self._lanes[model] = _ModelLane(queue, stats)
        logger.info("Model %s is now served (batch size %s)", model, batch_size)
        return lane

    # ------------------------------------------------------------------ housekeeping

    async def _sweep_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(EXPIRY_SWEEP_PERIOD_S)
            now = loop.time()
            for lane in list(self._lanes.values()):
                lane.queue.expire_overdue(now)
