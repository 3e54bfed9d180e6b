"""GE Kretz 3D ultrasound volumes (``KRETZFILE 1.0``: ``.vol``, ``.v00`` ... ``.v05``), read by hand.

What it is: the file that older GE / Kretztechnik Voluson systems (GE 4D View)
write for a 3D ultrasound sweep.  3D Slicer reads it with SlicerHeart's
KretzFileReader module; this module reads it the same way, so a volume lands at
the same place, with the same grid and (up to the interpolation details named
below) the same voxels as in Slicer.

Sources for the facts (the code here is this project's own):

* SlicerHeart, ``KretzFileReader/Logic/vtkSlicerKretzFileReaderLogic.cxx``,
  ``qSlicerKretzFileReaderPlugin.cxx`` and ``qSlicerKretzFileReaderOptionsWidget.cxx``
  (Slicer licence, BSD-style; current master, reader last changed 2023-02): the tag layout,
  the scan-conversion geometry, the output grid, the reader options and
  defaults, the extensions and the placement in Slicer's world;
* VTK's ``vtkResampleToImage`` / ``vtkProbeFilter`` (which SlicerHeart calls) for how
  the Cartesian grid and the interpolated values come out;
* plooney/kretz (ITK KretzImageIO, Apache-2.0) to cross-check the tags and for
  the names of the tags SlicerHeart skips (patient name ``0110,0002``, Doppler
  ``xxxx,02xx`` items, cine ``D400,*`` and 4D ``D600,0001`` items);
* a public Python Kretz reader found by code search for the descriptive text tags
  (patient id, birth date, hospital, device, study date/time).  Those names are
  reverse-engineered guesses; they are only copied into metadata.

No real Kretz file was available while writing this module: the tests build
files byte by byte from this layout.

Layout (little-endian)::

    16 bytes   "KRETZFILE 1.0   "
    items      uint16 group, uint16 element, uint32 length, `length` bytes of value
               ... until the end of the file

Items used for the image (SlicerHeart's meanings):

=============  ===========  =====================================================
``C000,0001``  uint16       samples along a beam (radial, i, fastest on disk)
``C000,0002``  uint16       beams per plane (j, the theta angles)
``C000,0003``  uint16       planes (k, the phi angles, slowest)
``C100,0001``  float64      radial sample spacing in metres (mm = value * 1000)
``C200,0001``  float64      offset1: first sample at ``offset1 * spacing`` mm
``C200,0002``  float64      offset2: B-mode (sweep) radius ``-offset2 * spacing`` mm
``C300,0001``  float64[k]   phi angles in radians (sweep of the B-mode plane)
``C300,0002``  float64[j]   theta angles in radians (beam angle inside a plane)
``0010,0022``  float64      voxel spacing (mm) of a Cartesian volume / raw grid
``D000,0001``  uint8[i*j*k] the voxels, i fastest, uncompressed
=============  ===========  =====================================================

A file without angle items holds a Cartesian volume: it is loaded as stored
with the ``0010,0022`` spacing (1 mm when absent), as SlicerHeart does.  Items
are read in order and each ``D000,0001`` item is one volume built from the
items seen before it (SlicerHeart adds one node per voxel item); a file with
several gives several volumes.

Geometry (SlicerHeart's toroidal model).  With ``r = (offset1 + i) * res``,
``theta = theta[j] - pi/2``, ``phi = phi[k] - pi/2`` and ``b = -offset2 * res``,
sample ``(i, j, k)`` sits at::

    x = r sin(theta)
    y = -(r cos(theta) - b) sin(phi)
    z = b (1 - cos(phi)) + r cos(theta) cos(phi)

i.e. each B-mode plane (apex at the origin, beams fanning in x-z) is rotated by
``phi`` about the line ``y = 0, z = b``.  SlicerHeart puts these points into a
``vtkStructuredGrid`` (float32 coordinates) and resamples it with
``vtkResampleToImage`` over the grid's bounding box: ``n_a = ceil(extent_a /
output_spacing_a)`` samples per axis, spread from the lower to the upper bound
after VTK nudges both inward by a relative 1e-6 (VTK 9's ``ScaleAboutCenter(1 -
1e-6)``), so the spacing is ``extent_a (1 - 1e-6) / (n_a - 1)``, slightly
*larger* than requested, and the origin is just inside the bounds minimum.
The resulting image is put in the Slicer scene with an identity IJK-to-RAS
direction: (x, y, z) above are **RAS** millimetres.  In this
project's LPS world the volume therefore has direction ``diag(-1, -1, 1)`` and
origin ``(-x_min, -y_min, z_min)``: voxel ``a[k, j, i]`` is at
``RAS = (x_min + i sx, y_min + j sy, z_min + k sz)``.  The raw (not
scan-converted) grid gets spacing ``0010,0022`` (default 1 mm) on all axes,
origin 0 and the same identity-in-RAS direction, again as in Slicer.  This module
computes the same float32-rounded, nudged bounds: the grid matches the one VTK
9.7 computes for SlicerHeart's pipeline to 1e-9 mm (checked in the tests when
VTK is installed).  Older VTK (before that nudge) placed the grid on the bounds
themselves: a difference of at most 5e-7 x the extent (2e-5 mm for a 40 mm fan).

Interpolation: VTK probes the hexahedral cells of the sample grid and
interpolates trilinearly in each cell's parametric coordinates, rounding to
uint8; points outside every cell are 0.  Here each output voxel is mapped back
*analytically* to continuous sample indices (``r``, ``theta``, ``phi`` inverted in
closed form; non-uniform angle tables interpolated piecewise linearly), then
interpolated trilinearly between the 8 neighbouring samples and rounded half up
to uint8; voxels outside the sampled fan are 0.  The two differ only by the
curvature of one sample cell (VTK's cells have straight edges; the analytic
inverse follows the true arcs): against VTK 9.7 running SlicerHeart's pipeline
the values differ by at most 1 grey level, and about 0.1% of the fan-edge voxels
are in on one side and out on the other.  The work is vectorised NumPy in slabs
of output slices: a 256 x 200 x 150 sweep scan-converts to a 200 x 200 x 200
volume in about 0.7 s (one core of the development machine).

Reader options:
    ``scan_convert`` (bool, default True): resample to a Cartesian volume
    (SlicerHeart's "Scan convert" checkbox); False loads the raw sample grid
    (radial x theta x phi) unchanged.
    ``output_spacing`` (float or 3 floats, mm, default 0.5 as SlicerHeart's
    reader dialog): requested Cartesian spacing (see above for the actual one).
    ``file_offset`` (int, default 0): where the Kretz data starts (SlicerHeart's
    DICOM plug-in reads Kretz data embedded in a DICOM private element this way).

What is not decoded, and says so: Doppler / power-Doppler volumes (items
``xxxx,02xx``; a warning and ``metadata["kretz"]["undecoded"]``), cine/4D data
(``D400,*``, ``D600,*``; the same), and wavelet-compressed files (no ``D000,0001``
item: a FormatError that says so).  Reading only.
"""
from __future__ import annotations

