"""Frame sampling: small RGB frames at a fixed rate, scaled by the decoder, with timestamps.

Backends share one interface and a name registry. Any backend that fails on a stream falls back
to PyAV, and the fallback is logged (never silent).
"""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from astradup.errors import DecodeError, MediaError, UnknownBackendError
from astradup.media.probe import _open, decoder_threads, set_threads, video_frames

log = logging.getLogger(__name__)


@dataclass
class FrameSample:
    """Sampled frames of one video.

    Attributes:
        timestamps: presentation time of each frame (seconds), increasing.
        frames: uint8 array (N, size, size, 3), RGB, rotation applied.
        backend: the decoder that produced them.
    """

    timestamps: np.ndarray
    frames: np.ndarray
    backend: str

    def __len__(self) -> int:
        return len(self.timestamps)


def _targets(duration: float, fps: float, max_frames: int) -> np.ndarray:
    """Sample times (seconds): every 1/fps from half a step in, thinned to ``max_frames``."""
    step = 1.0 / fps
    n = max(1, int(np.floor(max(duration, 0.0) * fps + 1e-9)))
    if n > max_frames:
        step = duration / max_frames
        n = max_frames
    return step / 2 + step * np.arange(n)


class Decoder(ABC):
    """Turns a file into a :class:`FrameSample`. Constructors store parameters only."""

    name = "base"

    def __init__(self, fps: float = 1.0, size: int = 160, max_frames: int = 1800):
        self.fps = fps
        self.size = size
        self.max_frames = max_frames

    @abstractmethod
    def sample(self, path: str, duration: float, rotation: int = 0) -> FrameSample:
        """Decode ``path`` and return frames near each sample time."""


class _Scaler:
    """Frames to small arrays through one reused swscale context: the same pixels as
    ``frame.to_ndarray(width=, height=, format=)`` (which sets up a new context for every frame,
    about twice the cost of the conversion itself at 160 pixels). ``size`` wide, ``height`` high
    (default: square), ``fmt`` "rgb24" or "gray"."""

    def __init__(self, size: int, height: int | None = None, fmt: str = "rgb24"):
        from av.video.reformatter import VideoReformatter

        self.size, self.height, self.fmt = size, height or size, fmt
        self._r = VideoReformatter()

    def __call__(self, frame) -> np.ndarray:
        return self._r.reformat(frame, width=self.size, height=self.height, format=self.fmt).to_ndarray()


def _rotate(frames: np.ndarray, rotation: int) -> np.ndarray:
    k = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(frames, k=k, axes=(1, 2))) if k else frames


