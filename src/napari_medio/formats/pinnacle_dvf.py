"""Pinnacle DVF (``.dvf``): deformation vector fields exported by Philips Pinnacle, read by hand.

What it is: the deformable-registration export of Pinnacle's plug-in, which
3D Slicer opens through SlicerRT's (experimental) PinnacleDvfReader module.
The facts below (byte layout, value decoding, coordinate handling) follow
SlicerRT's ``vtkSlicerPinnacleDvfReader`` / ``vtkSlicerPinnacleDvfReaderLogic``
and its options widget (BSD-style 3D Slicer licence), used as a reference for
field meanings only; the code is this project's own.  Why hand-written: no
library reads the format; it is a short binary header followed by six byte
planes.  No real .dvf file was available: the tests build files byte by byte
from this description.

Layout (no magic number; SlicerRT reads the bytes in the machine's order,
i.e. little-endian; a file whose header only makes sense big-endian is read
big-endian, which SlicerRT does not do):

* int32 ``isLittleEndian`` (read and ignored by SlicerRT), int32
  ``isFixedSecondary``, int32 ``isMovingSecondary`` (0 or 1 each);
* only when ``isFixedSecondary == 1`` -- else only when
  ``isMovingSecondary == 1`` -- one registration block of six float32:
  ``Tx Ty Tz Rx Ry Rz`` (rotations in degrees);
* int32 x6: fixed-image bounding box start (x, y, z) and end (x, y, z)
  (kept in metadata; SlicerRT does not use them);
* int32 x3: grid size ``nx ny nz``; float64 x3: grid spacing (mm);
* six planes of ``N = nx*ny*nz`` bytes, each x fastest then y then z:
  int8 x-high, int8 y-high, int8 z-high, uint8 x-low, uint8 y-low, uint8 z-low.
  A component is ``high + 0.004 * low`` mm (SlicerRT computes it in float32,
  so its values differ from these exact ones by at most half a float32 ulp,
  < 8e-6 mm for |d| < 128 mm).

So a file is exactly ``72 (+24 with a registration block) + 6 N`` bytes; the
sniff checks the flags, positive sizes and spacings and that exact size, so it
claims no other ``.dvf`` file (Sony voice files and the like).

How SlicerRT places it (Slicer's world is RAS) and what this reader returns (LPS):

* The grid has no origin in the file: the user types one ("Grid Origin
  (XYZ)", default 0 0 0), set as the RAS position of voxel (0, 0, 0); the grid
  direction is ``diag(-1, -1, -1)`` in RAS, so index i runs to patient left,
  j to posterior, k to inferior.  In LPS: origin ``(-x, -y, z)`` of the RAS
  value, direction ``diag(1, 1, -1)``, spacing as stored.
* The vectors go into the RAS grid as ``(-dx, -dy, +dz)``, i.e. the file's
  ``(dx, dy, dz)`` are LPS mm displacements; they are kept as read.
* The grid is set as the grid transform node's *to-parent* transform
  (``p_parent = p + d(p)``).  Here: a :class:`~napari_medio.core.transform.Transform`
  of type ``"grid"`` with ``stored_direction="to_parent"`` (Slicer's
  ``modeling`` displacement field) holding an LPS vector volume, as
  :func:`~napari_medio.formats.itk_transform.read_displacement_field` returns
  for a ``modeling`` NRRD.  Resampling and ITK ``.h5`` output invert it (as for
  any modeling field); a ``.nrrd`` keeps it exactly.
* The registration block becomes SlicerRT's "PostDeformationMatrix": with
  vtkTransform's pre-multiplication, ``T = Rx(Rx) Ry(Ry) Rz(Rz) Translate(t)``
  (a point moves as ``Rx(Ry(Rz(p + t)))``), taken as an LPS matrix (SlicerRT
  converts it to RAS with ``diag(-1,-1,1) T diag(-1,-1,1)``) and set as a
  linear node's *to-parent* matrix.  The translation is used as mm for a
  fixed-secondary block and multiplied by 10 (cm -> mm) for a
  moving-secondary block, exactly as SlicerRT does.  SlicerRT adds this linear
  node next to the grid node, not as its parent: the two are not composed.  So
  is it here: the reader returns the grid transform first and, when the file
  holds a registration block, this linear transform as a second object
  (SlicerRT also adds an identity node for files without one; that is left out).

Header values are in ``metadata["pinnacle_dvf"]`` of both transforms.

Reader options (SlicerRT asks only the grid origin):

* ``grid_origin``: LPS mm of voxel (0, 0, 0); default ``(0, 0, 0)``.
* ``grid_origin_ras``: the same given as SlicerRT's "Grid Origin (XYZ)" box
  takes it (RAS mm); give one or the other.
* ``registration_matrix`` (default True): also return the registration block
  as a linear transform.

Read only.
"""
from __future__ import annotations

