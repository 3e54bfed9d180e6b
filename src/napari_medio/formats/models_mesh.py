"""Surface mesh exchange formats: STL (ASCII/binary), PLY (ASCII/binary), Wavefront OBJ.

Pure NumPy readers and writers (no VTK needed), with Slicer's coordinate-system
markers (``vtkMRMLModelStorageNode``): the STL header / ``solid`` line
``3D Slicer output. SPACE=LPS``, the PLY ``comment SPACE=LPS`` line, the OBJ first
comment ``# 3D Slicer output. SPACE=LPS``; LPS when absent.

Readers mirror what VTK (and so Slicer) gives: STL points merged where exactly
equal, OBJ vertices split where faces give them different normals or texture
coordinates, PLY elements as stored.  Precision: PLY and OBJ are written with
double-precision coordinates (exact round trip); binary STL holds float32 only.

Kept per format: PLY -- normals, 8-bit RGB(A) colours, every one-component point
array (as a PLY property), polygons of any size; OBJ -- normals, texture
coordinates, vertex colours (``v x y z r g b``), polygons and lines; STL --
triangles only (polygons are triangulated, as Slicer does).
"""
from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import FormatError, WriteError
from ..core.fileio import atomic_output, read_content
from ..core.kinds import DataKind
from ..core.model import Model
from ..core.registry import FileFormat, register
from ._vtkmesh import space_of, to_lps
from .naming import base_name

__all__ = ["read_stl", "write_stl", "read_ply", "write_ply", "read_obj", "write_obj"]


def _finish(model: Model, path: Path, space: str | None, default: str | None) -> list[Model]:
    from .models_vtk import check_model

    if model.n_points == 0:
        raise FormatError(path, "the mesh is empty (no vertices)")
    to_lps(check_model(model, path), space or (default.upper() if default else None))
    model.coordinate_system = space
    return [model]


def _prepare(model: Any, path: Path, coordinate_system: str) -> tuple[Model, np.ndarray, dict]:
    from .models_vtk import prepare_for_writing

    model, out = prepare_for_writing(model, path, coordinate_system)
    return model, out.points, out.point_data


def _surface_triangles(model: Model, path: Path) -> np.ndarray:
    tris = model.triangles()
    if tris.size == 0:
        raise WriteError(path, "the mesh has no surface (no polygons) to write")
    return tris


# == STL ===========================================================================================
def _sniff_stl(head: bytes, path: Path) -> bool:
    if head.lstrip().lower().startswith(b"solid"):
        return True
    try:
        size = path.stat().st_size
    except OSError:
        return False
    if size < 84 or len(head) < 84:
        return False
    n = int(np.frombuffer(head[80:84], "<u4")[0])
    return size == 84 + 50 * n


