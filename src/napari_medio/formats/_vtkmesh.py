"""VTK <-> :class:`~napari_medio.core.model.Model` conversion and safe VTK reader runs.

VTK readers report problems through its error events (and print them); here every
error or warning event of a reader becomes a :class:`FormatError` naming the file,
and VTK's own console output is silenced.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import FormatError
from ..core.model import Model

__all__ = ["vtk", "run_reader", "model_from_vtk", "model_to_vtk", "space_of", "to_lps", "from_lps"]


_VTK_MODULES = ("vtkCommonCore", "vtkCommonDataModel", "vtkCommonExecutionModel", "vtkIOLegacy", "vtkIOXML",
                "vtkIOGeometry", "vtkFiltersCore", "vtkFiltersGeneral")
_VTK_NS: Any = None


class _VtkNamespace:
    """The few VTK modules meshes need (importing ``vtkmodules.all`` costs seconds)."""

    def __init__(self, modules: list) -> None:
        self._modules = modules

    def __getattr__(self, name: str) -> Any:
        for m in self._modules:
            if hasattr(m, name):
                value = getattr(m, name)
                setattr(self, name, value)
                return value
        raise AttributeError(name)


def vtk():
    """The VTK classes used here (a clear error when the optional dependency is missing)."""
    global _VTK_NS
    if _VTK_NS is not None:
        return _VTK_NS
    import importlib

    try:
        modules = [importlib.import_module(f"vtkmodules.{n}") for n in _VTK_MODULES]
        from vtkmodules.util import numpy_support  # noqa: F401
    except ImportError as exc:  # pragma: no cover - vtk is installed with the models extra
        raise FormatError(None, "reading and writing VTK meshes needs the 'vtk' package "
                                "(pip install napari-medio[models])") from exc
    ns = _VtkNamespace(modules)
    ns.vtkObject.GlobalWarningDisplayOff()
    _VTK_NS = ns
    return ns


class _ErrorCatcher:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def __call__(self, obj: Any, event: str, calldata: Any = None) -> None:
        self.messages.append(str(calldata) if calldata is not None else event)


def run_reader(reader: Any, path: Path, what: str) -> Any:
    """Update a VTK reader; any error event raises FormatError naming ``path``."""
    v = vtk()
    catcher = _ErrorCatcher()
    for ev in (v.vtkCommand.ErrorEvent,):
        tag = reader.AddObserver(ev, catcher)
    try:
        execs = reader.GetExecutive()
        execs.AddObserver(v.vtkCommand.ErrorEvent, catcher)
    except Exception:  # pragma: no cover
        pass
    reader.Update()
    reader.RemoveObserver(tag)
    if catcher.messages:
        msg = catcher.messages[0].strip().splitlines()[-1] if catcher.messages[0].strip() else "read error"
        raise FormatError(path, f"not a valid {what} file: {msg[:300]}")
    return reader.GetOutput()


def _np(arr: Any) -> np.ndarray:
    from vtkmodules.util import numpy_support

    return numpy_support.vtk_to_numpy(arr).copy()


def _cells_from_array(ca: Any) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, connectivity) of a vtkCellArray."""
    if ca is None or ca.GetNumberOfCells() == 0:
        return np.zeros(1, np.int64), np.zeros(0, np.int64)
    return _np(ca.GetOffsetsArray()).astype(np.int64), _np(ca.GetConnectivityArray()).astype(np.int64)


