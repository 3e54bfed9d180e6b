"""Colour tables: Slicer ``.ctbl``/``.txt`` and ``.csv``/``.labels.csv``, ITK-SNAP ``.txt``/``.label``.

* Slicer ctbl (``vtkMRMLColorTableStorageNode::ReadCtblFile``): ``# comment``
  lines, then ``index name R G B A`` (0-255); ``_`` in names means a space.
* Slicer CSV (Slicer >= 5.10): header ``LabelValue,Name,Color_R,Color_G,Color_B,Color_A``
  plus optional terminology columns ``<Part>_CodingScheme/_CodeValue/_CodeMeaning``.
* ITK-SNAP label description: ``IDX R G B A VIS MSH "LABEL"`` (read only).

``.txt`` is shared with ITK transforms and Slicer's own text colour tables, so
the content decides: the first data line's syntax picks the reader.
"""
from __future__ import annotations

import csv
import io
import math
import os
import re
from pathlib import Path
from typing import Any

from ..core.colortable import TERMINOLOGY_PARTS, ColorEntry, ColorTable
from ..core.errors import FormatError, WriteError
from ..core.fileio import write_text
from ..core.kinds import DataKind
from ..core.registry import FileFormat, register
from ..core.volume import Volume
from ._text import read_text
from .naming import base_name

__all__ = ["read_ctbl", "read_colortable_csv", "write_colortable", "read_itksnap_labels"]

_ITKSNAP_LINE = re.compile(r'^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+([0-9.]+)\s+([01]+)\s+([01]+)\s+"([^"]*)"')
_CTBL_LINE = re.compile(r"^\s*-?\d+\s+\S+\s+[-+0-9.eE]+\s+[-+0-9.eE]+\s+[-+0-9.eE]+(\s+[-+0-9.eE]+)?\s*$")
_CODE_SUFFIXES = ("CodingScheme", "CodeValue", "CodeMeaning")


def _text(path: Path) -> str:
    return read_text(path, "colour table")


def _first_data_line(head: bytes) -> str:
    for line in head.decode("latin-1").splitlines():
        s = line.strip()
        if s and not s.startswith("#"):
            return s
    return ""


def _sniff_ctbl(head: bytes, path: Path) -> bool:
    if b"\x00" in head or not path.name.lower().endswith((".ctbl", ".txt")):
        return False
    if head.lstrip().startswith(b"# Color procedural file"):
        return False
    line = _first_data_line(head)
    return bool(line) and bool(_CTBL_LINE.match(line)) and not _ITKSNAP_LINE.match(line)


def _sniff_itksnap(head: bytes, path: Path) -> bool:
    if b"\x00" in head or not path.name.lower().endswith((".txt", ".label")):
        return False
    line = _first_data_line(head)
    return bool(_ITKSNAP_LINE.match(line))


def _sniff_csv(head: bytes, path: Path) -> bool:
    if not path.name.lower().endswith((".csv", ".tsv")) or b"\x00" in head:
        return False
    first = head.lstrip(b"\xef\xbb\xbf").split(b"\n", 1)[0]
    return first.startswith(b"LabelValue")


def _byte(value: str, path: Path, lineno: int, what: str) -> float:
    try:
        f = float(value)
    except ValueError:
        raise FormatError(path, f"line {lineno}: {what} is not a number: {value!r}") from None
    if not math.isfinite(f):
        raise FormatError(path, f"line {lineno}: {what} is not finite")
    return min(255.0, max(0.0, f)) / 255.0


