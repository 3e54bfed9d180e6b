"""label_summary (label values and per-value boxes) against a plain reference."""
from __future__ import annotations

import numpy as np
import pytest

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
    late = empty.copy()
    late[17, 30, 2] = late[21, 0, 36] = 1  # first and last occupied slices inside the last blocks of slices
    multi = empty.copy()
    multi[2:10, 5:20, 3:30] = 1
    multi[8:20, 10:30, 20:36] = 3  # overlaps label 1: lines with 0, 1 and 3
    multi[12, 12, 12] = 7
    signed = multi.astype(np.int16) - 1  # -1 background, values 0, 2, 6
    gap = (mask * 5).astype(np.uint16)  # two values, not 0/1
    wide = rng.integers(0, 40, shape).astype(np.int32)
    return {"empty": empty, "one voxel": one, "mask": mask, "ends": ends, "late": late, "full": full, "multi": multi,
            "signed": signed, "gap": gap, "wide": wide, "bool": mask.astype(bool)}


@pytest.mark.parametrize("name", list(_cases()))
@pytest.mark.parametrize("include_zero", [False, True])
def test_label_summary_matches_reference(name, include_zero):
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


@pytest.mark.parametrize("kind", ["organs", "organs int32 wide span", "organs signed", "organs int64 sparse",
                                  "multi", "wide", "float"])
def test_multi_label_data_matches_reference(kind):
    a = {"organs": _organs(), "organs int32 wide span": _organs(dtype=np.int32, step=100_003),
         "organs signed": (_organs(dtype=np.int16) - 7),
         "organs int64 sparse": _organs(dtype=np.int64, step=10 ** 12),
         "multi": _cases()["multi"], "wide": _cases()["wide"], "float": _organs().astype(np.float32)}[kind]
    ref_all = _reference(a, True)
    assert label_summary(a, include_zero=True) == ref_all
    assert label_summary(a) == {v: b for v, b in ref_all.items() if v != 0}
    assert label_summary(a, extents=False) == {v: None for v in ref_all if v != 0}


def test_label_extents_and_bad_shapes():
    from napari_medio.core.segmentation import bounding_extent, label_extents

    a = _cases()["multi"]
    ref = _reference(a, True)
    assert label_extents(a, [0, 3, 99]) == {0: ref[0], 3: ref[3], 99: None}
    assert bounding_extent(a) == bounding_extent(a != 0) == (3, 35, 5, 29, 2, 19)
    assert label_summary(np.zeros((0, 4, 4), np.uint8)) == {}
    with pytest.raises(ValueError, match="2D or 3D"):
        label_summary(np.zeros((2, 2, 2, 2), np.uint8))
