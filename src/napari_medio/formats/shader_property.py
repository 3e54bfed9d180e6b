"""Slicer shader properties ``.sp`` (``vtkMRMLShaderPropertyStorageNode``, JSON via jsoncpp).

Top-level keys ``VertexShaderCode``, ``FragmentShaderCode``, ``GeometryShaderCode`` (strings),
``VertexUniforms``, ``FragmentUniforms``, ``GeometryUniforms`` (arrays of ``{name, scalarType,
tupleType, numberOfComponents, numberOfTuples, value}``) and ``ShaderReplacements`` (array of
``{ShaderType, ReplacementSpec, replaceFirst, ReplacementValue, replaceAll}``).  Read and kept
as a :class:`~napari_medio.core.shader.ShaderProperty`; written back field for field, in file order.
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
from ..core.shader import SHADER_CODE_KEYS, UNIFORM_KEYS, ShaderProperty
from ._text import json_head, json_path, load_json
from .naming import base_name

__all__ = ["read_shader_property", "write_shader_property"]

_UNIFORM_FIELDS = {"name": str, "scalarType": str, "tupleType": str, "numberOfComponents": int,
                   "numberOfTuples": int}
_REPLACEMENT_FIELDS = {"ShaderType": (str, int), "ReplacementSpec": str, "ReplacementValue": str,
                       "replaceFirst": bool, "replaceAll": bool}


def _check(item: Any, fields: dict, p: Path, where: list) -> None:
    if not isinstance(item, dict):
        raise FormatError(p, f"{json_path(where)}: expected an object, got {type(item).__name__}")
    for key, typ in fields.items():
        if key in item and (not isinstance(item[key], typ) or (typ is int and isinstance(item[key], bool))):
            raise FormatError(p, f"{json_path(where + [key])}: wrong type {type(item[key]).__name__}")


def validate_document(doc: dict, p: Path) -> None:
    """FormatError (file and JSON path) unless ``doc`` has the shader property layout."""
    known = set(SHADER_CODE_KEYS) | set(UNIFORM_KEYS) | {"ShaderReplacements"}
    if not known & set(doc):
        raise FormatError(p, "not a shader property file: none of " + ", ".join(sorted(known)) + " at the top level")
    for key in SHADER_CODE_KEYS:
        if key in doc and not isinstance(doc[key], str):
            raise FormatError(p, f"{key}: must be a string (GLSL code), got {type(doc[key]).__name__}")
    for key in UNIFORM_KEYS:
        if key not in doc:
            continue
        if not isinstance(doc[key], list):
            raise FormatError(p, f"{key}: must be an array of uniforms, got {type(doc[key]).__name__}")
        for i, u in enumerate(doc[key]):
            _check(u, _UNIFORM_FIELDS, p, [key, i])
            if not isinstance(u.get("name"), str) or not u["name"]:
                raise FormatError(p, f"{json_path([key, i, 'name'])}: a uniform needs a name")
    if "ShaderReplacements" in doc:
        reps = doc["ShaderReplacements"]
        if not isinstance(reps, list):
            raise FormatError(p, "ShaderReplacements: must be an array")
        for i, r in enumerate(reps):
            _check(r, _REPLACEMENT_FIELDS, p, ["ShaderReplacements", i])


def read_shader_property(path: str | os.PathLike[str]) -> list[ShaderProperty]:
    """A ``.sp`` file."""
    p = Path(path)
    doc = load_json(p, "shader property file")
    validate_document(doc, p)
    return [ShaderProperty(document=doc, name=base_name(p), source=os.fspath(p))]


def write_shader_property(obj: Any, path: str | os.PathLike[str]) -> list[str]:
    """Write the shader property's document (every field, in its order)."""
    p = Path(path)
    if not isinstance(obj, ShaderProperty):
        raise WriteError(p, f"a .sp file holds shader properties, not {type(obj).__name__}")
    validate_document(obj.document, p)
    return write_text(p, json.dumps(obj.document, indent=4, ensure_ascii=False) + "\n")


def _sniff(head: bytes, path: Path) -> bool:
    return json_head(head) and any(k.encode() in head for k in (*SHADER_CODE_KEYS, *UNIFORM_KEYS,
                                                                  "ShaderReplacements"))


register(FileFormat(
    name="shader-property",
    description="3D Slicer shader properties (.sp: custom GLSL code, uniforms, replacements; kept, not rendered)",
    extensions=(".sp",),
    read=read_shader_property,
    write=write_shader_property,
    sniff=_sniff,
    kinds=(DataKind.SHADER_PROPERTY,),
    backend="json",
))