def read_ctbl(path: str | os.PathLike[str]) -> list[ColorTable]:
    """A Slicer ``.ctbl``/``.txt`` colour table."""
    p = Path(path)
    text = _text(p)
    if text.lstrip().startswith("# Color procedural file"):
        raise FormatError(p, "line 1: procedural colour files are not supported")
    entries: dict[int, ColorEntry] = {}
    big = False
    for lineno, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        parts = s.split()
        if len(parts) < 5:
            raise FormatError(p, f"line {lineno}: expected 'index name R G B A', got {len(parts)} fields")
        try:
            index = int(parts[0])
        except ValueError:
            raise FormatError(p, f"line {lineno}: index {parts[0]!r} is not an integer") from None
        if index < 0:
            raise FormatError(p, f"line {lineno}: negative label value {index}")
        name = parts[1]
        if len(parts) > 6:  # a name with spaces (not what Slicer writes, but seen in hand-made files)
            name = " ".join(parts[1:-4])
            parts = [parts[0], name] + parts[-4:]
        name = name.strip("'")
        name = "" if name == "_" else name.replace("_", " ")
        rgba = [_byte(v, p, lineno, c) for v, c in zip(parts[2:6], "RGBA")]
        if len(rgba) == 3:
            rgba.append(1.0)
        big = big or any(float(v) > 1 for v in parts[2:5])
        entries[index] = ColorEntry(name, tuple(rgba))
    if not entries:
        raise FormatError(p, "the colour table has no entries")
    t = ColorTable(entries=dict(sorted(entries.items())), name=base_name(p), source=os.fspath(p))
    if not big:
        t.metadata["warning"] = "no colour component above 1: the file is possibly malformed"
    return [t]


def read_itksnap_labels(path: str | os.PathLike[str]) -> list[ColorTable]:
    """An ITK-SNAP label description file (``IDX R G B A VIS MSH "LABEL"``)."""
    p = Path(path)
    entries: dict[int, ColorEntry] = {}
    for lineno, line in enumerate(_text(p).splitlines(), start=1):
        if not line.strip() or re.match(r"^\s*#", line):
            continue
        m = _ITKSNAP_LINE.match(line)
        if not m:
            raise FormatError(p, f"line {lineno}: syntax error (expected IDX R G B A VIS MSH \"LABEL\")")
        idx, r, g, b, a = int(m[1]), int(m[2]), int(m[3]), int(m[4]), float(m[5])
        if max(r, g, b) > 255 or not (0 <= a <= 1):
            raise FormatError(p, f"line {lineno}: colour out of range")
        entries[idx] = ColorEntry(m[8], (r / 255, g / 255, b / 255, a),
                                  extra={"visible": m[6] == "1", "mesh": m[7] == "1"})
    if not entries:
        raise FormatError(p, "no labels in the file")
    t = ColorTable(entries=dict(sorted(entries.items())), name=base_name(p), source=os.fspath(p))
    t.metadata["format"] = "itksnap"
    return [t]


def read_colortable_csv(path: str | os.PathLike[str]) -> list[ColorTable]:
    """A Slicer CSV colour table (``LabelValue,Name,Color_R,...`` with optional terminology)."""
    p = Path(path)
    delim = "\t" if p.name.lower().endswith(".tsv") else ","
    reader = csv.reader(io.StringIO(_text(p), newline=""), delimiter=delim)
    rows = [(reader.line_num, r) for r in reader if r]
    if not rows or "LabelValue" not in rows[0][1]:
        raise FormatError(p, "line 1: a CSV colour table needs a 'LabelValue' column")
    header = rows[0][1]
    col = {h: i for i, h in enumerate(header)}
    entries: dict[int, ColorEntry] = {}
    for lineno, row in rows[1:]:
        if len(row) != len(header):
            raise FormatError(p, f"line {lineno}: {len(row)} cells, but the header has {len(header)} columns")

        def cell(name: str, default: str = "", row: list[str] = row) -> str:
            return row[col[name]].strip() if name in col else default

        try:
            value = int(cell("LabelValue"))
        except ValueError:
            raise FormatError(p, f"line {lineno}: LabelValue {cell('LabelValue')!r} is not an integer") from None
        if value < 0:
            raise FormatError(p, f"line {lineno}: negative label value {value}")
        rgba = []
        for c, default in (("Color_R", "0"), ("Color_G", "0"), ("Color_B", "0"), ("Color_A", "255")):
            text = cell(c, default) or default
            try:
                v = int(text)
            except ValueError:
                raise FormatError(p, f"line {lineno}: {c} {text!r} is not an integer") from None
            rgba.append(min(255, max(0, v)) / 255.0)
        term = {}
        for part in TERMINOLOGY_PARTS:
            codes = tuple(cell(f"{part}_{s}") for s in _CODE_SUFFIXES)
            if any(codes):
                term[part] = codes
        entries[value] = ColorEntry(cell("Name"), tuple(rgba), terminology=term)
    t = ColorTable(entries=dict(sorted(entries.items())), name=base_name(p), source=os.fspath(p))
    t.metadata["format"] = "csv"
    return [t]


