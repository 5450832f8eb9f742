"""Exp4 (Clipper NSDI'17 section 5.2.2): a weighted ensemble of every linked model.

Each query asks every candidate; the answer is the output with the largest total weight among
the members that answered by the deadline (a straggler is simply absent: it neither votes nor
counts in the confidence). Confidence = that weight / the weight of the members that answered;
below the application's threshold the answer is the default output, saying so. Feedback has
every member's loss: ``w_i <- w_i * exp(-eta * loss_i)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar, Final

from clipper_core.query_frontend.selection.base import (
    Combined,
    Feedback,
    SelectionQuery,
    candidate_weights,
    normalised,
    vote_key,
)
from clipper_core.state import (
    DEFAULT_CONFIDENCE_THRESHOLD,
    AppInfo,
    ModelId,
    PolicyState,
    SelectionPolicyName,
)

__all__ = ["EXP4_ETA", "EXP4_WEIGHT_FLOOR", "Exp4Policy", "low_confidence_explanation"]

# Tuned on make bench-selection's digits models (a simulation over their predictions): a wrong
# member loses weight fast (re-routing in tens of rounds), and the floor keeps a repaired model's
# vote large enough to count again (Exp3 explores instead, so it floors lower).
EXP4_ETA: Final = 0.5
EXP4_WEIGHT_FLOOR: Final = 0.05


def low_confidence_explanation(confidence: float, threshold: float, answered: int, members: int) -> str:
    return (
        f"Low confidence: the ensemble's weighted agreement {confidence:.3f} is below the "
        f"application's confidence threshold {threshold:g} ({answered} of {members} models answered)"
    )


class Exp4Policy:
    name: ClassVar[str] = SelectionPolicyName.EXP4
    learns: ClassVar[bool] = True
    is_ensemble: ClassVar[bool] = True

    def __init__(self, info: AppInfo | None = None, eta: float = EXP4_ETA) -> None:
        threshold = info.confidence_threshold if info is not None else None
        self.threshold = DEFAULT_CONFIDENCE_THRESHOLD if threshold is None else threshold
        self.eta = eta

    def select(self, state: PolicyState, query: SelectionQuery) -> tuple[ModelId, ...]:
        return query.candidates

    def combine(
        self, state: PolicyState, query: SelectionQuery, predictions: Mapping[ModelId, bytes]
    ) -> Combined:
        if not predictions:
            return Combined(None, 0.0)
        answered = tuple(predictions)
        votes: dict[object, float] = {}
        best_of: dict[object, tuple[float, bytes]] = {}
        for model, weight in zip(answered, candidate_weights(state, answered), strict=True):
            output = predictions[model]
            key = vote_key(output)
            votes[key] = votes.get(key, 0.0) + weight
            if key not in best_of or weight > best_of[key][0]:
                best_of[key] = (weight, output)  # the heaviest member's spelling of the answer
        total = sum(votes.values())
        winner = max(votes, key=votes.__getitem__)  # first-inserted wins a tie (member order)
        confidence = votes[winner] / total if total > 0 else 0.0
        if confidence < self.threshold:
            explanation = low_confidence_explanation(
                confidence, self.threshold, len(answered), len(query.candidates)
            )
            return Combined(None, confidence, explanation)
        return Combined(best_of[winner][1], confidence)

    def feedback_models(
        self, state: PolicyState, query: SelectionQuery, cached: frozenset[ModelId]
    ) -> tuple[ModelId, ...]:
        return query.candidates

    def observe(self, state: PolicyState, query: SelectionQuery, feedback: Feedback) -> PolicyState:
        candidates = query.candidates
        if not candidates:
            return state
        weights = dict(zip((m.name for m in candidates), candidate_weights(state, candidates), strict=True))
        for name, loss in feedback.losses.items():
            if name in weights:
                weights[name] *= math.exp(-self.eta * loss)
        return PolicyState({**state.weights, **normalised(weights, EXP4_WEIGHT_FLOOR)}, state.rounds + 1)

