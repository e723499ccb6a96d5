"""The learned pair scorer and frame quality: oracle, round-trip and property tests."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astradup.config import AstradupConfig, FusionConfig
from astradup.errors import ConfigError
from astradup.features.quality import frame_quality
from astradup.scoring.learned import FEATURES, INCREASING, PairModel, learned_verdict, load_model


def synthetic_table(n: int = 1500, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Evidence rows where copies have high path and hash agreement, look-alikes high embeddings
    only; some values missing (no audio)."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.3
    X = pd.DataFrame(rng.random((n, len(FEATURES))), columns=list(FEATURES))
    X["path_sim"] = np.where(y, rng.uniform(0.8, 1.0, n), rng.uniform(0.5, 0.95, n))
    X["hash_path"] = np.where(y, rng.uniform(0.75, 1.0, n), rng.uniform(0.45, 0.65, n))
    X["emb_path"] = rng.uniform(0.8, 1.0, n)
    X.loc[rng.random(n) < 0.2, "audio"] = np.nan
    return X, y


@pytest.fixture(scope="module")
def fitted():
    X, y = synthetic_table()
    return PairModel(max_iter=40, min_samples_leaf=10).fit(X, y), X, y


def test_tree_walk_equals_scikit_learn(fitted):
    """Oracle: the numpy walk over the exported arrays gives scikit-learn's own probabilities."""
    model, X, _ = fitted
    want = model._sklearn.predict_proba(model._matrix(X))[:, 1]  # the inputs the trees were fitted on
    got = model.predict_proba(X)[:, 1]
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 10), st.floats(-0.02, 0.05), st.one_of(st.just(np.nan), st.floats(0, 1)),
                          st.floats(0, 0.5), st.floats(0, 0.4), st.floats(-0.05, 0.05)), min_size=1, max_size=12))
def test_held_back_reasons_name_the_rules_that_hold_each_pair(rows):
    """A pair has reasons exactly when it is held back, and each reason names its rule."""
    from astradup.config import MatchConfig
    from astradup.scoring.learned import held_back_by_evidence, held_back_reasons
    from astradup.scoring.similarity import SEGMENT_SLACK

    m = MatchConfig()
    seg, margin, audio, resid, spread, standout = (np.array(c, dtype=float) for c in zip(*rows, strict=True))
    ev = {"margin": margin, "audio": audio, "resid_path": resid, "spread": spread, "standout": standout}
    dur = np.full(len(seg), 8.0)
    held = held_back_by_evidence(seg, dur, ev, m)
    why = held_back_reasons(seg, dur, ev, m)
    assert [bool(w) for w in why] == held.tolist()
    for k, w in enumerate(why):
        assert any("shorter than match.min_segment" in x for x in w) == bool(seg[k] + SEGMENT_SLACK < min(m.min_segment, 0.8 * 8.0))
        if standout[k] >= -0.01:
            assert not any("other moments" in x for x in w)


def test_a_held_pair_says_why_in_its_explanation():
    """apply_model writes the held-back reasons into the explanation; explain_text shows them."""
    from astradup.config import MatchConfig
    from astradup.review.widget import explain_text
    from astradup.scoring.learned import STANDOUT_RIVAL, held_back_reasons

    why = held_back_reasons(np.array([6.0]), np.array([8.0]), {"margin": [0.05], "audio": [np.nan], "resid_path": [0.05],
                                                                 "spread": [0.3], "standout": [STANDOUT_RIVAL - 0.02]}, MatchConfig())
    assert len(why[0]) == 1 and "repeating or slowly changing pictures" in why[0][0]
    lines = explain_text({"label": "similar", "score": 0.6, "explanation": {"learned": {"p_copy": 0.97, "held_back": why[0]}}})
    assert any(x.startswith("held back from the copy bands: other moments") for x in lines)


