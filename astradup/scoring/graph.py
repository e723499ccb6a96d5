"""Copies of a common video: what the pair graph adds to each pair's own evidence.

Two whole copies of one video are copies of each other, even where their edits (a crop against a
picture-in-picture copy, a banner against a re-encode with noise) leave too little in common for
the frame search to propose the pair or for its own evidence to carry it. After verification,
the pairs labelled ``exact`` or ``near`` form a graph of copies:

* :func:`expansion_pairs`: pairs of neighbours of a common video that were not candidates; they
  are verified like any other pair (``match.expand_top``).
* :func:`promote_by_hubs`: a pair whose own evidence says ``similar`` or ``different`` while
  both its videos are copies of a common video (at least one whole) is reported ``near``, scored
  by the weaker of the two links (the widest one-hop path), with the common video named in its
  explanation. The inference does not rest on the pair's own evidence (a picture-in-picture copy
  and a trailer of one video share little), so a ``different`` verdict is promoted like a
  ``similar`` one. A pair under ``match.min_score`` travels as its verdict only; one the graph
  would promote is verified again in full first (:func:`promotable_stubs`), so the threshold does
  not change what is promoted.
* :func:`hold_back_inconsistent`: a partial copy the graph contradicts is held back to
  ``similar``. If x holds a stretch of y and y lies inside h (y's match with h covers y), x holds
  a stretch of h too; when most of the verified pairs (x, h) say they are not copies, the match of
  x against y is the odd one out (another edit of the same footage, another stretch of a still
  camera, matching one copy by chance).

:func:`apply_graph` runs them in that order on a table of verified pairs (pairs the match scored
under ``match.min_score`` count as verdicts there; a table read back from the store holds only
the pairs written, so rescoring it can hold back fewer pairs than the match did).

A partial copy links to a common video for promotion only where the pixels confirm it and the
picture moves (for expansion, which only proposes a pair to verify, its partial verdict is enough):
its hashes agree on at least ``match.geometric_hash_hit`` of the path's frames (a re-edit that
zooms into one shot of a video shares its subject, not its pixels) and it is not a still shot
(``spread`` of at least :data:`~astradup.scoring.learned.STILL_SHOT`: another stretch of a still
camera looks the same), or the exact-moment check (:mod:`astradup.scoring.exact`) found its
frames at their moments in moving pictures (a quote of fast footage whose hashes, sampled out of
phase, are at chance). It then pairs only with the whole copies of that video (which hold all of
it, so the stretch too), never with another partial copy (two stretches need not overlap). A
stretch is lent to one video only where most of the copy's duplicates are that video's: when a
partial copy is a duplicate of more videos outside a common video and its duplicates than inside
them, its stretch looks like another video too (two stretches of one still shot, looped footage),
and that link is not lent. One hop only: a promoted pair never promotes another, so one wrong link
reaches at most the copies of one video. Each common video lends only its ``top`` best-scoring
links.

Example:
    >>> import pandas as pd
    >>> from astradup.config import AstradupConfig
    >>> df = pd.DataFrame({"a": ["s", "s", "x"], "b": ["x", "y", "y"], "score": [0.97, 0.9, 0.8],
    ...                    "label": ["exact", "near", "similar"], "partial": [False] * 3,
    ...                    "explanation": ["{}"] * 3})
    >>> promote_by_hubs(df, AstradupConfig())[["a", "b", "label"]].values.tolist()
    [['s', 'x', 'exact'], ['s', 'y', 'near'], ['x', 'y', 'near']]
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterable
from typing import Any, cast

import numpy as np
import pandas as pd

from astradup.config import AstradupConfig
from astradup.labels import DUPLICATE_LABELS
from astradup.scoring.learned import _squeeze
from astradup.scoring.similarity import BAND_EPS

Links = dict[Hashable, dict[Hashable, float]]  # video -> {common video: link score}


def copy_links(a: Iterable[Hashable], b: Iterable[Hashable], score: Iterable[float], label: Iterable[str],
               partial: Iterable[bool], explanation: Iterable[Any], cfg: AstradupConfig,
               confirmed: bool = True) -> tuple[Links, Links]:
    """The links of each video to the common videos it is a copy of: (whole, partial), each as
    ``video -> {hub: score}``. A hub lends only its ``match.expand_top`` best-scoring links (ties
    by name, so row order does not matter); partial links need pixel and motion evidence (above)
    unless ``confirmed`` is False: a pair proposed for verification is judged on its own
    evidence, so proposing needs no more than the partial verdict (:func:`expansion_pairs`)."""
    from astradup.scoring.learned import STILL_SHOT

    edges: dict[Hashable, list[tuple[float, str, Hashable, bool]]] = {}
    partners: dict[Hashable, set[Hashable]] = {}  # every duplicate of each video, links or not
    for x, y, s, lab, part, ex in zip(a, b, score, label, partial, explanation):
        if lab not in DUPLICATE_LABELS:
            continue
        partners.setdefault(x, set()).add(y)
        partners.setdefault(y, set()).add(x)
        part = bool(part)
        if part and confirmed:
            ev = _explanation(ex).get("evidence") or {}
            hit, spread = ev.get("hash_hit"), ev.get("spread")
            if not (hit is not None and hit >= cfg.match.geometric_hash_hit and spread is not None and spread >= STILL_SHOT) \
                    and not (cfg.match.exact_check and _moment_confirmed(ev)):
                continue
        edges.setdefault(x, []).append((-float(s), str(y), y, part))
        edges.setdefault(y, []).append((-float(s), str(x), x, part))
    whole: Links = {}
    partial_links: Links = {}
    for hub, lst in edges.items():
        for neg, _, v, part in sorted(lst, key=lambda e: e[:2])[: cfg.match.expand_top]:
            (partial_links if part else whole).setdefault(v, {})[hub] = -neg
    return whole, _attributed(partial_links, partners)


def _moment_confirmed(ev: dict) -> bool:
    """Whether the exact-moment check (:mod:`astradup.scoring.exact`) found the same moving
    pictures at the same moments: pixel and motion evidence as good as the hashes'."""
    from astradup.scoring.exact import confirmed, read_evidence

    return bool(confirmed(*read_evidence([ev]))[0])


