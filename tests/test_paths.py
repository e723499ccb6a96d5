"""Any file name the file system allows survives indexing, the store and ``pairs.csv``.

Linux names are bytes; Python hands them over with ``surrogateescape``. Names with bytes that are
not UTF-8, leading dashes, newlines, quotes and formula-looking text must index like any other,
and read back byte for byte.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from itertools import count
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from astradup.api import Library
from astradup.evaluation import load_pairs
from astradup.execution.stages import task_key
from astradup.paths import from_text, has_escapes, to_text
from tests.conftest import make_video

ROOT = Path(__file__).resolve().parents[1]
#: The three names the issue names: not UTF-8, a leading dash, a newline.
NAMED = [b"caf\xe9 \xff\xfe.mp4", b"-rf --help.mp4", b"two\nlines.mp4"]

# name bytes: anything but "/" and NUL; biased towards the troublesome ones
_special = st.sampled_from([b"-", b"\n", b"\r", b'"', b"'", b"=", b"|", b"+", b"@", b",", b";", b"\\", b" ",
                            b"\t", b"\xff", b"\xe9", b"\xc3", b"\x80", b"=cmd|' /C calc'!A0", "é".encode()])
_any = st.binary(min_size=1, max_size=4).filter(lambda b: b"/" not in b and b"\0" not in b)
NAMES = st.lists(st.one_of(_special, _any), min_size=1, max_size=6).map(lambda parts: b"".join(parts) + b".mp4").filter(
    lambda n: not n.startswith(b".") and len(n) <= 200)


@given(st.binary(max_size=40))
def test_text_form_is_lossless_and_utf8(raw):
    name = os.fsdecode(raw)
    text = to_text(name)
    text.encode("utf-8")  # never raises: the store and CSV can hold it
    assert from_text(text) == name and os.fsencode(from_text(text)) == raw
    assert has_escapes(name) == (text != name)


@given(st.text(max_size=40).filter(lambda s: "\\" not in s and not any("\ud800" <= c <= "\udfff" for c in s)))
def test_valid_utf8_names_are_stored_as_they_are(name):
    assert to_text(name) == name


def test_task_keys_hash_any_name():
    keys = {task_key("extract", os.fsdecode(b"/m/" + n)) for n in NAMED}
    assert len(keys) == 3 and all(k.isascii() and k.startswith("extract-") for k in keys)


@pytest.fixture(scope="module")
def seed_video(tmp_path_factory) -> Path:
    return make_video(tmp_path_factory.mktemp("seed") / "seed.mp4", "mandelbrot", seconds=2, w=64, h=48, r=6, seed=3)


@pytest.fixture(scope="module")
def library(tmp_path_factory, seed_video):
    """One media folder and store shared by the property examples: each example adds one file in
    its own sub-folder and re-indexes (only the new file is extracted)."""
    media = tmp_path_factory.mktemp("names")
    shutil.copyfile(seed_video, media / "ref.mp4")
    lib = Library(media.parent / "names.duckdb")
    assert lib.index(media, eager=True, progress=False).n_indexed == 1
    return media, lib, count()


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=NAMES)
def test_any_name_indexes_and_reads_back(library, seed_video, name):
    media, lib, n = library
    sub = media / f"e{next(n)}"
    sub.mkdir()
    target = os.path.join(os.fsencode(sub), name)
    try:
        shutil.copyfile(seed_video, target)
    except OSError:  # a name this file system refuses (too long in its encoding)
        assume(False)
    summary = lib.index(media, eager=True, progress=False)
    assert (summary.n_indexed, summary.n_failed) == (1, 0)
    videos = lib.videos()
    rel = os.fsencode(os.path.join(sub.name, os.fsdecode(name)))
    stored = videos["rel_path"].map(lambda t: os.fsencode(from_text(t)))
    assert (stored == rel).sum() == 1
    row = videos[stored == rel].iloc[0]
    assert os.fsencode(from_text(row["path"])) == target


@pytest.mark.slow
@pytest.mark.cluster
def test_cli_indexes_named_cases_on_dask_and_writes_them_to_pairs_csv(tmp_path, seed_video):
    """The three names through ``astradup index`` (Dask LocalCluster) and ``astradup match``."""
    media = tmp_path / "media"
    media.mkdir()
    for name in NAMED:
        shutil.copyfile(seed_video, os.path.join(os.fsencode(media), name))
    store, out = tmp_path / "s.duckdb", tmp_path / "pairs.csv"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cli = [sys.executable, "-m", "astradup.cli"]
    r = subprocess.run([*cli, "index", str(media), "--store", str(store), "--workers", "1", "--quiet"],
                       capture_output=True, env=env, timeout=900)
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-3000:]
    assert b"indexed          3" in r.stdout and b"failed           0" in r.stdout
    r = subprocess.run([*cli, "match", "--store", str(store), "--out", str(out), "--min-score", "0", "--quiet"],
                       capture_output=True, env=env, timeout=900)
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-3000:]
    pairs = load_pairs(out)
    assert len(pairs) == 3  # identical copies: every pair of the three
    names = {os.fsencode(from_text(x)) for x in pd.concat([pairs["a"], pairs["b"]])}
    assert names == set(NAMED)
    assert "caf\\xe9 \\xff\\xfe.mp4" in set(pairs["a"]) | set(pairs["b"])  # shown escaped
