"""Shared fixtures: tiny seeded media made with FFmpeg's lavfi sources (nothing downloaded)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

SOURCES = {
    "mandelbrot": "mandelbrot=s={w}x{h}:r={r}",
    "life": "life=s={w}x{h}:r={r}:mold=10:ratio=0.5:seed={seed}",
    "cellauto": "cellauto=s={w}x{h}:r={r}:rule=110:seed={seed}",
    "testsrc2": "testsrc2=s={w}x{h}:r={r}",
    "smptebars": "smptebars=s={w}x{h}:r={r}",  # a test card: one picture throughout
}


def melody(seed: int, seconds: float) -> str:
    """A seeded sequence of notes (plain sine or noise give degenerate Chromaprint prints)."""
    base = 180 + 40 * (seed % 7)
    return (f"aevalsrc='0.4*sin(2*PI*t*({base}+{base // 2}*floor(mod(t*{3 + seed % 3},{5 + seed % 4}))))"
            f"+0.2*sin(2*PI*t*{base * 3 // 2})':s=22050:d={seconds}")


def ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def make_video(path: Path, kind: str = "mandelbrot", seconds: float = 4.0, w: int = 96, h: int = 64, r: int = 12,
               seed: int = 0, audio: bool = True, vf: str | None = None, extra: list[str] | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [ffmpeg(), "-v", "error", "-y", "-f", "lavfi", "-i", SOURCES[kind].format(w=w, h=h, r=r, seed=seed)]
    if audio:
        cmd += ["-f", "lavfi", "-i", melody(seed, seconds)]
    cmd += ["-t", str(seconds)]
    if vf:
        cmd += ["-vf", vf + ",format=yuv420p"]
    else:
        cmd += ["-vf", "format=yuv420p"]
    cmd += ["-c:v", "libx264", "-preset", "ultrafast", "-g", "24"]
    if audio:
        cmd += ["-c:a", "aac"]
    cmd += (extra or []) + [str(path)]
    subprocess.run(cmd, check=True, capture_output=True)
    return path


def transcode(src: Path, dst: Path, args: list[str]) -> Path:
    subprocess.run([ffmpeg(), "-v", "error", "-y", "-i", str(src), *args, str(dst)], check=True, capture_output=True)
    return dst


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    """A tiny corpus: a source, a re-encode, a mirror image, a clip, and an unrelated video."""
    d = tmp_path_factory.mktemp("media")
    src = make_video(d / "src.mp4", "mandelbrot", seconds=6, seed=1)
    transcode(src, d / "reencode.mkv", ["-c:v", "mpeg4", "-q:v", "5", "-c:a", "libopus"])
    transcode(src, d / "mirror.mp4", ["-vf", "hflip", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "copy"])
    transcode(src, d / "clip.mp4", ["-ss", "1", "-t", "4.5", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"])
    make_video(d / "other.mp4", "life", seconds=6, seed=5)
    return d


@pytest.fixture()
def model_cache(tmp_path, monkeypatch):
    """An empty model cache (``ASTRADUP_CACHE_DIR``) for one test. Other tests share the user's
    cache, as runs do: MobileNetV2 is exported to ONNX there once per machine, not once per test."""
    monkeypatch.setenv("ASTRADUP_CACHE_DIR", str(tmp_path / "model-cache"))
    return tmp_path / "model-cache"


HOSTILE_NAME = "<img src=x onerror=alert(1)>.mp4"


@pytest.fixture(scope="session")
def service_store(tmp_path_factory) -> Path:
    """An indexed and matched store for the service tests: a source, a copy of it under a hostile
    file name (markup), and an unrelated video."""
    from astradup.execution import run_index, run_match

    root = tmp_path_factory.mktemp("service")
    media = root / "media"
    src = make_video(media / "src.mp4", "mandelbrot", seconds=4, seed=1)
    transcode(src, media / HOSTILE_NAME, ["-c:v", "mpeg4", "-q:v", "5", "-c:a", "aac"])
    make_video(media / "other.mp4", "life", seconds=4, seed=5)
    store = root / "lib.duckdb"
    run_index(media, store, eager=True, progress=False)
    run_match(store, min_score=0, progress=False)
    return store