import math
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import FormatError, MedioError
from ..core.geometry import Geometry
from ..core.kinds import DataKind
from ..core.registry import FileFormat, read_head, register
from ..core.transform import Transform
from ..core.volume import AxisInfo, Volume
from ._imageio import nonempty_file_size
from .naming import base_name

__all__ = ["decode_pinnacle_dvf_header", "read_pinnacle_dvf", "registration_matrix_lps"]

NAME = "pinnacle-dvf"

#: Displacement of one low-byte step, mm (SlicerRT's ``MIN_RESOLUTION``).
LOW_BYTE_STEP = 0.004
#: Grid direction in LPS (SlicerRT's ``diag(-1, -1, -1)`` in RAS).
GRID_DIRECTION_LPS = np.diag([1.0, 1.0, -1.0])

_FLAGS = 12
_REGISTRATION = 24
_GRID = 24 + 12 + 24


@dataclass
class DvfHeader:
    """The header fields of a Pinnacle DVF file, as stored."""

    byte_order: str
    is_little_endian: int
    fixed_is_secondary: int
    moving_is_secondary: int
    #: ``Tx Ty Tz Rx Ry Rz`` as stored (float32), or None without a registration block.
    registration: tuple[float, ...] | None
    #: which flag selected the block: "fixed", "moving" or None.
    registration_of: str | None
    bbox_start: tuple[int, int, int]
    bbox_end: tuple[int, int, int]
    size: tuple[int, int, int]
    spacing: tuple[float, float, float]
    header_bytes: int

    @property
    def n_voxels(self) -> int:
        """Grid points ``nx * ny * nz``."""
        nx, ny, nz = self.size
        return nx * ny * nz

    @property
    def file_bytes(self) -> int:
        """The exact file size this header describes."""
        return self.header_bytes + 6 * self.n_voxels

    def to_dict(self) -> dict:
        """Plain-Python header values for ``metadata["pinnacle_dvf"]``."""
        out: dict = {
            "byte_order": "little" if self.byte_order == "<" else "big",
            "is_little_endian": self.is_little_endian,
            "fixed_is_secondary": self.fixed_is_secondary,
            "moving_is_secondary": self.moving_is_secondary,
            "fixed_bounding_box_start": list(self.bbox_start),
            "fixed_bounding_box_end": list(self.bbox_end),
            "size": list(self.size),
            "spacing": list(self.spacing),
            "header_bytes": self.header_bytes,
        }
        if self.registration is not None:
            tx, ty, tz, rx, ry, rz = self.registration
            out["registration"] = {
                "of": self.registration_of,
                "translation": [tx, ty, tz],
                "rotation_degrees": [rx, ry, rz],
                # SlicerRT: fixed-secondary translation used as mm, moving-secondary as cm (x10)
                "translation_scale_to_mm": 1.0 if self.registration_of == "fixed" else 10.0,
            }
        return out


