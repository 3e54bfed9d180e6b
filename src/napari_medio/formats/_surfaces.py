"""Segmentation -> closed surfaces (Slicer's "export to models"), in LPS world coordinates.

One pass of VTK's ``vtkSurfaceNets3D`` (default) or ``vtkDiscreteFlyingEdges3D``
per layer extracts every segment's boundary at once; the result is split per
segment by the boundary labels, and the points are mapped from voxel index to
LPS with the segmentation's geometry (so oblique grids are placed exactly).
Optional smoothing (iterations) and decimation (target reduction 0-1).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..core.model import Model
from ..core.segmentation import Segmentation
from ._vtkmesh import vtk

__all__ = ["segment_surfaces", "write_gltf"]


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


def _split(poly: Any, labels: list[int], method: str) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    from vtkmodules.util import numpy_support as ns

    pts = ns.vtk_to_numpy(poly.GetPoints().GetData()).astype(float) if poly.GetNumberOfPoints() else np.zeros((0, 3))
    polys = poly.GetPolys()
    if polys.GetNumberOfCells() == 0:
        return {}
    off = ns.vtk_to_numpy(polys.GetOffsetsArray())
    conn = ns.vtk_to_numpy(polys.GetConnectivityArray())
    tris = conn.reshape(-1, 3) if np.all(np.diff(off) == 3) else None
    if tris is None:
        raise RuntimeError("surface extraction did not produce triangles")
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    if method == "surface_nets":
        bl = ns.vtk_to_numpy(poly.GetCellData().GetArray("BoundaryLabels")).reshape(-1, 2)
        want = np.asarray(labels)
        # (triangle, label, flipped) for each side that is a wanted segment, grouped by label in one sort.
        if bl.size and 0 <= bl.min() and bl.max() < 1 << 20:  # a lookup table beats np.isin
            lut = np.zeros(int(bl.max()) + 1, bool)
            lut[want[want <= bl.max()]] = True
            side0, side1 = np.flatnonzero(lut[bl[:, 0]]), np.flatnonzero(lut[bl[:, 1]])
        else:
            side0 = np.flatnonzero(np.isin(bl[:, 0], want))
            side1 = np.flatnonzero(np.isin(bl[:, 1], want))
        tri_ids = np.r_[side0, side1]
        labs = np.r_[bl[side0, 0], bl[side1, 1]]
        flips = np.r_[np.zeros(side0.size, bool), np.ones(side1.size, bool)]
    else:
        sc = poly.GetPointData().GetScalars()
        if sc is None:
            cell_lab = ns.vtk_to_numpy(poly.GetCellData().GetScalars()).reshape(-1)
        else:
            cell_lab = ns.vtk_to_numpy(sc).reshape(-1)[tris[:, 0]]
        tri_ids = np.flatnonzero(np.isin(cell_lab, labels))
        labs = cell_lab[tri_ids]
        flips = np.zeros(tri_ids.size, bool)
    order = np.argsort(labs, kind="stable")
    tri_ids, labs, flips = tri_ids[order], labs[order], flips[order]
    bounds = np.searchsorted(labs, np.asarray(sorted(labels)), side="left")
    ends = np.searchsorted(labs, np.asarray(sorted(labels)), side="right")
    mark = np.zeros(len(pts), bool)
    remap = np.empty(len(pts), np.int64)
    for lab, a, b in zip(sorted(labels), bounds, ends):
        if a == b:
            continue
        f = tris[tri_ids[a:b]]
        fl = flips[a:b]
        if fl.any():
            f = f.copy()
            f[fl] = f[fl][:, [0, 2, 1]]
        mark[:] = False
        mark[f.reshape(-1)] = True
        used = np.flatnonzero(mark)
        remap[used] = np.arange(used.size)
        out[int(lab)] = (pts[used], remap[f])
    return out


def segment_surfaces(
    seg: Segmentation,
    *,
    smooth: int = 0,
    decimate: float = 0.0,
    method: str = "surface_nets",
    segments: Optional[list[str]] = None,
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
        parts = _split(poly, labels, method)
        for s in segs:
            if s.label_value not in parts:
                continue
            pts, tris = parts[s.label_value]
            if decimate > 0:
                pts, tris = _decimate(pts, tris, decimate)
            lps = pts @ m[:3, :3].T + m[:3, 3]
            rgb = np.clip(np.round(np.asarray(s.color, dtype=float) * 255), 0, 255).astype(np.uint8)
            model = Model.from_faces(lps, tris, name=s.name, source=seg.source)
            model.point_data["Color"] = np.tile(rgb, (len(lps), 1))
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


def write_gltf(models: list[Model], path: "str | os.PathLike[str]") -> list[str]:
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