import math
import os
import struct
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import FormatError, MedioError
from ..core.geometry import Geometry
from ..core.kinds import DataKind
from ..core.registry import FileFormat, register
from ..core.volume import DisplayWindow, Volume
from ._imageio import nonempty_file_size
from .naming import base_name

NAME = "ge-kretz"

#: The 16-byte signature SlicerHeart compares (with three trailing spaces).
MAGIC = b"KRETZFILE 1.0   "
#: SlicerHeart's file dialog filter: ``*.vol *.v00 ... *.v05``.
EXTENSIONS = (".vol", ".v00", ".v01", ".v02", ".v03", ".v04", ".v05")
#: SlicerHeart's default output spacing in the reader dialog (mm).
DEFAULT_OUTPUT_SPACING = 0.5

_ITEM = struct.Struct("<HHI")

DIM_I = (0xC000, 0x0001)
DIM_J = (0xC000, 0x0002)
DIM_K = (0xC000, 0x0003)
RESOLUTION = (0xC100, 0x0001)
OFFSET1 = (0xC200, 0x0001)
OFFSET2 = (0xC200, 0x0002)
PHI_ANGLES = (0xC300, 0x0001)
THETA_ANGLES = (0xC300, 0x0002)
CARTESIAN_SPACING = (0x0010, 0x0022)
VOXELS = (0xD000, 0x0001)

