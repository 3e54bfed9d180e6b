"""Helpers shared by the text and JSON formats (volume property JSON, shader properties, terminology, text).

* :func:`plain_text` - a loose "is this human-readable text" test that also refuses
  heads that start like a known binary or header-plus-binary format, so a text
  sniff never claims an image whose name lies;
* :func:`read_text` - a text file's content, refusing empty and binary files by name;
* :func:`load_json` - a JSON object from a file, with errors naming the file and the line;
* :func:`json_path` - ``a.b[2].c`` from a jsonschema error path.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..core.errors import FormatError
from ..core.fileio import read_content

__all__ = ["BINARY_MAGICS", "plain_text", "read_text", "load_json", "json_path", "json_head"]

#: Starts of files that are images / containers, never "plain text".
BINARY_MAGICS = (
    b"NRRD000", b"\x1f\x8b", b"PK\x03\x04", b"\x89HDF", b"\x89PNG", b"\xff\xd8\xff", b"\x93NUMPY", b"\xfd7zXZ",
    b"# vtk DataFile", b"ObjectType =", b"NDims =",
)


def plain_text(head: bytes) -> bool:
    """True when ``head`` is plausibly UTF-8 / Latin-1 text of a non-binary format."""
    if not head.strip() or b"\x00" in head:
        return False
    body = head.lstrip(b"\xef\xbb\xbf")
    if body.startswith(BINARY_MAGICS) or (len(head) >= 132 and head[128:132] == b"DICM"):
        return False
    control = sum(1 for b in head if b < 9 or 13 < b < 32 or b == 127)
    return control <= len(head) // 200


def json_head(head: bytes) -> bool:
    """The head starts like a JSON object."""
    return head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{") and b"\x00" not in head


def read_text(path: Path, what: str, *, latin1_fallback: bool = True) -> str:
    """The text of ``path`` (UTF-8, BOM allowed; else Latin-1 when ``latin1_fallback``).

    Raises FormatError naming the file when it cannot be read, is empty, or holds
    binary content (``what`` names the expected kind, e.g. "colour table").
    """
    raw = read_content(path)
    if b"\x00" in raw:
        raise FormatError(path, f"binary content, not a {what}")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if latin1_fallback:
            return raw.decode("latin-1")
        raise FormatError(path, f"not UTF-8 text (byte {exc.start})") from None


def load_json(path: Path, what: str) -> Any:
    """The JSON document in ``path``; FormatError (file, line, column) when it is not valid JSON."""
    raw = read_content(path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FormatError(path, f"not UTF-8 text (byte {exc.start})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(path, f"line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}") from None
    if not isinstance(doc, dict):
        raise FormatError(path, f"not a {what}: the top level is not a JSON object")
    return doc


def json_path(parts: Iterable[Any]) -> str:
    """``volumeProperties[0].components[1].lighting`` from a sequence of keys and indices."""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (("." if out else "") + str(p))
    return out or "(top level)"
