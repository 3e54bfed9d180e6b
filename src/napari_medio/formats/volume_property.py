"""Slicer volume rendering properties, legacy text ``.vp`` (``vtkMRMLVolumePropertyStorageNode``).

Nine lines: interpolation (0 nearest, 1 linear), shade (0/1), diffuse, ambient,
specular, specular power, scalar opacity function, gradient opacity function,
colour transfer function.  A function is ``<count> v1 v2 ...`` (pairs ``x y``
for opacity, quadruples ``x r g b`` for colour).  Everything read is kept and
written back; :meth:`VolumeProperty.napari_settings` maps it to what napari's
Image layer can show (a colormap, contrast limits, opacity, 3D rendering).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..core.errors import FormatError, WriteError
from ..core.fileio import atomic_output
from ..core.registry import FileFormat, register
from ._common import base_name

__all__ = ["VolumeProperty", "read_vp", "write_vp"]

_LINES = ("interpolation", "shade", "diffuse", "ambient", "specular", "specular power", "scalar opacity",
          "gradient opacity", "color")


@dataclass
class VolumeProperty:
    """A volume property: lighting and the three transfer functions ((N, 2) and (N, 4) arrays)."""

    interpolation: int = 1
    shade: bool = False
    diffuse: float = 1.0
    ambient: float = 0.0
    specular: float = 0.0
    specular_power: float = 1.0
    scalar_opacity: np.ndarray = field(default_factory=lambda: np.array([[0.0, 0.0], [1.0, 1.0]]))
    gradient_opacity: np.ndarray = field(default_factory=lambda: np.array([[0.0, 1.0]]))
    color: np.ndarray = field(default_factory=lambda: np.array([[0.0, 0, 0, 0], [1.0, 1, 1, 1]]))
    name: str = ""
    metadata: dict = field(default_factory=dict)
    source: Optional[str] = None
    kind: str = "volumeproperty"

    def napari_settings(self) -> dict:
        """Image layer settings approximating this property: colormap, contrast limits, opacity, rendering."""
        from_x, to_x = float(self.color[0, 0]), float(self.color[-1, 0])
        if to_x <= from_x:
            to_x = from_x + 1.0
        t = (self.color[:, 0] - from_x) / (to_x - from_x)
        op = np.interp(self.color[:, 0], self.scalar_opacity[:, 0], self.scalar_opacity[:, 1])
        colors = np.column_stack([self.color[:, 1:4], op])
        return {"colormap": {"colors": colors.tolist(), "controls": t.tolist(), "name": self.name or "vp"},
                "contrast_limits": [from_x, to_x], "opacity": 1.0, "rendering": "translucent",
                "interpolation3d": "linear" if self.interpolation else "nearest",
                "shading": "flat" if self.shade else "none"}

    def info(self) -> dict:
        """Summary for ``medio info --json``."""
        return {"kind": "volumeproperty", "name": self.name, "interpolation": self.interpolation,
                "shade": self.shade, "diffuse": self.diffuse, "ambient": self.ambient, "specular": self.specular,
                "specular_power": self.specular_power, "scalar_opacity": self.scalar_opacity.tolist(),
                "gradient_opacity": self.gradient_opacity.tolist(), "color": self.color.tolist()}


def _function(text: str, width: int, path: Path, lineno: int, what: str) -> np.ndarray:
    try:
        values = [float(x) for x in text.split()]
    except ValueError:
        raise FormatError(path, f"line {lineno}: {what} function has a non-number") from None
    if not values:
        raise FormatError(path, f"line {lineno}: {what} function is empty")
    count = values[0]
    if count != int(count) or int(count) != len(values) - 1:
        raise FormatError(path, f"line {lineno}: {what} function says {count:g} numbers but has {len(values) - 1}")
    if int(count) % width:
        raise FormatError(path, f"line {lineno}: {what} function needs a multiple of {width} numbers, got {int(count)}")
    if not all(math.isfinite(v) for v in values):
        raise FormatError(path, f"line {lineno}: {what} function has non-finite numbers")
    return np.array(values[1:], dtype=float).reshape(-1, width)


def read_vp(path: "str | os.PathLike[str]", **_: Any) -> list[VolumeProperty]:
    """A ``.vp`` file (exactly nine lines)."""
    p = Path(path)
    raw = p.read_bytes()
    if not raw.strip():
        raise FormatError(p, "file is empty")
    if b"\x00" in raw:
        raise FormatError(p, "binary content, not a volume property file")
    lines = [l for l in raw.decode("latin-1").splitlines() if l.strip()]
    if len(lines) < 9:
        raise FormatError(p, f"line {len(lines) + 1}: missing the {_LINES[len(lines)]} line "
                             f"(a .vp file has 9 lines, this one {len(lines)})")
    scalars = []
    for i in range(6):
        try:
            scalars.append(float(lines[i].split()[0]))
        except (ValueError, IndexError):
            raise FormatError(p, f"line {i + 1}: {_LINES[i]} is not a number: {lines[i][:40]!r}") from None
    vp = VolumeProperty(
        interpolation=int(scalars[0]), shade=bool(int(scalars[1])), diffuse=scalars[2], ambient=scalars[3],
        specular=scalars[4], specular_power=scalars[5],
        scalar_opacity=_function(lines[6], 2, p, 7, "scalar opacity"),
        gradient_opacity=_function(lines[7], 2, p, 8, "gradient opacity"),
        color=_function(lines[8], 4, p, 9, "colour"), name=base_name(p), source=os.fspath(p))
    return [vp]


def _fn(a: np.ndarray) -> str:
    flat = np.asarray(a, dtype=float).reshape(-1)
    return " ".join([str(flat.size)] + [f"{v:.15g}" for v in flat])


def write_vp(vp: Any, path: "str | os.PathLike[str]", **_: Any) -> list[str]:
    """Write the nine ``.vp`` lines."""
    p = Path(path)
    if not isinstance(vp, VolumeProperty):
        raise WriteError(p, f"a .vp file holds volume rendering properties, not {type(vp).__name__}")
    lines = [str(int(vp.interpolation)), str(int(bool(vp.shade)))] + \
        [f"{v:.15g}" for v in (vp.diffuse, vp.ambient, vp.specular, vp.specular_power)] + \
        [_fn(vp.scalar_opacity), _fn(vp.gradient_opacity), _fn(vp.color)]
    with atomic_output(p) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [os.fspath(p)]


def _sniff(head: bytes, path: Path) -> bool:
    if not path.name.lower().endswith(".vp") or b"\x00" in head:
        return False
    first = head.split(b"\n", 1)[0].strip()
    return first in (b"0", b"1", b"2")


register(FileFormat(
    name="volume-property",
    description="3D Slicer volume rendering properties (.vp, legacy text)",
    extensions=(".vp",),
    read=read_vp,
    write=write_vp,
    sniff=_sniff,
    kinds=("volumeproperty",),
    backend="python",
))