def model_from_vtk(ds: Any, *, name: str = "", source: str | None = None) -> Model:
    """A Model (points as in the file; caller converts RAS) from vtkPolyData / vtkUnstructuredGrid."""
    v = vtk()
    pts = ds.GetPoints()
    points = _np(pts.GetData()).astype(float).reshape(-1, 3) if pts is not None else np.zeros((0, 3))
    if isinstance(ds, v.vtkPolyData):
        dataset = "polydata"
        types_l, offs_l, conn_l = [], [], []
        base = 0
        for kind, ca in (("verts", ds.GetVerts()), ("lines", ds.GetLines()), ("polys", ds.GetPolys()),
                         ("strips", ds.GetStrips())):
            off, conn = _cells_from_array(ca)
            sizes = np.diff(off)
            if sizes.size == 0:
                continue
            if kind == "verts":
                t = np.where(sizes == 1, 1, 2)
            elif kind == "lines":
                t = np.where(sizes == 2, 3, 4)
            elif kind == "polys":
                t = np.where(sizes == 3, 5, np.where(sizes == 4, 9, 7))
            else:
                t = np.full(sizes.size, 6)
            types_l.append(t)
            offs_l.append(off[1:] + base)
            conn_l.append(conn)
            base += conn.size
        cell_types = np.concatenate(types_l) if types_l else np.zeros(0, np.uint8)
        offsets = np.r_[0, np.concatenate(offs_l)] if offs_l else np.zeros(1, np.int64)
        connectivity = np.concatenate(conn_l) if conn_l else np.zeros(0, np.int64)
    elif isinstance(ds, v.vtkUnstructuredGrid):
        dataset = "unstructured_grid"
        cells = ds.GetCells()
        offsets, connectivity = _cells_from_array(cells)
        try:
            ct = ds.GetCellTypes()
            if not isinstance(ct, v.vtkDataArray):
                raise TypeError
        except TypeError:  # VTK < 9.6
            ct = ds.GetCellTypesArray()
        cell_types = _np(ct) if ct is not None and ct.GetNumberOfTuples() else np.zeros(0, np.uint8)
    else:
        raise FormatError(source, f"{ds.GetClassName()} is not a mesh (polydata or unstructured grid)")
    pd = ds.GetPointData()
    point_data = {}
    for i in range(pd.GetNumberOfArrays()):
        a = pd.GetAbstractArray(i)
        if a is None or not isinstance(a, v.vtkDataArray):
            continue
        nm = a.GetName() or f"array{i}"
        point_data[nm] = _np(a)
    cell_data = {}
    cd = ds.GetCellData()
    for i in range(cd.GetNumberOfArrays()):
        a = cd.GetAbstractArray(i)
        if a is None or not isinstance(a, v.vtkDataArray):
            continue
        cell_data[a.GetName() or f"array{i}"] = _np(a)
    field_data: dict = {}
    fd = ds.GetFieldData()
    for i in range(fd.GetNumberOfArrays() if fd is not None else 0):
        a = fd.GetAbstractArray(i)
        if a is None:
            continue
        nm = a.GetName() or f"field{i}"
        if isinstance(a, v.vtkStringArray):
            field_data[nm] = [a.GetValue(j) for j in range(a.GetNumberOfValues())]
        elif isinstance(a, v.vtkDataArray):
            field_data[nm] = _np(a)
    normals = pd.GetNormals()
    scalars = pd.GetScalars()
    colors_name = None
    scalars_name = scalars.GetName() if scalars is not None else None
    for nm, arr in point_data.items():
        if (arr.dtype == np.uint8 and arr.ndim == 2 and arr.shape[1] in (3, 4)
                and (colors_name is None or nm == scalars_name)):
            colors_name = nm
    if scalars_name == colors_name:
        scalars_name = None
    return Model(points, cell_types, offsets, connectivity, dataset=dataset, point_data=point_data,
                 cell_data=cell_data, field_data=field_data,
                 normals_name=normals.GetName() if normals is not None else None,
                 colors_name=colors_name, scalars_name=scalars_name, name=name, source=source)


def _vtk_array(name: str, arr: np.ndarray) -> Any:
    from vtkmodules.util import numpy_support

    a = np.ascontiguousarray(arr)
    if a.dtype == bool:
        a = a.astype(np.uint8)
    if a.dtype.kind not in "iuf":
        a = a.astype(float)
    out = numpy_support.numpy_to_vtk(a, deep=True)
    out.SetName(name)
    return out


def _cell_array(offsets: np.ndarray, conn: np.ndarray) -> Any:
    v = vtk()
    ca = v.vtkCellArray()
    ca.SetData(_vtk_array("offsets", offsets.astype(np.int64)), _vtk_array("conn", conn.astype(np.int64)))
    return ca


