"""Picture-in-picture insets: found where a moving picture surrounds a persistent rectangle."""

from __future__ import annotations

import numpy as np
import pytest

from astradup.features.preprocess import content_frames, inset_box


def _smooth(rng: np.random.Generator, n: int, h: int, w: int) -> np.ndarray:
    """Blobs: random low-resolution colour fields scaled up (picture-like, not noise)."""
    from PIL import Image

    out = np.empty((n, h, w, 3), np.uint8)
    for i in range(n):
        small = (rng.random((6, 6, 3)) * 255).astype(np.uint8)
        out[i] = np.asarray(Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC))
    return out


def _pip(seed: int, box: tuple[int, int, int, int], n: int = 8, side: int = 160) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    top, bottom, left, right = box
    background = _smooth(rng, n, side, side)
    inner = _smooth(rng, n, bottom - top, right - left)
    inner[:, ::7] = 255  # some detail of its own
    frames = background.copy()
    frames[:, top:bottom, left:right] = inner
    return frames, inner


@pytest.mark.parametrize("seed,box", [(0, (10, 80, 88, 152)), (1, (57, 126, 57, 127)), (2, (90, 150, 6, 70))])
def test_inset_is_found_where_it_is(seed, box):
    frames, _ = _pip(seed, box)
    found = inset_box(frames)
    assert found is not None
    assert all(abs(a - b) <= 2 for a, b in zip(found, box)), (found, box)


def test_inset_is_cut_out_and_scaled_to_the_frame():
    box = (10, 80, 88, 152)
    frames, inner = _pip(3, box)
    out = content_frames(frames)
    assert out.shape == frames.shape
    from PIL import Image

    want = np.asarray(Image.fromarray(inner[0]).resize((160, 160), Image.Resampling.BILINEAR)).astype(float)
    assert np.abs(out[0].astype(float) - want).mean() < 12  # the inset, not the surroundings
    assert np.array_equal(content_frames(frames, inset=False), frames)


def test_a_window_between_title_cards_is_not_an_inset():
    """A trailer of a screen recording: stretches of a window on a still desktop cut between
    title cards. Around the window the picture differs from its median (the cards), so the motion
    test alone took the window for an inset; it changes only at the cuts, so it is not one."""
    import astradup.features.preprocess as pp

    box = (20, 120, 30, 130)
    frames, _ = _pip(5, box, n=12)
    still = frames[0].copy()
    for k in range(12):  # the surroundings: one still desktop throughout the recording
        inner = frames[k, box[0]:box[1], box[2]:box[3]].copy()
        frames[k] = still
        frames[k, box[0]:box[1], box[2]:box[3]] = inner
    cards = np.array([[200, 40, 40], [30, 60, 160], [40, 150, 60]], np.uint8)
    trailer = np.concatenate([np.broadcast_to(cards[0], (3, 160, 160, 3)), frames[:4],
                              np.broadcast_to(cards[1], (3, 160, 160, 3)), frames[4:8],
                              np.broadcast_to(cards[2], (3, 160, 160, 3))]).copy()
    assert inset_box(trailer) is None
    saved = pp.INSET_STEP_MOTION
    try:  # without the rule the window passes for an inset (the test checks what it claims)
        pp.INSET_STEP_MOTION = -1.0
        assert inset_box(trailer) is not None
    finally:
        pp.INSET_STEP_MOTION = saved


def _video_on_still(seed: int, box: tuple[int, int, int, int], n: int = 12) -> np.ndarray:
    """A video (new colour fields every frame, fine lines that move) shown over a still picture."""
    rng = np.random.default_rng(seed)
    top, bottom, left, right = box
    frames = np.repeat(_smooth(rng, 1, 160, 160), n, axis=0)
    inner = _smooth(rng, n, bottom - top, right - left)
    for i in range(n):
        inner[i, i % 5 :: 5] = 255
    frames[:, top:bottom, left:right] = inner
    return frames


@pytest.mark.parametrize("seed,box", [(0, (20, 120, 30, 130)), (1, (70, 140, 80, 150)), (2, (10, 60, 10, 110))])
def test_a_video_over_a_still_picture_is_found_by_the_fourth_look(seed, box):
    """The first three looks ask the surroundings to move; a video shown over a still picture (a
    frame of artwork, a player window in a screen recording) is found by the fourth."""
    from astradup.features import preprocess as pp

    frames = _video_on_still(seed, box)
    g = pp.grey(frames)
    assert pp._edge_box(g) is None and pp._activity_box(g) is None
    found = inset_box(frames)
    assert found is not None and all(abs(a - b) <= 1 for a, b in zip(found, box)), (found, box)