_GEOMETRY_TAGS = {DIM_I, DIM_J, DIM_K, RESOLUTION, OFFSET1, OFFSET2, PHI_ANGLES, THETA_ANGLES,
                  CARTESIAN_SPACING}

#: Descriptive text items (names from a public reverse-engineered reader; unverified).
_TEXT_TAGS = {
    (0x0110, 0x0001): "patient_id",
    (0x0110, 0x0002): "patient_name",
    (0x0110, 0x0003): "patient_birth_date",
    (0x0120, 0x0001): "institution",
    (0x0130, 0x0001): "device",
    (0x0140, 0x0002): "technology",
    (0x0140, 0x0003): "study_date",
    (0x0140, 0x0004): "study_time",
    (0x0150, 0x0029): "system",
}

#: Items known to hold data this reader does not decode.
_UNDECODED = {
    (0xD000, 0x0201): "Doppler / colour voxel data (D000,0201)",
    (0xD600, 0x0001): "4D (volume sequence) voxel data (D600,0001)",
    (0xD600, 0x0201): "4D Doppler voxel data (D600,0201)",
    (0xD400, 0x0001): "cine frames (D400,0001)",
}

#: Largest item read into memory while parsing (angle tables, text); bigger ones are skipped.
_SMALL_ITEM = 1 << 20
#: Relative inward nudge of the sampling bounds in vtkResampleToImage (VTK 9).
VTK_BOUNDS_EPSILON = 1.0e-6
#: Largest scan-converted output accepted (voxels), against absurd headers and spacings.
MAX_OUTPUT_VOXELS = 1 << 31


def _tag(t: tuple[int, int]) -> str:
    return f"{t[0]:04X},{t[1]:04X}"


def sniff(head: bytes, path: Path) -> bool:
    """True when the file starts with SlicerHeart's signature ``KRETZFILE 1.0   ``."""
    return head[: len(MAGIC)] == MAGIC


# -- parsing -----------------------------------------------------------------------------------
class _Item:
    __slots__ = ("length", "offset", "tag", "value")

    def __init__(self, tag: tuple[int, int], offset: int, length: int, value: bytes | None) -> None:
        self.tag = tag
        self.offset = offset
        self.length = length
        self.value = value


def _scan_items(p: Path, start: int, size: int) -> list[_Item]:
    """Every item after the signature: tag, value offset and length (small values read)."""
    items: list[_Item] = []
    with open(p, "rb") as fh:
        fh.seek(start)
        if fh.read(len(MAGIC)) != MAGIC:
            raise FormatError(p, f"not a GE Kretz file: it does not start with {MAGIC.decode()!r}"
                                 + (f" at offset {start}" if start else ""))
        pos = start + len(MAGIC)
        while pos < size:
            if size - pos < _ITEM.size:
                raise FormatError(p, f"file is truncated: incomplete item header at byte {pos} "
                                     f"({size - pos} of {_ITEM.size} bytes)")
            fh.seek(pos)
            group, element, length = _ITEM.unpack(fh.read(_ITEM.size))
            tag = (group, element)
            value_at = pos + _ITEM.size
            if length > size - value_at:
                raise FormatError(p, f"file is truncated or corrupt: item {_tag(tag)} at byte {pos} declares "
                                     f"{length} bytes, only {size - value_at} remain")
            value = None
            if (tag in _GEOMETRY_TAGS or tag in _TEXT_TAGS) and length <= _SMALL_ITEM:
                value = fh.read(length)
            elif tag in _GEOMETRY_TAGS:
                raise FormatError(p, f"item {_tag(tag)} is impossibly long ({length} bytes)")
            items.append(_Item(tag, value_at, length, value))
            pos = value_at + length
    return items


