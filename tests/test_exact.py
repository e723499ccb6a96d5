"""The exact-moment check (astradup.scoring.exact): a copy of fast footage finds its own frame once
the moments line up; another moment, or a still picture, does not confirm anything."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from astradup.scoring.exact import (
    EXACT_BITS,
    EXACT_MIN_P,
    EXACT_MOVES,
    EXACT_PIN,
    confirmed,
    exact_distances,
    lift,
    needs_exact,
    pair_exact,
    window_s,
)
from tests.conftest import SOURCES, ffmpeg


def _moving(n: int, seed: int = 0, side: int = 96) -> list[np.ndarray]:
    """Grey frames of a smooth random picture sliding a few pixels a frame (seeded)."""
    rng = np.random.default_rng(seed)
    big = rng.integers(0, 256, (side // 8 + n, side // 8 + n)).astype(np.float64)
    big = np.kron(big, np.ones((8, 8)))  # blocks: structure pHash sees
    return [np.ascontiguousarray(big[4 * i:4 * i + side, 4 * i:4 * i + side]).astype(np.uint8) for i in range(n)]


def test_a_probe_finds_its_own_frame_in_a_moving_window_and_not_in_a_still_one():
    """Oracle: the frame of a's moment is in b's window (0 bits, the window's other frames far:
    pinned); a window of one still picture matches it anywhere (pin 0); another video's window
    does not match (far)."""
    f = _moving(24, seed=1)
    other = _moving(24, seed=2)
    a = [f[4], f[11], f[18]]
    ev = exact_distances(a, [f[1:8], f[8:15], f[15:22]])
    assert ev["exact_bits"] == 0
    assert ev["exact_pin"] >= EXACT_PIN and ev["exact_moves"] >= EXACT_MOVES
    still = exact_distances(a, [[f[4]] * 5, [f[11]] * 5, [f[18]] * 5])
    assert still["exact_bits"] == 0 and still["exact_pin"] == 0
    far = exact_distances(a, [other[1:8], other[8:15], other[15:22]])
    assert far["exact_bits"] > EXACT_BITS
    # a mirrored copy finds its frame too (the window is compared as it is and mirrored)
    assert exact_distances(a, [[g[:, ::-1] for g in f[1:8]], [g[:, ::-1] for g in f[8:15]],
                               [g[:, ::-1] for g in f[15:22]]])["exact_bits"] == 0
    assert np.isnan(exact_distances(a, [[], [], []])["exact_bits"])


def test_confirmed_needs_every_condition_and_never_an_unknown():
    bits = np.array([0, 0, 0, EXACT_BITS + 1, np.nan, 0])
    moves = np.array([EXACT_MOVES, EXACT_MOVES - 1, EXACT_MOVES, EXACT_MOVES, EXACT_MOVES, np.nan])
    pin = np.array([EXACT_PIN, EXACT_PIN, EXACT_PIN - 1, EXACT_PIN, EXACT_PIN, EXACT_PIN])
    assert confirmed(bits, moves, pin).tolist() == [True, False, False, False, False, False]


def test_lift_raises_only_confirmed_uncertain_pairs_over_the_operating_point_keeping_their_order():
    """Property (seeded random draws): a confirmed pair between even odds and the operating point
    ends over it and under 1, in the model's order; every other pair keeps its probability."""
    rng = np.random.default_rng(0)
    for _ in range(50):
        near_p = float(rng.uniform(0.9, 0.9999))
        p = rng.uniform(0, 1, 200)
        ok = rng.random(200) < 0.5
        bits = np.where(ok, 0.0, EXACT_BITS + 5.0)
        moves = np.full(200, float(EXACT_MOVES))
        pin = np.full(200, float(EXACT_PIN))
        q = lift(p, bits, moves, pin, near_p)
        up = ok & (p >= EXACT_MIN_P) & (p < near_p)
        assert np.array_equal(q[~up], p[~up])
        assert (q[up] >= near_p).all() and (q[up] < 1.0).all()
        order = np.argsort(p[up], kind="stable")
        assert (np.diff(q[up][order]) >= 0).all()
        assert np.array_equal(lift(p, bits, moves, pin, None), p)  # no operating point: nothing lifted
    need = needs_exact(np.array([0.4, 0.6, 0.6, 0.6, 0.999]), 0.99, np.array([0, 0, 1, 0, 0], bool),
                       np.array([1, 1, 1, 0, 1], bool))
    assert need.tolist() == [False, True, False, False, False]
    # held back only by rules a confirmed moment answers: looked at whatever the model's probability
    need = needs_exact(np.array([0.4, 0.6, 0.999, 0.999, 0.999]), 0.99, np.array([1, 1, 1, 1, 0], bool),
                       np.array([1, 1, 1, 0, 1], bool), clearable=np.array([1, 1, 1, 1, 0], bool))
    assert need.tolist() == [False, True, True, False, False]


