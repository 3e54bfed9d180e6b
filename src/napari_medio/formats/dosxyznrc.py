"""DOSXYZnrc 3D dose distributions (``.3ddose``, text), read by hand as SlicerRT does.

Layout (whitespace-separated numbers): the voxel counts ``nx ny nz``; the
``nx + 1``, ``ny + 1`` and ``nz + 1`` voxel boundaries along x, y, z in cm; the
``nx * ny * nz`` doses (x fastest); then the same number of relative errors.

Placement follows SlicerRT's DosxyzNrc3dDoseFileReader, so the dose lines up
with what Slicer shows: spacing is the first boundary step (cm -> mm) and the
first boundaries are taken as the RAS position of the first voxel with
Slicer's default RAS axes; in LPS that is direction ``diag(-1, -1, 1)`` and
origin ``(-x0, -y0, z0)``.  Uneven boundaries are not representable as a
regular grid; they are kept in metadata.  Doses are float32 like SlicerRT.

Reader options:
    ``scale`` (float, default 1.0): multiply the doses (SlicerRT's intensity
    scaling factor).
    ``errors`` (bool, default False): also return the relative error volume.
Reading only.
"""
from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np

from ..core.errors import FormatError, MedioError
from ..core.geometry import Geometry
from ..core.kinds import DataKind
from ..core.registry import FileFormat, register
from ..core.volume import Volume
from ._imageio import nonempty_file_size
from .naming import base_name

NAME = "dosxyznrc-3ddose"


def sniff(head: bytes, path: Path) -> bool:
    """Text: three positive voxel counts, then increasing boundary numbers."""
    if b"\0" in head:
        return False
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        return False
    tokens = text.split()
    if len(head) >= 4096 and tokens and not text[-1].isspace():
        tokens = tokens[:-1]  # the last token may be cut
    if len(tokens) < 5:
        return False
    try:
        counts = [int(t) for t in tokens[:3]]
        first = [float(t) for t in tokens[3: 3 + min(counts[0] + 1, len(tokens) - 3)]]
    except ValueError:
        return False
    if any(c < 1 for c in counts) or len(first) < 2:
        return False
    return all(b > a for a, b in itertools.pairwise(first))


def read(path: str | os.PathLike[str], *, scale: float = 1.0, errors: bool = False) -> list[Volume]:
    """Read a ``.3ddose`` file into a float32 dose volume (and optionally its error volume)."""
    p = Path(path)
    nonempty_file_size(p)
    try:
        values = np.array(p.read_bytes().split(), dtype=np.float64)
    except ValueError:
        raise FormatError(p, "not a DOSXYZnrc .3ddose file: non-numeric content") from None
    if values.size < 3:
        raise FormatError(p, "file is truncated: no voxel counts")
    nx, ny, nz = (int(v) for v in values[:3])
    if min(nx, ny, nz) < 1 or not np.all(values[:3] == np.floor(values[:3])):
        raise FormatError(p, f"invalid voxel counts {values[:3].tolist()}")
    count = nx * ny * nz
    needed = 3 + (nx + 1) + (ny + 1) + (nz + 1) + count
    if values.size < needed:
        raise FormatError(p, f"file is truncated: {needed} numbers expected, {values.size} present")
    pos = 3
    bounds = []
    for n in (nx, ny, nz):
        b = values[pos: pos + n + 1] * 10.0  # cm -> mm
        pos += n + 1
        if np.any(np.diff(b) <= 0):
            raise FormatError(p, "voxel boundaries must increase")
        bounds.append(b)
    spacing = [float(b[1] - b[0]) for b in bounds]
    even = all(np.allclose(np.diff(b), s, rtol=0, atol=1e-4) for b, s in zip(bounds, spacing))
    dose = (values[pos: pos + count] * float(scale)).astype(np.float32).reshape(nz, ny, nx)
    pos += count
    geometry = Geometry(spacing, [-bounds[0][0], -bounds[1][0], bounds[2][0]], np.diag([-1.0, -1.0, 1.0]))
    meta: dict = {"dose_scale": float(scale)}
    if not even:
        meta["boundaries_mm"] = [b.tolist() for b in bounds]
    out = [Volume(dose, geometry, name=base_name(p), metadata={"3ddose": meta}, source=os.fspath(p))]
    if errors:
        if values.size < pos + count:
            raise MedioError(p, "the file has no relative error block")
        err = values[pos: pos + count].astype(np.float32).reshape(nz, ny, nx)
        out.append(Volume(err, geometry, name=base_name(p) + "_error", metadata={"3ddose": {"relative_error": True}},
                          source=os.fspath(p)))
    return out


FORMAT = register(
    FileFormat(
        name=NAME,
        description="DOSXYZnrc 3D dose (.3ddose)",
        extensions=(".3ddose",),
        read=read,
        sniff=sniff,
        kinds=(DataKind.VOLUME,),
        backend="napari-medio (hand-written)",
        read_options={"scale": "dose scaling factor (default 1.0)",
                      "errors": "also return the relative error volume (default False)"},
    )
)