def test_a_differing_soundtrack_is_unknown_where_the_hashes_confirm_the_pixels(fitted, tmp_path):
    """Audio under AUDIO_CONFIRMS counts as missing where hash_hit reaches HASH_CONFIRMS and the
    path stands out (music replaced over the same pixels), and as itself where the hashes do not
    confirm (a re-edit) or the path does not stand out (another stretch of a static scene)."""
    from astradup.scoring.learned import AUDIO_CONFIRMS, AUDIO_RULE_MARGIN, HASH_CONFIRMS

    model, X, _ = fitted
    rows = X.iloc[:5].copy()
    rows["hash_hit"] = [1.0, HASH_CONFIRMS, HASH_CONFIRMS - 0.01, 1.0, 1.0]
    rows["audio"] = [0.1, AUDIO_CONFIRMS - 0.01, 0.1, AUDIO_CONFIRMS, 0.1]
    rows["margin"] = [AUDIO_RULE_MARGIN, 0.5, 0.5, 0.5, AUDIO_RULE_MARGIN - 0.01]
    x = model._matrix(rows)
    au = list(FEATURES).index("audio")
    assert np.isnan(x[:2, au]).all() and x[2, au] == 0.1 and x[3, au] == AUDIO_CONFIRMS and x[4, au] == 0.1
    assert model.audio_read_as_unknown(rows).tolist() == [True, True, False, False, False]  # for explanations
    silent = rows.assign(audio=np.nan)
    np.testing.assert_array_equal(model.predict_proba(rows)[:2], model.predict_proba(silent)[:2])
    # a model saved before the rule existed (no audio_rule in its card) reads audio as it is
    model.save(tmp_path / "old")
    card = json.loads((tmp_path / "old" / "card.json").read_text())
    assert card["params"]["audio_rule"] is True
    del card["params"]["audio_rule"]
    (tmp_path / "old" / "card.json").write_text(json.dumps(card))
    old = PairModel.load(tmp_path / "old")
    assert old.audio_rule is False and old._matrix(rows)[0, au] == 0.1


def test_model_learns_the_signal(fitted):
    model, _, _ = fitted
    X, y = synthetic_table(600, seed=1)
    p = model.predict_proba(X)[:, 1]
    assert p[y].mean() > 0.8 and p[~y].mean() < 0.2


def test_save_load_round_trip_is_exact(fitted, tmp_path):
    model, X, _ = fitted
    model.card = {"name": "t", "reference": {f: 0.5 for f in FEATURES}}
    model.save(tmp_path / "m", training={"data": "synthetic"})
    back = PairModel.load(tmp_path / "m")
    assert np.array_equal(back.predict_proba(X), model.predict_proba(X))
    card = json.loads((tmp_path / "m" / "card.json").read_text())
    assert card["features"] == list(FEATURES) and card["training"] == {"data": "synthetic"}
    assert "scikit-learn" in card["versions"] and card["params"]["seed"] == 0
    # plain arrays: nothing in the file needs unpickling
    with np.load(tmp_path / "m" / "model.npz", allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)


def test_damaged_model_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="not a pair model folder"):
        PairModel.load(tmp_path)
    (tmp_path / "card.json").write_text('{"format": "something else"}')
    (tmp_path / "model.npz").write_bytes(b"junk")
    with pytest.raises(ConfigError, match="format"):
        PairModel.load(tmp_path)


@settings(max_examples=60, deadline=None)
@given(row=st.integers(0, 299), which=st.sampled_from(INCREASING), bump=st.floats(0.0, 1.0))
def test_more_agreement_never_lowers_the_probability(fitted, row, which, bump):
    model, X, _ = fitted
    x = X.iloc[[row]].copy()
    before = model.predict_proba(x)[0, 1]
    if pd.isna(x[which].iloc[0]):
        return
    x[which] = x[which] + bump
    assert model.predict_proba(x)[0, 1] >= before - 1e-12


def test_drivers_name_the_features_that_moved_the_verdict(fitted):
    model, X, y = fitted
    model.card = {"reference": X.median().to_dict()}
    copy = X[y].iloc[[0]]
    names = [f for f, _ in model.drivers(copy)[0]]
    assert names and names[0] in ("path_sim", "hash_path")


def test_verdict_uses_the_bands_and_keeps_the_order():
    bands = FusionConfig(near=0.805, exact=0.9157, similar=0.2171)
    p = np.array([0.99, 0.97, 0.95, 0.9, 0.81, 0.5, 0.1])
    s, lab = learned_verdict(p, np.ones(7, bool), np.ones(7, bool), bands)
    assert list(lab) == ["exact", "exact", "exact", "near", "near", "similar", "different"]
    # without hash agreement: never exact, still near, order kept (no plateau)
    s2, lab2 = learned_verdict(p, np.zeros(7, bool), np.ones(7, bool), bands)
    assert "exact" not in set(lab2) and list(lab2[:5]) == ["near"] * 5
    assert np.all(np.diff(s2) < 0)
    # nothing aligned: below similar
    _, lab3 = learned_verdict(p, np.ones(7, bool), np.zeros(7, bool), bands)
    assert set(lab3) == {"different"}


