"""label_summary (label values and per-value boxes in one sweep) against a plain reference."""
from __future__ import annotations

import numpy as np
import pytest

from napari_medio.core import segmentation as segm
from napari_medio.core.segmentation import label_summary, present_labels


def _reference(a: np.ndarray, include_zero: bool) -> dict:
    out = {}
    for v in np.unique(a):
        if v == 0 and not include_zero:
            continue
        m = a == v
        box = []
        for axis in (2, 1, 0):
            hit = np.flatnonzero(m.any(axis=tuple(x for x in range(3) if x != axis)))
            box += [int(hit[0]), int(hit[-1])]
        out[int(v)] = tuple(box)
    return out


def _cases():
    rng = np.random.default_rng(11)
    shape = (23, 31, 37)
    empty = np.zeros(shape, np.uint8)
    one = empty.copy()
    one[7, 3, 30] = 1  # a single voxel: box of one voxel
    mask = empty.copy()
    mask[4:19, 2:29, 5:33] = rng.integers(0, 2, (15, 27, 28), dtype=np.uint8)
    ends = empty.copy()
    ends[0, 0, 0] = ends[-1, -1, -1] = 1  # first and last slices
    full = np.ones(shape, np.uint8)
    multi = empty.copy()
    multi[2:10, 5:20, 3:30] = 1
    multi[8:20, 10:30, 20:36] = 3  # overlaps label 1: lines with 0, 1 and 3
    multi[12, 12, 12] = 7
    signed = multi.astype(np.int16) - 1  # -1 background, values 0, 2, 6
    gap = (mask * 5).astype(np.uint16)  # two values, not 0/1
    wide = rng.integers(0, 40, shape).astype(np.int32)
    return {"empty": empty, "one voxel": one, "mask": mask, "ends": ends, "full": full, "multi": multi,
            "signed": signed, "gap": gap, "wide": wide, "bool": mask.astype(bool)}


@pytest.mark.parametrize("name", list(_cases()))
@pytest.mark.parametrize("include_zero", [False, True])
@pytest.mark.parametrize("threaded", [False, True])
def test_label_summary_matches_reference(monkeypatch, name, include_zero, threaded):
    if threaded:  # small arrays take the threaded projections too
        monkeypatch.setattr(segm, "_PARALLEL_ABOVE", 16)
    a = _cases()[name]
    ref = _reference(a.view(np.uint8) if a.dtype == bool else a, include_zero)
    assert label_summary(a, include_zero=include_zero) == ref
    assert label_summary(a, extents=False, include_zero=include_zero) == {v: None for v in ref}
    assert present_labels(a) == sorted(_reference(a.view(np.uint8) if a.dtype == bool else a, True))


def test_label_summary_on_views_and_2d():
    a = _cases()["multi"]
    layered = np.stack([a, _cases()["mask"]], axis=-1)  # a layer is a strided view
    for layer in range(2):
        view = layered[..., layer]
        assert label_summary(view) == _reference(np.ascontiguousarray(view), False)
    sl = a[9]
    assert label_summary(sl) == _reference(sl[np.newaxis], False)


def _organs(shape=(30, 40, 50), n=25, dtype=np.uint16, step=1, seed=2) -> np.ndarray:
    """Overlapping ellipsoids with label values ``step, 2*step, ...``: lines cross several labels."""
    rng = np.random.default_rng(seed)
    a = np.zeros(shape, dtype)
    zz, yy, xx = np.ogrid[:shape[0], :shape[1], :shape[2]]
    for v in range(1, n + 1):
        c = rng.uniform(0, 1, 3) * np.array(shape)
        r = rng.uniform(2, 9, 3)
        a[((zz - c[0]) / r[0]) ** 2 + ((yy - c[1]) / r[1]) ** 2 + ((xx - c[2]) / r[2]) ** 2 <= 1] = v * step
    return a


