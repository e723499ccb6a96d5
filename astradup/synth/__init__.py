"""Labelled test corpora: sources, transformed copies, distractors and a derived ground truth.

``generate(out_dir)`` makes, for each source, copies by every transform in :data:`TRANSFORMS`,
plus partial copies, a "similar" video, unrelated distractors and shared-soundtrack negatives, and
writes what relates to what.

Sources
    Procedural (default): seeded ffmpeg lavfi pictures (Mandelbrot zoom, Life, cellular
    automata, test patterns, moving shapes, Perlin noise, a pan over colour bars) with a
    seeded tune (:mod:`.audio`; a plain sine would give Chromaprint a degenerate fingerprint).
    From a folder (``sources_dir``): every video under it, read only, cut into segments of
    ``duration`` seconds at seeded offsets; a long file can give several segments. Unreadable files
    and byte-identical duplicates are skipped (logged, listed in ``skipped.csv``). The folder
    should hold unrelated videos: two files that are already copies of each other would be
    labelled unrelated.

Files in ``out_dir`` (flat)
    ``srcNN.mp4`` (a source), ``srcNN__<transform>.<ext>`` (its copies), ``srcNN__similar.mp4``,
    ``srcNN__partial_cut.mp4``, ``srcNN__partial_embed.mp4``, ``srcNN__shared_audio.mp4``,
    ``disNN.mp4`` (distractors); ``videos.csv`` (path, source, transform, duration, params),
    ``ground_truth.csv``, ``synth.json`` (parameters, ffmpeg version, timing) and, when a source
    was skipped, ``skipped.csv``.

Ground truth (``ground_truth.csv``: a, b, relation, transform, a_start, a_end, b_start, b_end, group)
    Derived from provenance (:mod:`.truth`): each video records which stretch of which material
    it shows. Every related pair is listed once, ``a`` before ``b`` in ``videos.csv`` order:

    * ``exact``: both are the whole source, only re-encoded or re-wrapped at similar quality
      (``source``, ``reencode_vp9``, ``reencode_mpeg4``, ``container_mkv``);
    * ``near``: they share a stretch covering at least 70% of each (every other whole-video
      transform, trims and speed changes included, and copy vs copy of one source);
    * ``partial``: a shorter shared stretch (``partial_cut``: a segment alone;
      ``partial_embed``: a segment inside a longer unrelated video; and copies against those);
    * ``similar``: the same material, but stretches that do not overlap (``similar`` is a later
      segment of the source's material; two segments of one user file are also similar).

    ``transform`` is the copy's transform against its source, and ``"x+y"`` for two copies.
    ``a_start..b_end`` (seconds) give the longest shared stretch in each video (empty for
    similar). ``group`` names the source whose material is shared. Pairs not listed are
    unrelated, including ``shared_audio`` videos (other pictures, same audio as a source) and
    distractors. Shared stretches under 0.5 s count as not overlapping.

Determinism
    Same seed and parameters, same ffmpeg build: the same file names, ground truth and bytes
    (``-bitexact``, one encoder thread per ffmpeg process).

Example:
    >>> from astradup.synth import generate
    >>> truth = generate("data/corpus", n_sources=3, duration=6, seed=1)  # doctest: +SKIP
    >>> truth.groupby("relation").size()  # doctest: +SKIP
"""

from __future__ import annotations

from astradup.synth._ffmpeg import FFmpegError, ffmpeg_exe
from astradup.synth.generate import generate
from astradup.synth.transforms import TRANSFORMS, list_transforms
from astradup.synth.truth import TRUTH_COLUMNS

__all__ = [
    "TRANSFORMS",
    "TRUTH_COLUMNS",
    "FFmpegError",
    "ffmpeg_exe",
    "generate",
    "list_transforms",
]