def test_shipped_model_loads_and_scores():
    model = load_model("")
    assert model.features == FEATURES
    card = model.card
    assert card["training"]["data"] and card["heldout"] and "scikit-learn" in card["versions"]
    X, y = synthetic_table(200, seed=3)
    p = model.predict_proba(X)[:, 1]
    assert np.all((p >= 0) & (p <= 1)) and np.isfinite(p).all()
    assert AstradupConfig().fusion.scorer == "learned"


def test_unknown_scorer_is_refused():
    with pytest.raises(ConfigError, match="scorer"):
        FusionConfig(scorer="magic")


# -- frame quality -------------------------------------------------------------------------------

def _frames():
    rng = np.random.default_rng(0)
    h = 160
    yy, xx = np.mgrid[0:h, 0:h]
    ramp = np.broadcast_to(np.linspace(0, 255, h)[None, :, None], (h, h, 3)).astype(np.uint8)
    radial = (255 * np.clip(1 - np.hypot(xx - 80, yy - 80) / 113, 0, 1))[..., None].repeat(3, 2).astype(np.uint8)
    vignette = (255 * np.exp(-((xx - 50) ** 2 + (yy - 90) ** 2) / (2 * 40.0**2)))[..., None].repeat(3, 2).astype(np.uint8)
    black = np.clip(rng.normal(8, 2, (h, h, 3)), 0, 255).astype(np.uint8)
    white = np.full((h, h, 3), 245, np.uint8)
    low = {"ramp": ramp, "radial": radial, "vignette": vignette, "near-black": black, "white": white}
    texture = rng.integers(0, 255, (20, 20, 3)).repeat(8, 0).repeat(8, 1).astype(np.uint8)
    text = white.copy()
    text[40:48, 20:140] = 20
    text[60:66, 20:100] = 20
    edges = np.zeros((h, h, 3), np.uint8)
    edges[:, 50:110] = 200
    edges[70:90] = 90
    return low, {"texture": texture, "text": text, "edges": edges}


def test_quality_is_low_for_flat_dark_and_gradient_frames_high_for_detail():
    low, high = _frames()
    q_low = frame_quality(np.stack(list(low.values())))
    q_high = frame_quality(np.stack(list(high.values())))
    cfg = AstradupConfig().match
    assert q_low.max() < cfg.min_quality, dict(zip(low, q_low))
    assert q_high.min() > 3 * cfg.min_quality, dict(zip(high, q_high))


def test_quality_of_any_frame_size_and_grey_input():
    _, high = _frames()
    f = high["texture"][:150, :90]
    q = frame_quality(f[None])
    assert q.shape == (1,) and q.dtype == np.float32 and q[0] > 10
    grey = f @ np.array([0.299, 0.587, 0.114])
    assert frame_quality(grey[None])[0] == pytest.approx(q[0], rel=0.05)
    assert frame_quality(np.zeros((0, 8, 8, 3), np.uint8)).shape == (0,)


