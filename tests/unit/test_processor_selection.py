"""The processor on learning and ensemble policies (issue 15): ensembles at the deadline, low
confidence, feedback. In-test stand-ins for the gateway and the state store (no sockets here)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import orjson
import pytest

from clipper_core.errors import ModelFailed
from clipper_core.query_frontend.inputs import FeedbackRequest
from clipper_core.query_frontend.processor import SLO_MISSED, QueryProcessor
from clipper_core.query_frontend.selection import SelectionPolicy
from clipper_core.state import ModelId, PolicyState
from tests.unit.test_processor import RecordingMetrics, StaticRegistry, scripted_future

A, B, C = ModelId("a", "1"), ModelId("b", "1"), ModelId("c", "1")
SLO_US = 50_000
# What "a straggler never delays the answer past the SLO" allows on top of the SLO.
SLACK_S = 0.005


class ModelGateway:
    """Answers per model: bytes -> output, an exception -> raised, "hang" -> never answers."""

    def __init__(self, script: dict[ModelId, object]) -> None:
        self.script = script
        self.cached: dict[tuple[ModelId, bytes], bytes] = {}
        self.calls: list[tuple[ModelId, bytes]] = []
        self.abandoned: list[ModelId] = []

    def cached_output(self, model: ModelId, payload: bytes) -> bytes | None:
        return self.cached.get((model, payload))

    def submit(self, model: ModelId, payload: bytes, deadline: float) -> asyncio.Future[bytes]:
        self.calls.append((model, payload))
        action = self.script[model]
        if isinstance(action, bytes):
            self.cached[(model, payload)] = action
        return scripted_future(action)

    def abandon(self, model: ModelId, payload: bytes, future: asyncio.Future[bytes]) -> None:
        self.abandoned.append(model)


class MemoryStates:
    """PolicyStates' interface over a dict (the Redis-backed one is tested in integration)."""

    def __init__(self) -> None:
        self.states: dict[tuple[str, int, str], PolicyState] = {}

    async def current(self, app: str, policy: SelectionPolicy, uid: int = 0) -> PolicyState:
        return self.states.get((app, uid, policy.name), PolicyState())

    async def observe(
        self, app: str, policy: SelectionPolicy, uid: int, update: Callable[[PolicyState], PolicyState]
    ) -> PolicyState:
        new = update(self.states.get((app, uid, policy.name), PolicyState()))
        self.states[(app, uid, policy.name)] = new
        return new


def setup(
    policy: str, script: dict[ModelId, object], **settings: object
) -> tuple[QueryProcessor, ModelGateway, RecordingMetrics, MemoryStates, StaticRegistry]:
    registry = StaticRegistry()
    entry = registry.add_app("ens", slo_us=SLO_US, policy=policy)
    if settings:
        from dataclasses import replace

        from clipper_core.query_frontend.registry import AppEntry

        entry = registry.apps["ens"] = AppEntry.from_info(replace(entry.info, **settings))  # type: ignore[arg-type]
    registry.links["ens"] = ("a", "b", "c")
    registry.current.update({"a": A, "b": B, "c": C})
    gateway, metrics, states = ModelGateway(script), RecordingMetrics(), MemoryStates()
    processor = QueryProcessor(registry, gateway, metrics, policy_states=states)  # type: ignore[arg-type]
    return processor, gateway, metrics, states, registry


async def test_ensemble_answers_at_the_deadline_without_the_straggler() -> None:
    processor, gateway, metrics, _, registry = setup("exp4", {A: b"3", B: b"3", C: "hang"})
    app = registry.apps["ens"]
    assert app.policy is not None
    start = time.monotonic()
    [reply] = await processor.predict_selected(app, app.policy, [b"x"])
    elapsed = time.monotonic() - start
    assert SLO_US / 1e6 - 0.002 <= elapsed <= SLO_US / 1e6 + SLACK_S
    assert (orjson.dumps(reply.output), reply.is_default) == (b"3", False)
    assert (reply.members_answered, reply.members, reply.confidence) == (2, 3, 1.0)
    assert metrics.ensembles == [(2, 3, False)]
    assert metrics.selections == [("a", "b", "c")]
    assert gateway.abandoned == []  # the straggler's late output still fills the cache


