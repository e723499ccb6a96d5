"""astradup.synth: a tiny labelled corpus, its ground truth, determinism and bad input."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from astradup.errors import ConfigError, UnknownBackendError
from astradup.media import probe, sample_frames
from astradup.synth import TRANSFORMS, TRUTH_COLUMNS, FFmpegError, generate, list_transforms
from astradup.synth._ffmpeg import run_ffmpeg
from astradup.synth.audio import melody
from astradup.synth.truth import Span, VideoRecord, ground_truth, relate
from tests.conftest import make_video

SMALL = dict(
    n_sources=2,
    duration=3.0,
    width=96,
    height=64,
    seed=3,
    n_distractors=1,
    n_partial=1,
    n_similar=1,
    n_shared_audio=1,
    transforms=["hflip", "speed_up", "audio_muted", "reencode_vp9", "trim_head"],
)
# copies only: no distractors, partial, similar or shared-soundtrack videos, at 64x48
BARE = dict(width=64, height=48, n_distractors=0, n_partial=0, n_similar=0, n_shared_audio=0)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    out = tmp_path_factory.mktemp("synth") / "corpus"
    return out, generate(out, **SMALL)


def _videos(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "videos.csv")


def _row(truth: pd.DataFrame, a: str, b: str) -> pd.Series:
    hit = truth[(truth.a == a) & (truth.b == b)]
    assert len(hit) == 1, f"expected one truth row for {a} / {b}, found {len(hit)}"
    return hit.iloc[0]


def _params(out: Path, name: str) -> dict:
    v = _videos(out)
    return json.loads(v.loc[v.path == name, "params"].iloc[0])


# --- the generated corpus --------------------------------------------------------------------


def test_files_exist_and_probe(corpus):
    out, _ = corpus
    v = _videos(out)
    assert list(v.columns[:4]) == ["path", "source", "transform", "duration"]
    expected = {
        "src01.mp4",
        "src01__hflip.mp4",
        "src01__reencode_vp9.webm",
        "src01__similar.mp4",
        "src01__partial_cut.mp4",
        "src01__partial_embed.mp4",
        "src01__partial_trailer.mp4",
        "src01__shared_audio.mp4",
        "src02__trim_head.mp4",
        "dis01.mp4",
    }
    assert expected <= set(v.path)
    assert "src02__partial_cut.mp4" not in set(v.path)  # n_partial=1
    assert len(v) == 2 * (1 + 5) + 4 + 1 + 1  # similar, 3 partial kinds; distractor; shared audio
    for _, row in v.iterrows():
        info = probe(out / row.path)
        assert info.width > 0 and info.height > 0
        assert info.duration == pytest.approx(row.duration, abs=0.05)
    assert probe(out / "src01.mp4").width == 96
    assert not (out / ".work").exists()


def test_truth_columns_and_relations(corpus):
    out, truth = corpus
    on_disk = pd.read_csv(out / "ground_truth.csv")
    assert list(on_disk.columns) == TRUTH_COLUMNS == list(truth.columns)
    assert set(truth.relation) == {"exact", "near", "partial", "similar"}
    assert _row(truth, "src01.mp4", "src01__reencode_vp9.webm").relation == "exact"
    assert _row(truth, "src01.mp4", "src01__hflip.mp4").relation == "near"
    assert _row(truth, "src01.mp4", "src01__audio_muted.mp4").relation == "near"
    assert _row(truth, "src01.mp4", "src01__partial_cut.mp4").relation == "partial"
    assert _row(truth, "src01.mp4", "src01__partial_embed.mp4").relation == "partial"
    similar = _row(truth, "src01.mp4", "src01__similar.mp4")
    assert similar.relation == "similar" and np.isnan(similar.a_start)
    pair = _row(truth, "src01__hflip.mp4", "src01__speed_up.mp4")
    assert (pair.relation, pair["transform"], pair.group) == ("near", "hflip+speed_up", "src01")
    # distractors and shared-soundtrack videos are unrelated to everything
    for name in ("dis01.mp4", "src01__shared_audio.mp4"):
        assert not ((truth.a == name) | (truth.b == name)).any()
    # no pair across sources
    assert (truth.a.str[:5] == truth.b.str[:5]).all()


def test_truth_times(corpus):
    out, truth = corpus
    head = _params(out, "src01__trim_head.mp4")["head"]
    row = _row(truth, "src01.mp4", "src01__trim_head.mp4")
    assert (row.a_start, row.a_end, row.b_start) == (pytest.approx(head), pytest.approx(3.0), 0.0)
    p = _params(out, "src01__partial_embed.mp4")
    row = _row(truth, "src01.mp4", "src01__partial_embed.mp4")
    assert row.a_start == pytest.approx(p["segment_start"]) and row.a_end == pytest.approx(
        p["segment_end"]
    )
    assert row.b_start == pytest.approx(p["host_start"]) and row.b_end == pytest.approx(
        p["host_end"]
    )
    embed = probe(out / "src01__partial_embed.mp4").duration
    assert embed > probe(out / "src01.mp4").duration  # embedded in a longer video


def test_hflip_really_flips(corpus):
    out, _ = corpus
    a = sample_frames(out / "src01.mp4", 3.0, fps=2, size=64).frames.astype(np.float32)
    b = sample_frames(out / "src01__hflip.mp4", 3.0, fps=2, size=64).frames.astype(np.float32)
    n = min(len(a), len(b))
    flipped = np.abs(a[:n, :, ::-1] - b[:n]).mean()
    straight = np.abs(a[:n] - b[:n]).mean()
    assert flipped < 6 and straight > 3 * flipped


def test_speed_change_changes_duration(corpus):
    out, truth = corpus
    speed = _params(out, "src01__speed_up.mp4")["speed"]
    assert 1.05 <= speed <= 1.10
    ratio = probe(out / "src01.mp4").duration / probe(out / "src01__speed_up.mp4").duration
    assert ratio == pytest.approx(speed, abs=0.03)
    row = _row(truth, "src01.mp4", "src01__speed_up.mp4")
    assert row.b_end == pytest.approx(3.0 / speed, abs=0.01)


def test_muted_copy_has_no_audio_and_sources_have_audio(corpus):
    out, _ = corpus
    assert probe(out / "src01.mp4").has_audio
    assert not probe(out / "src01__audio_muted.mp4").has_audio
    assert probe(out / "src01__shared_audio.mp4").has_audio


def test_shared_audio_has_the_sources_soundtrack_and_other_pictures(corpus):
    from astradup.media import load_audio

    out, _ = corpus
    a = load_audio(out / "src01.mp4", rate=8000)
    b = load_audio(out / "src01__shared_audio.mp4", rate=8000)
    n = min(len(a), len(b))
    assert np.corrcoef(a[:n], b[:n])[0, 1] > 0.95
    fa = sample_frames(out / "src01.mp4", 3.0, fps=1, size=32).frames.astype(np.float32)
    fb = sample_frames(out / "src01__shared_audio.mp4", 3.0, fps=1, size=32).frames.astype(
        np.float32
    )
    assert np.abs(fa[:2] - fb[:2]).mean() > 15


@pytest.mark.slow
def test_same_seed_same_corpus_other_seed_differs(corpus, tmp_path):
    out, truth = corpus
    again = generate(tmp_path / "again", **SMALL)
    pd.testing.assert_frame_equal(truth, again)
    assert _videos(out).equals(_videos(tmp_path / "again"))
    for name in _videos(out).path:
        assert (out / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name
    other = generate(tmp_path / "other", **{**SMALL, "seed": 4})
    assert not (out / "src01.mp4").read_bytes() == (tmp_path / "other" / "src01.mp4").read_bytes()
    assert not truth[["a_start", "b_start"]].equals(other[["a_start", "b_start"]])


def test_rerun_replaces_an_earlier_corpus(tmp_path):
    out = tmp_path / "c"
    generate(
        out,
        n_sources=1,
        duration=2.0,
        transforms=["hflip", "blur"],
        **BARE,
    )
    (out / "notes.txt").write_text("mine")
    generate(
        out,
        n_sources=1,
        duration=2.0,
        transforms=["hflip"],
        **BARE,
    )
    assert not (out / "src01__blur.mp4").exists()
    assert sorted(p.name for p in out.glob("*.mp4")) == ["src01.mp4", "src01__hflip.mp4"]
    assert (out / "notes.txt").read_text() == "mine"  # only files the old listing named are removed


# --- sources from the user's folder --------------------------------------------------------


def _tree_digest(folder: Path) -> dict[str, tuple[str, int]]:
    return {
        str(p.relative_to(folder)): (
            hashlib.sha256(p.read_bytes()).hexdigest(),
            p.stat().st_mtime_ns,
        )
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_sources_dir_mode(tmp_path):
    src = tmp_path / "mine"
    make_video(src / "a.mp4", "mandelbrot", seconds=8, seed=1)
    make_video(src / "sub" / "b.mkv", "life", seconds=4, seed=2, w=64, h=64)
    (src / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200)
    (src / "notes.txt").write_text("not a video")
    before = _tree_digest(src)
    out = tmp_path / "out"
    truth = generate(
        out,
        sources_dir=src,
        n_sources=3,
        duration=2.5,
        width=96,
        height=64,
        transforms=["hflip"],
        n_distractors=0,
        n_partial=0,
        n_shared_audio=0,
    )
    assert _tree_digest(src) == before  # the user's folder is untouched
    v = _videos(out)
    materials = [json.loads(p)["material"] for p in v.loc[v["transform"] == "source", "params"]]
    assert sorted(Path(m).name for m in materials) == [
        "a.mp4",
        "a.mp4",
        "b.mkv",
    ]  # a long file gives two
    assert probe(out / "src01.mp4").height <= 64
    # the broken file is skipped, logged and listed
    skipped = pd.read_csv(out / "skipped.csv")
    assert [Path(p).name for p in skipped.path] == ["broken.mp4"]
    assert truth.attrs["skipped"][0]["path"].endswith("broken.mp4")
    # two segments of one file are similar; a square source keeps its aspect inside the box
    a_srcs = [
        n
        for n, m in zip(v.loc[v["transform"] == "source", "path"], materials, strict=True)
        if m.endswith("a.mp4")
    ]
    assert _row(truth, *a_srcs).relation == "similar"
    b = [
        n
        for n, m in zip(v.loc[v["transform"] == "source", "path"], materials, strict=True)
        if m.endswith("b.mkv")
    ][0]
    info = probe(out / b)
    assert info.width == info.height == 64


def test_a_source_that_fails_to_cut_is_skipped_with_its_copies(tmp_path, monkeypatch):
    import sys

    gen = sys.modules["astradup.synth.generate"]
    real = gen.run_ffmpeg

    def flaky(args, out):
        if Path(out).name == "src01.mp4":
            raise FFmpegError(
                out, "ffmpeg failed (exit 1): Invalid data found when processing input"
            )
        return real(args, out)

    monkeypatch.setattr(gen, "run_ffmpeg", flaky)
    src = tmp_path / "mine"
    make_video(src / "a.mp4", "mandelbrot", seconds=3, seed=1)
    make_video(src / "b.mp4", "life", seconds=3, seed=2)
    truth = generate(
        tmp_path / "out",
        sources_dir=src,
        n_sources=2,
        duration=2.5,
        transforms=["hflip"],
        **BARE,
    )
    v = _videos(tmp_path / "out")
    assert list(v.path) == ["src02.mp4", "src02__hflip.mp4"]
    assert list(truth.a) == ["src02.mp4"]
    skipped = pd.read_csv(tmp_path / "out" / "skipped.csv")
    assert len(skipped) == 1 and "Invalid data" in skipped.message[0]


def test_bad_inputs(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        generate(tmp_path / "o1", sources_dir=tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="holds no video files"):
        generate(tmp_path / "o2", sources_dir=tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.mp4").write_text("this is text")
    with pytest.raises(ConfigError, match="none of its 1 video file"):
        generate(tmp_path / "o3", sources_dir=bad)
    with pytest.raises(UnknownBackendError, match="hflip"):
        generate(tmp_path / "o4", transforms=["hflip", "sepia"])
    with pytest.raises(ConfigError, match="inside sources_dir"):
        generate(bad / "out", sources_dir=bad)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "holiday.mp4").write_bytes(b"user media")
    with pytest.raises(ConfigError, match="not empty"):
        generate(busy)
    assert (busy / "holiday.mp4").read_bytes() == b"user media"
    for kw, msg in (
        ({"duration": 0.5}, "duration"),
        ({"n_sources": 0}, "n_sources"),
        ({"width": 8}, "width"),
        ({"n_distractors": -1}, "n_distractors"),
    ):
        with pytest.raises(ConfigError, match=msg):
            generate(tmp_path / "o5", **kw)


def test_ffmpeg_failure_names_the_output_and_quotes_ffmpeg(tmp_path):
    out = tmp_path / "x.mp4"
    with pytest.raises(FFmpegError) as err:
        run_ffmpeg(["-f", "lavfi", "-i", "nosuchsource=s=8x8"], out)
    assert str(out) in str(err.value) and "nosuchsource" in str(err.value)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_transform_registry():
    assert list_transforms() == list(TRANSFORMS)
    assert len(TRANSFORMS) >= 20
    assert {
        "hflip",
        "pip",
        "combo",
        "speed_up",
        "audio_muted",
        "letterbox",
        "pillarbox",
        "banner",
    } <= set(TRANSFORMS)
    with pytest.raises(UnknownBackendError) as err:
        generate("unused", transforms="hflip,nope")
    assert "reencode_vp9" in str(err.value)


# --- pure parts: the truth rules and the tunes ----------------------------------------------


def _v(name, transform, spans, dur, exact=False):
    return VideoRecord(name, transform, [Span(*s) for s in spans], exact, dur)


def test_relate_rules_by_hand():
    g = {"m": "src01"}
    src = _v("s", "source", [("m", 0, 10, 0, 10)], 10, exact=True)
    webm = _v("w", "reencode_vp9", [("m", 0, 10, 0, 10)], 10, exact=True)
    fast = _v("f", "speed_up", [("m", 0, 10, 0, 9.091)], 9.091)
    trim = _v("t", "trim_head", [("m", 2, 10, 0, 8)], 8)
    cut = _v("c", "partial_cut", [("m", 3, 6, 0, 3)], 3)
    other = _v("o", "similar", [("m", 11, 21, 0, 10)], 10, exact=True)
    far = _v("x", "distractor", [("n", 0, 10, 0, 10)], 10)
    assert relate(src, webm, g)["relation"] == "exact"
    row = relate(src, fast, g)
    assert (row["relation"], row["b_end"]) == ("near", 9.091)
    row = relate(fast, trim, g)
    assert (row["relation"], row["transform"], row["a_start"], row["b_start"]) == (
        "near",
        "speed_up+trim_head",
        1.818,
        0.0,
    )
    row = relate(trim, cut, g)
    assert (row["relation"], row["a_start"], row["a_end"], row["b_start"], row["b_end"]) == (
        "partial",
        1,
        4,
        0,
        3,
    )
    assert relate(src, other, g)["relation"] == "similar"
    assert relate(src, far, g) is None
    tiny = _v("y", "partial_cut", [("m", 9.8, 12, 0, 2.2)], 2.2)
    assert relate(src, tiny, g)["relation"] == "similar"  # 0.2 s shared is below min_overlap
    frame = ground_truth([src, webm, trim, cut, other, far], g)
    assert len(frame) == 10 and set(frame.group) == {"src01"}


def test_melody_is_a_seeded_tune():
    a, b = melody(1, 3.0), melody(1, 3.0)
    assert a.dtype == np.float32 and len(a) == 3 * 44100 and np.array_equal(a, b)
    assert not np.array_equal(a, melody(2, 3.0))
    assert 0.3 < np.abs(a).max() <= 1.0
    # many different pitches over time (a sine would give one)
    win = 4096
    peaks = {
        int(np.argmax(np.abs(np.fft.rfft(a[i : i + win]))))
        for i in range(0, len(a) - win, win // 2)
    }
    assert len(peaks) >= 4


def test_fillers_zoom_into_points_of_their_own(tmp_path):
    """Two procedural fillers must not be copies of each other: each ``mandelbrot_roam`` filler
    of a plan zooms into a point of its own near the set's boundary, and no two start on
    overlapping views (the plain ``mandelbrot`` kind has six fixed points, so two fillers showed
    one fractal in two hues and the truth called them different)."""
    import re

    from astradup.synth import procedural
    from astradup.synth.generate import _spec
    from astradup.synth.planners import make_plan

    assert "mandelbrot" not in procedural.VARIED_KINDS and "mandelbrot_roam" in procedural.VARIED_KINDS
    # the fillers' order keeps every other kind where it was (the name sorts in mandelbrot's place)
    assert sorted(procedural.VARIED_KINDS).index("mandelbrot_roam") == 2
    assert "mandelbrot_roam" not in procedural.KINDS  # sources and distractors keep their order
    spec = _spec(tmp_path / "c", None, 12, 5, 4.0, 96, 64, None, n_distractors=2, n_partial=None,
                 n_similar=None, n_shared_audio=None, hard_negatives=4, music_dir=None)
    plan = make_plan(spec)
    views = []
    for m in plan.materials:
        if m.origin == "procedural:mandelbrot_roam":
            g = m.render[0]
            x, y, s = (float(re.search(rf"{k}=([-0-9.e]+)", g).group(1)) for k in ("start_x", "start_y", "start_scale"))
            views.append((complex(x, y), s))
            # near the boundary: the orbit escapes, but late
            z, c = 0j, complex(x, y)
            n = next((k for k in range(128) if abs(z := z * z + c) > 2.0), 128)
            assert 40 <= n < 120
    assert len(views) >= 4
    for i, (c1, s1) in enumerate(views):
        for c2, s2 in views[i + 1 :]:
            # ffmpeg's view is ``scale`` wide (and less high) around its point
            assert abs(c1 - c2) > max(s1, s2), "two fillers start on overlapping views"


def test_same_run_by_hand():
    from astradup.synth.looks import same_run

    rng = np.random.default_rng(0)
    pics = rng.uniform(0, 255, (6, 16)).astype(np.float32)
    flat = np.full((3, 16), 20.0, np.float32)
    # b shows a's pictures 1..3 (a run of 3) after one picture of its own; noise under the cut is "same"
    b = np.stack([pics[5], pics[1] + 1, pics[2] - 1, pics[3], pics[0]])
    assert same_run(pics[:4], b) == 3
    assert same_run(pics[:1], pics[1:]) == 0
    assert same_run(flat, flat) == 0  # flat pictures carry nothing, however alike
    assert same_run(pics[:0], pics) == 0


def test_a_file_whose_picture_comes_back_gives_one_segment(tmp_path):
    from astradup.synth.plan import Material

    card = make_video(tmp_path / "mine" / "card.mp4", "smptebars", seconds=12)
    zoom = make_video(tmp_path / "mine" / "zoom.mp4", "testsrc2", seconds=12)

    def material(p: Path) -> Material:
        return Material("m", p, probe(p).duration, True, str(p))

    rng = np.random.default_rng(0)
    taken = {}
    for p in (card, zoom):
        m, segs = material(p), []
        while seg := m.take(2.5, rng, 2.5):
            segs.append(seg)
        taken[p.name] = (segs, m.spoiled)
    assert len(taken["card.mp4"][0]) == 1 and taken["card.mp4"][1]  # the rest of the card is spoiled
    assert len(taken["zoom.mp4"][0]) >= 3 and not taken["zoom.mp4"][1]
    # neighbouring segments (hard negatives) likewise: none from the card, two from moving footage
    assert material(card).take_pair(2.5) is None
    assert material(zoom).take_pair(2.5) is not None
    # in a whole run the card gives one source and no "similar" pair of its own stretches
    out = tmp_path / "out"
    truth = generate(out, sources_dir=tmp_path / "mine", n_sources=4, duration=2.5, width=96, height=64,
                     transforms=["hflip"], n_distractors=0, n_partial=0, n_shared_audio=0)
    v = _videos(out)
    srcs = v[v["transform"] == "source"]
    from_card = [n for n, p in zip(srcs["path"], srcs["params"], strict=True) if json.loads(p)["material"].endswith("card.mp4")]
    assert len(from_card) == 1
    card_videos = {n for n in v["path"] if Path(n).name.split("__")[0].split(".")[0] == Path(from_card[0]).stem}
    assert not ((truth["relation"] == "similar") & (truth["a"].isin(card_videos) | truth["b"].isin(card_videos))).any()
