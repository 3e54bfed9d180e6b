"""Headerless RAW volumes (``.raw``, ``.bin``, ``.img``, ``.vol``, ``.dat``, Samsung ``.mvl``) with a
layout given by hand, as Slicer's RawImageGuess extension does.

A raw file holds voxels and nothing that says how to read them.  The user states
the layout in a :class:`RawLayout` (size, voxel type, byte order, header bytes to
skip, spacing, origin, axis directions, components, slice order), or asks
:func:`guess_layouts` for ranked suggestions; :func:`read_raw` then memory-maps
the voxels into a :class:`~napari_medio.core.volume.Volume`, and
:func:`write_nhdr_for_raw` writes a detached NRRD header beside the file so that
it opens anywhere afterwards (our NRRD reader, pynrrd, SimpleITK, Slicer).

Conventions (the ones of the rest of napari-medio):

* ``shape`` is NumPy order ``(z, y, x)`` -- slices, rows, columns; ``x`` is the
  fastest on disk;
* ``spacing`` and ``origin`` are in index order ``(x, y, z)`` (ITK / Geometry
  order), millimetres in LPS; ``origin`` is the position of the first voxel in
  the file;
* ``direction`` has the LPS unit vectors of the x, y, z axes as columns
  (default identity: x to patient left, y to posterior, z to superior, which is
  what RawImageGuess assumes);
* ``slice_flip=True`` says the stored slices run top-down (the first slice in
  the file is the most superior): the z axis then points along ``-direction[:, 2]``.
  The voxels are not reordered (the memory map stays), only the geometry says it,
  and the ``.nhdr`` writes the same (a negative z space direction).

Registered reader (``medio info``, ``napari_medio.read``): extensions ``.raw``
and ``.mvl`` only, chosen by extension (there is nothing to sniff), low
priority.  Its options are the :class:`RawLayout` fields (``shape=``,
``dtype=``, ``byte_order=``, ``header=``, ``spacing=``, ``origin=``,
``direction=``, ``components=``, ``slice_flip=``) plus ``labelmap`` and
``mmap``.  Without ``shape`` and ``dtype`` it raises a :class:`FormatError`
that names the options and shows the best guess.
"""
from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import FormatError, MedioError
from ..core.fileio import atomic_output
from ..core.geometry import Geometry
from ..core.kinds import DataKind
from ..core.registry import FileFormat, register
from ..core.volume import AxisInfo, Volume
from ._imageio import LABELMAP_OPTION, file_size, nonempty_file_size, volume_kind
from .naming import base_name
from .nrrd import format_vector

__all__ = ["RAW_DTYPES", "RAW_EXTENSIONS", "RawLayout", "guess_layouts", "read_raw", "read_raw_slice",
           "write_nhdr_for_raw"]

NAME = "raw-volume"

#: Voxel types a layout may have (RawImageGuess's list, plus 32-bit integers).
RAW_DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64")

#: Extensions a headerless raw volume commonly has (the registered reader takes .raw and .mvl only:
#: the others belong to real formats, e.g. .img to Analyze/NIfTI, .vol to GE Kretz).
RAW_EXTENSIONS = (".raw", ".bin", ".img", ".vol", ".dat", ".mvl")

_BYTE_ORDERS = {"little": "little", "<": "little", "le": "little", "l": "little",
                "big": "big", ">": "big", "be": "big", "b": "big"}

_NRRD_TYPE = {"uint8": "uchar", "int8": "signed char", "uint16": "ushort", "int16": "short",
              "uint32": "uint", "int32": "int", "float32": "float", "float64": "double"}


def _triple(value: Any, name: str, cast=float) -> tuple:
    if isinstance(value, str):
        value = value.replace("x", " ").replace(",", " ").replace("(", " ").replace(")", " ").split()
    try:
        out = tuple(cast(v) for v in np.asarray(value, dtype=object).reshape(-1))
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be three numbers, got {value!r}") from None
    if len(out) != 3:
        raise ValueError(f"{name} must be three numbers, got {len(out)}: {value!r}")
    return out


