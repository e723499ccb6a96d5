"""Finding media files and checking them before any decoder touches them.

Everything here only reads: nothing moves, rewrites or deletes user media.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import threading
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from pathlib import Path

from astradup.config import VIDEO_EXTENSIONS
from astradup.errors import (
    EmptyFileError,
    MissingFileError,
    NotAFileError,
    PermissionDeniedError,
    SymlinkLoopError,
)

_HASH_CHUNK = 1 << 20  # bytes read from each of the head, middle and tail


def discover(media_dir: str | os.PathLike[str], extensions: tuple[str, ...] = VIDEO_EXTENSIONS) -> list[Path]:
    """Every path under ``media_dir`` whose name ends in a video extension, sorted.

    Directories named like videos and broken links are returned too, so that the caller records
    them as failures rather than silently skipping them. Symlinked directories are not followed.
    """
    root = Path(media_dir)
    if not root.is_dir():
        raise NotAFileError(root, "media folder does not exist or is not a directory")
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False, onerror=None):
        dirnames.sort()
        for name in list(dirnames) + filenames:
            if name.startswith("."):
                continue
            if name.lower().endswith(extensions):
                found.append(Path(dirpath) / name)
    return sorted(found)


def check_file(path: str | os.PathLike[str]) -> os.stat_result:
    """Raise a :class:`MediaError` subclass unless ``path`` is a readable, non-empty regular file."""
    p = os.fspath(path)
    try:
        st = os.stat(p)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SymlinkLoopError(p, "symbolic link loop (the link points back at itself)") from exc
        if exc.errno == errno.EACCES:
            raise PermissionDeniedError(p, "permission denied while looking up the file") from exc
        if os.path.islink(p):
            raise MissingFileError(p, "dangling symbolic link (its target does not exist)") from exc
        raise MissingFileError(p, "file does not exist") from exc
    if stat.S_ISDIR(st.st_mode):
        raise NotAFileError(p, "is a directory, not a video file")
    if not stat.S_ISREG(st.st_mode):
        raise NotAFileError(p, "is not a regular file (device, socket or pipe)")
    if st.st_size == 0:
        raise EmptyFileError(p, "file is empty (0 bytes)")
    try:
        with open(p, "rb") as fh:
            fh.read(1)
    except PermissionError as exc:
        raise PermissionDeniedError(p, "permission denied: the file is not readable by this user") from exc
    return st


def content_hash(path: str | os.PathLike[str], size: int | None = None) -> str:
    """A fast content fingerprint: BLAKE2b over the size and 1 MiB from head, middle and tail.

    Enough to notice an edited or replaced file without reading gigabytes; the store also
    compares size and mtime.
    """
    p = os.fspath(path)
    size = os.path.getsize(p) if size is None else size
    h = hashlib.blake2b(digest_size=16)
    h.update(str(size).encode())
    with open(p, "rb") as fh:
        for offset in sorted({0, max(0, size // 2 - _HASH_CHUNK // 2), max(0, size - _HASH_CHUNK)}):
            fh.seek(offset)
            h.update(fh.read(_HASH_CHUNK))
    return h.hexdigest()



class FileLocks:
    """One lock per file (any hashable key naming it) for threads that share a cache of decoded
    frames: the first thread to ask decodes the file while the others wait for its frames
    instead of decoding it again. A key's lock lives only while a thread holds or waits for it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[Hashable, tuple[threading.Lock, list[int]]] = {}  # key -> (lock, [users])

    @contextmanager
    def hold(self, key: Hashable) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.setdefault(key, (threading.Lock(), [0]))
            users[0] += 1
        try:
            with lock:
                yield
        finally:
            with self._guard:
                users[0] -= 1
                if not users[0]:
                    del self._locks[key]

    def __len__(self) -> int:
        return len(self._locks)