def _merge_points(tri_pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique points (first-occurrence order) and per-corner indices, exact-equality merge like vtkMergePoints."""
    flat = np.ascontiguousarray(tri_pts.reshape(-1, 3))
    view = flat.view(np.dtype((np.void, flat.dtype.itemsize * 3))).reshape(-1)
    _, first, inverse = np.unique(view, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return flat[first[order]], rank[inverse.reshape(-1)].reshape(-1, 3)


def read_stl(path: str | os.PathLike[str], *, coordinate_system: str | None = None) -> list[Model]:
    """Read an ASCII or binary STL (points merged as VTK's reader merges them)."""
    p = Path(path)
    data = read_content(p)
    binary_size_ok = len(data) >= 84 and len(data) == 84 + 50 * int(np.frombuffer(data[80:84], "<u4")[0])
    if data.lstrip()[:5].lower() == b"solid" and not binary_size_ok:
        text = data.decode("latin-1")
        header = text.lstrip().split("\n", 1)[0]
        if "endsolid" not in text[-200:].lower() and "endsolid" not in text.lower():
            raise FormatError(p, "ASCII STL is truncated (no 'endsolid')")
        nums = re.findall(r"^\s*vertex\s+(\S+)\s+(\S+)\s+(\S+)", text, re.MULTILINE | re.IGNORECASE)
        n_facets = len(re.findall(r"^\s*facet\b", text, re.MULTILINE | re.IGNORECASE))
        if not nums or len(nums) % 3 or len(nums) != 3 * n_facets:
            raise FormatError(p, f"ASCII STL has {len(nums)} vertices for {n_facets} facets (3 per facet expected)")
        try:
            tri_pts = np.array(nums, dtype=float).reshape(-1, 3, 3)
        except ValueError:
            raise FormatError(p, "ASCII STL has a non-numeric vertex") from None
        binary = False
    else:
        if len(data) < 84:
            raise FormatError(p, "binary STL is shorter than its 84-byte header")
        n = int(np.frombuffer(data[80:84], "<u4")[0])
        if len(data) < 84 + 50 * n:
            raise FormatError(p, f"binary STL is truncated: {n} triangles announced, "
                                 f"{(len(data) - 84) // 50} present")
        if len(data) != 84 + 50 * n:
            raise FormatError(p, f"not an STL file: size {len(data)} does not match {n} triangles")
        rec = np.frombuffer(data, dtype=np.dtype([("n", "<f4", 3), ("v", "<f4", (3, 3)), ("a", "<u2")]),
                            count=n, offset=84)
        tri_pts = rec["v"].astype(float)
        header = data[:80].split(b"\0", 1)[0].decode("latin-1", "replace")
        binary = True
    if tri_pts.size == 0:
        raise FormatError(p, "the mesh is empty (no triangles)")
    points, tris = _merge_points(tri_pts)
    model = Model.from_faces(points, tris, name=base_name(p), source=os.fspath(p))
    model.metadata["stl"] = {"header": header.strip(), "binary": binary}
    return _finish(model, p, space_of(header), coordinate_system)


def write_stl(model: Any, path: str | os.PathLike[str], *, coordinate_system: str = "LPS",
              compress: bool = True) -> list[str]:
    """Write STL (binary, or ASCII with ``compress=False``) with ``3D Slicer output. SPACE=...``."""
    p = Path(path)
    model, pts, _pd = _prepare(model, p, coordinate_system)
    tris = _surface_triangles(model, p)
    header = f"3D Slicer output. SPACE={coordinate_system.upper()}"
    v = pts[tris]
    normals = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    nn = np.linalg.norm(normals, axis=1, keepdims=True)
    normals = normals / np.where(nn == 0, 1, nn)
    with atomic_output(p) as tmp:
        with open(tmp, "wb") as fh:
            if compress:
                rec = np.zeros(len(tris), dtype=np.dtype([("n", "<f4", 3), ("v", "<f4", (3, 3)), ("a", "<u2")]))
                rec["n"] = normals
                rec["v"] = v
                fh.write(header.encode("latin-1").ljust(80, b" ")[:80])
                fh.write(np.uint32(len(tris)).tobytes())
                fh.write(rec.tobytes())
            else:
                lines = [f"solid {header}"]
                for nrm, tri in zip(normals.tolist(), v.tolist()):
                    lines.append(f"  facet normal {nrm[0]:.9g} {nrm[1]:.9g} {nrm[2]:.9g}\n    outer loop")
                    for q in tri:
                        lines.append(f"      vertex {q[0]!r} {q[1]!r} {q[2]!r}")
                    lines.append("    endloop\n  endfacet")
                lines.append(f"endsolid {header}\n")
                fh.write("\n".join(lines).encode("latin-1"))
    return [os.fspath(p)]


# == PLY ===========================================================================================
_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2", "ushort": "u2",
    "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4", "float": "f4", "float32": "f4",
    "double": "f8", "float64": "f8",
}
_PLY_NAMES = {"i1": "char", "u1": "uchar", "i2": "short", "u2": "ushort", "i4": "int", "u4": "uint",
              "f4": "float", "f8": "double", "i8": "double", "u8": "double"}


def _sniff_ply(head: bytes, path: Path) -> bool:
    return head.startswith(b"ply") and b"format" in head[:200]


def _ply_header(data: bytes, path: Path) -> tuple[str, list, list[str], int]:
    end = data.find(b"end_header")
    if not data.startswith(b"ply") or end < 0:
        raise FormatError(path, "not a PLY file (no 'ply' magic or no 'end_header')")
    nl = data.find(b"\n", end)
    if nl < 0:
        raise FormatError(path, "PLY header is truncated")
    lines = data[:end].decode("latin-1").splitlines()
    fmt = None
    elements: list = []
    comments: list[str] = []
    for line in lines[1:]:
        parts = line.split()
        if not parts:
            continue
        key = parts[0]
        if key == "format":
            if len(parts) < 2 or parts[1] not in ("ascii", "binary_little_endian", "binary_big_endian"):
                raise FormatError(path, f"unknown PLY format line {line!r}")
            fmt = parts[1]
        elif key in ("comment", "obj_info"):
            comments.append(line.split(None, 1)[1] if len(parts) > 1 else "")
        elif key == "element":
            if len(parts) != 3 or not parts[2].isdigit():
                raise FormatError(path, f"bad PLY element line {line!r}")
            elements.append((parts[1], int(parts[2]), []))
        elif key == "property":
            if not elements:
                raise FormatError(path, "PLY property before any element")
            if len(parts) >= 5 and parts[1] == "list":
                if parts[2] not in _PLY_TYPES or parts[3] not in _PLY_TYPES:
                    raise FormatError(path, f"bad PLY list property {line!r}")
                elements[-1][2].append((parts[4], _PLY_TYPES[parts[2]], _PLY_TYPES[parts[3]]))
            elif len(parts) == 3 and parts[1] in _PLY_TYPES:
                elements[-1][2].append((parts[2], _PLY_TYPES[parts[1]], None))
            else:
                raise FormatError(path, f"bad PLY property line {line!r}")
    if fmt is None:
        raise FormatError(path, "PLY header has no format line")
    return fmt, elements, comments, nl + 1


def _read_binary_element(data: bytes, pos: int, count: int, props: list, endian: str, path: Path):
    has_list = any(p[2] is not None for p in props)
    if not has_list:
        dt = np.dtype([(name, endian + t) for name, t, _ in props])
        need = dt.itemsize * count
        if len(data) - pos < need:
            raise FormatError(path, "PLY data is truncated")
        return np.frombuffer(data, dtype=dt, count=count, offset=pos), pos + need
    # Fast path: one list property whose length is the same for every item.
    if len(props) == 1 or all(p[2] is None for p in props[1:]) and props[0][2] is not None:
        name, ctype, itype = props[0]
        if count == 0:
            return {name: []}, pos
        if len(data) - pos < np.dtype(ctype).itemsize:
            raise FormatError(path, "PLY data is truncated")
        k = int(np.frombuffer(data, endian + ctype, 1, pos)[0])
        fields = [("__n", endian + ctype), (name, endian + itype, (k,))] + \
                 [(n, endian + t) for n, t, _ in props[1:]]
        dt = np.dtype(fields)
        if len(data) - pos >= dt.itemsize * count:
            arr = np.frombuffer(data, dtype=dt, count=count, offset=pos)
            if np.all(arr["__n"] == k):
                out = {name: arr[name]}
                for n, _t, _ in props[1:]:
                    out[n] = arr[n]
                return out, pos + dt.itemsize * count
    # General path: item by item.
    out: dict[str, list] = {p[0]: [] for p in props}
    for _ in range(count):
        for name, t, it in props:
            if it is None:
                size = np.dtype(t).itemsize
                if pos + size > len(data):
                    raise FormatError(path, "PLY data is truncated")
                out[name].append(np.frombuffer(data, endian + t, 1, pos)[0])
                pos += size
            else:
                csize = np.dtype(t).itemsize
                if pos + csize > len(data):
                    raise FormatError(path, "PLY data is truncated")
                k = int(np.frombuffer(data, endian + t, 1, pos)[0])
                pos += csize
                isize = np.dtype(it).itemsize
                if pos + k * isize > len(data):
                    raise FormatError(path, "PLY data is truncated")
                out[name].append(np.frombuffer(data, endian + it, k, pos).copy())
                pos += k * isize
    return out, pos


def _read_ascii_elements(text_tokens: list, elements: list, path: Path) -> dict:
    pos = 0
    result = {}
    ntok = len(text_tokens)
    for name, count, props in elements:
        has_list = any(p[2] is not None for p in props)
        if not has_list:
            n = count * len(props)
            if pos + n > ntok:
                raise FormatError(path, f"PLY data is truncated in element {name!r}")
            try:
                block = np.array(text_tokens[pos:pos + n], dtype=float).reshape(count, len(props))
            except ValueError:
                raise FormatError(path, f"PLY element {name!r} has non-numeric values") from None
            result[name] = {p[0]: block[:, i].astype(p[1]) for i, p in enumerate(props)}
            pos += n
            continue
        out: dict[str, list] = {p[0]: [] for p in props}
        try:
            for _ in range(count):
                for pname, _t, it in props:
                    if it is None:
                        out[pname].append(float(text_tokens[pos]))
                        pos += 1
                    else:
                        k = int(text_tokens[pos])
                        out[pname].append(np.array(text_tokens[pos + 1:pos + 1 + k], dtype=float).astype(it))
                        if len(out[pname][-1]) != k:
                            raise IndexError
                        pos += 1 + k
        except (IndexError, ValueError):
            raise FormatError(path, f"PLY data is truncated or bad in element {name!r}") from None
        result[name] = out
    return result


def read_ply(path: str | os.PathLike[str], *, coordinate_system: str | None = None) -> list[Model]:
    """Read an ASCII or binary PLY: vertices with normals, colours and scalar properties; faces."""
    p = Path(path)
    data = read_content(p)
    fmt, elements, comments, start = _ply_header(data, p)
    if fmt == "ascii":
        tokens = data[start:].split()
        parsed = _read_ascii_elements(tokens, elements, p)
    else:
        endian = "<" if fmt == "binary_little_endian" else ">"
        parsed = {}
        pos = start
        for name, count, props in elements:
            parsed[name], pos = _read_binary_element(data, pos, count, props, endian, p)
    vert = parsed.get("vertex")
    if vert is None:
        raise FormatError(p, "PLY file has no vertex element")
    names = list(vert.dtype.names) if hasattr(vert, "dtype") else list(vert)
    col = lambda n: np.asarray(vert[n])  # noqa: E731
    if not all(c in names for c in ("x", "y", "z")):
        raise FormatError(p, "PLY vertex element has no x, y, z")
    points = np.stack([col("x"), col("y"), col("z")], axis=1).astype(float)
    point_data: dict[str, np.ndarray] = {}
    normals_name = colors_name = None
    used = {"x", "y", "z"}
    if all(c in names for c in ("nx", "ny", "nz")):
        point_data["Normals"] = np.stack([col("nx"), col("ny"), col("nz")], axis=1).astype(np.float32)
        normals_name = "Normals"
        used |= {"nx", "ny", "nz"}
    rgb = [c for c in ("red", "green", "blue") if c in names]
    if len(rgb) == 3:
        chans = [col(c) for c in rgb] + ([col("alpha")] if "alpha" in names else [])
        arr = np.stack(chans, axis=1)
        if arr.dtype.kind == "f":
            arr = np.clip(np.round(arr * 255.0 if arr.max() <= 1.0 else arr), 0, 255)
        colors_name = "RGBA" if arr.shape[1] == 4 else "RGB"
        point_data[colors_name] = arr.astype(np.uint8)
        used |= set(rgb) | ({"alpha"} if "alpha" in names else set())
    for n in names:
        if n not in used:
            point_data[n] = col(n)
    polys: list = []
    cell_data: dict[str, np.ndarray] = {}
    face = parsed.get("face")
    if face is not None:
        fnames = list(face) if isinstance(face, dict) else list(face.dtype.names)
        key = next((k for k in ("vertex_indices", "vertex_index") if k in fnames), None)
        if key is None:
            raise FormatError(p, "PLY face element has no vertex_indices list")
        polys = face[key]
        for n in fnames:
            if n != key and not n.startswith("__"):
                try:
                    cell_data[n] = np.asarray(face[n])
                except ValueError:
                    pass
    if isinstance(polys, np.ndarray) and polys.ndim == 2:
        model = Model.from_faces(points, polys.astype(np.int64), point_data=point_data, cell_data=cell_data)
    else:
        model = Model.from_polygons(points, [np.asarray(q, dtype=np.int64) for q in polys], point_data=point_data,
                                    cell_data=cell_data)
    model.normals_name, model.colors_name = normals_name, colors_name
    scal = [k for k in model.scalar_arrays()]
    model.scalars_name = scal[0] if scal else None
    model.name, model.source = base_name(p), os.fspath(p)
    model.metadata["ply"] = {"comments": comments, "format": fmt}
    space = next((s for s in (space_of(c) for c in comments) if s), None)
    return _finish(model, p, space, coordinate_system)


def write_ply(model: Any, path: str | os.PathLike[str], *, coordinate_system: str = "LPS",
              compress: bool = True) -> list[str]:
    """Write PLY (binary little-endian, or ASCII with ``compress=False``), ``comment SPACE=...``."""
    p = Path(path)
    model, pts, pd = _prepare(model, p, coordinate_system)
    if model.dataset == "unstructured_grid":
        polys = [t for t in model.triangles()]
    else:
        polys = model.cells_of({5, 7, 9})
        for c in np.flatnonzero(np.isin(model.cell_types, [6, 8])):  # strips, pixels: triangulate
            sub = Model(model.points, model.cell_types[c:c + 1], [0, model.offsets[c + 1] - model.offsets[c]],
                        model.connectivity[model.offsets[c]:model.offsets[c + 1]])
            polys.extend(sub.triangles())
    if not polys:
        raise WriteError(p, "the mesh has no faces to write")
    columns: list[tuple[str, np.ndarray]] = [("x", pts[:, 0]), ("y", pts[:, 1]), ("z", pts[:, 2])]
    if model.normals_name in pd:
        n = np.asarray(pd[model.normals_name], dtype=np.float32)
        columns += [("nx", n[:, 0]), ("ny", n[:, 1]), ("nz", n[:, 2])]
    if model.colors_name in pd:
        c = np.asarray(pd[model.colors_name]).astype(np.uint8)
        columns += [(nm, c[:, i]) for i, nm in enumerate(("red", "green", "blue", "alpha")[:c.shape[1]])]
    taken = {c[0] for c in columns}
    for nm in model.scalar_arrays():
        safe = re.sub(r"\s+", "_", nm)
        if safe in taken:
            continue
        arr = np.asarray(pd[nm]).reshape(-1)
        if arr.dtype.kind not in "iuf" or arr.dtype.str[1:] not in _PLY_NAMES:
            continue
        if arr.dtype.kind in "iu" and arr.dtype.itemsize == 8:
            arr = arr.astype(np.float64)
        columns.append((safe, arr))
        taken.add(safe)
    lengths = np.array([len(q) for q in polys])
    uniform = bool(np.all(lengths == lengths[0]))
    head = ["ply", f"format {'binary_little_endian' if compress else 'ascii'} 1.0",
            f"comment SPACE={coordinate_system.upper()}", f"element vertex {len(pts)}"]
    for nm, arr in columns:
        head.append(f"property {_PLY_NAMES[np.dtype(arr.dtype).str[1:]] if nm not in 'xyz' else 'double'} {nm}")
    head += [f"element face {len(polys)}", "property list uchar int vertex_indices", "end_header"]
    if lengths.max() > 255:
        raise WriteError(p, "a polygon has more than 255 corners")
    with atomic_output(p) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(("\n".join(head) + "\n").encode("latin-1"))
            if compress:
                vdt = np.dtype([(nm, "<f8" if nm in "xyz" else "<" + np.dtype(a.dtype).str[1:]) for nm, a in columns])
                rec = np.empty(len(pts), dtype=vdt)
                for nm, a in columns:
                    rec[nm] = a
                fh.write(rec.tobytes())
                if uniform:
                    k = int(lengths[0])
                    frec = np.empty(len(polys), dtype=np.dtype([("n", "u1"), ("i", "<i4", (k,))]))
                    frec["n"] = k
                    frec["i"] = np.asarray(polys, dtype=np.int64)
                    fh.write(frec.tobytes())
                else:
                    for q in polys:
                        fh.write(np.uint8(len(q)).tobytes() + np.asarray(q, "<i4").tobytes())
            else:
                fmts = ["%r" if nm in "xyz" else ("%.9g" if np.dtype(a.dtype).kind == "f" else "%d")
                        for nm, a in columns]
                rows = []
                for i in range(len(pts)):
                    rows.append(" ".join(
                        (repr(float(a[i])) if f == "%r" else f % a[i]) for f, (nm, a) in zip(fmts, columns)))
                fh.write(("\n".join(rows) + "\n").encode("latin-1"))
                fh.write(("\n".join(f"{len(q)} " + " ".join(str(int(x)) for x in q) for q in polys) + "\n")
                         .encode("latin-1"))
    return [os.fspath(p)]


# == OBJ ===========================================================================================
_UNITS = re.compile(r"vertex coordinates are measured in units, where 1 unit = (\S+) (\S+)")


def _sniff_obj(head: bytes, path: Path) -> bool:
    if b"\0" in head:
        return False
    return bool(re.search(rb"^\s*v\s+[-+.\deE]+\s+[-+.\deE]+\s+[-+.\deE]+", head, re.MULTILINE))


def read_obj(path: str | os.PathLike[str], *, coordinate_system: str | None = None) -> list[Model]:
    """Read a Wavefront OBJ: vertices (with optional colours), normals, texture coordinates, faces, lines."""
    p = Path(path)
    raw = read_content(p)
    if b"\0" in raw[:4096]:
        raise FormatError(p, "not an OBJ file (binary content)")
    text = raw.decode("latin-1")
    verts: list = []
    colors: list = []
    normals: list = []
    tcoords: list = []
    faces: list = []  # list of lists of (v, vt, vn)
    lines_cells: list = []
    points_cells: list = []
    comments: list[str] = []
    materials: dict[str, list[str]] = {"mtllib": [], "usemtl": []}
    for lineno, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s:
            continue
        if s[0] == "#":
            comments.append(s[1:].strip())
            continue
        parts = s.split()
        key = parts[0]
        if key in materials and len(parts) > 1:
            materials[key].append(s.split(None, 1)[1])
            continue
        try:
            if key == "v":
                vals = [float(x) for x in parts[1:]]
                if len(vals) < 3:
                    raise ValueError
                verts.append(vals[:3])
                if len(vals) >= 6:
                    colors.append(vals[3:6])
            elif key == "vn":
                normals.append([float(x) for x in parts[1:4]])
            elif key == "vt":
                tcoords.append([float(x) for x in parts[1:3]] + [0.0] * (2 - len(parts[1:3])))
            elif key in ("f", "l", "p"):
                corners = []
                for tok in parts[1:]:
                    ids = tok.split("/")
                    v = int(ids[0])
                    vt = int(ids[1]) if len(ids) > 1 and ids[1] else 0
                    vn = int(ids[2]) if len(ids) > 2 and ids[2] else 0
                    v = v - 1 if v > 0 else len(verts) + v
                    vt = vt - 1 if vt > 0 else (len(tcoords) + vt if vt < 0 else -1)
                    vn = vn - 1 if vn > 0 else (len(normals) + vn if vn < 0 else -1)
                    corners.append((v, vt, vn))
                if not corners:
                    raise ValueError
                {"f": faces, "l": lines_cells, "p": points_cells}[key].append(corners)
        except (ValueError, IndexError):
            raise FormatError(p, f"line {lineno}: bad OBJ statement {s[:60]!r}") from None
    if not verts:
        raise FormatError(p, "the mesh is empty (no 'v' vertices)")
    if not (faces or lines_cells or points_cells):
        raise FormatError(p, "no faces, lines or points (f/l/p statements): an empty or truncated OBJ")
    n_v = len(verts)
    vert_arr = np.array(verts, dtype=float)
    all_corners = [c for cell in faces + lines_cells + points_cells for c in cell]
    for v, vt, vn in all_corners:
        if not 0 <= v < n_v:
            raise FormatError(p, f"a face refers to vertex {v + 1}, but the file has {n_v} vertices")
        if vt >= len(tcoords) or vn >= len(normals) or (vt < -1) or (vn < -1):
            raise FormatError(p, "a face refers to a texture coordinate or normal that does not exist")
    use_vt = any(c[1] >= 0 for c in all_corners)
    use_vn = any(c[2] >= 0 for c in all_corners)
    # VTK's rule: a vertex used with different normal/texture indices is duplicated.
    assigned: dict[int, tuple[int, int]] = {}
    dup: dict[tuple[int, int, int], int] = {}
    extra_src: list[int] = []
    extra_attr: list[tuple[int, int]] = []

    def index_of(c: tuple[int, int, int]) -> int:
        v, vt, vn = c
        attr = (vt, vn)
        if v not in assigned:
            assigned[v] = attr
            return v
        if assigned[v] == attr:
            return v
        if c not in dup:
            dup[c] = n_v + len(extra_src)
            extra_src.append(v)
            extra_attr.append(attr)
        return dup[c]

    cells = [[index_of(c) for c in cell] for cell in faces + lines_cells + points_cells]
    src = np.r_[np.arange(n_v), np.array(extra_src, dtype=np.int64)].astype(np.int64)
    points = vert_arr[src]
    attrs = [assigned.get(i, (-1, -1)) for i in range(n_v)] + extra_attr
    point_data: dict[str, np.ndarray] = {}
    normals_name = colors_name = None
    if use_vn:
        narr = np.array(normals, dtype=np.float32).reshape(-1, 3)
        idx = np.array([a[1] for a in attrs])
        picked = narr[np.maximum(idx, 0)] if len(narr) else 0
        point_data["Normals"] = np.where(idx[:, None] >= 0, picked, 0).astype(np.float32)
        normals_name = "Normals"
    if use_vt:
        tarr = np.array(tcoords, dtype=np.float32).reshape(-1, 2)
        idx = np.array([a[0] for a in attrs])
        picked = tarr[np.maximum(idx, 0)] if len(tarr) else 0
        point_data["TCoords"] = np.where(idx[:, None] >= 0, picked, 0).astype(np.float32)
    if colors and len(colors) == n_v:
        carr = np.array(colors, dtype=float)
        if carr.max() <= 1.0:
            carr = carr * 255.0
        point_data["RGB"] = np.clip(np.round(carr), 0, 255).astype(np.uint8)[src]
        colors_name = "RGB"
    n_f, n_l = len(faces), len(lines_cells)
    sizes = np.array([len(c) for c in cells], dtype=np.int64)
    types = np.empty(len(cells), np.uint8)
    types[:n_f] = np.where(sizes[:n_f] == 3, 5, np.where(sizes[:n_f] == 4, 9, np.where(sizes[:n_f] < 3, 7, 7)))
    types[n_f:n_f + n_l] = np.where(sizes[n_f:n_f + n_l] == 2, 3, 4)
    types[n_f + n_l:] = np.where(sizes[n_f + n_l:] == 1, 1, 2)
    # VTK order: verts, lines, polys.
    order = np.r_[np.arange(n_f + n_l, len(cells)), np.arange(n_f, n_f + n_l), np.arange(n_f)].astype(int)
    cells = [cells[i] for i in order]
    types = types[order]
    sizes = sizes[order]
    offsets = np.r_[0, np.cumsum(sizes)]
    conn = np.fromiter((i for c in cells for i in c), dtype=np.int64, count=int(offsets[-1]))
    model = Model(points, types, offsets, conn, point_data=point_data, normals_name=normals_name,
                  colors_name=colors_name, name=base_name(p), source=os.fspath(p))
    model.metadata["obj"] = {"comments": comments}
    material = _obj_material(p, materials, slicer=any("3D Slicer output" in c for c in comments))
    if material:
        model.metadata["obj"]["material"] = material
        model.metadata["display"] = {k: material[k] for k in ("color", "opacity") if k in material}
    space = next((s for s in (space_of(c) for c in comments) if s), None)
    for c in comments:
        m = _UNITS.search(c)
        if m and m.group(2).lower() not in ("mm", "millimeter", "millimeters"):
            warnings.warn(f"{p}: OBJ units are {m.group(2)!r}; only mm is supported, coordinates not scaled",
                          stacklevel=2)
    return _finish(model, p, space, coordinate_system)


def _read_mtl(path: Path) -> dict[str, dict[str, list[float]]]:
    """The materials of an ``.mtl`` file: {name: {statement: numbers}}; {} when it is missing or unreadable."""
    try:
        text = path.read_bytes().decode("latin-1")
    except OSError:
        return {}
    found: dict[str, dict[str, list[float]]] = {}
    current: dict[str, list[float]] | None = None
    for line in text.splitlines():
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if parts[0] == "newmtl":
            current = found.setdefault(" ".join(parts[1:]), {})
        elif current is not None:
            try:
                current[parts[0]] = [float(x) for x in parts[1:]]
            except ValueError:
                continue
    return found


def _obj_material(path: Path, materials: dict[str, list[str]], slicer: bool) -> dict:
    """The model colour (0-1 RGB) and opacity from the first material an OBJ uses (``mtllib`` / ``usemtl``).

    3D Slicer writes its model colour divided by 3 as ``Kd`` (``vtkMRMLModelStorageNode``: the exporter
    repeats it as ambient and specular colour) and the opacity as ``Tr`` (``vtkOBJExporter``); other
    files give the colour as ``Kd`` and the opacity as ``d`` (or ``1 - Tr``).
    """
    library: dict[str, dict[str, list[float]]] = {}
    for name in materials["mtllib"]:
        library.update(_read_mtl(path.parent / name))
    if not library:
        return {}
    name = next((n for n in materials["usemtl"] if n in library), next(iter(library)))
    entry = library[name]
    out: dict[str, Any] = {"name": name}
    if len(entry.get("Kd", [])) >= 3:
        scale = 3.0 if slicer else 1.0
        out["color"] = [float(min(1.0, max(0.0, scale * c))) for c in entry["Kd"][:3]]
    if entry.get("d"):
        out["opacity"] = float(entry["d"][0])
    elif entry.get("Tr"):
        out["opacity"] = float(entry["Tr"][0]) if slicer else 1.0 - float(entry["Tr"][0])
    return out


def write_obj(model: Any, path: str | os.PathLike[str], *, coordinate_system: str = "LPS") -> list[str]:
    """Write OBJ with ``# 3D Slicer output. SPACE=...``: exact vertices, normals, colours, polygons, lines."""
    p = Path(path)
    model, pts, pd = _prepare(model, p, coordinate_system)
    out = [f"# 3D Slicer output. SPACE={coordinate_system.upper()}", f"o {model.name or base_name(p)}"]
    colors = pd.get(model.colors_name) if model.colors_name else None
    if colors is not None:
        warnings.warn(f"{p}: vertex colours go into the OBJ as 'v x y z r g b', which 3D Slicer's OBJ reader "
                      "drops; save as .ply, .vtk or .vtp to keep them for Slicer", stacklevel=2)
        c = np.asarray(colors)[:, :3].astype(float) / 255.0
        out += [f"v {x!r} {y!r} {z!r} {r:.6g} {g:.6g} {b:.6g}" for (x, y, z), (r, g, b) in zip(pts.tolist(), c)]
    else:
        out += [f"v {x!r} {y!r} {z!r}" for x, y, z in pts.tolist()]
    normals = pd.get(model.normals_name) if model.normals_name else None
    tc = pd.get("TCoords")
    if tc is not None and np.ndim(tc) == 2 and np.shape(tc)[1] >= 2:
        out += [f"vt {u:.9g} {w:.9g}" for u, w in np.asarray(tc)[:, :2].tolist()]
    if normals is not None:
        out += [f"vn {a:.9g} {b:.9g} {c:.9g}" for a, b, c in np.asarray(normals, dtype=float).tolist()]

    def corner(i: int) -> str:
        j = i + 1
        if normals is not None and tc is not None:
            return f"{j}/{j}/{j}"
        if normals is not None:
            return f"{j}//{j}"
        if tc is not None:
            return f"{j}/{j}"
        return str(j)

    if model.dataset == "unstructured_grid":
        cells = [("f", t) for t in model.triangles()]
    else:
        cells = []
        for c in range(model.n_cells):
            t = int(model.cell_types[c])
            ids = model.connectivity[model.offsets[c]:model.offsets[c + 1]]
            if t in (1, 2):
                cells.append(("p", ids))
            elif t in (3, 4):
                cells.append(("l", ids))
            elif t in (5, 7, 9):
                cells.append(("f", ids))
            elif t == 8:
                cells.append(("f", ids[[0, 1, 3, 2]]))
            elif t == 6:
                sub = Model(model.points, [6], [0, ids.size], ids)
                cells += [("f", tri) for tri in sub.triangles()]
    for key, ids in cells:
        out.append(key + " " + " ".join(corner(int(i)) if key == "f" else str(int(i) + 1) for i in ids))
    with atomic_output(p) as tmp:
        tmp.write_text("\n".join(out) + "\n", encoding="latin-1")
    return [os.fspath(p)]


register(FileFormat(
    name="stl", description="STL surface (ASCII or binary) with Slicer's SPACE= header marker",
    extensions=(".stl",), read=read_stl, write=write_stl, sniff=_sniff_stl, kinds=(DataKind.MODEL,),
    backend="napari-medio (NumPy)",
    read_options={"coordinate_system": "LPS or RAS when the file has no SPACE marker (default LPS)"},
    write_options={"coordinate_system": "LPS (default) or RAS", "compress": "binary (True) or ASCII"},
))
register(FileFormat(
    name="ply", description="PLY polygon mesh (ASCII or binary) with colours, normals and scalars",
    extensions=(".ply",), read=read_ply, write=write_ply, sniff=_sniff_ply, kinds=(DataKind.MODEL,),
    backend="napari-medio (NumPy)",
    write_options={"coordinate_system": "LPS (default) or RAS", "compress": "binary (True) or ASCII"},
))
register(FileFormat(
    name="obj", description="Wavefront OBJ mesh with Slicer's SPACE= comment",
    extensions=(".obj",), read=read_obj, write=write_obj, sniff=_sniff_obj, kinds=(DataKind.MODEL,),
    backend="napari-medio (Python)",
    write_options={"coordinate_system": "LPS (default) or RAS"},
))
