"""astradup.synth hard negatives, banners and trailers: each kind present, labelled as documented,
and checked against the pixels and sound of the files made."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest

from astradup.labels import POSITIVE_RELATIONS, RELATIONS
from astradup.synth import HARD_KINDS, generate
from astradup.synth.plan import Spec
from astradup.synth.planners import make_plan
from astradup.synth.truth import Span, VideoRecord, ground_truth, relate

HARD = dict(
    n_sources=2,
    duration=4.0,
    width=96,
    height=64,
    seed=5,
    transforms=["banner", "hflip"],
    n_distractors=0,
    n_partial=1,
    n_similar=0,
    n_shared_audio=0,
    hard_negatives=1,
)
COPY = set(POSITIVE_RELATIONS)


@pytest.fixture(scope="module")
def hard(tmp_path_factory) -> tuple[Path, pd.DataFrame, pd.DataFrame]:
    out = tmp_path_factory.mktemp("hard") / "corpus"
    truth = generate(out, **HARD)
    return out, truth, pd.read_csv(out / "videos.csv")


def _gray(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Every frame as float luma, and its time (seconds)."""
    frames, times = [], []
    with av.open(str(path)) as c:
        for f in c.decode(c.streams.video[0]):
            frames.append(f.to_ndarray(format="gray").astype(np.float64))
            times.append(float(f.time))
    return np.stack(frames), np.array(times)


def _at(frames: np.ndarray, times: np.ndarray, t: float) -> np.ndarray:
    return frames[int(np.argmin(np.abs(times - t)))]


def _params(videos: pd.DataFrame, name: str) -> dict:
    return json.loads(videos.loc[videos.path == name, "params"].iloc[0])


def _kind(videos: pd.DataFrame) -> dict[str, str]:
    return dict(zip(videos.path, videos["transform"]))


def test_every_hard_kind_is_made_and_never_a_copy(hard):
    assert set(HARD_KINDS.values()) <= set(RELATIONS) - COPY
    out, truth, videos = hard
    made = set(videos["transform"])
    assert set(HARD_KINDS) <= made
    kind = _kind(videos)
    involved = truth[truth.a.map(kind).isin(HARD_KINDS) | truth.b.map(kind).isin(HARD_KINDS)]
    assert not involved.relation.isin(COPY).any()
    # each kind is listed with the relation HARD_KINDS documents
    for k, relation in HARD_KINDS.items():
        rows = involved[(involved.a.map(kind) == k) | (involved.b.map(kind) == k)]
        assert len(rows) >= 1, k
        assert set(rows.relation) == {relation}, (k, set(rows.relation))


def test_hard_pairs_by_kind(hard):
    out, truth, videos = hard
    rows = {(a, b): r for a, b, r in zip(truth.a, truth.b, truth.relation)}
    flat = [f"hn01__{k}_{s}.mp4" for k in ("lowdetail", "slideshow") for s in "ab"]
    for a, b in itertools.combinations(flat, 2):
        assert rows[(a, b)] == "different"
    assert rows[("hn01__edit_a.mp4", "hn01__edit_b.mp4")] == "similar"
    assert rows[("src01.mp4", "hn01__edit_a.mp4")] == "similar"
    assert rows[("src01__banner.mp4", "hn01__edit_b.mp4")] == "similar"
    assert rows[("hn01__neighbour_a.mp4", "hn01__neighbour_b.mp4")] == "similar"
    src = _params(videos, "hn01__soundtrack.mp4")["audio_from"]
    assert rows[(src, "hn01__soundtrack.mp4")] == "different"
    # the flat videos are related to nothing else
    others = truth[truth.a.isin(flat) ^ truth.b.isin(flat)]
    assert others.empty


def test_lowdetail_has_long_flat_stretches(hard):
    out, _, videos = hard
    for side in "ab":
        name = f"hn01__lowdetail_{side}.mp4"
        frames, times = _gray(out / name)
        p = _params(videos, name)
        t, flat_frames = p["fade_in"], []
        for kind, sec in zip(p["flat"], p["flat_seconds"]):
            f = _at(frames, times, t + sec / 2)
            flat_frames.append((kind, f))
            t += sec
        for kind, f in flat_frames:
            # little texture: neighbouring pixels differ by a few grey levels at most
            assert np.abs(np.diff(f, axis=1)).mean() < 3.0, kind
            if kind == "white":
                assert f.mean() > 200
            if kind == "black":
                assert f.mean() < 40
        assert sum(p["flat_seconds"]) >= 0.5 * HARD["duration"]


