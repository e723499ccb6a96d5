"""The workbench notebooks: committed clean, parameters equal to their dataclasses, cells that only
call the package, and every notebook run end to end under papermill on a tiny corpus."""

from __future__ import annotations

import ast
import dataclasses
import shutil
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from astradup.orchestration.params import NOTEBOOK_PARAMS

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
ALLOWED_IMPORTS = ("astradup", "optuna")
# statements a cell may hold: an import, a call (maybe assigned), or a bare expression
ALLOWED_STATEMENTS = (ast.Import, ast.ImportFrom, ast.Assign, ast.Expr)
NASTY = "<script>alert(1)</script>.mp4"


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def code_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def parameters_cell(nb):
    tagged = [c for c in code_cells(nb) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"expected one cell tagged 'parameters', found {len(tagged)}"
    return tagged[0]


def test_every_notebook_has_a_parameter_class():
    assert {p.stem for p in NOTEBOOKS} == set(NOTEBOOK_PARAMS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    nb = read(path)
    nbformat.validate(nb)
    for cell in code_cells(nb):
        assert cell.outputs == [], f"{path.name}: a cell has outputs"
        assert cell.execution_count is None, f"{path.name}: a cell has an execution count"
    assert "papermill" not in nb.metadata
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_cell_equals_dataclass(path):
    """Names, order and defaults of the ``parameters`` cell are the dataclass's fields."""
    cls = NOTEBOOK_PARAMS[path.stem]
    tree = ast.parse(parameters_cell(read(path)).source)
    assigned: dict[str, object] = {}
    for node in tree.body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name), \
            f"{path.name}: the parameters cell must hold only `name = literal` lines"
        assigned[node.targets[0].id] = ast.literal_eval(node.value)
    fields = {f.name: f.default for f in dataclasses.fields(cls)}
    assert list(assigned) == list(fields)
    assert assigned == fields


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_dataclass_is_built_from_every_parameter(path):
    """The first cell after the parameters validates them: ``params = Cls(name=name, ...)``."""
    cls = NOTEBOOK_PARAMS[path.stem]
    calls = [n for c in code_cells(read(path)) for n in ast.walk(ast.parse(c.source))
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == cls.__name__]
    assert len(calls) == 1, f"{path.name}: build {cls.__name__} exactly once"
    kw = {k.arg: k.value.id for k in calls[0].keywords if isinstance(k.value, ast.Name)}
    assert kw == {f.name: f.name for f in dataclasses.fields(cls)}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_cells_only_call_the_package(path):
    """Each cell is imports, calls, tables or figures: logic that grows moves into astradup/."""
    for cell in code_cells(read(path)):
        tree = ast.parse(cell.source)
        for node in tree.body:
            assert isinstance(node, ALLOWED_STATEMENTS), \
                f"{path.name}: {type(node).__name__} in a cell ({cell.source.splitlines()[0]!r}); move it into astradup/"
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                assert all(str(n).split(".")[0] in ALLOWED_IMPORTS for n in names), names
        for node in ast.walk(tree):
            assert not isinstance(node, ast.Lambda | ast.ListComp | ast.DictComp | ast.GeneratorExp), \
                f"{path.name}: {type(node).__name__} in a cell; move it into astradup/"


# -- end to end ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def corpus(media_dir, tmp_path_factory) -> dict[str, Path]:
    """The shared tiny corpus plus an exact copy whose name is markup, and its truth table."""
    d = tmp_path_factory.mktemp("nb") / "media"
    shutil.copytree(media_dir, d)
    (d / "<script>alert(1)<").mkdir()
    shutil.copyfile(d / "src.mp4", d / NASTY)  # a sub-folder named "<script>alert(1)<" holding "script>.mp4"
    (d / "empty.mp4").write_bytes(b"")  # a failure for the failures table
    truth = pd.DataFrame(
        [("reencode.mkv", "src.mp4", "near", "reencode"), ("mirror.mp4", "src.mp4", "near", "hflip"),
         ("clip.mp4", "src.mp4", "partial", "trim"), (NASTY, "src.mp4", "exact", "copy")],
        columns=["a", "b", "relation", "transform"],
    )
    truth["a_start"] = [None, None, 0.0, None]
    truth["a_end"] = [None, None, 3.0, None]
    truth["b_start"] = [None, None, 2.0, None]
    truth["b_end"] = [None, None, 5.0, None]
    work = d.parent
    truth.to_csv(work / "ground_truth.csv", index=False)
    return {"media": d, "truth": work / "ground_truth.csv", "store": work / "store.duckdb",
            "pairs": work / "pairs.csv", "work": work}


@pytest.fixture(scope="module")
def dedup_run(corpus) -> Path:
    """01_dedup_run executed once (index + match on one local Dask worker); later notebooks read
    its store."""
    from astradup.orchestration import execute_notebook

    return execute_notebook(
        "01_dedup_run", corpus["work"] / "01_dedup_run.ipynb",
        {"media_dir": str(corpus["media"]), "store": str(corpus["store"]), "out": str(corpus["pairs"]),
         "workers": 1},
        cwd=corpus["work"],
    )


def _outputs_html(path: Path) -> str:
    nb = read(path)
    return "\n".join(o.get("data", {}).get("text/html", "") for c in code_cells(nb) for o in c.outputs)


@pytest.mark.slow
def test_01_dedup_run(dedup_run, corpus):
    assert corpus["pairs"].is_file()
    pairs = pd.read_csv(corpus["pairs"])
    found = {frozenset(p) for p in zip(pairs["a"], pairs["b"])}
    assert frozenset({"reencode.mkv", "src.mp4"}) in found
    html = _outputs_html(dedup_run)
    assert "Indexing" in html and "plotly-graph-div" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.mp4" in html and "<script>alert(1)" not in html


@pytest.mark.slow
def test_02_explore_corpus(dedup_run, corpus):
    from astradup.orchestration import execute_notebook

    out = execute_notebook("02_explore_corpus", corpus["work"] / "02.ipynb",
                           {"store": str(corpus["store"]), "top_n": 3}, cwd=corpus["work"])
    html = _outputs_html(out)
    assert "Corpus" in html and "EmptyFileError" in html  # the empty file is listed as a failure
    assert "data:image/png;base64," in html or "no thumbnail" in html


@pytest.mark.slow
def test_04_evaluation_report(dedup_run, corpus):
    from astradup.orchestration import render_report

    html = render_report(corpus["store"], corpus["truth"], corpus["pairs"], corpus["work"] / "report",
                         title="tiny corpus", top_n=3)
    page = html.read_text()
    assert "micro average precision" in page
    assert "Alignment:" in page  # explain_pair ran against the store
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.mp4" in page and "<script>alert(1)" not in page


@pytest.mark.slow
def test_03_tune(dedup_run, corpus):
    from astradup.orchestration import execute_notebook

    tuned = corpus["work"] / "tuned.yaml"
    out = execute_notebook(
        "03_tune", corpus["work"] / "03.ipynb",
        {"store": str(corpus["store"]), "truth": str(corpus["truth"]), "pairs": str(corpus["pairs"]),
         "n_trials": 4, "out": str(tuned)},
        cwd=corpus["work"],
    )
    assert tuned.is_file()
    from astradup.config import AstradupConfig

    AstradupConfig.from_file(tuned)  # the written config loads
    assert "Validation metrics" in _outputs_html(out)
