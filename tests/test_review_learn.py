"""Learning from reviewers: decisions as labelled pairs, merged with generated truth, and the
report's override counts."""

from __future__ import annotations

import pandas as pd

from astradup.evaluation.io import check_truth
from astradup.report import figures
from astradup.report.sections import RunData, override_counts, reviewer_overrides
from astradup.review.learn import decisions_as_truth, merge_truth


def dec(rows):
    return pd.DataFrame(rows, columns=["a", "b", "decision", "label", "partial", "standing"])


D = dec([
    ("a.mp4", "b.mp4", "duplicate", "near", False, True),        # agreed
    ("a.mp4", "c.mp4", "not-duplicate", "exact", False, True),   # overrode
    ("c.mp4", "d.mp4", "duplicate", "similar", False, True),     # overrode
    ("d.mp4", "e.mp4", "duplicate", "near", True, True),         # partial called duplicate: overrode
    ("e.mp4", "f.mp4", "skip", "near", False, False),            # ignored
    ("f.mp4", "g.mp4", "not-duplicate", "different", False, True),  # agreed
    ("g.mp4", "h.mp4", "duplicate", "exact", False, False),      # files changed since: not standing
])


def test_decisions_become_labelled_pairs():
    t = decisions_as_truth(D)
    assert t[["a", "b", "relation"]].values.tolist() == [
        ["a.mp4", "b.mp4", "near"], ["a.mp4", "c.mp4", "different"], ["c.mp4", "d.mp4", "near"],
        ["d.mp4", "e.mp4", "partial"], ["f.mp4", "g.mp4", "different"]]
    assert len(decisions_as_truth(D, standing_only=False)) == 6
    check_truth(t)  # a valid truth table


def test_reviewers_win_over_generated_labels():
    truth = pd.DataFrame({"a": ["c.mp4", "b.mp4", "x.mp4"], "b": ["a.mp4", "z.mp4", "y.mp4"],
                          "relation": ["near", "different", "exact"], "transform": ["crop", "", "copy"],
                          "group": ["s1", "", "s2"]})
    truth.attrs["videos"] = ["a.mp4", "b.mp4", "c.mp4"]
    m = merge_truth(truth, decisions_as_truth(D))
    rel = {frozenset((a, b)): r for a, b, r in zip(m["a"], m["b"], m["relation"])}
    assert rel[frozenset(("a.mp4", "c.mp4"))] == "different"  # the reviewer replaced the generator's "near"
    assert rel[frozenset(("x.mp4", "y.mp4"))] == "exact" and len(m) == 2 + 5
    assert m.attrs["videos"] == ["a.mp4", "b.mp4", "c.mp4"]
    check_truth(m)


def test_override_counts_by_hand():
    c = override_counts(D).set_index("model label")
    assert c.loc["all", "decisions"] == 6 and c.loc["all", "overrode"] == 3
    assert c.loc["all", "override rate"] == 0.5
    assert (c.loc["exact", "overrode"], c.loc["near", "agreed"], c.loc["partial", "overrode"]) == (1, 1, 1)
    assert c.loc["different", "agreed"] == 1 and c.loc["similar", "overrode"] == 1
    fig = figures.reviewer_overrides(override_counts(D))
    assert [t.name for t in fig.data] == ["agreed", "overrode"] and "50%" in fig.layout.title.text
    assert override_counts(D.iloc[:0]).empty


def test_report_section_without_decisions_says_so():
    out = reviewer_overrides(RunData(pairs=pd.DataFrame(), config=None))
    assert "No reviewer decisions" in out[0].html
    out = reviewer_overrides(RunData(pairs=pd.DataFrame(), config=None, decisions=D))
    assert "override rate" in out[0].html and len(out) == 2
