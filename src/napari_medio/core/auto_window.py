"""Display windows without napari: 3D Slicer's automatic window/level and its CT presets.

Slicer's ``vtkMRMLScalarVolumeDisplayNode::CalculateAutoLevels`` sets the window to
the 0.1st .. 99.9th percentile range of the voxel histogram
(``vtkImageHistogramStatistics``: automatic binning, one bin per integer value,
percentile = the last bin whose cumulative count is at most that fraction of the
total, clamped to the first and last non-empty bins, no range expansion).
:func:`auto_window` computes the same on a sample of whole slices, read one at a time, so that a
memory-mapped or lazy volume is never read whole nor copied.  Hand-written: VTK's filter needs
a ``vtkImageData`` of the whole volume.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .volume import DisplayWindow, Volume

__all__ = ["AUTO_PERCENTILES", "CT_PRESETS", "array_sample", "auto_window", "histogram_auto_range", "window_sample"]

#: Slicer's percentiles for the automatic window.
AUTO_PERCENTILES = (0.1, 99.9)
#: Slicer's CT window/level presets (Modules/Loadable/Volumes/Resources/VolumeDisplayPresets.json).
CT_PRESETS: dict[str, DisplayWindow] = {
    "Abdomen": DisplayWindow(center=40.0, width=350.0),  # soft tissue
    "Lung": DisplayWindow(center=-500.0, width=1400.0),
    "Bone": DisplayWindow(center=400.0, width=1000.0),
    "Brain": DisplayWindow(center=50.0, width=100.0),
    "Air": DisplayWindow(center=-426.0, width=1000.0),
}
#: Most bins of the histogram (VTK's vtkImageHistogram default).
MAX_BINS = 65536
#: Voxels read for the sample at most (whole slices, evenly spaced).
SAMPLE_VOXELS = 1 << 22


def _bins(dtype: np.dtype, lo: float, hi: float, max_bins: int) -> tuple[float, float, int]:
    """(origin, spacing, count) of the histogram bins, as vtkImageHistogram's automatic binning chooses."""
    if dtype.itemsize == 1 and np.issubdtype(dtype, np.integer):
        return float(np.iinfo(dtype).min), 1.0, 256
    lo, hi = min(lo, 0.0), max(hi, 0.0)  # the range always holds 0
    if np.issubdtype(dtype, np.integer):
        last = max(int(hi - lo), 255)
        if last <= max_bins - 1:
            return lo, 1.0, last + 1
    return lo, (hi - lo) / (max_bins - 1) if hi > lo else 1.0, max_bins


def _finite(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a).reshape(-1)
    if a.dtype == bool:
        return a.view(np.uint8)
    return a if np.issubdtype(a.dtype, np.integer) else a[np.isfinite(a)]


def _auto_range(chunks: Any, percentiles: tuple[float, float], max_bins: int
                ) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """((low, high) at the percentiles, (min, max)) of the values in ``chunks`` (a re-iterable of arrays).

    Two passes (range, then histogram), one chunk in memory at a time.
    """
    lo = hi = None
    dtype = None
    for chunk in chunks:
        a = _finite(chunk)
        if a.size:
            dtype = a.dtype
            lo = float(a.min()) if lo is None else min(lo, float(a.min()))
            hi = float(a.max()) if hi is None else max(hi, float(a.max()))
    if lo is None:
        return None
    origin, spacing, nbins = _bins(dtype, lo, hi, max_bins)
    counts = np.zeros(nbins, np.int64)
    for chunk in chunks:
        a = _finite(chunk)
        if spacing == 1.0 and np.issubdtype(a.dtype, np.integer):
            index = a.astype(np.int64) - int(origin)
        else:
            index = np.floor((a.astype(np.float64) - origin) / spacing + 0.5).astype(np.int64)
        counts += np.bincount(np.clip(index, 0, nbins - 1), minlength=nbins)
    cumulative = np.cumsum(counts)
    total = int(cumulative[-1])

    def last_bin_at_most(fraction: float) -> int:
        return max(int(np.searchsorted(cumulative, int(total * fraction), side="right")) - 1, 0)

    nonzero = np.flatnonzero(counts)  # the range is clamped to the first and last non-empty bins
    low = max(last_bin_at_most(percentiles[0] / 100.0), int(nonzero[0]))
    high = min(last_bin_at_most(percentiles[1] / 100.0), int(nonzero[-1]))
    return (origin + low * spacing, origin + max(high, low) * spacing), (lo, hi)


def histogram_auto_range(values: Any, percentiles: tuple[float, float] = AUTO_PERCENTILES,
                         max_bins: int = MAX_BINS) -> tuple[float, float] | None:
    """(low, high) voxel values at ``percentiles`` of a histogram of ``values``, as VTK computes them.

    Bins as ``vtkImageHistogram`` with automatic binning (one per integer value when
    the range, which always includes 0, allows; else ``max_bins`` bins); the bounds as
    ``vtkImageHistogramStatistics::GetAutoRange`` with no expansion.  None when
    there is no finite value.
    """
    found = _auto_range([np.asarray(values)], percentiles, max_bins)
    return None if found is None else found[0]


class _Slices:
    """Evenly spaced whole slices of an array, read one at a time (iterable more than once)."""

    def __init__(self, array: Any, n_lead: int, max_voxels: int) -> None:
        self.array, self.lead = array, (0,) * n_lead
        n = int(array.shape[n_lead])
        per_slice = max(int(np.prod(array.shape[n_lead + 1:], dtype=np.int64)), 1)
        count = int(min(n, max(1, max_voxels // per_slice)))
        self.picks = np.unique(np.linspace(0, n - 1, count).round().astype(int))
        self.stride = max(1, int(np.ceil(per_slice / max_voxels)))

    def __iter__(self) -> Any:
        for i in self.picks:
            yield np.asarray(self.array[self.lead + (int(i), slice(None, None, self.stride))])


def array_sample(array: Any, n_lead: int = 0, max_voxels: int = SAMPLE_VOXELS) -> np.ndarray:
    """Voxels of evenly spaced whole slices along axis ``n_lead`` (index 0 on the ``n_lead`` leading axes).

    Reads at most about ``max_voxels`` voxels (whole slices, strided rows when one
    slice alone is larger), never the whole of a lazy array bigger than that.
    """
    return np.stack(list(_Slices(array, n_lead, max_voxels)))


def window_sample(volume: Volume, max_voxels: int = SAMPLE_VOXELS) -> np.ndarray:
    """:func:`array_sample` of a volume: slices along its slowest spatial axis, first frame."""
    return array_sample(volume.array, len(volume.extra_axes), max_voxels)


def auto_window(volume: Volume | Any, n_lead: int | None = None
                ) -> tuple[DisplayWindow, tuple[float, float]] | None:
    """Slicer's automatic window of a scalar volume (or array) and the sampled value range (min, max).

    ``volume`` is a :class:`Volume` or an array with ``n_lead`` leading non-spatial
    axes.  The slices of :func:`array_sample` are read one at a time (twice: range,
    then histogram), so memory stays at one slice.  None for an empty or all-NaN
    sample; a constant sample gets a window of width 1.
    """
    if isinstance(volume, Volume):
        slices = _Slices(volume.array, len(volume.extra_axes), SAMPLE_VOXELS)
    else:
        slices = _Slices(volume, n_lead or 0, SAMPLE_VOXELS)
    found = _auto_range(slices, AUTO_PERCENTILES, MAX_BINS)
    if found is None:
        return None
    (low, high), value_range = found
    window = DisplayWindow.from_range(low, high) if high > low else DisplayWindow(center=low, width=1.0)
    return window, value_range