def decode_pinnacle_dvf_header(head: bytes, total_size: int | None = None,
                               byte_order: str = "<") -> DvfHeader | str:
    """The header of a Pinnacle DVF in ``head`` read with ``byte_order`` ("<" or ">").

    Returns the :class:`DvfHeader`, or a sentence saying why the bytes are not
    one (flags not 0/1, impossible sizes, a file size that does not match when
    ``total_size`` is given).  Never raises.
    """
    e = byte_order
    if len(head) < _FLAGS:
        return f"file is truncated: the header needs at least {_FLAGS + _GRID} bytes, only {len(head)} present"
    flags = struct.unpack_from(e + "3i", head, 0)
    if any(f not in (0, 1) for f in flags):
        return ("not a Pinnacle DVF file: the first three 32-bit integers (byte-order flag, fixed-secondary "
                f"flag, moving-secondary flag) must each be 0 or 1, got {list(flags)}")
    little, fixed_sec, moving_sec = flags
    offset = _FLAGS
    registration: tuple[float, ...] | None = None
    which: str | None = None
    if fixed_sec == 1 or moving_sec == 1:
        which = "fixed" if fixed_sec == 1 else "moving"
        if len(head) < offset + _REGISTRATION:
            return (f"file is truncated: the header with a registration block needs "
                    f"{_FLAGS + _REGISTRATION + _GRID} bytes, only {len(head)} present")
        registration = tuple(float(v) for v in struct.unpack_from(e + "6f", head, offset))
        offset += _REGISTRATION
        if not all(math.isfinite(v) for v in registration):
            return f"the {which}-secondary registration parameters are not all finite: {list(registration)}"
    if len(head) < offset + _GRID:
        return f"file is truncated: the header needs {offset + _GRID} bytes, only {len(head)} present"
    ints = struct.unpack_from(e + "9i", head, offset)
    spacing = tuple(float(v) for v in struct.unpack_from(e + "3d", head, offset + 36))
    offset += _GRID
    size = tuple(int(v) for v in ints[6:9])
    if any(n <= 0 for n in size):
        return f"impossible grid size {list(size)} (each of nx, ny, nz must be at least 1)"
    if not all(math.isfinite(s) and s > 0 for s in spacing):
        return f"impossible grid spacing {list(spacing)} (must be finite and positive, mm)"
    header = DvfHeader(
        byte_order=e, is_little_endian=little, fixed_is_secondary=fixed_sec, moving_is_secondary=moving_sec,
        registration=registration, registration_of=which,
        bbox_start=(ints[0], ints[1], ints[2]), bbox_end=(ints[3], ints[4], ints[5]),
        size=(size[0], size[1], size[2]), spacing=(spacing[0], spacing[1], spacing[2]), header_bytes=offset,
    )
    if total_size is not None and total_size != header.file_bytes:
        grid = "x".join(str(n) for n in size)
        if total_size < header.file_bytes:
            return (f"file is truncated: the {grid} grid needs {header.file_bytes} bytes "
                    f"({offset}-byte header + 6 x {header.n_voxels} vector bytes), only {total_size} present")
        return (f"file size {total_size} does not match its header: the {grid} grid needs exactly "
                f"{header.file_bytes} bytes ({offset}-byte header + 6 x {header.n_voxels} vector bytes); "
                f"{total_size - header.file_bytes} unexpected bytes")
    return header


def _header_for(head: bytes, total_size: int) -> DvfHeader | str:
    """The header in the byte order that makes sense (little-endian first); else the most telling reason."""
    little = decode_pinnacle_dvf_header(head, total_size, "<")
    if isinstance(little, DvfHeader):
        return little
    big = decode_pinnacle_dvf_header(head, total_size, ">")
    if isinstance(big, DvfHeader):
        return big
    # Report the big-endian reason only when its flags parse and the little-endian ones do not.
    if little.startswith("not a Pinnacle DVF") and not big.startswith("not a Pinnacle DVF"):
        return big
    return little


def _sniff(head: bytes, path: Path) -> bool:
    try:
        size = os.stat(path).st_size
    except OSError:
        return False
    return isinstance(_header_for(head[:_FLAGS + _REGISTRATION + _GRID], size), DvfHeader)


def _rotation(axis: int, degrees: float) -> np.ndarray:
    """4x4 right-handed rotation about x (0), y (1) or z (2), as vtkTransform's RotateX/Y/Z."""
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    m = np.eye(4)
    u, v = [(1, 2), (2, 0), (0, 1)][axis]
    m[u, u], m[u, v], m[v, u], m[v, v] = c, -s, s, c
    return m


def registration_matrix_lps(header: DvfHeader) -> np.ndarray:
    """SlicerRT's post-deformation matrix as a 4x4 LPS to-parent matrix (identity without a block).

    ``Rx @ Ry @ Rz @ Translate(t)`` with t in mm (x10 for a moving-secondary
    block), the matrix SlicerRT builds with vtkTransform before its LPS -> RAS flip.
    """
    if header.registration is None:
        return np.eye(4)
    tx, ty, tz, rx, ry, rz = header.registration
    scale = 1.0 if header.registration_of == "fixed" else 10.0
    translate = np.eye(4)
    translate[:3, 3] = [tx * scale, ty * scale, tz * scale]
    return _rotation(0, rx) @ _rotation(1, ry) @ _rotation(2, rz) @ translate


