"""One predict request: pick the model version, run each input as a query under its SLO.

Core spec 3.1-3.3 and 3.8. Each input is an independent query with its own id, its own SLO
deadline (measured from when the request is processed) and its own cache lookup (inside the
gateway). A query always resolves: with the model's output, or with the application's default
output and one of the explanations below.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from time import perf_counter
from typing import Final, NamedTuple, Protocol

from clipper_core.errors import BadRequest, ModelFailed, NoConnectedModels
from clipper_core.query_frontend.deadlines import DeadlineWaiter
from clipper_core.query_frontend.outputs import EmbeddedOutput, embed_output
from clipper_core.query_frontend.registry import AppEntry
from clipper_core.state import DEFAULT_SELECTION_POLICY, ModelId

__all__ = [
    "NO_CONNECTED_MODELS",
    "QUERY_PROCESSING_ERROR",
    "SLO_MISSED",
    "AppQueryMetrics",
    "PredictionGateway",
    "QueryProcessor",
    "RegistryView",
    "Reply",
    "StateSync",
]

logger = logging.getLogger(__name__)

# The original's two default explanations, verbatim (core spec 2.2).
NO_CONNECTED_MODELS: Final = "No connected models found for query"
SLO_MISSED: Final = "Failed to retrieve a prediction response within the specified latency SLO"
QUERY_PROCESSING_ERROR: Final = "Query processing error"
# A batch request queues this many inputs per loop turn; other requests run in between.
SUBMIT_CHUNK: Final = 128


class PredictionGateway(Protocol):
    """The model side as the processor uses it (``gateway.ModelGateway``)."""

    def cached_output(self, model: ModelId, payload: bytes) -> bytes | None: ...

    def submit(self, model: ModelId, payload: bytes, deadline: float) -> asyncio.Future[bytes]: ...

    def abandon(self, model: ModelId, payload: bytes, future: asyncio.Future[bytes]) -> None: ...


class RegistryView(Protocol):
    """The registry's query-path reads (``registry.Registry``)."""

    def app(self, name: str) -> AppEntry | None: ...

    def linked_models(self, app_name: str) -> tuple[str, ...]: ...

    def current_model(self, model_name: str) -> ModelId | None: ...

    def has_version(self, model_name: str, version: str) -> bool: ...


class StateSync(Protocol):
    """Waits until every state change made before the call is in the registry (``freshness``)."""

    async def wait(self) -> None: ...


class _AlreadyFresh:
    async def wait(self) -> None:
        return None


class AppQueryMetrics(Protocol):
    def record_app_query(self, app: str, latency_s: float, is_default: bool) -> None: ...


class Reply(NamedTuple):
    """The answer to one query; ``default_explanation`` is set iff ``is_default``.

    A named tuple rather than a frozen dataclass: one is built per query, and a frozen
    dataclass's ``__init__`` costs three times as much.
    """

    query_id: int
    output: EmbeddedOutput
    is_default: bool
    default_explanation: str | None = None