def test_slideshow_stills_are_smooth_and_differ(hard):
    out, _, videos = hard
    mids = []
    for side in "ab":
        name = f"hn01__slideshow_{side}.mp4"
        frames, times = _gray(out / name)
        p = _params(videos, name)
        hold, xf = p["hold"], p["crossfade"]
        stills = [_at(frames, times, i * (hold - xf) + hold / 2) for i in range(len(p["stills"]))]
        for s in stills:
            assert np.abs(np.diff(s, axis=1)).mean() < 3.0
        # held: the middle of a still does not move
        f0, f1 = _at(frames, times, hold / 2 - 0.1), _at(frames, times, hold / 2 + 0.1)
        assert np.abs(f0 - f1).mean() < 1.0
        mids.append(stills[0])
    assert np.abs(mids[0] - mids[1]).mean() > 1.0  # different stills


def test_edits_reorder_and_reframe_the_source_with_other_music(hard):
    out, truth, videos = hard
    orders = []
    for side in "ab":
        name = f"hn01__edit_{side}.mp4"
        p = _params(videos, name)
        order = [s["shot"] for s in p["shots"]]
        assert sorted(order) == list(range(len(order))) and order != sorted(order)
        assert all(1.5 <= s["zoom"] <= 1.9 for s in p["shots"])
        orders.append(order)
        src, _ = _gray(out / p["edit_of"])
        edit, _ = _gray(out / name)
        n = min(len(src), len(edit))
        assert np.abs(src[:n] - edit[:n]).mean() > 5.0  # not the source's pixels
        assert _audio(out / name) != _audio(out / p["edit_of"])
    assert orders[0] != orders[1]


def _audio(path: Path) -> bytes:
    with av.open(str(path)) as c:
        return b"".join(bytes(p) for p in c.demux(c.streams.audio[0]) if p.size)


def test_soundtrack_is_the_sources_audio_over_other_pictures(hard):
    out, _, videos = hard
    name = "hn01__soundtrack.mp4"
    src = _params(videos, name)["audio_from"]
    assert _audio(out / name) == _audio(out / src)
    a, _ = _gray(out / name)
    b, _ = _gray(out / src)
    n = min(len(a), len(b))
    assert np.abs(a[:n] - b[:n]).mean() > 10.0


def test_banner_covers_a_band_and_leaves_the_rest(hard):
    out, _, videos = hard
    p = _params(videos, "src01__banner.mp4")
    a, _ = _gray(out / "src01.mp4")
    b, _ = _gray(out / "src01__banner.mp4")
    band = slice(0, p["band"]) if p["side"] == "top" else slice(-p["band"], None)
    rest = slice(p["band"] + 2, None) if p["side"] == "top" else slice(None, -p["band"] - 2)
    assert np.abs(a[:, rest] - b[:, rest]).mean() < 4.0
    assert np.abs(a[:, band] - b[:, band]).mean() > 4 * np.abs(a[:, rest] - b[:, rest]).mean()


def test_trailer_quotes_the_source_between_title_cards(hard):
    out, truth, videos = hard
    p = _params(videos, "src01__partial_trailer.mp4")
    src, st = _gray(out / "src01.mp4")
    tr, tt = _gray(out / "src01__partial_trailer.mp4")
    t = 0.0
    for (q0, q1), card in zip(p["quotes"], p["cards"]):
        t += card
        mid = (q1 - q0) / 2
        diff = np.abs(_at(tr, tt, t + mid) - _at(src, st, q0 + mid)).mean()
        other = np.abs(_at(tr, tt, card / 2) - _at(src, st, q0 + mid)).mean()  # a title card
        assert diff < 6.0 < other
        t += q1 - q0
    row = truth[(truth.a == "src01.mp4") & (truth.b == "src01__partial_trailer.mp4")]
    assert list(row.relation) == ["partial"]


