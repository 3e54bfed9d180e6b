"""3D Slicer's automatic window (VTK's histogram percentiles) and CT presets, without napari."""
from __future__ import annotations

import numpy as np
import pytest

from napari_medio.core.auto_window import (
    CT_PRESETS,
    array_sample,
    auto_window,
    histogram_auto_range,
)
from napari_medio.core.geometry import Geometry
from napari_medio.core.volume import Volume

RNG = np.random.default_rng(7)
SAMPLES = {
    "int16 CT": np.concatenate([np.full((6, 30, 40), -3024), RNG.integers(-1000, 2000, (14, 30, 40))]).astype(np.int16),
    "float32 normal": (RNG.normal(size=(10, 30, 40)) * 100 + 20).astype(np.float32),
    "uint8": RNG.integers(3, 250, (5, 30, 40)).astype(np.uint8),
    "int8": RNG.integers(-100, 100, (5, 30, 40)).astype(np.int8),
    "uint16 narrow": RNG.integers(1000, 1100, (5, 30, 40)).astype(np.uint16),
    "int32 wide": RNG.integers(100, 200000, (10, 30, 40)).astype(np.int32),
    "float64 skewed": RNG.exponential(size=(10, 30, 40)) * 1000,
    "float32 offset": (RNG.normal(size=(5, 30, 40)) + 500).astype(np.float32),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_auto_range_is_vtk_image_histogram_statistics(name):
    vtk = pytest.importorskip("vtk")
    from vtk.util import numpy_support

    a = SAMPLES[name]
    image = vtk.vtkImageData()
    image.SetDimensions(a.shape[2], a.shape[1], a.shape[0])
    image.GetPointData().SetScalars(numpy_support.numpy_to_vtk(a.reshape(-1), deep=True))
    stats = vtk.vtkImageHistogramStatistics()  # as vtkMRMLScalarVolumeDisplayNode::CalculateAutoLevels
    stats.SetAutoRangePercentiles(0.1, 99.9)
    stats.SetAutoRangeExpansionFactors(0.0, 0.0)
    stats.SetInputData(image)
    stats.Update()
    assert histogram_auto_range(a) == pytest.approx(stats.GetAutoRange(), rel=1e-12, abs=1e-9)


def test_nan_constant_and_empty():
    a = np.array([np.nan, 1.0, 2.0, np.inf, 3.0] * 1000)
    low, high = histogram_auto_range(a)
    assert 1.0 <= low < high <= 3.0
    assert histogram_auto_range(np.array([np.nan, np.nan])) is None
    vol = Volume(np.full((2, 3, 4), 7, np.int16), Geometry([1, 1, 1], [0, 0, 0], np.eye(3)))
    window, value_range = auto_window(vol)
    assert window.center == 7 and window.width == 1 and value_range == (7.0, 7.0)


def test_auto_window_of_a_ct_leaves_out_the_padding_tail():
    a = SAMPLES["int16 CT"].copy()
    a[0, 0, 0] = 3070
    window, value_range = auto_window(Volume(a, Geometry([1, 1, 1], [0, 0, 0], np.eye(3))))
    assert value_range == (-3024.0, 3070.0)
    assert window.upper < 2000 and window.lower == -3024.0  # 30 % padding: Slicer keeps it too


class _Recording:
    """An array that records how many voxels were read (a stand-in for a lazy file-backed array)."""

    def __init__(self, a):
        self.a, self.shape, self.dtype, self.read = a, a.shape, a.dtype, 0

    def __getitem__(self, index):
        out = self.a[index]
        self.read += out.size
        return out


def test_sample_reads_whole_slices_and_never_the_whole_volume():
    a = RNG.integers(0, 100, (200, 64, 64)).astype(np.int16)
    rec = _Recording(a)
    sample = array_sample(rec, 0, max_voxels=64 * 64 * 16)
    assert rec.read == sample.size == 16 * 64 * 64 < a.size
    np.testing.assert_array_equal(sample[0], a[0])
    np.testing.assert_array_equal(sample[-1], a[-1])
    big = _Recording(RNG.integers(0, 100, (3, 512, 512)).astype(np.int16))
    sample = array_sample(big, 0, max_voxels=50_000)  # one slice is more than that: strided rows
    assert big.read == sample.size <= 3 * 512 * 512 // 5
    frames = _Recording(RNG.integers(0, 100, (4, 10, 8, 8)).astype(np.int16))
    array_sample(frames, 1)
    assert frames.read == 10 * 8 * 8  # the first frame only


def test_ct_presets_are_slicers():
    expected = {"Abdomen": (350, 40), "Lung": (1400, -500), "Bone": (1000, 400), "Brain": (100, 50),
                "Air": (1000, -426)}
    assert {k: (w.width, w.center) for k, w in CT_PRESETS.items()} == expected
