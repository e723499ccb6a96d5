"""Acting on a plan, journaled: apply moves files to a quarantine (or replaces them with links to
the keeper), undo puts them back. AstraDup never deletes user media.

Every file goes through the same steps, and each step is written to the store's append-only
``audit`` table *before* the file is touched:

1. **check**: the file and its keeper are unchanged since the plan (size, mtime, content hash),
   the file is not on legal hold and the quarantine slot is free; otherwise the entry is
   ``refused`` with the reason and the rest go on.
2. **intent** is logged (who, when, what, from where to where; the plan and its rules are in
   the ``actions`` row of this apply).
3. the file is moved into ``QUARANTINE/<action_id>/<path relative to the media folder>``: a
   rename on the same file system; across file systems a copy, fsync, full-content verify, and
   only then removal of the original. In ``hardlink``/``symlink`` mode a link to the keeper is
   made first under a hidden temporary name and renamed over the original's path once the
   original is safe in quarantine.
4. **done** is logged and a tombstone keeps the file's fingerprints, so a copy that comes back
   later is flagged (:func:`astradup.review.groups.known_removed`).

A failure at step 3 rolls the file back and logs ``failed`` with the reason. A crash (even
``kill -9``) leaves ``intent`` without ``done``: :func:`undo` replays the log backwards and
restores each file from whatever state it finds (original in place, copy half-made, link made,
file in quarantine), so the same bytes come back with the same mtime. Files AstraDup removes are
only its own: a link it made, a half-made or verified-redundant copy in the quarantine.

Only one apply or undo acts on a store at a time: an exclusive ``flock`` on ``<store>.lock``
(released by the kernel if the process dies) and DuckDB's own single-writer lock on the store.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import getpass
import hashlib
import json
import logging
import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from astradup.errors import ActionError, LockedError, MediaError, ReviewError
from astradup.media.files import content_hash
from astradup.paths import from_text, to_text
from astradup.review.plan import read_plan
from astradup.store.decisions import has_table
from astradup.store.store import Store

log = logging.getLogger(__name__)

MODES = ("quarantine", "hardlink", "symlink")
PAUSE_ENV = "ASTRADUP_TEST_APPLY_PAUSE"
"""Test hook: seconds to sleep after each intent is logged, so a test can kill an apply mid-way."""
GATE_ENV = "ASTRADUP_TEST_APPLY_GATE"
"""Test hook: after each intent is logged, wait while the file this names exists."""
PARTIAL = ".astradup-partial"
EVENTS = ("refused", "intent", "done", "failed", "undo-intent", "undone", "undo-failed")
AUDIT_COLUMNS = ["seq", "action_id", "item", "event", "op", "src", "dst", "keeper", "size", "mtime_ns",
                 "content_hash", "message", "who", "time"]


@dataclass
class ActionResult:
    """What an apply or undo did: one row per plan entry touched (item, path, dst, status,
    message) and the action ids involved."""

    action_ids: list[str]
    rows: pd.DataFrame
    bytes_moved: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [f"action   {', '.join(self.action_ids) or '-'}"]
        out += [f"{k:8s} {v}" for k, v in sorted(self.counts.items())]
        if self.bytes_moved:
            out.append(f"bytes    {self.bytes_moved:,}")
        for r in self.rows.itertuples():
            if r.status not in ("done", "undone"):
                out.append(f"  {r.status}: {r.message}")
        return out


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC).replace(tzinfo=None)


# -- files -------------------------------------------------------------------------------------

def file_digest(path: str | os.PathLike[str]) -> str:
    """BLAKE2b of the whole file (the copy check reads every byte, unlike the store's hash)."""
    h = hashlib.blake2b(digest_size=32)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def move_file(src: str | os.PathLike[str], dst: str | os.PathLike[str], *, force_copy: bool = False) -> str:
    """Move one file, never leaving it nowhere. Returns ``"rename"`` or ``"copy"``.

    On one file system this is ``os.rename`` (atomic). Across file systems (or with
    ``force_copy``) the file is copied to ``dst + ".astradup-partial"``, fsynced, its mtime and
    mode copied, its whole content compared with the original's, renamed to ``dst``, and only
    then is the original unlinked. ``dst`` must not exist.
    """
    src, dst = Path(src), Path(dst)
    if os.path.lexists(dst):
        raise ActionError(dst, "already exists; not overwritten")
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not force_copy:
        try:
            os.rename(src, dst)
            _fsync_dir(dst.parent)
            _fsync_dir(src.parent)
            return "rename"
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
    part = dst.with_name(dst.name + PARTIAL)
    with open(src, "rb") as fi, open(part, "xb") as fo:
        shutil.copyfileobj(fi, fo, 1 << 22)
        fo.flush()
        os.fsync(fo.fileno())
    shutil.copystat(src, part)
    if file_digest(part) != file_digest(src):
        part.unlink()
        raise ActionError(src, f"the copy at {dst} did not match the original; original left in place")
    os.rename(part, dst)
    _fsync_dir(dst.parent)
    os.unlink(src)
    _fsync_dir(src.parent)
    return "copy"


def _matches(path: str, size: int, mtime_ns: int, digest: str) -> bool:
    try:
        st = os.stat(path)
        return st.st_size == size and st.st_mtime_ns == mtime_ns and content_hash(path, st.st_size) == digest
    except (OSError, MediaError):
        return False


def _link_tmp(src: Path) -> Path:
    return src.with_name(f".{src.name}.astradup-link")


# -- the lock ----------------------------------------------------------------------------------

@contextlib.contextmanager
def action_lock(store_path: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold the store's action lock (``<store>.lock``, an exclusive flock) or raise LockedError."""
    import fcntl

    lock = Path(f"{store_path}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            raise LockedError(lock, f"another apply or undo (pid {holder}) is acting on this store; "
                                    "wait for it to finish") from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield lock
    finally:
        os.close(fd)  # closing releases the flock; the file stays (unlinking it would race)


# -- the journal -------------------------------------------------------------------------------

def _log(st: Store, action_id: str, item: int, event: str, e: dict[str, Any], message: str = "", who: str = "") -> None:
    """Append one audit event (autocommitted: durable before the caller acts)."""
    message = message.encode("utf-8", "backslashreplace").decode("utf-8")  # OS messages may hold raw names
    st.con.execute(
        f"INSERT INTO audit ({', '.join(AUDIT_COLUMNS)}) SELECT coalesce(max(seq), 0) + 1, "
        + ", ".join("?" * (len(AUDIT_COLUMNS) - 1)) + " FROM audit",
        [action_id, item, event, e.get("op"), e.get("src"), e.get("dst"), e.get("keeper"), e.get("size"),
         e.get("mtime_ns"), e.get("content_hash"), message, who, _now()],
    )


def audit_log(store: Store, action_id: str | None = None) -> pd.DataFrame:
    """The audit table (every event, oldest first), optionally of one action."""
    if not has_table(store, "audit"):
        return pd.DataFrame(columns=AUDIT_COLUMNS)
    if action_id is None:
        return store.sql("SELECT * FROM audit ORDER BY seq")
    return store.sql("SELECT * FROM audit WHERE action_id = ? ORDER BY seq", [action_id])


def action_history(store: Store) -> pd.DataFrame:
    """One row per apply: action_id, who, time, mode, quarantine, plan_path, host, and how many of
    its files are moved now (``in_quarantine``)."""
    if not has_table(store, "actions"):
        return pd.DataFrame(columns=["action_id", "who", "time", "mode", "quarantine", "plan_path", "host", "in_quarantine"])
    return store.sql("""
        WITH last AS (SELECT action_id, item, arg_max(event, seq) AS event FROM audit GROUP BY action_id, item)
        SELECT a.action_id, a.who, a.time, a.mode, a.quarantine, a.plan_path, a.host,
               count(*) FILTER (WHERE l.event IN ('intent', 'done', 'undo-intent', 'undo-failed')) AS in_quarantine
        FROM actions a LEFT JOIN last l USING (action_id)
        GROUP BY ALL ORDER BY a.time""")


# -- apply -------------------------------------------------------------------------------------

def _under(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def _check_entry(e: dict, grp: dict, media_root: str, holds: list[str], qdir: str) -> str | None:
    """Why this plan entry must not be acted on, or None. Paths are as the store spells them
    (:func:`astradup.paths.to_text`); the file system is asked with :func:`from_text`."""
    src, rel = e["abs_path"], e["path"]
    fs = from_text(src)
    if not rel or os.path.isabs(rel) or os.path.normpath(rel).split(os.sep)[0] == "..":
        return f"{rel}: not a path inside the media folder"
    if os.path.normpath(os.path.join(media_root, rel)) != os.path.normpath(src):
        return f"{src}: does not match its media-relative path {rel} under {media_root}"
    if _under(src, holds):
        return f"{src}: on legal hold; never moved"
    if not grp.get("keeper") or grp["keeper"] == rel:
        return f"{src}: the plan names no other keeper for it"
    if os.path.islink(fs):
        return f"{src}: is a symbolic link now; not moved"
    if not os.path.lexists(fs):
        return f"{src}: vanished since the plan was made (moved or deleted)"
    if not _matches(fs, e["size"], e["mtime_ns"], e["content_hash"]):
        return f"{src}: changed since the plan was made (size, mtime or content hash differ); not moved"
    kabs = grp["keeper_abs"]
    if not kabs or not _matches(from_text(kabs), grp["keeper_size"], grp["keeper_mtime_ns"], grp["keeper_hash"]):
        return f"{src}: its keeper {kabs} changed or vanished since the plan was made; not moved"
    dst = from_text(f"{qdir}/{rel}")
    if os.path.lexists(dst) or os.path.lexists(dst + PARTIAL):
        return f"{src}: the quarantine already holds {dst}; not overwritten"
    return None


def _act(e: dict) -> None:
    """Step 3 for one entry (see the module docstring)."""
    src, dst, op, keeper = Path(from_text(e["src"])), Path(from_text(e["dst"])), e["op"], from_text(e["keeper"])
    tmp = _link_tmp(src)
    try:
        if op == "hardlink":
            os.link(keeper, tmp)
        elif op == "symlink":
            os.symlink(keeper, tmp)
    except OSError as exc:
        raise ActionError(e["src"], f"cannot make a {op[:-4]} link to {e['keeper']} ({exc.strerror}); nothing moved") from exc
    try:
        move_file(src, dst)
    except PermissionError as exc:
        raise ActionError(e["src"], f"permission denied moving it to the quarantine ({exc.strerror}; is the media "
                                    "folder read-only?); left in place") from exc
    except ActionError as exc:
        raise ActionError(e["src"], f"{exc.reason}; left in place") from exc
    except OSError as exc:
        raise ActionError(e["src"], f"cannot move it to {e['dst']} ({exc.strerror or exc}); left in place") from exc
    if op != "quarantine":
        os.replace(tmp, src)


def apply_plan(plan: str | os.PathLike[str] | dict, quarantine: str | os.PathLike[str], *,
               mode: str = "quarantine", store: str | os.PathLike[str] | None = None,
               hold: list[str] | None = None, who: str | None = None) -> ActionResult:
    """Carry out a plan's removals: move each file to ``quarantine`` (``mode="quarantine"``) or
    replace it with a link to its keeper (``"hardlink"``/``"symlink"``, original kept in
    quarantine). Files that changed, moved or vanished since the plan are refused; the rest are
    acted on. See the module docstring for the steps and the journal.

    Args:
        plan: a plan file from ``astradup plan`` (or the dict :func:`make_plan` returned).
        quarantine: folder for the moved files (created); not inside the media folder.
        mode: one of :data:`MODES`.
        store: the store to journal in (default: the store the plan was made from).
        hold: more files or folders never to move (on top of the plan's holds).
        who: recorded as the actor (default: the login name).
    """
    if mode not in MODES:
        raise ReviewError(f"mode {mode!r} is unknown; choose one of {list(MODES)}")
    plan_path = None
    if not isinstance(plan, dict):
        plan_path = str(Path(plan).resolve())
        plan = read_plan(plan)
    store_path = Path(store or plan["store"])
    media_root = plan.get("media_root") or ""
    holds = [*plan.get("holds", []), *[to_text(os.path.abspath(h)) for h in hold or []]]
    qroot = Path(quarantine).resolve()
    if qroot.exists() and not qroot.is_dir():
        raise ActionError(qroot, "the quarantine is not a folder")
    if media_root and _under(to_text(qroot), [media_root]):
        raise ActionError(qroot, f"the quarantine is inside the media folder {media_root}; choose a folder "
                                 "outside it (its files would be indexed again)")
    who = who or _user()
    action_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    qdir = f"{to_text(qroot)}/{action_id}"  # text, as the store spells paths
    pause = float(os.environ.get(PAUSE_ENV, "0") or 0)
    gate = os.environ.get(GATE_ENV)
    rows: list[dict] = []
    moved = 0
    with action_lock(store_path), Store(store_path) as st:
        st.con.execute("INSERT INTO actions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       [action_id, who, _now(), mode, to_text(qroot), plan_path and to_text(plan_path), json.dumps(plan),
                        json.dumps(plan.get("rules", {})), socket.gethostname(), os.getpid()])
        item = 0
        for grp in plan["groups"]:
            for e in grp["entries"]:
                if e.get("action") != "remove":
                    continue
                item += 1
                ev = {"op": mode, "src": e["abs_path"], "dst": f"{qdir}/{e['path']}", "keeper": grp.get("keeper_abs"),
                      "size": e.get("size"), "mtime_ns": e.get("mtime_ns"), "content_hash": e.get("content_hash")}
                why = _check_entry(e, grp, media_root, holds, qdir)
                if why:
                    _log(st, action_id, item, "refused", ev, why, who)
                    rows.append({"item": item, "path": e["abs_path"], "dst": ev["dst"], "status": "refused", "message": why})
                    log.warning("%s", why)
                    continue
                _log(st, action_id, item, "intent", ev, "", who)
                if pause:
                    time.sleep(pause)
                while gate and os.path.exists(gate):
                    time.sleep(0.05)
                try:
                    _act(ev)
                except (ActionError, OSError) as exc:
                    msg = str(exc)
                    try:
                        _restore(ev)
                    except (ActionError, OSError) as exc2:
                        msg += f"; rolling back also failed ({exc2}): run `astradup undo --action {action_id}`"
                    _log(st, action_id, item, "failed", ev, msg, who)
                    rows.append({"item": item, "path": e["abs_path"], "dst": ev["dst"], "status": "failed", "message": msg})
                    log.warning("%s", msg)
                    continue
                _log(st, action_id, item, "done", ev, "", who)
                _tombstone(st, action_id, item, e, grp)
                moved += int(e.get("size") or 0)
                rows.append({"item": item, "path": e["abs_path"], "dst": ev["dst"], "status": "done", "message": ""})
    df = pd.DataFrame(rows, columns=["item", "path", "dst", "status", "message"])
    return ActionResult([action_id], df, moved, df["status"].value_counts().to_dict())


def _tombstone(st: Store, action_id: str, item: int, e: dict, grp: dict) -> None:
    row = st.con.execute("SELECT d.embedding FROM videos v LEFT JOIN descriptors d USING (video_id) WHERE v.path = ?",
                         [e["abs_path"]]).fetchone()
    st.con.execute("INSERT INTO tombstones VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   [action_id, item, e["abs_path"], e["path"], e.get("size"), e.get("content_hash"),
                    row[0] if row else None, grp.get("keeper_abs"), _now()])


# -- undo --------------------------------------------------------------------------------------

def _restore(e: dict) -> str:
    """Put one file back from whatever state an apply left it in. Returns what was done."""
    src, dst, op = Path(from_text(e["src"])), Path(from_text(e["dst"])), e["op"]
    keeper = from_text(e["keeper"]) if e.get("keeper") else None
    size, mtime_ns, digest = int(e["size"]), int(e["mtime_ns"]), e["content_hash"]
    part = Path(str(dst) + PARTIAL)
    tmp = _link_tmp(src)
    if os.path.lexists(tmp):
        os.unlink(tmp)  # a link this apply made and had not yet put in place
    if os.path.lexists(src):
        ours_link = (op == "symlink" and os.path.islink(src) and os.readlink(src) == keeper) or (
            op == "hardlink" and not os.path.islink(src) and keeper and os.path.exists(keeper)
            and os.path.samefile(src, keeper))
        if ours_link and os.path.exists(dst):
            os.unlink(src)
        elif _matches(str(src), size, mtime_ns, digest):
            if part.exists():
                part.unlink()  # a half-made copy of ours
            if dst.exists():
                if file_digest(dst) != file_digest(src):
                    raise ActionError(e["dst"], f"differs from the original back in place at {e['src']}; both left as they are")
                dst.unlink()  # our verified copy: the original never left
            return "the original was still in place"
        else:
            raise ActionError(e["src"], f"something else is at this path now; left as is (the original is at {e['dst']})")
    if not dst.exists():
        raise ActionError(e["src"], f"neither in place nor in the quarantine at {e['dst']}")
    if not _matches(str(dst), size, mtime_ns, digest):
        raise ActionError(e["dst"], "the quarantined file changed since it was moved; not restored")
    move_file(dst, src)
    if part.exists():
        part.unlink()
    st = os.stat(src)
    if st.st_mtime_ns != mtime_ns:
        os.utime(src, ns=(st.st_atime_ns, mtime_ns))
    return "restored"


def undo(store: str | os.PathLike[str], action_id: str | None = None, *, all_: bool = False,
         who: str | None = None) -> ActionResult:
    """Put back the files of one apply (``action_id``), of every apply (``all_``), or of the latest
    one (neither), newest first, from whatever state each was left in (an apply killed mid-way
    included). Each restore is journaled (undo-intent, then undone or undo-failed); a file that
    cannot be restored is reported and the rest go on.
    """
    who = who or _user()
    rows: list[dict] = []
    ids: list[str] = []
    with action_lock(store), Store(store) as st:
        acts = st.sql("SELECT action_id FROM actions ORDER BY time DESC, action_id DESC")["action_id"].tolist()
        if action_id is not None:
            if action_id not in acts:
                raise ReviewError(f"action {action_id!r} is not in the store {store}; known: {acts[:10]}")
            ids = [action_id]
        elif all_:
            ids = acts
        else:
            ids = acts[:1]
        for aid in ids:
            log_df = st.sql("SELECT * FROM audit WHERE action_id = ? ORDER BY seq", [aid])
            last = log_df.groupby("item").tail(1).sort_values("item", ascending=False)
            for r in last.to_dict("records"):
                if r["event"] in ("refused", "undone"):
                    continue
                ev = {k: r[k] for k in ("op", "src", "dst", "keeper", "size", "mtime_ns", "content_hash")}
                _log(st, aid, int(r["item"]), "undo-intent", ev, "", who)
                try:
                    how = _restore(ev)
                except (ActionError, OSError) as exc:
                    _log(st, aid, int(r["item"]), "undo-failed", ev, str(exc), who)
                    rows.append({"item": r["item"], "path": r["src"], "dst": r["dst"], "status": "undo-failed", "message": str(exc)})
                    log.warning("%s", exc)
                    continue
                _log(st, aid, int(r["item"]), "undone", ev, how, who)
                st.con.execute("DELETE FROM tombstones WHERE action_id = ? AND item = ?", [aid, int(r["item"])])
                rows.append({"item": r["item"], "path": r["src"], "dst": r["dst"], "status": "undone", "message": how})
    df = pd.DataFrame(rows, columns=["item", "path", "dst", "status", "message"])
    return ActionResult(ids, df, 0, df["status"].value_counts().to_dict())
