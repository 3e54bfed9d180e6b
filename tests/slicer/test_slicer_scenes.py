"""3D Slicer (slicer-core's MRML scene, with its application, markups and remote-IO logic as Slicer sets
them up) opens the scenes napari-medio saves, as a ``.mrml`` folder, a ``.mrb`` bundle and a DICOM
secondary capture holding the bundle (found as Slicer's DICOMSlicerDataBundlePlugin finds it): the same
nodes, their data where napari-medio put it, and their display properties."""
from __future__ import annotations

import numpy as np

import napari_medio
from napari_medio.core.markups import Markups
from napari_medio.core.model import triangle_model
from napari_medio.core.segmentation import Segment, Segmentation
from napari_medio.core.transform import Transform
from napari_medio.scene.dicom_bundle import write_scene_capture
from napari_medio.scene.save import save_scene
from tests.slicer_harness import assert_same_volume, run_slicer
from tests.volumes import OBLIQUE_FLIPPED, rotation, scalar_3d

OPEN_SCENES = """
    import tempfile
    CLASSES = ["vtkMRMLScalarVolumeNode", "vtkMRMLSegmentationNode", "vtkMRMLModelNode",
               "vtkMRMLMarkupsFiducialNode", "vtkMRMLMarkupsLineNode", "vtkMRMLLinearTransformNode"]

    def open_scene(path):
        scene = slicer.vtkMRMLScene()
        app = slicer.vtkSlicerApplicationLogic()
        app.SetMRMLScene(scene)
        markups = slicer.vtkSlicerMarkupsLogic()
        markups.SetMRMLApplicationLogic(app)
        markups.SetMRMLScene(scene)
        remote = slicer.vtkMRMLRemoteIOLogic()
        remote.SetMRMLScene(scene)
        remote.SetMRMLApplicationLogic(app)
        remote.GetCacheManager().SetRemoteCacheDirectory(tempfile.mkdtemp(dir=workdir))
        io = slicer.vtkDataIOManagerLogic()
        io.SetMRMLApplicationLogic(app)
        io.SetAndObserveDataIOManager(remote.GetDataIOManager())
        remote.AddDataIOToScene()
        messages = slicer.vtkMRMLMessageCollection()
        if path.endswith(".dcm"):  # DICOMSlicerDataBundlePlugin.load: size from the creator, zip at the end
            import re
            raw = open(path, "rb").read()
            size = int(re.search(rb"3D Slicer ([0-9]+)", raw).group(1))
            zipped = raw[-size:] if size % 2 == 0 else raw[-size - 1:-1]
            path = str(workdir / "scene.zip")
            open(path, "wb").write(zipped)
        if path.endswith(".mrml"):
            scene.SetURL(path)
            ok = scene.Connect(messages)
        else:
            ok = scene.ReadFromMRB(path, False, messages)
        if not ok:
            raise RuntimeError(f"Slicer could not open {path}: {messages.GetAllMessagesAsString()}")
        return scene, (app, markups, remote, io)

    from vtk.util import numpy_support

    def world_points(node, points):
        to_world = vtk.vtkGeneralTransform()
        slicer.vtkMRMLTransformNode.GetTransformBetweenNodes(node.GetParentTransformNode(), None, to_world)
        return np.array([to_world.TransformPoint(*p) for p in points]).reshape(-1, 3)

    for name, path in inputs.get("compare", {}).items():
        scene, keep = open_scene(path)
        out = {"counts": {c: scene.GetNumberOfNodesByClass(c) for c in CLASSES + [
            "vtkMRMLMarkupsPlaneNode", "vtkMRMLMarkupsROINode", "vtkMRMLMarkupsCurveNode",
            "vtkMRMLTransformNode"]}}
        model = scene.GetFirstNodeByClass("vtkMRMLModelNode")
        mesh = numpy_support.vtk_to_numpy(model.GetMesh().GetPoints().GetData()).astype(float)
        out["model_world"] = world_points(model, mesh)
        fiducials = scene.GetFirstNodeByClass("vtkMRMLMarkupsFiducialNode")
        out["fiducials_world"] = np.array([fiducials.GetNthControlPointPositionWorld(i)
                                           for i in range(fiducials.GetNumberOfControlPoints())])
        volume = scene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
        out["volume_ijk_to_ras"] = node_ijk_to_ras(volume)
        result["compare:" + name] = out

    for name, path in inputs.get("scenes", {}).items():
        scene, keep = open_scene(path)
        out = {"counts": {c: scene.GetNumberOfNodesByClass(c) for c in CLASSES}}
        volume = scene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
        display = volume.GetDisplayNode()
        out["volume"] = {"voxels": node_voxels(volume), "ijk_to_ras": node_ijk_to_ras(volume),
                         "window_level": [display.GetWindow(), display.GetLevel()]}
        model = scene.GetFirstNodeByClass("vtkMRMLModelNode")
        out["model"] = {"points": numpy_support.vtk_to_numpy(model.GetMesh().GetPoints().GetData()).astype(float),
                        "color": list(model.GetDisplayNode().GetColor()),
                        "opacity": model.GetDisplayNode().GetOpacity(),
                        "visible": bool(model.GetDisplayNode().GetVisibility())}
        points = scene.GetFirstNodeByClass("vtkMRMLMarkupsFiducialNode")
        out["points"] = np.array([points.GetNthControlPointPosition(i)
                                  for i in range(points.GetNumberOfControlPoints())])
        segmentation = scene.GetFirstNodeByClass("vtkMRMLSegmentationNode").GetSegmentation()
        out["segments"] = [[segmentation.GetNthSegment(i).GetName(), list(segmentation.GetNthSegment(i).GetColor())]
                           for i in range(segmentation.GetNumberOfSegments())]
        linear = scene.GetFirstNodeByClass("vtkMRMLLinearTransformNode")
        matrix = vtk.vtkMatrix4x4()
        linear.GetMatrixTransformToParent(matrix)
        out["to_parent"] = np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])
        result[name] = out
"""