class QueryProcessor:
    """Turns parsed requests into replies; owns the process-wide query id counter."""

    def __init__(
        self,
        registry: RegistryView,
        gateway: PredictionGateway,
        metrics: AppQueryMetrics,
        state_sync: StateSync | None = None,
    ) -> None:
        self._registry = registry
        self._state_sync = state_sync or _AlreadyFresh()
        self._gateway = gateway
        self._metrics = metrics
        self._next_query_id = 0
        self._deadlines = DeadlineWaiter()

    def find_app(self, name: str) -> AppEntry | None:
        return self._registry.app(name)

    async def catch_up(self) -> None:
        """Wait until the registry holds every change made before now (read-your-writes).

        The query path calls this only before an answer that a just-finished admin call could
        change: an unknown application, or an application with no model to ask.
        """
        await self._state_sync.wait()

    def take_query_ids(self, count: int = 1) -> int:
        """Reserve ``count`` consecutive ids (one per query, one per update request)."""
        first = self._next_query_id
        self._next_query_id = first + count
        return first

    def resolve_target(self, app: AppEntry, version: str | None) -> ModelId | None:
        """The model version to query, or None when there is none (-> default output).

        Raises:
            BadRequest: ``Query processing error`` with the original's texts for an explicit
                ``version`` that cannot be honoured.
        """
        links = self._registry.linked_models(app.name)
        if version is not None:
            if len(links) > 1:
                raise BadRequest(f"Too many models linked to application {app.name}", QUERY_PROCESSING_ERROR)
            if not links:
                # The original reads past an empty list here; we answer like an unlinked app.
                return None
            if not self._registry.has_version(links[0], version):
                raise BadRequest(
                    f"Requested version: {version} does not exist for model: {links[0]}",
                    QUERY_PROCESSING_ERROR,
                )
            return ModelId(links[0], version)
        for name in links:  # the first linked model with a current version wins
            model = self._registry.current_model(name)
            if model is not None:
                return model
        return None

    def answer_from_cache(self, app: AppEntry, target: ModelId | None, payloads: list[bytes]) -> Reply | None:
        """The reply to a single-input request whose output is cached, else None (nothing consumed).

        The cache-hit path without a coroutine, a timer or a future: :meth:`predict` answers
        the same, but its SLO timeout alone costs more than the rest of the query.

        Raises:
            BadRequest: as :meth:`predict`.
        """
        if app.info.policy != DEFAULT_SELECTION_POLICY:
            raise BadRequest(f"{app.info.policy} is an invalid selection_policy.", QUERY_PROCESSING_ERROR)
        if target is None or len(payloads) != 1:
            return None
        start = perf_counter()
        raw = self._gateway.cached_output(target, payloads[0])
        if raw is None:
            return None
        query_id = self._next_query_id
        self._next_query_id = query_id + 1
        reply = Reply(query_id, embed_output(raw), False)
        self._metrics.record_app_query(app.name, perf_counter() - start, False)
        return reply

    async def predict(
        self, app: AppEntry, target: ModelId | None, payloads: list[bytes], *, cache_checked: bool = False
    ) -> list[Reply]:
        """Answer every payload as its own query, in input order.

        ``cache_checked``: :meth:`answer_from_cache` just declined this request, so a single
        input is known to be uncached (saves a second lookup on the miss path).

        Raises:
            BadRequest: the application's selection policy is not the one policy that exists.
        """
        if app.info.policy != DEFAULT_SELECTION_POLICY:
            raise BadRequest(f"{app.info.policy} is an invalid selection_policy.", QUERY_PROCESSING_ERROR)
        loop = asyncio.get_running_loop()
        start = loop.time()
        deadline = start + app.slo_s
        first_id = self.take_query_ids(len(payloads))
        if len(payloads) == 1:  # the common case: no gather, no extra task, one frame fewer
            reply = await self._ask_model(app, target, payloads[0], first_id, deadline, not cache_checked)
            self._metrics.record_app_query(app.name, loop.time() - start, reply.is_default)
            return [reply]
        return await self._predict_many(app, target, payloads, first_id, start, deadline)

    async def _predict_many(
        self,
        app: AppEntry,
        target: ModelId | None,
        payloads: list[bytes],
        first_id: int,
        start: float,
        deadline: float,
    ) -> list[Reply]:
        """A batch without a coroutine per input: each input is looked up and queued in turn,
        yielding to the loop every ``SUBMIT_CHUNK`` inputs so other clients are served between,
        then one wait covers every shared future until the deadline."""
        loop = asyncio.get_running_loop()
        count = len(payloads)
        replies: list[Reply | None] = [None] * count
        waiting: dict[int, asyncio.Future[bytes]] = {}
        if target is None:
            default = app.default_output
            replies = [Reply(first_id + i, default, True, NO_CONNECTED_MODELS) for i in range(count)]
        else:
            gateway = self._gateway
            try:
                for index, payload in enumerate(payloads):
                    if index and not index % SUBMIT_CHUNK:
                        await asyncio.sleep(0)
                    raw = gateway.cached_output(target, payload)
                    if raw is not None:
                        replies[index] = Reply(first_id + index, embed_output(raw), False)
                        continue
                    try:
                        waiting[index] = gateway.submit(target, payload, deadline)
                    except (NoConnectedModels, ModelFailed) as exc:
                        replies[index] = self._failed_reply(app, target, first_id + index, exc)
                if waiting:
                    await self._wait_all(waiting.values(), deadline)
            except asyncio.CancelledError:
                # The client went away: its queries leave the queues unless others wait too.
                for index, future in waiting.items():
                    if not future.done():
                        gateway.abandon(target, payloads[index], future)
                raise
            for index, future in waiting.items():
                replies[index] = self._reply_to(app, target, first_id + index, future)
        elapsed = loop.time() - start
        record = self._metrics.record_app_query
        done: list[Reply] = []
        for reply in replies:
            assert reply is not None
            record(app.name, elapsed, reply.is_default)
            done.append(reply)
        return done

    async def _wait_all(self, futures: Iterable[asyncio.Future[bytes]], deadline: float) -> None:
        """Until every future is done or the deadline passes; never cancels them (they are shared)."""
        pending = [future for future in futures if not future.done()]
        if not pending:
            return
        all_done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        left = len(pending)

        def one_done(_: asyncio.Future[bytes]) -> None:
            nonlocal left
            left -= 1
            if left == 0 and not all_done.done():
                all_done.set_result(None)

        for future in pending:
            future.add_done_callback(one_done)
        try:
            await self._deadlines.until(all_done, deadline)
        except TimeoutError:
            pass
        finally:
            for future in pending:
                if not future.done():
                    future.remove_done_callback(one_done)

    def _reply_to(
        self, app: AppEntry, target: ModelId, query_id: int, future: asyncio.Future[bytes]
    ) -> Reply:
        """The reply for a shared future after the wait: its outcome, or the SLO default."""
        if not future.done() or future.cancelled():
            return Reply(query_id, app.default_output, True, SLO_MISSED)
        exc = future.exception()
        if exc is None:
            return Reply(query_id, embed_output(future.result()), False)
        return self._failed_reply(app, target, query_id, exc)

    def _failed_reply(self, app: AppEntry, target: ModelId, query_id: int, exc: BaseException) -> Reply:
        if isinstance(exc, TimeoutError):
            return Reply(query_id, app.default_output, True, SLO_MISSED)
        if isinstance(exc, NoConnectedModels):
            return Reply(query_id, app.default_output, True, NO_CONNECTED_MODELS)
        if isinstance(exc, ModelFailed):
            # Our extension: answer at once and say why, instead of waiting out the SLO.
            return Reply(query_id, app.default_output, True, exc.explanation or SLO_MISSED)
        # The original reports an errored task as an SLO miss; we do too, and log the bug once.
        logger.error("Query %d to %s failed unexpectedly", query_id, target, exc_info=exc)
        return Reply(query_id, app.default_output, True, SLO_MISSED)

    async def _ask_model(
        self,
        app: AppEntry,
        target: ModelId | None,
        payload: bytes,
        query_id: int,
        deadline: float,
        look_in_cache: bool = True,
    ) -> Reply:
        if target is None:
            return Reply(query_id, app.default_output, True, NO_CONNECTED_MODELS)
        if look_in_cache:
            # A cache hit needs no deadline wait, no future and no task switch.
            raw = self._gateway.cached_output(target, payload)
            if raw is not None:
                return Reply(query_id, embed_output(raw), False)
        try:
            # The future is shared (coalesced callers, the cache): the waiter stops only our
            # wait at the deadline, and a late output still fills the cache.
            shared = self._gateway.submit(target, payload, deadline)
            raw = await self._deadlines.until(shared, deadline)
        except asyncio.CancelledError:
            # The client went away: the query leaves its queue unless others wait for it too.
            self._gateway.abandon(target, payload, shared)
            raise
        except Exception as exc:
            return self._failed_reply(app, target, query_id, exc)
        return Reply(query_id, embed_output(raw), False)