class PyAVDecoder(Decoder):
    """PyAV (FFmpeg): decodes in order and lets swscale produce the small frames.

    ``skip_nonref=True`` asks FFmpeg to skip non-reference frames (most B-frames), which are
    never needed at 1 fps sampling; frames are then taken at the nearest decoded time.

    ``segments`` > 1 splits the file at keyframes into that many stretches decoded at once, each
    in its own thread with its own decoder (PyAV releases the GIL while FFmpeg decodes): a single
    query uses every core without the frame threads' hand-offs. A stretch starts at a keyframe, so
    its frames are those a decode from the start gives, and each sample time is served by the
    stretch that holds the frames around it: the result equals ``segments=1`` exactly. A file that
    cannot be split (too few keyframes, a seek that lands off a keyframe, any decoding error) is
    decoded in one pass instead.
    """

    name = "pyav"

    def __init__(self, fps: float = 1.0, size: int = 160, max_frames: int = 1800, skip_nonref: bool = True,
                 segments: int = 1):
        super().__init__(fps, size, max_frames)
        self.skip_nonref = skip_nonref
        self.segments = segments

    def sample(self, path: str, duration: float, rotation: int = 0) -> FrameSample:
        targets = _targets(duration, self.fps, self.max_frames)
        if self.segments > 1 and len(targets) >= 2 * self.segments:
            try:
                got = self._sample_segments(path, targets, duration)
            except Exception as exc:  # noqa: BLE001 - the one-pass decode below reports a bad file
                log.debug("%s: split decoding failed (%s: %s); decoding in one pass", path, type(exc).__name__, exc)
                got = None
            if got is not None:
                return FrameSample(np.asarray(got[0], dtype=np.float64), _rotate(np.stack(got[1]), rotation), self.name)
        container = _open(path)
        try:
            vs = container.streams.video[0]
            set_threads(vs)
            scale = _Scaler(self.size)
            if self.skip_nonref:
                vs.codec_context.skip_frame = "NONREF"
            tb = float(vs.time_base) if vs.time_base else 0.0
            start = float(vs.start_time * vs.time_base) if vs.start_time is not None and vs.time_base else 0.0
            out_t: list[float] = []
            out_f: list[np.ndarray] = []
            ti = 0
            prev = None  # (t, frame) of the last decoded frame before the current target
            try:
                for frame in video_frames(container, vs):
                    if frame.pts is None:
                        continue
                    t = frame.pts * tb - start
                    ti, prev = _take(t, frame, prev, targets, ti, out_t, out_f, scale)
                    if ti >= len(targets):
                        break
            except Exception as exc:  # noqa: BLE001 - corrupt packets mid-stream
                if not out_f:
                    raise DecodeError(path, f"decoding failed before any frame ({exc})") from exc
                log.warning("%s: decoding stopped early at %.1fs (%s); keeping %d frames", path, out_t[-1], exc, len(out_f))
            if ti < len(targets) and prev is not None and (not out_t or prev[0] > out_t[-1]):
                out_t.append(prev[0])  # the stream ended before the last target (duration overstated)
                out_f.append(scale(prev[1]))
            if not out_f:
                raise DecodeError(path, "no video frame could be decoded")
            frames = _rotate(np.stack(out_f), rotation)
            return FrameSample(np.asarray(out_t, dtype=np.float64), frames, self.name)
        finally:
            container.close()

    def _sample_segments(self, path: str, targets: np.ndarray, duration: float) -> tuple[list, list] | None:
        """Frames for ``targets`` decoded in up to ``segments`` stretches at once, or None when
        the file has too few keyframes to split (then the caller decodes in one pass)."""
        from concurrent.futures import ThreadPoolExecutor

        container = _open(path)
        try:
            vs = container.streams.video[0]
            tb = float(vs.time_base) if vs.time_base else 0.0
            if not tb or not duration > 0:
                return None
            first = vs.start_time or 0
            starts: list[int] = []  # pts of the keyframe each later stretch starts at
            for j in range(1, self.segments):
                container.seek(first + int(j * duration / self.segments / tb), stream=vs, backward=True, any_frame=False)
                pkt = next((p for p in container.demux(vs) if p.pts is not None), None)
                if pkt is None or not pkt.is_keyframe:
                    return None
                if pkt.pts > (starts[-1] if starts else first):
                    starts.append(int(pkt.pts))
        finally:
            container.close()
        # stretch j serves the targets after its keyframe and up to the next stretch's keyframe:
        # the frame taken for such a target and the frame before it are both at or after the keyframe
        bounds = [(p - first) * tb for p in starts]
        edges = np.searchsorted(targets, bounds, side="right")
        parts: list[tuple[int | None, np.ndarray]] = [(None, targets[: edges[0]] if len(edges) else targets)]
        parts += [(starts[j], targets[edges[j] : edges[j + 1] if j + 1 < len(edges) else len(targets)])
                  for j in range(len(starts))]
        parts = [(s, t) for s, t in parts if len(t)]
        if len(parts) < 2:
            return None
        threads = max(1, decoder_threads() // len(parts))  # 0 (FFmpeg's choice) -> 1: the stretches are the threads
        with ThreadPoolExecutor(len(parts)) as pool:
            done = list(pool.map(lambda part: self._stretch(path, part[0], part[1], threads, part is parts[-1]), parts))
        out_t: list[float] = []
        out_f: list[np.ndarray] = []
        for ts, fs in done:
            for t, f in zip(ts, fs, strict=True):
                if not out_t or t > out_t[-1]:  # a stretch's first frame may be the previous one's last
                    out_t.append(t)
                    out_f.append(f)
        return out_t, out_f

    def _stretch(self, path: str, key_pts: int | None, targets: np.ndarray, threads: int,
                 last: bool) -> tuple[list[float], list[np.ndarray]]:
        """The frames for ``targets`` decoded from the keyframe at ``key_pts`` (the start when
        None). Raises on anything unexpected; the caller then decodes in one pass."""
        container = _open(path)
        try:
            vs = container.streams.video[0]
            vs.thread_type = "AUTO"
            vs.thread_count = threads
            if self.skip_nonref:
                vs.codec_context.skip_frame = "NONREF"
            tb = float(vs.time_base)
            start = float(vs.start_time * vs.time_base) if vs.start_time is not None else 0.0
            if key_pts is not None:
                container.seek(key_pts, stream=vs, backward=True, any_frame=False)
            scale = _Scaler(self.size)
            out_t: list[float] = []
            out_f: list[np.ndarray] = []
            ti = 0
            prev = None
            for frame in video_frames(container, vs):
                if frame.pts is None:
                    continue
                if key_pts is not None and prev is None and not out_t and not (frame.key_frame and frame.pts <= key_pts):
                    raise DecodeError(path, f"a seek to pts {key_pts} gave a frame at {frame.pts} that is not a keyframe")
                t = frame.pts * tb - start
                ti, prev = _take(t, frame, prev, targets, ti, out_t, out_f, scale)
                if ti >= len(targets):
                    break
            if ti < len(targets):
                if not last:
                    raise DecodeError(path, "a stretch ended before the next keyframe")
                if prev is not None and (not out_t or prev[0] > out_t[-1]):
                    out_t.append(prev[0])  # the stream ended before the last target, as in one pass
                    out_f.append(scale(prev[1]))
            return out_t, out_f
        finally:
            container.close()


def _take(t: float, frame, prev, targets: np.ndarray, ti: int, out_t: list[float], out_f: list[np.ndarray],
          scale: _Scaler) -> tuple[int, tuple | None]:
    """One decoded frame at ``t`` seconds: the targets it reaches take whichever of it and the
    frame before it (``prev``) is nearer; returns the next target's index and the new ``prev``."""
    while ti < len(targets) and t >= targets[ti]:
        use_prev = prev is not None and abs(prev[0] - targets[ti]) < abs(t - targets[ti])
        pt, pf = prev if (use_prev and prev is not None) else (t, frame)
        if not out_t or pt > out_t[-1]:
            out_t.append(pt)
            out_f.append(scale(pf))
        ti += 1
    return ti, (t, frame)


class DecordDecoder(Decoder):
    """decord: random access by frame index with the decoder scaling to ``size``."""

    name = "decord"

    def sample(self, path: str, duration: float, rotation: int = 0) -> FrameSample:
        import decord

        vr = decord.VideoReader(path, width=self.size, height=self.size, num_threads=0)
        n = len(vr)
        if n == 0:
            raise DecodeError(path, "decord found no frames")
        fps = vr.get_avg_fps() or 25.0
        dur = duration if duration > 0 else n / fps
        targets = _targets(dur, self.fps, self.max_frames)
        idx = np.unique(np.clip(np.round(targets * fps).astype(int), 0, n - 1))
        frames = vr.get_batch(list(idx)).asnumpy()
        ts = vr.get_frame_timestamp(idx)[:, 0].astype(np.float64)
        return FrameSample(ts, _rotate(frames, rotation), self.name)


class TorchCodecDecoder(Decoder):
    """torchcodec 0.13 (CPU build, needs FFmpeg 4-7 shared libraries): exact seeks by time."""

    name = "torchcodec"

    def sample(self, path: str, duration: float, rotation: int = 0) -> FrameSample:
        from torchcodec.decoders import VideoDecoder  # type: ignore[import-not-found]

        dec = VideoDecoder(path, seek_mode="approximate")
        dur = duration or float(dec.metadata.duration_seconds or 0)
        targets = _targets(dur, self.fps, self.max_frames)
        batch = dec.get_frames_played_at(seconds=[float(t) for t in targets])
        import torch

        data = torch.nn.functional.interpolate(batch.data.float(), size=(self.size, self.size), mode="area")
        frames = data.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
        return FrameSample(batch.pts_seconds.numpy().astype(np.float64), _rotate(frames, rotation), self.name)


DECODERS: dict[str, type[Decoder]] = {
    "pyav": PyAVDecoder,
    "decord": DecordDecoder,
    "torchcodec": TorchCodecDecoder,
}


def make_decoder(name: str, **params) -> Decoder:
    if name not in DECODERS:
        raise UnknownBackendError(f"decoder {name!r} is unknown; choose one of {sorted(DECODERS)}")
    return DECODERS[name](**params)


def samples_reference_frames(backend: str) -> bool:
    """Whether every frame a sample by ``backend`` (:attr:`FrameSample.backend`) holds is a
    reference frame, so a later decode at its times may skip the others (``skip_nonref``) and
    get the same frames: PyAV's sampler skips non-reference frames, and keyframes are reference
    frames; decord and torchcodec take any frame."""
    return backend in (PyAVDecoder.name, KEYFRAMES_BACKEND)


def sample_frames(
    path: str | os.PathLike[str],
    duration: float,
    fps: float = 1.0,
    size: int = 160,
    backend: str = "pyav",
    max_frames: int = 1800,
    rotation: int = 0,
    segments: int = 1,
) -> FrameSample:
    """Sample frames with ``backend``; on any failure other than a bad file, fall back to PyAV.
    ``segments`` > 1 decodes that many stretches of the file at once with PyAV (same frames)."""
    p = os.fspath(path)
    if backend == "pyav":
        return PyAVDecoder(fps=fps, size=size, max_frames=max_frames, segments=segments).sample(p, duration, rotation)
    dec = make_decoder(backend, fps=fps, size=size, max_frames=max_frames)
    try:
        return dec.sample(p, duration, rotation)
    except MediaError:
        raise
    except Exception as exc:  # noqa: BLE001 - decord/torchcodec raise their own types
        log.warning("%s: %s decoder failed (%s: %s); falling back to pyav", p, backend, type(exc).__name__, exc)
        return PyAVDecoder(fps=fps, size=size, max_frames=max_frames).sample(p, duration, rotation)


KEYFRAMES_BACKEND = "pyav-keyframes"  # FrameSample.backend of :func:`sample_keyframes`
# Keyframe sampling is worth it only when keyframes are frequent enough to stand for the video.
KEYFRAMES_MIN = 4
KEYFRAMES_MAX_GAP = 12.0  # seconds between keyframes, on average


def sample_keyframes(
    path: str | os.PathLike[str],
    duration: float,
    size: int = 160,
    max_frames: int = 1800,
    rotation: int = 0,
) -> FrameSample | None:
    """The video's keyframes (I-frames) only, decoded by PyAV without the frames between them.

    Decoding only keyframes skips the reference chain that 1 fps sampling must decode (for a 60 s
    720p H.264 clip, 0.1-0.2 s instead of 2-4 s), at the price of sparse, irregular sampling: one
    frame per group of pictures. Returns None when that is too sparse to stand for the video
    (fewer than ``KEYFRAMES_MIN`` keyframes, or more than ``KEYFRAMES_MAX_GAP`` seconds apart on
    average); the caller then samples at a fixed rate. More than ``max_frames`` keyframes are
    thinned evenly.
    """
    p = os.fspath(path)
    container = _open(p)
    try:
        vs = container.streams.video[0]
        set_threads(vs)
        vs.codec_context.skip_frame = "NONKEY"
        scale = _Scaler(size)
        tb = float(vs.time_base) if vs.time_base else 0.0
        start = float(vs.start_time * vs.time_base) if vs.start_time is not None and vs.time_base else 0.0
        out_t: list[float] = []
        out_f: list[np.ndarray] = []
        try:
            for frame in video_frames(container, vs):
                if frame.pts is None:
                    continue
                t = frame.pts * tb - start
                if out_t and t <= out_t[-1]:
                    continue
                out_t.append(t)
                out_f.append(scale(frame))
        except Exception as exc:  # noqa: BLE001 - corrupt packets: sample at a fixed rate instead
            log.warning("%s: keyframe decoding stopped (%s); sampling at a fixed rate", p, exc)
            return None
    finally:
        container.close()
    span = max(duration, out_t[-1] if out_t else 0.0)
    if len(out_t) < KEYFRAMES_MIN or span / len(out_t) > KEYFRAMES_MAX_GAP:
        log.info("%s: %d keyframes in %.1f s are too sparse; sampling at a fixed rate", p, len(out_t), span)
        return None
    keep = np.unique(np.linspace(0, len(out_t) - 1, min(len(out_t), max_frames)).round().astype(int))
    frames = _rotate(np.stack([out_f[i] for i in keep]), rotation)
    return FrameSample(np.asarray(out_t, dtype=np.float64)[keep], frames, KEYFRAMES_BACKEND)


def thumbnail(path: str | os.PathLike[str], t: float, size: int = 160) -> np.ndarray:
    """The frame shown at ``t`` seconds as RGB uint8, ``size`` pixels wide (aspect kept, rotation
    applied): for reports and notebooks. Seeks to the keyframe before ``t`` and decodes forward."""
    from astradup.media.probe import probe

    p = os.fspath(path)
    info = probe(p)
    container = _open(p)
    try:
        vs = container.streams.video[0]
        vs.thread_type = "AUTO"
        tb = float(vs.time_base)
        start = float(vs.start_time * vs.time_base) if vs.start_time is not None else 0.0
        container.seek(max(0, int((max(t, 0.0) + start) / tb)), stream=vs, backward=True, any_frame=False)
        w, h = (info.height, info.width) if info.rotation in (90, 270) else (info.width, info.height)
        height = max(2, int(round(size * h / max(w, 1))))
        best = None
        for frame in video_frames(container, vs):
            best = frame
            if frame.pts is not None and frame.pts * tb - start >= t - 1e-3:
                break
        if best is None:
            raise DecodeError(p, f"no frame could be decoded near {t:.2f} s")
        img = best.to_ndarray(width=size, height=height, format="rgb24")
        return _rotate(img[None], info.rotation)[0]
    finally:
        container.close()


SEEK_AHEAD = 2.0  # seconds: a target further ahead than this is reached by seeking, not decoding


def _scaled_size(vs, width: int) -> tuple[int, int]:
    """Width and height (even) of ``vs``'s frames scaled to ``width`` pixels wide, aspect kept."""
    cw, ch = vs.codec_context.width or width, vs.codec_context.height or width
    w = max(2, int(width) // 2 * 2)
    return w, max(2, int(round(w * ch / max(cw, 1))) // 2 * 2)


def _timed_stream(container, width: int, gray: bool, skip_nonref: bool = False) -> tuple:
    """The container's first video stream set up to decode (threads; non-reference frames
    skipped with ``skip_nonref``), its time base and start (seconds), and a scaler to ``width``
    pixels wide (aspect kept), grey or RGB: what :func:`every_frame` and :func:`frames_at` share."""
    vs = container.streams.video[0]
    set_threads(vs)
    if skip_nonref:
        vs.codec_context.skip_frame = "NONREF"
    tb = float(vs.time_base) if vs.time_base else 0.0
    start = float(vs.start_time * vs.time_base) if vs.start_time is not None and vs.time_base else 0.0
    return vs, tb, start, _Scaler(*_scaled_size(vs, width), "gray" if gray else "rgb24")


def every_frame(path: str | os.PathLike[str], width: int = 320, gray: bool = True,
                rotation: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    """Every frame of the file with its time (seconds, as :func:`frames_at` times them), scaled
    to ``width`` pixels wide (aspect kept; ``rotation`` applied), grey or RGB uint8. For short
    files a caller asks about again and again (one decode instead of a seek per question).
    Raises :class:`DecodeError` when nothing can be decoded."""
    p = os.fspath(path)
    container = _open(p)
    times: list[float] = []
    frames: list[np.ndarray] = []
    try:
        vs, tb, start, scale = _timed_stream(container, width, gray)
        try:
            for frame in video_frames(container, vs):
                if frame.pts is None:
                    continue
                times.append(frame.pts * tb - start)
                frames.append(_rotate(scale(frame)[None], rotation)[0])
        except Exception as exc:  # noqa: BLE001 - corrupt packets mid-stream
            if not frames:
                raise DecodeError(p, f"decoding failed before any frame ({exc})") from exc
            log.warning("%s: decoding stopped early at %.1fs (%s)", p, times[-1], exc)
    finally:
        container.close()
    if not frames:
        raise DecodeError(p, "no video frame could be decoded")
    return np.asarray(times, dtype=np.float64), frames


def frames_at(path: str | os.PathLike[str], times: np.ndarray | list[float], width: int = 320,
              gray: bool = True, rotation: int = 0, skip_nonref: bool = False) -> dict[float, np.ndarray]:
    """The frames shown at ``times`` (seconds), scaled to ``width`` pixels wide (aspect kept;
    ``rotation`` applied), grey (H, W) or RGB (H, W, 3) uint8, in one pass: a target
    more than :data:`SEEK_AHEAD` seconds past the last decoded frame is reached by seeking to the
    keyframe before it, a nearer one by decoding forward. The frame taken for a target is the
    first whose time is at or after it (sampled timestamps are frame times, so the same frame
    :class:`PyAVDecoder` sampled). Keys are the requested times; a target past the end of the
    stream gets the last frame. ``skip_nonref`` skips non-reference frames as
    :class:`PyAVDecoder` does by default (the frames it sampled are reference frames; faster, but a
    target between two decoded frames gets the later one). Raises :class:`DecodeError` when
    nothing can be decoded."""
    p = os.fspath(path)
    targets = sorted({float(t) for t in times})
    out: dict[float, np.ndarray] = {}
    if not targets:
        return out
    container = _open(p)
    try:
        vs, tb, start, scale = _timed_stream(container, width, gray, skip_nonref)
        last_t, last = -np.inf, None
        frames = None
        sought = -1  # index of the target last sought to
        ti = 0
        try:
            while ti < len(targets):
                t_goal = targets[ti]
                if frames is None or (sought != ti and t_goal - last_t > SEEK_AHEAD):
                    container.seek(max(0, int((max(t_goal, 0.0) + start) / tb)) if tb else 0, stream=vs,
                                   backward=True, any_frame=False)
                    frames, sought = video_frames(container, vs), ti
                frame = next(frames, None)
                if frame is None:
                    break
                if frame.pts is None:
                    continue
                last_t, last = frame.pts * tb - start, frame
                while ti < len(targets) and last_t >= targets[ti] - 1e-3:
                    out[targets[ti]] = _rotate(scale(frame)[None], rotation)[0]
                    ti += 1
        except Exception as exc:  # noqa: BLE001 - corrupt packets mid-stream
            if last is None:
                raise DecodeError(p, f"decoding failed before any frame ({exc})") from exc
            log.warning("%s: decoding stopped early at %.1fs (%s)", p, last_t, exc)
        if last is None:
            raise DecodeError(p, "no video frame could be decoded")
        for t in targets[ti:]:  # past the end of the stream
            out[t] = _rotate(scale(last)[None], rotation)[0]
        return out
    finally:
        container.close()
