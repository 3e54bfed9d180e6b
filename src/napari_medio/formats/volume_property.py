"""Slicer volume rendering properties: legacy text ``.vp`` and JSON ``.vp.json`` (Slicer's current default).

``.vp`` (``vtkMRMLVolumePropertyStorageNode``):

Nine lines: interpolation (0 nearest, 1 linear), shade (0/1), diffuse, ambient,
specular, specular power, scalar opacity function, gradient opacity function,
colour transfer function.  A function is ``<count> v1 v2 ...`` (pairs ``x y``
for opacity, quadruples ``x r g b`` for colour).  Everything read is kept and
written back; :meth:`VolumeProperty.napari_settings` maps it to what napari's
Image layer can show (a colormap, contrast limits, opacity, 3D rendering).

``.vp.json`` (``vtkMRMLVolumePropertyJsonStorageNode``, schema
``volume-property-schema-v1.0.0.json``, shipped in ``formats/schemas``): ``{"@schema",
"volumeProperties": [{effectiveRange, isoSurfaceValues, independentComponents,
interpolationType, useClippedVoxelIntensity, clippedVoxelIntensity, scatteringAnisotropy,
components: [{componentWeight, shade, lighting, disableGradientOpacity,
scalarOpacityUnitDistance, rgbTransferFunction, scalarOpacity, gradientOpacity}]}]}``.
Each entry of ``volumeProperties`` is one :class:`VolumeProperty` (Slicer reads the first);
component 0 fills the same fields as a ``.vp`` file, points' ``midpoint``/``sharpness``, other
components and unknown keys are kept in the object and written back in Slicer's key order.
"""
from __future__ import annotations

import copy
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import FormatError, WriteError
from ..core.fileio import read_content, write_text
from ..core.kinds import DataKind
from ..core.registry import FileFormat, register
from .naming import base_name

__all__ = ["VolumeProperty", "read_vp", "write_vp", "read_vp_json", "write_vp_json", "vp_json_schema",
           "VP_JSON_SCHEMA_URL"]

#: The ``@schema`` value Slicer writes.
VP_JSON_SCHEMA_URL = ("https://raw.githubusercontent.com/slicer/slicer/main/Modules/Loadable/VolumeRendering/"
                      "Resources/Schema/volume-property-schema-v1.0.0.json#")
_ACCEPTED_VP_SCHEMA = re.compile(r".*volume-property-schema-v[0-9]+\.[0-9]+\.[0-9]+\.json#*$")
_INTERPOLATION = {0: "nearest", 1: "linear", 2: "cubic"}

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
    source: str | None = None
    kind: DataKind = DataKind.VOLUME_PROPERTY
    # -- what only .vp.json stores (Slicer's defaults otherwise) --
    effective_range: tuple[float, float] | None = None
    iso_surface_values: list = field(default_factory=list)
    independent_components: bool = True
    use_clipped_voxel_intensity: bool = False
    clipped_voxel_intensity: float = 0.0
    scattering_anisotropy: float = 0.0
    component_weight: float = 1.0
    disable_gradient_opacity: bool = False
    scalar_opacity_unit_distance: float = 1.0
    #: per function ("color", "scalar_opacity", "gradient_opacity"): (N, 2) midpoint, sharpness
    midpoints: dict = field(default_factory=dict)

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
        out = {"kind": DataKind.VOLUME_PROPERTY, "name": self.name, "interpolation": self.interpolation,
               "shade": self.shade, "diffuse": self.diffuse, "ambient": self.ambient, "specular": self.specular,
               "specular_power": self.specular_power, "scalar_opacity": self.scalar_opacity.tolist(),
               "gradient_opacity": self.gradient_opacity.tolist(), "color": self.color.tolist()}
        if self.effective_range is not None:
            out["effective_range"] = [float(x) for x in self.effective_range]
        if self.source:
            out["source"] = self.source
        return out


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


def read_vp(path: str | os.PathLike[str]) -> list[VolumeProperty]:
    """A ``.vp`` file (exactly nine lines)."""
    p = Path(path)
    raw = read_content(p)
    if b"\x00" in raw:
        raise FormatError(p, "binary content, not a volume property file")
    lines = [line for line in raw.decode("latin-1").splitlines() if line.strip()]
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


def write_vp(vp: Any, path: str | os.PathLike[str]) -> list[str]:
    """Write the nine ``.vp`` lines."""
    p = Path(path)
    if not isinstance(vp, VolumeProperty):
        raise WriteError(p, f"a .vp file holds volume rendering properties, not {type(vp).__name__}")
    lines = [str(int(vp.interpolation)), str(int(bool(vp.shade)))] + \
        [f"{v:.15g}" for v in (vp.diffuse, vp.ambient, vp.specular, vp.specular_power)] + \
        [_fn(vp.scalar_opacity), _fn(vp.gradient_opacity), _fn(vp.color)]
    return write_text(p, "\n".join(lines) + "\n")


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
    kinds=(DataKind.VOLUME_PROPERTY,),
    content_sniff=False,  # a first line of "0"/"1" says little
    backend="python",
))


