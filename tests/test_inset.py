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


def test_a_window_on_a_still_desktop_is_not_an_inset():
    frames, _ = _pip(4, (20, 120, 30, 130))
    frames[:, :20] = frames[0, :20]  # the surroundings stand still
    frames[:, 120:] = frames[0, 120:]
    frames[:, :, :30] = frames[0, :, :30]
    frames[:, :, 130:] = frames[0, :, 130:]
    assert inset_box(frames) is None


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
