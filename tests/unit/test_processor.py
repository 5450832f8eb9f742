"""Query processing: ids, model selection, SLO deadlines, default outputs and explanations.

The gateway and the registry are small in-test stand-ins here (no sockets in unit tests); the
integration tests drive the real ones.
"""

from __future__ import annotations

import asyncio
import logging

import orjson
import pytest

from clipper_core.errors import BadRequest, ModelFailed, NoConnectedModels
from clipper_core.query_frontend.processor import (
    NO_CONNECTED_MODELS,
    QUERY_PROCESSING_ERROR,
    SLO_MISSED,
    QueryProcessor,
    Reply,
)
from clipper_core.query_frontend.registry import AppEntry
from clipper_core.rpc import InputType
from clipper_core.state import AppInfo, ModelId

LONG_SLO_US = 10_000_000
SHORT_SLO_US = 20_000


class StaticRegistry:
    def __init__(self) -> None:
        self.apps: dict[str, AppEntry] = {}
        self.links: dict[str, tuple[str, ...]] = {}
        self.current: dict[str, ModelId] = {}
        self.versions: set[ModelId] = set()

    def add_app(self, name: str, slo_us: int = LONG_SLO_US, policy: str | None = None) -> AppEntry:
        info = AppInfo(name, InputType.DOUBLES, "no_pred", slo_us)
        if policy is not None:
            info = AppInfo(name, InputType.DOUBLES, "no_pred", slo_us, policy=policy)
        entry = self.apps[name] = AppEntry.from_info(info)
        return entry

    def app(self, name: str) -> AppEntry | None:
        return self.apps.get(name)

    def linked_models(self, app_name: str) -> tuple[str, ...]:
        return self.links.get(app_name, ())

    def current_model(self, model_name: str) -> ModelId | None:
        return self.current.get(model_name)

    def has_version(self, model_name: str, version: str) -> bool:
        return ModelId(model_name, version) in self.versions


def scripted_future(action: object) -> asyncio.Future[bytes]:
    """A model's answer as scripted: bytes -> result, an exception -> raised, "hang" -> pending."""
    future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
    if isinstance(action, BaseException):
        future.set_exception(action)
    elif action != "hang":
        assert isinstance(action, bytes)
        future.set_result(action)
    return future


class ScriptedGateway:
    """Answers per payload: bytes -> output, an exception -> raised, "hang" -> never answers."""

    def __init__(self, script: dict[bytes, object]) -> None:
        self.script = script
        self.calls: list[tuple[ModelId, bytes, float]] = []
        self.cached: dict[tuple[ModelId, bytes], bytes] = {}

    def cached_output(self, model: ModelId, payload: bytes) -> bytes | None:
        return self.cached.get((model, payload))

    def submit(self, model: ModelId, payload: bytes, deadline: float) -> asyncio.Future[bytes]:
        self.calls.append((model, payload, deadline))
        return scripted_future(self.script[payload])


class RecordingMetrics:
    def __init__(self) -> None:
        self.queries: list[tuple[str, float, bool]] = []
        self.selections: list[tuple[str, ...]] = []
        self.ensembles: list[tuple[int, int, bool]] = []
        self.weights: dict[str, float] = {}
        self.feedback: list[bool] = []

    def record_app_query(self, app: str, latency_s: float, is_default: bool) -> None:
        self.queries.append((app, latency_s, is_default))

    def record_selection(self, app: str, models: tuple[str, ...]) -> None:
        self.selections.append(models)

    def record_ensemble(self, app: str, answered: int, asked: int, is_low_confidence: bool) -> None:
        self.ensembles.append((answered, asked, is_low_confidence))

    def record_weights(self, app: str, weights: dict[str, float]) -> None:
        self.weights = weights

    def record_feedback(self, app: str, is_applied: bool) -> None:
        self.feedback.append(is_applied)


M = ModelId("m", "1")


@pytest.fixture
def registry() -> StaticRegistry:
    reg = StaticRegistry()
    reg.add_app("app")
    reg.links["app"] = ("m",)
    reg.current["m"] = M
    reg.versions |= {M, ModelId("m", "0")}
    return reg


def output_json(reply: Reply) -> bytes:
    return orjson.dumps(reply.output)


def make(
    registry: StaticRegistry, script: dict[bytes, object]
) -> tuple[QueryProcessor, ScriptedGateway, RecordingMetrics]:
    gateway, metrics = ScriptedGateway(script), RecordingMetrics()
    return QueryProcessor(registry, gateway, metrics), gateway, metrics


