"""3D Slicer (slicer-core's markups storage nodes) reads the markups napari-medio writes.

Every markups type is written by napari-medio as ``.mrk.json`` in both coordinate systems (and the
point list as ``.fcsv``), read in one subprocess by Slicer's ``vtkMRMLMarkups*JsonStorageNode`` /
``vtkMRMLMarkupsFiducialStorageNode``: control points, labels, planes (Slicer's object-to-world
matrix, normal and size), ROIs (centre, axes, size) and Slicer's own measurements must match what
napari-medio holds, to 1e-4 mm.
"""
from __future__ import annotations

import numpy as np
import pytest

import napari_medio
from napari_medio.core.markups import Markups
from tests.slicer_harness import run_slicer
from tests.volumes import rotation

READ_MARKUPS = """
    NODES = {"Fiducial": "Fiducial", "Line": "Line", "Angle": "Angle", "Curve": "Curve",
             "ClosedCurve": "ClosedCurve", "Plane": "Plane", "ROI": "ROI"}
    def matrix(m):
        return np.array([[m.GetElement(r, c) for c in range(4)] for r in range(4)])
    for name, (mtype, path) in inputs["files"].items():
        scene = new_scene()
        node = getattr(slicer, f"vtkMRMLMarkups{NODES[mtype]}Node")()
        scene.AddNode(node)
        if path.endswith(".fcsv"):
            storage = slicer.vtkMRMLMarkupsFiducialStorageNode()
        elif mtype in ("Plane", "ROI"):
            storage = getattr(slicer, f"vtkMRMLMarkups{mtype}JsonStorageNode")()
        else:
            storage = slicer.vtkMRMLMarkupsJsonStorageNode()
        scene.AddNode(storage)
        if path.endswith("-RAS.mrk.json"):
            # Slicer's ROI reader flips centre and axes by the storage node's coordinate system (LPS unless
            # set), not by the file's "coordinateSystem", so a RAS ROI file needs the node told
            storage.SetCoordinateSystem(slicer.vtkMRMLStorageNode.CoordinateSystemRAS)
        storage.SetFileName(path)
        if not storage.ReadData(node):
            raise RuntimeError(f"Slicer could not read {path}")
        n = node.GetNumberOfControlPoints()
        out = {"points": np.array([node.GetNthControlPointPosition(i) for i in range(n)]).reshape(-1, 3),
               "labels": [node.GetNthControlPointLabel(i) for i in range(n)], "measurements": {}}
        for i in range(node.GetNumberOfMeasurements()):
            measurement = node.GetNthMeasurement(i)
            if measurement.GetEnabled() and measurement.GetValueDefined():
                out["measurements"][measurement.GetName()] = measurement.GetValue()
        if mtype in ("Plane", "ROI"):
            if mtype == "Plane":
                m = vtk.vtkMatrix4x4()
                node.GetObjectToWorldMatrix(m)
            else:
                m = node.GetObjectToWorldMatrix()
            out["object_to_world"] = matrix(m)
            out["size"] = list(node.GetSize())
        result[name] = out
"""

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
RNG = np.random.default_rng(16)


def _with_points(mtype: str, n: int, **fields) -> Markups:
    m = Markups(type=mtype, name=mtype.lower(), **fields)
    for position in RNG.uniform(-60, 60, (n, 3)):
        m.add_point(position)
    return m


def _markups() -> dict[str, Markups]:
    axes = rotation(axis=(0.2, 0.9, 0.3), angle=0.7)
    plane_point_normal = _with_points("Plane", 1, plane_type="pointNormal", size_mode="absolute",
                                      size=[30.0, 20.0, 0.0], orientation=axes)
    plane_point_normal.center = plane_point_normal.positions[0].copy()
    plane_three = _with_points("Plane", 3, plane_type="threePoints")  # placed by its points alone
    plane_moved = _with_points("Plane", 3, plane_type="threePoints", center=[5.0, -7.5, 12.0],
                               orientation=rotation(angle=1.1))  # its own centre and axes, not the points'
    roi = Markups(type="ROI", name="roi", roi_type="Box", center=[10.0, -20.0, 30.0], size=[40.0, 25.0, 12.5],
                  orientation=axes)
    return {"points": _with_points("Fiducial", 4), "line": _with_points("Line", 2),
            "angle": _with_points("Angle", 3), "curve": _with_points("Curve", 5),
            "closed": _with_points("ClosedCurve", 5), "plane-point-normal": plane_point_normal,
            "plane-three-points": plane_three, "plane-moved": plane_moved, "roi": roi}


def _frame(m: Markups) -> np.ndarray:
    """napari-medio's object-to-world matrix of a plane or ROI, in RAS."""
    center, axes = m.plane_frame() if m.type == "Plane" else (m.center, m.orientation)
    lps = np.eye(4)
    lps[:3, :3], lps[:3, 3] = axes, center
    return LPS_TO_RAS @ lps


def test_slicer_reads_every_markups_type(tmp_path):
    markups = _markups()
    files, written = {}, {}
    for name, m in markups.items():
        for cs in ("LPS", "RAS"):
            path = tmp_path / f"{name}-{cs}.mrk.json"
            napari_medio.write(m, path, coordinate_system=cs)
            files[f"{name}-{cs}"] = (m.type, str(path))
            written[f"{name}-{cs}"] = m
    fcsv = tmp_path / "points.fcsv"
    napari_medio.write(markups["points"], fcsv)
    files["points-fcsv"], written["points-fcsv"] = ("Fiducial", str(fcsv)), markups["points"]

    out = run_slicer(READ_MARKUPS, inputs={"files": files})

    for name, m in written.items():
        theirs = out[name]
        if m.type == "ROI":  # written with the control point Slicer keeps at a box ROI's centre
            np.testing.assert_allclose(theirs["points"], [m.center * [-1, -1, 1]], rtol=0, atol=1e-4, err_msg=name)
        else:
            np.testing.assert_allclose(theirs["points"], m.positions_ras, rtol=0, atol=1e-4, err_msg=name)
            assert theirs["labels"] == [cp.label for cp in m.control_points], name
        if m.type in ("Plane", "ROI"):
            np.testing.assert_allclose(theirs["object_to_world"], _frame(m), rtol=0, atol=1e-4, err_msg=name)
        if m.type == "ROI" or (m.type == "Plane" and m.size_mode == "absolute"):
            np.testing.assert_allclose(theirs["size"][:2], m.size[:2], rtol=0, atol=1e-4, err_msg=name)
        ours = m.measure()
        if m.type == "Line":
            assert theirs["measurements"]["length"] == pytest.approx(ours["length"], abs=1e-4), name
        if m.type == "Angle":
            assert theirs["measurements"]["angle"] == pytest.approx(ours["angle"], abs=1e-4), name
