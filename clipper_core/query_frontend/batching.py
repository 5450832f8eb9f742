"""Per-model query queues and per-replica batchers, with AIMD adaptive batch sizes.

One :class:`ModelQueue` per versioned model holds its queued queries in earliest-deadline-
first order and is shared by the model's replicas. Each :class:`Replica` runs one loop:
take a batch when free, send it as one RPC request, wait for the answer, repeat, so a
replica never has more than one batch in flight. A batch is whatever is queued when the
replica becomes free, up to its size limit (optionally after a short fill wait, off by
default).

Batch size limit per replica: the model's fixed ``batch_size`` when > 0 (honoured exactly),
otherwise :class:`AimdPolicy` (``batch_size == DEFAULT_BATCH_SIZE``, -1): start at 1, grow by ``AIMD_STEP``
after a *full* batch whose latency stayed within the target, multiply by ``AIMD_BACKOFF``
(0.9) after a batch that exceeded it. Growth needs a full batch because a partial batch
says nothing about a larger one; without that rule the limit would climb unchecked at low
load and the first burst would blow the SLO. The latency target is
``AIMD_TARGET_FRACTION`` (0.5) of the remaining budget of the batch's most urgent query at
send time: the rest is left for queueing behind the batch, the HTTP response and noise.
In steady state with batch latency L a query waits about L and then takes L, so the target
keeps ``2 L`` within about two thirds of the SLO.

Overload: a replica passes its moving-average batch latency to ``take_batch``; queries with
less time left than that cannot be answered in time and are dropped while feasible ones are
queued (plain EDF would otherwise serve only the queries about to miss). When nothing
feasible is queued they are sent anyway, as the original would, so late outputs still fill
the cache.

Every query future is resolved on every path: a result, ModelFailed (container error,
crash, model removed), or :class:`QueryExpired` when its deadline passes in the queue
(the caller's own SLO timeout normally fires first and the gateway's sweeper makes sure
expired queries leave a queue even when no replica pulls).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections import deque
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from clipper_core.errors import ContainerGone, ModelFailed, QueryExpired
from clipper_core.query_frontend.cache import CacheKey
from clipper_core.query_frontend.futures import fail_unless_done
from clipper_core.rpc import InputType
from clipper_core.rpc.stage_trace import TRACE
from clipper_core.settings import DEFAULT_BATCH_RESPONSE_GRACE_S
from clipper_core.state import DEFAULT_BATCH_SIZE, ModelId

__all__ = [
    "AIMD_BACKOFF",
    "AIMD_MAX_BATCH_SIZE",
    "AIMD_STEP",
    "AIMD_TARGET_FRACTION",
    "AimdPolicy",
    "BatchObserver",
    "BatchSender",
    "ModelQueue",
    "PendingQuery",
    "QueueClosed",
    "Replica",
    "latency_target_s",
    "resolve_failed",
]

logger = logging.getLogger(__name__)

AIMD_BACKOFF: Final = 0.9
AIMD_STEP: Final = 1.0
AIMD_MAX_BATCH_SIZE: Final = 4096
AIMD_TARGET_FRACTION: Final = 0.5
LATENCY_EWMA_ALPHA: Final = 0.3
# Abandoned entries tolerated in a queue's heap before it is rebuilt without them.
ABANDONED_COMPACT_MIN: Final = 64


class QueueClosed(Exception):
    """The model queue was closed (its model version was removed)."""


class AimdPolicy:
    """Additive-increase / multiplicative-decrease batch size limit of one replica (pure)."""

    __slots__ = ("backoff", "limit", "max_batch_size", "step")

    def __init__(
        self,
        step: float = AIMD_STEP,
        backoff: float = AIMD_BACKOFF,
        max_batch_size: int = AIMD_MAX_BATCH_SIZE,
    ) -> None:
        if step <= 0:
            raise ValueError(f"AIMD step must be > 0, got {step}")
        if not 0 < backoff < 1:
            raise ValueError(f"AIMD backoff must be in (0, 1), got {backoff}")
        if max_batch_size < 1:
            raise ValueError(f"AIMD max batch size must be >= 1, got {max_batch_size}")
        self.step = step
        self.backoff = backoff
        self.max_batch_size = max_batch_size
        self.limit = 1.0

    @property
    def batch_size(self) -> int:
        """The largest batch to take now (always >= 1)."""
        return max(1, int(self.limit))

    def record(self, batch_size: int, latency_s: float, target_s: float) -> None:
        """Adjust the limit after a batch of ``batch_size`` took ``latency_s`` (target ``target_s``)."""
        if latency_s > target_s:
            self.limit = max(1.0, self.limit * self.backoff)
        elif batch_size >= self.batch_size:
            self.limit = min(float(self.max_batch_size), self.limit + self.step)


def latency_target_s(head_deadline: float, now: float) -> float:
    """AIMD latency target for a batch whose most urgent query is due at ``head_deadline``."""
    return max(0.0, head_deadline - now) * AIMD_TARGET_FRACTION


@dataclass(slots=True, eq=False)
class PendingQuery:
    """A query waiting for its model; identical later queries share it (cache coalescing)."""

    key: CacheKey
    deadline: float
    future: asyncio.Future[bytes]
    # Coalesced callers may have later deadlines; the query expires after the last one.
    latest_deadline: float
    # Callers still waiting (coalesced ones included); at 0 the query is abandoned.
    waiters: int = 1
    # Out of the queue, in a batch (abandoning it then leaves nothing to remove).
    is_taken: bool = False


class BatchSender(Protocol):
    def send_batch(
        self, connection_id: int, input_type: InputType, inputs: Sequence[bytes]
    ) -> Awaitable[list[bytes]]: ...

    def abandon(self, connection_id: int, reason: str) -> None:
        """Stop using a wedged connection (its container may register again)."""


class BatchObserver(Protocol):
    """Sees every batch outcome before the callers do (cache fill, metrics)."""

    def batch_done(
        self, queue: ModelQueue, batch: list[PendingQuery], outputs: list[bytes], latency_s: float
    ) -> None: ...

    def queries_dropped(self, queue: ModelQueue, queries: list[PendingQuery]) -> None: ...


def resolve_failed(queries: Sequence[PendingQuery], exc: BaseException) -> None:
    """Fail every unresolved future, marked retrieved (its callers may have timed out)."""
    for query in queries:
        fail_unless_done(query.future, exc)


class ModelQueue:
    """Earliest-deadline-first queue of one versioned model, shared by its replicas."""

    def __init__(
        self,
        model: ModelId,
        batch_size: int = DEFAULT_BATCH_SIZE,
        observer: BatchObserver | None = None,
        batch_wait_s: float = 0.0,
    ) -> None:
        self.model = model
        self.batch_size = batch_size
        self.observer = observer
        self.batch_wait_s = batch_wait_s
        self.inflight_batches = 0
        self.is_closed = False
        self.replicas: dict[int, Replica] = {}
        self._heap: list[tuple[float, int, PendingQuery]] = []
        self._sequence = itertools.count()
        self._waiters: deque[asyncio.Future[None]] = deque()
        # Entries whose callers all went away, still in the heap (lazy deletion).
        self._abandoned = 0

    def __len__(self) -> int:
        """Queued queries someone still waits for."""
        return max(0, len(self._heap) - self._abandoned)

    @property
    def has_replicas(self) -> bool:
        return bool(self.replicas)

    # ------------------------------------------------------------------ producers

    def put(self, query: PendingQuery) -> None:
        query.is_taken = False
        heapq.heappush(self._heap, (query.deadline, next(self._sequence), query))
        if self._waiters:
            self._wake_one()

    def abandon(self, query: PendingQuery) -> None:
        """Every caller of ``query`` went away; its future is done, so it is never sent.

        Removed lazily: ``_pop`` skips it; once abandoned entries are half the heap, the heap is
        rebuilt without them, so memory follows the live entries.
        """
        if query.is_taken:
            return  # already in a batch: its output will still fill the cache
        self._abandoned += 1
        heap = self._heap
        if self._abandoned > ABANDONED_COMPACT_MIN and 2 * self._abandoned > len(heap):
            heap[:] = [entry for entry in heap if not entry[2].future.done()]
            heapq.heapify(heap)
            self._abandoned = 0

    def _skip_done(self) -> None:
        if self._abandoned:
            self._abandoned -= 1

    def _wake_one(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    # ------------------------------------------------------------------ consumers

    async def take_batch(self, limit: int, min_budget_s: float = 0.0) -> list[PendingQuery]:
        """Wait for queued queries and take up to ``limit`` of them, most urgent first.

        ``min_budget_s``: the caller's expected batch latency (see ``_pop``).

        Raises:
            QueueClosed: the queue was closed (before or while waiting).
        """
        while True:
            if self.is_closed:
                raise QueueClosed(str(self.model))
            batch = self._pop(limit, min_budget_s)
            if batch:
                if self.batch_wait_s > 0 and len(batch) < limit:
                    await self._top_up(batch, limit, min_budget_s)
                    if not batch:
                        continue  # every caller went away during the wait
                if self._heap and self._waiters:
                    self._wake_one()  # more queued than this replica took: let another pull
                return batch
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled() and self._heap:
                    self._wake_one()  # we were woken and are going away: pass the wake-up on
                raise

    async def _top_up(self, batch: list[PendingQuery], limit: int, min_budget_s: float) -> None:
        """Delayed batching: wait ``batch_wait_s`` once, then fill the batch from the queue."""
        try:
            await asyncio.sleep(self.batch_wait_s)
        except asyncio.CancelledError:
            for query in batch:
                self.put(query)  # nothing was sent yet: give the queries back
            raise
        if self.is_closed:
            self._drop(batch, ModelFailed(f"model {self.model} was removed"))
            raise QueueClosed(str(self.model))
        batch[:] = [query for query in batch if not query.future.done()]  # abandoned meanwhile
        batch.extend(self._pop(limit - len(batch), min_budget_s))

    def _pop(self, limit: int, min_budget_s: float = 0.0) -> list[PendingQuery]:
        """Take up to ``limit`` live queries in deadline order.

        Expired queries are dropped. With ``min_budget_s`` (the replica's expected batch
        latency), queries that cannot be answered before their deadline are *hopeless*:
        they are dropped when a feasible query exists (under overload, EDF would otherwise
        spend the model on queries that all miss), and sent as usual when nothing else is
        queued (so a model slower than the SLO still fills the cache, as in the original).
        """
        heap = self._heap
        if not heap:
            return []
        now = asyncio.get_running_loop().time()
        cutoff = now + min_budget_s
        batch: list[PendingQuery] = []
        expired: list[PendingQuery] = []
        hopeless: list[PendingQuery] = []
        while heap and len(batch) < limit:
            deadline, _, query = heapq.heappop(heap)
            if query.future.done():
                self._skip_done()
                continue
            if deadline < cutoff or deadline <= now:
                # Judge by the last caller's deadline: a coalesced caller may wait longer.
                last = query.latest_deadline
                if last <= now:
                    expired.append(query)
                elif last < cutoff:
                    query.deadline = last
                    hopeless.append(query)
                else:
                    query.deadline = last
                    heapq.heappush(heap, (last, next(self._sequence), query))
                continue
            batch.append(query)
        if hopeless:
            if batch:
                expired.extend(hopeless)
            else:
                batch = hopeless[:limit]
                for query in hopeless[limit:]:
                    heapq.heappush(heap, (query.deadline, next(self._sequence), query))
        if expired:
            self._drop(expired, QueryExpired("the deadline passed before a replica took the query"))
        for query in batch:
            query.is_taken = True
        return batch

    def expire_overdue(self, now: float) -> int:
        """Drop queries whose deadline has passed (called periodically); returns how many."""
        heap = self._heap
        expired: list[PendingQuery] = []
        while heap and heap[0][0] <= now:
            _, _, query = heapq.heappop(heap)
            if query.future.done():
                self._skip_done()
                continue
            if query.latest_deadline > now:
                query.deadline = query.latest_deadline
                heapq.heappush(heap, (query.deadline, next(self._sequence), query))
            else:
                expired.append(query)
        if expired:
            self._drop(expired, QueryExpired("the deadline passed before a replica took the query"))
        return len(expired)

    # ------------------------------------------------------------------ outcomes

    def complete(self, batch: list[PendingQuery], outputs: list[bytes], latency_s: float) -> None:
        if self.observer is not None:
            self.observer.batch_done(self, batch, outputs, latency_s)
        for query, output in zip(batch, outputs, strict=True):
            future = query.future
            if not future.done():
                future.set_result(output)

    def fail(self, batch: list[PendingQuery], exc: BaseException) -> None:
        self._drop(batch, exc)

    def _drop(self, queries: list[PendingQuery], exc: BaseException) -> None:
        if self.observer is not None:
            self.observer.queries_dropped(self, queries)
        resolve_failed(queries, exc)

    # ------------------------------------------------------------------ replicas and lifecycle

    def add_replica(self, replica: Replica) -> None:
        self.replicas[replica.connection_id] = replica
        replica.start()

    def remove_replica(self, connection_id: int) -> Replica | None:
        replica = self.replicas.pop(connection_id, None)
        if replica is not None:
            replica.stop()
        return replica

    def retire_replica(self, connection_id: int) -> Replica | None:
        """Take a replica out of rotation; the batch it holds, if any, completes as usual."""
        replica = self.replicas.pop(connection_id, None)
        if replica is not None:
            replica.finish()
        return replica

    def fail_queued(self, exc: BaseException) -> int:
        """Fail every queued (not yet sent) query with ``exc``; returns how many."""
        queued = [entry[2] for entry in self._heap if not entry[2].future.done()]
        self._heap.clear()
        self._abandoned = 0
        if queued:
            self._drop(queued, exc)
        return len(queued)

    def close(self, exc: BaseException) -> None:
        """Fail every queued query with ``exc``, stop the replicas, refuse further batches."""
        self.is_closed = True
        self.fail_queued(exc)
        for replica in list(self.replicas.values()):
            replica.stop()
        self.replicas.clear()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)


class Replica:
    """One connected container of a model: pulls a batch when free, sends it, repeats."""

    def __init__(
        self,
        queue: ModelQueue,
        replica_id: int,
        connection_id: int,
        input_type: InputType,
        sender: BatchSender,
        policy: AimdPolicy | None = None,
        response_grace_s: float = DEFAULT_BATCH_RESPONSE_GRACE_S,
    ) -> None:
        self.queue = queue
        self.response_grace_s = response_grace_s
        self.replica_id = replica_id
        self.connection_id = connection_id
        self.input_type = input_type
        self.sender = sender
        self.policy = policy if policy is not None else AimdPolicy()
        self.batches_sent = 0
        self._task: asyncio.Task[None] | None = None
        self._is_stopping = False
        self._is_sending = False
        # Moving average of this replica's batch latency: queries with less time left than
        # this are not worth sending while others can still be answered in time.
        self.latency_estimate_s = 0.0

    def batch_limit(self) -> int:
        fixed = self.queue.batch_size
        return fixed if fixed > 0 else self.policy.batch_size

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"replica {self.queue.model} {self.replica_id}"
            )
            self._task.add_done_callback(self._task_done)

    def stop(self) -> None:
        """Stop pulling. A batch in flight keeps its outcome if it is already known."""
        self._is_stopping = True
        if self._task is None or self._task.done():
            return
        if self._is_sending:
            # The RPC layer fails the in-flight batch (with the real reason) before it tells
            # us the container is gone; cancelling now would replace that reason. Cancel on
            # the next loop turn instead, which only matters if nobody resolved the batch.
            asyncio.get_running_loop().call_soon(self._cancel)
        else:
            self._task.cancel()

    def finish(self) -> None:
        """Stop pulling after the batch in flight, whose outcome is kept (a draining container)."""
        self._is_stopping = True
        if self._task is not None and not self._task.done() and not self._is_sending:
            self._task.cancel()  # waiting for work: nothing taken yet (take_batch hands it on)

    def _cancel(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def wait_stopped(self) -> None:
        if self._task is not None:
            await asyncio.wait([self._task])

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "Batcher of %s replica %d crashed", self.queue.model, self.replica_id,
                exc_info=task.exception(),
            )

    def _give_up_wedged(self, batch: list[PendingQuery]) -> None:
        queue = self.queue
        reason = (
            f"did not answer a batch of {len(batch)} within {self.response_grace_s:g} s "
            "after its last deadline (wedged)"
        )
        logger.warning("Replica %d of %s %s; taking it out of rotation", self.replica_id, queue.model, reason)
        queue.fail(batch, ModelFailed(f"replica {self.replica_id} of {queue.model} {reason}"))
        if queue.replicas.get(self.connection_id) is self:
            del queue.replicas[self.connection_id]
        self.sender.abandon(self.connection_id, reason)

    async def _run(self) -> None:
        queue = self.queue
        loop = asyncio.get_running_loop()
        while not self._is_stopping:
            try:
                batch = await queue.take_batch(self.batch_limit(), self.latency_estimate_s)
            except QueueClosed:
                return
            if TRACE is not None:
                TRACE.mark("replica_woke")
            sent_at = loop.time()
            target_s = latency_target_s(batch[0].deadline, sent_at)
            queue.inflight_batches += 1
            self._is_sending = True
            give_up_at = max(query.latest_deadline for query in batch) + self.response_grace_s
            try:
                async with asyncio.timeout_at(give_up_at) as response_timeout:
                    outputs = await self.sender.send_batch(
                        self.connection_id, self.input_type, [query.key[2] for query in batch]
                    )
            except TimeoutError as exc:
                if response_timeout.expired():
                    self._give_up_wedged(batch)
                    return
                logger.exception("Sending a batch to %s replica %d failed", queue.model, self.replica_id)
                queue.fail(batch, ModelFailed(f"internal error while sending the batch: {exc}"))
                continue
            except ContainerGone as exc:
                queue.fail(batch, exc)
                if queue.replicas.get(self.connection_id) is self:
                    del queue.replicas[self.connection_id]  # never pull for a dead connection
                return
            except ModelFailed as exc:
                queue.fail(batch, exc)
                continue
            except asyncio.CancelledError:
                queue.fail(batch, ModelFailed(f"replica {self.replica_id} of {queue.model} was removed"))
                raise
            except Exception as exc:
                logger.exception("Sending a batch to %s replica %d failed", queue.model, self.replica_id)
                queue.fail(batch, ModelFailed(f"internal error while sending the batch: {exc}"))
                continue
            finally:
                queue.inflight_batches -= 1
                self._is_sending = False
            if TRACE is not None:
                TRACE.mark("batch_resumed")
            latency_s = loop.time() - sent_at
            self.batches_sent += 1
            estimate = self.latency_estimate_s
            self.latency_estimate_s = (
                latency_s if estimate == 0.0 else estimate + LATENCY_EWMA_ALPHA * (latency_s - estimate)
            )
            if queue.batch_size <= 0:
                self.policy.record(len(batch), latency_s, target_s)
            queue.complete(batch, outputs, latency_s)
