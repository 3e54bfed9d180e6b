"""Real napari viewer: segmentations over their reference volume, segment names on hover, models from segments."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

import napari_medio
from napari_medio.core.geometry import Geometry
from napari_medio.core.model import Model
from napari_medio.core.segmentation import Segment, Segmentation
from tests.conftest import fixture_file

pytestmark = pytest.mark.viewer


def _world_of_voxel(layer, index):
    return np.asarray(layer.data_to_world(np.asarray(index, dtype=float)))


def test_segmentation_over_reference_volume_voxel_for_voxel(make_napari_viewer):
    viewer = make_napari_viewer()
    [ct] = viewer.open(fixture_file("images/CTChest4.nrrd"), plugin="napari-medio")
    [labels] = viewer.open(fixture_file("segmentations/Segmentation.seg.nrrd"), plugin="napari-medio")
    assert labels._type_string == "labels" and labels.data.shape == ct.data.shape
    rng = np.random.default_rng(0)
    for _ in range(20):
        idx = [int(rng.integers(0, s)) for s in ct.data.shape]
        assert np.allclose(_world_of_voxel(ct, idx), _world_of_voxel(labels, idx), atol=1e-6)
    # The world position of a labelled voxel maps back to the same voxel in the CT layer.
    k, j, i = np.argwhere(np.asarray(labels.data) == 5)[100]
    w = _world_of_voxel(labels, (k, j, i))
    assert np.allclose(np.round(ct.world_to_data(w)), (k, j, i))


def test_hover_shows_segment_name_and_colours(make_napari_viewer):
    viewer = make_napari_viewer()
    [labels] = viewer.open(fixture_file("segmentations/Segmentation.seg.nrrd"), plugin="napari-medio")
    k, j, i = np.argwhere(np.asarray(labels.data) == 6)[50]
    world = _world_of_voxel(labels, (k, j, i))
    viewer.dims.ndisplay = 2
    viewer.dims.set_point(range(3), world)
    status = labels.get_status(world, world=True)
    text = status["coordinates"] if isinstance(status, dict) else str(status)
    assert "left lung" in text
    assert np.allclose(labels.colormap.map(6)[..., :3].reshape(-1), [0.772549, 0.0980392, 0.388235], atol=1e-5)
    assert list(labels.features["name"])[:3] == ["background", "ribs", "cervical vertebral column"]


def test_save_labels_layer_as_seg_nrrd_keeps_fields_and_edits(make_napari_viewer, tmp_path):
    import nrrd

    viewer = make_napari_viewer()
    src = fixture_file("segmentations/Segmentation.seg.nrrd")
    [labels] = viewer.open(src, plugin="napari-medio")
    out = tmp_path / "saved.seg.nrrd"
    viewer.layers.save(str(out), selected=True, plugin="napari-medio")
    a, b = nrrd.read_header(str(src)), nrrd.read_header(str(out))
    keys = {k for k in a if k.startswith("Segment")}
    assert keys == {k for k in b if k.startswith("Segment")}
    assert all(a[k] == b[k] for k in keys)
    [seg] = napari_medio.read(out)
    [orig] = napari_medio.read(src)
    assert np.array_equal(seg.array, orig.array) and seg.geometry.almost_equal(orig.geometry, 1e-9)
    # A renamed segment and a newly painted label are saved with names.
    feats = labels.features.copy()
    feats.loc[feats["index"] == 7, "name"] = "soft tissue"
    labels.features = feats
    labels.data[0, 0, 0] = 9
    viewer.layers.save(str(out), selected=True, plugin="napari-medio")
    [seg2] = napari_medio.read(out)
    names = {s.label_value: s.name for s in seg2.segments}
    assert names[7] == "soft tissue" and names[9] == "Segment_9"


def _sphere_seg() -> Segmentation:
    geom = Geometry([0.8, 1.1, 2.0], [30.0, -20.0, 15.0], np.diag([-1.0, -1.0, 1.0]))
    shape = (24, 40, 44)
    k, j, i = np.indices(shape)
    lps = geom.index_to_lps(np.stack([i, j, k], -1).reshape(-1, 3)).reshape(shape + (3,))
    centre = geom.index_to_lps([22, 20, 12])
    r = np.linalg.norm(lps - centre, axis=-1)
    arr = np.where(r < 12.0, 1, 0).astype(np.uint8)
    arr[(lps[..., 0] < centre[0] - 14) & (r < 30)] = 2
    return Segmentation(arr, geom, [Segment("S1", "ball", 1, color=(1, 0, 0)), Segment("S2", "slab", 2)], name="seg")


def _boundary_samples(mask: np.ndarray, n: int = 4) -> np.ndarray:
    """Points (continuous NumPy index) densely covering the faces between inside and outside voxels."""
    t = (np.arange(n) + 0.5) / n - 0.5
    out = []
    for ax in range(3):
        a = np.moveaxis(mask, ax, 0)
        faces = np.argwhere(a[:-1] != a[1:]).astype(float)
        faces[:, 0] += 0.5
        faces = faces[:, np.argsort([ax] + [o for o in range(3) if o != ax])]
        o1, o2 = [o for o in range(3) if o != ax]
        for u in t:
            for w in t:
                q = faces.copy()
                q[:, o1] += u
                q[:, o2] += w
                out.append(q)
    return np.concatenate(out)


def test_model_exported_from_segment_lies_on_its_boundary(make_napari_viewer, tmp_path):
    from napari_medio.formats.surfaces import segment_surfaces

    seg = _sphere_seg()
    napari_medio.write(seg, tmp_path / "s.seg.nrrd")
    [ball] = [m for m in segment_surfaces(seg) if m.name == "ball"]
    napari_medio.write(ball, tmp_path / "ball.stl")
    viewer = make_napari_viewer()
    [labels] = viewer.open(tmp_path / "s.seg.nrrd", plugin="napari-medio")
    [surface] = viewer.open(tmp_path / "ball.stl", plugin="napari-medio")
    assert surface._type_string == "surface"
    # Surface vertices (world) -> continuous index of the labels layer -> mm from the voxel boundary.
    verts_world = np.asarray([surface.data_to_world(v) for v in surface.data[0]])
    idx = np.asarray([labels.world_to_data(w) for w in verts_world])
    spacing = np.abs(np.asarray(labels.scale))
    samples = _boundary_samples(np.asarray(labels.data) == 1)
    dist, _ = cKDTree(samples * spacing).query(idx * spacing)
    assert np.mean(dist) < 0.5 * spacing.min()
    assert np.max(dist) < 0.5 * np.linalg.norm(spacing)
    # LPS: the surface layer's world vertices are the model's LPS points in (S, P, L) order (its data
    # are divided by the labels' voxel step so that one scroll step stays one slice).
    [m] = napari_medio.read(tmp_path / "ball.stl")
    assert np.allclose(verts_world, m.points[:, ::-1])


def test_surface_layer_save_round_trip(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    [layer] = viewer.open(fixture_file("models/slicer/cube.vtk"), plugin="napari-medio")
    out = tmp_path / "cube.vtp"
    viewer.layers.save(str(out), selected=True, plugin="napari-medio")
    [a], [b] = napari_medio.read(fixture_file("models/slicer/cube.vtk")), napari_medio.read(out)
    assert isinstance(b, Model) and b.n_cells == 6 and np.array_equal(a.connectivity, b.connectivity)
    assert np.allclose(a.points, b.points, atol=1e-6) and set(b.point_data) == {"Normals", "TCoords"}
    # Values from a scalar array show as Surface values.
    [ug] = viewer.open(fixture_file("models/slicer/PentaHexa.vtk"), plugin="napari-medio")
    assert len(ug.data) == 3 and ug.metadata["medio"]["values_array"] == "scalar2"
    # A layered segmentation opens as one Labels layer per layer.
    seg = _sphere_seg()
    arr = np.stack([seg.array, (seg.array == 1).astype(np.uint8)])
    layered = Segmentation(arr, seg.geometry, seg.segments + [Segment("S3", "core", 1, 1)], name="lay")
    napari_medio.write(layered, tmp_path / "lay.seg.nrrd")
    layers = viewer.open(tmp_path / "lay.seg.nrrd", plugin="napari-medio")
    assert [layer.name for layer in layers] == ["lay (layer 0)", "lay (layer 1)"]
