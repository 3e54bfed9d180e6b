"""VTK meshes: legacy ``.vtk`` (POLYDATA, UNSTRUCTURED_GRID), XML ``.vtp`` and ``.vtu``.

Coordinate system as Slicer decides it (``vtkMRMLModelStorageNode``): the
``SPACE=RAS``/``SPACE=LPS`` marker in the legacy header line, or the ``SPACE``
string array in the XML field data (removed from the loaded mesh); LPS when
absent.  Writing puts the marker exactly where Slicer does: header
``3D Slicer output. SPACE=LPS`` (file version 4.2) for ``.vtk``, field-data
``SPACE`` for ``.vtp``/``.vtu``.  The CARTO variant of ``.vtk`` (``carto=True``
with ``patient_name``/``patient_id``) writes the header CARTO expects.

Writer options: ``coordinate_system`` ("LPS" default, or "RAS"), ``compress``
(binary legacy / zlib-appended XML, default True; False writes ASCII).
"""
from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import FormatError, WriteError
from ..core.fileio import atomic_output
from ..core.kinds import DataKind
from ..core.model import Model
from ..core.registry import FileFormat, register
from ._vtkmesh import (
    from_lps,
    model_from_vtk,
    model_to_vtk,
    run_reader,
    set_xml_compression,
    space_of,
    to_lps,
    vtk,
)
from .naming import base_name

__all__ = ["read_vtk_model", "write_vtk_model", "sniff_legacy_model"]

_DATASET = re.compile(rb"^\s*DATASET\s+(\S+)", re.IGNORECASE | re.MULTILINE)


def sniff_legacy_model(head: bytes, path: Path) -> bool:
    """``# vtk DataFile`` whose DATASET is POLYDATA or UNSTRUCTURED_GRID (images go to vtk-image)."""
    if not head.startswith(b"# vtk DataFile"):
        return False
    m = _DATASET.search(head[:2048])
    return bool(m) and m.group(1).upper() in (b"POLYDATA", b"UNSTRUCTURED_GRID")


def _sniff_xml(kind: bytes):
    def sniff(head: bytes, path: Path) -> bool:
        text = head[:1024]
        return b"<VTKFile" in text and (b'type="' + kind + b'"') in text
    return sniff


def check_model(model: Model, path: Path) -> Model:
    """Validate a mesh after reading: FormatError naming the file for bad indices or values."""
    try:
        model.check()
    except ValueError as exc:
        raise FormatError(path, str(exc)) from None
    return model


