"""Shader properties (Slicer ``.sp``, ``vtkMRMLShaderPropertyStorageNode``): custom GLSL code and uniforms.

napari cannot run VTK shader replacements, so the object is kept as read: every
field of the file, in file order, so writing it back loses nothing.  The typed
accessors below only read from :attr:`ShaderProperty.document`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .kinds import DataKind

__all__ = ["ShaderProperty", "SHADER_CODE_KEYS", "UNIFORM_KEYS"]

SHADER_CODE_KEYS = ("VertexShaderCode", "FragmentShaderCode", "GeometryShaderCode")
UNIFORM_KEYS = ("VertexUniforms", "FragmentUniforms", "GeometryUniforms")


@dataclass
class ShaderProperty:
    """A shader property: the ``.sp`` JSON document, kept field for field."""

    document: dict = field(default_factory=dict)
    name: str = ""
    metadata: dict = field(default_factory=dict)
    source: str | None = None
    kind: DataKind = DataKind.SHADER_PROPERTY

    def code(self, stage: str) -> str:
        """GLSL code of ``stage`` ("Vertex", "Fragment" or "Geometry"); "" when unset."""
        return str(self.document.get(f"{stage}ShaderCode") or "")

    def uniforms(self, stage: str) -> list[dict]:
        """Uniforms of ``stage``: ``{name, scalarType, tupleType, numberOfComponents, numberOfTuples, value}``."""
        return list(self.document.get(f"{stage}Uniforms") or [])

    @property
    def replacements(self) -> list[dict]:
        """Shader replacements: ``{ShaderType, ReplacementSpec, replaceFirst, ReplacementValue, replaceAll}``."""
        return list(self.document.get("ShaderReplacements") or [])

    def info(self) -> dict:
        """Summary for ``medio info --json``."""
        out: dict[str, Any] = {"kind": DataKind.SHADER_PROPERTY, "name": self.name,
                               "keys": list(self.document)}
        for stage in ("Vertex", "Fragment", "Geometry"):
            s = stage.lower()
            out[f"{s}_code_lines"] = len(self.code(stage).splitlines())
            out[f"{s}_uniforms"] = [u.get("name") for u in self.uniforms(stage) if isinstance(u, dict)]
        out["n_replacements"] = len(self.replacements)
        out["replacements"] = [{k: r.get(k) for k in ("ShaderType", "ReplacementSpec", "replaceFirst", "replaceAll")}
                               for r in self.replacements if isinstance(r, dict)]
        if self.source:
            out["source"] = self.source
        return out
