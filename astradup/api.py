"""The public API: one :class:`Library` object a notebook keeps, with methods that read as verbs.

A library is a DuckDB store (plus the frame index kept beside it); the videos stay where they are,
read-only. Results are pandas DataFrames with the columns of ``pairs.csv``
(:data:`astradup.labels.PAIR_COLUMNS`). The CLI's ``index``, ``match``, ``query`` and ``explain``
commands are thin shells over these methods.

Example:
    >>> import astradup
    >>> lib = astradup.Library("lib.duckdb")           # doctest: +SKIP
    >>> lib.index("videos/")                           # doctest: +SKIP
    >>> lib.match()                                    # doctest: +SKIP
    >>> lib.pairs(label="near")                        # doctest: +SKIP
    >>> lib.explain("a.mp4", "b.mp4")["scores"]        # doctest: +SKIP
    >>> lib.query("new.mp4")                           # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from astradup.config import AstradupConfig
from astradup.errors import ConfigError
from astradup.labels import LABELS, PAIR_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

    from astradup.execution.runner import IndexSummary
    from astradup.index.frames import SavedFrameIndex


class Library:
    """A video library held in one DuckDB store.

    Args:
        store: the store file (created by the first :meth:`index`).
        config: settings for every call (sampling, features, match, fusion); the defaults, a
            config file and the environment when None (``AstradupConfig.from_file(None)``).

    Example:
        >>> lib = Library("lib.duckdb", AstradupConfig())   # doctest: +SKIP
        >>> lib.index("videos/").n_indexed                  # doctest: +SKIP
        12
    """

    def __init__(self, store: str | os.PathLike[str], config: AstradupConfig | None = None):
        self.store = Path(store)
        self.config = config if config is not None else AstradupConfig.from_file(None)
        self._frame_index: tuple[Any, SavedFrameIndex] | None = None  # kept by query()

    def __repr__(self) -> str:
        return f"Library({os.fspath(self.store)!r})"

    def index(self, folder: str | os.PathLike[str], *, eager: bool = False, scheduler: str | None = None,
              gpus: bool = False, workers: int | None = None, progress: bool = True,
              on_dashboard: Callable[[str], None] | None = None, metrics_file: str | os.PathLike[str] | None = None,
              pushgateway: str | None = None, commit_every: float | None = None) -> IndexSummary:
        """Probe and extract every video under ``folder`` into the store, incrementally.

        Unchanged files (same path, size, mtime, content hash and feature settings) are skipped;
        a bad file is recorded in :meth:`failures` and the run goes on.

        Args:
            folder: searched recursively; nothing in it is modified.
            eager: extract in this process instead of on Dask.
            scheduler: a Dask scheduler address (``tcp://host:8786``); a LocalCluster when None.
            gpus: use dask-cuda's LocalCUDACluster (the ``gpu`` extra).
            workers: LocalCluster worker processes (one per core when None).
            progress: show a progress bar.
            on_dashboard: called with the Dask dashboard's URL once the cluster is up.
            metrics_file: where the run's Prometheus gauges go (``<store>.metrics.prom`` when None).
            pushgateway: also push them to this Pushgateway URL.
            commit_every: commit extracted videos at least this often (seconds; None: the
                default, 2 s; 0: each video on its own). A killed run loses what came since.

        Returns:
            An :class:`~astradup.execution.IndexSummary` (counts, seconds, videos per hour).

        Example:
            >>> Library("lib.duckdb").index("videos/", eager=True).lines()[0]  # doctest: +SKIP
            'files found      12'
        """
        from astradup.execution.runner import WRITE_EVERY_S, run_index

        return run_index(folder, self.store, self.config, scheduler=scheduler, gpus=gpus, workers=workers,
                         progress=progress, eager=eager, on_dashboard=on_dashboard, metrics_file=metrics_file,
                         pushgateway=pushgateway, commit_every=WRITE_EVERY_S if commit_every is None else commit_every)

    def match(self, *, min_score: float | None = None, out: str | os.PathLike[str] | None = None,
              progress: bool = True, scheduler: str | None = None, workers: int | None = None,
              eager: bool = False, metrics_file: str | os.PathLike[str] | None = None,
              pushgateway: str | None = None) -> pd.DataFrame:
        """Find the library's duplicate pairs: FAISS candidates, temporal alignment, fusion, labels.

        Args:
            min_score: drop pairs whose fused score (0 to 1) is below it; ``match.min_score``
                (0.5) when None, 0 keeps every verified candidate.
            out: also write the pairs as CSV here.
            progress: show a progress bar.
            scheduler: a Dask scheduler address: candidates are verified in chunks on its
                workers. Without it a LocalCluster of ``workers`` processes is started when there
                are many candidates, unless ``eager``. The pairs are the same either way.
            workers: LocalCluster worker processes, or threads when verifying in this process
                (default: one per core).
            eager: verify in this process, whatever the number of candidates.
            metrics_file, pushgateway: as for :meth:`index`.

        Returns:
            The pairs, best first: ``a``, ``b`` (paths relative to the indexed folder), ``score``
            and ``visual``/``audio``/``metadata``/``confidence`` (0 to 1), ``label``, the matched
            range ``a_start``..``b_end`` (seconds), ``partial`` and ``explanation`` (JSON). Its
            ``attrs`` hold ``run_id`` and ``n_candidates``.

        Example:
            >>> Library("lib.duckdb").match(min_score=0.85)[["a", "b", "label"]]  # doctest: +SKIP
        """
        from astradup.execution.runner import run_match

        return run_match(self.store, self.config, out=out, min_score=min_score, progress=progress,
                         scheduler=scheduler, workers=workers, eager=eager, metrics_file=metrics_file,
                         pushgateway=pushgateway)

    def pairs(self, label: str | None = None, min_score: float = 0.0) -> pd.DataFrame:
        """The pairs of the last :meth:`match`, read back from the store.

        Args:
            label: keep only this label (``exact``, ``near``, ``similar`` or ``different``).
            min_score: keep pairs whose fused score (0 to 1) is at least this.

        Returns:
            The pairs, best first, with the columns of :meth:`match` (empty before any match).

        Example:
            >>> Library("lib.duckdb").pairs(label="exact")  # doctest: +SKIP
        """
        from astradup.store import Store

        if label is not None and label not in LABELS:
            raise ConfigError(f"label must be one of {list(LABELS)}, but got {label!r}")
        with Store(self.store, read_only=True) as st:
            df = st.pairs()
        keep = df["score"] >= min_score
        if label is not None:
            keep &= df["label"] == label
        return df.loc[keep, list(PAIR_COLUMNS)].reset_index(drop=True)

    def explain(self, a: str, b: str) -> dict[str, Any]:
        """Everything behind one pair's verdict.

        Args:
            a, b: the two videos, as ``pairs`` spells them (relative to the indexed folder) or
                absolute, in either order: the result's ``a`` and ``b`` are in the order ``pairs``
                has them, and so are its scores.

        Returns:
            A dict: ``scores`` (visual, audio, metadata, score, label, confidence, partial),
            ``segments`` (the matched range in each video, seconds), ``top_frames`` (best frame
            pairs: index in a, index in b, cosine), ``sim_matrix`` (frames of a x frames of b),
            ``ts_a``/``ts_b`` (frame times, seconds), ``path`` (the aligned frame pairs) and
            ``explanation``.

        Example:
            >>> Library("lib.duckdb").explain("src.mp4", "copy.mp4")["scores"]["label"]  # doctest: +SKIP
            'near'
        """
        from astradup.execution.runner import explain_pair

        return explain_pair(self.store, a, b, self.config)

    def query(self, path: str | os.PathLike[str], top: int = 10, min_score: float = 0.5) -> pd.DataFrame:
        """Is this video already in the library? It is extracted, searched and verified, not added.

        The library's frame index is read on the first query and kept on this object, so later
        queries search it in memory (it is read again when the files beside the store change,
        as after a :meth:`match`).

        Args:
            path: a video file.
            top: most matches returned (up to ``3 * top`` candidates are verified).
            min_score: smallest fused score (0 to 1) returned.

        Returns:
            Matches like :meth:`pairs` rows (``a`` = the query, ``b`` = the library video), best
            first. ``attrs["seconds"]`` holds the time of each stage in seconds (``extract``,
            ``load_index`` (about 0 when the kept index was used), ``project``, ``search``,
            ``load``, ``verify``, ``total``), ``attrs["candidates"]`` the library video ids the
            search proposed (most votes first) and ``attrs["query"]`` the query's ``n_frames``
            and ``decoder``.

        Example:
            >>> lib = Library("lib.duckdb")                               # doctest: +SKIP
            >>> lib.query("new.mp4", top=3)[["b", "score"]]               # doctest: +SKIP
            >>> lib.query("other.mp4").attrs["seconds"]["total"]          # doctest: +SKIP
            1.4
        """
        from astradup.execution.runner import load_frame_index, run_query

        t0 = time.perf_counter()
        stamp = self._frame_index_stamp()
        if self._frame_index is None or self._frame_index[0] != stamp or stamp is None:
            self._frame_index = None  # drop the old one before reading the new one
            index = load_frame_index(self.store, self.config)  # builds the files when missing
            self._frame_index = (self._frame_index_stamp(), index)
        loaded = time.perf_counter() - t0
        out = run_query(path, self.store, self.config, top=top, min_score=min_score,
                        frame_index=self._frame_index[1])
        out.attrs["seconds"]["load_index"] += loaded
        out.attrs["seconds"]["total"] += loaded
        return out

    def _frame_index_stamp(self) -> tuple[tuple[int, int], ...] | None:
        """(mtime_ns, size) of the frame index files beside the store; None when one is missing."""
        from astradup.index.frames import index_files

        out = []
        for p in index_files(self.store)[:2]:  # the index and its manifest (the PCA's hash is in it)
            try:
                st = p.stat()
            except OSError:
                return None
            out.append((st.st_mtime_ns, st.st_size))
        return tuple(out)

    def videos(self) -> pd.DataFrame:
        """One row per indexed video: ``video_id``, ``path``, ``rel_path``, size (bytes), duration
        (seconds), codec, frames sampled, ...

        Example:
            >>> Library("lib.duckdb").videos()[["rel_path", "duration"]]  # doctest: +SKIP
        """
        from astradup.store import Store

        with Store(self.store, read_only=True) as st:
            return st.videos()

    def failures(self) -> pd.DataFrame:
        """The files that could not be indexed: ``path``, ``stage``, ``error_class``, ``message``.

        Example:
            >>> Library("lib.duckdb").failures()[["path", "message"]]  # doctest: +SKIP
        """
        from astradup.store import Store

        with Store(self.store, read_only=True) as st:
            return st.failures()


    # -- review, decisions and safe actions (astradup.review) -----------------------------------
    def groups(self) -> pd.DataFrame:
        """Duplicate groups of the last :meth:`match`, reviewers' decisions applied: ``group``,
        ``role`` (center | member | partial | chained), ``path``, ``match``, ``score``, ``label``,
        ``decision``, ``size`` (bytes), ``duration`` (seconds), ... (see ``astradup.review.groups``).

        Example:
            >>> Library("lib.duckdb").groups()[["group", "role", "path"]]  # doctest: +SKIP
        """
        from astradup.review import duplicate_groups
        from astradup.store import Store

        with Store(self.store, read_only=True) as st:
            return duplicate_groups(st)

    def queue(self, limit: int | None = None) -> pd.DataFrame:
        """Pairs still needing a person, most valuable first (scorer uncertainty x bytes at stake).

        Example:
            >>> Library("lib.duckdb").queue(10)[["a", "b", "score", "value"]]  # doctest: +SKIP
        """
        from astradup.review import review_queue
        from astradup.store import Store

        with Store(self.store, read_only=True) as st:
            return review_queue(st, limit)

    def decide(self, a: str, b: str, decision: str, *, reviewer: str | None = None,
               note: str | None = None) -> dict[str, Any]:
        """Record a reviewer's ``duplicate`` / ``not-duplicate`` / ``skip`` about the pair (a, b)
        (absolute or relative to the indexed folder); it holds while both files are unchanged.

        Example:
            >>> Library("lib.duckdb").decide("a.mp4", "b.mp4", "not-duplicate", reviewer="ann")  # doctest: +SKIP
        """
        from astradup.review import record_decision
        from astradup.store import Store

        with Store(self.store) as st:
            return record_decision(st, a, b, decision, reviewer=reviewer, note=note)

    def decisions(self, latest: bool = True) -> pd.DataFrame:
        """Reviewers' decisions (the latest per pair, or all): ``a``, ``b``, ``decision``,
        ``reviewer``, ``time`` (UTC), ``standing``, ...

        Example:
            >>> Library("lib.duckdb").decisions()[["a", "b", "decision"]]  # doctest: +SKIP
        """
        from astradup.review import decisions
        from astradup.store import Store

        with Store(self.store, read_only=True) as st:
            return decisions(st, latest=latest)

    def plan(self, out: str | os.PathLike[str] | None = None, *, rules: str | os.PathLike[str] | None = None,
             hold: tuple[str, ...] = ()) -> dict[str, Any]:
        """Keep/remove per group by ordered keep rules, with legal holds; changes nothing.

        Args:
            out: also write the plan as JSON here (and CSV beside it).
            rules: a YAML rules file (rules, protect, hold); the default rules when None.
            hold: files or folders never removed (absolute or relative to the indexed folder).

        Returns:
            The plan: ``groups`` (keeper, decided_by, entries with action, reason, size in bytes)
            and ``totals`` (files_to_remove, bytes_to_free, ties).

        Example:
            >>> Library("lib.duckdb").plan("plan.json")["totals"]["bytes_to_free"]  # doctest: +SKIP
        """
        from astradup.review import KeepRules, make_plan, write_plan
        from astradup.store import Store

        with Store(self.store, read_only=True) as st:
            p = make_plan(st, KeepRules.from_file(rules, hold=hold))
        if out is not None:
            write_plan(p, out)
        return p

    def apply(self, plan: str | os.PathLike[str] | dict[str, Any], quarantine: str | os.PathLike[str], *,
              mode: str = "quarantine", hold: list[str] | None = None) -> Any:
        """Move a plan's removals into ``quarantine`` (``mode`` ``"hardlink"``/``"symlink"`` leaves
        a link to the keeper), re-checking each file and journaling each step; nothing is deleted.

        Returns:
            An ``ActionResult``: ``action_ids``, ``rows`` (path, status, message), ``bytes_moved``.

        Example:
            >>> Library("lib.duckdb").apply("plan.json", "/srv/quarantine").counts  # doctest: +SKIP
            {'done': 12}
        """
        from astradup.review import apply_plan

        return apply_plan(plan, quarantine, mode=mode, store=self.store, hold=hold)

    def undo(self, action: str | None = None, *, all_: bool = False) -> Any:
        """Put back what an apply moved (``action``; every apply with ``all_``; else the latest),
        same bytes and mtime, finishing an interrupted apply too.

        Example:
            >>> Library("lib.duckdb").undo().counts  # doctest: +SKIP
            {'undone': 12}
        """
        from astradup.review import undo

        return undo(self.store, action, all_=all_)


__all__ = ["Library"]
