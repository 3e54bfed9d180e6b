"""Write tests/data/slicer/: files made by 3D Slicer's own storage nodes (PyPI slicer-core), with the
values Slicer holds for them in expected.json, so the main test suite checks napari-medio's readers
against Slicer without Slicer.

Run in the Slicer environment made by scripts/setup.sh:

    .venv-slicer/bin/python scripts/make_slicer_files.py [target folder]

Everything Slicer holds is RAS (expected.json too); Slicer writes LPS files by default.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import vtk
from vtk.util import numpy_support

import slicer

ROOT = Path(__file__).resolve().parent.parent
RNG = np.random.default_rng(2026)
#: Test points (RAS) that every transform maps.
POINTS_RAS = np.vstack([RNG.uniform(-18, 18, (8, 3)), RNG.uniform(-30, 30, (4, 3))])


def matrix_of(m: vtk.vtkMatrix4x4) -> list:
    return [[m.GetElement(r, c) for c in range(4)] for r in range(4)]


def vtk_matrix(a) -> vtk.vtkMatrix4x4:
    m = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            m.SetElement(r, c, float(a[r][c]))
    return m


def rotation(angle: float, axis) -> np.ndarray:
    t = vtk.vtkTransform()
    t.RotateWXYZ(angle, *axis)
    return np.array(matrix_of(t.GetMatrix()))


def add_storage(scene, node, storage, path: Path) -> None:
    scene.AddNode(storage)
    node.SetAndObserveStorageNodeID(storage.GetID())
    storage.SetFileName(str(path))
    if not storage.WriteData(node):
        raise RuntimeError(f"Slicer could not write {path}")


def volume(scene, folder: Path, expected: dict) -> slicer.vtkMRMLScalarVolumeNode:
    voxels = RNG.integers(-1000, 2000, (5, 6, 7)).astype(np.int16)  # [k, j, i]
    image = vtk.vtkImageData()
    image.SetDimensions(7, 6, 5)
    image.GetPointData().SetScalars(numpy_support.numpy_to_vtk(voxels.ravel(), deep=True,
                                                               array_type=vtk.VTK_SHORT))
    node = slicer.vtkMRMLScalarVolumeNode()
    node.SetName("CT")
    scene.AddNode(node)
    node.SetAndObserveImageData(image)
    ijk_to_ras = rotation(25, (0.3, 0.2, 0.9)) @ np.diag([0.8, 0.9, 2.5, 1.0])
    ijk_to_ras[:3, 3] = [-12.5, 30.25, 101.0]
    node.SetIJKToRASMatrix(vtk_matrix(ijk_to_ras))
    display = slicer.vtkMRMLScalarVolumeDisplayNode()
    scene.AddNode(display)
    display.SetWindowLevel(400, 40)
    display.SetAutoWindowLevel(False)
    node.SetAndObserveDisplayNodeID(display.GetID())
    for ext in ("nrrd", "nii.gz", "mha"):
        add_storage(scene, node, slicer.vtkMRMLVolumeArchetypeStorageNode(), folder / f"CT.{ext}")
    expected["volume"] = {"files": ["CT.nrrd", "CT.nii.gz", "CT.mha"], "ijk_to_ras": ijk_to_ras.tolist(),
                          "voxels_sum": int(voxels.astype(np.int64).sum()), "shape": list(voxels.shape),
                          "first_voxels": voxels.ravel()[:10].tolist()}
    return node


def markups(scene, folder: Path, expected: dict) -> list:
    made, out = [], {}
    specs = {"Fiducial": 3, "Line": 2, "Angle": 3, "Curve": 4, "ClosedCurve": 4, "Plane": 3}
    for mtype, n in specs.items():
        node = getattr(slicer, f"vtkMRMLMarkups{mtype}Node")()
        node.SetName(mtype)
        scene.AddNode(node)
        if mtype == "Plane":
            node.SetPlaneType(slicer.vtkMRMLMarkupsPlaneNode.PlaneType3Points)
        for p in RNG.uniform(-40, 40, (n, 3)):
            node.AddControlPoint(vtk.vtkVector3d(*p))
        storage = (slicer.vtkMRMLMarkupsPlaneJsonStorageNode() if mtype == "Plane"
                   else slicer.vtkMRMLMarkupsJsonStorageNode())
        add_storage(scene, node, storage, folder / f"{mtype}.mrk.json")
        entry = {"points_ras": [list(node.GetNthControlPointPosition(i)) for i in range(n)],
                 "labels": [node.GetNthControlPointLabel(i) for i in range(n)]}
        for i in range(node.GetNumberOfMeasurements()):
            m = node.GetNthMeasurement(i)
            if m.GetEnabled() and m.GetValueDefined():
                entry.setdefault("measurements", {})[m.GetName()] = [m.GetValue(), m.GetUnits()]
        if mtype == "Plane":
            world = vtk.vtkMatrix4x4()
            node.GetObjectToWorldMatrix(world)
            entry["object_to_world"] = matrix_of(world)
        out[f"{mtype}.mrk.json"] = entry
        made.append(node)
    roi = slicer.vtkMRMLMarkupsROINode()
    roi.SetName("ROI")
    scene.AddNode(roi)
    roi.SetCenter(10.0, -20.0, 30.0)
    roi.SetSize(40.0, 25.0, 12.5)
    roi.GetObjectToNodeMatrix().DeepCopy(vtk_matrix(rotation(30, (0.1, 0.8, 0.3)) @ np.eye(4)))
    roi.SetCenter(10.0, -20.0, 30.0)
    add_storage(scene, roi, slicer.vtkMRMLMarkupsROIJsonStorageNode(), folder / "ROI.mrk.json")
    out["ROI.mrk.json"] = {"object_to_world": matrix_of(roi.GetObjectToWorldMatrix()), "size": list(roi.GetSize())}
    made.append(roi)
    expected["markups"] = out
    return made


def models(scene, folder: Path, expected: dict) -> slicer.vtkMRMLModelNode:
    source = vtk.vtkSphereSource()
    source.SetCenter(15.0, -25.0, 40.0)
    source.SetRadius(12.0)
    source.SetThetaResolution(8)
    source.SetPhiResolution(6)
    source.Update()
    node = slicer.vtkMRMLModelNode()
    node.SetName("Ball")
    scene.AddNode(node)
    node.SetAndObservePolyData(source.GetOutput())
    display = slicer.vtkMRMLModelDisplayNode()
    scene.AddNode(display)
    display.SetColor(0.9, 0.2, 0.4)
    display.SetOpacity(0.7)
    node.SetAndObserveDisplayNodeID(display.GetID())
    files = {}
    for ext, space in (("vtk", "LPS"), ("vtp", "LPS"), ("stl", "LPS"), ("ply", "LPS"), ("obj", "LPS"),
                       ("ras.vtk", "RAS")):
        storage = slicer.vtkMRMLModelStorageNode()
        if space == "RAS":
            storage.SetCoordinateSystem(slicer.vtkMRMLStorageNode.CoordinateSystemRAS)
        add_storage(scene, node, storage, folder / f"Ball.{ext}")
        files[f"Ball.{ext}"] = space
    points = numpy_support.vtk_to_numpy(source.GetOutput().GetPoints().GetData())
    expected["models"] = {"files": files, "points_ras": points.tolist(), "color": [0.9, 0.2, 0.4], "opacity": 0.7}
    return node


def transforms(scene, folder: Path, expected: dict) -> slicer.vtkMRMLLinearTransformNode:
    out = {}
    linear = slicer.vtkMRMLLinearTransformNode()
    linear.SetName("Linear")
    scene.AddNode(linear)
    to_parent = rotation(17, (0.4, 0.5, 0.7))
    to_parent[:3, 3] = [12.345678912, -7.654321, 339.123456789]
    linear.SetMatrixTransformToParent(vtk_matrix(to_parent))
    add_storage(scene, linear, slicer.vtkMRMLTransformStorageNode(), folder / "Linear.h5")
    out["Linear.h5"] = linear

    grid = vtk.vtkImageData()
    grid.SetDimensions(6, 5, 4)
    grid.SetSpacing(12.0, 14.0, 16.0)
    grid.SetOrigin(-30.0, -30.0, -30.0)
    k, j, i = np.meshgrid(np.arange(4), np.arange(5), np.arange(6), indexing="ij")
    field = np.stack([2 * np.sin(i / 2.0), 1.5 * np.cos(j / 2.0), np.sin((i + k) / 3.0)], axis=-1)
    grid.GetPointData().SetScalars(numpy_support.numpy_to_vtk(field.reshape(-1, 3), deep=True))
    grid_transform = slicer.vtkOrientedGridTransform()
    grid_transform.SetDisplacementGridData(grid)
    grid_transform.SetInterpolationModeToCubic()
    grid_node = slicer.vtkMRMLGridTransformNode()
    grid_node.SetName("Grid")
    scene.AddNode(grid_node)
    grid_node.SetAndObserveTransformFromParent(grid_transform)
    add_storage(scene, grid_node, slicer.vtkMRMLTransformStorageNode(), folder / "Grid.nrrd")
    out["Grid.nrrd"] = grid_node

    source, target = vtk.vtkPoints(), vtk.vtkPoints()
    for p in RNG.uniform(-40, 40, (6, 3)):
        source.InsertNextPoint(*p)
        target.InsertNextPoint(*(p + RNG.normal(0, 3, 3)))
    tps = vtk.vtkThinPlateSplineTransform()
    tps.SetSourceLandmarks(source)
    tps.SetTargetLandmarks(target)
    tps.SetBasisToR()
    tps_node = slicer.vtkMRMLTransformNode()
    tps_node.SetName("ThinPlate")
    scene.AddNode(tps_node)
    tps_node.SetAndObserveTransformFromParent(tps)
    add_storage(scene, tps_node, slicer.vtkMRMLTransformStorageNode(), folder / "ThinPlate.h5")
    out["ThinPlate.h5"] = tps_node

    bspline = slicer.vtkOrientedBSplineTransform()
    coefficients = vtk.vtkImageData()
    coefficients.SetDimensions(5, 5, 5)
    coefficients.SetSpacing(20.0, 20.0, 20.0)
    coefficients.SetOrigin(-40.0, -40.0, -40.0)
    coefficients.GetPointData().SetScalars(numpy_support.numpy_to_vtk(RNG.normal(0, 2, (125, 3)), deep=True))
    bspline.SetCoefficientData(coefficients)
    bspline.SetBorderModeToZero()
    bspline_node = slicer.vtkMRMLBSplineTransformNode()
    bspline_node.SetName("BSpline")
    scene.AddNode(bspline_node)
    bspline_node.SetAndObserveTransformFromParent(bspline)
    add_storage(scene, bspline_node, slicer.vtkMRMLTransformStorageNode(), folder / "BSpline.h5")
    out["BSpline.h5"] = bspline_node

    mapped = {}
    for name, node in out.items():
        from_parent = node.GetTransformFromParent()
        mapped[name] = [list(from_parent.TransformPoint(*p)) for p in POINTS_RAS]
    expected["transforms"] = {"points_ras": POINTS_RAS.tolist(), "from_parent_ras": mapped,
                              "linear_to_parent_ras": to_parent.tolist()}
    return linear


def scene_folder(folder: Path, expected: dict) -> None:
    """A folder scene: a volume, a model and a point list under a linear transform, saved by MRML."""
    scene = slicer.vtkMRMLScene()
    target = folder / "scene"
    target.mkdir()
    sub = {}
    node = volume(scene, target, sub)
    model = models(scene, target, sub)
    points = markups(scene, target, sub)
    linear = transforms(scene, target, sub)
    for data in (model, points[0]):
        data.SetAndObserveTransformNodeID(linear.GetID())
    scene.SetURL(str(target / "scene.mrml"))
    if not scene.Commit():
        raise RuntimeError("Slicer could not write the scene")
    expected["scene"] = {"values": sub, "volume": node.GetName(), "model": model.GetName(),
                         "points": points[0].GetName(),
                         "transform": linear.GetName(),
                         "n_nodes": {cls: scene.GetNumberOfNodesByClass(cls) for cls in (
                             "vtkMRMLScalarVolumeNode", "vtkMRMLModelNode", "vtkMRMLMarkupsFiducialNode",
                             "vtkMRMLLinearTransformNode")}}


def main(target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    scene = slicer.vtkMRMLScene()
    expected: dict = {"slicer_core": slicer.__version__ if hasattr(slicer, "__version__") else "5.13"}
    volume(scene, target, expected)
    markups(scene, target, expected)
    models(scene, target, expected)
    transforms(scene, target, expected)
    scene_folder(target, expected)
    (target / "expected.json").write_text(json.dumps(expected, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "tests" / "data" / "slicer" / "generated")