FLIP = np.array([-1.0, -1.0, 1.0])
FLIP4 = np.diag([-1.0, -1.0, 1.0, 1.0])


def _objects() -> list:
    volume = scalar_3d("int16", shape=(5, 6, 7))
    volume.name = "CT"
    volume.metadata["scene"] = {"display": {"window": 400.0, "level": 40.0, "auto_window_level": False}}
    labels = np.zeros((5, 6, 7), np.uint8)
    labels[1:4, 2:5, 1:6] = 1
    labels[4, 0:2, 0:3] = 2
    segmentation = Segmentation(labels, OBLIQUE_FLIPPED, [Segment("Segment_1", "liver", 1, 0, (0.9, 0.6, 0.5)),
                                                         Segment("Segment_2", "tumour", 2, 0, (0.2, 0.8, 0.3))],
                                name="Segmentation")
    points = np.random.default_rng(7).uniform(-40, 40, (5, 3))
    model = triangle_model(points, [[0, 1, 2], [1, 2, 3], [2, 3, 4]], name="Surface")
    model.metadata["scene"] = {"display": {"color": [0.9, 0.2, 0.4], "opacity": 0.6, "visible": True}}
    fiducials = Markups(type="Fiducial", name="F")
    for p in ([1.0, 2.0, 3.0], [-4.5, 5.25, 60.0]):
        fiducials.add_point(p)
    line = Markups(type="Line", name="L")
    for p in ([0.0, 0.0, 0.0], [30.0, 40.0, 0.0]):
        line.add_point(p)
    to_parent = np.eye(4)
    to_parent[:3, :3] = rotation()
    to_parent[:3, 3] = [10.0, -20.0, 30.5]
    transform = Transform.from_matrix_to_parent(to_parent, name="T")
    return [volume, segmentation, model, fiducials, line, transform]


def test_slicer_opens_saved_scenes(tmp_path):
    objects = _objects()
    scenes = {}
    for ext in ("mrml", "mrb"):
        target = tmp_path / ext / f"scene.{ext}"
        save_scene(objects, target)
        scenes[ext] = str(target)
    scenes["dcm"] = str(tmp_path / "SlicerDataBundle.dcm")  # Slicer's DICOM "Slicer Data Bundle"
    write_scene_capture(objects, scenes["dcm"])

    out = run_slicer(OPEN_SCENES, inputs={"scenes": scenes})

    volume, segmentation, model, fiducials, _line, transform = objects
    for ext, got in out.items():
        assert got["counts"] == {"vtkMRMLScalarVolumeNode": 1, "vtkMRMLSegmentationNode": 1, "vtkMRMLModelNode": 1,
                                 "vtkMRMLMarkupsFiducialNode": 1, "vtkMRMLMarkupsLineNode": 1,
                                 "vtkMRMLLinearTransformNode": 1}, ext
        assert_same_volume(got["volume"]["voxels"], got["volume"]["ijk_to_ras"], volume.array,
                           FLIP4 @ volume.geometry.index_to_lps_matrix(), atol_mm=1e-4)
        np.testing.assert_allclose(got["volume"]["window_level"], [400.0, 40.0], err_msg=ext)
        np.testing.assert_allclose(got["model"]["points"], np.asarray(model.points) * FLIP, atol=1e-4, err_msg=ext)
        np.testing.assert_allclose(got["model"]["color"], [0.9, 0.2, 0.4], atol=1e-6, err_msg=ext)
        assert abs(got["model"]["opacity"] - 0.6) < 1e-6 and got["model"]["visible"], ext
        np.testing.assert_allclose(got["points"], fiducials.positions * FLIP, atol=1e-4, err_msg=ext)
        assert [s[0] for s in got["segments"]] == [s.name for s in segmentation.segments], ext
        np.testing.assert_allclose([s[1] for s in got["segments"]], [s.color for s in segmentation.segments],
                                   atol=1e-6, err_msg=ext)
        np.testing.assert_allclose(got["to_parent"], transform.matrix_to_parent_ras, atol=1e-4, err_msg=ext)
    assert napari_medio.read(scenes["mrb"])  # and napari-medio reads its own bundle back


def test_slicer_opens_its_own_scene_resaved_by_napari_medio(tmp_path, fixture_path):
    """A scene Slicer wrote (tests/data/slicer/generated/scene), read by napari-medio and saved again as a
    bundle: Slicer finds the same nodes, the model and the points in the same world places."""
    original = fixture_path("slicer/generated/scene/scene.mrml")
    resaved = tmp_path / "resaved.mrb"
    save_scene(napari_medio.read(original), resaved)

    out = run_slicer(OPEN_SCENES, inputs={"compare": {"original": str(original), "resaved": str(resaved)}})

    before, after = out["compare:original"], out["compare:resaved"]
    assert after["counts"] == before["counts"]
    np.testing.assert_allclose(after["model_world"], before["model_world"], atol=1e-4)
    np.testing.assert_allclose(after["fiducials_world"], before["fiducials_world"], atol=1e-4)
    np.testing.assert_allclose(after["volume_ijk_to_ras"], before["volume_ijk_to_ras"], atol=1e-4)
