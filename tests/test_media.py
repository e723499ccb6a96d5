"""The media layer: probe, sampling backends, audio, and the bad-input zoo."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from astradup.errors import (
    CorruptMediaError,
    EmptyFileError,
    FrameTooLargeError,
    MediaError,
    MissingFileError,
    NoAudioStreamError,
    NotAFileError,
    NoVideoStreamError,
    PermissionDeniedError,
    SymlinkLoopError,
    UnrecognisedFormatError,
)
from astradup.media import load_audio, probe, sample_frames
from tests.conftest import ffmpeg, make_video, transcode


def test_probe_fields(media_dir):
    info = probe(media_dir / "src.mp4")
    assert info.width == 96 and info.height == 64
    assert info.duration == pytest.approx(6.0, abs=0.1)
    assert info.avg_fps == pytest.approx(12.0)
    assert info.video_codec == "h264" and info.audio_codec == "aac" and info.has_audio
    assert info.sample_rate == 22050 and info.channels == 1
    assert info.file_size == (media_dir / "src.mp4").stat().st_size
    assert not info.variable_fps and info.rotation == 0
    assert info.display_aspect == pytest.approx(1.5)


@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_sampling_rate_and_size(media_dir, backend):
    s = sample_frames(media_dir / "src.mp4", 6.0, fps=1.0, size=32, backend=backend)
    assert s.frames.shape == (6, 32, 32, 3) and s.frames.dtype == np.uint8
    assert np.all(np.diff(s.timestamps) > 0.5) and s.timestamps[0] < 1.0
    assert s.backend == backend


def test_backends_agree(media_dir):
    a = sample_frames(media_dir / "src.mp4", 6.0, size=32, backend="pyav")
    b = sample_frames(media_dir / "src.mp4", 6.0, size=32, backend="decord")
    assert np.abs(a.timestamps - b.timestamps).max() < 0.2
    diff = np.abs(a.frames.astype(int) - b.frames.astype(int)).mean()
    assert diff < 20


def test_unknown_decoder_lists_valid_names(media_dir):
    from astradup.errors import UnknownBackendError

    with pytest.raises(UnknownBackendError, match="decord"):
        sample_frames(media_dir / "src.mp4", 6.0, backend="nope")


def test_decord_failure_falls_back_to_pyav_with_a_log(tmp_path, caplog):
    # decord cannot open AV1; the fallback must be logged, never silent
    src = make_video(tmp_path / "a.mp4", seconds=2, audio=False)
    av1 = transcode(src, tmp_path / "a.mkv", ["-c:v", "libaom-av1", "-cpu-used", "8", "-b:v", "100k"])
    with caplog.at_level("WARNING"):
        s = sample_frames(av1, 2.0, size=32, backend="decord")
    assert len(s) == 2 and s.backend == "pyav"
    assert any("falling back to pyav" in r.message and "a.mkv" in r.message for r in caplog.records)


def test_audio_mono_float32(media_dir):
    a = load_audio(media_dir / "src.mp4", rate=8000)
    assert a.dtype == np.float32 and a.ndim == 1
    assert len(a) == pytest.approx(6 * 8000, rel=0.05)
    assert 0.1 < np.abs(a).max() <= 1.0


def test_rotation_metadata_is_applied(tmp_path):
    src = make_video(tmp_path / "s.mp4", "testsrc2", seconds=2, w=96, h=64, audio=False)
    rot = tmp_path / "r.mp4"
    subprocess.run([ffmpeg(), "-v", "error", "-y", "-display_rotation", "90", "-i", str(src), "-c", "copy", str(rot)], check=True)
    phys = transcode(src, tmp_path / "p.mp4", ["-vf", "transpose=2", "-c:v", "libx264", "-preset", "ultrafast"])
    info = probe(rot)
    assert (info.width, info.height, info.rotation) == (64, 96, 90)
    a = sample_frames(rot, 2.0, size=48, rotation=info.rotation)
    b = sample_frames(phys, 2.0, size=48)
    unrot = sample_frames(rot, 2.0, size=48)
    err_rot = np.abs(a.frames.astype(int) - b.frames.astype(int)).mean()
    err_raw = np.abs(unrot.frames.astype(int) - b.frames.astype(int)).mean()
    assert err_rot < 12 and err_rot < err_raw / 2


def test_variable_frame_rate(tmp_path):
    src = make_video(tmp_path / "c.mp4", "testsrc2", seconds=4, r=25, audio=False)
    vfr = transcode(src, tmp_path / "vfr.mkv", [
        "-filter_complex",
        "[0:v]trim=0:2,setpts=PTS-STARTPTS[a];[0:v]trim=2:4,setpts=PTS-STARTPTS,fps=5[b];[a][b]concat=n=2:v=1[v]",
        "-map", "[v]", "-fps_mode", "vfr", "-c:v", "libx264", "-preset", "ultrafast"])
    info = probe(vfr)
    assert info.variable_fps, info
    s = sample_frames(vfr, info.duration, fps=1.0, size=16)
    assert abs(len(s) - round(info.duration)) <= 1
    assert np.all(np.diff(s.timestamps) > 0.4)


# -- the bad-input zoo ------------------------------------------------------------------------

def _truncated(tmp_path: Path) -> Path:
    full = make_video(tmp_path / "full.mp4", seconds=3)
    data = full.read_bytes()
    p = tmp_path / "truncated.mp4"
    p.write_bytes(data[: len(data) // 2])
    return p


def _corrupt_header(tmp_path: Path) -> Path:
    full = make_video(tmp_path / "full2.mp4", seconds=2, extra=["-movflags", "+faststart"])
    data = bytearray(full.read_bytes())
    data[8:400] = os.urandom(392)
    p = tmp_path / "corrupt.mp4"
    p.write_bytes(bytes(data))
    return p


def _audio_only(tmp_path: Path) -> Path:
    p = tmp_path / "audio_only.mp4"
    subprocess.run([ffmpeg(), "-v", "error", "-y", "-f", "lavfi", "-i", "sine=d=2", "-c:a", "aac", str(p)], check=True)
    return p


def _huge(tmp_path: Path) -> Path:
    p = tmp_path / "huge.mkv"
    subprocess.run([ffmpeg(), "-v", "error", "-y", "-f", "lavfi", "-i", "color=s=8000x8000:d=0.04:r=25",
                    "-frames:v", "1", "-c:v", "mjpeg", "-q:v", "31", str(p)], check=True)
    return p


def _write(p: Path, data: bytes) -> Path:
    p.write_bytes(data)
    return p


def _loop(tmp_path: Path) -> Path:
    p = tmp_path / "loop.mp4"
    os.symlink(p.name, p)
    return p


ZOO = {
    "zero_byte": (lambda t: _write(t / "empty.mp4", b""), EmptyFileError, "empty"),
    "text_named_mp4": (lambda t: _write(t / "notes.mp4", b"hello, I am not a video\n" * 50),
                       UnrecognisedFormatError, "not a media file"),
    "truncated_mp4": (_truncated, CorruptMediaError, "truncated|damaged|cannot"),
    "corrupt_header": (_corrupt_header, (CorruptMediaError, UnrecognisedFormatError, NoVideoStreamError), ""),
    "audio_only": (_audio_only, NoVideoStreamError, "audio only"),
    "huge_frame": (_huge, FrameTooLargeError, "8000x8000"),
    "symlink_loop": (_loop, SymlinkLoopError, "loop"),
    "missing": (lambda t: t / "missing.mp4", MissingFileError, "does not exist"),
    "directory": (lambda t: (t / "folder.mp4").mkdir() or t / "folder.mp4", NotAFileError, "directory"),
    "dangling_link": (lambda t: os.symlink("nowhere.mp4", t / "dangling.mp4") or t / "dangling.mp4", MissingFileError, "dangling"),
}


@pytest.mark.parametrize("case", sorted(ZOO))
def test_bad_input_gives_media_error_naming_file(tmp_path, case):
    make, exc_type, pattern = ZOO[case]
    path = make(tmp_path)
    before = {p: p.lstat().st_mtime_ns for p in tmp_path.iterdir()}
    with pytest.raises(exc_type) as info:
        probe(path)
    assert isinstance(info.value, MediaError)
    assert str(path) in str(info.value)
    if pattern:
        import re

        assert re.search(pattern, str(info.value), re.I), str(info.value)
    after = {p: p.lstat().st_mtime_ns for p in tmp_path.iterdir()}
    assert before == after  # nothing written, moved or deleted


def test_video_without_audio_is_fine_but_audio_is_missing(tmp_path):
    p = make_video(tmp_path / "silent_film.mp4", seconds=2, audio=False)
    info = probe(p)
    assert not info.has_audio and info.audio_codec is None
    with pytest.raises(NoAudioStreamError, match="silent_film.mp4: no audio stream"):
        load_audio(p)


@pytest.mark.parametrize("name", ["vidéo d'été 東京.mp4", "<script>alert(1)<script>.mp4", "with  spaces .mp4"])
def test_odd_names_work(tmp_path, name):
    p = make_video(tmp_path / "x.mp4", seconds=2)
    q = tmp_path / name
    p.rename(q)
    assert probe(q).duration == pytest.approx(2.0, abs=0.1)
    assert len(sample_frames(q, 2.0, size=16)) == 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs POSIX fork and users")
def test_unreadable_file():
    """As root every file is readable, so a forked child drops to user 'nobody' first."""
    d = Path("/tmp") / f"astradup-perm-{os.getpid()}"
    d.mkdir(mode=0o755, exist_ok=True)
    try:
        p = make_video(d / "locked.mp4", seconds=1, audio=False)
        p.chmod(0o000)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child
            os.close(r)
            msg = b"no error"
            try:
                if os.geteuid() == 0:
                    os.setgid(65534)
                    os.setuid(65534)
                probe(p)
            except PermissionDeniedError as exc:
                msg = f"OK {exc}".encode()
            except BaseException as exc:  # noqa: BLE001
                msg = f"{type(exc).__name__} {exc}".encode()
            os.write(w, msg)
            os._exit(0)
        os.close(w)
        out = os.read(r, 4096).decode()
        os.waitpid(pid, 0)
        assert out.startswith("OK"), out
        assert "permission denied" in out and "locked.mp4" in out
    finally:
        for f in d.iterdir():
            f.chmod(0o644)
            f.unlink()
        d.rmdir()


def test_thumbnail_at_time(media_dir):
    from astradup.media import thumbnail

    img = thumbnail(media_dir / "src.mp4", 3.0, size=48)
    assert img.shape == (32, 48, 3) and img.dtype == np.uint8  # 96x64 source, aspect kept
    early, late = thumbnail(media_dir / "src.mp4", 0.5, size=48), thumbnail(media_dir / "src.mp4", 5.5, size=48)
    assert np.abs(early.astype(int) - late.astype(int)).mean() > 3  # the picture changes over time
    with pytest.raises(MissingFileError):
        thumbnail(media_dir / "nope.mp4", 1.0)


def test_sample_keyframes_takes_one_frame_per_gop_or_declines(tmp_path):
    from astradup.media.decode import sample_keyframes

    long = make_video(tmp_path / "long.mp4", "mandelbrot", seconds=10, seed=3)  # GOP 24 at 12 fps: 2 s
    s = sample_keyframes(long, 10.0, size=32)
    assert s is not None and s.backend == "pyav-keyframes"
    np.testing.assert_allclose(s.timestamps, [0, 2, 4, 6, 8], atol=0.1)
    assert s.frames.shape == (5, 32, 32, 3)
    # the keyframe at 2 s is the picture a full decode shows at 2 s
    full = sample_frames(long, 10.0, fps=12, size=32)
    at = int(np.argmin(np.abs(full.timestamps - s.timestamps[1])))
    assert abs(full.timestamps[at] - s.timestamps[1]) < 1e-6
    assert np.abs(full.frames[at].astype(int) - s.frames[1].astype(int)).mean() < 1
    assert np.abs(s.frames[4].astype(int) - s.frames[0].astype(int)).mean() > 5  # frames move on
    assert sample_keyframes(long, 10.0, size=32, max_frames=3).frames.shape[0] == 3
    short = make_video(tmp_path / "short.mp4", "mandelbrot", seconds=4, seed=3)  # 2 keyframes
    assert sample_keyframes(short, 4.0, size=32) is None


def test_extract_with_keyframes_only_falls_back_when_too_sparse(tmp_path):
    from astradup.config import AstradupConfig
    from astradup.execution import extract_video

    cfg = AstradupConfig().replace(**{"sampling.keyframes_only": True, "features.embedding": ""})
    long = extract_video(str(make_video(tmp_path / "long.mp4", seconds=10, seed=4, audio=False)), cfg)
    assert long.decoder == "pyav-keyframes" and long.n_frames == 5
    short = extract_video(str(make_video(tmp_path / "short.mp4", seconds=4, seed=4, audio=False)), cfg)
    assert short.decoder == "pyav" and short.n_frames == 4 * cfg.sampling.rate(4.0)  # the fallback samples as indexing does


def test_empty_packets_inside_a_stream_are_skipped_not_fatal(tmp_path):
    """Ogg Theora marks a repeated frame with an empty packet, which FFmpeg's send_packet refuses
    (EINVAL): decoding used to stop at the first frame (GNOME help screencasts could not be
    indexed). video_frames skips such packets and still flushes the decoder at the end; on a file
    without them it yields what container.decode does."""
    import av

    from astradup.media.probe import video_frames

    src = make_video(tmp_path / "t.ogv", "testsrc2", seconds=2, audio=False, extra=["-c:v", "libtheora", "-q:v", "5"])
    with av.open(str(src)) as c:
        plain = [f.pts for f in c.decode(c.streams.video[0])]
    with av.open(str(src)) as c:
        assert [f.pts for f in video_frames(c, c.streams.video[0])] == plain and len(plain) == 24

    class Packet:  # a stand-in for the demuxer's packets: real ones cannot be made empty on disk here
        def __init__(self, pts, size):
            self.pts, self.size = pts, size

        def decode(self):
            if self.size == 0 and self.pts is not None:
                raise av.error.InvalidDataError(22, "Invalid argument")
            return [f"frame{self.pts}"] if self.pts is not None else ["flushed"]

    class Container:
        def demux(self, stream):
            return iter([Packet(0, 10), Packet(1, 0), Packet(2, 10), Packet(None, 0)])

    assert list(video_frames(Container(), None)) == ["frame0", "frame2", "flushed"]
