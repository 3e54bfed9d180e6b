"""Terminologies: Slicer's ``.term.json`` (DICOM segment category / type / modifier context) and anatomic contexts.

Both are dcmqi context files.  A segmentation context has categories, each with
types (``recommendedDisplayRGBValue``, ``3dSlicerLabel``, optional modifiers such
as left / right); an anatomic context has anatomic regions (with modifiers).  A
choice (category, type, modifier, region, region modifier) is stored on a segment
as Slicer's ``TerminologyEntry`` tag::

    <context>~<cat scheme^value^meaning>~<type>~<type modifier>~<anatomic context>~<region>~<region modifier>

(:func:`napari_medio.core.segmentation.format_terminology` writes it).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .kinds import DataKind

__all__ = ["Code", "TerminologyType", "Category", "Terminology", "TerminologyChoice", "DEFAULT_ANATOMIC_CONTEXT"]

#: The anatomic context name Slicer puts in entries that name no region.
DEFAULT_ANATOMIC_CONTEXT = "Anatomic codes - DICOM master list"

_CODE_KEYS = ("CodingSchemeDesignator", "CodeValue", "CodeMeaning")


@dataclass
class Code:
    """A coded concept: scheme, value, meaning, plus every other key of the file (kept as read)."""

    scheme: str
    value: str
    meaning: str
    color: tuple[int, int, int] | None = None  #: recommendedDisplayRGBValue (0-255)
    slicer_label: str | None = None  #: 3dSlicerLabel
    slicer_integer_label: int | None = None  #: 3dSlicerIntegerLabel
    modifiers: list[Code] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    def triplet(self) -> dict:
        """``{"scheme", "value", "meaning"}`` (the form :func:`format_terminology` takes)."""
        return {"scheme": self.scheme, "value": self.value, "meaning": self.meaning}

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"scheme": self.scheme, "value": self.value, "meaning": self.meaning}
        if self.color is not None:
            out["recommendedDisplayRGBValue"] = list(self.color)
        if self.slicer_label is not None:
            out["3dSlicerLabel"] = self.slicer_label
        if self.slicer_integer_label is not None:
            out["3dSlicerIntegerLabel"] = self.slicer_integer_label
        if self.modifiers:
            out["modifiers"] = [m.to_dict() for m in self.modifiers]
        return out


@dataclass
class TerminologyType(Code):
    """A segmentation type (e.g. Liver, Kidney) with its recommended colour and modifiers."""


@dataclass
class Category(Code):
    """A segmentation category (e.g. Tissue, Anatomical Structure) and its types."""

    types: list[TerminologyType] = field(default_factory=list)
    show_anatomy: bool | None = None


@dataclass
class TerminologyChoice:
    """One pickable entry: category, type, optional type modifier, optional region (+ modifier)."""

    context: str
    category: Code
    type: Code
    type_modifier: Code | None = None
    region_context: str = DEFAULT_ANATOMIC_CONTEXT
    region: Code | None = None
    region_modifier: Code | None = None

    @property
    def name(self) -> str:
        """The segment name Slicer gives: the modifier's or type's 3dSlicerLabel, else the code meanings."""
        if self.type_modifier is not None:
            if self.type_modifier.slicer_label:
                return self.type_modifier.slicer_label
            return f"{self.type_modifier.meaning} {self.type.meaning}".strip()
        return self.type.slicer_label or self.type.meaning

    @property
    def display_name(self) -> str:
        """``Category / Type (modifier)`` for lists."""
        mod = f" ({self.type_modifier.meaning})" if self.type_modifier else ""
        region = f" in {self.region.meaning}" if self.region else ""
        return f"{self.category.meaning} / {self.type.meaning}{mod}{region}"

    @property
    def color(self) -> tuple[float, float, float]:
        """Recommended display colour, RGB 0-1 (the modifier's when it has one; grey when none)."""
        for c in (self.type_modifier, self.type):
            if c is not None and c.color is not None:
                return tuple(round(v / 255.0, 6) for v in c.color)  # type: ignore[return-value]
        return (0.5, 0.5, 0.5)

    def entry(self) -> dict:
        """The parsed-entry form of :mod:`napari_medio.core.segmentation` (context names and triplets)."""
        return {
            "context": self.context,
            "category": self.category.triplet(),
            "type": self.type.triplet(),
            "type_modifier": self.type_modifier.triplet() if self.type_modifier else None,
            "region_context": self.region_context,
            "region": self.region.triplet() if self.region else None,
            "region_modifier": self.region_modifier.triplet() if self.region_modifier else None,
        }

    def terminology_entry(self) -> str:
        """Slicer's serialized ``TerminologyEntry`` string."""
        from .segmentation import format_terminology

        return format_terminology(self.entry())


@dataclass
class Terminology:
    """A terminology context file: segmentation categories/types, or anatomic regions."""

    context_name: str
    context_type: str = "segmentation"  #: "segmentation" or "anatomic"
    categories: list[Category] = field(default_factory=list)
    regions: list[Code] = field(default_factory=list)
    schema: str = ""
    document: dict = field(default_factory=dict)  #: the file as read (written back unchanged)
    name: str = ""
    metadata: dict = field(default_factory=dict)
    source: str | None = None
    kind: DataKind = DataKind.TERMINOLOGY

    def choices(self, region_context: str = DEFAULT_ANATOMIC_CONTEXT) -> Iterator[TerminologyChoice]:
        """Every (category, type, type modifier) entry, the unmodified type first."""
        for cat in self.categories:
            for t in cat.types:
                yield TerminologyChoice(self.context_name, cat, t, None, region_context)
                for m in t.modifiers:
                    yield TerminologyChoice(self.context_name, cat, t, m, region_context)

    def find(self, text: str) -> list[TerminologyChoice]:
        """Choices whose names, meanings or code values contain ``text`` (case-insensitive)."""
        q = text.lower().strip()
        out = []
        for c in self.choices():
            hay = " ".join(filter(None, [c.display_name, c.name, c.type.value, c.category.meaning,
                                         c.type_modifier.value if c.type_modifier else ""])).lower()
            if q in hay:
                out.append(c)
        return out

    def choice(self, type_meaning: str, modifier: str | None = None,
               category: str | None = None) -> TerminologyChoice:
        """The choice for a type (by meaning, 3dSlicerLabel or code value), optional modifier and category."""
        def hit(code: Code, key: str) -> bool:
            k = key.lower()
            return k in (code.meaning.lower(), code.value.lower(), (code.slicer_label or "").lower())

        for c in self.choices():
            if not hit(c.type, type_meaning) or (category and not hit(c.category, category)):
                continue
            if modifier is None and c.type_modifier is None:
                return c
            if modifier is not None and c.type_modifier is not None and hit(c.type_modifier, modifier):
                return c
        raise KeyError(f"no terminology entry for type {type_meaning!r}"
                       + (f" with modifier {modifier!r}" if modifier else ""))

    def region(self, meaning: str) -> Code:
        """An anatomic region by meaning or code value."""
        k = meaning.lower()
        for r in self.regions:
            if k in (r.meaning.lower(), r.value.lower()):
                return r
        raise KeyError(f"no anatomic region {meaning!r}")

    @property
    def n_types(self) -> int:
        return sum(len(c.types) for c in self.categories)

    def info(self) -> dict:
        """Summary for ``medio info --json``."""
        out: dict[str, Any] = {"kind": DataKind.TERMINOLOGY, "name": self.name,
                               "context_type": self.context_type, "context_name": self.context_name,
                               "schema": self.schema}
        if self.context_type == "segmentation":
            out["n_categories"] = len(self.categories)
            out["n_types"] = self.n_types
            out["categories"] = [
                {"scheme": c.scheme, "value": c.value, "meaning": c.meaning, "show_anatomy": c.show_anatomy,
                 "types": [t.to_dict() for t in c.types]}
                for c in self.categories
            ]
        else:
            out["n_regions"] = len(self.regions)
            out["regions"] = [r.to_dict() for r in self.regions]
        if self.source:
            out["source"] = self.source
        return out
