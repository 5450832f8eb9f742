"""Exp3 (Auer et al.; Clipper NSDI'17 section 5.2.1): one model per query, learned from feedback.

Each query asks one model, drawn with probability ``p_i = (1 - gamma_t) w_i / sum(w) + gamma_t / K``.
Feedback updates only the models whose prediction for that input is known (the one that was
asked, found in the prediction cache; or one drawn now when the cache has none), with the
importance-weighted loss: ``w_i <- w_i * exp(-eta * loss_i / p_i)``.

The parameters (chosen on principle, then checked over many seeds of make bench-selection's
degrade-and-repair stream, simulated offline through this class):

* exploration ``gamma_t = max(EXP3_MIN_GAMMA, min(1, sqrt(K ln K / ((e - 1) t))))`` after ``t``
  feedback rounds: Auer et al.'s (2002) gamma for K arms and horizon T, with the rounds seen so
  far as the horizon (a server does not know T), so a new application explores a lot and a
  settled one little; never below ``EXP3_MIN_GAMMA``, because models break and get repaired
  (what Exp3.S's fixed share is for; here by exploration alone): a model that came back is
  still tried ``EXP3_MIN_GAMMA / K`` of the time. For K = 5 that is 0.22 at round 100, 0.068
  at round 1000 and the floor from round ~12000.
* ``eta = 0.5``: a wrong answer from the favourite (p near 1) costs it a factor e^-0.5, so a
  broken favourite falls behind the runner-up within a few of its answers (the re-routing of
  Fig. 8 takes tens of rounds, not hundreds).
* weight floor ``EXP3_WEIGHT_FLOOR = 0.001`` (relative to the largest): only against underflow;
  exploration, not the floor, is what finds a repaired model again, and a high floor would keep
  sampling bad models through the exploitation term too.

Exp3 serves one model per query, so in a stretch where the models do not change its expected
error is a mixture of theirs: never below the best model's, and above it by the exploration and
by every query spent telling models apart from bandit feedback (the digits models' error rates
differ by a few points, which takes hundreds of answers per model to see). Exp4 (every model's
loss on every query, a vote) has neither cost.
"""

from __future__ import annotations

import math
import random
from typing import ClassVar, Final

from clipper_core.query_frontend.selection.base import (
    Feedback,
    OneModelPerQuery,
    SelectionQuery,
    candidate_weights,
    normalised,
)
from clipper_core.state import AppInfo, ModelId, PolicyState, SelectionPolicyName

__all__ = ["EXP3_ETA", "EXP3_MIN_GAMMA", "EXP3_WEIGHT_FLOOR", "Exp3Policy", "exploration"]

EXP3_ETA: Final = 0.5
EXP3_MIN_GAMMA: Final = 0.02
EXP3_WEIGHT_FLOOR: Final = 0.001


def exploration(rounds: int, arms: int, min_gamma: float = EXP3_MIN_GAMMA) -> float:
    """``gamma_t``: Auer et al.'s Exp3 gamma with the ``rounds`` seen so far as the horizon,
    floored at ``min_gamma`` (see the module docstring)."""
    if arms <= 1:
        return min_gamma
    horizon = max(rounds, 1)
    return max(min_gamma, min(1.0, math.sqrt(arms * math.log(arms) / ((math.e - 1) * horizon))))


class Exp3Policy(OneModelPerQuery):
    name: ClassVar[str] = SelectionPolicyName.EXP3
    learns: ClassVar[bool] = True
    is_ensemble: ClassVar[bool] = False

    def __init__(
        self,
        info: AppInfo | None = None,
        eta: float = EXP3_ETA,
        min_gamma: float = EXP3_MIN_GAMMA,
        rng: random.Random | None = None,
    ) -> None:
        self.eta = eta
        self.min_gamma = min_gamma
        self._rng = rng or random.Random()

    def probabilities(self, state: PolicyState, candidates: tuple[ModelId, ...]) -> list[float]:
        weights = candidate_weights(state, candidates)
        total = sum(weights)
        count = len(candidates)
        gamma = exploration(state.rounds, count, self.min_gamma)
        return [(1 - gamma) * w / total + gamma / count for w in weights]

    def select(self, state: PolicyState, query: SelectionQuery) -> tuple[ModelId, ...]:
        candidates = query.candidates
        if len(candidates) <= 1:
            return candidates
        return (self._rng.choices(candidates, self.probabilities(state, candidates))[0],)

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
        return PolicyState(
            {**state.weights, **normalised(weights, EXP3_WEIGHT_FLOOR)}, state.rounds + 1
        )

