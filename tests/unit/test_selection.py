"""Selection policies (issue 15): the table, each policy's choices, combination and learning (pure)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from clipper_core.errors import StateError
from clipper_core.query_frontend.selection import (
    ABSplitPolicy,
    DefaultOutputSelectionPolicy,
    Exp3Policy,
    Exp4Policy,
    Feedback,
    SelectionQuery,
    policy_names,
    resolve_policy,
    zero_one_loss,
)
from clipper_core.query_frontend.selection.base import WEIGHT_FLOOR, normalised, vote_key
from clipper_core.query_frontend.selection.exp3 import EXP3_MIN_GAMMA, exploration
from clipper_core.query_frontend.selection.exp4 import EXP4_WEIGHT_FLOOR
from clipper_core.rpc import InputType
from clipper_core.state import SELECTION_POLICIES, AppInfo, ModelId, PolicyState

A, B, C = ModelId("a", "1"), ModelId("b", "1"), ModelId("c", "2")
QUERY = SelectionQuery("app", 0, (A, B, C))
EMPTY = PolicyState()


def app(policy: str, **settings: object) -> AppInfo:
    return AppInfo("app", InputType.DOUBLES, "-1", 100_000, policy, **settings)  # type: ignore[arg-type]


def test_every_policy_name_of_the_schema_resolves_and_nothing_else() -> None:
    assert set(policy_names()) == set(SELECTION_POLICIES)
    for name in SELECTION_POLICIES:
        policy = resolve_policy(app(name))
        assert policy is not None and policy.name == name
    assert resolve_policy(app("BanditPolicy")) is None


def test_default_policy_asks_the_first_candidate_only_and_learns_nothing() -> None:
    policy = DefaultOutputSelectionPolicy()
    assert policy.select(EMPTY, QUERY) == (A,)
    assert policy.select(EMPTY, SelectionQuery("app", 0, ())) == ()
    assert policy.combine(EMPTY, QUERY, {A: b"7"}).output == b"7"
    assert policy.combine(EMPTY, QUERY, {}).output is None
    assert not policy.learns and not policy.is_ensemble
    assert policy.observe(EMPTY, QUERY, Feedback(1.0, {"a": 1.0})) is EMPTY


def test_exp4_weighted_vote_confidence_and_absent_members() -> None:
    policy = Exp4Policy(app("exp4", confidence_threshold=0.5))
    assert policy.select(EMPTY, QUERY) == (A, B, C)
    # Equal weights: two of three agree ("3" and "3.0" are the same number).
    combined = policy.combine(EMPTY, QUERY, {A: b"3", B: b"3.0", C: b"5"})
    assert combined.output == b"3" and combined.confidence == pytest.approx(2 / 3)
    # Weighted: c alone outweighs a and b.
    heavy_c = PolicyState({"a": 0.1, "b": 0.1, "c": 1.0})
    assert policy.combine(heavy_c, QUERY, {A: b"3", B: b"3", C: b"5"}).output == b"5"
    # A straggler is absent: neither a vote nor a share of the confidence.
    partial = policy.combine(EMPTY, QUERY, {A: b"3", B: b"3"})
    assert partial.output == b"3" and partial.confidence == 1.0
    assert policy.combine(EMPTY, QUERY, {}).output is None


def test_exp4_low_confidence_answers_default_and_names_it() -> None:
    policy = Exp4Policy(app("exp4", confidence_threshold=0.9))
    combined = policy.combine(EMPTY, QUERY, {A: b"1", B: b"2", C: b"1"})
    assert combined.output is None
    assert combined.confidence == pytest.approx(2 / 3)
    assert combined.explanation is not None and combined.explanation.startswith("Low confidence")
    assert "0.9" in combined.explanation and "3 of 3 models answered" in combined.explanation
    assert Exp4Policy(app("exp4")).threshold == 0.5  # the default threshold


def test_exp4_weights_move_toward_the_better_model() -> None:
    policy = Exp4Policy(app("exp4"))
    state = EMPTY
    for _ in range(20):
        state = policy.observe(state, QUERY, Feedback(1.0, {"a": 0.0, "b": 1.0, "c": 1.0}))
    assert state.rounds == 20
    assert state.weights["a"] == 1.0
    assert state.weights["b"] == state.weights["c"] == EXP4_WEIGHT_FLOOR  # floored, never zero
    # Now two wrong models agree but the right one outweighs them.
    assert policy.combine(state, QUERY, {A: b"1", B: b"2", C: b"2"}).output == b"1"
    # A model that becomes good again wins its place back.
    for _ in range(40):
        state = policy.observe(state, QUERY, Feedback(1.0, {"a": 1.0, "b": 0.0, "c": 1.0}))
    assert state.weights["b"] == 1.0 and state.weights["a"] < 0.1


def test_exp3_picks_one_model_and_learns_toward_the_better_one() -> None:
    policy = Exp3Policy(app("exp3"), rng=random.Random(7))
    assert len(policy.select(EMPTY, QUERY)) == 1
    state = EMPTY
    for _ in range(300):
        (chosen,) = policy.select(state, QUERY)
        loss = 0.0 if chosen == B else 1.0  # b is always right
        state = policy.observe(state, QUERY, Feedback(1.0, {chosen.name: loss}))
    probabilities = policy.probabilities(state, QUERY.candidates)
    assert probabilities[1] > 0.8 > probabilities[0]
    assert min(probabilities) >= EXP3_MIN_GAMMA / 3  # exploration never stops
    picks = Counter(policy.select(state, QUERY)[0] for _ in range(1000))
    assert picks[B] > 800


def test_exp3_exploration_decays_with_rounds_to_a_floor() -> None:
    schedule = [exploration(t, 5) for t in (0, 1, 10, 100, 1000, 10_000, 1_000_000)]
    assert schedule[0] == schedule[1] == 1.0  # a new application explores uniformly
    assert schedule == sorted(schedule, reverse=True)
    assert 0.06 < exploration(1000, 5) < 0.075  # Auer et al.'s gamma for K=5, T=1000
    assert schedule[-1] == EXP3_MIN_GAMMA  # never stops: a repaired model is tried again


def test_exp3_reroutes_when_its_favourite_breaks_and_back_when_it_is_repaired() -> None:
    policy = Exp3Policy(app("exp3"), rng=random.Random(11))

    def run(state: PolicyState, good: ModelId, rounds: int) -> PolicyState:
        for _ in range(rounds):
            (chosen,) = policy.select(state, QUERY)
            state = policy.observe(state, QUERY, Feedback(1.0, {chosen.name: float(chosen != good)}))
        return state

    state = run(EMPTY, B, 300)
    assert policy.probabilities(state, QUERY.candidates)[1] > 0.9
    state = run(state, A, 60)  # b breaks, a is right: re-routed within tens of rounds
    assert policy.probabilities(state, QUERY.candidates)[0] > 0.8
    state = run(state, B, 300)  # b repaired, a breaks
    assert policy.probabilities(state, QUERY.candidates)[1] > 0.8


def test_exp3_feedback_scores_the_model_it_asked() -> None:
    policy = Exp3Policy(app("exp3"), rng=random.Random(1))
    assert policy.feedback_models(EMPTY, QUERY, frozenset({C})) == (C,)
    (drawn,) = policy.feedback_models(EMPTY, QUERY, frozenset())  # nothing cached: draw one
    assert drawn in QUERY.candidates


def test_ab_split_follows_fixed_weights_and_never_learns() -> None:
    policy = ABSplitPolicy(app("ab", policy_weights=(("a", 9.0), ("b", 1.0))), rng=random.Random(3))
    picks = Counter(policy.select(EMPTY, QUERY)[0] for _ in range(5000))
    assert picks[C] == 0  # no weight, no traffic
    assert 0.87 < picks[A] / 5000 < 0.93
    assert not policy.learns
    even = ABSplitPolicy(app("ab"), rng=random.Random(3))
    assert set(Counter(even.select(EMPTY, QUERY)[0] for _ in range(300))) == {A, B, C}


def test_losses_and_vote_keys() -> None:
    assert zero_one_loss(b"3", 3.0) == 0.0
    assert zero_one_loss(b" 3.0\n", 3.0) == 0.0
    assert zero_one_loss(b"4", 3.0) == 1.0
    assert zero_one_loss(b"cat", 3.0) == 1.0
    assert vote_key(b"1e0") == vote_key(b"1") and vote_key(b"nan") == b"nan"
    assert normalised({"a": 4.0, "b": 1.0, "c": 0.0}) == {"a": 1.0, "b": 0.25, "c": WEIGHT_FLOOR}
    assert normalised({"a": 4.0, "b": 0.0}, floor=0.1) == {"a": 1.0, "b": 0.1}


def test_policy_state_round_trips_and_refuses_garbage() -> None:
    state = PolicyState({"a": 0.5, "b": 1.0}, 12)
    assert PolicyState.from_json(state.to_json()) == state
    for bad in ("{", '{"weights": {"a": -1}, "rounds": 0}', '{"rounds": 1}', '{"weights": [], "rounds": 0}'):
        with pytest.raises(StateError):
            PolicyState.from_json(bad)


def test_app_record_is_the_originals_unless_a_policy_is_chosen() -> None:
    plain = AppInfo("app", InputType.DOUBLES, "-1", 100)
    assert list(plain.to_hash()) == ["input_type", "policy", "default_output", "latency_slo_micros"]
    chosen = app("ab", policy_weights=(("a", 0.9), ("b", 0.1)))
    fields = chosen.to_hash()
    assert fields["policy"] == "ab" and fields["policy_weights"] == '{"a":0.9,"b":0.1}'
    assert AppInfo.from_hash("app", fields) == chosen
    threshold = app("exp4", confidence_threshold=0.75)
    assert AppInfo.from_hash("app", threshold.to_hash()).confidence_threshold == 0.75