def _scalar(p: Path, item: _Item, fmt: str, what: str) -> float:
    need = struct.calcsize(fmt)
    if item.length < need:
        raise FormatError(p, f"item {_tag(item.tag)} ({what}) holds {item.length} bytes, needs {need}")
    value = struct.unpack_from(fmt, item.value or b"", 0)[0]
    if isinstance(value, float) and not math.isfinite(value):
        raise FormatError(p, f"item {_tag(item.tag)} ({what}) is not a finite number ({value})")
    return value


def _angles(p: Path, item: _Item, what: str) -> np.ndarray:
    if item.length % 8:
        raise FormatError(p, f"item {_tag(item.tag)} ({what}) holds {item.length} bytes, not a whole number of "
                             "float64 angles")
    a = np.frombuffer(item.value or b"", dtype="<f8").astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise FormatError(p, f"item {_tag(item.tag)} ({what}) contains non-finite angles")
    return a


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("latin-1").strip()


class _State:
    """Header values in force when a voxel item is met (SlicerHeart's running state)."""

    def __init__(self) -> None:
        self.dims = [0, 0, 0]
        self.resolution_mm = 1.0
        self.resolution_given = False
        self.offset1 = 0.0
        self.offset2 = 0.0
        self.theta: np.ndarray | None = None
        self.phi: np.ndarray | None = None
        self.cartesian_spacing: float | None = None

    def copy(self) -> _State:
        s = _State()
        s.__dict__.update(self.__dict__)
        s.dims = list(self.dims)
        return s


def _parse(p: Path, items: list[_Item]) -> tuple[list[tuple[_State, _Item]], dict]:
    state = _State()
    volumes: list[tuple[_State, _Item]] = []
    info: dict[str, Any] = {}
    undecoded: list[str] = []
    for item in items:
        tag = item.tag
        if tag in (DIM_I, DIM_J, DIM_K):
            state.dims[(DIM_I, DIM_J, DIM_K).index(tag)] = int(_scalar(p, item, "<H", "dimension"))
        elif tag == RESOLUTION:
            state.resolution_mm = _scalar(p, item, "<d", "radial resolution") * 1000.0
            state.resolution_given = True
        elif tag == OFFSET1:
            state.offset1 = _scalar(p, item, "<d", "offset1")
        elif tag == OFFSET2:
            state.offset2 = _scalar(p, item, "<d", "offset2")
        elif tag == THETA_ANGLES:
            state.theta = _angles(p, item, "theta angles")
        elif tag == PHI_ANGLES:
            state.phi = _angles(p, item, "phi angles")
        elif tag == CARTESIAN_SPACING:
            state.cartesian_spacing = _scalar(p, item, "<d", "Cartesian spacing")
        elif tag == VOXELS:
            volumes.append((state.copy(), item))
        elif tag in _TEXT_TAGS and item.value is not None:
            text = _text(item.value)
            if text:
                info[_TEXT_TAGS[tag]] = text
        elif tag in _UNDECODED:
            label = _UNDECODED[tag]
            if label not in undecoded:
                undecoded.append(label)
    info["undecoded"] = undecoded
    return volumes, info