def _check_legacy(path: Path) -> str:
    """Header line of a legacy file, after cheap structural checks VTK itself would not report."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    lines = head.split(b"\n", 3)
    if len(lines) < 4 or not lines[0].startswith(b"# vtk DataFile"):
        raise FormatError(path, "not a legacy VTK file (no '# vtk DataFile' line)")
    if lines[2].strip().upper() not in (b"ASCII", b"BINARY"):
        raise FormatError(path, "legacy VTK file without ASCII/BINARY line")
    m = _DATASET.search(head)
    if not m or m.group(1).upper() not in (b"POLYDATA", b"UNSTRUCTURED_GRID"):
        raise FormatError(path, "legacy VTK file is not POLYDATA or UNSTRUCTURED_GRID")
    return lines[1].decode("latin-1", "replace").strip()


_SECTION = re.compile(rb"^(POLYGONS|LINES|VERTICES|TRIANGLE_STRIPS|CELLS)\s+(\d+)\s+(\d+)", re.MULTILINE)
_ITEM_SIZE = {b"float": 4, b"double": 8, b"int": 4, b"short": 2, b"long": 8, b"char": 1, b"unsigned_char": 1,
              b"vtktypeint64": 8}


def _values(data: bytes, start: int, count: int, binary: bool, dtype: str) -> np.ndarray | None:
    """``count`` integers from ``start`` (big-endian binary or ASCII tokens); None when the file holds fewer."""
    if binary:
        item = np.dtype(dtype).itemsize
        if len(data) < start + count * item:
            return None
        return np.frombuffer(data, dtype=dtype, count=count, offset=start).astype(np.int64)
    tokens = data[start:].split(None, count)
    if len(tokens) < count:
        return None
    try:
        return np.array(tokens[:count], dtype=np.int64)
    except (ValueError, OverflowError):
        return None


def _walk_counts(values: np.ndarray, n: int) -> bool:
    """True when ``values`` is exactly ``n`` runs of (point count, that many point ids)."""
    if n and values.size and values[0] >= 1 and values.size == n * (values[0] + 1) \
            and (values[::values[0] + 1] == values[0]).all():
        return True  # every cell has the same size: checked without a loop
    pos = 0
    for _ in range(n):
        if pos >= values.size or values[pos] < 0:
            return False
        pos += int(values[pos]) + 1
    return pos == values.size


def _check_cell_section(data: bytes, m: re.Match[bytes], binary: bool, path: Path) -> None:
    """One ``POLYGONS n size`` / ``CELLS n size`` section holds what it announces (VTK does not check it)."""
    n, size = int(m.group(2)), int(m.group(3))
    start = data.find(b"\n", m.end()) + 1
    name = m.group(1).decode()
    if size > len(data) or n > len(data):
        raise FormatError(path, f"{name} {n} {size} announces more values than the file holds")
    rest = data[start:start + 200].lstrip()
    if rest.startswith(b"OFFSETS"):  # VTK 5.1 layout: n offsets, then size connectivity ids
        om = re.match(rb"\s*OFFSETS\s+(\w+)\s*\n", data[start:start + 200])
        dtype = ">i8" if om and _ITEM_SIZE.get(om.group(1).lower(), 4) == 8 else ">i4"
        offsets = _values(data, start + om.end(), n, binary, dtype) if om else None
        if offsets is None or (n and (offsets[0] != 0 or offsets[-1] != size or (np.diff(offsets) < 0).any())):
            raise FormatError(path, f"{name} {n} {size}: OFFSETS do not describe {size} connectivity ids")
        return
    values = _values(data, start, size, binary, ">i4")
    if values is None or not _walk_counts(values, n):
        raise FormatError(path, f"{name} {n} {size}: the point counts of the {n} cells do not add up to {size} values")


def _legacy_counts(path: Path) -> None:
    """Refuse truncated ASCII/binary legacy files up front (VTK would return partial meshes)."""
    data = path.read_bytes()
    m = re.search(rb"\nPOINTS\s+(\d+)\s+(\w+)", data)
    if not m:
        raise FormatError(path, "legacy VTK mesh without POINTS")
    binary = data.split(b"\n", 3)[2].strip().upper() == b"BINARY"
    n = int(m.group(1))
    size = _ITEM_SIZE.get(m.group(2).lower(), 4)
    start = data.index(b"\n", m.end()) + 1
    if binary:
        if len(data) < start + 3 * n * size:
            raise FormatError(path, f"file is truncated: {n} points announced")
    else:
        tokens = data[start:].split(None, 3 * n)
        if len(tokens) < 3 * n:
            raise FormatError(path, f"file is truncated: {n} points announced, fewer present")
        try:
            [float(t) for t in tokens[:3 * n][-3:]]
        except ValueError:
            raise FormatError(path, "POINTS section has non-numeric values") from None
    for section in _SECTION.finditer(data):
        _check_cell_section(data, section, binary, path)


_ARRAY = re.compile(rb"^(?:SCALARS|NORMALS|VECTORS|TEXTURE_COORDINATES|COLOR_SCALARS|TENSORS)\s+(\S+)", re.MULTILINE)
_DATA = re.compile(rb"^(POINT_DATA|CELL_DATA)\s+(\d+)", re.MULTILINE)


def _check_announced(path: Path, model: Model) -> None:
    """VTK's legacy reader returns a partial mesh for a truncated file: compare with what the file announced."""
    data = path.read_bytes()
    cells = 0
    for m in _SECTION.finditer(data):
        n = int(m.group(2))
        if m.group(1) == b"CELLS" and data[m.end():m.end() + 200].lstrip().startswith(b"OFFSETS"):
            n -= 1  # VTK 5.1 layout: CELLS <offsets count> <connectivity count>
        cells += n
    if model.n_cells == 0:
        raise FormatError(path, "the mesh has no cells (an empty or truncated file)")
    if cells != model.n_cells:
        raise FormatError(path, f"file announces {cells} cells but holds {model.n_cells} (truncated or corrupt)")
    sections = {m.group(1): int(m.group(2)) for m in _DATA.finditer(data)}
    if b"POINT_DATA" in sections and sections[b"POINT_DATA"] != model.n_points:
        raise FormatError(path, f"POINT_DATA {sections[b'POINT_DATA']} does not match {model.n_points} points")
    names = {m.group(1).decode("latin-1") for m in _ARRAY.finditer(data)}
    have = set(model.point_data) | set(model.cell_data)
    missing = sorted(n for n in names if n not in have)
    if missing:
        raise FormatError(path, f"data array {missing[0]!r} is announced but could not be read (truncated or corrupt)")


