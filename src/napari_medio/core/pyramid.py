"""Lazy multiscale pyramids: 2x downsampled levels computed on demand and cached.

napari renders a multiscale layer in 3D from its coarsest level and picks a
level to fit the canvas in 2D, so a volume larger than a limit opens in 3D as
fast as its coarsest level can be made, while 2D slices stay full resolution.
Nothing here reads the whole base array up front:

* :class:`LazyLevel` is an array-like (``shape``, ``dtype``, ``ndim``, NumPy
  indexing, ``__array__``) whose values are computed from its parent only for
  the region asked for; a level small enough (:data:`CACHE_BYTES`) is computed
  once and kept.
* Images are downsampled by block means (rounded back to the voxel type),
  label maps by taking every second voxel (labels stay labels).
* :func:`levels_for` gives the levels a volume should show: the levels stored
  in its file (a format with stored pyramids, such as OME-Zarr, registers a
  :func:`register_stored_levels` function that reopens them lazily), else a
  computed pyramid when the spatial voxel count exceeds the limit.

Array layout as in :class:`~napari_medio.core.volume.Volume`: ``n_lead`` leading
non-spatial axes, then the spatial axes, then any trailing axes (components).
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .kinds import DataKind

__all__ = ["LazyLevel", "downsample", "level_factors", "build_pyramid", "levels_for", "multiscale_levels",
           "register_stored_levels", "stored_levels", "CACHE_BYTES"]

#: Levels at most this large are computed once and kept in memory.
CACHE_BYTES = 1 << 27
#: Stop adding levels once every spatial axis is at most this long.
SMALLEST = 128


def level_factors(spatial_shape: Sequence[int], smallest: int = SMALLEST) -> tuple[int, ...]:
    """Per spatial axis 2 (halve) or 1: only axes longer than ``smallest`` are halved."""
    return tuple(2 if int(n) > smallest else 1 for n in spatial_shape)


def downsample(block: np.ndarray, factors: Sequence[int], axes: Sequence[int], labels: bool) -> np.ndarray:
    """``block`` downsampled by integer ``factors`` along ``axes``: output length ``ceil(n / f)``.

    Label maps take the first voxel of every block (nearest); images average the
    block (edges replicated where a length is not a multiple), rounded back to
    integer voxel types.
    """
    block = np.asarray(block)
    if labels:
        index = [slice(None)] * block.ndim
        for f, ax in zip(factors, axes):
            index[ax] = slice(None, None, int(f))
        return np.ascontiguousarray(block[tuple(index)])
    pad = [(0, 0)] * block.ndim
    for f, ax in zip(factors, axes):
        pad[ax] = (0, (-block.shape[ax]) % int(f))
    if any(p[1] for p in pad):
        block = np.pad(block, pad, mode="edge")
    shape: list[int] = []
    mean_axes: list[int] = []
    for ax, n in enumerate(block.shape):
        if ax in axes:
            f = int(factors[list(axes).index(ax)])
            shape += [n // f, f]
            mean_axes.append(len(shape) - 1)
        else:
            shape.append(n)
    acc = np.float32 if block.dtype.itemsize <= 2 else np.float64
    out = block.reshape(shape).mean(axis=tuple(mean_axes), dtype=acc)
    if np.issubdtype(block.dtype, np.integer):
        info = np.iinfo(block.dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    elif block.dtype == bool:
        out = out >= 0.5
    return out.astype(block.dtype, copy=False)


class LazyLevel:
    """A downsampled level of ``parent`` computed only where indexed (cached when small).

    ``spatial_axes`` are the parent's axis numbers that are downsampled by ``factors``.
    """

    def __init__(self, parent: Any, factors: Sequence[int], spatial_axes: Sequence[int], labels: bool) -> None:
        self.parent = parent
        self.factors = tuple(int(f) for f in factors)
        self.spatial_axes = tuple(int(a) for a in spatial_axes)
        self.labels = bool(labels)
        shape = list(parent.shape)
        for f, ax in zip(self.factors, self.spatial_axes):
            shape[ax] = -(-int(shape[ax]) // f)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(parent.dtype)
        self._cache: np.ndarray | None = None
        self._lock = threading.Lock()
        self.computed_regions = 0  # how often a region was computed (for tests and benchmarks)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"LazyLevel(shape={self.shape}, dtype={self.dtype}, factors={self.factors})"

    def _full(self) -> np.ndarray:
        with self._lock:
            if self._cache is None:
                self._cache = self._compute(tuple(slice(0, n) for n in self.shape))
            return self._cache

    def _compute(self, region: tuple[slice, ...]) -> np.ndarray:
        """Values of this level over ``region`` (unit-step slices, one per axis)."""
        parent_key = []
        for ax, sl in enumerate(region):
            if ax in self.spatial_axes:
                f = self.factors[self.spatial_axes.index(ax)]
                parent_key.append(slice(sl.start * f, min(sl.stop * f, int(self.parent.shape[ax]))))
            else:
                parent_key.append(sl)
        block = np.asarray(self.parent[tuple(parent_key)])
        self.computed_regions += 1
        return downsample(block, self.factors, self.spatial_axes, self.labels)

    def __getitem__(self, key: Any) -> np.ndarray:
        if self._cache is not None or self.nbytes <= CACHE_BYTES:
            return self._full()[key]
        if not isinstance(key, tuple):
            key = (key,)
        if any(k is Ellipsis for k in key):
            i = next(n for n, k in enumerate(key) if k is Ellipsis)
            key = key[:i] + (slice(None),) * (self.ndim - len(key) + 1) + key[i + 1:]
        key = key + (slice(None),) * (self.ndim - len(key))
        region: list[slice] = []
        post: list[Any] = []
        for k, n in zip(key, self.shape):
            if isinstance(k, (int, np.integer)):
                i = int(k) + (n if k < 0 else 0)
                if not 0 <= i < n:
                    raise IndexError(f"index {k} out of range for axis of length {n}")
                region.append(slice(i, i + 1))
                post.append(0)
            elif isinstance(k, slice):
                start, stop, step = k.indices(n)
                if step > 0:
                    region.append(slice(start, max(start, stop)))
                    post.append(slice(None, None, step))
                else:
                    region.append(slice(0, n))
                    post.append(k)
            else:  # fancy indexing: compute the whole axis, index afterwards
                region.append(slice(0, n))
                post.append(k)
        return self._compute(tuple(region))[tuple(post)]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self._full()
        return out.astype(dtype) if dtype is not None else out


def build_pyramid(array: Any, spatial_axes: Sequence[int], labels: bool = False,
                  smallest: int = SMALLEST, max_levels: int = 12) -> list:
    """``[array, level1, level2, ...]``: lazy 2x levels until every spatial axis is <= ``smallest``."""
    levels = [array]
    current = array
    for _ in range(max_levels):
        factors = level_factors([current.shape[a] for a in spatial_axes], smallest)
        if all(f == 1 for f in factors):
            break
        current = LazyLevel(current, factors, spatial_axes, labels)
        levels.append(current)
    return levels


#: ``fn(volume) -> levels or None``: a volume's levels as stored in its file (level 0 = ``volume.array``).
StoredLevels = Callable[[Any], list | None]
_STORED_LEVELS: list[StoredLevels] = []


def register_stored_levels(fn: StoredLevels) -> StoredLevels:
    """Let :func:`stored_levels` ask ``fn`` (a format module with stored pyramids registers one on import)."""
    if fn not in _STORED_LEVELS:
        _STORED_LEVELS.append(fn)
    return fn


def stored_levels(volume: Any) -> list | None:
    """The levels stored with ``volume`` in its file (more than one), from the first registered source, or None.

    A source that fails (the file moved or changed) counts as none: the viewer then builds a pyramid.
    """
    for fn in _STORED_LEVELS:
        try:
            levels = fn(volume)
        except Exception:
            levels = None
        if levels is not None and len(levels) > 1:
            return levels
    return None


_PYRAMIDS: dict[int, tuple[Any, list]] = {}
_PYRAMIDS_LOCK = threading.Lock()


def _cached_pyramid(array: Any, spatial_axes: Sequence[int], labels: bool) -> list:
    key = id(array)
    with _PYRAMIDS_LOCK:
        hit = _PYRAMIDS.get(key)
        if hit is not None and hit[0] is array:
            return hit[1]
        levels = build_pyramid(array, spatial_axes, labels)
        if len(_PYRAMIDS) > 16:
            _PYRAMIDS.pop(next(iter(_PYRAMIDS)))
        _PYRAMIDS[key] = (array, levels)  # keeps the array alive while cached
        return levels


def multiscale_levels(volume: Any, data: Any, spatial_axes: Sequence[int], to_view: Any,
                      limit: int | None = None) -> list | None:
    """The levels a viewer should show for ``data`` (the displayed view of ``volume``), or None.

    A volume with stored levels (:func:`stored_levels`) brings them (each mapped through
    ``to_view(level)``, the same transpose/flip as ``data``); any other volume gets
    a lazy cached pyramid of ``data`` when its spatial voxel count exceeds ``limit``.
    """
    levels = stored_levels(volume)
    if levels is not None:
        return [data] + [to_view(level) for level in levels[1:]]
    if limit is None:
        return None
    voxels = int(np.prod([data.shape[a] for a in spatial_axes], dtype=np.int64))
    if voxels <= int(limit):
        return None
    levels = _cached_pyramid(data, spatial_axes, getattr(volume, "kind", "") == DataKind.LABELMAP)
    return levels if len(levels) > 1 else None


def levels_for(volume: Any, limit: int | None = None) -> list | None:
    """The multiscale levels to show ``volume`` with (level 0 = ``volume.array``), or None.

    A volume with stored levels (:func:`stored_levels`) brings them; any other volume gets a lazy
    computed pyramid when its spatial voxel count exceeds ``limit`` (None: never).
    """
    levels = stored_levels(volume)
    if levels is not None:
        return levels
    if limit is None:
        return None
    n_sp = volume.geometry.ndim
    lead = len(volume.extra_axes)
    spatial = tuple(range(lead, lead + n_sp))
    voxels = int(np.prod([volume.shape[a] for a in spatial], dtype=np.int64))
    if voxels <= int(limit):
        return None
    levels = _cached_pyramid(volume.array, spatial, volume.kind == DataKind.LABELMAP)
    return levels if len(levels) > 1 else None