def _origin_lps(path: Path, grid_origin: Sequence[float] | None,
                grid_origin_ras: Sequence[float] | None) -> np.ndarray:
    if grid_origin is not None and grid_origin_ras is not None:
        raise MedioError(path, "give grid_origin (LPS) or grid_origin_ras (SlicerRT's RAS box), not both")
    given, name = (grid_origin, "grid_origin") if grid_origin_ras is None else (grid_origin_ras, "grid_origin_ras")
    if given is None:
        return np.zeros(3)
    try:
        value = np.array([float(v) for v in given], dtype=float)
    except (TypeError, ValueError):
        raise MedioError(path, f"{name} must be three numbers (mm), got {given!r}") from None
    if value.shape != (3,) or not np.all(np.isfinite(value)):
        raise MedioError(path, f"{name} must be three finite numbers (mm), got {given!r}")
    if name == "grid_origin_ras":
        value = value * np.array([-1.0, -1.0, 1.0])
    return value


def read_pinnacle_dvf(path: str | os.PathLike[str], grid_origin: Sequence[float] | None = None,
                      grid_origin_ras: Sequence[float] | None = None,
                      registration_matrix: bool = True) -> list[Transform]:
    """A Pinnacle DVF as SlicerRT loads it: a to-parent LPS grid transform (+ the registration matrix).

    The grid's voxel (0, 0, 0) is at ``grid_origin`` (LPS mm) or
    ``grid_origin_ras`` (RAS mm, SlicerRT's option); default the origin.
    """
    p = Path(path)
    origin = _origin_lps(p, grid_origin, grid_origin_ras)
    total = nonempty_file_size(p)
    head = read_head(p, _FLAGS + _REGISTRATION + _GRID)
    header = _header_for(head, total)
    if isinstance(header, str):
        raise FormatError(p, header)
    n = header.n_voxels
    nx, ny, nz = header.size
    try:
        planes = np.memmap(p, dtype=np.uint8, mode="r", offset=header.header_bytes, shape=(6, n))
    except (OSError, ValueError) as exc:
        raise FormatError(p, f"cannot map the vector data: {exc}") from None
    field = np.empty((nz, ny, nx, 3), dtype=np.float64)
    for c in range(3):
        high = planes[c].view(np.int8).astype(np.float64)
        low = planes[3 + c].astype(np.float64)
        field[..., c] = (high + LOW_BYTE_STEP * low).reshape(nz, ny, nx)
    del planes
    meta = header.to_dict()
    meta["grid_origin_lps"] = origin.tolist()
    meta["grid_origin_ras"] = (origin * np.array([-1.0, -1.0, 1.0])).tolist()
    name = base_name(p)
    geometry = Geometry(np.array(header.spacing), origin, GRID_DIRECTION_LPS)
    volume = Volume(field, geometry, name=name, components=AxisInfo(name="component", kind="vector"),
                    metadata={"pinnacle_dvf": meta}, source=os.fspath(p))
    # SlicerRT builds its vtkOrientedGridTransform with VTK's default, linear interpolation
    grid = Transform("grid", name=name, displacement=volume, stored_direction="to_parent",
                     metadata={"pinnacle_dvf": meta}, source=os.fspath(p), interpolation="linear")
    out = [grid]
    if registration_matrix and header.registration is not None:
        linear = Transform.from_matrix_to_parent(registration_matrix_lps(header),
                                                 name=f"{name}_PostDeformationMatrix")
        linear.metadata["pinnacle_dvf"] = meta
        linear.source = os.fspath(p)
        out.append(linear)
    return out


register(FileFormat(
    name=NAME,
    description="Pinnacle DVF deformation vector field (SlicerRT PinnacleDvfReader)",
    extensions=(".dvf",),
    read=read_pinnacle_dvf,
    sniff=_sniff,
    kinds=(DataKind.TRANSFORM,),
    backend="napari-medio",
    read_options={
        "grid_origin": "LPS mm of grid voxel (0, 0, 0), which the file lacks (default 0 0 0)",
        "grid_origin_ras": "the same as SlicerRT's 'Grid Origin (XYZ)' box takes it, RAS mm (default 0 0 0)",
        "registration_matrix": "also return the file's registration block as a linear transform (default True)",
    },
))
