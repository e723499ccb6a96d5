"""Review, decisions and safe actions: from pairs to a storage plan a person can sign off.

* :mod:`~astradup.review.decisions`: reviewers' duplicate / not-duplicate / skip decisions.
* :mod:`~astradup.review.queue`: the pairs still needing a person, most valuable first.
"""

from __future__ import annotations

from astradup.review.decisions import DECISIONS, decisions, record_decision
from astradup.review.queue import review_queue

__all__ = ["DECISIONS", "decisions", "record_decision", "review_queue"]
