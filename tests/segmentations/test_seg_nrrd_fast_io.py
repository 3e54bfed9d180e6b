""".seg.nrrd fast paths (issue 9): the overlapped write and the inflate routes give the same files, checks."""
from __future__ import annotations

import gzip
import warnings

import nrrd
import numpy as np
import pytest

import napari_medio
from napari_medio.core import _inflate, fileio
from napari_medio.core.errors import CancelledError, FormatError
from napari_medio.core.geometry import Geometry
from napari_medio.core.progress import Progress
from napari_medio.core.segmentation import Segment, Segmentation
from napari_medio.core.volume import Volume
from napari_medio.formats import segmentation_nrrd as segnrrd
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


def _sequential(monkeypatch):
    """Make the writer take its sequential route (sweep first, then deflate)."""
    monkeypatch.setattr(segnrrd, "_planned_voxels", lambda obj: None)


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(fileio, "_GZIP_BLOCK", 1 << 14)  # many parallel blocks on small arrays


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


@pytest.mark.parametrize("case", ["labelmap", "bool", "segmentation", "layered", "nhdr", "empty", "int16",
                                  "mask int32", "late labels"])
def test_overlapped_write_gives_the_sequential_bytes(tmp_path, monkeypatch, small_blocks, case):
    a = _many_labels()
    ext = ".seg.nhdr" if case == "nhdr" else ".seg.nrrd"
    obj = {
        "labelmap": Volume(a, OBLIQUE_FLIPPED, kind="labelmap"),
        "bool": Volume(a > 0, OBLIQUE_FLIPPED, kind="labelmap"),
        "segmentation": Segmentation((a > 0).astype(np.uint8), OBLIQUE_FLIPPED, [Segment("S", "s", 1)]),
        "layered": _layered(),
        "nhdr": _layered(),
        "empty": Volume(np.zeros((6, 7, 8), np.uint8), OBLIQUE_FLIPPED, kind="labelmap"),
        "int16": Volume(a.astype(np.int16) * 100, OBLIQUE_FLIPPED, kind="labelmap",  # values up to 25000
                        metadata={"color_table": {100: {"name": "first", "color": [0, 0, 0, 1]}}}),
        "mask int32": Volume((a > 0).astype(np.int32), OBLIQUE_FLIPPED, kind="labelmap"),
        # 0/1 in the first blocks, more values only near the end: the full sweep starts late
        "late labels": Volume(np.where(np.arange(40)[:, None, None] < 35, a > 0, a).astype(np.uint8),
                              OBLIQUE_FLIPPED, kind="labelmap"),
    }[case]
    fast = napari_medio.write(obj, tmp_path / f"fast{ext}")
    _sequential(monkeypatch)
    slow = napari_medio.write(obj, tmp_path / f"slow{ext}")
    for f, s in zip(fast, slow):
        fb, sb = open(f, "rb").read(), open(s, "rb").read()
        assert fb.replace(b"fast", b"slow") == sb
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([p.split("/")[-1] for p in fast + slow])


def test_compressed_voxels_spill_to_a_temporary_file(tmp_path, monkeypatch, small_blocks):
    vol = Volume(_many_labels(), OBLIQUE_FLIPPED, kind="labelmap")
    napari_medio.write(vol, tmp_path / "a.seg.nrrd")
    monkeypatch.setattr(segnrrd, "_SPOOL_IN_MEMORY", 1000)
    napari_medio.write(vol, tmp_path / "b.seg.nrrd")
    assert (tmp_path / "a.seg.nrrd").read_bytes() == (tmp_path / "b.seg.nrrd").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.seg.nrrd", "b.seg.nrrd"]


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


def test_bad_segments_stop_the_overlapped_write(tmp_path, small_blocks):
    a = _many_labels()
    seg = Segmentation(a, OBLIQUE_FLIPPED, [Segment("one", "one", 1)])  # the other labels belong to nobody
    with pytest.raises(napari_medio.core.errors.WriteError, match="belong to no segment"):
        napari_medio.write(seg, tmp_path / "bad.seg.nrrd")
    assert list(tmp_path.iterdir()) == []


def _foreign(tmp_path, obj, name="f.seg.nrrd") -> "tuple":
    """``obj`` written by us, then re-encoded as one plain gzip member (as ITK/Slicer write it)."""
    ours = tmp_path / ("ours-" + name)
    napari_medio.write(obj, ours)
    raw = ours.read_bytes()
    cut = raw.index(b"\n\n") + 2
    voxels = gzip.decompress(raw[cut:])
    p = tmp_path / name
    p.write_bytes(raw[:cut] + gzip.compress(voxels, 6))
    assert fileio.gzip_index(p, cut) is None
    return p, len(voxels)


def _route(monkeypatch, route: str) -> None:
    if route == "stream":  # no libdeflate: the zlib-ng streamer, piece by piece
        monkeypatch.setattr(_inflate, "libdeflate", lambda: None)
        monkeypatch.setattr(fileio, "_libdeflate", lambda: None)
        monkeypatch.setattr(fileio, "STREAM_ABOVE", 10)
        real = _inflate._ZlibNg.inflate_file
        monkeypatch.setattr(_inflate._ZlibNg, "inflate_file", lambda self, fd, off, out, **kw: real(
            self, fd, off, out, piece=4096, chunk=512, on_piece=kw.get("on_piece")))
    elif route == "python":
        monkeypatch.setattr(_inflate, "libdeflate", lambda: None)
        monkeypatch.setattr(_inflate, "zng", lambda: None)


@pytest.mark.parametrize("route", ["one call", "stream", "python"])
def test_foreign_seg_files_read_the_same_on_every_route(tmp_path, monkeypatch, route):
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


@pytest.mark.parametrize("route", ["one call", "stream"])
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


def test_binary_mask_box_from_projection_and_end_scan(tmp_path):
    a = np.zeros((300, 20, 30), np.uint8)
    a[137:139, 5:9, 11:12] = 1  # deep inside: the end scans grow until they meet it
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