def _as_colortable(obj: Any, p: Path) -> ColorTable:
    if isinstance(obj, ColorTable):
        return obj
    if isinstance(obj, Volume) and obj.metadata.get("color_table"):
        return ColorTable.from_label_table(obj.metadata["color_table"], name=obj.name)
    if isinstance(obj, Volume):
        raise WriteError(p, "the label map has no label names or colours to write")
    raise WriteError(p, f"a colour table file holds colours, not {type(obj).__name__}")


def _g(x: float) -> str:
    return f"{x * 255.0:.6g}"


def write_colortable(obj: Any, path: str | os.PathLike[str]) -> list[str]:
    """Write a colour table (or a Labels layer's names and colours): ``.ctbl``/``.txt`` or ``.csv``."""
    p = Path(path)
    t = _as_colortable(obj, p)
    if p.name.lower().endswith((".csv", ".tsv")):
        header = ["LabelValue", "Name", "Color_R", "Color_G", "Color_B", "Color_A"]
        header += [f"{part}_{s}" for part in TERMINOLOGY_PARTS for s in _CODE_SUFFIXES]
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n", delimiter="\t" if p.suffix.lower() == ".tsv" else ",")
        w.writerow(header)
        for k, e in sorted(t.entries.items()):
            row = [str(k), e.name] + [str(int(round(c * 255))) for c in e.color]
            for part in TERMINOLOGY_PARTS:
                row += list(e.terminology.get(part, ("", "", "")))
            w.writerow(row)
        text = out.getvalue()
    else:
        lines = [f"# Color table file {os.path.abspath(p)}", f"# {t.size} values"]
        for k, e in sorted(t.entries.items()):
            name = e.name.replace(" ", "_") or "_"
            lines.append(f"{k} {name} " + " ".join(_g(c) for c in e.color))
        text = "\n".join(lines) + "\n"
    return write_text(p, text)


register(FileFormat(
    name="colortable",
    description="3D Slicer colour table (.ctbl, .txt: index name R G B A)",
    extensions=(".ctbl", ".txt"),
    read=read_ctbl,
    write=write_colortable,
    sniff=_sniff_ctbl,
    kinds=(DataKind.COLORTABLE, DataKind.LABELMAP),
    priority=3,
    content_sniff=False,
    backend="python",
))

register(FileFormat(
    name="colortable-csv",
    description="3D Slicer CSV colour table (LabelValue, Name, Color_R..A, terminology)",
    extensions=(".labels.csv", ".csv", ".tsv"),
    read=read_colortable_csv,
    write=write_colortable,
    sniff=_sniff_csv,
    kinds=(DataKind.COLORTABLE,),
    priority=3,
    content_sniff=False,
    backend="python",
))

register(FileFormat(
    name="itksnap-labels",
    description="ITK-SNAP label description file (read only)",
    extensions=(".txt", ".label"),
    read=read_itksnap_labels,
    sniff=_sniff_itksnap,
    kinds=(DataKind.COLORTABLE,),
    priority=3,
    content_sniff=False,
    backend="python",
))
