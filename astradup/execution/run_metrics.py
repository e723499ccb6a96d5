"""Run metrics in Prometheus form: the last ``index`` and ``match`` runs of a store.

The ``runs`` table already records each run's time, status, counts and throughput, and each
video row its stage timings; this module turns the latest run of each kind into gauges, writes
them as a text file for node exporter's textfile collector, and pushes them to a Pushgateway.
The query service exports the same gauges on ``/metrics``. ``prometheus_client`` is imported
inside the functions.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
from pathlib import Path
from typing import Any

from astradup.errors import ConfigError
from astradup.store.store import Store

log = logging.getLogger(__name__)

RUN_KINDS = ("index", "match")


def default_metrics_file(store_path: str | os.PathLike[str]) -> Path:
    """Where run metrics go when no file is named: ``<store>.metrics.prom`` beside the store."""
    return Path(f"{os.fspath(store_path)}.metrics.prom")


def _epoch(x: Any) -> float | None:
    if x is None or (isinstance(x, float) and x != x):
        return None
    try:
        ts = x.to_pydatetime() if hasattr(x, "to_pydatetime") else x
        if isinstance(ts, _dt.datetime):
            return ts.replace(tzinfo=_dt.UTC).timestamp()
    except (TypeError, ValueError):
        return None
    return None


def last_runs(st: Store) -> dict[str, dict[str, Any]]:
    """The latest run of each kind (``index``, ``match``) with its stage seconds and failures.

    Returns ``{kind: {"run_id", "status", "started", "ended" (UNIX s), "seconds", "n_files",
    "n_indexed", "n_skipped", "n_failed", "videos_per_hour", "stages": {stage: s},
    "failures": {stage: n}}}``; a kind never run is absent.
    """
    df = st.sql(
        "SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY kind ORDER BY started DESC) AS rn FROM runs) "
        "WHERE rn = 1"
    )
    out: dict[str, dict[str, Any]] = {}
    for r in df.to_dict("records"):
        kind = str(r["kind"])
        if kind not in RUN_KINDS:
            continue
        info: dict[str, Any] = {
            "run_id": r["run_id"], "status": r["status"], "started": _epoch(r["started"]), "ended": _epoch(r["ended"]),
        }
        for c in ("seconds", "n_files", "n_indexed", "n_skipped", "n_failed", "videos_per_hour"):
            v = r.get(c)
            info[c] = None if v is None or v != v else float(v)
        stages: dict[str, float] = {}
        if kind == "index":
            for (t,) in st.con.execute("SELECT timings FROM videos WHERE run_id = ?", [r["run_id"]]).fetchall():
                for k, v in (json.loads(t) if t else {}).items():
                    stages[k] = stages.get(k, 0.0) + float(v)
        info["stages"] = stages
        fails = st.con.execute("SELECT stage, count(*) FROM failures WHERE run_id = ? GROUP BY stage", [r["run_id"]]).fetchall()
        info["failures"] = {str(s): int(n) for s, n in fails}
        out[kind] = info
    return out


def run_families(runs: dict[str, dict[str, Any]]) -> list:
    """Prometheus metric families (gauges labelled by ``kind``) for :func:`last_runs`'s result."""
    from prometheus_client.core import GaugeMetricFamily

    def fam(name: str, doc: str, labels: tuple[str, ...] = ("kind",)) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, doc, labels=list(labels))

    started = fam("astradup_run_started_timestamp_seconds", "Start of the last run (UNIX time).")
    ended = fam("astradup_run_ended_timestamp_seconds", "End of the last run (UNIX time).")
    ok = fam("astradup_run_success", "1 when the last run ended ok, 0 when it failed or is still running.")
    dur = fam("astradup_run_duration_seconds", "Wall time of the last run.")
    counts = {c: fam(f"astradup_run_{c[2:]}", doc) for c, doc in (
        ("n_files", "Files found (index) or videos matched (match) by the last run."),
        ("n_indexed", "Videos indexed (index) or pairs written (match) by the last run."),
        ("n_skipped", "Unchanged videos skipped by the last run."),
        ("n_failed", "Files that failed in the last run (see the failures table)."),
    )}
    vph = fam("astradup_run_videos_per_hour", "Throughput of the last index run.")
    stage = fam("astradup_run_stage_seconds", "Summed per-video seconds of each stage in the last run.", ("kind", "stage"))
    fails = fam("astradup_run_failures", "Failures of the last run by stage.", ("kind", "stage"))
    for kind, r in sorted(runs.items()):
        if r["started"] is not None:
            started.add_metric([kind], r["started"])
        if r["ended"] is not None:
            ended.add_metric([kind], r["ended"])
        ok.add_metric([kind], 1.0 if r["status"] == "ok" else 0.0)
        if r["seconds"] is not None:
            dur.add_metric([kind], r["seconds"])
        for c, f in counts.items():
            if r.get(c) is not None:
                f.add_metric([kind], r[c])
        if r.get("videos_per_hour") is not None:
            vph.add_metric([kind], r["videos_per_hour"])
        for s, v in sorted(r["stages"].items()):
            stage.add_metric([kind, s], v)
        for s, n in sorted(r["failures"].items()):
            fails.add_metric([kind, s], n)
    return [started, ended, ok, dur, *counts.values(), vph, stage, fails]


class _Families:
    """A prometheus_client collector serving fixed families."""

    def __init__(self, families: list):
        self.families = families

    def collect(self):
        return iter(self.families)


def run_registry(st: Store):
    """A fresh CollectorRegistry holding the store's last-run gauges."""
    from prometheus_client import CollectorRegistry

    reg = CollectorRegistry()
    reg.register(_Families(run_families(last_runs(st))))  # type: ignore[arg-type]
    return reg


def export_run_metrics(st: Store, kind: str, metrics_file: str | os.PathLike[str] | None = None,
                       pushgateway: str | None = None) -> Path:
    """Write the store's last-run gauges to ``metrics_file`` (default beside the store; written
    atomically, as node exporter's textfile collector expects) and push them to ``pushgateway``
    (job ``astradup_<kind>``) when given. Returns the file written.

    Raises:
        ConfigError: the Pushgateway URL is not http(s) or the push failed.
    """
    from prometheus_client import push_to_gateway, write_to_textfile

    reg = run_registry(st)
    path = Path(metrics_file) if metrics_file is not None else default_metrics_file(st.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), reg)
    if pushgateway:
        if not pushgateway.startswith(("http://", "https://")):
            raise ConfigError(f"--pushgateway must be an http(s) URL, but got {pushgateway!r}")
        try:
            push_to_gateway(pushgateway, job=f"astradup_{kind}", registry=reg,
                            grouping_key={"store": Path(st.path).name}, timeout=10)
        except OSError as exc:
            raise ConfigError(f"pushing run metrics to {pushgateway} failed ({exc})") from exc
    return path


def export_quietly(st: Store, kind: str, metrics_file: str | os.PathLike[str] | None,
                   pushgateway: str | None) -> Path | None:
    """:func:`export_run_metrics` for the end of a run: a failure is logged, never raised, so
    metrics cannot fail the run they describe."""
    try:
        return export_run_metrics(st, kind, metrics_file, pushgateway)
    except Exception as exc:  # noqa: BLE001 - metrics are a side output of the run
        log.warning("run metrics not exported (%s)", exc)
        return None
