"""File names as text that any UTF-8 table can hold, and back, without losing a byte.

A Linux file name is bytes; Python hands it over as ``str``, mapping each byte that is not valid
UTF-8 to a lone surrogate (``surrogateescape``: byte 0xff becomes ``"\\udcff"``). DuckDB, CSV
writers and terminals reject lone surrogates, so the store and ``pairs.csv`` keep names in an
escaped form:

* a byte that is not valid UTF-8 is written ``\\xNN`` (two lower-case hex digits);
* a backslash is doubled (``\\\\``), so the escaping is reversible for every name;
* everything else (any valid UTF-8, newlines, quotes, leading dashes) is kept as it is.

A valid UTF-8 name without a backslash is therefore stored exactly as the file system spells it.

Example:
    >>> import os
    >>> name = os.fsdecode(b"caf\\xe9 \\\\ clip.mp4")
    >>> to_text(name)
    'caf\\\\xe9 \\\\\\\\ clip.mp4'
    >>> from_text(to_text(name)) == name
    True
"""

from __future__ import annotations

import os
import re

_SURROGATE = re.compile("[\udc80-\udcff\\\\]")
_ESCAPE = re.compile(r"\\(\\|x[0-9a-f]{2})")


def _escape(m: re.Match[str]) -> str:
    ch = m.group(0)
    return "\\\\" if ch == "\\" else f"\\x{ord(ch) - 0xDC00:02x}"


def _unescape(m: re.Match[str]) -> str:
    code = m.group(1)
    return "\\" if code == "\\" else chr(0xDC00 + int(code[1:], 16))


def to_text(path: str | os.PathLike[str] | bytes) -> str:
    """``path`` as UTF-8-safe text (the form the store and ``pairs.csv`` hold); see the module doc."""
    s = os.fsdecode(path)
    return _SURROGATE.sub(_escape, s)


def from_text(text: str) -> str:
    """The file-system name ``to_text`` escaped (a ``str`` that ``os.fsencode`` turns into the bytes)."""
    return _ESCAPE.sub(_unescape, text)


def has_escapes(path: str) -> bool:
    """Whether ``to_text(path)`` differs from ``path`` (a byte that is not UTF-8, or a backslash)."""
    return _SURROGATE.search(path) is not None


__all__ = ["from_text", "has_escapes", "to_text"]
