"""Tuning: a synthetic table whose right thresholds are known, the grouped split, storage."""

from __future__ import annotations

import dataclasses

import numpy as np
import optuna
import pandas as pd
import pytest

from astradup.config import AstradupConfig, FusionConfig
from astradup.errors import ConfigError
from astradup.evaluation import evaluate
from astradup.tuning import (
    DEFAULT_SEARCH_SPACE,
    SearchSpace,
    default_storage,
    refuse,
    split_by_group,
    storage_url,
    tune,
    video_groups,
)


def synthetic(n_sources: int = 30, copies: int = 3, n_distractors: int = 50, seed: int = 0):
    """Copies score visual ~0.80 and audio ~0.80; other pairs visual ~0.60 and audio ~0.50.

    Fused with the default weights, copies land near 0.80: below the default near band (0.85),
    so the default config finds none of them, while any near band in about (0.66, 0.74) finds
    them all.
    """
    rng = np.random.default_rng(seed)
    videos, sources, truth = [], {}, []
    for s in range(n_sources):
        src = f"src{s:03d}.mp4"
        videos.append(src)
        for c in range(copies):
            copy = f"src{s:03d}_copy{c}.mp4"
            videos.append(copy)
            sources[copy] = src
            truth.append((copy, src, "near", ["crop", "reencode", "speed"][c], f"g{s}"))
    videos += [f"distractor{d:03d}.mp4" for d in range(n_distractors)]
    t = pd.DataFrame(truth, columns=["a", "b", "relation", "transform", "group"])
    positive = {frozenset(k) for k in zip(t["a"], t["b"], strict=True)}
    rows = [(a, b, rng.normal(0.80, 0.02), rng.normal(0.80, 0.05), "near") for a, b in zip(t["a"], t["b"], strict=True)]
    names = np.array(videos)
    while len(rows) < 5 * len(t):
        a, b = rng.choice(names, 2, replace=False)
        if frozenset((a, b)) not in positive:
            rows.append((a, b, rng.normal(0.60, 0.03), rng.normal(0.50, 0.10), "different"))
    p = pd.DataFrame(rows, columns=["a", "b", "visual", "audio", "label"])
    p[["visual", "audio"]] = p[["visual", "audio"]].clip(0, 1)
    p["metadata"] = np.nan
    p["score"] = 0.0  # stale: tuning re-fuses from the modality columns
    t.attrs["videos"] = videos
    t.attrs["video_groups"] = sources
    return p, t


@pytest.fixture(scope="module")
def data():
    return synthetic()


@pytest.fixture(scope="module")
def tuned(data):
    pairs, truth = data
    return tune(pairs, truth, n_trials=40, seed=0)


def test_tuning_beats_the_default_on_validation(tuned):
    assert tuned.default_val_metrics["f1"] == 0.0  # near=0.85 misses every copy
    assert tuned.val_metrics["f1"] >= 0.95
    assert tuned.train_metrics["f1"] >= 0.95
    assert 0.6 < tuned.best_config.fusion.near < 0.8
    assert tuned.val_metrics["n_positive"] > 0 and tuned.train_metrics["n_positive"] > 0


def test_trial_fast_path_matches_evaluate(tuned, data):
    """The per-trial metrics (joined once, re-fused arrays) equal evaluate() on re-fused pairs."""
    best = max((t for t in tuned.study.trials if t.value is not None), key=lambda t: t.value)
    assert best.user_attrs["config"] == tuned.best_params
    for k, v in tuned.train_metrics.items():
        stored = best.user_attrs["train_metrics"][k]
        assert (stored is None and np.isnan(v)) or stored == pytest.approx(v), k


def test_first_trial_is_the_base_config(tuned):
    first = tuned.study.trials[0].user_attrs["config"]
    base = AstradupConfig().fusion
    for k, v in first.items():
        assert v == pytest.approx(getattr(base, k.split(".")[1])), k
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in tuned.study.trials)