def _attributed(partial_links: Links, partners: dict[Hashable, set[Hashable]]) -> Links:
    """``partial_links`` less each link of a partial copy x to a hub h where more of x's
    duplicates lie outside h and h's duplicates than inside: x's stretch looks like another
    video's too, so h cannot claim it."""
    out: Links = {}
    for x, hubs in partial_links.items():
        mine = partners.get(x, set())
        kept = {}
        for h, s in hubs.items():
            family = partners.get(h, set()) | {h}
            if len(mine - family) <= len(mine & family):
                kept[h] = s
        if kept:
            out[x] = kept
    return out


def _row_links(rows: list[dict], cfg: AstradupConfig, confirmed: bool = True) -> tuple[Links, Links]:
    """:func:`copy_links` of verified rows (dicts with ``a_id``, ``b_id``, ``score``, ``label``,
    ``partial``, ``explanation``), by video id."""
    return copy_links([int(r["a_id"]) for r in rows], [int(r["b_id"]) for r in rows], [r["score"] for r in rows],
                      [str(r.get("label", "")) for r in rows], [bool(r.get("partial")) for r in rows],
                      [r.get("explanation") for r in rows], cfg, confirmed)


def _explanation(ex: Any) -> dict:
    if isinstance(ex, dict):
        return ex
    return json.loads(ex) if isinstance(ex, str) and ex else {}


def expansion_pairs(rows: list[dict], cand: pd.DataFrame, cfg: AstradupConfig) -> pd.DataFrame:
    """Pairs (video ids ``a`` < ``b``) of copies of a common video, at least one of them whole
    (verified ``rows`` with ``a_id``, ``b_id``, ``score``, ``label``, ``partial``,
    ``explanation``), less the pairs already in ``cand``; sorted, so the result does not depend on
    the order rows arrived in. A partial copy is proposed with the whole copies of a video it is a
    partial copy of even where its hashes do not confirm the link (a trailer's quote sampled out
    of phase): the pair is verified on its own evidence, and only a confirmed link promotes."""
    whole, part = _row_links(rows, cfg, confirmed=False)
    whole_of: dict[Hashable, list[int]] = {}  # hub -> its whole copies
    part_of: dict[Hashable, list[int]] = {}  # hub -> its linked partial copies
    for links, members in ((whole, whole_of), (part, part_of)):
        for v, hubs in links.items():
            for hub in hubs:
                members.setdefault(hub, []).append(cast(int, v))  # ids in, ids out
    have = {(min(x, y), max(x, y)) for x, y in zip(cand["a"].astype(int).tolist(), cand["b"].astype(int).tolist())}
    new: set[tuple[int, int]] = set()
    for hub, w in whole_of.items():
        w = sorted(w)
        for i, x in enumerate(w):
            new.update((min(x, y), max(x, y)) for y in w[i + 1:] + part_of.get(hub, []) if x != y)
    out = sorted(new - have)
    return pd.DataFrame({"a": [x for x, _ in out], "b": [y for _, y in out]}, dtype="int64")


