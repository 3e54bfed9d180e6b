"""Segmentation -> closed surfaces (Slicer's "export to models"), in LPS world coordinates.

One pass of VTK's ``vtkSurfaceNets3D`` (default) or ``vtkDiscreteFlyingEdges3D``
per layer extracts every segment's boundary at once, as one mesh whose faces carry
their labels.  That mesh is then split into one compacted mesh per segment (its faces,
both sides of a face between two wanted segments, the second flipped; only its used
vertices, numbered in point order), and the points are mapped from voxel index to LPS
with the segmentation's geometry (so oblique grids are placed exactly).

Why a hand-written kernel: in numpy the split is a chain of dependent gathers and
scatters over every triangle corner (select, flip, mark, number, renumber, gather), each
a separate pass with its own temporaries, and together they cost a third of
``vtkSurfaceNets3D``'s own run, far more than the pass over the data they need (see
docs/performance.md).  So the split is a small compiled kernel (:mod:`._surface_kernel`, numba, a
few loops over the faces); when numba is not importable, a vectorised numpy version
gives the same arrays.
Optional smoothing (iterations) and decimation (target reduction 0-1).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Optional

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
           matrix: Optional[np.ndarray] = None) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Split VTK's multi-label surface into ``{label: (points, triangles)}``.

    Segment by segment: its faces (surface nets: both sides of a face between two wanted
    segments, the second side with its winding flipped), its used vertices numbered from 0
    in point order, its points in index space or mapped by ``matrix`` (4x4) when given.
    The compiled kernel (:mod:`._surface_kernel`) does it in a few loops; without numba,
    the vectorised numpy version below gives the same arrays.
    """
    kernel = _kernel()
    if kernel is None:
        return _split_numpy(poly, labels, method, matrix)
    from vtkmodules.util import numpy_support as ns

    polys = poly.GetPolys()
    if poly.GetNumberOfPoints() == 0 or polys.GetNumberOfCells() == 0:
        return {}
    pts = ns.vtk_to_numpy(poly.GetPoints().GetData())
    tris = _triangles(polys)
    want = np.unique(np.asarray(labels))
    if want.size == 0 or max(pts.shape[0], tris.shape[0]) >= 1 << 31:  # int32 numbering
        return _split_numpy(poly, labels, method, matrix)
    if method == "surface_nets":
        labs = ns.vtk_to_numpy(poly.GetCellData().GetArray("BoundaryLabels")).reshape(-1, 2)
    else:
        labs = _face_labels(poly, tris).reshape(-1, 1)
    labs, lut = _label_table(labs, want)
    mat = np.eye(3, 4) if matrix is None else np.array(matrix, dtype=float)[:3, :4].copy()
    use = mat != 0.0
    use[~use[:, :3].any(axis=1), 0] = True  # as _affine: a row of zeros still takes its first term
    if pts.dtype not in (np.float32, np.float64):
        pts = pts.astype(float)
    select_faces, segment_meshes = kernel
    start, faces = select_faces(labs, lut, want.size, tris)
    seg_start = np.ascontiguousarray(start[::labs.shape[1]])  # each segment's first face, and the end
    points, point_start = segment_meshes(faces, seg_start, pts, mat, use)
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for s in range(want.size):
        f0, f1 = int(seg_start[s]), int(seg_start[s + 1])
        if f1 > f0:
            out[int(want[s])] = (points[point_start[s]:point_start[s + 1]], faces[f0:f1])
    return out


_KERNEL: Any = None


