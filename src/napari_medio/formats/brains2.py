"""BRAINS2 binary masks (``.mask``, an octree format), read and written by hand.

ITK once shipped ``Brains2MaskImageIO`` (Review module, removed in ITK 4), which
is where Slicer's support came from; SimpleITK does not have it.  The public
ITK source documents the layout, and this module follows it:

* a text header of whitespace-separated tokens: ``IPL_HEADER_BEGIN``, then
  ``KEY: value`` pairs (nested ``MASK_HEADER_BEGIN`` ... ``MASK_HEADER_END``),
  up to ``IPL_HEADER_END`` and one newline.  Keys used: ``BYTE_ORDER``
  (``BIG_ENDIAN`` / ``LITTLE_ENDIAN``), ``MASK_X_SIZE`` ..., ``MASK_X_RESOLUTION``
  ... (mm), ``DIRX0``..``DIRZ2`` (the direction of the x, y and z index axes),
  ``ORIGIN0``..``ORIGIN2``; older files give ``MASK_ACQ_PLANE`` (AXIAL,
  CORONAL, SAGITTAL) instead of the directions;
* six unsigned 32-bit integers: octree depth, width (a power of two covering the
  volume), the x, y, z sizes, and the root colour;
* the octree, depth first: each branch is a 16-bit code holding 2 bits per
  child octant (octant bits: 1 = upper x half, 2 = upper y, 4 = upper z);
  0 = outside the mask, 1 = inside, 2 = a branch whose code follows.

Voxels inside the mask read as 255 (as ITK did), outside as 0, uint8.  A root
that is a single colour means an empty (0) or full (1) mask; ITK's old reader
swapped these two never-used cases, the writer and the children agree on
0 = outside.  The writer stores any nonzero voxel as inside (binary mask).

Reader options: ``labelmap`` (bool | None; a mask is a label map unless False).
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import numpy as np

from ..core.errors import FormatError, MedioError
from ..core.fileio import atomic_output
from ..core.geometry import Geometry
from ..core.kinds import DataKind
from ..core.registry import FileFormat, register
from ..core.volume import Volume
from ._imageio import as_volume, check_writable, nonempty_file_size
from .naming import base_name

NAME = "brains2-mask"

_INSIDE = 255
_WHITE, _BLACK, _GRAY = 0, 1, 2
_END = b"IPL_HEADER_END"

# Legacy acquisition planes -> direction columns (ITK's RIP / RPI / PIR orientation codes).
_PLANES = {
    "CORONAL": [[1, 0, 0], [0, 0, 1], [0, -1, 0]],
    "AXIAL": [[1, 0, 0], [0, -1, 0], [0, 0, 1]],
    "SAGITTAL": [[0, -1, 0], [0, 0, 1], [1, 0, 0]],
}


def sniff(head: bytes, path: Path) -> bool:
    """Starts with ``IPL_HEADER_BEGIN`` and has a ``MASK_HEADER_BEGIN`` section."""
    return head.lstrip().startswith(b"IPL_HEADER_BEGIN") and b"MASK_HEADER_BEGIN" in head


def _parse_header(p: Path, data: bytes) -> tuple[dict, int]:
    end = data.find(_END)
    if end < 0:
        raise FormatError(p, "BRAINS2 header has no IPL_HEADER_END (truncated or not a mask)")
    tokens = data[:end].decode("latin-1").split()
    fields: dict[str, str] = {}
    i = 0
    while i < len(tokens):
        key = tokens[i]
        if key.endswith(("HEADER_BEGIN", "HEADER_END")):
            i += 1
            continue
        fields.setdefault(key.rstrip(":"), tokens[i + 1] if i + 1 < len(tokens) else "")
        i += 2
    start = end + len(_END)
    if data[start: start + 2] == b"\r\n":
        start += 2
    elif data[start: start + 1] in (b"\n", b"\r"):
        start += 1
    return fields, start


def _num(p: Path, fields: dict, key: str, cast=float, default=None):
    if key not in fields:
        if default is not None:
            return default
        raise FormatError(p, f"BRAINS2 mask header has no {key}")
    try:
        return cast(fields[key])
    except ValueError:
        raise FormatError(p, f"BRAINS2 mask header field {key} is not a number: {fields[key]!r}") from None


def read(path: str | os.PathLike[str], *, labelmap: bool | None = None) -> list[Volume]:
    """Read a BRAINS2 ``.mask`` into a uint8 label map (inside = 255)."""
    p = Path(path)
    nonempty_file_size(p)
    data = p.read_bytes()
    if not sniff(data[:4096], p):
        raise FormatError(p, "not a BRAINS2 mask (no IPL_HEADER_BEGIN / MASK_HEADER_BEGIN)")
    fields, start = _parse_header(p, data)
    order = "<" if fields.get("BYTE_ORDER", "BIG_ENDIAN").upper() == "LITTLE_ENDIAN" else ">"
    dims = [_num(p, fields, f"MASK_{a}_SIZE", int) for a in "XYZ"]
    spacing = [_num(p, fields, f"MASK_{a}_RESOLUTION", float, 1.0) for a in "XYZ"]
    spacing = [s if s > 0 else 1.0 for s in spacing]
    if any(d < 1 or d > 1 << 16 for d in dims) or int(np.prod(dims, dtype=np.int64)) > 1 << 32:
        raise FormatError(p, f"invalid BRAINS2 mask size {dims}")
    if "DIRX0" in fields:
        cols = [[_num(p, fields, f"DIR{a}{i}") for i in range(3)] for a in "XYZ"]
        direction = np.array(cols, dtype=float).T
    elif fields.get("MASK_ACQ_PLANE", "").upper() in _PLANES:
        direction = np.array(_PLANES[fields["MASK_ACQ_PLANE"].upper()], dtype=float).T
    else:
        direction = np.eye(3)
    origin = [_num(p, fields, f"ORIGIN{i}", float, 0.0) for i in range(3)]
    if len(data) < start + 24:
        raise FormatError(p, "file is truncated: the octree header is missing")
    _depth, width, tx, ty, tz, root = np.frombuffer(data, dtype=order + "u4", count=6, offset=start).tolist()
    if [tx, ty, tz] != dims:
        raise FormatError(p, f"octree size {[tx, ty, tz]} differs from the header size {dims}")
    if width < max(dims) or width & (width - 1) or width > 1 << 16:
        raise FormatError(p, f"invalid octree width {width} for size {dims}")
    array = np.zeros((dims[2], dims[1], dims[0]), dtype=np.uint8)
    if root == _BLACK:
        array[...] = _INSIDE
    elif root == _GRAY:
        codes = np.frombuffer(data, dtype=order + "u2", count=(len(data) - start - 24) // 2, offset=start + 24)
        _decode(p, codes, width, array)
    elif root != _WHITE:
        raise FormatError(p, f"invalid octree root colour {root}")
    try:
        geometry = Geometry(spacing, origin, direction)
    except ValueError as exc:
        raise FormatError(p, f"invalid BRAINS2 mask geometry: {exc}") from None
    kind = DataKind.VOLUME if labelmap is False else DataKind.LABELMAP
    meta = {k: v for k, v in fields.items() if k in ("PATIENT_ID", "SCAN_ID", "NAME", "MASK_NAME", "MASK_THRESHOLD")}
    return [Volume(array, geometry, kind=kind, name=base_name(p), metadata={"brains2": meta} if meta else {},
                   source=os.fspath(p))]


def _decode(p: Path, codes: np.ndarray, width: int, array: np.ndarray) -> None:
    """Fill ``array`` (z, y, x) from the depth-first octree codes."""
    pos = 0
    n = codes.size
    # Stack of (code, child index, x0, y0, z0, half width) for branches being expanded.
    if n == 0:
        raise FormatError(p, "file is truncated: the octree has no branches")
    stack = [[int(codes[0]), 0, 0, 0, 0, width // 2]]
    pos = 1
    while stack:
        frame = stack[-1]
        code, child, x0, y0, z0, half = frame
        if child == 8:
            stack.pop()
            continue
        frame[1] = child + 1
        colour = (code >> (2 * child)) & 3
        cx = x0 + (child & 1) * half
        cy = y0 + ((child >> 1) & 1) * half
        cz = z0 + ((child >> 2) & 1) * half
        if colour == _BLACK:
            array[cz: cz + half, cy: cy + half, cx: cx + half] = _INSIDE
        elif colour == _GRAY:
            if half <= 1:
                raise FormatError(p, "corrupt octree: a branch below single voxels")
            if pos >= n:
                raise FormatError(p, "file is truncated: the octree ends early")
            stack.append([int(codes[pos]), 0, cx, cy, cz, half // 2])
            pos += 1
        elif colour != _WHITE:
            raise FormatError(p, "corrupt octree: invalid colour code 3")


def _encode(mask: np.ndarray, x0: int, y0: int, z0: int, width: int, out: list) -> int:
    """Colour of the cube at (x0, y0, z0); appends branch codes depth first for grey cubes."""
    region = mask[z0: z0 + width, y0: y0 + width, x0: x0 + width]
    if region.size == 0 or not region.any():
        return _WHITE
    if region.all():  # voxels beyond the volume edge read as outside anyway
        return _BLACK
    half = width // 2
    at = len(out)
    out.append(0)
    code = 0
    for child in range(8):
        colour = _encode(mask, x0 + (child & 1) * half, y0 + ((child >> 1) & 1) * half,
                         z0 + ((child >> 2) & 1) * half, half, out)
        code |= colour << (2 * child)
    out[at] = code
    return _GRAY


def write(volume: Volume, path: str | os.PathLike[str]) -> list[str]:
    """Write a binary BRAINS2 ``.mask`` (nonzero voxels inside), big-endian as ITK wrote it."""
    vol = as_volume(volume, path, "BRAINS2 mask")
    check_writable(vol, path, "BRAINS2 mask", ndims=(3,))
    if vol.dtype.kind not in "uib":
        raise MedioError(path, f"a BRAINS2 mask holds a binary mask, not {vol.dtype} voxels")
    mask = np.asarray(vol.array) != 0
    nz, ny, nx = mask.shape
    width = 1
    while width < max(nx, ny, nz):
        width *= 2
    depth = int(np.log2(width))
    codes: list[int] = []
    root = _encode(mask, 0, 0, 0, width, codes)
    g = vol.geometry
    d = g.direction
    name = re.sub(r"\s", "_", Path(path).name)
    lines = [
        "IPL_HEADER_BEGIN",
        "PATIENT_ID: 00000",
        "SCAN_ID: 00000",
        f"FILENAME: {name}",
        f"DATE: {time.strftime('%a_%b_%d_%H:%M:%S_%Y')}",
        "CREATOR: napari-medio",
        "PROGRAM: napari-medio",
        "MODULE: None",
        "VERSION: 1",
        f"NAME: {name}",
        "BYTE_ORDER: BIG_ENDIAN",
        "MASK_HEADER_BEGIN",
        "MASK_NUM_DIMS: 3",
        f"MASK_X_SIZE: {nx}",
        f"MASK_X_RESOLUTION: {float(g.spacing[0])!r}",
        f"MASK_Y_SIZE: {ny}",
        f"MASK_Y_RESOLUTION: {float(g.spacing[1])!r}",
        f"MASK_Z_SIZE: {nz}",
        f"MASK_Z_RESOLUTION: {float(g.spacing[2])!r}",
        "MASK_THRESHOLD: 0.0",
        "MASK_NAME: -1",
    ]
    for a, col in zip("XYZ", range(3)):
        lines += [f"DIR{a}{i}: {float(d[i, col])!r}" for i in range(3)]
    lines += [f"ORIGIN{i}: {float(g.origin[i])!r}" for i in range(3)]
    lines += ["MASK_HEADER_END", "IPL_HEADER_END"]
    header = ("\n".join(lines) + "\n").encode("ascii")
    octree = np.array([depth, width, nx, ny, nz, root], dtype=">u4").tobytes()
    body = np.array(codes, dtype=">u2").tobytes() if root == _GRAY else b""
    with atomic_output(path) as temp, open(temp, "wb") as fh:
        fh.write(header + octree + body)
    return [os.fspath(path)]


FORMAT = register(
    FileFormat(
        name=NAME,
        description="BRAINS2 binary mask (.mask, octree)",
        extensions=(".mask",),
        read=read,
        write=write,
        sniff=sniff,
        kinds=(DataKind.LABELMAP, DataKind.VOLUME),
        backend="napari-medio (hand-written)",
        read_options={"labelmap": "load as a label map (default; False gives a volume)"},
    )
)
