"""Slicer tables: ``.csv`` (comma) and ``.tsv`` (tab), with the ``.schema.csv``/``.schema.tsv`` companion.

``table.csv`` -> ``table.schema.csv`` is found automatically on read
(``vtkMRMLTableStorageNode::GenerateSchemaFileName``) and written when the table
has a schema or any non-string column.  Rows must all have the header's
number of cells (an error names the line otherwise).
"""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

from ..core.errors import FormatError, WriteError
from ..core.fileio import atomic_outputs
from ..core.kinds import DataKind
from ..core.registry import FileFormat, register
from ..core.table import Table
from ._text import read_text
from .naming import base_name

__all__ = ["read_table", "write_table", "schema_path"]

_SCHEMA_COLUMNS = ("columnName", "type", "nullValue", "title", "description", "unitLabel", "componentNames")


def _delimiter(path: Path) -> str:
    return "\t" if path.name.lower().endswith((".tsv", ".txt")) else ","


def schema_path(path: str | os.PathLike[str]) -> Path:
    """``x.csv`` -> ``x.schema.csv`` (``x.tsv`` -> ``x.schema.tsv``)."""
    p = Path(path)
    return p.with_name(p.stem + ".schema" + p.suffix)


def _read_rows(path: Path) -> list[tuple[int, list[str]]]:
    text = read_text(path, "text table", latin1_fallback=False)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(path))
    rows = []
    try:
        for row in reader:
            if row and any(c.strip() for c in row) or row:
                rows.append((reader.line_num, row))
    except csv.Error as exc:
        raise FormatError(path, f"line {reader.line_num}: {exc}") from None
    return [(n, r) for n, r in rows if r]


def _table_from_rows(path: Path, rows: list[tuple[int, list[str]]]) -> tuple[list[str], list[list[str]]]:
    if not rows:
        raise FormatError(path, "no header row")
    header = rows[0][1]
    if len(set(header)) != len(header):
        dup = sorted({h for h in header if header.count(h) > 1})
        raise FormatError(path, f"line {rows[0][0]}: duplicate column names {dup}")
    body = []
    for lineno, row in rows[1:]:
        if len(row) != len(header):
            raise FormatError(path, f"line {lineno}: {len(row)} cells, but the header has {len(header)} columns")
        body.append(row)
    return header, body


def read_table(path: str | os.PathLike[str], *, schema: str | os.PathLike[str] | None = None) -> list[Table]:
    """A table and (when present) its schema."""
    p = Path(path)
    header, body = _table_from_rows(p, _read_rows(p))
    sp = Path(schema) if schema else schema_path(p)
    schema_rows: list[dict] = []
    if not p.name.lower().endswith((".schema.csv", ".schema.tsv")) and sp.exists():
        sh, sb = _table_from_rows(sp, _read_rows(sp))
        if "columnName" not in sh:
            raise FormatError(sp, "line 1: a table schema needs a 'columnName' column")
        schema_rows = [dict(zip(sh, r)) for r in sb]
        unknown = [r["columnName"] for r in schema_rows
                   if r["columnName"] not in header and r["columnName"] != "<default>"]
        if unknown:
            raise FormatError(sp, f"schema names columns the table does not have: {unknown}")
    t = Table(columns=header, rows=body, schema=schema_rows, name=base_name(p), source=os.fspath(p))
    if schema_rows:
        t.metadata["schema_columns"] = list(schema_rows[0].keys())
        t.metadata["schema_file"] = os.fspath(sp)
    return [t]


def _csv_text(header: list[str], rows: list[list[str]], delimiter: str) -> str:
    out = io.StringIO()
    w = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return out.getvalue()


def write_table(table: Any, path: str | os.PathLike[str]) -> list[str]:
    """Write the table (and its schema beside it when it has one)."""
    p = Path(path)
    if not isinstance(table, Table):
        raise WriteError(p, f"a table file holds a table, not {type(table).__name__}")
    d = _delimiter(p)
    targets = [p]
    texts = [_csv_text(table.columns, table.rows, d)]
    schema = [r for r in table.schema if r.get("columnName") in table.columns or r.get("columnName") == "<default>"]
    if schema:
        cols = list(table.metadata.get("schema_columns") or [])
        for r in schema:
            for k in r:
                if k not in cols:
                    cols.append(k)
        cols = ["columnName"] + [c for c in cols if c != "columnName"]
        texts.append(_csv_text(cols, [[str(r.get(c, "")) for c in cols] for r in schema], d))
        targets.append(schema_path(p))
    with atomic_outputs(targets) as temps:
        for tmp, text in zip(temps, texts):
            tmp.write_text(text, encoding="utf-8")
    return [os.fspath(t) for t in targets]


def _sniff(head: bytes, path: Path) -> bool:
    from ._text import plain_text

    if not path.name.lower().endswith((".csv", ".tsv")) or not plain_text(head):
        return False
    first = head.lstrip(b"\xef\xbb\xbf").split(b"\n", 1)[0]
    return not first.startswith((b"LabelValue", b"#")) and len(first.strip()) > 0


register(FileFormat(
    name="table",
    description="Table (CSV/TSV with Slicer's optional .schema.csv column types)",
    extensions=(".csv", ".tsv"),
    read=read_table,
    write=write_table,
    sniff=_sniff,
    kinds=(DataKind.TABLE,),
    content_sniff=False,  # "some text" is all the sniff knows: never picked for a lying extension
    backend="python",
))