async def test_ensemble_with_every_member_answering_does_not_wait_for_the_deadline() -> None:
    processor, _, _, _, registry = setup("exp4", {A: b"1", B: b"2", C: b"1"})
    app = registry.apps["ens"]
    assert app.policy is not None
    start = time.monotonic()
    [reply] = await processor.predict_selected(app, app.policy, [b"x"])
    assert time.monotonic() - start < SLO_US / 1e6 / 2
    assert orjson.dumps(reply.output) == b"1" and reply.confidence == pytest.approx(2 / 3)


async def test_low_confidence_gives_the_default_output_and_says_why() -> None:
    processor, _, metrics, _, registry = setup(
        "exp4", {A: b"1", B: b"2", C: b"3"}, confidence_threshold=0.6
    )
    app = registry.apps["ens"]
    assert app.policy is not None
    [reply] = await processor.predict_selected(app, app.policy, [b"x"])
    assert reply.is_default and reply.output == "no_pred"
    assert reply.default_explanation is not None and "Low confidence" in reply.default_explanation
    assert reply.confidence == pytest.approx(1 / 3) and reply.members_answered == 3
    assert metrics.ensembles == [(3, 3, True)]


async def test_no_member_in_time_is_an_slo_miss_and_failures_name_their_cause() -> None:
    processor, _, _, _, registry = setup("exp4", {A: "hang", B: "hang", C: "hang"})
    app = registry.apps["ens"]
    assert app.policy is not None
    [late] = await processor.predict_selected(app, app.policy, [b"x"])
    assert late.is_default and late.default_explanation == SLO_MISSED and late.members_answered == 0
    failing = ModelFailed("model container a:1 replica 0 failed (model exception): boom")
    processor, _, _, _, registry = setup("exp4", {A: failing, B: failing, C: failing})
    app = registry.apps["ens"]
    assert app.policy is not None
    [failed] = await processor.predict_selected(app, app.policy, [b"x"])
    assert failed.default_explanation == failing.explanation


async def test_batch_inputs_are_each_selected_and_ids_count_up() -> None:
    processor, _, _, _, registry = setup("exp3", {A: b"1", B: b"1", C: b"1"})
    app = registry.apps["ens"]
    assert app.policy is not None
    replies = await processor.predict_selected(app, app.policy, [b"x", b"y", b"z"])
    assert [r.query_id for r in replies] == [0, 1, 2]
    assert all(r.members is None for r in replies)  # Exp3 answers carry no ensemble fields


async def test_feedback_scores_cached_predictions_and_moves_the_weights() -> None:
    processor, gateway, metrics, states, registry = setup("exp4", {A: b"1", B: b"2", C: b"2"})
    app = registry.apps["ens"]
    assert app.policy is not None
    await processor.predict_selected(app, app.policy, [b"x"])
    calls = len(gateway.calls)
    assert await processor.update(app, FeedbackRequest(0, b"x", 1.0))
    assert len(gateway.calls) == calls  # every member's output came from the cache
    state = states.states[("ens", 0, "exp4")]
    assert state.rounds == 1 and state.weights["a"] == 1.0 > state.weights["b"] == state.weights["c"]
    assert metrics.feedback == [True] and metrics.weights["a"] == 1.0
    # An input never predicted is predicted now, for the feedback.
    assert await processor.update(app, FeedbackRequest(0, b"new", 1.0))
    assert {model for model, payload in gateway.calls if payload == b"new"} == {A, B, C}
    assert states.states[("ens", 0, "exp4")].rounds == 2


async def test_feedback_without_any_prediction_is_not_received() -> None:
    processor, _, metrics, states, registry = setup("exp4", {A: "hang", B: "hang", C: "hang"})
    app = registry.apps["ens"]
    assert not await processor.update(app, FeedbackRequest(0, b"x", 1.0))
    assert metrics.feedback == [False] and states.states == {}


async def test_policies_that_do_not_learn_answer_feedback_as_the_original() -> None:
    for policy in ("DefaultOutputSelectionPolicy", "ab"):
        processor, gateway, _, states, registry = setup(policy, {A: b"1", B: b"1", C: b"1"})
        app = registry.apps["ens"]
        assert await processor.update(app, FeedbackRequest(0, b"x", 1.0))
        assert not await processor.update(app, FeedbackRequest(5, b"x", 1.0))
        assert gateway.calls == [] and states.states == {}
        assert processor.take_query_ids(1) == 2  # each update consumed an id
