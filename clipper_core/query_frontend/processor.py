"""One predict request: pick the model version, run each input as a query under its SLO.

Core spec 3.1-3.3 and 3.8. Each input is an independent query with its own id, its own SLO
deadline (measured from when the request is processed) and its own cache lookup (inside the
gateway). A query always resolves: with the model's output, or with the application's default
output and one of the explanations below.

Which models answer is the application's selection policy's choice (``selection``). A policy
that neither learns nor ensembles (the original's default, the A/B split) picks one model per
request and takes the single-model path below, cache fast path included; a learning or
ensemble policy (Exp3, Exp4) takes :meth:`QueryProcessor.predict_selected`: its state comes
from Redis (cached), every input is its own selection, and an ensemble answers at the deadline
with the members that answered. :meth:`QueryProcessor.update` applies ``/update`` feedback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from time import perf_counter
from typing import Final, NamedTuple, Protocol

from clipper_core.errors import BadRequest, ModelFailed, NoConnectedModels, StateError
from clipper_core.query_frontend.deadlines import DeadlineWaiter
from clipper_core.query_frontend.inputs import FeedbackRequest
from clipper_core.query_frontend.outputs import EmbeddedOutput, embed_output
from clipper_core.query_frontend.registry import AppEntry
from clipper_core.query_frontend.selection import (
    Feedback,
    PolicyStates,
    SelectionPolicy,
    SelectionQuery,
    zero_one_loss,
)
from clipper_core.state import ModelId, PolicyState

__all__ = [
    "FEEDBACK_TIMEOUT_S",
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
# /update recomputes a prediction the cache no longer holds; it waits this long at least (or
# the application's SLO if longer) before giving up on that model's loss.
FEEDBACK_TIMEOUT_S: Final = 1.0
_NO_STATE: Final = PolicyState()


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

    def record_selection(self, app: str, models: tuple[str, ...]) -> None: ...

    def record_ensemble(self, app: str, answered: int, asked: int, is_low_confidence: bool) -> None: ...

    def record_weights(self, app: str, weights: dict[str, float]) -> None: ...

    def record_feedback(self, app: str, is_applied: bool) -> None: ...


class Reply(NamedTuple):
    """The answer to one query; ``default_explanation`` is set iff ``is_default``.

    A named tuple rather than a frozen dataclass: one is built per query, and a frozen
    dataclass's ``__init__`` costs three times as much.
    """

    query_id: int
    output: EmbeddedOutput
    is_default: bool
    default_explanation: str | None = None
    # Ensemble answers only (our extension): weighted agreement, members answered / asked.
    confidence: float | None = None
    members_answered: int | None = None
    members: int | None = None


class QueryProcessor:
    """Turns parsed requests into replies; owns the process-wide query id counter."""

    def __init__(
        self,
        registry: RegistryView,
        gateway: PredictionGateway,
        metrics: AppQueryMetrics,
        state_sync: StateSync | None = None,
        policy_states: PolicyStates | None = None,
    ) -> None:
        self._registry = registry
        self._states = policy_states
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
        policy = app.policy
        if policy is None:
            return None  # refused by check_policy once the inputs are read (the original's order)
        chosen = policy.select(_NO_STATE, SelectionQuery(app.name, 0, self._candidates(links)))
        return chosen[0] if chosen else None

    def _candidates(self, links: tuple[str, ...]) -> tuple[ModelId, ...]:
        """The linked models that have a current version, in link order: what a policy may ask."""
        return tuple(filter(None, map(self._registry.current_model, links)))

    @staticmethod
    def check_policy(app: AppEntry) -> SelectionPolicy:
        """The application's policy.

        Raises:
            BadRequest: the original's text when the record names a policy that does not exist.
        """
        if app.policy is None:
            raise BadRequest(f"{app.info.policy} is an invalid selection_policy.", QUERY_PROCESSING_ERROR)
        return app.policy

    def answer_from_cache(self, app: AppEntry, target: ModelId | None, payloads: list[bytes]) -> Reply | None:
        """The reply to a single-input request whose output is cached, else None (nothing consumed).

        The cache-hit path without a coroutine, a timer or a future: :meth:`predict` answers
        the same, but its SLO timeout alone costs more than the rest of the query.
        """
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
        """
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

    # ------------------------------------------------------------------ learning and ensemble policies

    async def predict_selected(
        self, app: AppEntry, policy: SelectionPolicy, payloads: list[bytes], uid: int = 0
    ) -> list[Reply]:
        """Answer every payload as its own query, each with the policy's own selection.

        An ensemble never waits past the deadline: it combines the members that answered.
        """
        loop = asyncio.get_running_loop()
        start = loop.time()
        deadline = start + app.slo_s
        first_id = self.take_query_ids(len(payloads))
        state = await self._policy_state(app, policy, uid)
        query = SelectionQuery(app.name, uid, self._candidates(self._registry.linked_models(app.name)))
        if not query.candidates:
            await self.catch_up()  # a link made a moment ago may still be on its way
            query = SelectionQuery(app.name, uid, self._candidates(self._registry.linked_models(app.name)))
        if len(payloads) == 1:
            replies = [await self._ask_selected(app, policy, state, query, payloads[0], first_id, deadline)]
        else:
            replies = list(
                await asyncio.gather(
                    *(
                        self._ask_selected(app, policy, state, query, payload, first_id + index, deadline)
                        for index, payload in enumerate(payloads)
                    )
                )
            )
        elapsed = loop.time() - start
        for reply in replies:
            self._metrics.record_app_query(app.name, elapsed, reply.is_default)
        return replies

    async def _policy_state(self, app: AppEntry, policy: SelectionPolicy, uid: int) -> PolicyState:
        if self._states is None or not policy.learns:
            return _NO_STATE
        state = await self._states.current(app.name, policy, uid)
        if uid == 0 and state.weights:
            self._metrics.record_weights(app.name, dict(state.weights))
        return state

    async def _ask_selected(
        self,
        app: AppEntry,
        policy: SelectionPolicy,
        state: PolicyState,
        query: SelectionQuery,
        payload: bytes,
        query_id: int,
        deadline: float,
    ) -> Reply:
        models = policy.select(state, query)
        self._metrics.record_selection(app.name, tuple(m.name for m in models))
        if not models:
            reply = Reply(query_id, app.default_output, True, NO_CONNECTED_MODELS)
            return self._with_ensemble(reply, policy, 0.0, 0, 0)
        gateway = self._gateway
        outputs: dict[ModelId, bytes] = {}
        failures: list[tuple[ModelId, BaseException]] = []
        waiting: dict[ModelId, asyncio.Future[bytes]] = {}
        for model in models:
            raw = gateway.cached_output(model, payload)
            if raw is not None:
                outputs[model] = raw
                continue
            try:
                waiting[model] = gateway.submit(model, payload, deadline)
            except (NoConnectedModels, ModelFailed) as exc:
                failures.append((model, exc))
        try:
            if waiting:
                # Until every member answered or the deadline: stragglers are left out, never awaited.
                await self._wait_all(waiting.values(), deadline)
        except asyncio.CancelledError:
            for model, future in waiting.items():
                if not future.done():
                    gateway.abandon(model, payload, future)
            raise
        is_late = False
        for model, future in waiting.items():
            if not future.done() or future.cancelled():
                is_late = True
                continue
            error = future.exception()
            if error is not None:
                failures.append((model, error))
            else:
                outputs[model] = future.result()
        predictions = {model: outputs[model] for model in models if model in outputs}  # member order
        combined = policy.combine(state, query, predictions)
        if combined.output is not None:
            reply = Reply(query_id, embed_output(combined.output), False)
        elif combined.explanation is not None:
            reply = Reply(query_id, app.default_output, True, combined.explanation)
        elif failures and not is_late:
            failed_model, failure = failures[0]
            reply = self._failed_reply(app, failed_model, query_id, failure)
        else:
            reply = Reply(query_id, app.default_output, True, SLO_MISSED)
        if policy.is_ensemble:
            is_low = combined.output is None and combined.explanation is not None
            self._metrics.record_ensemble(app.name, len(predictions), len(models), is_low)
        return self._with_ensemble(reply, policy, combined.confidence, len(predictions), len(models))

    @staticmethod
    def _with_ensemble(
        reply: Reply, policy: SelectionPolicy, confidence: float, answered: int, asked: int
    ) -> Reply:
        """An ensemble's reply carries its confidence and how many members answered (ours)."""
        if not policy.is_ensemble:
            return reply
        return reply._replace(confidence=confidence, members_answered=answered, members=asked)

    async def update(self, app: AppEntry, feedback: FeedbackRequest) -> bool:
        """Apply one ``/update``; True when it was received (the original's ``Feedback received?``).

        A policy that does not learn answers as the original: True iff ``uid`` is 0. A learning
        policy scores each model it needs (its cached prediction for the input, or a new one)
        against the label and updates its weights atomically in Redis; False when no model's
        prediction could be had or the state could not be written.
        """
        self.take_query_ids(1)  # the original consumes a query id per update
        policy = app.policy
        if policy is None or not policy.learns or self._states is None:
            return feedback.uid == 0
        uid, payload = feedback.uid, feedback.payload
        state = await self._states.current(app.name, policy, uid)
        query = SelectionQuery(app.name, uid, self._candidates(self._registry.linked_models(app.name)))
        gateway = self._gateway
        cached = {
            model: raw
            for model in query.candidates
            if (raw := gateway.cached_output(model, payload)) is not None
        }
        needed = policy.feedback_models(state, query, frozenset(cached))
        outputs = {model: cached[model] for model in needed if model in cached}
        missing = [model for model in needed if model not in cached]
        if missing:
            outputs.update(await self._recompute(app, missing, payload))
        losses = {model.name: zero_one_loss(raw, feedback.label) for model, raw in outputs.items()}
        if not losses:
            self._metrics.record_feedback(app.name, False)
            return False
        scored = Feedback(feedback.label, losses)
        try:
            new = await self._states.observe(
                app.name, policy, uid, lambda old: policy.observe(old, query, scored)
            )
        except StateError as exc:
            logger.warning("Feedback for %s not applied: %s", app.name, exc.cause)
            self._metrics.record_feedback(app.name, False)
            return False
        self._metrics.record_feedback(app.name, True)
        if uid == 0:
            self._metrics.record_weights(app.name, dict(new.weights))
        return True

    async def _recompute(self, app: AppEntry, models: list[ModelId], payload: bytes) -> dict[ModelId, bytes]:
        """Ask ``models`` for the input again (feedback on an input the cache no longer holds)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(app.slo_s, FEEDBACK_TIMEOUT_S)
        waiting: dict[ModelId, asyncio.Future[bytes]] = {}
        for model in models:
            try:
                waiting[model] = self._gateway.submit(model, payload, deadline)
            except (NoConnectedModels, ModelFailed):
                continue  # no loss for a model that cannot answer
        try:
            await self._wait_all(waiting.values(), deadline)
        except asyncio.CancelledError:
            for model, future in waiting.items():
                if not future.done():
                    self._gateway.abandon(model, payload, future)
            raise
        return {
            model: future.result()
            for model, future in waiting.items()
            if future.done() and not future.cancelled() and future.exception() is None
        }
