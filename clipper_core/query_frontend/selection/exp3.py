"""Exp3 (Auer et al.; Clipper NSDI'17 section 5.2.1): one model per query, learned from feedback.

Each query asks one model, drawn with probability ``p_i = (1 - gamma) w_i / sum(w) + gamma / K``.
Feedback updates only the models whose prediction for that input is known (the one that was
asked, found in the prediction cache; or one drawn now when the cache has none), with the
importance-weighted loss: ``w_i <- w_i * exp(-eta * loss_i / p_i)``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import ClassVar, Final

from clipper_core.query_frontend.selection.base import (
    Combined,
    Feedback,
    SelectionQuery,
    candidate_weights,
    normalised,
)
from clipper_core.state import AppInfo, ModelId, PolicyState, SelectionPolicyName

__all__ = ["EXP3_ETA", "EXP3_GAMMA", "Exp3Policy"]

EXP3_ETA: Final = 0.1
EXP3_GAMMA: Final = 0.1


class Exp3Policy:
    name: ClassVar[str] = SelectionPolicyName.EXP3
    learns: ClassVar[bool] = True
    is_ensemble: ClassVar[bool] = False

    def __init__(
        self,
        info: AppInfo | None = None,
        eta: float = EXP3_ETA,
        gamma: float = EXP3_GAMMA,
        rng: random.Random | None = None,
    ) -> None:
        self.eta = eta
        self.gamma = gamma
        self._rng = rng or random.Random()

    def probabilities(self, state: PolicyState, candidates: tuple[ModelId, ...]) -> list[float]:
        weights = candidate_weights(state, candidates)
        total = sum(weights)
        count = len(candidates)
        return [(1 - self.gamma) * w / total + self.gamma / count for w in weights]

    def select(self, state: PolicyState, query: SelectionQuery) -> tuple[ModelId, ...]:
        candidates = query.candidates
        if len(candidates) <= 1:
            return candidates
        return (self._rng.choices(candidates, self.probabilities(state, candidates))[0],)

    def combine(
        self, state: PolicyState, query: SelectionQuery, predictions: Mapping[ModelId, bytes]
    ) -> Combined:
        for output in predictions.values():
            return Combined(output, 1.0)
        return Combined(None, 0.0)

    def feedback_models(
        self, state: PolicyState, query: SelectionQuery, cached: frozenset[ModelId]
    ) -> tuple[ModelId, ...]:
        asked = tuple(m for m in query.candidates if m in cached)
        return asked or self.select(state, query)

    def observe(self, state: PolicyState, query: SelectionQuery, feedback: Feedback) -> PolicyState:
        candidates = query.candidates
        if not candidates:
            return state
        weights = dict(zip((m.name for m in candidates), candidate_weights(state, candidates), strict=True))
        for model, p in zip(candidates, self.probabilities(state, candidates), strict=True):
            loss = feedback.losses.get(model.name)
            if loss is not None:
                weights[model.name] *= math.exp(-self.eta * loss / p)
        return PolicyState({**state.weights, **normalised(weights)}, state.rounds + 1)

