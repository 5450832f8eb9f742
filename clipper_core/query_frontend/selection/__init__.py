"""Model selection policies (Clipper NSDI'17 section 5): which linked models answer a query.

The policy table: each name an application record may carry, and the class that serves it.
A new policy is one module of this package and one line here.
"""

from clipper_core.query_frontend.selection.ab import ABSplitPolicy
from clipper_core.query_frontend.selection.base import (
    Combined,
    Feedback,
    SelectionPolicy,
    SelectionQuery,
    policy_names,
    register,
    resolve_policy,
    zero_one_loss,
)
from clipper_core.query_frontend.selection.default import DefaultOutputSelectionPolicy
from clipper_core.query_frontend.selection.exp3 import Exp3Policy
from clipper_core.query_frontend.selection.exp4 import Exp4Policy
from clipper_core.query_frontend.selection.states import PolicyStates
from clipper_core.state import SelectionPolicyName

__all__ = [
    "ABSplitPolicy",
    "Combined",
    "DefaultOutputSelectionPolicy",
    "Exp3Policy",
    "Exp4Policy",
    "Feedback",
    "PolicyStates",
    "SelectionPolicy",
    "SelectionQuery",
    "policy_names",
    "resolve_policy",
    "zero_one_loss",
]

register(SelectionPolicyName.DEFAULT, DefaultOutputSelectionPolicy)
register(SelectionPolicyName.EXP3, Exp3Policy)
register(SelectionPolicyName.EXP4, Exp4Policy)
register(SelectionPolicyName.AB, ABSplitPolicy)