def test_split_never_splits_a_group(data):
    _, truth = data
    groups = video_groups(truth)
    for seed in range(5):
        train, val = split_by_group(truth, None, 0.3, seed)
        assert not set(train) & set(val)
        assert set(train) | set(val) == set(truth.attrs["videos"])
        g_train, g_val = set(groups[train]), set(groups[val])
        assert not g_train & g_val
        assert 0.2 < len(val) / (len(train) + len(val)) < 0.4
        for a, b in zip(truth["a"], truth["b"], strict=True):
            assert (a in val) == (b in val)
    # distractors are spread over both sides, and the seed changes the split
    train, val = split_by_group(truth, None, 0.5, 0)
    assert any(v.startswith("distractor") for v in train) and any(v.startswith("distractor") for v in val)
    assert split_by_group(truth, None, 0.5, 1) != (train, val)


def test_groups_come_from_every_source_of_links():
    truth = pd.DataFrame({"a": ["x1", "y1"], "b": ["x2", "y2"], "relation": ["similar", "different"],
                          "group": ["", "G"]})
    truth.attrs["video_groups"] = {"z1": "x2", "z2": "G"}  # z1's source is a path, z2's a label
    g = video_groups(truth, ["x1", "x2", "y1", "y2", "z1", "z2", "w"])
    assert g["x1"] == g["x2"] == g["z1"]  # linked by the similar relation and by source path
    assert g["y1"] == g["y2"] == g["z2"]  # linked by group G
    assert len({g["x1"], g["y1"], g["w"]}) == 3


def test_written_config_round_trips(tuned, tmp_path, monkeypatch):
    for var in ("DUPLICATE_THRESHOLD", "NEAR_DUPLICATE_THRESHOLD", "SIMILAR_THRESHOLD"):
        monkeypatch.delenv(var, raising=False)
    path = tmp_path / "tuned.yaml"
    tuned.write_config(path)
    assert AstradupConfig.from_file(path) == tuned.best_config
    assert tuned.best_config.fusion != FusionConfig()


def test_bad_arguments_raise_config_error(data):
    pairs, truth = data
    with pytest.raises(ConfigError, match="objective 'auc' is unknown"):
        tune(pairs, truth, objective="auc", n_trials=1)
    with pytest.raises(ConfigError, match="unknown search-space field"):
        tune(pairs, truth, search_space={"fusion.nearr": [0.5, 0.9]}, n_trials=1)
    with pytest.raises(ConfigError, match="rescore"):
        tune(pairs, truth, search_space={"match.min_score": [0.1, 0.9]}, n_trials=1)
    with pytest.raises(ConfigError, match="low <= high"):
        SearchSpace({"fusion.near": [0.9, 0.5]})
    with pytest.raises(ConfigError, match="val_fraction"):
        split_by_group(truth, None, 1.0, 0)


def test_bands_stay_ordered_in_user_ranges():
    space = SearchSpace({"fusion.near": [0.6, 0.9], "fusion.exact": [0.7, 1.0], "fusion.similar": [0.5, 0.8]})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(200):
        trial = study.ask()
        v = space.sample(trial, AstradupConfig())
        assert v["fusion.similar"] <= v["fusion.near"] <= v["fusion.exact"]
        assert 0.6 <= v["fusion.near"] <= 0.9 and 0.7 <= v["fusion.exact"] <= 1.0 and 0.5 <= v["fusion.similar"] <= 0.8
        study.tell(trial, 0.0)


def test_recall_at_precision_respects_the_floor(data):
    pairs, truth = data
    r = tune(pairs, truth, objective="recall_at_precision", min_precision=0.99, n_trials=30, seed=1)
    best = max((t for t in r.study.trials if all(c <= 0 for c in t.user_attrs["constraints"])),
               key=lambda t: t.value)
    assert r.train_metrics["precision"] >= 0.99
    assert r.train_metrics["recall"] == pytest.approx(best.user_attrs["objective"])
    assert r.val_metrics["recall"] > r.default_val_metrics["recall"]


def test_micro_ap_tunes_weights_only(data):
    pairs, truth = data
    r = tune(pairs, truth, objective="micro_ap", n_trials=10)
    assert set(r.best_params) == {"fusion.visual", "fusion.audio", "fusion.metadata"}
    assert r.best_config.fusion.near == FusionConfig().near
    assert r.val_metrics["micro_ap"] >= r.default_val_metrics["micro_ap"] - 1e-9


def test_max_fpr_constraint(data):
    pairs, truth = data
    r = tune(pairs, truth, max_fpr=0.0, n_trials=25, seed=2)
    assert r.train_metrics["fpr"] == 0.0


