"""Terminology context files: Slicer ``.term.json`` (segment category/type/modifier) and anatomic contexts (``.json``).

The dcmqi context format (``../shared/reference/other-formats.md`` section 6):

* segmentation context: ``SegmentationCategoryTypeContextName``, ``@schema`` (segment-context-schema),
  ``SegmentationCodes.Category[].Type[].Modifier[]``, types with ``recommendedDisplayRGBValue``,
  ``3dSlicerLabel``, ``3dSlicerIntegerLabel``;
* anatomic context: ``AnatomicContextName``, ``@schema`` (anatomic-context-schema),
  ``AnatomicCodes.AnatomicRegion[].Modifier[]``.

Read only into :class:`~napari_medio.core.terminology.Terminology` (the document is kept, and
written back unchanged by :func:`write_terminology`); errors name the file and the JSON path.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..core.errors import FormatError, WriteError
from ..core.fileio import write_text
from ..core.kinds import DataKind
from ..core.registry import FileFormat, register
from ..core.terminology import Category, Code, Terminology, TerminologyType
from ._text import json_head, json_path, load_json
from .naming import base_name

__all__ = ["read_terminology", "write_terminology", "builtin_terminology", "generic_anatomy_label_table"]

_SEG_KEY = "SegmentationCategoryTypeContextName"
_ANAT_KEY = "AnatomicContextName"
_CODE_KEYS = {"CodingSchemeDesignator": "scheme", "CodeValue": "value", "CodeMeaning": "meaning"}
_KNOWN = set(_CODE_KEYS) | {"recommendedDisplayRGBValue", "3dSlicerLabel", "3dSlicerIntegerLabel", "Modifier",
                            "Type", "showAnatomy"}
BUILTIN = "SegmentationCategoryTypeModifier-SlicerGeneralAnatomy.term.json"


def _code(item: Any, p: Path, where: list, cls: type = Code) -> Any:
    if not isinstance(item, dict):
        raise FormatError(p, f"{json_path(where)}: expected an object with CodingSchemeDesignator, CodeValue, "
                             f"CodeMeaning, got {type(item).__name__}")
    values = {}
    for key, attr in _CODE_KEYS.items():
        v = item.get(key)
        if not isinstance(v, str):
            raise FormatError(p, f"{json_path(where + [key])}: "
                                 + ("missing" if v is None else f"must be a string, got {v!r}"))
        values[attr] = v
    color = item.get("recommendedDisplayRGBValue")
    if color is not None:
        if (not isinstance(color, list) or len(color) != 3
                or not all(isinstance(c, (int, float)) and not isinstance(c, bool) and 0 <= c <= 255 for c in color)):
            raise FormatError(p, f"{json_path(where + ['recommendedDisplayRGBValue'])}: expected 3 numbers "
                                 f"0-255, got {color!r}")
        color = tuple(int(round(c)) for c in color)
    label = item.get("3dSlicerLabel")
    if label is not None and not isinstance(label, str):
        raise FormatError(p, f"{json_path(where + ['3dSlicerLabel'])}: must be a string, got {label!r}")
    ilabel = item.get("3dSlicerIntegerLabel")
    if ilabel is not None and (isinstance(ilabel, bool) or not isinstance(ilabel, int)):
        raise FormatError(p, f"{json_path(where + ['3dSlicerIntegerLabel'])}: must be an integer, got {ilabel!r}")
    mods = item.get("Modifier", [])
    if not isinstance(mods, list):
        raise FormatError(p, f"{json_path(where + ['Modifier'])}: must be an array")
    modifiers = [_code(m, p, where + ["Modifier", i]) for i, m in enumerate(mods)]
    extra = {k: v for k, v in item.items() if k not in _KNOWN}
    return cls(scheme=values["scheme"], value=values["value"], meaning=values["meaning"], color=color,
               slicer_label=label, slicer_integer_label=ilabel, modifiers=modifiers, extra=extra)


def _array(doc: Any, keys: list, p: Path) -> list:
    node = doc
    for i, k in enumerate(keys):
        if not isinstance(node, dict) or k not in node:
            raise FormatError(p, f"{json_path(keys[:i + 1])}: missing")
        node = node[k]
    if not isinstance(node, list):
        raise FormatError(p, f"{json_path(keys)}: must be an array, got {type(node).__name__}")
    return node


def _name(p: Path) -> str:
    return p.name[:-len(".term.json")] if p.name.lower().endswith(".term.json") else base_name(p)


def read_terminology(path: str | os.PathLike[str]) -> list[Terminology]:
    """A segmentation-category/type context or an anatomic context."""
    p = Path(path)
    doc = load_json(p, "terminology file")
    schema = doc.get("@schema", "")
    if not isinstance(schema, str):
        raise FormatError(p, "@schema: must be a string")
    if _SEG_KEY in doc:
        name = doc[_SEG_KEY]
        if not isinstance(name, str) or not name:
            raise FormatError(p, f"{_SEG_KEY}: must be a non-empty string")
        cats = []
        for i, item in enumerate(_array(doc, ["SegmentationCodes", "Category"], p)):
            where = ["SegmentationCodes", "Category", i]
            cat = _code(item, p, where, Category)
            show = item.get("showAnatomy")
            if show is not None:
                if isinstance(show, str) and show.lower() in ("true", "false"):  # older files store strings
                    show = show.lower() == "true"
                if not isinstance(show, bool):
                    raise FormatError(p, f"{json_path(where + ['showAnatomy'])}: must be a boolean, got {show!r}")
            cat.show_anatomy = show
            types = item.get("Type", [])
            if not isinstance(types, list):
                raise FormatError(p, f"{json_path(where + ['Type'])}: must be an array")
            cat.types = [_code(t, p, where + ["Type", j], TerminologyType) for j, t in enumerate(types)]
            cats.append(cat)
        term = Terminology(context_name=name, context_type="segmentation", categories=cats, schema=schema,
                           document=doc, name=_name(p), source=os.fspath(p))
    elif _ANAT_KEY in doc:
        name = doc[_ANAT_KEY]
        if not isinstance(name, str) or not name:
            raise FormatError(p, f"{_ANAT_KEY}: must be a non-empty string")
        regions = [_code(r, p, ["AnatomicCodes", "AnatomicRegion", i])
                   for i, r in enumerate(_array(doc, ["AnatomicCodes", "AnatomicRegion"], p))]
        term = Terminology(context_name=name, context_type="anatomic", regions=regions, schema=schema,
                           document=doc, name=_name(p), source=os.fspath(p))
    else:
        raise FormatError(p, f"not a terminology file: neither {_SEG_KEY!r} nor {_ANAT_KEY!r} at the top level")
    return [term]


def write_terminology(obj: Any, path: str | os.PathLike[str]) -> list[str]:
    """Write a terminology read from a file back (its document, unchanged)."""
    p = Path(path)
    if not isinstance(obj, Terminology) or not obj.document:
        raise WriteError(p, f"a terminology file holds a terminology read from a file, not {type(obj).__name__}")
    return write_text(p, json.dumps(obj.document, indent=2, ensure_ascii=False) + "\n")


def builtin_terminology() -> Terminology | None:
    """Slicer's General Anatomy terminology shipped with the package (offered when naming segments)."""
    from importlib import resources

    try:
        ref = resources.files("napari_medio.formats").joinpath("schemas/" + BUILTIN)
        with resources.as_file(ref) as f:
            if not Path(f).exists():
                return None
            [term] = read_terminology(f)
    except (FileNotFoundError, ModuleNotFoundError):
        return None
    term.name = "Slicer General Anatomy"
    term.source = None
    return term