# --- pure parts ---------------------------------------------------------------------------


def _spec(tmp_path: Path, **kw) -> Spec:
    base = dict(
        out=tmp_path / "o",
        work=tmp_path / "o" / ".work",
        sources_dir=None,
        n_sources=3,
        seed=1,
        duration=4.0,
        width=96,
        height=64,
        transforms=["banner", "pip"],
        n_distractors=1,
        n_partial=2,
        n_similar=2,
        n_shared=1,
        n_hard=2,
    )
    return Spec(**(base | kw))


def test_plan_is_pure_and_seeded(tmp_path):
    a, b = make_plan(_spec(tmp_path)), make_plan(_spec(tmp_path))
    assert [(j.out, j.args) for j in a.jobs] == [(j.out, j.args) for j in b.jobs]
    assert a.extra_pairs == b.extra_pairs and a.wavs == b.wavs
    c = make_plan(_spec(tmp_path, seed=2))
    assert [j.args for j in a.jobs] != [j.args for j in c.jobs]
    assert not (tmp_path / "o").exists()  # planning writes nothing
    names = [j.out.name for j in a.jobs if j.video is not None]
    assert len(names) == len(set(names))
    for k in range(2):
        for kind in ("lowdetail", "slideshow", "edit", "neighbour"):
            assert f"hn{k + 1:02d}__{kind}_a.mp4" in names
        assert f"hn{k + 1:02d}__soundtrack.mp4" in names


def test_hard_negatives_leave_the_rest_of_the_plan_alone(tmp_path):
    """Hard negatives are planned last: every other job is the same with or without them."""
    with_hard = make_plan(_spec(tmp_path))
    without = make_plan(_spec(tmp_path, n_hard=0))
    n = len(without.jobs)
    assert [(j.out, j.args) for j in with_hard.jobs[:n]] == [(j.out, j.args) for j in without.jobs]
    assert all(j.out.name.startswith(("hn", "f")) for j in with_hard.jobs[n:])


def test_edit_and_extra_rows_by_hand():
    g = {"m": "src01"}
    src = VideoRecord("s", "source", [Span("m", 0, 10, 0, 10)], True, 10)
    edit = VideoRecord(
        "e", "hard_edit", [Span("m", 5, 10, 0, 5), Span("m", 0, 5, 5, 10)], duration=10, edit=True
    )
    other = VideoRecord("o", "distractor", [Span("n", 0, 10, 0, 10)], duration=10)
    row = relate(src, edit, g)
    assert row["relation"] == "similar" and row["a_start"] is None  # full overlap, still similar
    extra = [("o", "s", "different", "hard_x", "hard"), ("e", "s", "different", "hard_y", "h")]
    frame = ground_truth([src, edit, other], g, extra=extra)
    # provenance wins for (s, e); the extra row is written a before b in list order
    assert list(zip(frame.a, frame.b, frame.relation)) == [
        ("s", "e", "similar"),
        ("s", "o", "different"),
    ]


def test_hard_negatives_from_a_users_files(tmp_path):
    """From real files: footage comes from their unused room, the soundtrack's pictures never
    from the source's own file, and still no hard negative is a copy."""
    from tests.conftest import make_video

    src = tmp_path / "mine"
    make_video(src / "a.mp4", "mandelbrot", seconds=12, seed=1)
    make_video(src / "b.mp4", "life", seconds=12, seed=2)
    truth = generate(
        tmp_path / "out",
        sources_dir=src,
        n_sources=2,
        duration=3.0,
        width=64,
        height=48,
        transforms=[],
        n_distractors=0,
        n_partial=0,
        n_similar=0,
        n_shared_audio=0,
        hard_negatives=1,
        seed=2,
    )
    videos = pd.read_csv(tmp_path / "out" / "videos.csv")
    assert set(HARD_KINDS) <= set(videos["transform"])
    kind = _kind(videos)
    hard_rows = truth[truth.a.map(kind).isin(HARD_KINDS) | truth.b.map(kind).isin(HARD_KINDS)]
    assert not hard_rows.relation.isin(COPY).any()
    material = {
        r.path: json.loads(r.params).get("material") for r in videos.itertuples() if r.params
    }
    sound = _params(videos, "hn01__soundtrack.mp4")["audio_from"]
    # the soundtrack video is different from its source, not similar (other file's pictures)
    row = truth[(truth.a == sound) & (truth.b == "hn01__soundtrack.mp4")]
    assert list(row.relation) == ["different"]
    # the neighbouring segments are cut from one of the user's files
    assert material["hn01__neighbour_a.mp4"] == material["hn01__neighbour_b.mp4"]
    assert str(material["hn01__neighbour_a.mp4"]).startswith(str(src))