def test_storage_persists_and_resumes(data, tmp_path, capsys):
    pairs, truth = data
    db = tmp_path / "study.db"
    first = tune(pairs, truth, n_trials=4, storage=db, study_name="s")
    assert db.is_file()
    again = tune(pairs, truth, n_trials=3, storage=str(db), study_name="s")
    assert len(again.study.trials) == 7
    assert len(optuna.load_study(study_name="s", storage=storage_url(db)).trials) == 7
    assert again.study.trials[0].params == first.study.trials[0].params
    with pytest.raises(ConfigError, match="other settings"):
        tune(pairs, truth, n_trials=1, storage=db, study_name="s", objective="micro_ap")
    assert "Trial 0 finished" not in capsys.readouterr().err  # quiet unless progress=True


def test_storage_helpers(tmp_path):
    assert default_storage(tmp_path / "astradup.duckdb") == tmp_path / "study.db"
    assert default_storage(tmp_path) == tmp_path / "study.db"
    assert storage_url("postgresql://u@h/db") == "postgresql://u@h/db"
    assert storage_url(tmp_path / "x" / "s.db") == f"sqlite:///{tmp_path / 'x' / 's.db'}"
    assert storage_url(None) is None


def test_rescore_for_fields_outside_fusion(data):
    pairs, truth = data
    seen = []

    def rescore(config: AstradupConfig) -> pd.DataFrame:
        seen.append(config.match.min_score)
        return pairs[pairs["visual"] >= config.match.min_score]

    space = {**DEFAULT_SEARCH_SPACE, "match.min_score": [0.5, 0.9]}
    r = tune(pairs, truth, search_space=space, rescore=rescore, n_trials=15)
    assert len(seen) >= 15 and all(0.5 <= s <= 0.9 for s in seen)
    assert 0.5 <= r.best_config.match.min_score <= 0.9
    # the reported metrics are evaluate() on rescore(best) re-fused
    best_pairs = refuse(rescore(r.best_config), r.best_config.fusion)
    keep = set(r.val_videos)
    m = evaluate(truth[truth["a"].isin(keep) & truth["b"].isin(keep)],
                 best_pairs[best_pairs["a"].isin(keep) & best_pairs["b"].isin(keep)], videos=r.val_videos).metrics
    assert m["f1"] == pytest.approx(r.val_metrics["f1"])


def test_refuse_matches_fusion(data):
    pairs, _ = data
    cfg = dataclasses.replace(FusionConfig(), near=0.7)
    out = refuse(pairs.head(20), cfg)
    from astradup.scoring.fusion import fuse

    for row in out.itertuples():
        f = fuse({"visual": row.visual, "audio": row.audio, "metadata": None}, cfg)
        assert row.score == pytest.approx(f.score) and row.label == f.label


def test_best_trial_prefers_feasible_then_least_infeasible(caplog):
    from astradup.tuning import best_trial

    def trial(value: float, constraints: list[float]) -> optuna.trial.FrozenTrial:
        return optuna.trial.create_trial(value=value, user_attrs={"constraints": constraints})

    study = optuna.create_study(direction="maximize")
    study.add_trials([trial(0.9, [0.2]), trial(0.5, [0.0]), trial(0.7, [-0.1]), trial(0.95, [0.01])])
    assert best_trial(study).value == 0.7
    infeasible = optuna.create_study(direction="maximize")
    infeasible.add_trials([trial(0.9, [0.2]), trial(0.3, [0.05]), trial(0.4, [0.05])])
    with caplog.at_level("WARNING"):
        assert best_trial(infeasible).value == 0.4
    assert "no trial met the constraints" in caplog.text


def test_progress_mode_runs(data):
    pairs, truth = data
    r = tune(pairs, truth, n_trials=2, progress=True)
    assert len(r.study.trials) == 2


def test_duplicate_pair_rows_keep_the_highest_score(data):
    pairs, truth = data
    copy = pairs.head(10).rename(columns={"a": "b", "b": "a"}).assign(score=-1.0, visual=0.99, audio=0.99)
    r = tune(pd.concat([pairs, copy]), truth, n_trials=5)
    clean = tune(pairs, truth, n_trials=5)
    assert r.val_metrics == clean.val_metrics and r.train_metrics == clean.train_metrics
