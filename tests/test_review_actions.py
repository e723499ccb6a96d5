"""apply / undo: journaled, undoable, refusing what changed, never touching held files, safe
across file systems, after kill -9, and against a second concurrent apply."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from astradup.errors import ActionError, LockedError
from astradup.paths import from_text, to_text
from astradup.review import actions as actions_mod
from astradup.review import apply_plan, audit_log, make_plan, undo
from astradup.review.actions import GATE_ENV, PAUSE_ENV, action_lock, move_file
from astradup.store import Store
from tests.review_helpers import library, retarget, snapshot

ODD = "odd names/ü 'q' \"dq\" [1] $x; a\tb.mp4"
BAD = os.fsdecode(b"odd names/not utf-8 \xff\\ -x.mp4")  # a byte that is not UTF-8, and a backslash


@pytest.fixture(scope="module")
def planned(media_dir, tmp_path_factory):
    """An indexed library with two extra byte copies (one under an awkward name) and its plan."""
    root = tmp_path_factory.mktemp("actions")
    corpus, store = library(media_dir, root, {"copies/src copy.mp4": "src.mp4", ODD: "reencode.mkv", BAD: "src.mp4"})
    with Store(store, read_only=True) as st:
        plan = make_plan(st)
    removes = [e["path"] for g in plan["groups"] for e in g["entries"] if e["action"] == "remove"]
    assert len(removes) >= 3 and to_text(BAD) in removes and to_text(BAD) != BAD
    assert ODD in {e["path"] for g in plan["groups"] for e in g["entries"]}
    return corpus, plan


@pytest.fixture
def work(planned, tmp_path):
    """A private copy of the media folder (mtimes kept), a fresh store and the plan pointed at them."""
    corpus, plan = planned
    media = tmp_path / "media"
    shutil.copytree(corpus, media)
    store = tmp_path / "s.duckdb"
    p = retarget(plan, corpus, media, store)
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(p))
    return media, store, p, plan_file, tmp_path / "quarantine"


def qpath(q: Path, action_id: str, rel: str) -> Path:
    """Where apply puts a file: QUARANTINE/<action id>/<path as the store spells it>, on disk."""
    return Path(from_text(f"{to_text(q)}/{action_id}/{rel}"))


def removals(plan):
    return [e for g in plan["groups"] for e in g["entries"] if e["action"] == "remove"]


def test_apply_then_undo_restores_every_file_byte_for_byte_with_mtimes(work):
    media, store, plan, plan_file, q = work
    before = snapshot(media)
    res = apply_plan(plan_file, q)
    assert res.counts == {"done": len(removals(plan))}
    for e in removals(plan):
        assert not os.path.lexists(from_text(e["abs_path"]))
        moved = qpath(q, res.action_ids[0], e["path"])
        b = before[from_text(e["path"])]
        assert moved.read_bytes() == b[0] and moved.stat().st_mtime_ns == b[1]
    kept = snapshot(media)
    assert set(before) - set(kept) == {from_text(e["path"]) for e in removals(plan)}
    assert all(kept[k] == before[k] for k in kept)
    with Store(store, read_only=True) as st:
        log = audit_log(st)
        tomb = st.sql("SELECT rel_path, size, content_hash FROM tombstones")
        act = st.sql("SELECT * FROM actions")
    assert log["event"].tolist() == ["intent", "done"] * len(removals(plan))
    assert sorted(tomb["rel_path"]) == sorted(e["path"] for e in removals(plan))
    assert json.loads(act["plan"][0])["totals"] == plan["totals"] and act["mode"][0] == "quarantine"
    res2 = undo(store)
    assert res2.action_ids == res.action_ids and res2.counts == {"undone": len(removals(plan))}
    assert snapshot(media) == before
    with Store(store, read_only=True) as st:
        assert audit_log(st)["event"].tolist()[-2:] == ["undo-intent", "undone"]
        assert st.sql("SELECT count(*) AS n FROM tombstones")["n"][0] == 0
    # undo again: nothing left to do
    assert undo(store).counts == {}


@pytest.mark.parametrize("mode", ["hardlink", "symlink"])
def test_link_modes_leave_a_link_to_the_keeper_and_undo_restores_the_original(work, mode):
    media, store, plan, plan_file, q = work
    before = snapshot(media)
    res = apply_plan(plan_file, q, mode=mode)
    assert res.counts == {"done": len(removals(plan))}
    for g in plan["groups"]:
        for e in g["entries"]:
            if e["action"] == "remove":
                assert os.path.samefile(from_text(e["abs_path"]), from_text(g["keeper_abs"]))
                assert os.path.islink(from_text(e["abs_path"])) == (mode == "symlink")
                assert qpath(q, res.action_ids[0], e["path"]).read_bytes() == before[from_text(e["path"])][0]
    assert not [p for p in media.rglob(".*astradup-link")]
    undo(store, res.action_ids[0])
    assert snapshot(media) == before and not any(os.path.islink(p) for p in media.rglob("*"))


def test_changed_or_vanished_files_are_refused_and_the_rest_applied(work):
    media, store, plan, plan_file, q = work
    rm = removals(plan)
    changed, vanished = Path(from_text(rm[0]["abs_path"])), Path(from_text(rm[1]["abs_path"]))
    with open(changed, "r+b") as fh:  # same size, same mtime, different bytes
        fh.seek(10)
        b = fh.read(1)
        fh.seek(10)
        fh.write(bytes([b[0] ^ 0xFF]))
    os.utime(changed, ns=(rm[0]["mtime_ns"], rm[0]["mtime_ns"]))
    vanished.rename(vanished.with_name("elsewhere.bin"))
    res = apply_plan(plan_file, q)
    status = dict(zip(res.rows["path"], res.rows["status"]))
    assert status[rm[0]["abs_path"]] == "refused" and status[rm[1]["abs_path"]] == "refused"
    msgs = " ".join(res.rows["message"])
    assert f"{rm[0]['abs_path']}: changed since the plan" in msgs and f"{rm[1]['abs_path']}: vanished since the plan" in msgs
    assert changed.exists()
    others = [e for e in rm[2:]]
    assert all(status[e["abs_path"]] == "done" and not os.path.exists(from_text(e["abs_path"])) for e in others)


def test_held_files_are_never_moved_and_a_keeper_that_changed_blocks_its_group(work):
    media, store, plan, plan_file, q = work
    rm = removals(plan)
    res = apply_plan(plan_file, q, hold=[from_text(rm[0]["abs_path"]), str(Path(from_text(rm[1]["abs_path"])).parent)])
    status = dict(zip(res.rows["path"], res.rows["status"]))
    assert status[rm[0]["abs_path"]] == "refused" and os.path.exists(from_text(rm[0]["abs_path"]))
    assert status[rm[1]["abs_path"]] == "refused" and "legal hold" in " ".join(res.rows["message"])
    undo(store)
    # a keeper touched after the plan: its group's removals are refused
    g = next(g for g in plan["groups"] if any(e["action"] == "remove" for e in g["entries"]))
    os.utime(from_text(g["keeper_abs"]), (1, 1))
    res = apply_plan(plan_file, q)
    blocked = [e["abs_path"] for e in g["entries"] if e["action"] == "remove"]
    assert all(dict(zip(res.rows["path"], res.rows["status"]))[p] == "refused" for p in blocked)
    assert "its keeper" in " ".join(res.rows["message"])


def test_quarantine_inside_the_media_folder_is_refused(work):
    media, store, plan, plan_file, q = work
    with pytest.raises(ActionError, match="inside the media folder"):
        apply_plan(plan_file, media / "trash")


def test_move_file_across_file_systems_copies_verifies_then_removes(tmp_path):
    src = tmp_path / "a b.bin"
    src.write_bytes(os.urandom(3 << 20))
    os.utime(src, ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    data = src.read_bytes()
    dst = tmp_path / "q" / "sub" / "a b.bin"
    assert move_file(src, dst, force_copy=True) == "copy"
    assert not src.exists() and dst.read_bytes() == data and dst.stat().st_mtime_ns == 1_600_000_000_123_456_789
    assert not list(tmp_path.rglob("*.astradup-partial"))
    with pytest.raises(ActionError, match="already exists"):
        dst2 = tmp_path / "x.bin"
        dst2.write_bytes(b"x")
        move_file(dst, dst2)


def test_apply_and_undo_to_a_quarantine_on_another_file_system(work):
    media, store, plan, plan_file, _ = work
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(media).st_dev:
        pytest.skip("no second file system (tmpfs at /dev/shm) to move across")
    q = Path(shm) / f"astradup-test-{os.getpid()}-{time.time_ns()}"
    try:
        before = snapshot(media)
        res = apply_plan(plan_file, q)
        assert res.counts == {"done": len(removals(plan))}
        assert all(qpath(q, res.action_ids[0], e["path"]).exists() and not os.path.exists(from_text(e["abs_path"]))
                   for e in removals(plan))
        undo(store)
        assert snapshot(media) == before
    finally:
        shutil.rmtree(q, ignore_errors=True)


def test_a_file_that_cannot_be_moved_fails_alone_with_a_clear_error(work, monkeypatch):
    media, store, plan, plan_file, q = work
    rm = removals(plan)
    real = actions_mod.move_file

    def read_only_for_first(src, dst, **kw):
        if str(src) == from_text(rm[0]["abs_path"]):
            raise PermissionError(13, "Permission denied", str(src))
        return real(src, dst, **kw)

    monkeypatch.setattr(actions_mod, "move_file", read_only_for_first)
    res = apply_plan(plan_file, q)
    row = res.rows.set_index("path").loc[rm[0]["abs_path"]]
    assert row["status"] == "failed" and row["message"].startswith(f"{rm[0]['abs_path']}: permission denied")
    assert os.path.exists(from_text(rm[0]["abs_path"]))
    assert (res.rows["status"] == "done").sum() == len(rm) - 1


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores folder permissions")
def test_read_only_media_folder_gives_a_clear_error_per_file(work):
    media, store, plan, plan_file, q = work
    folders = {Path(from_text(e["abs_path"])).parent for e in removals(plan)}
    for f in folders:
        f.chmod(0o555)
    try:
        res = apply_plan(plan_file, q)
    finally:
        for f in folders:
            f.chmod(0o755)
    assert (res.rows["status"] == "failed").all()
    assert all("permission denied" in m for m in res.rows["message"])
    assert all(os.path.exists(from_text(e["abs_path"])) for e in removals(plan))


def _apply_cmd(plan_file: Path, q: Path) -> list[str]:
    return [sys.executable, "-m", "astradup.cli", "apply", str(plan_file), "--quarantine", str(q), "--yes"]


def _env(pause: float, gate: Path | None = None) -> dict[str, str]:
    env = {**os.environ, PAUSE_ENV: str(pause), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    if gate is not None:
        env[GATE_ENV] = str(gate)
    return env


def _wait(cond, timeout: float = 120.0) -> None:
    t = time.monotonic()
    while not cond():
        if time.monotonic() - t > timeout:
            raise TimeoutError("condition not met")
        time.sleep(0.05)


def test_kill_9_during_apply_then_undo_restores_everything(work):
    media, store, plan, plan_file, q = work
    before = snapshot(media)
    rm = removals(plan)
    proc = subprocess.Popen(_apply_cmd(plan_file, q), env=_env(3.0), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait(lambda: not os.path.exists(from_text(rm[0]["abs_path"])) or proc.poll() is not None)
        time.sleep(1.5)  # inside the next file's pause: its intent is logged, the file not yet moved
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not os.path.exists(from_text(rm[0]["abs_path"])) and os.path.exists(from_text(rm[-1]["abs_path"]))
    with Store(store, read_only=True) as st:
        events = audit_log(st)["event"].tolist()
    assert events[:2] == ["intent", "done"] and events[-1] == "intent"
    res = undo(store)
    assert res.counts == {"undone": events.count("intent")}
    assert snapshot(media) == before


def test_two_concurrent_applies_cannot_both_act(work):
    media, store, plan, plan_file, q = work
    rm = removals(plan)
    gate = plan_file.with_name("gate")
    gate.touch()  # the first apply waits after its first intent until the gate is gone
    first = subprocess.Popen(_apply_cmd(plan_file, q), env=_env(0, gate), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait(lambda: Path(f"{store}.lock").exists() and Path(f"{store}.lock").read_text().strip() == str(first.pid)
              or first.poll() is not None)
        assert first.poll() is None, first.communicate()
        second = subprocess.run(_apply_cmd(plan_file, q), env=_env(0), capture_output=True, text=True, timeout=300)
    finally:
        gate.unlink()
        out, err = first.communicate(timeout=300)
    assert second.returncode == 2 and "another apply or undo" in second.stderr and f"pid {first.pid}" in second.stderr
    assert first.returncode == 0, err
    assert all(not os.path.exists(from_text(e["abs_path"])) for e in rm)
    with Store(store, read_only=True) as st:
        assert st.sql("SELECT count(*) AS n FROM actions")["n"][0] == 1
        assert audit_log(st)["event"].tolist().count("done") == len(rm)


def test_action_lock_is_exclusive_and_released(tmp_path):
    store = tmp_path / "s.duckdb"
    with action_lock(store):
        code = ("import sys; from astradup.review.actions import action_lock\n"
                "try:\n    action_lock(sys.argv[1]).__enter__()\nexcept Exception as e:\n    print(type(e).__name__)")
        out = subprocess.run([sys.executable, "-c", code, str(store)], capture_output=True, text=True,
                             env=_env(0)).stdout.strip()
        assert out == "LockedError"
    with action_lock(store):  # released: taken again
        pass
    assert issubclass(LockedError, ActionError)