# -- geometry ----------------------------------------------------------------------------------
def sample_positions(dims: Sequence[int], resolution_mm: float, offset1: float, offset2: float,
                     theta: np.ndarray, phi: np.ndarray, i: Any = None, j: Any = None, k: Any = None) -> np.ndarray:
    """Positions (x, y, z) in Slicer RAS mm of the sweep's samples, by SlicerHeart's formula.

    ``i``, ``j``, ``k`` are 1-D index lists (all samples of an axis when None);
    the result has shape ``(len(k), len(j), len(i), 3)``.
    """
    ni, nj, nk = dims
    i = np.arange(ni) if i is None else np.asarray(i).reshape(-1)
    j = np.arange(nj) if j is None else np.asarray(j).reshape(-1)
    k = np.arange(nk) if k is None else np.asarray(k).reshape(-1)
    k, j, i = np.meshgrid(k, j, i, indexing="ij")
    r = offset1 * resolution_mm + i * resolution_mm
    b = -offset2 * resolution_mm
    th = np.asarray(theta)[j] - np.pi / 2.0
    ph = np.asarray(phi)[k] - np.pi / 2.0
    x = r * np.sin(th)
    y = -(r * np.cos(th) - b) * np.sin(ph)
    z = b * (1.0 - np.cos(ph)) + r * np.cos(th) * np.cos(ph)
    return np.stack(np.broadcast_arrays(x, y, z), axis=-1)


def _bounds(state: _State) -> np.ndarray:
    """(3, 2) min/max of the sample grid as VTK computes them (float32 points)."""
    ni = state.dims[0]
    th = state.theta - np.pi / 2.0
    ph = state.phi - np.pi / 2.0
    # Every coordinate is bilinear in (r, sin/cos theta) and (r cos theta - b, sin/cos phi), so its
    # extremes are reached on the first/last sample and the extreme angles: evaluate only those.
    js = np.unique([np.argmin(np.sin(th)), np.argmax(np.sin(th)), np.argmin(np.cos(th)), np.argmax(np.cos(th))])
    ks = np.unique([np.argmin(np.sin(ph)), np.argmax(np.sin(ph)), np.argmin(np.cos(ph)), np.argmax(np.cos(ph))])
    pts = sample_positions(state.dims, state.resolution_mm, state.offset1, state.offset2, state.theta, state.phi,
                           i=np.array([0, ni - 1]), j=js, k=ks).reshape(-1, 3)
    pts = pts.astype(np.float32).astype(np.float64)  # vtkPoints store float32
    return np.stack([pts.min(axis=0), pts.max(axis=0)], axis=1)


