"""Colour tables (Slicer ``.ctbl``/``.txt``/``.csv`` colour nodes, ITK-SNAP label descriptions).

A :class:`ColorTable` maps label values to a name, an RGBA colour (0-1) and an
optional terminology (Slicer CSV colour tables: category, type, type
modifier, region, region modifier as ``(scheme, value, meaning)`` triplets).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .kinds import DataKind

__all__ = ["ColorEntry", "ColorTable", "TERMINOLOGY_PARTS"]

TERMINOLOGY_PARTS = ("Category", "Type", "TypeModifier", "Region", "RegionModifier")


@dataclass
class ColorEntry:
    """One defined colour: name, RGBA in 0-1, optional terminology ``{part: (scheme, value, meaning)}``."""

    name: str
    color: tuple[float, float, float, float]
    terminology: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        c = [float(x) for x in self.color]
        if len(c) == 3:
            c.append(1.0)
        if len(c) != 4 or any(not (0.0 <= x <= 1.0) for x in c):
            raise ValueError(f"colour must be 3 or 4 values in 0..1, got {self.color!r}")
        self.color = tuple(c)  # type: ignore[assignment]


@dataclass
class ColorTable:
    """Label value -> :class:`ColorEntry` (defined entries only)."""

    entries: dict[int, ColorEntry] = field(default_factory=dict)
    name: str = ""
    metadata: dict = field(default_factory=dict)
    source: str | None = None
    kind: DataKind = DataKind.COLORTABLE

    @property
    def n_colors(self) -> int:
        """Number of defined colours."""
        return len(self.entries)

    @property
    def size(self) -> int:
        """Slicer's table size: largest label value + 1."""
        return max(self.entries) + 1 if self.entries else 0

    def as_label_table(self) -> dict:
        """The ``{label: {"name", "color"}}`` form volumes and Labels layers use."""
        return {int(k): {"name": e.name, "color": list(e.color)} for k, e in sorted(self.entries.items())}

    @classmethod
    def from_label_table(cls, table: dict, name: str = "") -> ColorTable:
        """Inverse of :meth:`as_label_table`."""
        entries = {}
        for k, v in (table or {}).items():
            entries[int(k)] = ColorEntry(str(v.get("name", k)), tuple(v.get("color", (0.5, 0.5, 0.5, 1.0))))
        return cls(entries=dict(sorted(entries.items())), name=name)

    def info(self) -> dict:
        """Summary for ``medio info --json``: entries as label value, name, RGBA (0-1)."""
        out: dict[str, Any] = {
            "kind": DataKind.COLORTABLE, "name": self.name, "n_colors": self.n_colors,
            "entries": [{"value": int(k), "label": int(k), "name": e.name, "rgba": [float(x) for x in e.color],
                         **({"terminology": {p: list(t) for p, t in e.terminology.items()}} if e.terminology else {})}
                        for k, e in sorted(self.entries.items())],
        }
        if self.source:
            out["source"] = self.source
        return out
