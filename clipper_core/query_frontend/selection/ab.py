"""A fixed-weight split between linked models (A/B tests, canaries): no learning.

Each query asks one model, drawn in proportion to the application's ``policy_weights``
(model name -> weight); a linked model without a weight gets none of the traffic, and with no
weight set at all the split is even.
"""

from __future__ import annotations

import random
from typing import ClassVar

from clipper_core.query_frontend.selection.base import OneModelPerQuery, SelectionQuery
from clipper_core.state import AppInfo, ModelId, PolicyState, SelectionPolicyName

__all__ = ["ABSplitPolicy"]


class ABSplitPolicy(OneModelPerQuery):
    name: ClassVar[str] = SelectionPolicyName.AB
    learns: ClassVar[bool] = False
    is_ensemble: ClassVar[bool] = False

    def __init__(self, info: AppInfo | None = None, rng: random.Random | None = None) -> None:
        self.split = dict(info.policy_weights) if info is not None else {}
        self._rng = rng or random.Random()

    def select(self, state: PolicyState, query: SelectionQuery) -> tuple[ModelId, ...]:
        candidates = query.candidates
        if not self.split:
            return (self._rng.choice(candidates),) if candidates else ()
        weights = [self.split.get(m.name, 0.0) for m in candidates]
        if not any(w > 0 for w in weights):
            return ()
        return (self._rng.choices(candidates, weights)[0],)