def output_grid(bounds: np.ndarray, output_spacing: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(shape (x, y, z), actual spacing, origin) of the grid SlicerHeart resamples onto (RAS mm).

    ``bounds`` is the (3, 2) min/max of the sample grid.  SlicerHeart asks
    ``vtkResampleToImage`` for ``ceil(extent / output_spacing)`` samples per axis;
    VTK then nudges the bounds inward by a relative 1e-6 (``ScaleAboutCenter(1 -
    1e-6)``, to stay inside the data) and spreads the samples from the lower to
    the upper nudged bound.
    """
    lo = bounds[:, 0].astype(float)
    hi = bounds[:, 1].astype(float)
    req = np.asarray(output_spacing, dtype=float)
    dims = np.maximum(np.ceil((hi - lo) / req).astype(np.int64), 1)
    centre = 0.5 * (lo + hi)
    scale = 1.0 - VTK_BOUNDS_EPSILON
    lo_n = centre + scale * (lo - centre)
    hi_n = centre + scale * (hi - centre)
    spacing = np.where(dims > 1, (hi_n - lo_n) / np.maximum(dims - 1, 1), req)
    return dims, spacing, lo_n


def _index_table(angles_c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Angle table (centred) and its indices, increasing, for np.interp."""
    idx = np.arange(angles_c.size, dtype=float)
    if angles_c.size > 1 and angles_c[-1] < angles_c[0]:
        return angles_c[::-1], idx[::-1]
    return angles_c, idx


def _scan_convert(p: Path, raw: np.ndarray, state: _State, spacing_req: np.ndarray,
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cartesian uint8 volume (z, y, x), its spacing and origin (RAS) from the sample grid (k, j, i)."""
    ni, nj, nk = state.dims
    bounds = _bounds(state)
    dims, spacing, origin = output_grid(bounds, spacing_req)
    total = int(np.prod(dims))
    if total > MAX_OUTPUT_VOXELS:
        raise FormatError(p, f"the scan-converted volume would be {dims[0]} x {dims[1]} x {dims[2]} voxels; "
                             "choose a larger output_spacing (or scan_convert=False)")
    res = state.resolution_mm
    r0 = state.offset1 * res
    b = -state.offset2 * res
    th_tab, th_idx = _index_table(state.theta - np.pi / 2.0)
    ph_tab, ph_idx = _index_table(state.phi - np.pi / 2.0)
    nx, ny, nz = (int(d) for d in dims)
    xs = origin[0] + spacing[0] * np.arange(nx)
    ys = origin[1] + spacing[1] * np.arange(ny)
    zs = origin[2] + spacing[2] * np.arange(nz)
    flat = np.ascontiguousarray(raw).reshape(-1)
    out = np.zeros((nz, ny, nx), dtype=np.uint8)
    eps = 1e-9
    slab = max(1, (1 << 21) // max(nx * ny, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        for z0 in range(0, nz, slab):
            z = zs[z0: z0 + slab, None]
            y = ys[None, :]
            # Undo the sweep rotation about (y = 0, z = b): phi and the in-plane depth w = r cos(theta).
            zeta = z - b
            phi = np.arctan(-y / zeta)
            phi = np.where(np.isnan(phi), 0.0, phi)
            w = zeta * np.cos(phi) - y * np.sin(phi) + b  # (nzs, ny)
            fk = np.interp(phi, ph_tab, ph_idx, left=np.nan, right=np.nan)
            w3 = w[:, :, None]
            x3 = xs[None, None, :]
            theta = np.arctan(x3 / w3)
            theta = np.where(np.isnan(theta), 0.0, theta)
            r = w3 * np.cos(theta) + x3 * np.sin(theta)
            fi = (r - r0) / res
            fj = np.interp(theta, th_tab, th_idx, left=np.nan, right=np.nan)
            fk3 = np.broadcast_to(fk[:, :, None], fi.shape)
            inside = ((fi >= -eps) & (fi <= ni - 1 + eps) & ~np.isnan(fj) & ~np.isnan(fk3))
            if not inside.any():
                continue
            fi = np.clip(fi[inside], 0.0, ni - 1)
            fj = fj[inside]
            fkv = fk3[inside]
            i0 = np.minimum(fi.astype(np.int64), ni - 2)
            j0 = np.minimum(fj.astype(np.int64), nj - 2)
            k0 = np.minimum(fkv.astype(np.int64), nk - 2)
            ti = fi - i0
            tj = fj - j0
            tk = fkv - k0
            base = (k0 * nj + j0) * ni + i0
            acc = np.zeros(base.shape, dtype=np.float64)
            for dk, wk in ((0, 1.0 - tk), (1, tk)):
                for dj, wj in ((0, 1.0 - tj), (1, tj)):
                    wkj = wk * wj
                    at = base + (dk * nj + dj) * ni
                    acc += wkj * ((1.0 - ti) * flat[at] + ti * flat[at + 1])
            block = out[z0: z0 + slab]
            block[inside] = np.clip(np.floor(acc + 0.5), 0, 255).astype(np.uint8)
    return out, spacing, origin


# -- reading -----------------------------------------------------------------------------------
def _spacing_option(value: Any) -> np.ndarray:
    arr = np.asarray(value, dtype=float).reshape(-1)
    if arr.size == 1:
        arr = np.repeat(arr, 3)
    if arr.size != 3 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"output_spacing must be one positive number or three, not {value!r}")
    return arr


def _ras_to_lps_geometry(spacing: Sequence[float], origin_ras: Sequence[float]) -> Geometry:
    """Geometry of an image placed in Slicer with identity IJK-to-RAS directions."""
    o = np.asarray(origin_ras, dtype=float)
    return Geometry(np.asarray(spacing, dtype=float), np.array([-o[0], -o[1], o[2]]) + 0.0,
                    np.diag([-1.0, -1.0, 1.0]))


def read(path: str | os.PathLike[str], *, scan_convert: bool = True,
         output_spacing: float | Sequence[float] = DEFAULT_OUTPUT_SPACING, file_offset: int = 0) -> list[Volume]:
    """Read a GE Kretz file into uint8 Volumes placed in LPS as SlicerHeart places them in Slicer.

    One Volume per ``D000,0001`` voxel item (normally one).  With
    ``scan_convert`` (default) the toroidal sample grid is resampled onto a
    Cartesian grid of about ``output_spacing`` mm; otherwise the raw samples are
    returned (axes: radial i, theta j, phi k).  Header values are in
    ``volume.metadata["kretz"]``.
    """
    p = Path(path)
    try:
        spacing_req = _spacing_option(output_spacing)
    except (TypeError, ValueError) as exc:
        raise MedioError(p, str(exc)) from None
    if not isinstance(file_offset, (int, np.integer)) or file_offset < 0:
        raise MedioError(p, f"file_offset must be a non-negative integer, not {file_offset!r}")
    size = nonempty_file_size(p)
    if size < file_offset + len(MAGIC):
        raise FormatError(p, "file is too short to be a GE Kretz file")
    items = _scan_items(p, int(file_offset), size)
    found, info = _parse(p, items)
    undecoded = info.pop("undecoded")
    if not found:
        why = "no uncompressed voxel data (item D000,0001)"
        if undecoded:
            why += "; the file holds only " + ", ".join(undecoded) + ", which this reader does not decode"
        else:
            why += "; the file may be wavelet-compressed: re-save it from GE 4D View with compression 'None'"
        raise FormatError(p, why)
    if undecoded:
        warnings.warn(f"{p}: not decoded: {', '.join(undecoded)}; only the B-mode volume is read", stacklevel=2)
    item_list = [{"tag": _tag(it.tag), "length": it.length} for it in items]
    volumes: list[Volume] = []
    name = base_name(p)
    for index, (state, item) in enumerate(found):
        vol = _volume(p, state, item, bool(scan_convert), spacing_req)
        meta = vol.metadata["kretz"]
        meta.update(info)
        meta["volume_index"] = index
        meta["volume_count"] = len(found)
        meta["undecoded"] = list(undecoded)
        meta["items"] = item_list
        vol.name = name if len(found) == 1 else f"{name}_{index + 1}"
        volumes.append(vol)
    return volumes


def _volume(p: Path, state: _State, item: _Item, scan_convert: bool, spacing_req: np.ndarray) -> Volume:
    ni, nj, nk = state.dims
    tag = _tag(item.tag)
    if min(state.dims) < 1:
        raise FormatError(p, f"voxel item {tag} comes before the dimensions (C000,0001-0003) are all given: "
                             f"{state.dims}")
    count = ni * nj * nk
    if item.length != count:
        raise FormatError(p, f"voxel item {tag} holds {item.length} bytes, but the dimensions {ni} x {nj} x {nk} "
                             f"need {count}")
    with open(p, "rb") as fh:
        fh.seek(item.offset)
        raw = np.fromfile(fh, dtype=np.uint8, count=count)
    if raw.size != count:  # pragma: no cover - checked by the item scan
        raise FormatError(p, "file is truncated: voxel data incomplete")
    raw = raw.reshape(nk, nj, ni)
    toroidal = state.theta is not None and state.phi is not None and state.theta.size > 0 and state.phi.size > 0
    meta: dict[str, Any] = {
        "dimensions": [ni, nj, nk],
        "coordinate_system": "toroidal" if toroidal else "cartesian",
        "radial_resolution_mm": state.resolution_mm,
        "offset1": state.offset1,
        "offset2": state.offset2,
        "radial_start_mm": state.offset1 * state.resolution_mm,
        "bmode_radius_mm": -state.offset2 * state.resolution_mm,
    }
    if state.theta is not None:
        meta["theta_angles_rad"] = state.theta.tolist()
    if state.phi is not None:
        meta["phi_angles_rad"] = state.phi.tolist()
    if state.cartesian_spacing is not None:
        meta["cartesian_spacing_mm"] = state.cartesian_spacing
    if scan_convert and toroidal:
        if state.theta.size != nj:
            raise FormatError(p, f"theta angle table (C300,0002) has {state.theta.size} entries, expected {nj}")
        if state.phi.size != nk:
            raise FormatError(p, f"phi angle table (C300,0001) has {state.phi.size} entries, expected {nk}")
        if min(state.dims) < 2:
            raise FormatError(p, f"cannot scan-convert a sweep with a single sample along an axis "
                                 f"({ni} x {nj} x {nk}); read it with scan_convert=False")
        for what, a in (("theta", state.theta), ("phi", state.phi)):
            d = np.diff(a)
            if not (np.all(d > 0) or np.all(d < 0)):
                raise FormatError(p, f"{what} angles are not strictly monotonic; read with scan_convert=False")
            if np.any(np.abs(a - np.pi / 2.0) >= np.pi / 2.0):
                raise FormatError(p, f"{what} angles leave the open range (0, pi) rad; cannot scan-convert")
        if state.resolution_mm <= 0:
            raise FormatError(p, f"radial resolution (C100,0001) must be positive, not {state.resolution_mm} mm")
        array, spacing, origin = _scan_convert(p, raw, state, spacing_req)
        geometry = _ras_to_lps_geometry(spacing, origin)
        meta.update({
            "scan_converted": True,
            "output_spacing_requested_mm": spacing_req.tolist(),
            "interpolation": "trilinear in sample-index space (analytic inverse of the toroidal mapping), "
                             "rounded to uint8; 0 outside the fan",
            "bounds_ras_mm": _bounds(state).tolist(),
        })
    else:
        array = raw
        c = state.cartesian_spacing if state.cartesian_spacing is not None else 1.0
        if not c > 0:
            raise FormatError(p, f"Cartesian spacing (0010,0022) must be positive, not {c}")
        geometry = _ras_to_lps_geometry([c, c, c], [0.0, 0.0, 0.0])
        meta["scan_converted"] = False
        if toroidal:
            meta["note"] = ("raw toroidal sample grid (axes: radial, theta, phi) shown with the 0010,0022 "
                            "spacing, as SlicerHeart does without scan conversion; not a true Cartesian geometry")
    # SlicerHeart's display window: minimum 15, maximum 150.
    return Volume(array, geometry, name=base_name(p), metadata={"kretz": meta}, source=os.fspath(p),
                  window=DisplayWindow.from_range(15.0, 150.0))


FORMAT = register(
    FileFormat(
        name=NAME,
        description="GE Kretz 3D ultrasound (.vol, .v00-.v05; SlicerHeart)",
        extensions=EXTENSIONS,
        read=read,
        sniff=sniff,
        kinds=(DataKind.VOLUME,),
        backend="napari-medio (hand-written from SlicerHeart's KretzFileReader)",
        read_options={
            "scan_convert": "resample the probe's toroidal sample grid to a Cartesian volume (default True)",
            "output_spacing": "requested Cartesian spacing in mm, one value or three (default 0.5, as SlicerHeart)",
            "file_offset": "byte offset of the Kretz data inside the file (default 0)",
        },
    )
)