def _kernel() -> Any:
    """The compiled kernels ``(select_faces, segment_meshes)`` of :mod:`._surface_kernel`,
    or None without numba or with ``NAPARI_MEDIO_NUMBA=0`` (the numpy split: same output,
    no ``import numba`` (~0.4 s) or compile (3-4 s once per machine) in a one-shot process)."""
    global _KERNEL
    if os.environ.get("NAPARI_MEDIO_NUMBA", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    if _KERNEL is None:
        try:
            from ._surface_kernel import segment_meshes, select_faces
        except Exception:  # numba missing, not importable with this numpy, or no writable cache
            _KERNEL = False
        else:
            _KERNEL = (select_faces, segment_meshes)
    return _KERNEL or None


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


def _label_table(labs: np.ndarray, want: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(labels, lut)`` for the kernel: ``lut[label]`` is the label's index in ``want`` or -1.

    Small integer labels (8/16-bit, or any integers in 0..2^20) index the table directly;
    other labels (negative, large, non-integer) become their index in ``want`` (or -1)
    first, with an identity table.
    """
    kind, size = labs.dtype.kind, labs.dtype.itemsize
    if labs.size and kind in "iu" and size <= 8:
        if size <= 2:
            top = (1 << (8 * size)) - 1 if kind == "u" else (1 << (8 * size - 1)) - 1
        else:
            top = int(labs.max())
        if (kind == "u" or size <= 2 or int(labs.min()) >= 0) and top < 1 << 20 \
                and not (kind == "u" and size == 8):
            lut = np.full(top + 1, -1, np.int32)
            ok = (want >= 0) & (want <= top) & (want == np.round(want))
            lut[want[ok].astype(np.int64)] = np.flatnonzero(ok).astype(np.int32)
            return labs, lut
    idx = np.searchsorted(want, labs)
    idx = np.minimum(idx, want.size - 1)
    found = want[idx] == labs
    return np.where(found, idx, -1).astype(np.int32), np.arange(want.size, dtype=np.int32)


def _labelled_faces(poly: Any, tris: np.ndarray, want: np.ndarray,
                    method: str) -> tuple[np.ndarray, np.ndarray, int]:
    """(flat face indices, their labels, face count) of the faces of the ``want`` labels.

    Surface nets label both sides of a face: the flat index is ``side * n + face``,
    side 0 of all faces first.  Other methods label a face by its first point's
    scalar (or by the cell scalars).
    """
    from vtkmodules.util import numpy_support as ns

    if method == "surface_nets":
        bl = ns.vtk_to_numpy(poly.GetCellData().GetArray("BoundaryLabels")).reshape(-1, 2)
        n = bl.shape[0]
        sides = np.ascontiguousarray(bl.T).reshape(-1)
        top = int(sides.max()) if sides.size else 0
        if sides.size and (sides.dtype.kind == "u" or sides.min() >= 0) and top < 1 << 20:
            lut = np.zeros(top + 1, bool)  # a lookup table beats np.isin
            lut[want[(want >= 0) & (want <= top)]] = True
            f = np.flatnonzero(lut[sides])
        else:
            f = np.flatnonzero(np.isin(sides, want))
        return f, sides[f], n
    sc = poly.GetPointData().GetScalars()
    if sc is None:
        cell_lab = ns.vtk_to_numpy(poly.GetCellData().GetScalars()).reshape(-1)
    else:
        cell_lab = ns.vtk_to_numpy(sc).reshape(-1)[tris[:, 0]]
    f = np.flatnonzero(np.isin(cell_lab, want))
    return f, cell_lab[f], cell_lab.size


def _split_numpy(poly: Any, labels: list[int], method: str,
                 matrix: Optional[np.ndarray] = None) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """:func:`_split` without numba, vectorised.

    One stable sort groups the (triangle, side) pairs by label (surface nets: both sides
    of a face between two wanted segments, the second side with its winding flipped);
    one scatter into a (segments x points) mask numbers each segment's vertices in
    point order, so there is no per-segment pass over the mesh.  Points are in index
    space, or transformed once by ``matrix`` (4x4) when given.  The per-label arrays are
    views into one array each for points and triangles.
    """
    from vtkmodules.util import numpy_support as ns

    polys = poly.GetPolys()
    if poly.GetNumberOfPoints() == 0 or polys.GetNumberOfCells() == 0:
        return {}
    pts = ns.vtk_to_numpy(poly.GetPoints().GetData())
    tris = _triangles(polys)
    want = np.asarray(sorted(labels))
    f, labs, n = _labelled_faces(poly, tris, want, method)
    # Group the (face, side) pairs by label, stably (a radix sort for 8/16-bit labels);
    # the faces seen from side 1 (surface nets' second label) get their winding flipped.
    order = np.argsort(labs, kind="stable")
    labs = labs[order]
    f = f[order]
    flipped = np.flatnonzero(f >= n)
    if flipped.size:
        f[flipped] -= n
    faces = np.take(tris, f, axis=0)  # (pairs, 3); take beats fancy row indexing
    if flipped.size:
        faces[flipped, 1:] = faces[flipped, 2:0:-1]
    want = want.astype(labs.dtype) if want.size and np.can_cast(want.min(), labs.dtype) \
        and np.can_cast(want.max(), labs.dtype) else want
    starts = np.searchsorted(labs, want, side="left")
    ends = np.searchsorted(labs, want, side="right")
    keep = ends > starts
    want, starts, ends = want[keep], starts[keep], ends[keep]
    if want.size == 0:
        return {}
    npts = pts.shape[0]
    # Segments in groups: one per worker thread (numpy releases the GIL), each group's
    # (segments x points) mask bounded to 64 MB.
    per_group = max(1, (1 << 26) // max(npts, 1))
    n_groups = max(-(-want.size // per_group), min(_workers(), want.size))
    bounds = np.linspace(0, want.size, n_groups + 1).round().astype(int)
    groups = [(int(g0), int(g1)) for g0, g1 in zip(bounds[:-1], bounds[1:]) if g1 > g0]
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    pool = _pool() if len(groups) > 1 else None

    def to_world() -> np.ndarray:
        return pts.astype(float) if matrix is None else _affine(pts, matrix)

    # The points' mapping runs beside the first group's numbering (submitted first, so
    # a worker takes it before any group that waits for it).
    src_future = pool.submit(to_world) if pool is not None else None

    def number(g: tuple[int, int]) -> list[tuple[int, np.ndarray, np.ndarray]]:
        g0, g1 = g
        a, b = int(starts[g0]), int(ends[g1 - 1])
        # key = (segment in group) * npts + vertex: unique per (segment, vertex), sorted by both.
        key = faces[a:b]
        if g1 - g0 > 1:
            kt = np.int32 if (g1 - g0) * npts < 1 << 31 else np.int64
            key = key.astype(kt)
            for s in range(g0 + 1, g1):
                key[starts[s] - a:ends[s] - a] += kt((s - g0) * npts)
        mark = np.zeros((g1 - g0) * npts, bool)
        mark[key.reshape(-1)] = True
        used = np.flatnonzero(mark)
        first = np.searchsorted(used, np.arange(g1 - g0 + 1, dtype=np.int64) * npts)
        remap = np.empty(mark.size, np.int64)
        count = np.arange(int(np.max(np.diff(first))), dtype=np.int64)
        for s in range(g1 - g0):  # each segment's vertices numbered from 0, in point order
            remap[used[first[s]:first[s + 1]]] = count[:first[s + 1] - first[s]]
        new = np.take(remap, key)  # (faces, 3) int64, already per-segment indices
        src = to_world() if src_future is None else src_future.result()
        res = []
        for s in range(g0, g1):
            p0, p1 = int(first[s - g0]), int(first[s - g0 + 1])
            f = new[starts[s] - a:ends[s] - a]
            ui = used[p0:p1]
            if s > g0:
                ui = ui - (s - g0) * npts
            res.append((int(want[s]), np.take(src, ui, axis=0), f))
        return res

    results = [number(groups[0])] if pool is None else list(pool.map(number, groups))
    for res in results:
        for lab, p, f in res:
            out[lab] = (p, f)
    return out


_POOL: Any = None


def _workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def _pool() -> Any:
    global _POOL
    if _POOL is None:
        from concurrent.futures import ThreadPoolExecutor

        _POOL = ThreadPoolExecutor(max_workers=_workers(), thread_name_prefix="medio-surfaces")
    return _POOL


def _affine(pts: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``pts @ matrix[:3, :3].T + matrix[:3, 3]`` in float64, column by column (faster than
    matmul for an (n, 3) array)."""
    p = np.asarray(pts, dtype=float)
    out = np.empty((p.shape[0], 3))
    for c in range(3):
        col = out[:, c]
        # Zero terms (an axis-aligned grid) are skipped: adding 0.0 * x changes nothing.
        terms = [r for r in range(3) if matrix[c, r] != 0.0] or [0]
        np.multiply(p[:, terms[0]], matrix[c, terms[0]], out=col)
        for r in terms[1:]:
            col += p[:, r] * matrix[c, r]
        if matrix[c, 3] != 0.0:
            col += matrix[c, 3]
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
            colors = np.empty((len(lps), 3), np.uint8)
            for c in range(3):  # column by column: a few times faster than np.tile or colors[:] = rgb
                colors[:, c] = rgb[c]
            model.point_data["Color"] = colors
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


def _safe_name(name: str) -> str:
    """A file-name stem from a segment name."""
    return re.sub(r"[^\w.+-]+", "_", name).strip("._") or "segment"


def write_segment_surfaces(seg, outdir: "str | Path", fmt: str = "stl", smooth: int = 0, decimate: float = 0.0,
                           method: str = "surface_nets", segments: "list[str] | None" = None,
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