@dataclass
class RawLayout:
    """How the voxels of a headerless file are laid out, and where they are in LPS space.

    ``shape`` (z, y, x); ``dtype`` one of :data:`RAW_DTYPES`; ``byte_order``
    ``"little"``/``"big"`` (``None``: from an explicit ``dtype`` such as ``">i2"``,
    else little); ``header`` bytes skipped before the voxels; ``spacing`` and
    ``origin`` (x, y, z) in mm; ``direction`` 3x3 with the axis unit vectors as
    columns (default identity LPS); ``components`` 1 or 3 (3 x uint8 is RGB);
    ``slice_flip`` the slices run top-down (see the module docstring).  ``score``
    is set on layouts returned by :func:`guess_layouts` (higher is better).

    Invalid values raise ``ValueError`` naming the field.
    """

    shape: tuple = (1, 1, 1)
    dtype: str = "uint8"
    byte_order: str | None = None
    header: int = 0
    spacing: tuple = (1.0, 1.0, 1.0)
    origin: tuple = (0.0, 0.0, 0.0)
    direction: tuple = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
    components: int = 1
    slice_flip: bool = False
    score: float | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        shape = self.shape
        if isinstance(shape, str):
            shape = shape.replace("x", " ").replace(",", " ").replace("(", " ").replace(")", " ").split()
        try:
            shape = tuple(int(s) for s in shape)
        except (TypeError, ValueError):
            raise ValueError(f"shape must be integers (z, y, x), got {self.shape!r}") from None
        if len(shape) == 2:
            shape = (1,) + shape
        if len(shape) != 3 or any(s < 1 for s in shape):
            raise ValueError(f"shape must be three positive integers (z, y, x), got {self.shape!r}")
        self.shape = shape
        try:
            dt = np.dtype(self.dtype)
        except TypeError:
            raise ValueError(f"unknown voxel type {self.dtype!r}; expected one of {', '.join(RAW_DTYPES)}") from None
        explicit = {"<": "little", ">": "big"}.get(dt.byteorder) if dt.itemsize > 1 else None
        name = dt.newbyteorder("=").name
        if name not in RAW_DTYPES:
            raise ValueError(f"voxel type {self.dtype!r} is not supported; expected one of {', '.join(RAW_DTYPES)}")
        self.dtype = name
        if self.byte_order is None:
            self.byte_order = explicit or "little"
        order = _BYTE_ORDERS.get(str(self.byte_order).strip().lower())
        if order is None:
            raise ValueError(f"byte_order must be 'little' or 'big', got {self.byte_order!r}")
        self.byte_order = order
        try:
            self.header = int(self.header)
        except (TypeError, ValueError):
            raise ValueError(f"header must be a number of bytes, got {self.header!r}") from None
        if self.header < 0:
            raise ValueError(f"header must be >= 0 bytes, got {self.header}")
        self.spacing = _triple(self.spacing, "spacing")
        if not all(math.isfinite(s) and s > 0 for s in self.spacing):
            raise ValueError(f"spacing must be finite and positive, got {self.spacing}")
        self.origin = _triple(self.origin, "origin")
        if not all(math.isfinite(o) for o in self.origin):
            raise ValueError(f"origin must be finite, got {self.origin}")
        d = np.asarray(self.direction, dtype=float)
        if d.shape != (3, 3) or not np.all(np.isfinite(d)):
            raise ValueError(f"direction must be a finite 3x3 matrix, got {self.direction!r}")
        if abs(np.linalg.det(d)) < 1e-6:
            raise ValueError("direction matrix is singular")
        d = d / np.linalg.norm(d, axis=0)
        self.direction = tuple(tuple(float(v) for v in row) for row in d)
        try:
            self.components = int(self.components)
        except (TypeError, ValueError):
            raise ValueError(f"components must be 1 or 3, got {self.components!r}") from None
        if self.components not in (1, 3):
            raise ValueError(f"components must be 1 or 3, got {self.components}")
        self.slice_flip = bool(self.slice_flip)

    # -- derived ------------------------------------------------------------------------
    @property
    def numpy_dtype(self) -> np.dtype:
        """The voxel type with its byte order as stored."""
        return np.dtype(self.dtype).newbyteorder("<" if self.byte_order == "little" else ">")

    @property
    def voxel_bytes(self) -> int:
        """Bytes per voxel (all components)."""
        return np.dtype(self.dtype).itemsize * self.components

    @property
    def array_shape(self) -> tuple:
        """Shape of the voxel array: (z, y, x) or (z, y, x, components)."""
        return self.shape + ((self.components,) if self.components > 1 else ())

    def expected_bytes(self) -> int:
        """Bytes of voxel data (header not included)."""
        return int(np.prod(self.shape, dtype=np.int64)) * self.voxel_bytes

    def geometry(self) -> Geometry:
        """The LPS placement of the voxels (``slice_flip`` reverses the z axis direction)."""
        d = np.array(self.direction, dtype=float)
        if self.slice_flip:
            d[:, 2] *= -1.0
        return Geometry(np.array(self.spacing), np.array(self.origin), d)

    def options(self) -> dict:
        """The layout as reader options (``napari_medio.read(path, **layout.options())``)."""
        out = asdict(self)
        out.pop("score")
        return out

    def describe(self) -> str:
        """One line in reader-option syntax: ``shape=(z, y, x), dtype='int16', ...``."""
        parts = [f"shape={self.shape}", f"dtype={self.dtype!r}"]
        if np.dtype(self.dtype).itemsize > 1:
            parts.append(f"byte_order={self.byte_order!r}")
        parts.append(f"header={self.header}")
        if self.components != 1:
            parts.append(f"components={self.components}")
        if self.spacing != (1.0, 1.0, 1.0):
            parts.append(f"spacing={self.spacing}")
        if self.slice_flip:
            parts.append("slice_flip=True")
        return ", ".join(parts)


