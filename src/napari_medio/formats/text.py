"""Plain text (``.txt``, ``.xml``, ``.json``) that no real format claims, shown read-only in the Text dock.

A PLUS toolkit configuration (``.plus.xml``) is such a file: Slicer's OpenIGTLink
extension loads it into a text node, and so it opens here (named without
``.plus.xml``).

Registered last in line: priority -10 and ``content_sniff=False``, so every real
format sharing these extensions (ITK transforms, colour tables, markups, volume
property and terminology JSON) is tried first, and a text sniff never picks a file
whose extension lies.  The sniff also refuses heads that start like an image or
container format (see :func:`napari_medio.formats._text.plain_text`).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..core.errors import FormatError
from ..core.kinds import DataKind
from ..core.registry import FileFormat, register
from ..core.text import Text
from ._text import plain_text
from .naming import base_name

__all__ = ["read_text", "MAX_TEXT_BYTES"]

#: Larger files are not loaded into a text view.
MAX_TEXT_BYTES = 64 * 1024 * 1024

#: Heads that belong to a real format of a shared extension: its own reader should report the problem.
_OTHER_FORMAT_HEADS = (b"#Insight Transform File", b"<MRML", b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<MRML")


def read_text(path: str | os.PathLike[str]) -> list[Text]:
    """The file's text; JSON parsed (for display and ``info``) and XML's root element named when well formed."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_TEXT_BYTES:
            raise FormatError(p, f"{size} bytes: too large to show as text (limit {MAX_TEXT_BYTES})")
        raw = p.read_bytes()
    except OSError as exc:
        raise FormatError(p, f"cannot read file: {exc.strerror or exc}") from None
    if not raw.strip():
        raise FormatError(p, "file is empty")
    if b"\x00" in raw:
        raise FormatError(p, f"byte {raw.index(bytes(1))}: binary content (a NUL byte), not text")
    try:
        text, encoding = raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = raw.decode("latin-1"), "latin-1"
    lower = p.name.lower()
    syntax = "json" if lower.endswith(".json") else "xml" if lower.endswith(".xml") else "text"
    obj = Text(text=text, syntax=syntax, encoding=encoding, name=base_name(p), source=os.fspath(p))
    if syntax == "json":
        try:
            obj.parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            obj.syntax = "text"
            obj.metadata["warning"] = f"line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}"
    elif syntax == "xml":
        import xml.etree.ElementTree as ET

        try:
            obj.metadata["root"] = ET.fromstring(raw).tag
        except ET.ParseError as exc:
            line, col = getattr(exc, "position", (0, 0))
            obj.metadata["warning"] = f"line {line}, column {col}: XML is not well formed"
    return [obj]


#: JSON keys of the real JSON formats: a broken file of theirs gets their error, not a text view.
_CLAIMED_JSON_KEYS = (b'"markups"', b'"volumeProperties"', b'"SegmentationCodes"', b'"AnatomicCodes"',
                      b"markups-schema", b"volume-property-schema")


def _sniff(head: bytes, path: Path) -> bool:
    lower = path.name.lower()
    if not lower.endswith((".txt", ".xml", ".json")):
        return False
    from ..core.registry import matching_extension

    if matching_extension(path) not in (".txt", ".xml", ".plus.xml", ".json"):  # .mrk.json, .vp.json, .term.json...
        return False
    body = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if body.startswith(_OTHER_FORMAT_HEADS):
        return False
    if lower.endswith(".json") and any(k in head for k in _CLAIMED_JSON_KEYS):
        return False
    return plain_text(head)


register(FileFormat(
    name="text",
    description="Plain text, XML or JSON that no other format claims (read-only text view)",
    extensions=(".txt", ".xml", ".plus.xml", ".json"),  # .plus.xml: a PLUS toolkit configuration
    read=read_text,
    sniff=_sniff,
    kinds=(DataKind.TEXT,),
    priority=-10,
    content_sniff=False,
    backend="python",
))