_PIECE_COUNT = re.compile(rb'\b(NumberOf\w+)\s*=\s*"([^"]*)"')


def _xml_header(path: Path) -> bytes:
    """The XML text of a VTK XML file, up to its appended raw data (if any)."""
    with open(path, "rb") as fh:
        data = fh.read()
    cut = data.find(b"<AppendedData")
    return data if cut < 0 else data[:cut]


def _check_xml_counts(path: Path, head: bytes) -> None:
    """Counts of a VTK XML file (pieces' points and cells, arrays' tuples and components) are whole numbers
    the file can hold (VTK allocates them unchecked, and loops over a huge component count).

    A compressed file can hold at most a few thousand items per stored byte (zlib about 1000:1,
    LZMA more); an uncompressed one at most one.
    """
    size = path.stat().st_size
    per_byte = 8192 if b"compressor=" in head else 1
    for m in _PIECE_COUNT.finditer(head):
        name, text = m.group(1).decode(), m.group(2).decode("latin-1", "replace")
        try:
            count = int(text)
        except ValueError:
            raise FormatError(path, f"{name}={text!r} is not a whole number") from None
        if count < 0 or count > size * per_byte:
            raise FormatError(path, f"{name}={count} is impossible for a file of {size} bytes")


def read_vtk_model(path: str | os.PathLike[str], *, coordinate_system: str | None = None) -> list[Model]:
    """Read a .vtk / .vtp / .vtu mesh into one Model in LPS.

    ``coordinate_system`` ("LPS"/"RAS") is used when the file has no marker
    (Slicer's storage-node setting; default LPS); a marker always wins.
    """
    p = Path(path)
    v = vtk()
    if p.stat().st_size == 0:
        raise FormatError(p, "file is empty")
    with open(p, "rb") as fh:
        head = fh.read(4096)
    if head.startswith(b"# vtk DataFile"):
        header = _check_legacy(p)
        _legacy_counts(p)
        reader = v.vtkGenericDataObjectReader()
        reader.SetFileName(os.fspath(p))
        reader.ReadAllScalarsOn()
        reader.ReadAllVectorsOn()
        reader.ReadAllNormalsOn()
        reader.ReadAllTCoordsOn()
        reader.ReadAllColorScalarsOn()
        reader.ReadAllFieldsOn()
        ds = run_reader(reader, p, "legacy VTK")
        if ds is None:
            raise FormatError(p, "legacy VTK file holds no mesh")
        space = space_of(header)
        model = model_from_vtk(ds, name=base_name(p), source=os.fspath(p))
        _check_announced(p, model)
        model.metadata["vtk_header"] = header
    elif b"<VTKFile" in head[:1024]:
        if b'type="PolyData"' in head[:1024]:
            reader = v.vtkXMLPolyDataReader()
        elif b'type="UnstructuredGrid"' in head[:1024]:
            reader = v.vtkXMLUnstructuredGridReader()
        else:
            raise FormatError(p, "VTK XML file is not PolyData or UnstructuredGrid")
        _check_xml_counts(p, _xml_header(p))
        if not reader.CanReadFile(os.fspath(p)):
            raise FormatError(p, "not a readable VTK XML file")
        reader.SetFileName(os.fspath(p))
        ds = run_reader(reader, p, "VTK XML")
        model = model_from_vtk(ds, name=base_name(p), source=os.fspath(p))
        space = None
        marker = model.field_data.pop("SPACE", None)
        if marker is not None:
            text = " ".join(marker) if isinstance(marker, list) else str(marker)
            space = "RAS" if "RAS" in text else "LPS" if "LPS" in text else None
    else:
        raise FormatError(p, "not a VTK mesh file")
    if model.n_points == 0 and model.n_cells == 0:
        raise FormatError(p, "the mesh is empty (no points)")
    effective = space or (coordinate_system.upper() if coordinate_system else None)
    to_lps(model, effective)
    model.coordinate_system = space
    return [check_model(model, p)]


