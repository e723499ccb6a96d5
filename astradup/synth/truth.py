"""Ground truth from provenance: which material each video shows, and when.

Every generated video carries *spans*: "video seconds ``v0..v1`` show material ``m`` seconds
``m0..m1``" (linearly, so a speed change is a span whose lengths differ). A material is one
rendering of procedural content or one file of the user's; audio is not material (a video that
only shares a soundtrack shares no span). Pairs are derived, never hand-listed:

* the videos show an overlapping stretch (at least ``min_overlap`` seconds) of one material:
  ``exact`` if both are pure re-encodes/re-wraps of the same whole stretch, ``near`` if the overlap
  covers at least ``near_coverage`` of each video's duration, ``partial`` otherwise;
* they show the same material but stretches that do not overlap: ``similar``;
* otherwise they are unrelated and not listed.

This is a pure module (no ffmpeg), so the rules are tested on examples small enough to check by
hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

TRUTH_COLUMNS = ["a", "b", "relation", "transform", "a_start", "a_end", "b_start", "b_end", "group"]


@dataclass(frozen=True)
class Span:
    """Video seconds ``[v0, v1]`` show material ``material`` seconds ``[m0, m1]``, linearly."""

    material: str
    m0: float
    m1: float
    v0: float
    v1: float

    def to_video(self, m: float) -> float:
        if self.m1 == self.m0:
            return self.v0
        return self.v0 + (m - self.m0) * (self.v1 - self.v0) / (self.m1 - self.m0)


@dataclass
class VideoRecord:
    """One generated video as the truth sees it.

    Attributes:
        name: file name inside the output folder.
        transform: ``"source"``, a copy transform's name, or a structural kind.
        spans: the material it shows.
        exact: True for sources and for copies that only re-encode or re-wrap.
        duration: seconds (measured after encoding where possible).
        edit: a different edit of its material (shots re-ordered, re-framed, other music): it is
            ``similar`` to every video that shows the same material, whatever the overlap.
    """

    name: str
    transform: str
    spans: list[Span] = field(default_factory=list)
    exact: bool = False
    duration: float = 0.0
    edit: bool = False


def relate(
    a: VideoRecord,
    b: VideoRecord,
    groups: dict[str, str],
    min_overlap: float = 0.5,
    near_coverage: float = 0.7,
) -> dict | None:
    """The truth row for one pair, or None when the two are unrelated."""
    best = None  # (overlap seconds in material, a0, a1, b0, b1, material)
    covered_a = covered_b = 0.0
    shared: str | None = None
    for sa in a.spans:
        for sb in b.spans:
            if sa.material != sb.material:
                continue
            shared = shared or sa.material
            lo, hi = max(sa.m0, sb.m0), min(sa.m1, sb.m1)
            if hi - lo < min_overlap:
                continue
            a0, a1 = sa.to_video(lo), sa.to_video(hi)
            b0, b1 = sb.to_video(lo), sb.to_video(hi)
            covered_a += a1 - a0
            covered_b += b1 - b0
            if best is None or hi - lo > best[0]:
                best = (hi - lo, a0, a1, b0, b1, sa.material)
    if shared is None:
        return None
    if a.edit or b.edit:
        best = None  # another edit of the material: similar, not a copy
    label = (
        a.transform
        if b.transform == "source"
        else b.transform
        if a.transform == "source"
        else f"{a.transform}+{b.transform}"
    )
    row: dict[str, object] = {"a": a.name, "b": b.name, "transform": label}
    if best is None:
        row.update(
            relation="similar",
            a_start=None,
            a_end=None,
            b_start=None,
            b_end=None,
            group=groups.get(shared, shared),
        )
        return row
    cov_a = covered_a / a.duration if a.duration > 0 else 0.0
    cov_b = covered_b / b.duration if b.duration > 0 else 0.0
    if a.exact and b.exact and min(cov_a, cov_b) >= 0.97:
        relation = "exact"
    elif min(cov_a, cov_b) >= near_coverage:
        relation = "near"
    else:
        relation = "partial"
    _, a0, a1, b0, b1, material = best
    row.update(
        relation=relation,
        a_start=round(max(0.0, a0), 3),
        a_end=round(min(a1, a.duration) if a.duration else a1, 3),
        b_start=round(max(0.0, b0), 3),
        b_end=round(min(b1, b.duration) if b.duration else b1, 3),
        group=groups.get(material, material),
    )
    return row


def ground_truth(
    videos: list[VideoRecord],
    groups: dict[str, str],
    min_overlap: float = 0.5,
    near_coverage: float = 0.7,
    extra: list[tuple[str, str, str, str, str]] | tuple = (),
) -> pd.DataFrame:
    """All related pairs among ``videos`` (``a`` before ``b`` in list order), one row each.

    Args:
        videos: the corpus, in the order its listing uses (sources before their copies).
        groups: material id -> group label written in the ``group`` column.
        min_overlap: shorter shared stretches (seconds) count as not overlapping.
        near_coverage: the fraction of each video the overlap must cover for ``near``.
        extra: pairs provenance cannot relate, as ``(a, b, relation, transform, group)`` (the hard
            negatives' ``different`` pairs); a pair that provenance relates keeps its derived row.
    """
    by_material: dict[str, list[int]] = {}
    for i, v in enumerate(videos):
        for m in {s.material for s in v.spans}:
            by_material.setdefault(m, []).append(i)
    pairs = sorted({(i, j) for idx in by_material.values() for i in idx for j in idx if i < j})
    rows = [
        r
        for i, j in pairs
        if (r := relate(videos[i], videos[j], groups, min_overlap, near_coverage))
    ]
    if extra:
        index = {v.name: i for i, v in enumerate(videos)}
        seen = {(index[str(r["a"])], index[str(r["b"])]) for r in rows}
        for a, b, relation, transform, group in extra:
            i, j = sorted((index[a], index[b]))
            if i == j or (i, j) in seen:
                continue
            seen.add((i, j))
            rows.append(
                {"a": videos[i].name, "b": videos[j].name, "relation": relation}
                | {"transform": transform, "group": group}
            )
        rows.sort(key=lambda r: (index[str(r["a"])], index[str(r["b"])]))
    frame = pd.DataFrame(rows, columns=TRUTH_COLUMNS)
    for col in ("a_start", "a_end", "b_start", "b_end"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    return frame
