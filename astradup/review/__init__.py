"""Review, decisions and safe actions: from pairs to a storage plan a person can sign off.

The stages, in order (each a module; the CLI and notebooks call these functions):

* :mod:`~astradup.review.decisions`: reviewers' duplicate / not-duplicate / skip decisions.
* :mod:`~astradup.review.queue`: the pairs still needing a person, most valuable first.
* :mod:`~astradup.review.groups`: duplicate groups without daisy chains.
* :mod:`~astradup.review.plan`: keep rules and legal holds -> a plan (JSON + CSV); changes nothing.
* :mod:`~astradup.review.actions`: apply a plan (journaled, to a quarantine) and undo it.
* :mod:`~astradup.review.widget`: the JupyterLab review widget (ipywidgets, imported lazily).
"""

from __future__ import annotations

from astradup.review.actions import ActionResult, action_history, apply_plan, audit_log, undo
from astradup.review.decisions import DECISIONS, decisions, record_decision
from astradup.review.groups import duplicate_groups, known_removed
from astradup.review.plan import KeepRules, make_plan, plan_table, read_plan, write_plan
from astradup.review.queue import review_queue

__all__ = [
    "DECISIONS",
    "ActionResult",
    "KeepRules",
    "action_history",
    "apply_plan",
    "audit_log",
    "decisions",
    "duplicate_groups",
    "known_removed",
    "make_plan",
    "plan_table",
    "read_plan",
    "record_decision",
    "review_queue",
    "undo",
    "write_plan",
]