def generic_anatomy_label_table() -> dict:
    """Slicer's GenericAnatomyColors label table, ``{label: {"name", "color": [r, g, b, a]}}``.

    Built from the bundled General Anatomy terminology, whose types and modifiers carry
    Slicer's integer label (``3dSlicerIntegerLabel``), name (``3dSlicerLabel``) and
    recommended colour: the same values GenericAnatomyColors.txt lists, so a label
    map whose scene names that colour node gets its names and colours.
    """
    term = builtin_terminology()
    table: dict = {}
    if term is None:
        return table
    for choice in term.choices():
        code = choice.type_modifier or choice.type
        label = code.slicer_integer_label
        if label is None or label <= 0 or label in table or code.color is None:
            continue
        table[int(label)] = {"name": choice.name, "color": [round(c / 255.0, 6) for c in code.color] + [1.0]}
    return table


def _sniff(head: bytes, path: Path) -> bool:
    return json_head(head) and (_SEG_KEY.encode() in head or _ANAT_KEY.encode() in head)


register(FileFormat(
    name="terminology",
    description="3D Slicer / dcmqi terminology (.term.json segment category-type context, anatomic context .json)",
    extensions=(".term.json", ".json"),
    read=read_terminology,
    write=write_terminology,
    sniff=_sniff,
    kinds=(DataKind.TERMINOLOGY,),
    priority=6,
    backend="json",
))
