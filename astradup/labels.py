"""The shared vocabulary: what a pair can be, in the truth and in the verdicts, and the columns of
``pairs.csv``.

Every module that names a relation, a label, a modality or a pairs column imports it from here, so
adding a class or a column is one edit. This module imports nothing from the package.

Two vocabularies describe a pair of videos:

* a **relation** is what the ground truth says the pair *is*: ``exact`` (both are the whole
  source, only re-encoded), ``near`` (a transformed copy), ``partial`` (one holds a stretch of the
  other), ``similar`` (same kind of content, not a copy) or ``different``;
* a **label** is what AstraDup *says* about it: ``exact``, ``near``, ``similar`` or ``different``
  (a partial copy is labelled ``near`` and flagged ``partial``).

Example:
    >>> from astradup.labels import RELATION_TO_LABEL, is_duplicate_label
    >>> RELATION_TO_LABEL["partial"], is_duplicate_label("near")
    ('near', True)
"""

from __future__ import annotations

#: Relations a ground-truth row may hold, strongest first.
RELATIONS: tuple[str, ...] = ("exact", "near", "partial", "similar", "different")
#: Labels a verdict may hold, strongest first (the fusion bands, then "different").
LABELS: tuple[str, ...] = ("exact", "near", "similar", "different")
#: Relations that make a pair a copy (what a de-duplicator should find).
POSITIVE_RELATIONS: tuple[str, ...] = ("exact", "near", "partial")
#: Labels that report a pair as a copy.
DUPLICATE_LABELS: tuple[str, ...] = ("exact", "near")
#: Relations whose two videos share content (they must stay on one side of a train/test split).
LINKED_RELATIONS: tuple[str, ...] = ("exact", "near", "partial", "similar")
#: Truth relation -> the label a perfect detector gives it (confusion-matrix class).
RELATION_TO_LABEL: dict[str, str] = {
    "exact": "exact", "near": "near", "partial": "near", "similar": "similar", "different": "different",
}
#: The label of a pair that no verdict or truth row mentions.
NO_MATCH = "different"

#: Per-modality scores a verdict carries, each in [0, 1] or missing.
MODALITIES: tuple[str, ...] = ("visual", "audio", "metadata")
#: The matched range in each video, seconds.
SEGMENT_COLUMNS: tuple[str, ...] = ("a_start", "a_end", "b_start", "b_end")
#: Columns of ``pairs.csv`` (``astradup match``) and of every pairs table the API returns, in order.
PAIR_COLUMNS: tuple[str, ...] = (
    "a", "b", "score", "label", *MODALITIES, "confidence", *SEGMENT_COLUMNS, "partial", "explanation",
)


def is_duplicate_label(label: str) -> bool:
    """Whether a verdict ``label`` reports the pair as a copy (``exact`` or ``near``)."""
    return label in DUPLICATE_LABELS


__all__ = [
    "DUPLICATE_LABELS",
    "LABELS",
    "LINKED_RELATIONS",
    "MODALITIES",
    "NO_MATCH",
    "PAIR_COLUMNS",
    "POSITIVE_RELATIONS",
    "RELATIONS",
    "RELATION_TO_LABEL",
    "SEGMENT_COLUMNS",
    "is_duplicate_label",
]