# -- reading ------------------------------------------------------------------------------------
def _as_layout(layout: RawLayout | dict) -> RawLayout:
    if isinstance(layout, RawLayout):
        return layout
    try:
        return RawLayout(**layout)
    except TypeError as exc:
        raise ValueError(str(exc)) from None


def _what(layout: RawLayout) -> str:
    shape_text = "x".join(str(v) for v in layout.shape[::-1])
    return f"{shape_text} {layout.dtype}{' x3' if layout.components == 3 else ''} voxels"


def _check_size(p: Path, layout: RawLayout) -> int:
    """The file size; FormatError saying by how many bytes the file is too short for ``layout``."""
    size = file_size(p)
    data_bytes = layout.expected_bytes()
    needed = layout.header + data_bytes
    if size < needed:
        raise FormatError(p, f"file is too short for this layout: {layout.header} header bytes + {data_bytes} "
                             f"bytes of {_what(layout)} = {needed} bytes, but the file has {size} "
                             f"({needed - size} bytes missing)")
    return size


def read_raw(path: str | os.PathLike[str], layout: RawLayout | dict, *, mmap: bool = True,
             labelmap: bool | None = None) -> Volume:
    """Read a headerless file laid out as ``layout`` into a Volume (memory-mapped unless ``mmap=False``).

    A file shorter than header + voxel data raises :class:`FormatError` saying by
    how many bytes; a longer one is read (the trailing bytes ignored) with a warning.
    Big-endian voxels are converted to native order (which loads them).
    """
    p = Path(path)
    try:
        layout = _as_layout(layout)
    except ValueError as exc:
        raise MedioError(p, f"invalid raw layout: {exc}") from None
    size = _check_size(p, layout)
    data_bytes = layout.expected_bytes()
    needed = layout.header + data_bytes
    what = _what(layout)
    if size > needed:
        warnings.warn(f"{p}: file is {size - needed} bytes longer than the {layout.header} header bytes + "
                      f"{data_bytes} bytes of {what}; the trailing bytes are ignored (a larger size or header?)",
                      stacklevel=2)
    dt = layout.numpy_dtype
    count = int(np.prod(layout.array_shape, dtype=np.int64))
    if mmap:
        flat = np.memmap(p, dtype=dt, mode="c", offset=layout.header, shape=(count,))
    else:
        flat = np.fromfile(p, dtype=dt, count=count, offset=layout.header)
    if not dt.isnative:
        flat = flat.astype(dt.newbyteorder("="))
    array = flat.reshape(layout.array_shape)
    components = None
    if layout.components == 3:
        rgb = layout.dtype == "uint8"
        components = AxisInfo(name="component", kind="RGB-color" if rgb else "vector")
    meta = {"raw": {"layout": layout.options(), "file_bytes": size}}
    vol = Volume(array, layout.geometry(), name=base_name(p), components=components, metadata=meta,
                 source=os.fspath(p))
    vol.kind = volume_kind(p, labelmap, vol.dtype, vol.n_components)
    return vol


