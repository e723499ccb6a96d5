"""``probe(path)``: what a video file is, read from its headers and its first frame."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import asdict, dataclass
from fractions import Fraction

import numpy as np

from astradup.errors import (
    CorruptMediaError,
    DecodeError,
    FrameTooLargeError,
    MediaError,
    NoVideoStreamError,
    UnrecognisedFormatError,
)
from astradup.media.files import check_file

log = logging.getLogger(__name__)

DEFAULT_MAX_PIXELS = 7680 * 4320


@dataclass(frozen=True)
class MediaInfo:
    """Facts about one file. Sizes are after rotation; times in seconds; rates in Hz."""

    path: str
    duration: float
    avg_fps: float
    real_fps: float
    variable_fps: bool
    width: int
    height: int
    rotation: int
    display_aspect: float
    video_codec: str
    audio_codec: str | None
    has_audio: bool
    sample_rate: int | None
    channels: int | None
    bit_rate: int | None
    file_size: int
    container: str
    frame_count: int | None

    def to_dict(self) -> dict:
        return asdict(self)


_LOCAL = threading.local()


def one_decoder_thread() -> None:
    """Make FFmpeg's video decoders in the calling thread use one thread each: for threads that
    each decode their own files (a match verifying chunks on every core), as Dask workers get
    through ``OMP_NUM_THREADS``."""
    _LOCAL.threads = 1


def decoder_threads() -> int:
    """Threads for FFmpeg's video decoder: 1 in a thread that asked for it
    (:func:`one_decoder_thread`), else ``OMP_NUM_THREADS`` when set (Dask workers set 1: one
    worker per core, so decoder threads would only contend), else 0 (FFmpeg's choice, one per
    core). Threading changes only the speed: H.264 and the other codecs decode bit-exactly with
    any thread count."""
    local = getattr(_LOCAL, "threads", None)
    if local is not None:
        return int(local)
    try:
        return max(0, int(os.environ.get("OMP_NUM_THREADS", "0")))
    except ValueError:
        return 0


def video_frames(container, stream):
    """``container.decode(stream)``, less the empty packets inside a stream: Ogg Theora marks a
    repeated frame with one, and FFmpeg's ``avcodec_send_packet`` refuses it (EINVAL), which ended
    such a file's decoding at its first frame (GNOME's help screencasts, Wikimedia clips); the
    ``ffmpeg`` command line skips them too. The demuxer's last empty packet (no timestamp) still
    flushes the decoder."""
    for packet in container.demux(stream):
        if packet.size == 0 and packet.pts is not None:
            continue
        yield from packet.decode()


def set_threads(vs) -> None:
    """Frame-and-slice threading (``AUTO``) with :func:`decoder_threads` threads."""
    vs.thread_type = "AUTO"
    n = decoder_threads()
    if n:
        vs.thread_count = n


def _open(path: str):
    import av

    try:
        return av.open(path, metadata_errors="ignore")
    except av.error.InvalidDataError as exc:
        if _looks_like_container(path):
            raise CorruptMediaError(path, f"damaged or truncated container ({exc.strerror or exc})") from exc
        raise UnrecognisedFormatError(path, "not a media file: no demuxer recognises its contents") from exc
    except av.error.FFmpegError as exc:
        raise CorruptMediaError(path, f"cannot open container ({exc})") from exc


def _looks_like_container(path: str) -> bool:
    """True when the first bytes carry a known container signature (so the file is damaged)."""
    with open(path, "rb") as fh:
        head = fh.read(64)
    return (
        head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip")
        or head[:4] in (b"\x1a\x45\xdf\xa3", b"RIFF", b"OggS", b"FLV\x01")
        or head[:3] == b"\x00\x00\x01"
        or head[:1] == b"\x47"
    )


def _irregular_timing(container, vs, max_packets: int = 600) -> bool:
    """True when the first packets' frame intervals vary (variable frame rate), whatever the
    container claims as its average rate."""
    try:
        container.seek(0, stream=vs)
        pts = []
        for pkt in container.demux(vs):
            if pkt.pts is not None:
                pts.append(pkt.pts)
            if len(pts) >= max_packets:
                break
    except Exception:  # noqa: BLE001 - a stream that cannot be re-read keeps the header's answer
        return False
    if len(pts) < 8:
        return False
    d = np.diff(np.unique(np.asarray(pts, dtype=np.int64)))
    d = d[d > 0]
    if len(d) < 4:
        return False
    lo, hi = np.percentile(d, [5, 95])
    return bool(hi > 1.5 * lo)


def probe(path: str | os.PathLike[str], max_pixels: int = DEFAULT_MAX_PIXELS) -> MediaInfo:
    """Read a file's facts; raise a :class:`MediaError` subclass naming the file and the problem.

    Decodes the first video frame, so a file that opens but cannot be decoded is caught here.
    """
    p = os.fspath(path)
    st = check_file(p)
    container = _open(p)
    try:
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams})
            what = "audio only" if "audio" in kinds else ("no streams" if not kinds else "/".join(kinds))
            raise NoVideoStreamError(p, f"no video stream ({what})")
        vs = container.streams.video[0]
        cc = vs.codec_context
        width, height = int(cc.width or 0), int(cc.height or 0)
        if width <= 0 or height <= 0:
            raise CorruptMediaError(p, "video stream has no frame size (damaged header)")
        if width * height > max_pixels:
            raise FrameTooLargeError(
                p, f"frame size {width}x{height} is over the limit of {max_pixels} pixels"
            )
        avg = float(vs.average_rate) if vs.average_rate else 0.0
        real = float(vs.base_rate or vs.guessed_rate or 0) if (vs.base_rate or vs.guessed_rate) else 0.0
        duration = 0.0
        if vs.duration is not None and vs.time_base is not None:
            duration = float(vs.duration * vs.time_base)
        if duration <= 0 and container.duration:
            duration = container.duration / 1_000_000
        rotation = 0
        try:
            set_threads(vs)
            first = next(video_frames(container, vs))
            rotation = int(round(getattr(first, "rotation", 0) or 0)) % 360
        except StopIteration as exc:
            raise DecodeError(p, "video stream holds no decodable frame") from exc
        except MediaError:
            raise
        except Exception as exc:  # noqa: BLE001 - av raises many kinds; all mean "cannot decode"
            raise DecodeError(p, f"cannot decode the first video frame ({exc})") from exc
        if rotation in (90, 270):
            width, height = height, width
        sar = cc.sample_aspect_ratio or Fraction(1, 1)
        dar = float(width * sar / height) if rotation not in (90, 270) else float(width / (height * sar))
        audio = container.streams.audio[0] if container.streams.audio else None
        frames = int(vs.frames) if vs.frames else None
        variable = bool(avg and real and abs(avg - real) / max(real, 1e-9) > 0.02) or _irregular_timing(container, vs)
        return MediaInfo(
            path=p,
            duration=round(duration, 6),
            avg_fps=round(avg, 6),
            real_fps=round(real, 6),
            variable_fps=variable,
            width=width,
            height=height,
            rotation=rotation,
            display_aspect=round(dar, 6),
            video_codec=cc.name,
            audio_codec=audio.codec_context.name if audio else None,
            has_audio=audio is not None,
            sample_rate=int(audio.codec_context.sample_rate) if audio else None,
            channels=int(audio.codec_context.channels) if audio else None,
            bit_rate=int(container.bit_rate) if container.bit_rate else None,
            file_size=st.st_size,
            container=container.format.name,
            frame_count=frames,
        )
    finally:
        container.close()
