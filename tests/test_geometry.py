"""Geometric verification (astradup.scoring.geometry) and the frame reader it uses (frames_at)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from astradup.config import AstradupConfig
from astradup.media.decode import frames_at, sample_frames, thumbnail
from astradup.scoring.geometry import (
    GEO_FEATURES,
    KeypointCache,
    check_frames,
    fit,
    keypoints,
    pair_geometry,
    probe_cells,
    transform_params,
)
from astradup.scoring.learned import FEATURES, INCREASING
from astradup.scoring.pair import needs_geometry
from tests.conftest import make_video, transcode


def texture(seed: int, h: int = 240, w: int = 320) -> np.ndarray:
    """A seeded grey picture with corners at many scales (blocks of random grey levels)."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w), np.float64)
    for cell in (40, 20, 10):
        small = rng.uniform(0, 255, (h // cell + 1, w // cell + 1))
        img += np.kron(small, np.ones((cell, cell)))[:h, :w]
    return np.clip(img / 3, 0, 255).astype(np.uint8)


def scaled_crop(img: np.ndarray, x0: int, y0: int, cw: int, ch: int, out_w: int) -> np.ndarray:
    import cv2

    out_h = int(round(out_w * ch / cw))
    return cv2.resize(img[y0:y0 + ch, x0:x0 + cw], (out_w, out_h), interpolation=cv2.INTER_AREA)


def kp_pair(g: np.ndarray):
    return keypoints(g), keypoints(np.ascontiguousarray(g[:, ::-1]))


def test_a_crop_fits_its_known_scale_and_unrelated_pictures_do_not():
    src = texture(1)
    crop = scaled_crop(src, 40, 30, 240, 180, 320)  # 240 px wide region shown 320 wide: scale 4/3
    n, M = fit(keypoints(src), keypoints(crop))
    assert n >= 40 and M is not None
    log_s = transform_params(M, False)[0]
    assert math.exp(log_s) == pytest.approx(320 / 240, rel=0.05)
    # the shift maps the crop's origin: x' = s * (x - 40) -> tx = -40 * s (in frame widths of 320)
    assert transform_params(M, False)[1] == pytest.approx(-40 * 320 / 240 / 320, abs=0.02)
    n_other, _ = fit(keypoints(src), keypoints(texture(2)))
    assert n_other < 10


def test_mirror_images_are_matched_through_the_mirrored_keypoints():
    src = texture(3)
    flipped = np.ascontiguousarray(src[:, ::-1])
    direct = check_frames([(kp_pair(src), kp_pair(src))])
    mirror = check_frames([(kp_pair(src), kp_pair(flipped))])
    assert mirror["geo_inliers"] >= 40
    assert mirror["geo_inliers"] == pytest.approx(direct["geo_inliers"], rel=0.25)


def test_a_steady_framing_has_low_spread_and_a_moving_one_high():
    frames = [texture(10 + k) for k in range(3)]
    steady = [(kp_pair(f), kp_pair(scaled_crop(f, 40, 30, 240, 180, 320))) for f in frames]
    moving = [(kp_pair(f), kp_pair(scaled_crop(f, x, 20, cw, int(cw * 0.75), 320)))
              for f, x, cw in zip(frames, (0, 60, 100), (300, 220, 180))]
    s, m = check_frames(steady), check_frames(moving)
    assert s["geo_inliers"] >= 30 and m["geo_inliers"] >= 30
    assert s["geo_spread"] < 0.02
    assert m["geo_spread"] > 0.1


def test_flat_frames_give_no_evidence_rather_than_evidence_against():
    flat = np.full((240, 320), 128, np.uint8)
    out = check_frames([(kp_pair(flat), kp_pair(texture(4)))])
    assert all(math.isnan(out[k]) for k in GEO_FEATURES)


def test_the_same_pair_gives_the_same_answer_in_any_order():
    a, b = texture(5), scaled_crop(texture(5), 10, 10, 280, 210, 320)
    noise = np.clip(b.astype(int) + np.random.default_rng(0).integers(-40, 40, b.shape), 0, 255).astype(np.uint8)
    first = fit(keypoints(a), keypoints(noise))[0]
    for s in range(5):  # other fits in between move OpenCV's random state
        fit(keypoints(texture(20 + s)), keypoints(texture(30 + s)))
    assert fit(keypoints(a), keypoints(noise))[0] == first


def test_probe_cells_spread_along_the_path_and_prefer_informative_cells():
    path = np.stack([np.arange(10), np.arange(10) + 2], axis=1)
    cells = probe_cells(path, n=3)
    assert len(cells) == 3 and cells[0, 0] < cells[1, 0] < cells[2, 0]
    assert 0 < cells[0, 0] and cells[2, 0] < 9  # spread inside the path, not at its two ends
    informative = np.arange(10) >= 5
    assert (probe_cells(path, informative, n=3)[:, 0] >= 5).all()
    assert len(probe_cells(path[:2], n=3)) == 2
    assert probe_cells(path[:0], n=3).shape == (0, 2)


def test_frames_at_gives_the_frames_the_sampler_took(tmp_path):
    src = make_video(tmp_path / "v.mp4", "testsrc2", seconds=5, w=160, h=120, r=10, audio=False)
    ts = sample_frames(src, 5.0, fps=2.0).timestamps
    got = frames_at(src, ts, width=160, gray=False)
    assert sorted(got) == sorted(float(t) for t in ts)
    for t in ts:
        assert np.array_equal(got[float(t)], thumbnail(src, float(t), size=160))
    grey = frames_at(src, [ts[3], ts[0], 99.0], width=320)
    assert grey[float(ts[0])].shape == (240, 320)
    assert np.array_equal(grey[99.0], frames_at(src, [4.95], width=320)[4.95])  # past the end: the last frame


def test_pair_geometry_of_real_files_and_of_a_missing_one(tmp_path):
    src = make_video(tmp_path / "src.mp4", "testsrc2", seconds=4, w=320, h=240, r=10, audio=False)
    crop = transcode(src, tmp_path / "crop.mp4", ["-vf", "crop=240:180:40:30,scale=320:240", "-c:v", "libx264", "-preset", "ultrafast"])
    other = make_video(tmp_path / "other.mp4", "mandelbrot", seconds=4, w=320, h=240, r=10, audio=False)
    times = [(0.5, 0.5), (1.5, 1.5), (2.5, 2.5)]
    cache = KeypointCache()
    same = pair_geometry(str(src), str(crop), times, cache=cache)
    assert same["geo_inliers"] >= 20 and same["geo_spread"] < 0.05
    diff = pair_geometry(str(src), str(other), times, cache=cache)
    assert math.isnan(diff["geo_inliers"]) or diff["geo_inliers"] < same["geo_inliers"] / 2
    gone = pair_geometry(str(src), str(tmp_path / "missing.mp4"), times, cache=cache)
    assert all(math.isnan(gone[k]) for k in GEO_FEATURES)


def test_only_pairs_the_hashes_do_not_confirm_are_checked():
    cfg = AstradupConfig()
    ev = {"aligned_frames": 5, "hash_hit": 0.1, "path_sim": 0.9}
    assert needs_geometry(ev, cfg)
    assert not needs_geometry({**ev, "hash_hit": cfg.match.geometric_hash_hit}, cfg)
    assert not needs_geometry({**ev, "aligned_frames": 0}, cfg)
    assert not needs_geometry({**ev, "path_sim": cfg.match.min_candidate_sim - 0.01}, cfg)
    assert not needs_geometry(ev, cfg.replace(**{"match.geometric": False}))


def test_the_learned_scorer_reads_the_geometric_evidence():
    assert set(GEO_FEATURES) <= set(FEATURES)
    assert "geo_inliers" in INCREASING and "geo_spread" not in INCREASING


def test_scoring_a_crop_checks_it_and_a_moved_file_leaves_the_evidence_unknown(tmp_path, caplog):
    """End to end through score_pair: a cropped copy (hashes at chance) gets geometric evidence
    from its media; once a file has moved away the same pair is still scored, with NaN evidence."""
    import shutil

    from astradup.execution import extract_video
    from astradup.scoring.pair import score_pair

    src = make_video(tmp_path / "src.mp4", "testsrc2", seconds=6, w=320, h=240, r=10, audio=False)
    crop = transcode(src, tmp_path / "crop.mp4", ["-vf", "crop=200:150:60:45,scale=320:240", "-c:v", "libx264", "-preset", "ultrafast"])
    cfg = AstradupConfig().replace(**{"features.audio": False})
    fa, fb = extract_video(str(src), cfg), extract_video(str(crop), cfg)
    ps = score_pair(fa, fb, cfg)
    ev = ps.explanation["evidence"]
    assert "_probes" not in ps.explanation
    assert ev["hash_hit"] < cfg.match.geometric_hash_hit
    assert ev["geo_inliers"] >= 20
    off = score_pair(fa, fb, cfg.replace(**{"match.geometric": False})).explanation["evidence"]
    assert off["geo_inliers"] is None and off["path_sim"] == ev["path_sim"]
    from astradup.scoring import geometry

    geometry._CACHE = None  # a fresh process: nothing cached
    shutil.move(str(crop), str(tmp_path / "elsewhere.mp4"))
    with caplog.at_level("WARNING", logger="astradup.scoring.geometry"):
        gone = score_pair(fa, fb, cfg).explanation["evidence"]
        score_pair(fa, fb, cfg)  # warned once per file, not once per pair
    assert gone["geo_inliers"] is None and gone["path_sim"] == ev["path_sim"]
    warned = [r.getMessage() for r in caplog.records if "geometric check skipped" in r.getMessage()]
    assert len(warned) == 1 and str(crop) in warned[0]


def test_a_file_changed_since_it_was_cached_is_read_again(tmp_path):
    import os

    a = make_video(tmp_path / "a.mp4", "testsrc2", seconds=3, w=320, h=240, r=10, audio=False)
    cache = KeypointCache()
    first = cache.get(str(a), [0.5])[0.5].grey.copy()
    make_video(tmp_path / "b.mp4", "mandelbrot", seconds=3, w=320, h=240, r=10, audio=False)
    os.replace(tmp_path / "b.mp4", a)
    again = cache.get(str(a), [0.5])[0.5].grey
    assert not np.array_equal(first, again)


def test_a_stored_content_box_spares_decoding_the_whole_grid(tmp_path, monkeypatch):
    """With the content box indexing stored, the check decodes only the frames asked for (a video
    short enough is decoded whole once instead, for the pairs after) and cuts them as the box it
    would otherwise decide again over every sampled frame."""
    from astradup.execution import extract_video
    from astradup.scoring import geometry

    src = make_video(tmp_path / "src.mp4", "testsrc2", seconds=4, w=320, h=240, r=10, audio=False)
    boxed = transcode(src, tmp_path / "boxed.mp4", ["-vf", "scale=240:180,pad=320:240:40:30", "-c:v", "libx264",
                                                     "-preset", "ultrafast"])
    vf = extract_video(str(boxed), AstradupConfig().replace(**{"features.audio": False}))
    t, b, l_, r = vf.content_box
    assert all(abs(x - y) <= 0.02 for x, y in zip((t, b, l_, r), (0.125, 0.875, 0.125, 0.875)))
    times = [0.5, 2.5]
    assert float(vf.timestamps[-1]) <= geometry.WHOLE_WITH_BOX_S
    whole, stored, again = KeypointCache(), KeypointCache(), KeypointCache()
    short = whole.get(str(boxed), times, vf.timestamps, box=vf.content_box)
    monkeypatch.setattr(geometry, "WHOLE_WITH_BOX_S", 1.0)  # as for a longer video
    got = stored.get(str(boxed), times, vf.timestamps, box=vf.content_box)
    old = again.get(str(boxed), times, vf.timestamps)
    assert len(stored._frames[str(boxed)]) == len(times) < len(vf.timestamps) <= len(whole._frames[str(boxed)])
    assert len(vf.timestamps) <= len(again._frames[str(boxed)])
    for tt in times:  # the same picture, to the pixel or two the colour and grey decisions differ by at 160 px
        assert np.array_equal(short[tt].grey, got[tt].grey)
        assert got[tt].grey.shape[1] == old[tt].grey.shape[1] == 320
        assert abs(got[tt].grey.shape[0] - old[tt].grey.shape[0]) <= 0.03 * old[tt].grey.shape[0]
    same = pair_geometry(str(src), str(boxed), [(tt, tt) for tt in times], cache=stored, box_b=vf.content_box)
    assert same["geo_inliers"] >= 20 and same["geo_spread"] < 0.05


def test_threads_asking_for_one_file_at_once_decode_it_once(tmp_path, monkeypatch):
    """Threads verifying at once share the cache: one decodes a file, the others get its frames."""
    import threading
    import time

    import astradup.media.decode as decode

    a = make_video(tmp_path / "a.mp4", "testsrc2", seconds=3, w=320, h=240, r=10, audio=False)
    calls = []
    real = decode.frames_at

    def slow(*args, **kwargs):
        calls.append(args[0])
        time.sleep(0.2)
        return real(*args, **kwargs)

    monkeypatch.setattr(decode, "frames_at", slow)
    cache, got = KeypointCache(), []
    threads = [threading.Thread(target=lambda: got.append(cache.get(str(a), [0.5, 1.5]))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [str(a)] and len(got) == 4
    assert all(np.array_equal(g[0.5].grey, got[0][0.5].grey) for g in got)
    assert cache._bytes == sum(f.nbytes for f in cache._frames[str(a)].values())
    assert len(cache._files) == 0  # no lock is kept for a file no thread is loading
