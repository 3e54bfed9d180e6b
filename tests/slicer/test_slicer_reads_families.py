"""3D Slicer (slicer-core's storage nodes) reads what napari-medio writes: volumes in .mha, .mhd, .nhdr, a
segmentation (.seg.nrrd: overlapping segments in two layers, names, colours, terminology) and a model in
every mesh format with both SPACE markers. One Slicer subprocess for all of them."""
from __future__ import annotations

import numpy as np

import napari_medio
from napari_medio.core.geometry import Geometry
from napari_medio.core.model import triangle_model
from napari_medio.core.segmentation import Segment, Segmentation
from tests.slicer_harness import assert_same_volume, run_slicer
from tests.volumes import OBLIQUE_FLIPPED, scalar_3d

READ_ALL = """
    for name, path in inputs["volumes"].items():
        volume = read_volume(path)
        result["volume:" + name] = {"voxels": volume["voxels"], "ijk_to_ras": volume["ijk_to_ras"]}

    scene = new_scene()
    seg = slicer.vtkMRMLSegmentationNode()
    scene.AddNode(seg)
    storage = slicer.vtkMRMLSegmentationStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(inputs["segmentation"])
    if not storage.ReadData(seg):
        raise RuntimeError("Slicer could not read the segmentation")
    segmentation = seg.GetSegmentation()
    segments = []
    for i in range(segmentation.GetNumberOfSegments()):
        segment = segmentation.GetNthSegment(i)
        image = slicer.vtkOrientedImageData()
        seg.GetBinaryLabelmapRepresentation(segmentation.GetNthSegmentID(i), image)
        matrix = vtk.vtkMatrix4x4()
        image.GetImageToWorldMatrix(matrix)
        dims = image.GetDimensions()
        from vtk.util import numpy_support
        scalars = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())
        mask = (scalars > 0).reshape(dims[2], dims[1], dims[0])  # this segment alone, as 0/1
        extent = image.GetExtent()
        ijk = np.argwhere(mask > 0)[:, ::-1] + [extent[0], extent[2], extent[4]]  # (i, j, k) of the voxels inside
        m = np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])
        ras = ijk @ m[:3, :3].T + m[:3, 3]
        tag = vtk.mutable("")
        segment.GetTag("TerminologyEntry", tag)
        segments.append({"name": segment.GetName(), "color": list(segment.GetColor()), "terminology": str(tag),
                         "voxels_ras": ras, "label": segment.GetLabelValue()})
    result["segments"] = segments

    for name, path in inputs["models"].items():
        node = slicer.vtkMRMLModelNode()
        scene.AddNode(node)
        storage = slicer.vtkMRMLModelStorageNode()
        scene.AddNode(storage)
        storage.SetFileName(path)
        if not storage.ReadData(node):
            raise RuntimeError(f"Slicer could not read {path}")
        from vtk.util import numpy_support
        result["model:" + name] = numpy_support.vtk_to_numpy(node.GetMesh().GetPoints().GetData()).astype(float)
"""

FLIP = np.array([-1.0, -1.0, 1.0])
TERMINOLOGY = ("Segmentation category and type - 3D Slicer General Anatomy list~SCT^123037004^Anatomical Structure~"
               "SCT^10200004^Liver~^^~Anatomic codes - DICOM master list~^^~^^")


def _segmentation() -> Segmentation:
    shape = (6, 7, 8)
    layers = np.zeros((2,) + shape, np.uint8)  # two layers: the segments overlap
    layers[0, 1:4, 2:5, 1:6] = 1
    layers[0, 4:6, 0:2, 0:3] = 2
    layers[1, 2:5, 3:7, 4:8] = 1
    segments = [Segment("Segment_1", "liver", 1, 0, (0.9, 0.6, 0.5), tags={"TerminologyEntry": TERMINOLOGY}),
                Segment("Segment_2", "tumour", 2, 0, (0.2, 0.8, 0.3)),
                Segment("Segment_3", "vessel", 1, 1, (0.1, 0.2, 0.9))]
    return Segmentation(layers, OBLIQUE_FLIPPED, segments, name="seg")


def _model_points() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(4)
    return rng.uniform(-50, 50, (6, 3)), np.array([[0, 1, 2], [0, 2, 3], [1, 3, 4], [2, 4, 5]])


def test_slicer_reads_volumes_segmentations_and_models(tmp_path):
    oblique = scalar_3d("int16", shape=(5, 6, 7))
    aligned = scalar_3d("float32", shape=(5, 6, 7), geometry=Geometry([0.75, 0.8, 2.5], [12.5, -30.25, 101.0],
                                                                      np.eye(3)))
    # slicer-core 5.13's archetype reader refuses legacy .vtk images (SimpleITK's too): .nhdr/.mhd instead
    written = {"mha": oblique, "mhd": aligned, "nhdr": oblique}
    volumes = {}
    for ext, volume in written.items():
        napari_medio.write(volume, tmp_path / f"v.{ext}")
        volumes[ext] = str(tmp_path / f"v.{ext}")
    segmentation = _segmentation()
    napari_medio.write(segmentation, tmp_path / "s.seg.nrrd")
    points, faces = _model_points()
    model = triangle_model(points, faces, name="m")
    models = {}
    for ext in ("vtk", "vtp", "stl", "ply", "obj"):
        for space in ("LPS", "RAS"):
            path = tmp_path / f"m-{space}.{ext}"
            napari_medio.write(model, path, coordinate_system=space)
            models[f"{space}.{ext}"] = str(path)

    out = run_slicer(READ_ALL, inputs={"volumes": volumes, "segmentation": str(tmp_path / "s.seg.nrrd"),
                                       "models": models})

    for ext, volume in written.items():
        ijk_to_ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ volume.geometry.index_to_lps_matrix()
        read = out["volume:" + ext]
        assert_same_volume(read["voxels"], read["ijk_to_ras"], volume.array, ijk_to_ras, atol_mm=1e-4)
    theirs = {s["name"]: s for s in out["segments"]}
    assert sorted(theirs) == ["liver", "tumour", "vessel"]
    m = segmentation.geometry.index_to_lps_matrix()
    for segment in segmentation.segments:
        got = theirs[segment.name]
        np.testing.assert_allclose(got["color"], segment.color, atol=1e-6)
        inside = np.argwhere(np.asarray(segmentation.array)[segment.layer] == segment.label_value)[:, ::-1]
        want = (inside @ m[:3, :3].T + m[:3, 3]) * FLIP
        assert len(got["voxels_ras"]) == len(want), segment.name
        key = np.lexsort(np.round(want, 3).T)
        their_key = np.lexsort(np.round(got["voxels_ras"], 3).T)
        np.testing.assert_allclose(got["voxels_ras"][their_key], want[key], atol=1e-4, err_msg=segment.name)
    assert theirs["liver"]["terminology"] == TERMINOLOGY
    for name in models:
        got = out["model:" + name]
        want = points * FLIP  # Slicer holds RAS, whatever the file's SPACE
        assert np.abs(got[:, None, :] - want[None, :, :]).sum(axis=2).min(axis=1).max() < 1e-4, name
        assert np.abs(want[:, None, :] - got[None, :, :]).sum(axis=2).min(axis=1).max() < 1e-4, name
