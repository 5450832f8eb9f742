"""The original's only policy: ask the first linked model that has a current version."""

from __future__ import annotations

from typing import ClassVar

from clipper_core.query_frontend.selection.base import OneModelPerQuery, SelectionQuery
from clipper_core.state import AppInfo, ModelId, PolicyState, SelectionPolicyName

__all__ = ["DefaultOutputSelectionPolicy"]


class DefaultOutputSelectionPolicy(OneModelPerQuery):
    """One model per query, no state, no learning (core spec 3.1): today's behaviour."""

    name: ClassVar[str] = SelectionPolicyName.DEFAULT
    learns: ClassVar[bool] = False
    is_ensemble: ClassVar[bool] = False

    def __init__(self, info: AppInfo | None = None) -> None:
        pass

    def select(self, state: PolicyState, query: SelectionQuery) -> tuple[ModelId, ...]:
        return query.candidates[:1]  # extra candidates are ignored, as the original logs and ignores them
