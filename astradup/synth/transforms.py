"""Copy transforms: how a copy of a source is made, as ffmpeg arguments plus a time map.

Each transform is a function ``(clip, rng, extras) -> Recipe``. The recipe holds the ffmpeg input
and output arguments, the output container, and how the copy's timeline maps onto the source's
(head and tail trimmed, speed factor), from which the ground truth's aligned times are computed.
``exact`` marks the transforms that only re-encode or re-wrap at similar quality.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from astradup.errors import UnknownBackendError

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",  # Debian's fonts-dejavu-core
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
)


def font_file() -> str | None:
    """A TrueType font for drawtext, or None (then text overlays are drawn with boxes)."""
    for p in FONT_CANDIDATES:
        if os.path.isfile(p):
            return p
    return None


@dataclass(frozen=True)
class Clip:
    """A video the transform reads. Sizes in pixels, duration in seconds."""

    path: Path
    width: int
    height: int
    duration: float
    fps: int
    has_audio: bool


@dataclass(frozen=True)
class Extras:
    """Inputs some transforms need besides the clip, made by the generator.

    Attributes:
        background: ffmpeg input args (``[-ss, t, -t, d,] -i, path``) of an unrelated video
            (picture-in-picture; held on its last frame if shorter than the clip).
        melody: a WAV file as long as the clip, with a different tune (audio replaced).
        font: a TrueType font file, or None.
    """

    background: tuple[str, ...] | None = None
    melody: Path | None = None
    font: str | None = None


@dataclass
class Recipe:
    """What to run, and how the output's time relates to the input's.

    A copy shows input seconds ``[head, duration - tail]`` at ``speed`` times the original rate,
    so input time ``t`` appears at output time ``(t - head) / speed``.
    """

    args: list[str]
    ext: str = ".mp4"
    head: float = 0.0
    tail: float = 0.0
    speed: float = 1.0
    exact: bool = False
    has_audio: bool = True
    params: dict = field(default_factory=dict)


# --- encoders -------------------------------------------------------------------------------

# Speed matters more than compression here: ultrafast encodes about twice as fast as veryfast,
# and its streams (no CABAC, no deblocking) also decode faster when the corpus is indexed.
H264_PRESET = "ultrafast"


def h264(crf: int = 21, preset: str = H264_PRESET, tune: str | None = None) -> list[str]:
    # fmt: off
    args = [
        "-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p", "-threads", "1",
    ]
    # fmt: on
    return args + (["-tune", tune] if tune else [])


def aac(bitrate: str = "96k") -> list[str]:
    return ["-c:a", "aac", "-aac_coder", "fast", "-b:a", bitrate, "-ac", "2", "-ar", "44100"]


def vp9(crf: int = 32) -> list[str]:
    # fmt: off
    return [
        "-c:v", "libvpx-vp9", "-crf", str(crf), "-b:v", "0", "-deadline", "realtime", "-cpu-used", "8",
        "-row-mt", "0", "-threads", "1", "-pix_fmt", "yuv420p",
    ]
    # fmt: on


def opus(bitrate: str = "64k") -> list[str]:
    return ["-c:a", "libopus", "-b:a", bitrate, "-ac", "2", "-ar", "48000"]


_CODECS = {
    "h264": (h264, aac, ".mp4"),
    "vp9": (vp9, opus, ".webm"),
}


def on_frame(t: float, fps: float) -> float:
    """``t`` (seconds) rounded to a frame boundary, so cut points in the truth are exact."""
    return round(round(t * fps) / fps, 3)


def _even(x: float) -> int:
    return max(2, int(round(x / 2)) * 2)


def graph(
    clip: Clip,
    vf: str | None,
    af: str | None = None,
    *,
    extra_inputs: list[list[str]] | None = None,
    video: list[str] | None = None,
    audio: list[str] | None = None,
    mute: bool = False,
    tail_args: list[str] | None = None,
) -> list[str]:
    """ffmpeg args: the clip as input 0, then ``extra_inputs``; ``vf``/``af`` as filter chains.

    ``vf`` may refer to inputs by label (``[1:v]``); it is applied to ``[0:v]`` and must end
    unlabelled. With ``mute`` (or a clip without audio) the output has no audio stream. With no
    ``af`` and no ``audio`` encoder the AAC track is copied unchanged (the clip is an MP4).
    """
    args = ["-i", str(clip.path)]
    for extra in extra_inputs or []:
        args += extra
    chains = [f"[0:v]{vf or 'null'}[v]"]
    keep_audio = clip.has_audio and not mute
    copy_audio = keep_audio and af is None and audio is None
    if keep_audio and not copy_audio:
        chains.append(f"[0:a]{af or 'anull'}[a]")
    args += ["-filter_complex", ";".join(chains), "-map", "[v]"]
    if copy_audio:
        args += ["-map", "0:a:0", "-c:a", "copy"]
    elif keep_audio:
        args += ["-map", "[a]", *(audio if audio is not None else aac())]
    else:
        args += ["-an"]
    args += video if video is not None else h264()
    return args + (tail_args or [])


# --- picture filters, shared by the single transforms and by "combo" --------------------------


def _crop_vf(c: Clip, rng: np.random.Generator, p: dict) -> str:
    f = float(rng.uniform(0.72, 0.88))
    cw, ch = _even(c.width * f), _even(c.height * f)
    x, y = int(rng.integers(0, c.width - cw + 1)), int(rng.integers(0, c.height - ch + 1))
    p.update(crop_fraction=round(f, 3), crop_x=x, crop_y=y)
    return f"crop={cw}:{ch}:{x}:{y},scale={c.width}:{c.height},setsar=1"


def _color_vf(c: Clip, rng: np.random.Generator, p: dict) -> str:
    b, ct, s, g = (
        rng.uniform(-0.12, 0.12),
        rng.uniform(0.8, 1.3),
        rng.uniform(0.5, 1.6),
        rng.uniform(0.7, 1.4),
    )
    hue = float(rng.uniform(15, 60) * rng.choice([-1, 1]))
    p.update(
        brightness=round(b, 3),
        contrast=round(ct, 3),
        saturation=round(s, 3),
        gamma=round(g, 3),
        hue=round(hue, 1),
    )
    return (
        f"eq=brightness={b:.3f}:contrast={ct:.3f}:saturation={s:.3f}:gamma={g:.3f},hue=h={hue:.1f}"
    )


def _blur_vf(c: Clip, rng: np.random.Generator, p: dict) -> str:
    sigma = float(rng.uniform(1.5, 3.0)) * c.height / 180
    p.update(sigma=round(sigma, 2))
    return f"gblur=sigma={sigma:.2f}"


def _noise_vf(c: Clip, rng: np.random.Generator, p: dict) -> str:
    strength = int(rng.integers(12, 26))
    p.update(noise=strength)
    return f"noise=alls={strength}:allf=t+u:all_seed={int(rng.integers(1, 2**31 - 1))}"


_CAPTIONS = (
    "Holiday 2024",
    "LIVE",
    "reupload",
    "Channel 7 News",
    "best moments",
    "watch till the end",
    "HD 1080p",
)


def _text_vf(c: Clip, rng: np.random.Generator, p: dict, font: str | None) -> str:
    text = str(rng.choice(_CAPTIONS))
    size = max(8, c.height // 9)
    p.update(caption=text)
    if font is None:  # no font: a caption bar of boxes where the letters would be
        bar_h = size + 6
        boxes = [f"drawbox=x=0:y={c.height - bar_h}:w={c.width}:h={bar_h}:c=black@0.6:t=fill"]
        x = 6
        for ch in text:
            if ch != " ":
                boxes.append(
                    f"drawbox=x={x}:y={c.height - bar_h + 3}:w={size // 2}:h={size}:c=white:t=fill"
                )
            x += size * 2 // 3
            if x > c.width - size:
                break
        return ",".join(boxes)
    y = "h-th-8" if rng.random() < 0.6 else "8"
    return (
        f"drawtext=fontfile='{font}':text='{text}':fontsize={size}:fontcolor=white:"
        f"box=1:boxcolor=black@0.55:boxborderw=4:x=(w-tw)/2:y={y}"
    )


def _hflip_vf(c: Clip, rng: np.random.Generator, p: dict) -> str:
    return "hflip"


def _gray_vf(c: Clip, rng: np.random.Generator, p: dict) -> str:
    return "hue=s=0"


# --- transforms -----------------------------------------------------------------------------

Transform = Callable[[Clip, np.random.Generator, Extras], Recipe]


def reencode_vp9(c: Clip, rng: np.random.Generator, x: Extras) -> Recipe:
    crf = int(rng.integers(28, 36))
    return Recipe(
        graph(c, None, video=vp9(crf), audio=opus()),
        ".webm",
        exact=True,
        params={"codec": "vp9", "crf": crf},
    )


def reencode_mpeg4(c: Clip, rng: np.random.Generator, x: Extras) -> Recipe:
    q = int(rng.integers(2, 5))
    video = ["-c:v", "mpeg4", "-q:v", str(q), "-pix_fmt", "yuv420p", "-threads", "1"]
    audio = ["-c:a", "libmp3lame", "-q:a", "4", "-ac", "2", "-ar", "44100"]
    return Recipe(
        graph(c, None, video=video, audio=audio),
        ".avi",
        exact=True,
        params={"codec": "mpeg4", "q": q},
    )


def container_mkv(c: Clip, rng: np.random.Generator, x: Extras) -> Recipe:
    args = ["-i", str(c.path), "-map", "0", "-c", "copy"]
    return Recipe(args, ".mkv", exact=True, params={"container": "matroska", "codec": "copy"})


def low_bitrate(c: Clip, rng: np.random.Generator, x: Extras) -> Recipe:
    kbps = int(rng.integers(40, 90) * (c.width * c.height) / (320 * 180)) + 10
    # fmt: off
    video = [
        "-c:v", "libx264", "-preset", "veryfast", "-b:v", f"{kbps}k", "-maxrate", f"{kbps}k", "-bufsize",
        f"{2 * kbps}k", "-pix_fmt", "yuv420p", "-threads", "1",
    ]
    # fmt: on
    return Recipe(
        graph(c, None, video=video, audio=aac("32k")),
        params={"video_kbps": kbps, "audio": "aac 32k"},
    )


def resize(c: Clip, rng: np.random.Generator, x: Extras) -> Recipe:
    f = float(rng.choice([0.5, 0.625, 0.75, 1.5]))
    w, h = _even(c.width * f), _even(c.height * f)
    return Recipe(graph(c, f"scale={w}:{h},setsar=1"), params={"width": w, "height": h})


def fps_change(c: Clip, rng: np.random.Generator, x: Extras) -> Recipe:
    fps = int(rng.choice([f for f in (12, 15, 30) if f != c.fps]))
    return Recipe(graph(c, f"fps={fps}"), params={"fps": fps})


def crop(c: Clip, rng: np.random.Generator, x: Extras) -> Recipe:
    p: dict = {}
    return Recipe(graph(c, _crop_vf(c, rng, p)), params=p)


def letterbox(c: Clip, rng: np.random.Generator, x: Extras) -> Recipe:
    h = _even(c.height * float(rng.uniform(1.25, 1.4)))
    return Recipe(
        graph(c, f"pad={c.width}:{h}:0:(oh-ih)/2:black,setsar=1"),
        params={"width": c.width, "height": h},
    )


def pillarbox(c: Clip, rng: np.random.Generator, x: Extras) -> Recipe:
    w = _even(c.width * float(rng.uniform(1.25, 1.4)))
    return Recipe(
        graph(c, f"pad={w}:{c.height}:(ow-iw)/2:0:black,setsar=1"),
        params={"width": w, "height": c.height},
    )


def hflip(c: Clip, rng: np.random.Generator, x: Extras) -> Recipe:
    return Recipe(graph(c, "hflip"))


def color(c: Clip, rng: np.random.Generator, x: Extras) -> Recipe:
    p: dict = {}
    return Recipe(graph(c, _color_vf(c, rng, p)), params=p)


def grayscale(c: Clip, rng: np.random.Generator, x: Extras) -> Recipe:
    return Recipe(graph(c, _gray_vf(c, rng, {})))


def blur(c: Clip, rng: np.random.Generator, x: Extras) -> Recipe:
    p: dict = {}
    return Recipe(graph(c, _blur_vf(c, rng, p)), params=p)


def noise(c: Clip, rng: np.random.Generator, x: Extras) -> Recipe:
    p: dict = {}
    return Recipe(graph(c, _noise_vf(c, rng, p)), params=p)


def text(c: Clip, rng: np.random.Generator, x: Extras) -> Recipe:
    p: dict = {"font": bool(x.font)}
    return Recipe(graph(c, _text_vf(c, rng, p, x.font)), params=p)


def logo(c: Clip, rng: np.random.Generator, x: Extras) -> Recipe:
    side = _even(c.height * float(rng.uniform(0.16, 0.24)))
    fill, ring = (
        "0x{:02X}{:02X}{:02X}".format(*tuple(int(v) for v in rng.integers(0, 256, 3))),
        "white",
    )
    opacity = float(rng.uniform(0.6, 0.9))
    corner = int(rng.integers(4))
    m = max(4, c.height // 30)
    pos = [(m, m), (f"W-w-{m}", m), (m, f"H-h-{m}"), (f"W-w-{m}", f"H-h-{m}")][corner]
    art = f"drawbox=x={side // 4}:y={side // 4}:w={side // 2}:h={side // 2}:c={ring}:t={max(1, side // 12)}"
    if x.font:
        art += f",drawtext=fontfile='{x.font}':text='TV':fontsize={side // 3}:fontcolor=white:x=(w-tw)/2:y=(h-th)/2"
    src = f"color=c={fill}:s={side}x{side}:r={c.fps}:d={c.duration + 1:.3f},{art},format=yuva420p,colorchannelmixer=aa={opacity:.2f}"
    vf = f"null[base];[base][1:v]overlay=x={pos[0]}:y={pos[1]}:shortest=1"
    return Recipe(
        graph(c, vf, extra_inputs=[["-f", "lavfi", "-i", src]]),
        params={
            "side": side,
            "corner": ["top-left", "top-right", "bottom-left", "bottom-right"][corner],
            "opacity": round(opacity, 2),
        },
    )


def _speed(c: Clip, s: float) -> Recipe:
    vf = f"setpts=PTS/{s:.4f},fps={c.fps}"
    return Recipe(graph(c, vf, f"atempo={s:.4f}"), speed=s, params={"speed": round(s, 4)})


def speed_up(c: Clip, rng: np.random.Generator, x: Extras) -> Recipe:
    return _speed(c, round(float(rng.uniform(1.05, 1.10)), 4))


def slow_down(c: Clip, rng: np.random.Generator, x: Extras) -> Recipe:
    return _speed(c, round(float(rng.uniform(0.90, 0.95)), 4))


def trim_head(c: Clip, rng: np.random.Generator, x: Extras) -> Recipe:
    h = on_frame(c.duration * float(rng.uniform(0.10, 0.20)), c.fps)
    return Recipe(
        graph(c, f"trim=start={h},setpts=PTS-STARTPTS", f"atrim=start={h},asetpts=PTS-STARTPTS"),
        head=h,
        params={"head": h},
    )


def trim_tail(c: Clip, rng: np.random.Generator, x: Extras) -> Recipe:
    t = on_frame(c.duration * float(rng.uniform(0.10, 0.20)), c.fps)
    end = round(c.duration - t, 3)
    return Recipe(graph(c, f"trim=end={end}", f"atrim=end={end}"), tail=t, params={"tail": t})


def audio_muted(c: Clip, rng: np.random.Generator, x: Extras) -> Recipe:
    return Recipe(["-i", str(c.path), "-map", "0:v", "-c:v", "copy", "-an"], has_audio=False)


def audio_replaced(c: Clip, rng: np.random.Generator, x: Extras) -> Recipe:
    if x.melody is None:
        raise ValueError("audio_replaced needs Extras.melody")
    # fmt: off
    args = [
        "-i", str(c.path), "-i", str(x.melody), "-map", "0:v", "-map", "1:a", "-c:v", "copy", *aac(), "-t",
        f"{c.duration:.3f}",
    ]
    # fmt: on
    return Recipe(args, params={"audio": "different melody"})


def pip(c: Clip, rng: np.random.Generator, x: Extras) -> Recipe:
    if x.background is None:
        raise ValueError("pip needs Extras.background")
    f = float(rng.uniform(0.38, 0.5))
    w, h = _even(c.width * f), _even(c.height * f)
    px, py = int(rng.integers(4, c.width - w - 4)), int(rng.integers(4, c.height - h - 4))
    vf = (
        f"scale={w}:{h},setsar=1[fg];[1:v]scale={c.width}:{c.height}:force_original_aspect_ratio=increase,"
        f"crop={c.width}:{c.height},setsar=1,fps={c.fps},tpad=stop_mode=clone:stop_duration={c.duration:.3f}[bg];"
        f"[bg][fg]overlay=x={px}:y={py}:shortest=1"
    )
    args = graph(c, vf, extra_inputs=[list(x.background)], tail_args=["-t", f"{c.duration:.3f}"])
    return Recipe(args, params={"scale": round(f, 3), "x": px, "y": py})


def banner(c: Clip, rng: np.random.Generator, x: Extras) -> Recipe:
    """A band of colour across the top or bottom 15-30% of the frame, with a caption on it (a
    broadcaster's strap or a re-uploader's banner); the picture under the band is hidden."""
    frac = float(rng.uniform(0.15, 0.30))
    band = _even(c.height * frac)
    top = bool(rng.random() < 0.5)
    y = 0 if top else c.height - band
    fill = "0x{:02X}{:02X}{:02X}".format(*tuple(int(v) for v in rng.integers(0, 256, 3)))
    opacity = float(rng.uniform(0.75, 1.0))
    text = str(rng.choice(_CAPTIONS))
    vf = f"drawbox=x=0:y={y}:w={c.width}:h={band}:c={fill}@{opacity:.2f}:t=fill"
    size = max(8, int(band * 0.55))
    if x.font:
        vf += (
            f",drawtext=fontfile='{x.font}':text='{text}':fontsize={size}:fontcolor=white:"
            f"borderw=1:bordercolor=black:x=(w-tw)/2:y={y}+({band}-th)/2"
        )
    else:  # no font: a row of boxes where the letters would be
        for i in range(min(len(text), max(1, (c.width - 12) // max(1, size * 2 // 3)))):
            if text[i] != " ":
                vf += f",drawbox=x={6 + i * (size * 2 // 3)}:y={y + (band - size) // 2}:w={size // 2}:h={size}:c=white:t=fill"
    return Recipe(
        graph(c, vf),
        params={
            "band": band,
            "side": "top" if top else "bottom",
            "colour": fill,
            "opacity": round(opacity, 2),
            "caption": text,
        },
    )


_COMBO_PARTS: dict[str, Callable[..., str]] = {
    "crop": _crop_vf,
    "hflip": _hflip_vf,
    "color": _color_vf,
    "grayscale": _gray_vf,
    "blur": _blur_vf,
    "noise": _noise_vf,
    "text": _text_vf,
}


def combo(c: Clip, rng: np.random.Generator, x: Extras) -> Recipe:
    names = sorted(str(n) for n in rng.choice(list(_COMBO_PARTS), size=3, replace=False))
    if "color" in names and "grayscale" in names:
        names.remove("grayscale")
    order = [n for n in _COMBO_PARTS if n in names]  # geometry first, overlays last
    p: dict = {"parts": order}
    chain = []
    for n in order:
        fn = _COMBO_PARTS[n]
        chain.append(fn(c, rng, p, x.font) if n == "text" else fn(c, rng, p))
    codec = str(rng.choice(list(_CODECS)))
    venc, aenc, ext = _CODECS[codec]
    p["codec"] = codec
    return Recipe(graph(c, ",".join(chain), video=venc(), audio=aenc()), ext, params=p)


TRANSFORMS: dict[str, Transform] = {
    "reencode_vp9": reencode_vp9,
    "reencode_mpeg4": reencode_mpeg4,
    "container_mkv": container_mkv,
    "low_bitrate": low_bitrate,
    "resize": resize,
    "fps_change": fps_change,
    "crop": crop,
    "letterbox": letterbox,
    "pillarbox": pillarbox,
    "hflip": hflip,
    "color": color,
    "grayscale": grayscale,
    "blur": blur,
    "noise": noise,
    "text": text,
    "logo": logo,
    "speed_up": speed_up,
    "slow_down": slow_down,
    "trim_head": trim_head,
    "trim_tail": trim_tail,
    "audio_muted": audio_muted,
    "audio_replaced": audio_replaced,
    "pip": pip,
    "combo": combo,
    "banner": banner,
}
"""Copy transforms by name, in the order copies are listed. Each is ``(clip, rng, extras) -> Recipe``."""

NEEDS_BACKGROUND = frozenset({"pip"})
NEEDS_MELODY = frozenset({"audio_replaced"})


def list_transforms() -> list[str]:
    """Names of the copy transforms, in registry order."""
    return list(TRANSFORMS)


def check_transforms(names: list[str] | tuple[str, ...] | str | None) -> list[str]:
    """Validate a selection (None = all); raise UnknownBackendError listing the valid names."""
    if names is None:
        return list(TRANSFORMS)
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in names if n not in TRANSFORMS]
    if unknown:
        raise UnknownBackendError(
            f"transform {unknown[0]!r} is unknown; choose from {list(TRANSFORMS)}"
        )
    seen: list[str] = []
    for n in names:
        if n not in seen:
            seen.append(n)
    return seen
