"""One exception hierarchy for everything AstraDup raises on purpose.

Messages say what, where and what was expected, e.g. ``"clips/a.mp4: no video stream (audio only)"``.
Batch work catches :class:`AstradupError`, records it in the store's ``failures`` table and goes on.
"""

from __future__ import annotations

import os


class AstradupError(Exception):
    """Base class of every error AstraDup raises on purpose."""


class ConfigError(AstradupError, ValueError):
    """A configuration value is out of range or of the wrong kind."""


class UnknownBackendError(ConfigError):
    """A registry name (extractor, decoder, model) is not known."""


class StoreError(AstradupError):
    """The DuckDB store is missing, locked, or of an unsupported schema version."""


class IndexError_(AstradupError):
    """A FAISS index could not be built, loaded or searched."""


class MediaError(AstradupError):
    """A media file could not be used. ``path`` names the file; ``reason`` says why."""

    def __init__(self, path: str | os.PathLike[str], reason: str):
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class MissingFileError(MediaError):
    """The path does not exist (or is a dangling symlink)."""


class NotAFileError(MediaError):
    """The path is a directory or another non-regular file."""


class SymlinkLoopError(MediaError):
    """The path is a symbolic link that points back at itself."""


class PermissionDeniedError(MediaError):
    """The file exists but this process may not read it."""


class EmptyFileError(MediaError):
    """The file has zero bytes."""


class UnrecognisedFormatError(MediaError):
    """No demuxer recognises the file (e.g. a text file named ``.mp4``)."""


class CorruptMediaError(MediaError):
    """The container was recognised but is damaged or truncated."""


class NoVideoStreamError(MediaError):
    """The file has no video stream (e.g. audio only)."""


class NoAudioStreamError(MediaError):
    """The file has no audio stream; audio features are missing, not zero."""


class FrameTooLargeError(MediaError):
    """The frame size is over the configured limit (protects memory)."""


class DecodeError(MediaError):
    """The streams were found but no frame could be decoded."""


class ReviewError(AstradupError):
    """A review request cannot be met: a path not in the store, an unknown decision or rule, a
    plan that does not parse. The message names the file or value and what was expected."""


class ActionError(AstradupError):
    """One file of a plan could not be moved, linked or restored. ``path`` names the file;
    ``reason`` says why. Apply and undo record it in the audit log and go on with the rest."""

    def __init__(self, path: str | os.PathLike[str], reason: str):
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class LockedError(ActionError):
    """Another apply or undo holds the store's action lock."""