def read_raw_slice(path: str | os.PathLike[str], layout: RawLayout | dict, index: int | None = None) -> np.ndarray:
    """One slice ``[index]`` (default the middle one) as a native-order array (y, x[, 3]), reading only it.

    For live previews: the whole-file size check of :func:`read_raw` is made
    (FormatError when too short, no warning when longer), then one slice is read.
    """
    p = Path(path)
    try:
        layout = _as_layout(layout)
    except ValueError as exc:
        raise MedioError(p, f"invalid raw layout: {exc}") from None
    _check_size(p, layout)
    nz = layout.shape[0]
    k = nz // 2 if index is None else int(index)
    if not 0 <= k < nz:
        raise MedioError(p, f"slice {k} is outside 0..{nz - 1}")
    slice_shape = layout.array_shape[1:]
    count = int(np.prod(slice_shape, dtype=np.int64))
    dt = layout.numpy_dtype
    out = np.fromfile(p, dtype=dt, count=count, offset=layout.header + k * count * dt.itemsize)
    return out.astype(dt.newbyteorder("="), copy=False).reshape(slice_shape)


# -- guessing -----------------------------------------------------------------------------------
_COMMON_SIZES = {64, 128, 256, 320, 384, 448, 512, 640, 768, 1024, 2048}
#: Tie-break preference among voxel types that explain the data equally well (signed CT first).
_DTYPE_PREFERENCE = {"int16": 7, "uint8": 6, "uint16": 5, "float32": 4, "int8": 3, "int32": 2,
                     "uint32": 1, "float64": 0}


def _byte_entropy(column: np.ndarray) -> float:
    counts = np.bincount(column, minlength=256).astype(float)
    prob = counts[counts > 0] / column.size
    return float(-(prob * np.log2(prob)).sum())


def _guess_byte_order(raw: np.ndarray, itemsize: int) -> str:
    """The byte position with the least entropy is the most significant (and the float exponent)."""
    if itemsize == 1 or raw.size < itemsize:
        return "little"
    cols = raw[: raw.size - raw.size % itemsize].reshape(-1, itemsize)
    first, last = _byte_entropy(cols[:, 0]), _byte_entropy(cols[:, -1])
    return "big" if first < last else "little"


def _entropy_disorder(raw: np.ndarray, itemsize: int, order: str) -> float:
    """How far the per-byte entropies are from falling from the least to the most significant byte.

    In real multi-byte voxels the high bytes vary least; two int16 read as one
    int32 (or two float32 as a float64) alternate low and high entropy.  In bits.
    """
    if itemsize == 1 or raw.size < itemsize * 64:
        return 0.0
    cols = raw[: raw.size - raw.size % itemsize].reshape(-1, itemsize)
    ent = [_byte_entropy(cols[:, i]) for i in range(itemsize)]
    if order == "big":
        ent = ent[::-1]  # least significant first
    return float(sum(max(0.0, ent[i + 1] - ent[i] - 0.5) for i in range(itemsize - 1)))


def _plausible_floats(x: np.ndarray) -> bool:
    finite = np.isfinite(x)
    if finite.mean() < 0.99:
        return False
    a = np.abs(x[finite])
    nonzero = a[a > 0]
    if nonzero.size == 0:
        return True
    return bool(((nonzero > 1e-12) & (nonzero < 1e12)).mean() >= 0.99)