# -- .vp.json ------------------------------------------------------------------------------------
def vp_json_schema() -> dict:
    """Slicer's volume property schema v1.0.0 (verbatim copy shipped with the package)."""
    from importlib import resources

    text = resources.files("napari_medio.formats").joinpath("schemas/volume-property-schema-v1.0.0.json") \
        .read_text("utf-8")
    return json.loads(text)


_PROPERTY_KEYS = ("effectiveRange", "isoSurfaceValues", "independentComponents", "interpolationType",
                  "useClippedVoxelIntensity", "clippedVoxelIntensity", "scatteringAnisotropy", "components")
_COMPONENT_KEYS = ("componentWeight", "shade", "lighting", "disableGradientOpacity", "scalarOpacityUnitDistance",
                   "rgbTransferFunction", "scalarOpacity", "gradientOpacity")
_FUNCTIONS = (("rgbTransferFunction", "color", "colorTransferFunction"),
              ("scalarOpacity", "scalar_opacity", "piecewiseLinearFunction"),
              ("gradientOpacity", "gradient_opacity", "piecewiseLinearFunction"))


def _points(fn: dict, color: bool) -> tuple[np.ndarray, np.ndarray]:
    rows, mids = [], []
    for pt in fn.get("points", []):
        x = float(pt["x"])
        rows.append([x, *[float(c) for c in pt["color"]]] if color else [x, float(pt["y"])])
        mids.append([float(pt.get("midpoint", 0.5)), float(pt.get("sharpness", 0.0))])
    width = 4 if color else 2
    values = np.array(rows, dtype=float).reshape(-1, width)
    mid = np.array(mids, dtype=float).reshape(-1, 2)
    order = np.argsort(values[:, 0], kind="stable")  # Slicer sorts by x (stable) before adding the points
    return values[order], mid[order]


def _property_from_json(item: dict, p: Path, where: str, name: str) -> VolumeProperty:
    vp = VolumeProperty(interpolation=1, shade=False, diffuse=0.7, ambient=0.1, specular=0.2, specular_power=10.0,
                        name=name, source=os.fspath(p))
    if "effectiveRange" in item:
        vp.effective_range = tuple(float(x) for x in item["effectiveRange"])  # type: ignore[assignment]
    vp.iso_surface_values = [float(x) for x in item.get("isoSurfaceValues", [])]
    vp.independent_components = bool(item.get("independentComponents", True))
    vp.interpolation = {v: k for k, v in _INTERPOLATION.items()}[item.get("interpolationType", "linear")]
    vp.use_clipped_voxel_intensity = bool(item.get("useClippedVoxelIntensity", False))
    vp.clipped_voxel_intensity = float(item.get("clippedVoxelIntensity", 0.0))
    vp.scattering_anisotropy = float(item.get("scatteringAnisotropy", 0.0))
    components = item.get("components") or []
    kept: dict[str, Any] = {"property_extra": {k: v for k, v in item.items() if k not in _PROPERTY_KEYS},
                            "more_components": copy.deepcopy(components[1:]), "key_order": list(item)}
    if components:
        c = components[0]
        vp.component_weight = float(c.get("componentWeight", 1.0))
        vp.shade = bool(c.get("shade", vp.shade))
        light = c.get("lighting")
        if light:
            vp.diffuse, vp.ambient = float(light["diffuse"]), float(light["ambient"])
            vp.specular, vp.specular_power = float(light["specular"]), float(light["specularPower"])
        vp.disable_gradient_opacity = bool(c.get("disableGradientOpacity", False))
        vp.scalar_opacity_unit_distance = float(c.get("scalarOpacityUnitDistance", 1.0))
        for key, attr, _kind in _FUNCTIONS:
            if key in c:
                values, mids = _points(c[key], color=(attr == "color"))
                if not len(values):
                    raise FormatError(p, f"{where}.components[0].{key}.points: the function has no points")
                setattr(vp, attr, values)
                vp.midpoints[attr] = mids
        kept["component_extra"] = {k: v for k, v in c.items() if k not in _COMPONENT_KEYS}
        kept["function_extra"] = {key: {k: v for k, v in c[key].items() if k not in ("type", "points")}
                                  for key, _a, _k in _FUNCTIONS if isinstance(c.get(key), dict)}
        kept["has_lighting"] = bool(light)
    vp.metadata["vp_json"] = kept
    return vp


