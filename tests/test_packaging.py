"""Packaging: environment.yml lists what pyproject.toml lists; import stays light."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
# conda-forge spells a few packages differently
CONDA_NAMES = {"torch": "pytorch", "duckdb": "python-duckdb", "dask[distributed]": "dask",
               "prometheus-client": "prometheus_client"}


def _name(spec: str) -> str:
    return re.split(r"[<>=!;\s]", spec.strip(), maxsplit=1)[0].lower()


def test_environment_yml_agrees_with_pyproject():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    conda = {_name(d) for d in env if isinstance(d, str)}
    pip = {_name(d) for block in env if isinstance(block, dict) for d in block.get("pip", []) if not d.startswith("-e")}
    listed = conda | pip
    wanted = {CONDA_NAMES.get(_name(d), _name(d)) for d in deps}
    assert wanted - listed == set(), f"in pyproject.toml but not environment.yml: {sorted(wanted - listed)}"
    extra = listed - wanted - {"python", "pip", "libchromaprint", "distributed"}
    assert extra == set(), f"in environment.yml but not pyproject.toml: {sorted(extra)}"


def test_import_is_light():
    code = "import sys, astradup; heavy = [m for m in ('torch', 'faiss', 'dask', 'transformers', 'librosa') if m in sys.modules]; print(heavy)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_torch_is_the_pinned_cpu_build():
    import torch

    assert torch.__version__.startswith("2.13.0")


def test_ruff_is_clean():
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "astradup", "tests", "benchmarks"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:]



@pytest.mark.slow
def test_mypy_is_clean():
    r = subprocess.run([sys.executable, "-m", "mypy", "astradup"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:]
