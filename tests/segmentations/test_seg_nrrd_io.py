""".seg.nrrd writes and reads: extents, every object kind, progress and cancel, foreign gzip, checks."""
from __future__ import annotations

import gzip
import warnings

import nrrd
import numpy as np
import pytest

import napari_medio
from napari_medio.core import fileio
from napari_medio.core.errors import CancelledError, FormatError
from napari_medio.core.geometry import Geometry
from napari_medio.core.progress import Progress
from napari_medio.core.segmentation import Segment, Segmentation
from napari_medio.core.volume import Volume
from tests.volumes import OBLIQUE_FLIPPED


def _many_labels(shape=(40, 48, 56)) -> np.ndarray:
    """Twelve labels (values with gaps), boxes that touch and overlap, one voxel-sized segment."""
    a = np.zeros(shape, np.uint8)
    rng = np.random.default_rng(4)
    values = [1, 2, 3, 5, 8, 9, 13, 20, 21, 40, 77, 200]
    for n, v in enumerate(values):
        k0, j0, i0 = rng.integers(0, 30), rng.integers(0, 36), rng.integers(0, 44)
        a[k0:k0 + 3 + n, j0:j0 + 12, i0:i0 + 4 + n] = v
    a[39, 47, 55] = 250  # a one-voxel segment in the far corner
    return a


def _boxes(a: np.ndarray) -> dict:
    out = {}
    for v in np.unique(a):
        if v:
            idx = np.nonzero(a == v)
            out[int(v)] = tuple(int(x) for ax in (2, 1, 0) for x in (idx[ax].min(), idx[ax].max()))
    return out


def _layered() -> Segmentation:
    a = np.zeros((2, 9, 10, 11), np.uint8)
    a[0, 1:5, 2:7, 3:9] = 1
    a[0, 6:8, 1:3, 2:4] = 2
    a[1, 3:9, 4:10, 0:5] = 1  # overlaps layer 0's segments
    segs = [Segment("liver", "liver", 1, 0), Segment("spine", "spine", 2, 0),
            Segment("tumour", "tumour", 1, 1)]
    return Segmentation(a, OBLIQUE_FLIPPED, segs, name="layers")


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(fileio, "_READ_PIECE", 1 << 10)  # many read and inflate steps on small arrays
    monkeypatch.setattr(fileio, "_OUT_PIECE", 1 << 12)


def test_many_segments_write_extents_and_read_back(tmp_path, small_blocks):
    import SimpleITK as sitk

    a = _many_labels()
    vol = Volume(a, OBLIQUE_FLIPPED, kind="labelmap", name="many")
    out = tmp_path / "many.seg.nrrd"
    napari_medio.write(vol, out)
    h = nrrd.read_header(str(out))
    boxes = _boxes(a)
    got = {int(h[f"Segment{n}_LabelValue"]): tuple(int(x) for x in h[f"Segment{n}_Extent"].split())
           for n in range(len(boxes))}
    assert got == boxes
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every label has its segment, every segment its label
        [seg] = napari_medio.read(out)
    assert np.array_equal(seg.array, a) and [s.label_value for s in seg.segments] == sorted(boxes)
    assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(out))), a)
    assert np.array_equal(nrrd.read(str(out))[0].transpose(2, 1, 0), a)


def _expected_layers(obj) -> np.ndarray:
    a = np.asarray(obj.array)
    return (a > 0).astype(np.uint8) if a.dtype == bool else a


@pytest.mark.parametrize("case", ["labelmap", "bool", "segmentation", "layered", "nhdr", "int16", "mask int32",
                                  "sparse"])