@pytest.mark.parametrize("peels", [0, 1, 4])
@pytest.mark.parametrize("kind", ["organs", "organs int32 wide span", "organs signed", "multi", "wide"])
def test_multi_label_paths_match_reference(monkeypatch, peels, kind):
    monkeypatch.setattr(segm, "_PEELS", peels)  # 0: every wide line counted at once
    monkeypatch.setattr(segm, "_PARALLEL_ABOVE", 16)  # several slabs on the pool
    a = {"organs": _organs(), "organs int32 wide span": _organs(dtype=np.int32, step=100_003),
         "organs signed": (_organs(dtype=np.int16) - 7), "multi": _cases()["multi"],
         "wide": _cases()["wide"]}[kind]
    ref_all = _reference(a, True)
    assert label_summary(a, include_zero=True) == ref_all
    assert label_summary(a) == {v: b for v, b in ref_all.items() if v != 0}
    assert label_summary(a, extents=False) == {v: None for v in ref_all if v != 0}
    assert label_summary(a, parallel=False) == label_summary(a, parallel="values") == label_summary(a)


def test_slabs_of_few_slices_and_small_pieces(monkeypatch):
    a = _organs(shape=(9, 64, 70), n=40)
    ref = _reference(a, False)
    monkeypatch.setattr(segm, "_PARALLEL_ABOVE", 16)
    assert label_summary(a) == ref
    monkeypatch.setattr(segm, "_PIECE", 1)  # one wide line a piece: the piece loop and its "noisy" switch
    for peels in (0, 1, 2):
        monkeypatch.setattr(segm, "_PEELS", peels)
        assert label_summary(a) == ref and label_summary(a, extents=False) == {v: None for v in ref}
    noise = np.random.default_rng(0).integers(0, 30, (5, 20, 24)).astype(np.uint8)
    assert label_summary(noise) == _reference(noise, False)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", ">i2", "int32", "uint32", "bool"])
@pytest.mark.parametrize("block", [7 * 4, 4096, 3 * 24 * 4, 1 << 20])
def test_projection_sweep_from_blocks_in_any_order_and_thread(dtype, block):
    from concurrent.futures import ThreadPoolExecutor

    from napari_medio.core.segmentation import ProjectionSweep

    rng = np.random.default_rng(8)
    dt = np.dtype(dtype)
    if dt == bool:
        a = rng.random((9, 24, 31)) > 0.9
    else:
        lo = -3 if dt.kind == "i" else 0
        a = rng.integers(lo, 6, (9, 24, 31)).astype(dt)
    raw = a.tobytes()
    step = block - block % dt.itemsize
    starts = list(range(0, len(raw), step))
    rng.shuffle(starts)
    flagged = []
    sweep = ProjectionSweep(a.shape, dt, on_values=lambda: flagged.append(1))
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda s: sweep.observe(s, memoryview(raw)[s:s + step]), starts))
    hi, lo = sweep.projections()
    ref = a.astype(np.int64)
    assert np.array_equal(hi, ref.max(axis=0))
    if dt.kind == "u" or dt == bool:
        assert lo is None
    else:
        assert np.array_equal(lo, ref.min(axis=0))
    assert flagged == ([] if dt == bool else [1])  # once, from whichever block showed values beyond 0/1
    assert label_summary(a, projections=(hi, lo)) == label_summary(a)


def test_projection_sweep_of_a_mask_and_its_refusals():
    from napari_medio.core.segmentation import ProjectionSweep

    a = np.zeros((5, 6, 7), np.int32)
    a[1:3, 2:4, 3:6] = 1
    flagged = []
    sweep = ProjectionSweep(a.shape, a.dtype, on_values=lambda: flagged.append(1))
    raw = a.tobytes()
    sweep.observe(0, raw[:400])
    with pytest.raises(ValueError, match="not every block"):
        sweep.projections()
    sweep.observe(400, raw[400:])
    assert not flagged
    assert label_summary(a, projections=sweep.projections()) == {1: (3, 5, 2, 3, 1, 2)}
    with pytest.raises(ValueError, match="whole elements"):
        sweep.observe(2, raw[2:10])
    for bad in [((5, 6), np.uint8), ((5, 6, 7), np.float32), ((5, 6, 7), np.int64)]:
        with pytest.raises(ValueError):
            ProjectionSweep(*bad)