def read_vp_json(path: str | os.PathLike[str]) -> list[VolumeProperty]:
    """Every volume property of a ``.vp.json`` file (validated against Slicer's schema)."""
    from ._text import json_path, load_json

    p = Path(path)
    doc = load_json(p, "volume property JSON file")
    sv = doc.get("@schema")
    if not isinstance(sv, str):
        raise FormatError(p, "@schema: missing (a Slicer volume property file names its schema)")
    if not _ACCEPTED_VP_SCHEMA.match(sv.lower()):
        raise FormatError(p, f"@schema: unsupported {sv!r} (expected a volume-property-schema-vX.Y.Z.json URL)")
    import jsonschema

    errors = sorted(jsonschema.Draft7Validator(vp_json_schema()).iter_errors(doc), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        raise FormatError(p, f"schema violation at {json_path(e.absolute_path)}: {e.message}")
    items = doc["volumeProperties"]
    if not items:
        raise FormatError(p, "volumeProperties: the array is empty")
    base = p.name[:-len(".vp.json")] if p.name.lower().endswith(".vp.json") else base_name(p)
    out = []
    for i, item in enumerate(items):
        vp = _property_from_json(item, p, f"volumeProperties[{i}]", base if len(items) == 1 else f"{base}_{i}")
        vp.metadata["vp_json"]["document_extra"] = {k: v for k, v in doc.items()
                                                    if k not in ("@schema", "volumeProperties")}
        out.append(vp)
    return out


def _function_json(vp: VolumeProperty, attr: str, kind: str, extra: dict) -> dict:
    values = np.asarray(getattr(vp, attr), dtype=float)
    mids = np.asarray(vp.midpoints.get(attr, np.empty((0, 2))), dtype=float)
    if mids.shape != (len(values), 2):
        mids = np.tile([0.5, 0.0], (len(values), 1))
    points = []
    for row, (mid, sharp) in zip(values, mids):
        pt: dict[str, Any] = {"x": float(row[0])}
        if attr == "color":
            pt["color"] = [float(c) for c in row[1:4]]
        else:
            pt["y"] = float(row[1])
        pt["midpoint"], pt["sharpness"] = float(mid), float(sharp)
        points.append(pt)
    return {"type": kind, "points": points, **extra}


def vp_json_document(vps: VolumeProperty | list[VolumeProperty]) -> dict:
    """The ``.vp.json`` document (Slicer's key order; kept extras written back)."""
    items = vps if isinstance(vps, list) else [vps]
    doc: dict[str, Any] = {"@schema": VP_JSON_SCHEMA_URL, "volumeProperties": []}
    for vp in items:
        kept = vp.metadata.get("vp_json") or {}
        er = vp.effective_range if vp.effective_range is not None else (0.0, -1.0)
        comp: dict[str, Any] = {
            "componentWeight": float(vp.component_weight), "shade": bool(vp.shade),
            "lighting": {"diffuse": float(vp.diffuse), "ambient": float(vp.ambient), "specular": float(vp.specular),
                         "specularPower": float(vp.specular_power)},
            "disableGradientOpacity": bool(vp.disable_gradient_opacity),
            "scalarOpacityUnitDistance": float(vp.scalar_opacity_unit_distance),
        }
        fextra = kept.get("function_extra") or {}
        for key, attr, kind in _FUNCTIONS:
            comp[key] = _function_json(vp, attr, kind, fextra.get(key, {}))
        comp.update(kept.get("component_extra") or {})
        item: dict[str, Any] = {
            "effectiveRange": [float(er[0]), float(er[1])],
            "isoSurfaceValues": [float(x) for x in vp.iso_surface_values],
            "independentComponents": bool(vp.independent_components),
            "interpolationType": _INTERPOLATION.get(int(vp.interpolation), "linear"),
            "useClippedVoxelIntensity": bool(vp.use_clipped_voxel_intensity),
            "clippedVoxelIntensity": float(vp.clipped_voxel_intensity),
            "scatteringAnisotropy": float(vp.scattering_anisotropy),
            "components": [comp] + copy.deepcopy(kept.get("more_components") or []),
        }
        item.update(kept.get("property_extra") or {})
        doc["volumeProperties"].append(item)
        for k, v in (kept.get("document_extra") or {}).items():
            doc.setdefault(k, v)
    return doc


def write_vp_json(vp: Any, path: str | os.PathLike[str]) -> list[str]:
    """Write a ``.vp.json`` (validated against Slicer's schema before anything is written)."""
    p = Path(path)
    if isinstance(vp, list) and vp and all(isinstance(v, VolumeProperty) for v in vp):
        pass
    elif not isinstance(vp, VolumeProperty):
        raise WriteError(p, f"a .vp.json file holds volume rendering properties, not {type(vp).__name__}")
    doc = vp_json_document(vp)
    import jsonschema

    try:
        jsonschema.Draft7Validator(vp_json_schema()).validate(doc)
    except jsonschema.ValidationError as exc:
        from ._text import json_path

        raise WriteError(p, f"the volume property does not fit Slicer's schema at "
                            f"{json_path(exc.absolute_path)}: {exc.message}") from None
    return write_text(p, json.dumps(doc, indent=2) + "\n")


def _sniff_json(head: bytes, path: Path) -> bool:
    from ._text import json_head

    return json_head(head) and (b"volume-property-schema" in head.lower() or b'"volumeProperties"' in head)


register(FileFormat(
    name="volume-property-json",
    description="3D Slicer volume rendering properties (.vp.json, Slicer's current default)",
    extensions=(".vp.json", ".json"),
    read=read_vp_json,
    write=write_vp_json,
    sniff=_sniff_json,
    kinds=(DataKind.VOLUME_PROPERTY,),
    priority=6,
    backend="json (jsonschema-validated)",
))
