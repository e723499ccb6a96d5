"""The shape of the code, checked: import layers (import-linter), module and function sizes, and a
``--help`` for every CLI command (enumerated from typer, so a new command is covered by itself)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from astradup.cli import app

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "astradup"
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 100
#: Modules another branch is splitting now (remove each entry when its split lands).
SIZE_EXEMPT: set[str] = set()


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_import_contracts_hold():
    """The layers of STYLE.md (``[tool.importlinter]`` in pyproject.toml): cli on top, nothing
    imports it; dependencies point down the data flow; only execution imports dask."""
    r = subprocess.run([sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()",
                        "--no-cache"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "0 broken" in r.stdout and "Contracts: " in r.stdout


def test_no_module_is_over_600_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in _modules()
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert set(long) <= SIZE_EXEMPT, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_no_function_is_over_100_lines():
    long = []
    for p in _modules():
        rel = str(p.relative_to(PACKAGE))
        if rel in SIZE_EXEMPT:
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{rel}:{node.lineno} {node.name} ({n} lines)")
    assert long == [], f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_the_size_checks_can_fail(tmp_path):
    """The walker above counts a long function (so the checks are not vacuous)."""
    src = "def f():\n" + "    x = 1\n" * 120
    fn = next(n for n in ast.walk(ast.parse(src)) if isinstance(n, ast.FunctionDef))
    assert fn.end_lineno - fn.lineno + 1 == 121 > MAX_FUNCTION_LINES


def _command_paths() -> list[tuple[str, ...]]:
    """Every command and sub-command registered on the typer app, as argv prefixes."""
    out: list[tuple[str, ...]] = []

    def walk(cmd, prefix: tuple[str, ...]) -> None:
        for name, sub in sorted(getattr(cmd, "commands", {}).items()):
            out.append((*prefix, name))
            walk(sub, (*prefix, name))

    walk(get_command(app), ())
    return out


COMMANDS = _command_paths()


def test_every_command_is_enumerated():
    names = {c[0] for c in COMMANDS}
    assert {"index", "match", "query", "explain", "demo", "pipeline"} <= names
    assert ("pipeline", "run") in COMMANDS


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_help(argv):
    r = CliRunner().invoke(app, [*argv, "--help"])
    assert r.exit_code == 0, r.output
    assert "Usage:" in r.output and argv[-1] in r.output


def test_config_backends_are_the_registry_names():
    from astradup.config import EMBEDDING_BACKENDS, HASH_BACKENDS, AstradupConfig
    from astradup.errors import ConfigError
    from astradup.features.base import EXTRACTORS

    assert set(HASH_BACKENDS) | set(EMBEDDING_BACKENDS) <= set(EXTRACTORS)
    with pytest.raises(ConfigError, match=r"features.embedding 'mobilenet' is unknown; choose one of \['mobilenetv2'"):
        AstradupConfig.from_dict({"features": {"embedding": "mobilenet"}})
    with pytest.raises(ConfigError, match=r"features.hash 'phsah' is unknown; choose one of \['phash', 'pdq'\]"):
        AstradupConfig.from_dict({"features": {"hash": "phsah"}})
