"""Vista cone beam optical CT volumes (``.vff``), read by hand as SlicerRT's VffFileReader does.

The file is Sun's "vff" raster: ``ncaa`` on the first line, then
``key=value;`` parameters (``rank=3; type=raster; format=slice; bits=32;
bands=1; size=X Y Z; spacing=...; origin=...; rawsize=...; data_scale=...;
data_offset=...; title=...; date=...``), a form feed and a line feed, then the
voxels big-endian, x fastest.

Placement follows SlicerRT exactly (so a scene that references the file lines
up): the spacing is used as is and the origin as a RAS position with the i and
j axes running towards -R and -A; in LPS that is an identity direction with
origin ``(-x0, -y0, z0)``.  Voxels: 32-bit float (what the scanner writes and
SlicerRT reads), also 8-bit unsigned and 16-bit signed.

Reader options:
    ``labelmap`` (bool | None).
    ``rescale`` (bool, default False): apply ``data_scale`` and ``data_offset``
    from the header (SlicerRT's "use image intensity scale and offset"); only
    for float volumes, which stay float32.
Reading only.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..core.errors import FormatError, MedioError
from ..core.geometry import Geometry
from ..core.kinds import DataKind
from ..core.registry import FileFormat, register
from ..core.volume import Volume
from ._imageio import LABELMAP_OPTION, header_numbers, nonempty_file_size, require_bytes, volume_kind
from .naming import base_name

NAME = "vff"

_DTYPES = {8: ">u1", 16: ">i2", 32: ">f4"}


def sniff(head: bytes, path: Path) -> bool:
    """``ncaa`` first line followed by ``key=value;`` parameters."""
    if not head.startswith(b"ncaa"):
        return False
    rest = head[4:].split(b"\f", 1)[0]
    return b"=" in rest and b";" in rest and b"\0" not in rest


def _header(p: Path, data: bytes) -> tuple[dict, int]:
    end = data.find(b"\f")
    if end < 0:
        raise FormatError(p, "VFF header has no form feed before the voxels (truncated or not a VFF file)")
    text = data[:end].decode("latin-1")
    text = text.removeprefix("ncaa")  # the magic line
    text = text.replace("\n", "").replace("\r", "")
    params: dict[str, str] = {}
    for item in text.split(";"):
        key, sep, value = item.strip().partition("=")
        if sep:
            params[key.strip().lower()] = value.strip()
    start = end + 1
    if data[start: start + 1] == b"\n":
        start += 1
    return params, start


def _required(p: Path, params: dict, key: str, n: int, cast: type) -> list:
    values = header_numbers(p, params, key, n, cast, "VFF")
    if values is None:
        raise FormatError(p, f"VFF header has no {key}")
    return values


def read(path: str | os.PathLike[str], *, labelmap: bool | None = None, rescale: bool = False) -> list[Volume]:
    """Read a ``.vff`` optical CT volume."""
    p = Path(path)
    size = nonempty_file_size(p)
    with open(p, "rb") as fh:
        head = fh.read(1 << 16)
    if not sniff(head, p):
        raise FormatError(p, "not a VFF file (no ncaa header)")
    params, start = _header(p, head)
    if params.get("rank", "3").strip() != "3":
        raise FormatError(p, f"VFF rank {params.get('rank')} is not supported (3 only)")
    for key, want in (("type", "raster"), ("format", "slice")):
        if params.get(key, want).lower() != want:
            raise FormatError(p, f"VFF {key} {params[key]!r} is not supported ({want} only)")
    bits = _required(p, params, "bits", 1, int)[0]
    bands = (header_numbers(p, params, "bands", 1, int, "VFF") or [1])[0]
    if bits not in _DTYPES or bands != 1:
        raise FormatError(p, f"VFF with {bits} bits and {bands} bands is not supported")
    dims = _required(p, params, "size", 3, int)
    if any(d < 1 for d in dims):
        raise FormatError(p, f"invalid VFF size {dims}")
    spacing = header_numbers(p, params, "spacing", 3, float, "VFF") or [1.0, 1.0, 1.0]
    spacing = [s if s > 0 else 1.0 for s in spacing]
    origin = header_numbers(p, params, "origin", 3, float, "VFF") or [0.0, 0.0, 0.0]
    dtype = np.dtype(_DTYPES[bits])
    count = dims[0] * dims[1] * dims[2]
    require_bytes(p, start + count * dtype.itemsize, size)
    array = np.fromfile(p, dtype=dtype, count=count, offset=start).astype(dtype.newbyteorder("="), copy=False)
    array = array.reshape(dims[2], dims[1], dims[0])
    meta = {k: params[k] for k in ("title", "date", "filter", "data_scale", "data_offset", "rawsize") if k in params}
    if rescale:
        if dtype.kind != "f":
            raise MedioError(p, "rescale=True applies to float VFF volumes only")
        scale = (header_numbers(p, params, "data_scale", 1, float, "VFF") or [1.0])[0]
        offset = (header_numbers(p, params, "data_offset", 1, float, "VFF") or [0.0])[0]
        array = (array * np.float32(scale) + np.float32(offset)).astype(np.float32, copy=False)
    geometry = Geometry(spacing, [-origin[0], -origin[1], origin[2]], np.eye(3))
    vol = Volume(array, geometry, name=base_name(p), metadata={"vff": meta} if meta else {}, source=os.fspath(p))
    vol.kind = volume_kind(p, labelmap, vol.dtype)
    return [vol]


FORMAT = register(
    FileFormat(
        name=NAME,
        description="Vista cone beam optical scanner volume (.vff)",
        extensions=(".vff",),
        read=read,
        sniff=sniff,
        kinds=(DataKind.VOLUME, DataKind.LABELMAP),
        backend="napari-medio (hand-written)",
        read_options={"labelmap": LABELMAP_OPTION,
                      "rescale": "apply data_scale / data_offset from the header (default False)"},
    )
)
