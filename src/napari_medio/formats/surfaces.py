"""Segmentation -> closed surfaces (Slicer's "export to models"), in LPS world coordinates.

One pass of VTK's ``vtkSurfaceNets3D`` (default) or ``vtkDiscreteFlyingEdges3D``
per layer extracts every segment's boundary at once, as one mesh whose faces carry
their labels.  That mesh is then split into one compacted mesh per segment (its faces,
both sides of a face between two wanted segments, the second flipped; only its used
vertices, numbered in point order), and the points are mapped from voxel index to LPS
with the segmentation's geometry (so oblique grids are placed exactly).

Optional smoothing (iterations) and decimation (target reduction 0-1).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import MedioError
from ..core.model import Model
from ..core.segmentation import Segmentation
from ._vtkmesh import vtk

__all__ = ["SURFACE_FORMATS", "segment_surfaces", "write_gltf", "write_segment_surfaces"]

#: Formats :func:`write_segment_surfaces` writes (glTF: one file with every segment).
SURFACE_FORMATS = ("stl", "obj", "vtk", "vtp", "ply", "gltf", "glb")


def _image(labels: np.ndarray) -> Any:
    from vtkmodules.util import numpy_support

    v = vtk()
    a = np.ascontiguousarray(labels)
    if a.dtype == np.int8:
        a = a.astype(np.int16)
    img = v.vtkImageData()
    nk, nj, ni = a.shape
    img.SetDimensions(ni, nj, nk)
    img.SetSpacing(1.0, 1.0, 1.0)
    img.SetOrigin(0.0, 0.0, 0.0)
    arr = numpy_support.numpy_to_vtk(a.reshape(-1), deep=False)
    arr.SetName("labels")
    img.GetPointData().SetScalars(arr)
    img._keep = a  # keep the buffer alive with the image
    return img


def _split(poly: Any, labels: list[int], method: str,
           matrix: np.ndarray | None = None) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Split VTK's multi-label surface into ``{label: (points, triangles)}``.

    Segment by segment: its faces in face order (surface nets: both sides of a face
    between two wanted segments, the second side with its winding flipped, after the
    first sides), its used vertices numbered from 0 in point order, its points in index
    space or mapped by ``matrix`` (4x4) when given.
    """
    from vtkmodules.util import numpy_support as ns

    polys = poly.GetPolys()
    if poly.GetNumberOfPoints() == 0 or polys.GetNumberOfCells() == 0:
        return {}
    pts = ns.vtk_to_numpy(poly.GetPoints().GetData())
    tris = _triangles(polys)
    if method == "surface_nets":
        sides = ns.vtk_to_numpy(poly.GetCellData().GetArray("BoundaryLabels")).reshape(-1, 2)
    else:
        sides = _face_labels(poly, tris).reshape(-1, 1)
    n = tris.shape[0]
    flat = np.ascontiguousarray(sides.T).reshape(-1)  # side 0 of every face, then side 1
    order = np.argsort(flat, kind="stable")
    flat = flat[order]
    world = pts.astype(float) if matrix is None else pts @ np.asarray(matrix, float)[:3, :3].T + matrix[:3, 3]
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for lab in sorted(set(labels)):
        a, b = np.searchsorted(flat, lab, "left"), np.searchsorted(flat, lab, "right")
        if b <= a or flat[a] != lab:
            continue
        pick = order[a:b]
        faces = tris[pick % n].astype(np.int64)
        flip = pick >= n
        faces[flip, 1:] = faces[flip, 2:0:-1]
        used = np.zeros(pts.shape[0], bool)
        used[faces] = True
        number = np.cumsum(used) - 1
        out[lab] = (world[used], number[faces])
    return out


