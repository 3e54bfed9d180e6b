"""The one exception family of napari-medio.

Every error that bad input can cause is a :class:`MedioError` (a ``ValueError``)
that names the file and says what is wrong, so the viewer can show one line to
the user instead of a traceback from deep inside a library.  A cancel by the
user is not bad input: :class:`CancelledError` stands apart from that family.
"""
from __future__ import annotations

import os


class MedioError(ValueError):
    """Bad input or an impossible request, naming the file and the reason."""

    def __init__(self, path: os.PathLike[str] | str | None, reason: str) -> None:
        self.path: str | None = os.fspath(path) if path is not None else None
        self.reason = reason
        text = f"{self.path}: {reason}" if self.path else reason
        super().__init__(text)


class FormatError(MedioError):
    """A file is not what its extension says, is empty, truncated or corrupt."""


class UnsupportedFormatError(MedioError):
    """No registered format can read or write this file or object."""


class WriteError(MedioError):
    """A file could not be written; the previous file (if any) is intact."""


class OptionError(MedioError):
    """A reader or writer was given a keyword option it does not know (a misspelling, most often)."""


class CancelledError(Exception):
    """A long operation was cancelled by the user: not an error in the input, so not a :class:`MedioError`.

    ``except MedioError`` (or ``ValueError``) does not catch it; code that turns
    any failure into a :class:`MedioError` lets it through unchanged.
    """

    def __init__(self, path: os.PathLike[str] | str | None = None, reason: str = "cancelled") -> None:
        self.path: str | None = os.fspath(path) if path is not None else None
        self.reason = reason
        super().__init__(f"{self.path}: {reason}" if self.path else reason)
