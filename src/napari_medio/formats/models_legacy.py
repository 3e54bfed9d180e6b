"""Read-only model formats Slicer reads: Movie.BYU (.byu, .g), AVS UCD (.ucd), ITK MetaMesh (.meta).

None of them carries a coordinate-system marker, so they are read as LPS (Slicer's
default), or as RAS with ``coordinate_system="RAS"``.  BYU and UCD go through VTK's
readers after a structural check of the header (so random or truncated bytes give a
clear error, not a partial mesh); MetaMesh (ASCII) is parsed here.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ..core.errors import FormatError
from ..core.fileio import read_content
from ..core.kinds import DataKind
from ..core.model import Model
from ..core.registry import FileFormat, register
from ._vtkmesh import model_from_vtk, run_reader, to_lps, vtk
from .models_vtk import check_model
from .naming import base_name

__all__ = ["read_byu", "read_ucd", "read_meta_mesh"]


def _text_head(path: Path, n: int = 4096) -> str:
    with open(path, "rb") as fh:
        head = fh.read(n)
    if not head:
        raise FormatError(path, "file is empty")
    if b"\0" in head:
        raise FormatError(path, "binary content where a text header is expected")
    return head.decode("latin-1")


def _finish(model: Model, path: Path, coordinate_system: str | None) -> list[Model]:
    if model.n_points == 0 or model.n_cells == 0:
        raise FormatError(path, "the mesh is empty (no points or no cells)")
    to_lps(model, coordinate_system.upper() if coordinate_system else None)
    model.coordinate_system = None
    return [check_model(model, path)]


# -- BYU ------------------------------------------------------------------------------------------
def _sniff_byu(head: bytes, path: Path) -> bool:
    first = head.split(b"\n", 1)[0].split()
    return len(first) == 4 and all(x.isdigit() for x in first)


def read_byu(path: str | os.PathLike[str], *, coordinate_system: str | None = None) -> list[Model]:
    """Movie.BYU geometry file (parts, vertices, polygons, edges)."""
    p = Path(path)
    text = read_content(p).decode("latin-1")
    tokens = text.split()
    try:
        n_parts, n_verts, n_polys, n_edges = (int(t) for t in tokens[:4])
        if min(n_parts, n_verts, n_polys) <= 0:
            raise ValueError
        body = tokens[4 + 2 * n_parts:]
        coords = np.array(body[:3 * n_verts], dtype=float)
        conn = np.array(body[3 * n_verts:3 * n_verts + n_edges], dtype=np.int64)
    except (ValueError, IndexError):
        raise FormatError(p, "not a Movie.BYU file (bad header counts or values)") from None
    if coords.size != 3 * n_verts or conn.size != n_edges:
        raise FormatError(p, f"file is truncated: {n_verts} vertices and {n_edges} polygon indices announced")
    if (np.abs(conn) > n_verts).any() or (conn == 0).any():
        raise FormatError(p, f"a polygon refers to a vertex outside 1..{n_verts}")
    if int((conn < 0).sum()) != n_polys:
        raise FormatError(p, f"{n_polys} polygons announced, {int((conn < 0).sum())} found")
    v = vtk()
    reader = v.vtkBYUReader()
    reader.SetGeometryFileName(os.fspath(p))
    ds = run_reader(reader, p, "Movie.BYU")
    model = model_from_vtk(ds, name=base_name(p), source=os.fspath(p))
    return _finish(model, p, coordinate_system)


# -- UCD ------------------------------------------------------------------------------------------
def _sniff_ucd(head: bytes, path: Path) -> bool:
    if head[:1] == b"\x07":
        return True
    for line in head.split(b"\n"):
        s = line.strip()
        if not s or s.startswith(b"#"):
            continue
        parts = s.split()
        return len(parts) == 5 and all(x.isdigit() for x in parts)
    return False


def read_ucd(path: str | os.PathLike[str], *, coordinate_system: str | None = None) -> list[Model]:
    """AVS UCD unstructured grid (ASCII or binary)."""
    p = Path(path)
    data = read_content(p)
    if data[:1] != b"\x07":
        lines = [ln for ln in data.decode("latin-1").splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        try:
            n_nodes, n_cells = (int(x) for x in lines[0].split()[:2])
            if len(lines[0].split()) != 5 or n_nodes <= 0:
                raise ValueError
        except (ValueError, IndexError):
            raise FormatError(p, "not an AVS UCD file (first line must be 5 counts)") from None
        if len(lines) < 1 + n_nodes + n_cells:
            raise FormatError(p, f"file is truncated: {n_nodes} nodes and {n_cells} cells announced")
        ids = set()
        for ln in lines[1:1 + n_nodes]:
            parts = ln.split()
            if len(parts) < 4:
                raise FormatError(p, f"bad node line {ln[:60]!r}")
            ids.add(parts[0])
        for ln in lines[1 + n_nodes:1 + n_nodes + n_cells]:
            parts = ln.split()
            if len(parts) < 4 or any(x not in ids for x in parts[3:]):
                raise FormatError(p, f"cell line refers to an unknown node: {ln[:60]!r}")
    v = vtk()
    reader = v.vtkAVSucdReader()
    reader.SetFileName(os.fspath(p))
    ds = run_reader(reader, p, "AVS UCD")
    model = model_from_vtk(ds, name=base_name(p), source=os.fspath(p))
    return _finish(model, p, coordinate_system)


# -- MetaMesh -------------------------------------------------------------------------------------
_META_CELLS = {"VRTX": 1, "VERTEX": 1, "LN": 3, "LINE": 3, "TRI": 5, "TRIANGLE": 5, "QAD": 9, "QUAD": 9,
               "PLGN": 7, "POLYGON": 7, "TET": 10, "TETRA": 10, "HEX": 12, "HEXA": 12}
_META_SIZES = {1: 1, 3: 2, 5: 3, 9: 4, 10: 4, 12: 8}


def _sniff_meta(head: bytes, path: Path) -> bool:
    return re.search(rb"ObjectType\s*=\s*Mesh", head[:2048]) is not None


def read_meta_mesh(path: str | os.PathLike[str], *, coordinate_system: str | None = None) -> list[Model]:
    """ITK MetaMesh (.meta, ASCII): points, typed cells, transform matrix and offset applied."""
    p = Path(path)
    text = _text_head(p, 1 << 30)
    if not re.search(r"ObjectType\s*=\s*Mesh", text[:2048]):
        raise FormatError(p, "not a MetaMesh file (no 'ObjectType = Mesh')")
    if re.search(r"BinaryData\s*=\s*True", text[:2048], re.IGNORECASE):
        raise FormatError(p, "binary MetaMesh is not supported (ASCII only)")
    lines = text.splitlines()
    fields: dict[str, str] = {}
    points = None
    cells: list[tuple[int, list[int]]] = []
    i = 0
    cell_type = None
    try:
        while i < len(lines):
            line = lines[i].strip()
            i += 1
            if "=" not in line:
                continue
            key, value = (x.strip() for x in line.split("=", 1))
            fields[key] = value
            if key == "Points":
                n = int(fields["NPoints"])
                ndim = int(fields.get("NDims", 3))
                rows = [lines[i + r].split() for r in range(n)]
                points = np.array([[float(x) for x in row[1:1 + ndim]] for row in rows])
                i += n
            elif key == "CellType":
                cell_type = _META_CELLS.get(value.upper())
                if cell_type is None:
                    raise FormatError(p, f"MetaMesh cell type {value!r} is not supported")
            elif key == "Cells":
                n = int(fields["NCells"])
                size = _META_SIZES.get(cell_type or 5)
                for r in range(n):
                    row = [int(x) for x in lines[i + r].split()]
                    ids = row[1:] if cell_type == 7 or size is None else row[1:1 + size]
                    if size is not None and len(ids) != size:
                        raise ValueError
                    cells.append((cell_type or 5, ids))
                i += n
    except (IndexError, ValueError, KeyError):
        raise FormatError(p, "MetaMesh is truncated or has a bad points/cells section") from None
    if points is None or points.shape[1] != 3:
        raise FormatError(p, "MetaMesh has no 3D points")
    matrix = np.array([float(x) for x in fields.get("TransformMatrix", "1 0 0 0 1 0 0 0 1").split()]).reshape(3, 3)
    offset = np.array([float(x) for x in fields.get("Offset", "0 0 0").split()])
    points = points @ matrix.T + offset
    if not cells:
        raise FormatError(p, "the mesh is empty (no cells)")
    types = np.array([c[0] for c in cells], np.uint8)
    sizes = np.array([len(c[1]) for c in cells])
    conn = np.concatenate([np.asarray(c[1], np.int64) for c in cells])
    dataset = "unstructured_grid" if np.isin(types, [10, 12]).any() else "polydata"
    model = Model(points, types, np.r_[0, np.cumsum(sizes)], conn, dataset=dataset, name=base_name(p),
                  source=os.fspath(p), metadata={"meta": fields})
    return _finish(model, p, coordinate_system)


_OPT = {"coordinate_system": "LPS (default) or RAS: these files carry no marker"}
register(FileFormat(name="byu", description="Movie.BYU polygon mesh (.byu, .g), read only", extensions=(".byu", ".g"),
                    read=read_byu, sniff=_sniff_byu, kinds=(DataKind.MODEL,), backend="VTK",
                    read_options=_OPT))
register(FileFormat(name="ucd", description="AVS UCD unstructured grid (.ucd), read only", extensions=(".ucd",),
                    read=read_ucd, sniff=_sniff_ucd, kinds=(DataKind.MODEL,), backend="VTK",
                    read_options=_OPT))
register(FileFormat(name="meta-mesh", description="ITK MetaMesh (.meta, ASCII), read only", extensions=(".meta",),
                    read=read_meta_mesh, sniff=_sniff_meta, kinds=(DataKind.MODEL,), backend="napari-medio",
                    read_options=_OPT))