def test_a_window_updated_now_and_then_is_not_an_inset():
    """A screen recording: a window on a still desktop whose content changes every fourth sampled
    frame (typing, a dialog) is not a video; nor is it one under noise that moves every pixel."""
    frames = _video_on_still(4, (20, 120, 30, 130))
    frames = frames[(np.arange(len(frames)) // 4) * 4]
    assert inset_box(frames) is None
    rng = np.random.default_rng(0)
    noisy = np.clip(frames.astype(np.int16) + rng.normal(0, 6, frames.shape), 0, 255).astype(np.uint8)
    assert inset_box(noisy) is None
    video = _video_on_still(4, (20, 120, 30, 130))  # the same under noise, with a video in it: found
    noisy = np.clip(video.astype(np.int16) + rng.normal(0, 6, video.shape), 0, 255).astype(np.uint8)
    assert inset_box(noisy) is not None


def test_people_walking_through_a_still_cameras_view_are_not_an_inset(monkeypatch):
    """A still camera (a street, a hall) where people cross one stretch of the view: the stretch
    changes and the rest does not, but its sides are no picture's edges."""
    from astradup.features import preprocess as pp

    rng = np.random.default_rng(1)
    frames = np.repeat(_smooth(rng, 1, 160, 160), 16, axis=0)
    top, bottom, left, right = 40, 110, 50, 120
    for k in range(16):
        for _ in range(40):  # people: 10 x 6 px, anywhere in the stretch
            y, x = int(rng.integers(top - 9, bottom)), int(rng.integers(left - 5, right))
            frames[k, max(y, top) : min(y + 10, bottom), max(x, left) : min(x + 6, right)] = rng.integers(0, 255, 3)
    assert inset_box(frames) is None
    monkeypatch.setattr(pp, "INSET_SIDE_SHARE", 0.0)  # without the edge rule the stretch passes
    assert inset_box(frames) is not None


def _cells(rng: np.random.Generator, n: int, h: int, w: int, cell: int = 4) -> np.ndarray:
    """Busy surroundings: black and white cells that change every frame (a cellular automaton),
    edges everywhere."""
    small = rng.random((n, h // cell + 1, w // cell + 1)) < 0.5
    big = np.repeat(np.repeat(small, cell, axis=1), cell, axis=2)
    # the grid moves from frame to frame (the automaton scrolls), so no edge stays put
    big = np.stack([b[dy : dy + h, dx : dx + w] for b, dy, dx in zip(big, *rng.integers(0, cell, (2, n)))])
    return np.repeat((big * 255).astype(np.uint8)[..., None], 3, axis=3)


def test_inset_in_busy_surroundings_is_found_by_how_its_pixels_change():
    """Cells changing every frame drown the inset's edges (the first two looks find nothing); the
    inset still changes far less from frame to frame than they do, and the third look finds it."""
    from astradup.features import preprocess as pp

    rng = np.random.default_rng(11)
    box = (40, 110, 70, 150)
    frames = _cells(rng, 12, 160, 160)
    inner = _smooth(rng, 12, box[1] - box[0], box[3] - box[2])
    inner[:, ::3] = 255  # fine detail of its own up to its sides: its edges do not stand out
    inner[:, :, ::3] = 0
    frames[:, box[0] : box[1], box[2] : box[3]] = inner
    g = frames.astype(np.float32).mean(axis=3)
    assert pp._edge_box(g) is None
    found = inset_box(frames)
    assert found is not None and all(abs(a - b) <= 2 for a, b in zip(found, box)), (found, box)
    # the same cells with nothing inside them: no inset
    assert inset_box(_cells(rng, 12, 160, 160)) is None


def test_plain_videos_have_no_inset():
    rng = np.random.default_rng(5)
    assert inset_box(_smooth(rng, 8, 160, 160)) is None
    assert inset_box(np.zeros((8, 160, 160, 3), np.uint8)) is None
    assert inset_box(np.zeros((1, 160, 160, 3), np.uint8)) is None


def test_inset_setting_is_in_the_feature_key():
    from astradup.config import AstradupConfig
    from astradup.features.specs import feature_key, legacy_feature_key

    cfg = AstradupConfig()
    off = cfg.replace(**{"sampling.inset": False})
    assert feature_key(cfg) != feature_key(off)
    assert legacy_feature_key(cfg) != legacy_feature_key(off)  # pre-inset stores re-index


def test_short_videos_are_sampled_to_min_frames():
    from astradup.config import MAX_SHORT_FPS, AstradupConfig
    from astradup.errors import ConfigError

    s = AstradupConfig().sampling
    assert s.rate(8.0) == s.min_frames / 8.0  # 2 fps for an 8 s clip
    assert s.rate(2.0) == MAX_SHORT_FPS  # capped
    assert s.rate(600.0) == s.fps  # long videos keep fps
    assert AstradupConfig().replace(**{"sampling.min_frames": 0}).sampling.rate(2.0) == s.fps
    with pytest.raises(ConfigError, match="min_frames"):
        AstradupConfig().replace(**{"sampling.min_frames": -1})


def test_content_box_is_the_inset_inside_the_bars_as_fractions_of_the_frame():
    from astradup.features.preprocess import content_box

    box = (10, 80, 88, 152)
    frames, _ = _pip(5, box)
    t, b, l_, r = content_box(frames)
    assert all(abs(x - y / 160) <= 2 / 160 for x, y in zip((t, b, l_, r), box))
    assert content_box(frames, inset=False) == (0.0, 1.0, 0.0, 1.0)
    # a letterboxed copy: bars of 20 px top and bottom; the inset's box is inside the picture
    boxed = np.zeros((len(frames), 200, 160, 3), np.uint8)
    boxed[:, 20:180] = frames
    t2, b2, l2, r2 = content_box(boxed)
    assert abs(t2 * 200 - (20 + 10)) <= 3 and abs(b2 * 200 - (20 + 80)) <= 3
    assert abs(l2 * 160 - 88) <= 3 and abs(r2 * 160 - 152) <= 3


def test_geometry_compares_the_inset_not_the_frame_around_it():
    """The geometric check cuts frames to what the features describe: the inset of a
    picture-in-picture copy matches its source's keypoints far better than the whole frame."""
    from astradup.scoring.geometry import check_frames, crop_to_content, keypoints
    from tests.test_geometry import texture

    src = np.stack([texture(40 + k) for k in range(6)])  # 6 frames, 240 x 320, detail at many scales
    frames, _ = _pip(8, (44, 104, 84, 144), n=6)  # moving surroundings, 160 px square
    import cv2

    pip = []
    for k in range(6):
        g = cv2.resize(cv2.cvtColor(frames[k], cv2.COLOR_RGB2GRAY), (320, 240))
        g[66:156, 168:288] = cv2.resize(src[k], (120, 90), interpolation=cv2.INTER_AREA)
        pip.append(g)
    whole = {float(k): g for k, g in enumerate(pip)}
    cut = crop_to_content(whole)
    assert cut[0.0].shape[1] == 320 and cut[0.0].shape[0] < 300
    kp = lambda g: (keypoints(g), keypoints(np.ascontiguousarray(g[:, ::-1])))  # noqa: E731
    with_cut = check_frames([(kp(src[k]), kp(cut[float(k)])) for k in range(3)])
    without = check_frames([(kp(src[k]), kp(whole[float(k)])) for k in range(3)])
    assert with_cut["geo_inliers"] > 1.5 * without["geo_inliers"], (with_cut, without)


def test_reviewers_see_which_part_of_each_frame_was_compared():
    """A pair's explanation names the content box of each side that was cut to one (an inset or
    bars), and the review text says so; a pair of whole frames carries none."""
    from astradup.config import AstradupConfig
    from astradup.features.video import VideoFeatures
    from astradup.review.widget import explain_text
    from astradup.scoring.pair import score_pair

    rng = np.random.default_rng(3)
    codes = rng.integers(0, 256, (8, 32), dtype=np.uint8)

    def feats(box):
        return VideoFeatures(path="/v.mp4", info={"duration": 4.0}, timestamps=np.arange(8) * 0.5 + 0.25,
                             phash=codes, phash_flip=codes[:, ::-1].copy(), content_box=box)

    cfg = AstradupConfig().replace(**{"match.geometric": False, "match.exact_check": False})
    ps = score_pair(feats((0.0, 1.0, 0.0, 1.0)), feats((0.3, 0.8, 0.2, 0.75)), cfg)
    assert ps.explanation["content_box"] == {"a": None, "b": [0.3, 0.8, 0.2, 0.75]}
    lines = explain_text({"label": ps.label, "score": ps.score, "explanation": ps.explanation})
    assert any(x.startswith("b: compared inside rows 0.30-0.80, columns 0.20-0.75") for x in lines), lines
    assert not any(x.startswith("a: compared") for x in lines)
    whole = score_pair(feats(None), feats((0.0, 1.0, 0.0, 1.0)), cfg)
    assert "content_box" not in whole.explanation