class _Sample:
    """A contiguous run of voxels (first component) from the middle of the file, and its autocorrelation."""

    def __init__(self, data: np.ndarray, n_voxels: int):
        self.x = data
        x = data - data.mean()
        var = float((x * x).mean())
        n = x.size
        self.valid = var > 0 and n >= 16
        if self.valid:
            size = 1 << int(np.ceil(np.log2(2 * n)))
            f = np.fft.rfft(x, size)
            ac = np.fft.irfft(f * np.conj(f), size)[:n]
            self.r = ac / (np.arange(n, 0, -1) * var)
        else:
            self.r = np.zeros(n)

    def corr(self, lag: int) -> float | None:
        if not self.valid:
            return 0.0
        if lag < self.r.size // 2:
            return float(self.r[lag])
        return None


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else 0.0


def _slice_corr(raw: np.ndarray, sample: _Sample, dt: np.dtype, ncomp: int, start: int, lag: int,
                nz: int) -> float:
    """Correlation of voxels one slice (``lag`` voxels) apart: from the sample, or two runs read
    from the middle slices when a slice is longer than the sample allows (data from byte ``start``)."""
    c = sample.corr(lag)
    if c is not None:
        return c
    vbytes = dt.itemsize * ncomp
    m = min(lag, 1 << 14)
    k = max(nz // 2 - 1, 0)
    off = start + (k * lag + (lag - m) // 2) * vbytes
    with np.errstate(invalid="ignore", over="ignore"):
        a = np.frombuffer(np.asarray(raw[off: off + m * vbytes]).tobytes(), dtype=dt)
        b = np.frombuffer(np.asarray(raw[off + lag * vbytes: off + (lag + m) * vbytes]).tobytes(), dtype=dt)
        a = a.reshape(-1, ncomp)[:, 0].astype(np.float64)
        b = b.reshape(-1, ncomp)[:, 0].astype(np.float64)
    return _corr(np.nan_to_num(a), np.nan_to_num(b))


@dataclass
class _TypedSample:
    """One voxel type's reading of the file: its sample, byte order and prior (type preference, penalties)."""

    dtype_name: str
    ncomp: int
    dt: np.dtype
    order: str
    total: int  # voxels that fit in the file
    sample: _Sample
    prior: float

    @property
    def vbytes(self) -> int:
        return self.dt.itemsize * self.ncomp


def _typed_sample(raw: np.ndarray, dtype_name: str, ncomp: int, max_header: int, min_size: int,
                  sample_voxels: int) -> _TypedSample | None:
    """Read the middle of the file as this voxel type (step 1 of :func:`guess_layouts`).

    None when the type is implausible or the file too small for it.
    """
    size = raw.size
    base = np.dtype(dtype_name)
    vbytes = base.itemsize * ncomp
    total = size // vbytes
    if total < min_size * min_size:
        return None
    align = size % vbytes
    # The middle of the file, clear of the header (at most max_header bytes at the start).
    room = total - 2 * (max_header // vbytes + 1)
    n = int(min(sample_voxels, room if room >= min_size * min_size else total // 2))
    start = align + (total // 2 - n // 2) * vbytes
    chunk = np.asarray(raw[start: start + n * vbytes])
    order = _guess_byte_order(chunk, base.itemsize) if ncomp == 1 else "little"
    dt = base.newbyteorder("<" if order == "little" else ">")
    with np.errstate(invalid="ignore", over="ignore"):
        values = np.frombuffer(chunk.tobytes(), dtype=dt).reshape(-1, ncomp)[:, 0].astype(np.float64)
    prior = 1e-5 * _DTYPE_PREFERENCE.get(dtype_name, 0)
    if base.kind == "f":
        if not _plausible_floats(values):
            return None
        values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    else:
        # Signed or unsigned: the reading whose values span less (-200..800 read unsigned spans 65k).
        twin = np.dtype(("u" if base.kind == "i" else "i") + str(base.itemsize)).newbyteorder(dt.byteorder)
        other = np.frombuffer(chunk.tobytes(), dtype=twin).reshape(-1, ncomp)[:, 0]
        if np.ptp(other.astype(np.float64)) < 0.5 * np.ptp(values):
            prior -= 0.1
    prior -= 0.05 * _entropy_disorder(chunk, base.itemsize, order)
    if values.size >= 1000:  # stray bytes (a header, a trailer) must not dominate the correlations
        lo, hi_ = np.percentile(values, [0.5, 99.5])
        values = np.clip(values, lo, hi_)
    return _TypedSample(dtype_name, ncomp, dt, order, total, _Sample(values, total), prior)


def _row_lengths(sample: _Sample, min_size: int, max_size: int) -> np.ndarray:
    """Candidate row lengths: the strongest local maxima of the autocorrelation (step 2), best first."""
    hi = min(max_size, sample.r.size // 2 - 2)
    if hi <= min_size:
        return np.zeros(0, dtype=np.int64)
    r = sample.r
    lags = np.arange(min_size, hi + 1)
    peaks = lags[(r[lags] >= r[lags - 1]) & (r[lags] >= r[lags + 1])]
    if peaks.size == 0:
        peaks = lags
    return peaks[np.argsort(-r[peaks], kind="stable")][:6]


def _scored_shapes(raw: np.ndarray, ts: _TypedSample, max_header: int, min_size: int,
                   max_size: int) -> list[tuple]:
    """(score, shape, dtype, byte order, header, components) of each shape that fits (steps 2 to 4)."""
    size = raw.size
    sample, vbytes = ts.sample, ts.vbytes
    c1 = sample.corr(1) or 0.0
    rows = np.arange(min_size, max_size + 1, dtype=np.int64)
    found: list[tuple] = []
    for nx in (int(v) for v in _row_lengths(sample, min_size, max_size)):
        crow = float(sample.r[nx])
        slice_voxels = nx * rows
        nz = ts.total // slice_voxels
        header = size - nz * slice_voxels * vbytes
        ok = (nz >= 1) & (header <= max_header)
        for ny, sv, z, h in zip(rows[ok].tolist(), slice_voxels[ok].tolist(), nz[ok].tolist(),
                                header[ok].tolist()):
            if z >= 2:
                cslice = _slice_corr(raw, sample, ts.dt, ts.ncomp, size - z * sv * vbytes, sv, z)
                score = (c1 + crow + cslice) / 3.0
            else:
                score = (c1 + crow) / 2.0 - 0.05
            score += 1e-4 * ((nx == ny) + (nx in _COMMON_SIZES) + (ny in _COMMON_SIZES)
                             + (h % 512 == 0) + 0.5 * (nx % 16 == 0) + 0.5 * (ny % 16 == 0))
            score += ts.prior - 1e-7 * h / max(max_header, 1)
            found.append((score, (z, ny, nx), ts.dtype_name, ts.order, h, ts.ncomp))
    return found


def _best_layouts(found: list[tuple], limit: int) -> list[RawLayout]:
    """The ``limit`` best distinct layouts of the scored shapes."""
    found.sort(key=lambda t: -t[0])
    out: list[RawLayout] = []
    seen = set()
    for score, shape, dtype_name, order, header, ncomp in found:
        key = (shape, dtype_name, order, header, ncomp)
        if key in seen:
            continue
        seen.add(key)
        out.append(RawLayout(shape=shape, dtype=dtype_name, byte_order=order, header=header,
                             components=ncomp, score=round(float(score), 6)))
        if len(out) >= limit:
            break
    return out


def guess_layouts(
    path: str | os.PathLike[str],
    *,
    dtypes: Sequence[str] = RAW_DTYPES,
    rgb: bool = False,
    max_header: int = 1 << 16,
    min_size: int = 16,
    max_size: int = 2048,
    sample_voxels: int = 1 << 19,
    limit: int = 10,
) -> list[RawLayout]:
    """Plausible layouts of a headerless file, best first (each with a ``score``).

    The heuristic (fast: it reads one sample of at most ``sample_voxels`` voxels
    from the middle of the file plus a few small runs for big slices, never the
    whole file):

    1. For each voxel type (``dtypes``; 3 x uint8 RGB too when ``rgb``), the data
       is assumed to fill the end of the file, so a header of ``file size - data
       size`` bytes (at most ``max_header``) precedes it; voxel boundaries then
       fall at ``file size mod voxel size``.  The byte order is the one whose
       most significant byte (the byte position with the least entropy in the
       sample: high bytes and float exponents vary little) comes where it says.
       Float types whose sample is not mostly finite numbers of sane magnitude
       are dropped.
    2. Smooth images have neighbouring voxels alike.  The sample's normalised
       autocorrelation (one FFT) gives, for a lag of 1, how smooth the type makes
       the data (a wrong type or byte order gives noise); the row length ``x`` is
       among the strongest local maxima of the autocorrelation between
       ``min_size`` and ``max_size`` (the next row is the most similar run).
    3. For each such ``x``, every row count ``y`` (``min_size``..``max_size``)
       gives the largest slice count ``z`` that fits and the header left over;
       the slice-to-slice correlation (lag ``x*y``) is highest for the true
       ``y``.  A 2D reading (``z = 1``) is penalised a little.
    4. Score: the mean of the lag-1, row-to-row and slice-to-slice correlations,
       plus tiny tie-breakers for square slices, common sizes (256, 512, ...),
       headers of 0 or a multiple of 512 bytes and common voxel types (int16 first).

    Returns at most ``limit`` layouts with spacing 1, identity direction; an empty
    list when nothing fits (file smaller than one ``min_size`` x ``min_size`` slice).
    """
    p = Path(path)
    if file_size(p) == 0:
        return []
    raw = np.memmap(p, dtype=np.uint8, mode="r")
    kinds: list[tuple[str, int]] = [(str(np.dtype(d).name), 1) for d in dtypes]
    if rgb:
        kinds.append(("uint8", 3))
    found: list[tuple] = []
    for dtype_name, ncomp in kinds:
        ts = _typed_sample(raw, dtype_name, ncomp, max_header, min_size, sample_voxels)
        if ts is not None:
            found += _scored_shapes(raw, ts, max_header, min_size, max_size)
    return _best_layouts(found, limit)


# -- detached header ----------------------------------------------------------------------------
def write_nhdr_for_raw(path_raw: str | os.PathLike[str], layout: RawLayout | dict,
                       nhdr_path: str | os.PathLike[str] | None = None) -> Path:
    """Write a detached NRRD header (``.nhdr``) that reads ``path_raw`` with ``layout``; returns its path.

    ``nhdr_path`` defaults to the raw file's name with ``.nhdr`` for its extension.
    The header names the data file relative to itself (absolute when no relative
    path exists), skips ``header`` bytes (``byte skip``), states the byte order,
    ``space: left-posterior-superior``, the space directions (spacing times
    direction, z negated for ``slice_flip``) and the origin, so that
    napari-medio, pynrrd and SimpleITK read the same voxels at the same place.
    Written atomically.  The raw file's size is checked first (too short raises).
    """
    raw = Path(path_raw)
    layout = _as_layout(layout)
    _check_size(raw, layout)
    target = Path(nhdr_path) if nhdr_path is not None else raw.with_suffix(".nhdr")
    if target.resolve() == raw.resolve():
        raise MedioError(target, "the header would overwrite the raw file; choose another name")
    try:
        data_file = os.path.relpath(raw.resolve(), target.resolve().parent)
    except ValueError:  # another drive (Windows)
        data_file = os.fspath(raw.resolve())
    data_file = data_file.replace(os.sep, "/")
    g = layout.geometry()
    axes = g.direction * g.spacing  # columns: step vectors of x, y, z
    sizes = [str(s) for s in layout.shape[::-1]]
    dirs = [format_vector(axes[:, a]) for a in range(3)]
    kinds = ["domain"] * 3
    if layout.components > 1:
        sizes.insert(0, str(layout.components))
        dirs.insert(0, "none")
        kinds.insert(0, "RGB-color" if layout.dtype == "uint8" else "vector")
    lines = [
        "NRRD0004",
        "# Complete NRRD file format specification at:",
        "# http://teem.sourceforge.net/nrrd/format.html",
        "# Detached header for a headerless raw file, written by napari-medio",
        f"type: {_NRRD_TYPE[layout.dtype]}",
        f"dimension: {len(sizes)}",
        "space: left-posterior-superior",
        "sizes: " + " ".join(sizes),
        "space directions: " + " ".join(dirs),
        "kinds: " + " ".join(kinds),
    ]
    if np.dtype(layout.dtype).itemsize > 1:
        lines.append(f"endian: {layout.byte_order}")
    lines += ["encoding: raw", "space origin: " + format_vector(g.origin)]
    if layout.header:
        lines.append(f"byte skip: {layout.header}")
    lines.append(f"data file: {data_file}")
    text = "\n".join(lines) + "\n"
    with atomic_output(target) as temp:
        temp.write_text(text, encoding="latin-1")
    return target


# -- registry reader ----------------------------------------------------------------------------
_LAYOUT_OPTIONS = ("shape", "dtype", "byte_order", "header", "spacing", "origin", "direction", "components",
                   "slice_flip")


def _missing_options_message(p: Path, missing: list[str]) -> str:
    text = (f"a headerless raw volume: say how its voxels are laid out with the reader options "
            f"{' and '.join(missing)} (shape=(z, y, x), dtype one of {', '.join(RAW_DTYPES)}; optional "
            f"byte_order='little'|'big', header=<bytes to skip>, spacing=(x, y, z) mm, origin, direction, "
            f"components=3 for RGB, slice_flip), or open a .nhdr written by "
            f"napari_medio.formats.raw_volume.write_nhdr_for_raw / the napari 'RAW volume' widget")
    for ext in (".nhdr", ".mhd", ".hdr"):
        sibling = p.with_suffix(ext)
        if sibling.exists():
            text += f"; {sibling.name} beside it may describe it: open that instead"
            break
    try:
        guesses = guess_layouts(p, limit=1)
    except Exception:  # noqa: BLE001 -- a guess must never hide the real message
        guesses = []
    if guesses:
        text += f"; best guess: {guesses[0].describe()}"
    else:
        text += "; no plausible layout could be guessed"
    return text


def read(path: str | os.PathLike[str], *, labelmap: bool | None = None, mmap: bool = True,
         **options: Any) -> list[Volume]:
    """Registry reader: the layout comes from the options (see the module docstring)."""
    p = Path(path)
    layout_options = {k: v for k, v in options.items() if k in _LAYOUT_OPTIONS and v is not None}
    layout = options.get("layout")
    if layout is None:
        missing = [k for k in ("shape", "dtype") if k not in layout_options]
        if missing:
            nonempty_file_size(p)
            raise FormatError(p, _missing_options_message(p, missing))
        layout = layout_options
    return [read_raw(p, layout, mmap=mmap, labelmap=labelmap)]


FORMAT = register(
    FileFormat(
        name=NAME,
        description="Headerless raw volume with a layout given by hand (RawImageGuess); .raw, Samsung .mvl",
        extensions=(".raw", ".mvl", ".vol"),  # .vol: when it is not a GE Kretz file (tried first)
        read=read,
        sniff=None,
        kinds=(DataKind.VOLUME, DataKind.LABELMAP),
        priority=-20,
        backend="napari-medio (NumPy memory map)",
        read_options={
            "shape": "(z, y, x) voxels (required)",
            "dtype": f"voxel type, one of {', '.join(RAW_DTYPES)} (required)",
            "byte_order": "'little' (default) or 'big'",
            "header": "bytes to skip before the voxels (default 0)",
            "spacing": "(x, y, z) mm (default 1, 1, 1)",
            "origin": "LPS position of the first voxel (x, y, z) mm (default 0)",
            "direction": "3x3, axis unit vectors as columns (default identity LPS)",
            "components": "1, or 3 for RGB / 3-vectors",
            "slice_flip": "the slices run top-down (first slice most superior)",
            "layout": "a RawLayout instead of the separate options",
            "labelmap": LABELMAP_OPTION,
            "mmap": "memory-map the voxels (default True)",
        },
    )
)