def _triangles(polys: Any) -> np.ndarray:
    """The (n, 3) corner indices of a vtkCellArray of triangles (a view, no copy)."""
    from vtkmodules.util import numpy_support as ns

    conn = ns.vtk_to_numpy(polys.GetConnectivityArray())
    homogeneous = polys.IsHomogeneous() if hasattr(polys, "IsHomogeneous") else None
    if homogeneous is None:  # no cheap test: look at the offsets
        off = ns.vtk_to_numpy(polys.GetOffsetsArray())
        homogeneous = 3 if np.all(np.diff(off) == 3) else -1
    if homogeneous != 3 or conn.size != 3 * polys.GetNumberOfCells():
        raise RuntimeError("surface extraction did not produce triangles")
    return conn.reshape(-1, 3)


def _face_labels(poly: Any, tris: np.ndarray) -> np.ndarray:
    """Flying edges: each face's label (from its first corner's point scalar)."""
    from vtkmodules.util import numpy_support as ns

    sc = poly.GetPointData().GetScalars()
    if sc is None:
        return ns.vtk_to_numpy(poly.GetCellData().GetScalars()).reshape(-1)
    return ns.vtk_to_numpy(sc).reshape(-1)[tris[:, 0]]


def segment_surfaces(
    seg: Segmentation,
    *,
    smooth: int = 0,
    decimate: float = 0.0,
    method: str = "surface_nets",
    segments: list[str] | None = None,
) -> list[Model]:
    """One closed-surface Model per (non-empty) segment, points in LPS mm.

    ``smooth``: smoothing iterations (0 = none; surface nets' constrained smoothing,
    windowed sinc for flying edges); ``decimate``: target reduction 0-1;
    ``method``: "surface_nets" or "flying_edges"; ``segments``: IDs or names to export.
    """
    v = vtk()
    if method not in ("surface_nets", "flying_edges"):
        raise ValueError(f"unknown surface method {method!r}")
    m = seg.geometry.index_to_lps_matrix()
    models: list[Model] = []
    wanted = None if segments is None else set(segments)
    for layer in range(seg.n_layers):
        segs = [s for s in seg.segments_in_layer(layer)
                if wanted is None or s.id in wanted or s.name in wanted]
        if not segs:
            continue
        labels = [int(s.label_value) for s in segs]
        img = _image(np.asarray(seg.layer_array(layer)))
        if method == "surface_nets":
            f = v.vtkSurfaceNets3D()
            f.SetInputData(img)
            for i, lab in enumerate(labels):
                f.SetValue(i, lab)
            f.SetBackgroundLabel(0)
            f.SetOutputMeshTypeToTriangles()
            if smooth > 0:
                f.SmoothingOn()
                f.SetNumberOfIterations(int(smooth))
            else:
                f.SmoothingOff()
            f.Update()
            poly = f.GetOutput()
        else:
            f = v.vtkDiscreteFlyingEdges3D()
            f.SetInputData(img)
            for i, lab in enumerate(labels):
                f.SetValue(i, lab)
            f.ComputeScalarsOn()
            f.ComputeNormalsOff()
            f.ComputeGradientsOff()
            f.Update()
            poly = f.GetOutput()
            if smooth > 0:
                s = v.vtkWindowedSincPolyDataFilter()
                s.SetInputData(poly)
                s.SetNumberOfIterations(int(smooth))
                s.BoundarySmoothingOff()
                s.FeatureEdgeSmoothingOff()
                s.NonManifoldSmoothingOn()
                s.NormalizeCoordinatesOn()
                s.SetPassBand(0.1)
                s.Update()
                poly = s.GetOutput()
        # Without decimation the points are mapped to LPS once, for all segments, in the split.
        parts = _split(poly, labels, method, None if decimate > 0 else m)
        for s in segs:
            if s.label_value not in parts:
                continue
            lps, tris = parts[s.label_value]
            if decimate > 0:
                pts, tris = _decimate(lps, tris, decimate)
                lps = pts @ m[:3, :3].T + m[:3, 3]
            rgb = np.clip(np.round(np.asarray(s.color, dtype=float) * 255), 0, 255).astype(np.uint8)
            model = Model.from_faces(lps, tris, name=s.name, source=seg.source)
            model.point_data["Color"] = np.broadcast_to(rgb, (len(lps), 3)).copy()
            model.colors_name = "Color"
            model.metadata["segment"] = {"id": s.id, "name": s.name, "color": list(s.color),
                                         "terminology": s.terminology}
            models.append(model)
    return models