def prepare_for_writing(model: Any, path: Path, coordinate_system: str) -> tuple[Model, Model]:
    """(the model, a copy with points/normals in ``coordinate_system``) after validation."""
    if not isinstance(model, Model):
        convert = getattr(model, "convert_to", None)
        model = convert(DataKind.MODEL) if convert else None
        if not isinstance(model, Model):
            raise WriteError(path, "a mesh file holds a model")
    if model.n_points == 0:
        raise WriteError(path, "the mesh is empty (Slicer skips writing empty models)")
    try:
        model.check()
    except ValueError as exc:
        raise WriteError(path, str(exc)) from None
    try:
        pts, pd = from_lps(model, coordinate_system)
    except ValueError as exc:
        raise WriteError(path, str(exc)) from None
    return model, dataclasses.replace(model, points=pts, point_data=pd)


def write_vtk_model(model: Any, path: str | os.PathLike[str], *, coordinate_system: str | None = None,
                    compress: bool = True, carto: bool = False, patient_name: str = "",
                    patient_id: str = "") -> list[str]:
    """Write .vtk (legacy 4.2), .vtp or .vtu with Slicer's SPACE marker.

    ``carto=True`` (legacy .vtk only) writes what SlicerHeart's CartoExport writes for
    the CARTO system: ASCII, header ``PatientData <patient_name> <patient_id>``, points
    in Slicer's RAS (no SPACE marker: CARTO reads the header as patient data).
    """
    p = Path(path)
    v = vtk()
    if coordinate_system is None:
        coordinate_system = "RAS" if carto else "LPS"
    model, out = prepare_for_writing(model, p, coordinate_system)
    space = coordinate_system.upper()
    ext = p.suffix.lower()
    if ext == ".vtp" and model.dataset != "polydata":
        raise WriteError(p, ".vtp holds polydata; write an unstructured grid as .vtu or .vtk")
    if ext == ".vtu" and model.dataset != "unstructured_grid":
        raise WriteError(p, ".vtu holds an unstructured grid; write a surface as .vtp or .vtk")
    fields = {} if ext == ".vtk" else {"SPACE": [space]}
    out.field_data = {k: val for k, val in out.field_data.items() if k != "SPACE"}
    ds = model_to_vtk(out, field_data=fields)
    with atomic_output(p) as tmp:
        if ext == ".vtk":
            writer = v.vtkPolyDataWriter() if model.dataset == "polydata" else v.vtkUnstructuredGridWriter()
            if carto:
                header = f"PatientData {patient_name or 'First Last'} {patient_id or 'ID'}".replace("\n", " ")
            else:
                header = f"3D Slicer output. SPACE={space}"
            writer.SetHeader(header)
            writer.SetFileVersion(42)
            writer.SetFileTypeToBinary() if compress and not carto else writer.SetFileTypeToASCII()
        else:
            writer = v.vtkXMLPolyDataWriter() if ext == ".vtp" else v.vtkXMLUnstructuredGridWriter()
            set_xml_compression(writer, compress)
        writer.SetInputData(ds)
        writer.SetFileName(os.fspath(tmp))
        if writer.Write() != 1:
            raise WriteError(p, "VTK writer failed")
    return [os.fspath(p)]


register(FileFormat(
    name="vtk-model",
    description="Legacy VTK mesh (.vtk POLYDATA / UNSTRUCTURED_GRID) with Slicer's SPACE= header marker",
    extensions=(".vtk",),
    read=read_vtk_model,
    write=write_vtk_model,
    sniff=sniff_legacy_model,
    kinds=(DataKind.MODEL,),
    priority=5,
    backend="VTK",
    read_options={"coordinate_system": "LPS or RAS when the file has no SPACE marker (default LPS)"},
    write_options={"coordinate_system": "LPS (default) or RAS", "compress": "binary (True) or ASCII",
                   "carto": "CARTO header with patient_name / patient_id"},
))
register(FileFormat(
    name="vtp",
    description="VTK XML polydata (.vtp), SPACE in field data",
    extensions=(".vtp",),
    read=read_vtk_model,
    write=write_vtk_model,
    sniff=_sniff_xml(b"PolyData"),
    kinds=(DataKind.MODEL,),
    backend="VTK",
))
register(FileFormat(
    name="vtu",
    description="VTK XML unstructured grid (.vtu), SPACE in field data",
    extensions=(".vtu",),
    read=read_vtk_model,
    write=write_vtk_model,
    sniff=_sniff_xml(b"UnstructuredGrid"),
    kinds=(DataKind.MODEL,),
    backend="VTK",
))
