"""What a run was made with: the versions of the libraries it depends on.

Runs record them in the store (``runs.versions``) and the report prints them, from this one list.
Nothing is imported to find a version: it is read from the installed packages' metadata.

Example:
    >>> from astradup.provenance import versions
    >>> "numpy" in versions()
    True
"""

from __future__ import annotations

import platform
from collections.abc import Sequence
from importlib import metadata

#: Distributions whose versions a run records (those not installed are left out).
VERSION_PACKAGES: tuple[str, ...] = (
    "astradup", "numpy", "pandas", "torch", "transformers", "faiss-cpu", "faiss-gpu", "duckdb",
    "dask", "distributed", "optuna", "av", "librosa", "plotly", "papermill", "nbconvert", "kaleido",
)


def versions(packages: Sequence[str] = VERSION_PACKAGES) -> dict[str, str]:
    """Python, the platform and the installed version of each of ``packages``.

    Returns:
        ``{"python": "3.11.9", "platform": "Linux-...", "numpy": "2.1.0", ...}``.
    """
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


__all__ = ["VERSION_PACKAGES", "versions"]