def _decimate(pts: np.ndarray, tris: np.ndarray, reduction: float) -> tuple[np.ndarray, np.ndarray]:
    from vtkmodules.util import numpy_support as ns

    from ._vtkmesh import model_to_vtk

    v = vtk()
    poly = model_to_vtk(Model.from_faces(pts, tris))
    d = v.vtkQuadricDecimation()
    d.SetInputData(poly)
    d.SetTargetReduction(float(min(max(reduction, 0.0), 0.99)))
    d.Update()
    out = d.GetOutput()
    p = ns.vtk_to_numpy(out.GetPoints().GetData()).astype(float)
    c = ns.vtk_to_numpy(out.GetPolys().GetConnectivityArray()).reshape(-1, 3)
    return p, c


def write_gltf(models: list[Model], path: str | os.PathLike[str]) -> list[str]:
    """All surfaces in one glTF (.gltf/.glb) with the segment colours (as SlicerOpenAnatomy exports).

    Coordinates are written in RAS millimetres (Slicer's world), one node per segment named after it.
    """
    import trimesh

    from ..core.errors import WriteError
    from ..core.fileio import atomic_output

    p = Path(path)
    scene = trimesh.Scene()
    for model in models:
        pts = model.points.copy()
        pts[:, :2] *= -1.0  # LPS -> RAS
        color = (model.metadata.get("segment") or {}).get("color", [0.5, 0.5, 0.5])
        rgba = [int(round(c * 255)) for c in color[:3]] + [255]
        mat = trimesh.visual.material.PBRMaterial(baseColorFactor=rgba, name=model.name)
        mesh = trimesh.Trimesh(vertices=pts, faces=model.triangles(), process=False,
                               visual=trimesh.visual.TextureVisuals(material=mat))
        scene.add_geometry(mesh, node_name=model.name, geom_name=model.name)
    if not models:
        raise WriteError(p, "no non-empty segment to export")
    with atomic_output(p) as tmp:
        data = scene.export(file_type="glb" if p.suffix.lower() == ".glb" else "gltf")
        if isinstance(data, dict):  # .gltf: embed buffers as data URIs in the JSON
            data = trimesh.exchange.gltf.export_gltf(scene, embed_buffers=True)["model.gltf"]
        tmp.write_bytes(data if isinstance(data, bytes) else str(data).encode())
    return [os.fspath(p)]


def _safe_name(name: str) -> str:
    """A file-name stem from a segment name."""
    return re.sub(r"[^\w.+-]+", "_", name).strip("._") or "segment"


def write_segment_surfaces(seg, outdir: str | Path, fmt: str = "stl", smooth: int = 0, decimate: float = 0.0,
                           method: str = "surface_nets", segments: list[str] | None = None,
                           stem: str = "") -> list[str]:
    """Write one ``<segment name>.<fmt>`` per non-empty segment of ``seg`` into ``outdir`` (or one glTF).

    Surfaces are closed, in LPS mm (formats that store RAS are converted by their writers).
    ``segments``: IDs or names to export (all when None); returns the paths written.
    """
    from ..core import registry

    if fmt not in SURFACE_FORMATS:
        raise MedioError(outdir, f"unknown surface format {fmt!r} (one of {', '.join(SURFACE_FORMATS)})")
    models = segment_surfaces(seg, smooth=smooth, decimate=decimate, method=method, segments=segments)
    if not models:
        raise MedioError(seg.source or seg.name, "no non-empty segment to export")
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    if fmt in ("gltf", "glb"):
        return write_gltf(models, out / f"{_safe_name(stem or seg.name or 'segmentation')}.{fmt}")
    written: list[str] = []
    used: set[str] = set()
    for m in models:
        base = _safe_name(m.name)
        name, n = base, 1
        while name in used:
            n += 1
            name = f"{base}_{n}"
        used.add(name)
        written += registry.write(m, out / f"{name}.{fmt}")
    return written