def test_low_quality_frames_carry_no_evidence():
    """Two unrelated 'slideshows' of white and gradient frames: identical hashes and embeddings on
    every frame, yet no aligned path once quality gates them; a textured copy still aligns."""
    from astradup.features.phash import PHash
    from astradup.features.video import VideoFeatures
    from astradup.scoring.similarity import visual_similarity

    low, high = _frames()
    ph = PHash()

    def video(frames, seed):
        frames = np.stack(frames)
        h, hf = ph.extract_with_flip(frames)
        rng = np.random.default_rng(seed)
        emb = np.tile(rng.standard_normal(16), (len(frames), 1)).astype(np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        return VideoFeatures(path=f"v{seed}", info={"duration": float(len(frames))}, timestamps=np.arange(len(frames)) + 0.5,
                             phash=h, phash_flip=hf, embeddings=emb, quality=frame_quality(frames))

    dull = [low["white"], low["ramp"], low["white"], low["vignette"], low["white"], low["ramp"]]
    a, b = video(dull, 1), video(dull, 1)
    m = AstradupConfig().match
    assert visual_similarity(a, b, m).alignment is None
    ungated = visual_similarity(a, b, AstradupConfig().replace(**{"match.min_quality": 0.0}).match)
    assert ungated.alignment is not None  # the test would pass without the gate otherwise
    rich = [high["texture"], high["text"], high["edges"], high["texture"][::-1], high["text"][:, ::-1], np.ascontiguousarray(high["edges"].transpose(1, 0, 2))]
    c, d = video(rich, 2), video(rich, 2)
    assert visual_similarity(c, d, m).alignment is not None


def _labelled_set(n_groups: int = 24, seed: int = 0):
    """A corpus of groups (a source and three copies each) and the pairs table a match would write:
    copies within a group, and look-alike pairs across groups."""
    rng = np.random.default_rng(seed)
    truth, rows, videos = [], [], []
    for g in range(n_groups):
        vs = [f"g{g}_{k}.mp4" for k in range(4)]
        videos += vs
        for k in range(4):  # copies of one source are copies of each other too
            truth += [{"a": vs[k], "b": vs[m], "relation": "near", "group": f"g{g}"} for m in range(k + 1, 4)]
    X, _ = synthetic_table(4 * len(videos), seed=seed)
    pos = {(t["a"], t["b"]) for t in truth}
    k = 0
    for i, a in enumerate(videos):
        for b in videos[i + 1 : i + 6]:
            y = (a, b) in pos
            ev = X.iloc[k].to_dict()
            k = (k + 1) % len(X)
            ev["path_sim"] = rng.uniform(0.85, 1.0) if y else rng.uniform(0.5, 0.9)
            ev["hash_path"] = rng.uniform(0.8, 1.0) if y else rng.uniform(0.45, 0.6)
            ev["margin"] = rng.uniform(0.05, 0.4) if y else rng.uniform(-0.05, 0.4)  # copies stand out
            ev["segment_s"], ev["min_duration_s"] = 6.0, 8.0
            ev["spread"] = 0.3  # moving pictures: not a still shot
            expl = {"visual": {"hash_agreement": ev["hash_path"], "coverage_a": 1.0, "coverage_b": 1.0, "aligned_frames": 5,
                               "segment_s": 6.0, "min_duration_s": 8.0},
                    "evidence": ev}
            rows.append({"a": a, "b": b, "score": 0.5, "label": "similar", "visual": 0.5, "audio": np.nan,
                         "metadata": np.nan, "explanation": json.dumps(expl)})
    t = pd.DataFrame(truth)
    t.attrs["videos"] = videos
    return pd.DataFrame(rows), t, videos


def test_train_pair_model_end_to_end(tmp_path):
    from astradup.scoring.pair import rescore_pairs
    from astradup.tuning.train import labelled_evidence, train_pair_model

    pairs, truth, videos = _labelled_set()
    table = labelled_evidence(pairs, truth)
    assert table["positive"].sum() == len(truth) and list(table.columns[:2]) == ["a", "b"]
    res = train_pair_model(pairs, truth, out=tmp_path / "m", holdout=0.3, seed=1, max_iter=60, learning_rate=0.2, min_samples_leaf=5,
                           training_data="synthetic")
    assert res.heldout["micro_ap"] > 0.95 and res.n_heldout > 0
    card = json.loads((tmp_path / "m" / "card.json").read_text())
    assert card["heldout"]["micro_ap"] == pytest.approx(res.heldout["micro_ap"])
    assert card["training"]["data"] == "synthetic" and set(card["reference"]) == set(FEATURES)
    # the trained model re-scores the pairs through the config, and ranks copies first
    cfg = AstradupConfig().replace(**{"fusion.model": str(tmp_path / "m")})
    out = rescore_pairs(pairs, cfg)
    pos = labelled_evidence(pairs, truth)["positive"].to_numpy()
    assert out["score"][pos].min() > out["score"][~pos].quantile(0.95)
    assert set(out.loc[pos, "label"]) <= {"exact", "near"}


def test_repeated_holdouts_take_the_median_operating_point():
    """With repeats, each hold-out (split seeds seed, seed + 1, ...) picks its own operating point,
    as a single hold-out does, and the model keeps their median; the card lists each."""
    from astradup.tuning.train import train_pair_model

    pairs, truth, _ = _labelled_set()
    kw = dict(holdout=0.3, max_iter=30, learning_rate=0.2, min_samples_leaf=5, refit=False)
    single = [train_pair_model(pairs, truth, seed=1 + k, **kw).model.card["operating_point"]["near_p"] for k in range(3)]
    res = train_pair_model(pairs, truth, seed=1, repeats=3, **kw)
    card = res.model.card
    assert res.heldout["near_p_by_split"] == pytest.approx(single) and res.heldout["repeats"] == 3
    assert card["operating_point"]["near_p"] == pytest.approx(float(np.median(single)))
    assert "median of 3" in card["operating_point"]["measured_on"]


def test_training_without_evidence_is_a_clear_error():
    from astradup.tuning.train import train_pair_model

    pairs, truth, _ = _labelled_set(4)
    pairs["explanation"] = "{}"
    with pytest.raises(ConfigError, match="evidence"):
        train_pair_model(pairs, truth, max_iter=5)


def test_held_back_pairs_stay_below_near():
    """Short stretches, and paths that do not stand out without a soundtrack to confirm them."""
    from astradup.config import MatchConfig
    from astradup.scoring.learned import held_back

    m = MatchConfig()
    held = held_back(np.array([0.5, 6.0, 6.0, 6.0, 6.0]), np.full(5, 8.0), np.array([0.3, 0.001, 0.001, 0.001, 0.2]),
                     np.array([np.nan, np.nan, 0.2, 0.9, np.nan]), m)
    assert held.tolist() == [True, True, True, False, False]
    s, lab = learned_verdict(np.full(5, 0.999), np.ones(5, bool), np.ones(5, bool), FusionConfig(), held)
    assert lab.tolist() == ["similar", "similar", "similar", "exact", "exact"]
    assert np.all(s[:3] < FusionConfig().near)


def test_motion_confirms_a_flat_path_and_a_still_shot_needs_it():
    """A flat path (no margin, no soundtrack) is a copy only when its frames change together; a still
    shot, however much it stands out, needs the same confirmation."""
    from astradup.config import MatchConfig
    from astradup.scoring.learned import MOTION_CONFIRMS, STILL_SHOT, held_back

    m = MatchConfig()
    seg, dur, no_audio = np.full(4, 6.0), np.full(4, 8.0), np.full(4, np.nan)
    margin = np.array([0.001, 0.001, 0.3, 0.3])
    resid = np.array([MOTION_CONFIRMS + 0.1, MOTION_CONFIRMS - 0.1, MOTION_CONFIRMS - 0.1, MOTION_CONFIRMS - 0.1])
    norm = np.array([0.3, 0.3, STILL_SHOT / 2, 0.3])
    assert held_back(seg, dur, margin, no_audio, m, resid, norm).tolist() == [False, True, True, False]
    assert held_back(seg, dur, margin, np.full(4, 0.9), m, resid, norm).tolist() == [False] * 4  # the soundtrack confirms


def test_a_path_other_moments_beat_is_held_back_unless_sound_or_motion_confirms():
    """Repeating or slowly changing pictures (a cycling display, a screencast): when other moments
    of the other video match the path's frames better than the path does (``standout`` under
    STANDOUT_RIVAL), another stretch of the recording aligns about as well as a copy. The
    soundtrack confirms it, and so do frames that change together (``resid_path``). No standout:
    not held."""
    from astradup.config import MatchConfig
    from astradup.scoring.learned import MOTION_CONFIRMS, STANDOUT_RIVAL, held_back

    m = MatchConfig()
    seg, dur, margin = np.full(4, 6.0), np.full(4, 8.0), np.full(4, 0.05)
    still_motion, spread = np.full(4, MOTION_CONFIRMS - 0.1), np.full(4, 0.25)
    standout = np.array([STANDOUT_RIVAL - 0.01, STANDOUT_RIVAL + 0.01, np.nan, STANDOUT_RIVAL - 0.01])
    audio = np.array([np.nan, np.nan, np.nan, 0.3])
    assert held_back(seg, dur, margin, audio, m, still_motion, spread, standout).tolist() == [True, False, False, True]
    assert held_back(seg, dur, margin, np.full(4, 0.9), m, still_motion, spread, standout).tolist() == [False] * 4
    moving = np.full(4, MOTION_CONFIRMS + 0.1)
    assert held_back(seg, dur, margin, audio, m, moving, spread, standout).tolist() == [False] * 4
    assert held_back(seg, dur, margin, audio, m, still_motion, spread).tolist() == [False] * 4  # without standout: as before


def test_resid_path_tells_a_copy_from_another_stretch_of_a_still_shot():
    """Oracle: frames = one still picture plus small per-moment changes. A copy shares the changes,
    another stretch of the shot has its own: resid_path ~1 for the copy, ~0 for the other stretch."""
    from astradup.features.video import VideoFeatures
    from astradup.scoring.alignment import Alignment
    from astradup.scoring.similarity import path_evidence

    rng = np.random.default_rng(0)
    still = rng.normal(size=64)
    moves = rng.normal(size=(6, 64)) * 0.1
    other = rng.normal(size=(6, 64)) * 0.1

    def vf(e):
        e = e / np.linalg.norm(e, axis=1, keepdims=True)
        n = len(e)
        return VideoFeatures(path="x", info={}, timestamps=np.arange(n, dtype=float), phash=np.zeros((n, 32), np.uint8),
                             phash_flip=np.zeros((n, 32), np.uint8), embeddings=e.astype(np.float32), quality=None,
                             descriptor=None, audio=None)

    a, copy, stretch = vf(still + moves), vf(still + moves + rng.normal(size=(6, 64)) * 0.01), vf(still + other)
    path = np.stack([np.arange(6), np.arange(6)], axis=1)
    al = Alignment(path=path, path_sim=0.99, background=0.99, a_start=0.0, a_end=6.0, b_start=0.0, b_end=6.0)
    ok = np.ones(6, bool)
    ev_copy = path_evidence(a, copy, a.embeddings @ copy.embeddings.T, al, ok, ok)
    ev_other = path_evidence(a, stretch, a.embeddings @ stretch.embeddings.T, al, ok, ok)
    assert ev_copy["resid_path"] > 0.9
    assert abs(ev_other["resid_path"]) < 0.5
    assert 0 < ev_copy["resid_norm"] < 0.2 and 0 < ev_copy["spread"] < 0.2


def _brute_operating_point(p, pos, precision):
    best = None
    for t in sorted(set(p.tolist())):
        sel = p >= t
        if sel.any() and pos[sel].mean() >= precision and pos[sel].any():
            best = t if best is None else min(best, t)
    return best


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.booleans()), min_size=1, max_size=40), st.sampled_from([0.8, 0.9, 0.995]))
def test_operating_point_is_the_deepest_cut_that_pure(rows, precision):
    from astradup.scoring.learned import operating_point

    p = np.array([round(r[0], 2) for r in rows])
    pos = np.array([r[1] for r in rows])
    got = operating_point(p, pos, precision)
    want = _brute_operating_point(p, pos, precision)
    # the brute force takes the lowest cut that is pure enough anywhere; the operating point is
    # the deepest cut of the descending sweep that is (the same whenever precision falls with depth)
    if got is None:
        assert want is None
    else:
        sel = p >= got
        assert pos[sel].mean() >= precision and want is not None and want <= got


def test_operating_point_moves_the_near_band_not_the_order():
    from astradup.scoring.learned import to_score

    bands = FusionConfig()
    p = np.linspace(0, 1, 101)
    s = to_score(p, 0.97, bands)
    assert np.all(np.diff(s) > 0) and s[0] == 0 and s[-1] == 1
    assert to_score(np.array([0.97]), 0.97, bands)[0] == pytest.approx(bands.near)
    assert to_score(np.array([0.5]), 0.97, bands)[0] == pytest.approx(bands.similar)
    assert np.array_equal(to_score(p, None, bands), p)  # a model without an operating point
    # a pair just under the operating point is "similar", one at it "near" (tuned bands too)
    for b in (bands, FusionConfig(near=0.805, exact=0.9157, similar=0.2171)):
        _, lab = learned_verdict(np.array([0.969, 0.97]), np.zeros(2, bool), np.ones(2, bool), b, None, 0.97)
        assert list(lab) == ["similar", "near"]
