"""Labelled test corpora: sources, transformed copies, distractors and a derived ground truth.

``generate(out_dir)`` makes, for each source, copies by every transform in :data:`TRANSFORMS`,
plus partial copies, a "similar" video, unrelated distractors and shared-soundtrack negatives, and,
with ``hard_negatives=N``, N sets of hard negatives (:mod:`.hard`), and writes what relates to what.
Each role has its planner (:mod:`.planners`, :mod:`.hard`) over a shared state (:mod:`.plan`).
Trailers and hard negatives carry "other music": seeded tunes, or stretches of the files in
``music_dir``.

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
    ``srcNN__partial_cut.mp4``, ``srcNN__partial_embed.mp4``, ``srcNN__partial_trailer.mp4``,
    ``srcNN__shared_audio.mp4``, ``disNN.mp4`` (distractors), ``hnNN__<kind>[_a|_b].mp4`` (hard
    negatives); ``videos.csv`` (path, source, transform, duration, params),
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
      ``partial_embed``: a segment inside a longer unrelated video; ``partial_trailer``: title
      cards around two short quotes of the source, over other music; and copies against those);
    * ``similar``: the same material, but stretches that do not overlap (``similar`` is a later
      segment of the source's material; two segments of one user file are also similar;
      ``hard_neighbour`` pairs are neighbouring segments), or another *edit* of the material
      (``hard_edit``: shots re-ordered and re-framed, other music), whatever the overlap;
    * ``different``: listed only for hard negatives, so a benchmark can count them by kind:
      low-detail videos and slideshows among themselves, and ``hard_soundtrack`` videos (other
      pictures over a source's soundtrack) against that source's group. The same soundtrack over
      other pictures is ``different``: audio alone never makes a copy.

    ``transform`` is the copy's transform against its source, and ``"x+y"`` for two copies.
    ``a_start..b_end`` (seconds) give the longest shared stretch in each video (empty for
    similar). ``group`` names the source whose material is shared. Pairs not listed are
    unrelated (``different``), including ``shared_audio`` videos (other pictures, same audio as
    a source) and distractors. Shared stretches under 0.5 s count as not overlapping. No hard
    negative is ever ``exact``, ``near`` or ``partial``.

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
from astradup.synth.hard import HARD_KINDS
from astradup.synth.transforms import TRANSFORMS, list_transforms
from astradup.synth.truth import TRUTH_COLUMNS

__all__ = [
    "HARD_KINDS",
    "TRANSFORMS",
    "TRUTH_COLUMNS",
    "FFmpegError",
    "ffmpeg_exe",
    "generate",
    "list_transforms",
]