async def test_model_output_is_embedded_and_ids_count_up(registry: StaticRegistry) -> None:
    processor, _, metrics = make(registry, {b"a": b"0.5", b"b": b"cat"})
    app = registry.apps["app"]
    [first] = await processor.predict(app, M, [b"a"])
    [second] = await processor.predict(app, M, [b"b"])
    assert (first.query_id, output_json(first), first.is_default) == (0, b"0.5", False)
    assert (second.query_id, output_json(second), second.is_default) == (1, b'"cat"', False)
    assert first.default_explanation is None
    assert [q[0] for q in metrics.queries] == ["app", "app"]
    assert [q[2] for q in metrics.queries] == [False, False]


async def test_cache_hit_is_answered_without_asking_the_gateway_even_past_the_deadline(
    registry: StaticRegistry,
) -> None:
    registry.add_app("instant", slo_us=0)  # the deadline has passed before the lookup
    registry.links["instant"] = ("m",)
    processor, gateway, metrics = make(registry, {b"miss": "hang"})
    gateway.cached[(M, b"hit")] = b"[1, 2]"
    replies = await processor.predict(registry.apps["instant"], M, [b"hit", b"miss"])
    assert [(r.query_id, r.is_default) for r in replies] == [(0, False), (1, True)]
    assert output_json(replies[0]) == b"[1, 2]"
    assert replies[1].default_explanation == SLO_MISSED
    assert [payload for _, payload, _ in gateway.calls] == [b"miss"]
    assert [q[2] for q in metrics.queries] == [False, True]


async def test_batch_elements_get_ids_in_input_order_and_update_consumes_one(
    registry: StaticRegistry,
) -> None:
    processor, _, _ = make(registry, {b"a": b"1", b"b": b"2", b"c": b"3"})
    app = registry.apps["app"]
    replies = await processor.predict(app, M, [b"a", b"b", b"c"])
    assert [(r.query_id, output_json(r)) for r in replies] == [(0, b"1"), (1, b"2"), (2, b"3")]
    assert processor.take_query_ids(1) == 3
    [after] = await processor.predict(app, M, [b"a"])
    assert after.query_id == 4


async def test_deadline_is_the_apps_slo_from_now(registry: StaticRegistry) -> None:
    processor, gateway, _ = make(registry, {b"a": b"1"})
    before = asyncio.get_running_loop().time()
    await processor.predict(registry.apps["app"], M, [b"a"])
    after = asyncio.get_running_loop().time()
    [(model, payload, deadline)] = gateway.calls
    assert (model, payload) == (M, b"a")
    assert before + LONG_SLO_US / 1e6 <= deadline <= after + LONG_SLO_US / 1e6


async def test_no_target_answers_default_without_calling_the_gateway(registry: StaticRegistry) -> None:
    processor, gateway, metrics = make(registry, {})
    [reply] = await processor.predict(registry.apps["app"], None, [b"a"])
    assert (reply.is_default, reply.default_explanation, output_json(reply)) == (
        True,
        NO_CONNECTED_MODELS,
        b'"no_pred"',
    )
    assert gateway.calls == []
    assert metrics.queries[0][2] is True


async def test_no_connected_models_from_the_gateway(registry: StaticRegistry) -> None:
    processor, _, _ = make(registry, {b"a": NoConnectedModels()})
    [reply] = await processor.predict(registry.apps["app"], M, [b"a"])
    assert (reply.is_default, reply.default_explanation) == (True, NO_CONNECTED_MODELS)


async def test_slo_miss_answers_default_with_the_slo_explanation(registry: StaticRegistry) -> None:
    app = registry.add_app("fast", slo_us=SHORT_SLO_US)
    processor, _, _ = make(registry, {b"a": "hang"})
    [reply] = await processor.predict(app, M, [b"a"])
    assert (reply.is_default, reply.default_explanation, output_json(reply)) == (
        True,
        SLO_MISSED,
        b'"no_pred"',
    )


async def test_model_failure_answers_default_at_once_with_its_cause(registry: StaticRegistry) -> None:
    processor, _, _ = make(registry, {b"a": ModelFailed("Model m:1 raised ValueError: bad")})
    [reply] = await processor.predict(registry.apps["app"], M, [b"a"])
    assert (reply.is_default, reply.default_explanation) == (True, "Model m:1 raised ValueError: bad")