def test_every_kind_of_object_writes_extents_peers_read(tmp_path, small_blocks, case):
    import SimpleITK as sitk

    a = _many_labels()
    ext = ".seg.nhdr" if case == "nhdr" else ".seg.nrrd"
    obj = {
        "labelmap": Volume(a, OBLIQUE_FLIPPED, kind="labelmap"),
        "bool": Volume(a > 0, OBLIQUE_FLIPPED, kind="labelmap"),
        "segmentation": Segmentation((a > 0).astype(np.uint8), OBLIQUE_FLIPPED, [Segment("S", "s", 1)]),
        "layered": _layered(),
        "nhdr": _layered(),
        "int16": Volume(a.astype(np.int16) * 100, OBLIQUE_FLIPPED, kind="labelmap",  # values up to 25000
                        metadata={"color_table": {100: {"name": "first", "color": [0, 0, 0, 1]}}}),
        "mask int32": Volume((a > 0).astype(np.int32), OBLIQUE_FLIPPED, kind="labelmap"),
        "sparse": Volume(np.where(a == 200, 10 ** 7, a.astype(np.int32)), OBLIQUE_FLIPPED, kind="labelmap"),
    }[case]
    written = napari_medio.write(obj, tmp_path / f"out{ext}")
    assert case != "sparse" or 10 ** 7 in [s.label_value for s in napari_medio.read(written[0])[0].segments]
    assert len(written) == (2 if case == "nhdr" else 1)
    expected = _expected_layers(obj)
    [back] = napari_medio.read(written[0])
    assert np.array_equal(back.array, expected)
    h = nrrd.read_header(written[0])
    layers = expected if expected.ndim == 4 else expected[np.newaxis]
    for n, s in enumerate(back.segments):
        want = _boxes(np.where(layers[s.layer] == s.label_value, 1, 0))[1]
        assert tuple(int(x) for x in h[f"Segment{n}_Extent"].split()) == want
    disk = nrrd.read(written[0])[0]  # pynrrd: NRRD axis order, the layer axis fastest
    assert np.array_equal(disk.transpose(*range(disk.ndim)[::-1]), np.moveaxis(expected, 0, -1)
                          if expected.ndim == 4 else expected)
    if expected.ndim == 3:
        assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(written[0])), expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(w.split("/")[-1] for w in written)


def test_empty_label_map_is_slicers_empty_segmentation(tmp_path):
    out = tmp_path / "e.seg.nrrd"
    napari_medio.write(Volume(np.zeros((6, 7, 8), np.uint8), OBLIQUE_FLIPPED, kind="labelmap"), out)
    h = nrrd.read_header(str(out))
    assert list(h["sizes"]) == [1, 1, 1] and "Segment0_ID" not in h


def test_write_progress_and_cancel_leave_the_previous_file(tmp_path, small_blocks):
    vol = Volume(_many_labels(), OBLIQUE_FLIPPED, kind="labelmap")
    target = tmp_path / "p.seg.nrrd"
    seen = []
    napari_medio.write(vol, target, progress=Progress(callback=lambda d, t, s: seen.append((d, t))))
    assert seen and seen[-1][0] == seen[-1][1] == vol.array.nbytes
    before = target.read_bytes()
    prog = Progress(callback=lambda d, t, s: False if t and d > t / 2 else None)
    with pytest.raises(CancelledError):
        napari_medio.write(vol.with_array(np.roll(vol.array, 3)), target, progress=prog)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["p.seg.nrrd"]


def test_voxels_of_no_segment_stop_the_write(tmp_path, small_blocks):
    a = _many_labels()
    negative = Volume(np.where(a == 200, -5, a.astype(np.int16)), OBLIQUE_FLIPPED, kind="labelmap")
    with pytest.raises(napari_medio.core.errors.WriteError, match="label value -5; it must be positive"):
        napari_medio.write(negative, tmp_path / "negative.seg.nrrd")
    seg = Segmentation(a, OBLIQUE_FLIPPED, [Segment("one", "one", 1)])  # the other labels belong to nobody
    with pytest.raises(napari_medio.core.errors.WriteError, match="belong to no segment"):
        napari_medio.write(seg, tmp_path / "bad.seg.nrrd")
    assert list(tmp_path.iterdir()) == []


