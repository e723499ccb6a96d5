"""Running the ffmpeg command-line tool for the generator.

The binary is, in order: ``$ASTRADUP_FFMPEG``, the one imageio-ffmpeg ships (a pinned static build
with libx264, libvpx, drawtext and the lavfi sources, so corpora are the same on every host), then
``ffmpeg`` on ``PATH``.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

from astradup.errors import ConfigError, MediaError

# Flags that keep output bytes a function of the inputs only: no encoder version strings, no
# creation times, one encoder thread (x264 and libvpx can differ with thread counts).
# fmt: off
BITEXACT = [
    "-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact", "-map_metadata", "-1",
    "-map_chapters", "-1",
]
# fmt: on


class FFmpegError(MediaError):
    """ffmpeg failed while writing ``path``; the message carries the tail of its stderr."""


@functools.lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary used for generation."""
    env = os.environ.get("ASTRADUP_FFMPEG")
    if env:
        if not (os.path.isfile(env) and os.access(env, os.X_OK)):
            raise ConfigError(f"ASTRADUP_FFMPEG={env!r} is not an executable file")
        return env
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # noqa: BLE001 - missing package or missing binary: try PATH next
        found = shutil.which("ffmpeg")
        if found:
            return found
    raise ConfigError(
        "no ffmpeg binary found: install imageio-ffmpeg or put ffmpeg on PATH (or set ASTRADUP_FFMPEG)"
    )


@functools.lru_cache(maxsize=1)
def ffmpeg_version() -> str:
    out = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-version"], capture_output=True, text=True, check=False
    )
    return (out.stdout.splitlines() or ["unknown"])[0]


def run_ffmpeg(args: list[str], out: Path, tail_lines: int = 12) -> Path:
    """Run ``ffmpeg [args] out``; write to a hidden temporary name, then rename into place.

    Raises:
        FFmpegError: ffmpeg exited non-zero or wrote nothing; names ``out`` and quotes the
            last ``tail_lines`` lines of ffmpeg's stderr.
    """
    tmp = out.with_name(f".{out.stem}.partial{out.suffix}")
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args, str(tmp)]
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", check=False)
    if proc.returncode != 0 or not tmp.is_file() or tmp.stat().st_size == 0:
        tmp.unlink(missing_ok=True)
        tail = "\n".join(proc.stderr.strip().splitlines()[-tail_lines:]) or "(no output)"
        raise FFmpegError(out, f"ffmpeg failed (exit {proc.returncode}): {tail}")
    os.replace(tmp, out)
    return out
