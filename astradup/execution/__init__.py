"""Execution: the index and match jobs, eagerly or on Dask (the only layer that imports dask)."""

from astradup.execution.extract import Failure, extract_video
from astradup.execution.runner import (
    IndexSummary,
    explain_pair,
    feature_key,
    run_index,
    run_match,
    run_query,
    versions,
)

__all__ = ["Failure", "IndexSummary", "explain_pair", "extract_video", "feature_key", "run_index", "run_match", "run_query", "versions"]