def _run(args: list[str]) -> None:
    subprocess.run([ffmpeg(), "-v", "error", "-y", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def fast_source_and_cut(tmp_path_factory):
    """A 6 s source whose every frame differs (Game of Life, 25 fps) and a cut of it starting
    between sample times (1.37 s in), re-encoded."""
    d = tmp_path_factory.mktemp("exact")
    src, cut, still, still_cut = d / "src.mp4", d / "cut.mp4", d / "still.mp4", d / "still_cut.mp4"
    _run(["-f", "lavfi", "-i", SOURCES["life"].format(w=128, h=96, r=25, seed=5), "-t", "6",
          "-c:v", "libx264", "-preset", "ultrafast", "-crf", "12", "-pix_fmt", "yuv420p", str(src)])
    _run(["-i", str(src), "-ss", "1.37", "-t", "3.5", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "20",
          "-pix_fmt", "yuv420p", str(cut)])
    _run(["-f", "lavfi", "-i", SOURCES["smptebars"].format(w=128, h=96, r=25), "-t", "4",
          "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(still)])
    _run(["-i", str(still), "-ss", "1.37", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "20",
          "-pix_fmt", "yuv420p", str(still_cut)])
    return src, cut, still, still_cut


def test_a_cut_of_fast_footage_is_confirmed_at_its_moment_and_not_at_another(fast_source_and_cut):
    src, cut, still, still_cut = fast_source_and_cut
    w = window_s(np.arange(0, 6, 0.25), np.arange(0, 3.5, 0.25))  # 4 a second: a cut's frames fall between the source's
    # path cells as sampling pairs them: source times on its grid, the cut's nearest grid time
    cells = [(2.0, 0.75), (3.0, 1.75), (4.0, 2.75)]  # the true moments are 0.63, 1.63, 2.63 s in the cut
    ev = pair_exact(str(src), str(cut), cells, w)
    assert ev["exact_bits"] <= EXACT_BITS and ev["exact_moves"] >= EXACT_MOVES and ev["exact_pin"] >= EXACT_PIN
    assert confirmed(ev["exact_bits"], ev["exact_moves"], ev["exact_pin"])
    wrong = pair_exact(str(src), str(cut), [(2.0, 1.5), (3.0, 2.5), (4.0, 3.25)], w)  # another stretch
    assert not confirmed(wrong["exact_bits"], wrong["exact_moves"], wrong["exact_pin"])
    bars = pair_exact(str(still), str(still_cut), [(2.0, 0.75), (2.5, 1.0), (3.0, 1.75)], w)
    assert bars["exact_bits"] <= EXACT_BITS and not confirmed(bars["exact_bits"], bars["exact_moves"], bars["exact_pin"])
    gone = pair_exact(str(src), str(src.parent / "missing.mp4"), cells, w)  # unreadable: unknown, not against
    assert all(np.isnan(v) for v in gone.values())


def test_rescoring_lifts_a_confirmed_uncertain_pair_as_matching_does():
    """A pair the shipped model leaves between even odds and its operating point becomes a copy
    when its stored exact-moment evidence confirms the moment, stays what the model said when it
    does not, and stays put with ``match.exact_check`` off."""
    import json

    import pandas as pd

    from astradup.config import AstradupConfig
    from astradup.scoring.learned import FEATURES, load_model, model_near_p
    from astradup.scoring.pair import rescore_pairs

    model = load_model("")
    near_p = model_near_p(model)
    ref = {f: float(model.card["reference"][f]) if model.card["reference"].get(f) is not None else np.nan for f in FEATURES}
    # from a look-alike (hashes at chance, nothing stands out) to the training median, in a straight line
    weak = {**ref, "path_sim": 0.8, "emb_path": 0.8, "hash_path": 0.5, "hash_hit": 0.0, "margin": 0.0, "standout": -0.05,
            "geo_inliers": 5.0}
    keys = [f for f in FEATURES if np.isfinite(ref[f]) and np.isfinite(weak[f])]
    t = np.linspace(0, 1, 2001)
    rows = pd.DataFrame([{f: (weak[f] + s * (ref[f] - weak[f]) if f in keys else ref[f]) for f in FEATURES} for s in t])
    rows["segment_s"], rows["min_duration_s"], rows["resid_path"], rows["spread"] = 6.0, 8.0, 0.9, 0.3
    p = model.predict_proba(rows)[:, 1]
    band = np.flatnonzero((p >= 0.6) & (p < near_p))
    assert len(band), "the shipped model gives no evidence on this line a probability in the checked range"
    ev = rows.iloc[band[len(band) // 2]].to_dict()

    def row(a: str, b: str, extra: dict) -> dict:
        expl = {"visual": {"hash_agreement": ev["hash_path"], "coverage_a": 1.0, "coverage_b": 1.0, "aligned_frames": 12,
                           "path_sim": ev["path_sim"], "background": ev["background"], "segment_s": 6.0, "min_duration_s": 8.0},
                "evidence": {**ev, **extra}}
        return {"a": a, "b": b, "score": 0.5, "label": "similar", "visual": 0.5, "audio": np.nan, "metadata": np.nan,
                "explanation": json.dumps(expl)}

    moment = {"exact_bits": 2.0, "exact_moves": 60.0, "exact_pin": 20.0}
    card = {"exact_bits": 2.0, "exact_moves": 60.0, "exact_pin": 0.0}  # same pictures, no moment pinned
    pairs = pd.DataFrame([row("a.mp4", "b.mp4", moment), row("c.mp4", "d.mp4", card), row("e.mp4", "f.mp4", {})])
    out = rescore_pairs(pairs, AstradupConfig())
    assert out["label"].tolist() == ["near", "similar", "similar"]
    assert out["score"].iloc[1] == out["score"].iloc[2]
    off = rescore_pairs(pairs, AstradupConfig().replace(**{"match.exact_check": False}))
    assert off["label"].tolist() == ["similar"] * 3


def test_a_confirmed_moment_answers_a_short_stretch_but_not_a_still_shot():
    """A pair the model calls a copy but a rule holds back because its aligned stretch is short
    is a copy when the exact-moment check confirms the moment (rescoring as matching), and held
    back without it. A short stretch and a flat path are holds a moment answers; a still shot (a
    still cannot be pinned) and other moments matching as well (outside the check's window) are
    not; a pair held by nothing is not "clearable"."""
    import json

    import pandas as pd

    from astradup.config import AstradupConfig
    from astradup.scoring.learned import FEATURES, load_model, model_near_p
    from astradup.scoring.pair import rescore_pairs

    model = load_model("")
    ref = {f: float(model.card["reference"][f]) if model.card["reference"].get(f) is not None else np.nan for f in FEATURES}
    ev = {**ref, "segment_s": 0.7, "min_duration_s": 8.0, "resid_path": 0.9, "spread": 0.3, "margin": 0.2,
          "standout": 0.1, "audio": np.nan}
    assert model.predict_proba(pd.DataFrame([ev])[list(model.features)])[:, 1][0] >= model_near_p(model)

    def row(a: str, extra: dict) -> dict:
        e = {**ev, **extra}
        expl = {"visual": {"hash_agreement": e["hash_path"], "coverage_a": 0.2, "coverage_b": 1.0, "aligned_frames": 3,
                           "path_sim": e["path_sim"], "background": e["background"], "segment_s": e["segment_s"],
                           "min_duration_s": 8.0},
                "evidence": e}
        return {"a": a, "b": a + ".copy", "score": 0.5, "label": "similar", "visual": 0.5, "audio": np.nan,
                "metadata": np.nan, "explanation": json.dumps(expl)}

    moment = {"exact_bits": 2.0, "exact_moves": 60.0, "exact_pin": 20.0}
    pairs = pd.DataFrame([row("a", moment), row("b", {})])
    out = rescore_pairs(pairs, AstradupConfig())
    assert out["label"].tolist() == ["near", "similar"]
    off = rescore_pairs(pairs, AstradupConfig().replace(**{"match.exact_check": False}))
    assert off["label"].tolist() == ["similar"] * 2
    # which holds a moment answers: a short stretch, a flat path; not a still shot, not a rival moment
    from astradup.scoring.learned import STANDOUT_RIVAL, clearable_by_moment

    m = AstradupConfig().match
    seg = np.array([0.7, 6.0, 0.7, 6.0, 6.0])
    held = {"margin": np.array([0.2, 0.0, 0.2, 0.2, 0.2]), "audio": np.full(5, np.nan),
            "resid_path": np.array([0.9, 0.0, 0.0, 0.0, 0.0]), "spread": np.array([0.3, 0.3, 0.0, 0.3, 0.3]),
            "standout": np.array([0.1, 0.1, 0.1, STANDOUT_RIVAL - 0.05, 0.1])}
    assert clearable_by_moment(seg, np.full(5, 8.0), held, m).tolist() == [True, True, False, False, False]


def test_a_lifted_pair_says_so_where_reviewers_read_why():
    from astradup.review.widget import explain_text

    lines = explain_text({"label": "near", "score": 0.86, "explanation": {"learned": {
        "p_copy": 0.97, "exact_moment": "the same pictures at the same moments: p 0.9700 -> 0.9988"}}})
    assert "exact-moment check: the same pictures at the same moments: p 0.9700 -> 0.9988" in lines


def test_the_whole_video_path_gives_the_same_evidence_and_survives_bad_files(fast_source_and_cut, tmp_path):
    """Oracle: a short video decoded whole once (MomentCache) gives the evidence decoding each
    window gives; a missing or damaged file leaves the evidence unknown on either path."""
    from astradup.scoring.exact import MomentCache

    src, cut, _, _ = fast_source_and_cut
    cells, w = [(2.0, 0.75), (3.0, 1.75), (4.0, 2.75)], window_s(np.arange(0, 6, 0.25), np.arange(0, 3.5, 0.25))
    cache = MomentCache()
    whole = pair_exact(str(src), str(cut), cells, w, duration_a=6.0, duration_b=3.5, cache=cache)
    assert whole == pair_exact(str(src), str(cut), cells, w)
    assert whole == pair_exact(str(src), str(cut), cells, w, duration_a=6.0, duration_b=3.5, cache=cache)  # cached
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video" * 100)
    for other in (bad, tmp_path / "missing.mp4"):
        ev = pair_exact(str(src), str(other), cells, w, duration_a=6.0, duration_b=3.5, cache=cache)
        assert all(np.isnan(v) for v in ev.values())


def test_a_large_video_is_decoded_at_its_windows_with_the_same_evidence(fast_source_and_cut, monkeypatch):
    """Decoding a large file whole for a few probes costs more than its windows (a 60 s 720p
    file): over :data:`WHOLE_PIXELS` the check decodes the windows, and the evidence is the same."""
    import astradup.media.decode as decode
    from astradup.scoring import exact

    src, cut, _, _ = fast_source_and_cut
    cells, w = [(2.0, 0.75), (3.0, 1.75), (4.0, 2.75)], window_s(np.arange(0, 6, 0.25), np.arange(0, 3.5, 0.25))
    px_a, px_b = exact.video_pixels({"width": 128, "height": 96, "avg_fps": 25.0}, 6.0), 128 * 96 * 25 * 3.5
    assert px_a == 128 * 96 * 25 * 6.0 and exact.video_pixels({}, 6.0) is None
    calls = []
    real = decode.every_frame
    monkeypatch.setattr(decode, "every_frame", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    whole = pair_exact(str(src), str(cut), cells, w, duration_a=6.0, duration_b=3.5, cache=exact.MomentCache(),
                       pixels_a=px_a, pixels_b=px_b)
    assert len(calls) == 2
    monkeypatch.setattr(exact, "WHOLE_PIXELS", px_b)  # a over it, b not
    calls.clear()
    mixed = pair_exact(str(src), str(cut), cells, w, duration_a=6.0, duration_b=3.5, cache=exact.MomentCache(),
                       pixels_a=px_a, pixels_b=px_b)
    assert calls == [str(cut)] and mixed == whole


def test_whole_frames_are_compared_where_exactly_one_box_cuts(fast_source_and_cut):
    """A source cut to a box (a letterbox) against a quote shown whole: inside the box the
    pictures differ, so the whole frames are compared too; where both boxes cut, only the boxes
    are (two boxed videos would agree on their bars)."""
    src, cut, _, _ = fast_source_and_cut
    cells, w = [(2.0, 0.75), (3.0, 1.75), (4.0, 2.75)], window_s(np.arange(0, 6, 0.25), np.arange(0, 3.5, 0.25))
    box = (0.25, 0.75, 0.0, 1.0)
    from astradup.scoring import exact

    inside = exact._pair_hashes(exact.MomentCache(), str(src), str(cut), cells, w, 0, 0, box, None, True, True)
    assert not confirmed(inside["exact_bits"], inside["exact_moves"], inside["exact_pin"])
    ev = pair_exact(str(src), str(cut), cells, w, box_a=box, duration_a=6.0, duration_b=3.5)
    assert confirmed(ev["exact_bits"], ev["exact_moves"], ev["exact_pin"])
    both = pair_exact(str(src), str(cut), cells, w, box_a=box, box_b=(0.0, 1.0, 0.25, 0.75), duration_a=6.0, duration_b=3.5)
    assert not confirmed(both["exact_bits"], both["exact_moves"], both["exact_pin"])


def test_a_boxed_video_and_its_whole_frames_are_one_decode(fast_source_and_cut, monkeypatch):
    """The check asks for a boxed video's box, then (where only one box cuts) its whole frames:
    the cache decodes the file once for both, and the box is cut from the same frames."""
    import astradup.media.decode as decode
    from astradup.scoring import exact

    src, _, _, _ = fast_source_and_cut
    calls = []
    real = decode.every_frame
    monkeypatch.setattr(decode, "every_frame", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    cache, box = exact.MomentCache(), (0.25, 0.75, 0.0, 1.0)
    boxed, whole = cache.get(str(src), 0, box), cache.get(str(src), 0, None)
    assert calls == [str(src)] and cache.get(str(src), 0, box) is boxed
    assert np.array_equal(boxed.times, whole.times) and len(boxed.frames) == len(whole.frames)
    want = exact._cut({0: whole.frames[5]}, box)[0]
    assert np.array_equal(boxed.frames[5], want) and boxed.frames[5].shape != whole.frames[5].shape


def test_threads_asking_for_one_video_at_once_decode_it_once(fast_source_and_cut, monkeypatch):
    """A match verifying on several threads shares the cache: the first thread decodes the file,
    the others wait for its frames instead of decoding it again."""
    import threading
    import time

    import astradup.media.decode as decode
    from astradup.scoring import exact

    src, _, _, _ = fast_source_and_cut
    calls = []
    real = decode.every_frame

    def slow(*a, **k):
        calls.append(a[0])
        time.sleep(0.2)  # the other threads arrive while it decodes
        return real(*a, **k)

    monkeypatch.setattr(decode, "every_frame", slow)
    cache, got = exact.MomentCache(), []
    threads = [threading.Thread(target=lambda: got.append(cache.get(str(src), 0, None))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [str(src)] and len(got) == 4 and all(m is got[0] for m in got)
    assert len(cache._files) == 0  # no lock is kept for a file no thread is loading


def test_a_large_a_is_decoded_at_its_reference_frames_only_with_the_same_evidence(fast_source_and_cut, tmp_path,
                                                                                  monkeypatch):
    """PyAV samples reference frames only, so *a*'s probe frames of a file decoded at its windows
    are decoded skipping the other frames (B-frames here): the same frames, the same evidence."""
    import av

    import astradup.media.decode as decode
    from astradup.scoring import exact

    src, cut, _, _ = fast_source_and_cut
    bsrc = tmp_path / "bframes.mp4"
    _run(["-i", str(src), "-c:v", "libx264", "-preset", "veryfast", "-bf", "3", "-crf", "14", "-pix_fmt", "yuv420p",
          str(bsrc)])
    counts = []
    for skip in ("DEFAULT", "NONREF"):
        with av.open(str(bsrc)) as c:
            c.streams.video[0].codec_context.skip_frame = skip
            counts.append(sum(1 for _ in c.decode(video=0)))
    assert counts[1] < counts[0]  # the file has frames no other frame refers to
    sample = decode.sample_frames(str(bsrc), 6.0, 4.0)
    assert decode.samples_reference_frames(sample.backend) and not decode.samples_reference_frames("torchcodec")
    ts = sample.timestamps
    cells = [(float(ts[i]), float(ts[i]) - 1.37) for i in (8, 12, 16)]
    w = window_s(ts, np.arange(0, 3.5, 0.25))
    monkeypatch.setattr(exact, "WHOLE_PIXELS", 1.0)  # both decoded at their windows
    skips = []
    real = decode.frames_at
    monkeypatch.setattr(decode, "frames_at", lambda p, *a, **k: skips.append((p, k.get("skip_nonref"))) or real(p, *a, **k))
    ev = {ref: pair_exact(str(bsrc), str(cut), cells, w, duration_a=6.0, duration_b=3.5, cache=exact.MomentCache(),
                          pixels_a=1e9, pixels_b=1e9, ref_a=ref) for ref in (False, True)}
    assert ev[True] == ev[False] and confirmed(ev[True]["exact_bits"], ev[True]["exact_moves"], ev[True]["exact_pin"])
    assert (str(bsrc), True) in skips and (str(cut), True) not in skips
