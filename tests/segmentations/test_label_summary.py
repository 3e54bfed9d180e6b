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