# --- the accuracy benchmark's hard-case figures, on this corpus ----------------------------


def test_benchmark_counts_hard_negatives_called_copies_by_kind(hard):
    from benchmarks.accuracy import hard_negative_errors, peer_lines, peers_side

    out, truth, videos = hard
    kinds = _kind(videos)
    names = sorted(videos.path)
    everyone = set(names)
    joined = pd.DataFrame(
        {
            "a": ["hn01__lowdetail_a.mp4", "src01.mp4", "src01.mp4"],
            "b": ["hn01__slideshow_b.mp4", "hn01__edit_a.mp4", "src01__hflip.mp4"],
            "relation": ["different", "similar", "near"],
            "truth_class": ["different", "similar", "near"],
            "label": ["near", "different", "near"],
        }
    )
    assert hard_negative_errors(joined, {}, everyone) == {}  # a set without hard negatives
    errs = hard_negative_errors(joined, kinds, everyone)
    assert errs["hard_lowdetail+hard_slideshow"][0] == 1
    assert errs["hard_edit"][0] == 0
    n_hard = sum(k in HARD_KINDS for k in kinds.values())
    n = len(names)
    pairs_with_hard = n_hard * (n - n_hard) + n_hard * (n_hard - 1) // 2
    assert sum(t for _, t in errs.values()) == pairs_with_hard  # every such pair, scored or not
    # the peers end to end on this corpus: every pair scored, thresholds fitted on a split
    from astradup.evaluation import load_truth
    from astradup.tuning import split_by_group

    t = load_truth(out / "ground_truth.csv")
    train, test = (set(x) for x in split_by_group(t, names, val_fraction=0.5, seed=0))
    peers = peers_side(out, t, names, train, test, cache=out.parent)
    assert "pdq_style" in peers
    for p in peers.values():
        assert 0.05 <= p["threshold"] <= 0.95
        assert p["eval"].metrics["n_pairs_total"] == len(test) * (len(test) - 1) // 2
    text = "\n".join(peer_lines(peers, {}, kinds, test))
    assert "vPDQ-style (pdqhash)" in text and "Hard negatives labelled exact or near" in text


def test_music_dir_gives_the_other_music(tmp_path):
    """With a music folder, a trailer's music is a stretch of one of its files."""
    from astradup.errors import ConfigError
    from astradup.synth._ffmpeg import run_ffmpeg

    music = tmp_path / "music"
    music.mkdir()
    run_ffmpeg(
        ["-f", "lavfi", "-i", "sine=frequency=1000:duration=20", "-c:a", "libopus"],
        music / "tone.ogg",
    )
    (music / "notes.txt").write_text("not music")
    out = tmp_path / "out"
    generate(
        out,
        n_sources=1,
        duration=3.0,
        width=64,
        height=48,
        transforms=[],
        n_distractors=0,
        n_similar=0,
        n_shared_audio=0,
        n_partial=1,
        music_dir=music,
        seed=1,
    )
    assert json.loads((out / "synth.json").read_text())["music"] == [str(music / "tone.ogg")]
    with av.open(str(out / "src01__partial_trailer.mp4")) as c:
        pcm = np.concatenate([f.to_ndarray()[0] for f in c.decode(c.streams.audio[0])])
        rate = c.streams.audio[0].rate
    spectrum = np.abs(np.fft.rfft(pcm[: rate * 2]))
    assert np.argmax(spectrum) * rate / (2 * rate) == pytest.approx(1000, abs=5)
    (music / "tone.ogg").unlink()
    with pytest.raises(ConfigError, match="no readable audio file"):
        generate(tmp_path / "o2", n_sources=1, duration=3.0, transforms=[], music_dir=music)