def _foreign(tmp_path, obj, name="f.seg.nrrd") -> tuple:
    """``obj`` written by us, then re-encoded as one plain gzip member (as ITK/Slicer write it)."""
    ours = tmp_path / ("ours-" + name)
    napari_medio.write(obj, ours)
    raw = ours.read_bytes()
    cut = raw.index(b"\n\n") + 2
    voxels = gzip.decompress(raw[cut:])
    p = tmp_path / name
    p.write_bytes(raw[:cut] + gzip.compress(voxels, 6))
    return p, len(voxels)


def _route(monkeypatch, route: str) -> None:
    if route == "stdlib":  # as where isal and zlib-ng are not installed
        import zlib

        monkeypatch.setattr(fileio, "_zlib", lambda: zlib)


@pytest.mark.parametrize("route", ["isal", "stdlib"])
def test_foreign_seg_files_read_the_same_on_every_route(tmp_path, monkeypatch, small_blocks, route):
    a = _many_labels()
    p, _ = _foreign(tmp_path, Volume(a, OBLIQUE_FLIPPED, kind="labelmap"))
    q, _ = _foreign(tmp_path, _layered(), "layered.seg.nrrd")
    _route(monkeypatch, route)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        [seg] = napari_medio.read(p)
        [lay] = napari_medio.read(q)
    assert np.array_equal(seg.array, a) and seg.array.flags.writeable
    assert [s.label_value for s in seg.segments] == sorted(_boxes(a))
    assert lay.n_layers == 2 and np.array_equal(lay.array, _layered().array)
    assert [(s.id, s.layer, s.label_value) for s in lay.segments] == [("liver", 0, 1), ("spine", 0, 2),
                                                                      ("tumour", 1, 1)]


@pytest.mark.parametrize("route", ["isal", "stdlib"])
def test_read_where_a_label_is_missing_or_unclaimed(tmp_path, monkeypatch, route):
    a = _many_labels()
    segs = [Segment(f"S{v}", f"s{v}", int(v)) for v in np.unique(a) if v]
    seg = Segmentation(a, OBLIQUE_FLIPPED, segs)
    p, _ = _foreign(tmp_path, seg)
    raw = p.read_bytes()
    cut = raw.index(b"\n\n") + 2
    # the label map without label 13's voxels: its segment is stated but absent
    gone = np.where(a == 13, 0, a)
    p.write_bytes(raw[:cut] + gzip.compress(gone.tobytes(), 6))
    _route(monkeypatch, route)
    with pytest.warns(UserWarning, match="label value 13 is not in the data"):
        [back] = napari_medio.read(p)
    assert np.array_equal(back.array, gone)
    with pytest.raises(FormatError, match="label value 13"):
        napari_medio.read(p, strict=True)
    # voxels with a value no segment claims
    extra = a.copy()
    extra[0, 0, 0] = 99
    p.write_bytes(raw[:cut] + gzip.compress(extra.tobytes(), 6))
    with pytest.warns(UserWarning, match="belong to no segment"):
        napari_medio.read(p)


def test_binary_mask_box_deep_inside(tmp_path):
    a = np.zeros((300, 20, 30), np.uint8)
    a[137:139, 5:9, 11:12] = 1
    seg = Segmentation(a, Geometry.identity(), [Segment("S", "s", 1)])
    out = tmp_path / "b.seg.nrrd"
    napari_medio.write(seg, out)
    assert nrrd.read_header(str(out))["Segment0_Extent"] == "11 11 5 8 137 138"


def test_layers_interleaved_for_disk_by_layer():
    from napari_medio.formats import nrrd as nrrd_format

    rng = np.random.default_rng(0)
    for shape in ((3, 4, 5, 6), (2, 7, 1, 3), (17, 3, 4, 2)):
        a = rng.integers(0, 9, shape).astype(np.uint8)
        moved = np.moveaxis(a, 0, -1)  # as .seg.nrrd stores layers: fastest on disk
        for dtype in (np.dtype(np.uint8), np.dtype("<u2")):
            got = nrrd_format._c_order(moved, dtype)
            assert got.flags.c_contiguous and got.dtype == dtype
            assert np.array_equal(got, np.ascontiguousarray(moved, dtype=dtype))
    c = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    assert nrrd_format._c_order(c, c.dtype) is c