def promotable_stubs(rows: list[dict], cfg: AstradupConfig) -> pd.DataFrame:
    """The verdict-only stubs among verified ``rows`` (``a_id``, ``b_id``, ``score``, ``label``,
    ``partial``, ``explanation``; a stub's explanation is empty) whose videos are copies of a
    common video: :func:`promote_by_hubs` would promote them, so they are verified again in full
    first, and a match under ``match.min_score`` promotes what one at 0 does. Ids ``a`` < ``b``,
    sorted; empty when ``match.expand_top`` is 0."""
    stubs = sorted((min(int(r["a_id"]), int(r["b_id"])), max(int(r["a_id"]), int(r["b_id"])))
                   for r in rows if not r.get("explanation") and r.get("label") in ("similar", "different"))
    if not cfg.match.expand_top or not stubs:
        return pd.DataFrame({"a": [], "b": []}, dtype="int64")
    whole, part = _row_links(rows, cfg)
    out = [(a, b) for a, b in stubs if _best_hub(a, b, whole, part) is not None]
    return pd.DataFrame({"a": [a for a, _ in out], "b": [b for _, b in out]}, dtype="int64")


def _best_hub(a: Hashable, b: Hashable, whole: Links, part: Links) -> tuple[Hashable, float, float, float] | None:
    """The common video with the strongest weaker link (one of the two links whole), if any:
    (hub, min link, link of a, link of b)."""
    wa, wb, pa, pb = whole.get(a, {}), whole.get(b, {}), part.get(a, {}), part.get(b, {})
    best: tuple[Hashable, float, float, float] | None = None
    for hub in sorted((set(wa) & (set(wb) | set(pb))) | (set(pa) & set(wb)), key=str):
        sa, sb = wa.get(hub, pa.get(hub, 0.0)), wb.get(hub, pb.get(hub, 0.0))
        if best is None or min(sa, sb) > best[1]:
            best = (hub, min(sa, sb), sa, sb)
    return best


def _containers(pairs: pd.DataFrame, ex: dict[int, dict], cfg: AstradupConfig) -> dict[Hashable, set[Hashable]]:
    """``video -> videos it lies inside``: from each duplicate row (``ex``: row -> explanation), a
    side whose share covered by the aligned path is at least ``match.partial_coverage`` lies
    inside the other video."""
    inside: dict[Hashable, set[Hashable]] = {}
    for i, e in ex.items():
        a, b, vis = pairs["a"].iat[i], pairs["b"].iat[i], e.get("visual") or {}
        if float(vis.get("coverage_a") or 0.0) >= cfg.match.partial_coverage:
            inside.setdefault(a, set()).add(b)
        if float(vis.get("coverage_b") or 0.0) >= cfg.match.partial_coverage:
            inside.setdefault(b, set()).add(a)
    return inside


def hold_back_inconsistent(pairs: pd.DataFrame, cfg: AstradupConfig) -> pd.DataFrame:
    """``pairs`` with each ``near`` partial copy (x, y) that the graph contradicts turned
    ``similar``: over the videos h that y (or x) lies inside, the verified pairs (x, h) (or (y, h))
    labelled ``different`` outnumber those labelled copies (``similar``, same material but
    undecided, counts neither way). Its score is squeezed under the "near" band
    (order kept), ``partial`` cleared, and its explanation gains ``inconsistent`` (pairs checked,
    how many said ``different``). Pairs nobody verified do not count; order and other rows are
    unchanged; off when ``match.expand_top`` is 0."""
    if not cfg.match.expand_top or not len(pairs):
        return pairs
    dup = np.flatnonzero(pairs["label"].isin(DUPLICATE_LABELS).to_numpy())
    ex = {int(i): _explanation(pairs["explanation"].iat[i]) for i in dup}  # all the graph reads
    inside = _containers(pairs, ex, cfg)
    verdict = {}
    for x, y, lab in zip(pairs["a"], pairs["b"], pairs["label"]):
        if lab != "similar":  # same material, undecided: counts neither way
            verdict[(x, y)] = verdict[(y, x)] = lab in DUPLICATE_LABELS
    out = pairs.copy()
    bands = cfg.fusion
    hi = max(bands.near - BAND_EPS, bands.similar)
    promoted = out["explanation"].astype(str).str.contains('"transitive"', regex=False).to_numpy()
    cand = (out["label"] == "near").to_numpy() & out["partial"].astype(bool).to_numpy() & ~promoted
    for i in np.flatnonzero(cand):
        a, b = out["a"].iat[i], out["b"].iat[i]
        says = [verdict.get((x, h)) for x, y in ((a, b), (b, a)) for h in sorted(inside.get(y, set()) - {x}, key=str)]
        checked = [v for v in says if v is not None]
        against = sum(not v for v in checked)
        if against * 2 <= len(checked):
            continue
        s = float(out["score"].iat[i])
        e = dict(ex[int(i)])
        e["inconsistent"] = {"checked": len(checked), "not_copies": against, "own_score": round(s, 4)}
        e["band"] = "similar"
        out.iat[i, out.columns.get_loc("score")] = float(_squeeze(np.asarray(s), bands.similar, hi))  # order kept
        out.iat[i, out.columns.get_loc("label")] = "similar"
        out.iat[i, out.columns.get_loc("partial")] = False
        out.iat[i, out.columns.get_loc("explanation")] = json.dumps(e, separators=(",", ":"))
    return out