def model_to_vtk(model: Model, points: np.ndarray | None = None, *, field_data: dict | None = None) -> Any:
    """vtkPolyData / vtkUnstructuredGrid of ``model`` (with ``points`` replacing its points, e.g. in RAS)."""
    v = vtk()
    pts = v.vtkPoints()
    pts.SetDataTypeToDouble()
    pts.SetData(_vtk_array("Points", np.asarray(model.points if points is None else points, dtype=np.float64)))
    if model.dataset == "unstructured_grid":
        ds = v.vtkUnstructuredGrid()
        ds.SetPoints(pts)
        ct = _vtk_array("types", model.cell_types.astype(np.uint8))
        ds.SetCells(ct, _cell_array(model.offsets, model.connectivity))
    else:
        ds = v.vtkPolyData()
        ds.SetPoints(pts)
        groups = {"verts": [1, 2], "lines": [3, 4], "polys": [5, 7, 8, 9], "strips": [6]}
        for kind, types in groups.items():
            ids = np.flatnonzero(np.isin(model.cell_types, types))
            if ids.size == 0:
                continue
            sizes = model.offsets[ids + 1] - model.offsets[ids]
            conn = np.concatenate([model.connectivity[model.offsets[c]:model.offsets[c + 1]] for c in ids]) \
                if ids.size < 64 or not np.all(sizes == sizes[0]) else \
                model.connectivity[model.offsets[ids][:, None] + np.arange(sizes[0])].reshape(-1)
            ca = _cell_array(np.r_[0, np.cumsum(sizes)], conn)
            setter = {"verts": "SetVerts", "lines": "SetLines", "polys": "SetPolys", "strips": "SetStrips"}[kind]
            getattr(ds, setter)(ca)
    pd = ds.GetPointData()
    for nm, arr in model.point_data.items():
        pd.AddArray(_vtk_array(nm, np.asarray(arr)))
    if model.normals_name in model.point_data:
        pd.SetActiveNormals(model.normals_name)
    if model.colors_name in model.point_data:
        pd.SetActiveScalars(model.colors_name)
    elif model.scalars_name in model.point_data:
        pd.SetActiveScalars(model.scalars_name)
    for key in ("TCoords", "tcoords"):
        if key in model.point_data:
            pd.SetActiveTCoords(key)
    cd = ds.GetCellData()
    if len(model.cell_data) and model.dataset == "polydata" and not _cells_in_vtk_order(model):
        pass  # cell data order would not match VTK's verts/lines/polys/strips grouping: dropped below
    else:
        for nm, arr in model.cell_data.items():
            cd.AddArray(_vtk_array(nm, np.asarray(arr)))
    fd = ds.GetFieldData()
    for nm, value in {**model.field_data, **(field_data or {})}.items():
        if isinstance(value, (list, tuple)) and all(isinstance(x, str) for x in value):
            sa = v.vtkStringArray()
            sa.SetName(nm)
            for x in value:
                sa.InsertNextValue(x)
            fd.AddArray(sa)
        elif isinstance(value, str):
            sa = v.vtkStringArray()
            sa.SetName(nm)
            sa.InsertNextValue(value)
            fd.AddArray(sa)
        else:
            fd.AddArray(_vtk_array(nm, np.asarray(value)))
    return ds


def _cells_in_vtk_order(model: Model) -> bool:
    rank = np.select([np.isin(model.cell_types, [1, 2]), np.isin(model.cell_types, [3, 4]),
                      np.isin(model.cell_types, [6])], [0, 1, 3], default=2)
    return bool(np.all(np.diff(rank) >= 0))


def set_xml_compression(writer: Any, compress: bool) -> None:
    """A VTK XML writer's data mode: appended zlib-compressed binary, or plain ASCII."""
    if compress:
        writer.SetDataModeToAppended()
        writer.SetCompressorTypeToZLib()
    else:
        writer.SetDataModeToAscii()
        writer.SetCompressorTypeToNone()


def space_of(text: str) -> str | None:
    """"RAS" / "LPS" when ``text`` holds Slicer's ``SPACE=`` marker (RAS checked first, as Slicer)."""
    if "SPACE=RAS" in text:
        return "RAS"
    if "SPACE=LPS" in text:
        return "LPS"
    return None


def to_lps(model: Model, space: str | None) -> Model:
    """Convert a model read in ``space`` (None = LPS, Slicer's default) to LPS, in place."""
    model.coordinate_system = space
    if space == "RAS":
        model.points = _flip(model.points)
        if model.normals_name in model.point_data:
            model.point_data[model.normals_name] = _flip(model.point_data[model.normals_name])
    return model


def from_lps(model: Model, space: str) -> tuple[np.ndarray, dict]:
    """Points and point data of ``model`` expressed in ``space`` ("LPS" or "RAS") for writing."""
    if space.upper() == "RAS":
        pd = dict(model.point_data)
        if model.normals_name in pd:
            pd[model.normals_name] = _flip(pd[model.normals_name])
        return _flip(model.points), pd
    if space.upper() != "LPS":
        raise ValueError(f"coordinate system must be LPS or RAS, not {space!r}")
    return model.points, model.point_data


def _flip(a: np.ndarray) -> np.ndarray:
    out = np.array(a, copy=True)
    out[:, 0] = 0.0 - out[:, 0]  # 0.0 - x: no negative zeros
    out[:, 1] = 0.0 - out[:, 1]
    return out
