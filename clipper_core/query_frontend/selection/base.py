"""The selection-policy protocol, its records and the policy table (pure: no I/O).

A policy decides, per query, which of an application's linked models to ask (``select``), how
their outputs become one answer with a confidence (``combine``), and how feedback changes its
state (``observe``). It is resolved once per application (:func:`resolve_policy`, from the
application record) and holds that application's configuration; its mutable state is a
:class:`~clipper_core.state.PolicyState` kept in Redis by ``states.PolicyStates``. A new policy
is one class in one module of this package plus one :func:`register` line.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Final, NamedTuple, Protocol

from clipper_core.state import AppInfo, ModelId, PolicyState

__all__ = [
    "WEIGHT_FLOOR",
    "Combined",
    "Feedback",
    "OneModelPerQuery",
    "SelectionPolicy",
    "SelectionQuery",
    "candidate_weights",
    "normalised",
    "policy_names",
    "register",
    "resolve_policy",
    "vote_key",
    "zero_one_loss",
]

# Learned weights are kept relative to the largest (which is 1) and never below a floor (this
# one unless the policy says otherwise), so no weight underflows and a model that was bad for a
# while can win back its place.
WEIGHT_FLOOR: Final = 0.01
_LABEL_TOLERANCE: Final = 1e-9


class SelectionQuery(NamedTuple):
    """What a policy sees of one query: who asks, and the models it may ask (link order).

    A named tuple: one is built per request on the default policy's hot path too, and a frozen
    dataclass's ``__init__`` costs three times as much.
    """

    app: str
    uid: int
    candidates: tuple[ModelId, ...]


@dataclass(slots=True, frozen=True)
class Combined:
    """A policy's answer: ``output`` None means the application's default output."""

    output: bytes | None
    confidence: float
    explanation: str | None = None


@dataclass(slots=True, frozen=True)
class Feedback:
    """One ``/update``: the label and the loss of each model whose prediction was available."""

    label: float
    losses: Mapping[str, float]


class SelectionPolicy(Protocol):
    """One application's selection policy (configured at resolution, state passed in)."""

    name: ClassVar[str]
    # Keeps a PolicyState in Redis and learns from /update (else /update answers as the original).
    learns: ClassVar[bool]
    # Asks several models per query; answers carry the confidence and how many answered.
    is_ensemble: ClassVar[bool]

    def select(self, state: PolicyState, query: SelectionQuery) -> tuple[ModelId, ...]:
        """The models to ask, a subset of ``query.candidates`` (empty -> default output)."""
        ...

    def combine(
        self, state: PolicyState, query: SelectionQuery, predictions: Mapping[ModelId, bytes]
    ) -> Combined:
        """One answer from the outputs that arrived by the deadline (possibly none)."""
        ...

    def feedback_models(
        self, state: PolicyState, query: SelectionQuery, cached: frozenset[ModelId]
    ) -> tuple[ModelId, ...]:
        """The models whose loss ``observe`` needs; ``cached`` are those with a cached output."""
        ...

    def observe(self, state: PolicyState, query: SelectionQuery, feedback: Feedback) -> PolicyState:
        """The state after one feedback round (pure: may be re-run on a write conflict)."""
        ...


class OneModelPerQuery:
    """The answer half of policies that ask one model per query (default, ab, exp3).

    That model's output is the answer, at full confidence; without an override such a policy
    needs no feedback and keeps its state as it is.
    """

    def combine(
        self, state: PolicyState, query: SelectionQuery, predictions: Mapping[ModelId, bytes]
    ) -> Combined:
        for output in predictions.values():
            return Combined(output, 1.0)
        return Combined(None, 0.0)

    def feedback_models(
        self, state: PolicyState, query: SelectionQuery, cached: frozenset[ModelId]
    ) -> tuple[ModelId, ...]:
        return ()

    def observe(self, state: PolicyState, query: SelectionQuery, feedback: Feedback) -> PolicyState:
        return state


PolicyFactory = Callable[[AppInfo], SelectionPolicy]
_POLICIES: dict[str, PolicyFactory] = {}


def register(name: str, factory: PolicyFactory) -> None:
    """Make ``name`` (an application record's ``policy`` value) resolve through ``factory``."""
    _POLICIES[name] = factory


def policy_names() -> tuple[str, ...]:
    return tuple(_POLICIES)


def resolve_policy(info: AppInfo) -> SelectionPolicy | None:
    """The application's policy, configured from its record; None for an unknown name."""
    factory = _POLICIES.get(info.policy)
    return None if factory is None else factory(info)


# ---------------------------------------------------------------------------- shared helpers


def vote_key(output: bytes) -> object:
    """Outputs that mean the same answer compare equal: numbers by value, the rest by bytes."""
    text = output.strip()
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else text


def zero_one_loss(output: bytes, label: float) -> float:
    """0 when the output is the label (as a number), else 1: the paper's classification loss."""
    key = vote_key(output)
    return 0.0 if isinstance(key, float) and abs(key - label) <= _LABEL_TOLERANCE else 1.0


def normalised(weights: Mapping[str, float], floor: float = WEIGHT_FLOOR) -> dict[str, float]:
    """Largest weight 1, none below ``floor`` (no underflow, no lost arm)."""
    if not weights:
        return {}
    top = max(weights.values())
    if not top > 0 or not math.isfinite(top):
        return {name: 1.0 for name in weights}
    return {name: max(weight / top, floor) for name, weight in weights.items()}


def candidate_weights(
    state: PolicyState, candidates: tuple[ModelId, ...], initial: float = 1.0
) -> list[float]:
    """The state's weight of each candidate (by model name), ``initial`` where it has none."""
    weights = state.weights
    return [weights.get(model.name, initial) for model in candidates]