def apply_graph(pairs: pd.DataFrame, cfg: AstradupConfig) -> pd.DataFrame:
    """The pair graph over verified pairs (order of rows kept): :func:`promote_by_hubs`, then
    :func:`hold_back_inconsistent` on the partial copies the pairs' own evidence called ``near``
    (promoted pairs count as copies there); a promotion that leaned on a link it held back is
    undone."""
    own = _clear_graph(pairs)
    promoted = promote_by_hubs(own, cfg)
    out = hold_back_inconsistent(promoted, cfg)
    held = out["explanation"].astype(str).str.contains('"inconsistent"', regex=False).to_numpy()
    if not held.any():
        return out
    gone = {frozenset((str(a), str(b))) for a, b in zip(out["a"].to_numpy()[held], out["b"].to_numpy()[held])}
    for i in np.flatnonzero(out["explanation"].astype(str).str.contains('"transitive"', regex=False).to_numpy()):
        via = json.loads(out["explanation"].iat[i])["transitive"]["via"]
        a, b = out["a"].iat[i], out["b"].iat[i]
        if frozenset((str(a), via)) in gone or frozenset((str(b), via)) in gone:
            out.iloc[i] = own.iloc[i]
    return out


def _clear_graph(pairs: pd.DataFrame) -> pd.DataFrame:
    """Explanations without the graph's notes of an earlier match (``transitive``,
    ``inconsistent``): the graph judges each pair again from its own verdict."""
    marked = pairs["explanation"].astype(str).str.contains('"(?:transitive|inconsistent)"', regex=True).to_numpy() \
        if len(pairs) else np.zeros(0, bool)
    if not marked.any():
        return pairs
    out = pairs.copy()
    for i in np.flatnonzero(marked):
        e = json.loads(out["explanation"].iat[i])
        e.pop("transitive", None)
        e.pop("inconsistent", None)
        e["band"] = out["label"].iat[i]
        out.iat[i, out.columns.get_loc("explanation")] = json.dumps(e, separators=(",", ":"))
    return out


def promote_by_hubs(pairs: pd.DataFrame, cfg: AstradupConfig) -> pd.DataFrame:
    """``pairs`` (a, b, score, label, partial, explanation) with each ``similar`` pair (or
    ``different`` pair with its evidence) whose videos are both copies of a common video, at least
    one of them whole (partial links as in :func:`copy_links`), turned ``near``: its score
    becomes the weaker link's
    (below the "exact" band), ``partial`` is set when its own path covers under
    ``match.partial_coverage`` of either video, and its explanation gains ``transitive`` (the
    common video, both links, its own score and label). Other rows are unchanged; nothing is
    promoted when ``match.expand_top`` is 0. Links come from the rows as given (one hop)."""
    if not cfg.match.expand_top or not len(pairs):
        return pairs
    whole, part = copy_links(pairs["a"], pairs["b"], pairs["score"], pairs["label"], pairs["partial"],
                             pairs["explanation"], cfg)
    out = pairs.copy()
    cap = max(cfg.fusion.exact - BAND_EPS, cfg.fusion.near)  # below "exact", as learned_verdict caps
    # a verdict kept without its evidence is not promoted (run_match verifies again in full the
    # stubs under match.min_score that would be: promotable_stubs)
    kept = out["explanation"].map(lambda e: isinstance(e, (str, dict)) and bool(e)).to_numpy(dtype=bool)
    lab = out["label"].to_numpy()
    rows = np.flatnonzero((lab == "similar") | ((lab == "different") & kept))
    for i in rows:
        found = _best_hub(out["a"].iat[i], out["b"].iat[i], whole, part)
        if found is None:
            continue
        hub, s, sa, sb = found
        ex = out["explanation"].iat[i]
        ex = json.loads(ex) if isinstance(ex, str) and ex else {}
        vis = ex.get("visual") or {}
        cov = min(float(vis.get("coverage_a", 1.0)), float(vis.get("coverage_b", 1.0)))
        ex["transitive"] = {"via": str(hub), "links": [round(sa, 4), round(sb, 4)],
                            "own_score": round(float(out["score"].iat[i]), 4), "own_label": str(out["label"].iat[i])}
        ex["band"] = "near"
        out.iat[i, out.columns.get_loc("score")] = min(max(s, float(out["score"].iat[i])), cap)
        out.iat[i, out.columns.get_loc("label")] = "near"
        out.iat[i, out.columns.get_loc("partial")] = bool(cov < cfg.match.partial_coverage)
        out.iat[i, out.columns.get_loc("explanation")] = json.dumps(ex, separators=(",", ":"))
    return out
