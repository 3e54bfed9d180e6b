"""Lazy opening of uncompressed volumes and the lazy pyramid: no full reads, bounded memory."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import napari_medio
from napari_medio.core.geometry import Geometry
from napari_medio.core.pyramid import LazyLevel, build_pyramid, downsample
from napari_medio.core.volume import Volume


def _big(shape=(64, 256, 256)) -> Volume:
    a = np.random.default_rng(0).integers(0, 1000, shape).astype(np.int16)
    return Volume(a, Geometry([0.5, 0.5, 1.0], [1.0, 2.0, 3.0], np.eye(3)), name="big")


@pytest.mark.parametrize("ext", [".nrrd", ".nii", ".nhdr"])
def test_uncompressed_open_is_a_memory_map(tmp_path, ext):
    vol = _big()
    out = tmp_path / f"v{ext}"
    napari_medio.write(vol, out, **({"compress": False} if "nrrd" in ext or ext == ".nhdr" else {}))
    tracemalloc.start()
    back = napari_medio.read(out)[0]
    base = back.array
    while getattr(base, "base", None) is not None and not isinstance(base, np.memmap):
        base = base.base
    assert isinstance(base, np.memmap) or isinstance(back.array, np.memmap)
    first = np.array(back.array[0])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert np.array_equal(first, vol.array[0])
    assert peak < vol.array.nbytes / 8  # nothing near the volume's size was allocated


def test_adapter_keeps_a_memory_map_lazy(tmp_path):
    from napari_medio.plugin.layers import to_layer_data

    vol = _big()
    napari_medio.write(vol, tmp_path / "v.nrrd", compress=False)
    back = napari_medio.read(tmp_path / "v.nrrd")[0]
    tracemalloc.start()
    [(data, kwargs, _)] = to_layer_data(back, multiscale_3d_limit=1 << 20)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert kwargs["multiscale"] is True and isinstance(data[1], LazyLevel)
    assert peak < vol.array.nbytes / 4  # contrast sampling + lazy levels, not a copy


class _Counting:
    """An array wrapper counting the voxels read through it."""

    def __init__(self, a):
        self.a, self.shape, self.dtype, self.read = a, a.shape, a.dtype, 0

    def __getitem__(self, key):
        out = self.a[key]
        self.read += np.asarray(out).size
        return out


def test_pyramid_levels_compute_only_what_is_asked_and_cache_small_levels():
    base = _Counting(np.random.default_rng(1).integers(0, 100, (64, 512, 512)).astype(np.int16))
    levels = build_pyramid(base, (0, 1, 2), labels=False, smallest=64)
    assert [lv.shape for lv in levels] == [(64, 512, 512), (64, 256, 256), (64, 128, 128), (64, 64, 64)]
    assert base.read == 0  # building is free
    import napari_medio.core.pyramid as pyr

    old = pyr.CACHE_BYTES
    pyr.CACHE_BYTES = 1 << 10  # force region-wise computing for this check
    try:
        s = levels[1][5]
        assert s.shape == (256, 256) and base.read == 512 * 512
        expect = downsample(base.a[5:6], (1, 2, 2), (0, 1, 2), False)[0]
        assert np.array_equal(s, expect)
    finally:
        pyr.CACHE_BYTES = old
    before = base.read
    np.asarray(levels[-1])
    np.asarray(levels[-1])
    assert levels[-1]._cache is not None and base.read - before <= 64 * 512 * 512  # once, at most the base


def test_label_pyramid_keeps_labels():
    a = np.zeros((8, 300, 300), np.uint8)
    a[:, 100:200, 100:200] = 5
    levels = build_pyramid(a, (0, 1, 2), labels=True, smallest=64)
    assert set(np.unique(np.asarray(levels[-1]))) == {0, 5}
