"""3D Slicer (slicer-core's ``vtkMRMLTransformStorageNode``) reads the transforms napari-medio writes.

Every kind of transform is written by napari-medio (linear, b-spline, thin-plate spline, grid in
three image formats, in both directions where the format allows), read by Slicer in one
subprocess, and test points are mapped by Slicer's from-parent transform (RAS). They must land
where napari-medio maps them (LPS, compared in RAS) within 1e-4 mm. Slicer's own thin-plate
spline test file (old ITK dataset names) is mapped by both too.
"""
from __future__ import annotations

import numpy as np
import SimpleITK as sitk

import napari_medio
from napari_medio.core.geometry import Geometry
from napari_medio.core.transform import ThinPlateSpline, Transform
from napari_medio.core.volume import AxisInfo, Volume
from tests.slicer_harness import run_slicer
from tests.volumes import rotation

MAP_POINTS = """
    for name, path in inputs["paths"].items():
        scene = new_scene()
        node = slicer.vtkMRMLTransformNode()
        scene.AddNode(node)
        storage = slicer.vtkMRMLTransformStorageNode()
        scene.AddNode(storage)
        storage.SetFileName(path)
        if not storage.ReadData(node):
            raise RuntimeError(f"Slicer could not read {path}")
        from_parent = node.GetTransformFromParent()
        to_parent = node.GetTransformToParent()
        points = np.array(inputs["points_ras"], float)
        result[name] = {"from_parent": np.array([from_parent.TransformPoint(*p) for p in points]),
                        "to_parent": np.array([to_parent.TransformPoint(*p) for p in points]),
                        "class": from_parent.GetClassName()}
"""

RNG = np.random.default_rng(16)
FLIP = np.array([-1.0, -1.0, 1.0])  # LPS <-> RAS
POINTS_LPS = RNG.uniform(5, 35, (12, 3))
SOURCE = np.array([[0, 0, 0], [40, 0, 0], [0, 40, 0], [0, 0, 40], [40, 40, 40], [20, 10, 30]], float)
TARGET = SOURCE + RNG.normal(0, 2.0, SOURCE.shape)


def _linear() -> Transform:
    m = np.eye(4)
    m[:3, :3] = rotation()
    m[:3, 3] = [12.25, -3.5, 7.125]
    return Transform.from_matrix_to_parent(m, name="linear")


def _bspline() -> Transform:
    tx = sitk.BSplineTransform(3, 3)
    tx.SetTransformDomainOrigin((0.0, 0.0, 0.0))
    tx.SetTransformDomainPhysicalDimensions((40.0, 40.0, 40.0))
    tx.SetTransformDomainMeshSize((2, 2, 2))
    tx.SetParameters(RNG.normal(0, 1.5, tx.GetNumberOfParameters()).tolist())
    return Transform("bspline", name="bspline", itk=tx)


def _grid(direction: str) -> Transform:
    geometry = Geometry([5.0, 6.0, 4.5], [-2.0, 1.0, -3.0], rotation(angle=0.2))
    k, j, i = np.meshgrid(np.arange(10), np.arange(9), np.arange(11), indexing="ij")
    field = np.stack([np.sin(i / 3.0) * 2.0, np.cos(j / 2.5) * 1.5, np.sin((i + k) / 4.0)], axis=-1)
    volume = Volume(field.astype(np.float64), geometry, components=AxisInfo(name="vector", kind="vector"))
    return Transform("grid", name="grid", displacement=volume, stored_direction=direction)


def _cases() -> dict[str, tuple[Transform, str]]:
    tps = Transform("thinplate", name="tps", itk=ThinPlateSpline(SOURCE, TARGET))
    return {"linear.h5": (_linear(), "h5"), "linear.tfm": (_linear(), "tfm"),
            "bspline.h5": (_bspline(), "h5"), "bspline.tfm": (_bspline(), "tfm"),
            "tps.h5": (tps, "h5"), "tps.tfm": (tps, "tfm"),
            "grid.nrrd": (_grid("from_parent"), "nrrd"), "grid.nii.gz": (_grid("from_parent"), "nii.gz"),
            "grid.mha": (_grid("from_parent"), "mha"), "grid-modeling.nrrd": (_grid("to_parent"), "nrrd")}


def test_slicer_maps_points_as_napari_medio_does(tmp_path, fixture_path):
    cases = _cases()
    paths, transforms = {}, {}
    for name, (transform, ext) in cases.items():
        path = tmp_path / f"{name.split('.')[0]}.{ext}"
        napari_medio.write(transform, path)
        read_as = {"format": "displacement-field"} if transform.type == "grid" else {}
        [transforms[name]] = napari_medio.read(path, **read_as)
        paths[name] = str(path)
    tps_file = fixture_path("transforms/TpsTransform.h5")
    paths["TpsTransform.h5"] = str(tps_file)
    [transforms["TpsTransform.h5"]] = napari_medio.read(tps_file)
    points = np.vstack([POINTS_LPS, TARGET, transforms["TpsTransform.h5"].itk.source])

    out = run_slicer(MAP_POINTS, inputs={"paths": paths, "points_ras": (points * FLIP).tolist()})

    for name, transform in transforms.items():
        theirs = out[name]["from_parent"] * FLIP
        ours = transform.transform_points_from_parent(points)
        if name.startswith("bspline"):
            # Beyond its domain ITK's b-spline moves nothing; Slicer's (VTK border mode "zero") fades out
            # over one node spacing. They agree inside the domain.
            inside = np.all((points >= 0) & (points <= 40), axis=1)
            theirs, ours = theirs[inside], ours[inside]
        # Slicer inverts a modeling grid by Newton iterations to its InverseTolerance (0.01 mm); ours is exact
        atol = 0.01 if name == "grid-modeling.nrrd" else 1e-4
        np.testing.assert_allclose(theirs, ours, rtol=0, atol=atol, err_msg=f"{name} ({out[name]['class']})")
    # the to-parent direction, where Slicer inverts analytically (linear) or exactly (modeling grid)
    for name in ("linear.h5", "linear.tfm", "grid-modeling.nrrd"):
        theirs = out[name]["to_parent"] * FLIP
        ours = transforms[name].transform_points_to_parent(points)
        np.testing.assert_allclose(theirs, ours, rtol=0, atol=1e-4, err_msg=name)
