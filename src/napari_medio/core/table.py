"""Tables (Slicer's table node: ``.csv``/``.tsv`` with an optional ``.schema.csv``).

Cells are kept as the strings the file holds (so writing back loses nothing,
not even values that do not parse as their column type); :meth:`Table.column`
gives typed values using the schema (``type``, ``nullValue``).  The schema is
Slicer's: one row per column with ``columnName``, ``type``, ``nullValue``,
``title``, ``description``, ``unitLabel``, ``componentNames`` and any other
property columns; a ``<default>`` row applies to columns not listed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .kinds import DataKind

__all__ = ["Table", "INTEGER_TYPES", "FLOAT_TYPES"]

INTEGER_TYPES = ("int", "unsigned int", "short", "unsigned short", "char", "unsigned char", "signed char", "long",
                 "unsigned long", "long long", "unsigned long long", "idtype", "__int64", "unsigned __int64")
FLOAT_TYPES = ("double", "float")


@dataclass
class Table:
    """A table: column names, rows of string cells, and Slicer's per-column schema."""

    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    schema: list[dict] = field(default_factory=list)
    name: str = ""
    metadata: dict = field(default_factory=dict)
    source: str | None = None
    kind: DataKind = DataKind.TABLE

    def __post_init__(self) -> None:
        n = len(self.columns)
        for i, row in enumerate(self.rows):
            if len(row) != n:
                raise ValueError(f"row {i + 1} has {len(row)} cells, the table has {n} columns")

    @property
    def n_rows(self) -> int:
        """Number of data rows."""
        return len(self.rows)

    def column_properties(self, name: str) -> dict:
        """Schema properties of one column (its own row, else the ``<default>`` row)."""
        default: dict = {}
        for row in self.schema:
            if row.get("columnName") == name:
                return dict(row)
            if row.get("columnName") == "<default>":
                default = dict(row)
        if default:
            default["columnName"] = name
        return default

    def column_type(self, name: str) -> str:
        """Slicer value type of a column (``string`` when the schema says nothing)."""
        return self.column_properties(name).get("type") or "string"

    def column(self, name: str) -> list[Any]:
        """Typed values of one column: int/float/bool as the schema says; unparsable or empty -> nullValue/None."""
        try:
            c = self.columns.index(name)
        except ValueError:
            raise KeyError(name) from None
        props = self.column_properties(name)
        kind = props.get("type") or "string"
        null = props.get("nullValue", "")
        return [_convert(row[c], kind, null) for row in self.rows]

    def to_dict(self, typed: bool = True) -> dict:
        """``{column: values}`` (typed by the schema, or raw strings)."""
        if typed:
            return {c: self.column(c) for c in self.columns}
        return {c: [row[i] for row in self.rows] for i, c in enumerate(self.columns)}

    def info(self) -> dict:
        """Summary for ``medio info --json``."""
        out = {"kind": DataKind.TABLE, "name": self.name, "columns": list(self.columns),
               "n_rows": self.n_rows, "column_types": {c: self.column_type(c) for c in self.columns}}
        if self.source:
            out["source"] = self.source
        return out


def _convert(cell: str, kind: str, null: str) -> Any:
    text = cell.strip()
    if kind in FLOAT_TYPES or kind in INTEGER_TYPES or kind == "bit":
        if text == "":
            text = null.strip() if null else ""
            if text == "":
                return None
        try:
            value = float(text)
        except ValueError:
            return _convert(null, kind, "") if null and null != cell else None
        if kind == "bit":
            return bool(value)
        if kind in INTEGER_TYPES:
            return int(value) if math.isfinite(value) and value == int(value) else (
                _convert(null, kind, "") if null and null != cell else None)
        return value
    return cell