async def test_unexpected_error_is_logged_and_answered_like_the_original(
    registry: StaticRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    processor, _, _ = make(registry, {b"a": RuntimeError("bug")})
    with caplog.at_level(logging.ERROR):
        [reply] = await processor.predict(registry.apps["app"], M, [b"a"])
    assert (reply.is_default, reply.default_explanation) == (True, SLO_MISSED)
    assert "failed unexpectedly" in caplog.text


async def test_batch_mixes_outcomes_in_order(registry: StaticRegistry) -> None:
    app = registry.add_app("fast", slo_us=SHORT_SLO_US)
    processor, _, metrics = make(registry, {b"ok": b"[1]", b"slow": "hang", b"bad": ModelFailed("boom")})
    replies = await processor.predict(app, M, [b"ok", b"slow", b"bad"])
    assert [(r.query_id, r.is_default, r.default_explanation) for r in replies] == [
        (0, False, None),
        (1, True, SLO_MISSED),
        (2, True, "boom"),
    ]
    assert sorted(q[2] for q in metrics.queries) == [False, True, True]


# ------------------------------------------------------------------------------ model selection


def test_target_is_the_current_version_of_the_linked_model(registry: StaticRegistry) -> None:
    processor, _, _ = make(registry, {})
    assert processor.resolve_target(registry.apps["app"], None) == M


def test_no_link_or_no_current_version_means_no_target(registry: StaticRegistry) -> None:
    processor, _, _ = make(registry, {})
    other = registry.add_app("other")
    assert processor.resolve_target(other, None) is None
    registry.current.clear()
    assert processor.resolve_target(registry.apps["app"], None) is None


def test_explicit_version_must_be_registered(registry: StaticRegistry) -> None:
    processor, _, _ = make(registry, {})
    assert processor.resolve_target(registry.apps["app"], "0") == ModelId("m", "0")
    with pytest.raises(BadRequest) as info:
        processor.resolve_target(registry.apps["app"], "9")
    assert info.value.error == QUERY_PROCESSING_ERROR
    assert info.value.cause == "Requested version: 9 does not exist for model: m"
    assert info.value.http_status == 400


def test_explicit_version_with_two_linked_models_is_refused(registry: StaticRegistry) -> None:
    processor, _, _ = make(registry, {})
    registry.links["app"] = ("m", "n")
    with pytest.raises(BadRequest) as info:
        processor.resolve_target(registry.apps["app"], "1")
    assert (info.value.error, info.value.cause) == (
        QUERY_PROCESSING_ERROR,
        "Too many models linked to application app",
    )


def test_explicit_version_without_a_linked_model_means_no_target(registry: StaticRegistry) -> None:
    processor, _, _ = make(registry, {})
    assert processor.resolve_target(registry.add_app("lonely"), "1") is None


def test_unknown_selection_policy_is_refused(registry: StaticRegistry) -> None:
    """One check (the handler makes it once the inputs are parsed, before the cache is asked)."""
    processor, _, _ = make(registry, {})
    app = registry.add_app("odd", policy="BanditPolicy")
    assert app.policy is None and processor.resolve_target(app, None) is None
    with pytest.raises(BadRequest) as info:
        processor.check_policy(app)
    assert (info.value.error, info.value.cause) == (
        QUERY_PROCESSING_ERROR,
        "BanditPolicy is an invalid selection_policy.",
    )
    assert processor.check_policy(registry.apps["app"]) is registry.apps["app"].policy


def test_answer_from_cache_answers_a_cached_single_input(registry: StaticRegistry) -> None:
    processor, gateway, metrics = make(registry, {})
    gateway.cached[(M, b"a")] = b' {"k": 1} '
    app = registry.apps["app"]
    reply = processor.answer_from_cache(app, M, [b"a"])
    assert reply is not None
    assert (reply.query_id, output_json(reply), reply.is_default) == (0, b'{"k": 1}', False)
    assert [(q[0], q[2]) for q in metrics.queries] == [("app", False)]
    assert processor.take_query_ids(1) == 1
    assert gateway.calls == []


def test_answer_from_cache_declines_misses_batches_and_missing_targets(registry: StaticRegistry) -> None:
    processor, gateway, metrics = make(registry, {})
    gateway.cached[(M, b"a")] = b"1"
    app = registry.apps["app"]
    assert processor.answer_from_cache(app, M, [b"b"]) is None
    assert processor.answer_from_cache(app, M, [b"a", b"a"]) is None
    assert processor.answer_from_cache(app, None, [b"a"]) is None
    # Declining consumes nothing: the regular path takes the ids and records the queries.
    assert processor.take_query_ids(1) == 0
    assert metrics.queries == []


async def test_cache_checked_skips_the_second_lookup_of_a_single_input(registry: StaticRegistry) -> None:
    processor, gateway, _ = make(registry, {b"a": b"from the model"})
    gateway.cached[(M, b"a")] = b"1"
    app = registry.apps["app"]
    [checked] = await processor.predict(app, M, [b"a"], cache_checked=True)
    assert output_json(checked) == b'"from the model"'
    [unchecked] = await processor.predict(app, M, [b"a"])
    assert output_json(unchecked) == b"1"
    assert len(gateway.calls) == 1
