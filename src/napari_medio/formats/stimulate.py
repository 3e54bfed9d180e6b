"""Stimulate (``.spr`` text header + ``.sdt`` raw data), read and written by hand.

Why not SimpleITK's StimulateImageIO: in ITK 5.4 it reads ``LWORD`` (int32) as
16-bit (it tests for "WORD" first), writes 8-bit images with an empty
``dataType``, writes ``double`` voxels under the ``COMPLEX`` type, stores the
absolute path of the data file in the header, and fails to find the data file
of a header given by a bare relative name.  The format itself is tiny (Stimulate
User's Guide, appendix "Sdt File Format"): one ``attribute: value`` per line;
``numDim``, ``dim`` and ``dataType`` are mandatory; ``origin`` is the centre of
the first voxel, ``interval`` the voxel spacing, ``fov = interval * dim``; the
data are big-endian unless ``endian: ieee-le``.

Types: ``BYTE`` uint8, ``WORD`` int16, ``LWORD`` int32, ``REAL`` float32,
``COMPLEX`` two float32 per voxel (returned as a 2-component vector volume:
real, imaginary).  2D to 4D (the 4th axis becomes a leading extra axis).  No
axis directions: identity on reading; writing a rotated volume raises unless
``allow_direction_loss=True``.

Reader options: ``labelmap`` (bool | None).
Writer options: ``allow_direction_loss`` (bool, default False).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ..core.errors import FormatError, MedioError
from ..core.geometry import Geometry
from ..core.kinds import DataKind
from ..core.registry import FileFormat, register
from ..core.volume import AxisInfo, Volume
from ._imageio import (
    DIRECTION_LOSS_OPTION,
    LABELMAP_OPTION,
    as_volume,
    check_direction,
    check_writable,
    file_size,
    header_numbers,
    nonempty_file_size,
    require_bytes,
    sidecar,
    volume_kind,
    write_files_atomically,
)
from .naming import base_name

NAME = "stimulate"

_TYPES = {"BYTE": np.uint8, "WORD": np.int16, "LWORD": np.int32, "REAL": np.float32, "COMPLEX": np.float32}
_TYPE_OF = {np.dtype(np.uint8): "BYTE", np.dtype(np.int16): "WORD", np.dtype(np.int32): "LWORD",
            np.dtype(np.float32): "REAL"}
_LINE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_]*)\s*:\s*(.*?)\s*$")


def _parse(text: str) -> dict | None:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        m = _LINE.match(line)
        if not m:
            return None
        fields[m.group(1)] = m.group(2)
    return fields


def sniff(head: bytes, path: Path) -> bool:
    """A text header of ``attribute: value`` lines with numDim, dim and dataType."""
    if b"\0" in head:
        return False
    text = head.decode("latin-1")
    if len(head) >= 4096:
        text = text[: text.rfind("\n") + 1]
    fields = _parse(text)
    return bool(fields) and {"numDim", "dim", "dataType"} <= set(fields) and \
        fields["dataType"].strip().upper() in _TYPES


def read(path: str | os.PathLike[str], *, labelmap: bool | None = None) -> list[Volume]:
    """Read a ``.spr`` header and its ``.sdt`` data into one Volume."""
    p = Path(path)
    nonempty_file_size(p)
    if file_size(p) > 1 << 20:
        raise FormatError(p, "not a Stimulate header (too large)")
    text = p.read_bytes().decode("latin-1")
    fields = _parse(text)
    if not fields or "dim" not in fields or "dataType" not in fields:
        raise FormatError(p, "not a Stimulate header (needs numDim, dim and dataType lines)")
    try:
        ndim = int(fields.get("numDim", "0").split()[0])
    except (ValueError, IndexError):
        raise FormatError(p, "Stimulate numDim is not a number") from None
    if ndim not in (2, 3, 4):
        raise FormatError(p, f"Stimulate numDim {ndim} is not supported (2 to 4)")
    dims = header_numbers(p, fields, "dim", ndim, int, "Stimulate")
    if any(d < 1 for d in dims):
        raise FormatError(p, f"invalid Stimulate dimensions {dims}")
    dtype_name = fields["dataType"].split()[0].upper() if fields["dataType"].split() else ""
    if dtype_name not in _TYPES:
        raise FormatError(p, f"unknown Stimulate dataType {fields['dataType']!r}")
    spacing = header_numbers(p, fields, "interval", ndim, float, "Stimulate")
    fov = header_numbers(p, fields, "fov", ndim, float, "Stimulate")
    origin = header_numbers(p, fields, "origin", ndim, float, "Stimulate")
    if spacing is None:
        spacing = [f / d for f, d in zip(fov, dims)] if fov else [1.0] * ndim
    if origin is None:
        origin = [(s - f) / 2.0 for s, f in zip(spacing, fov)] if fov else [0.0] * ndim
    little = "ieee-le" in fields.get("endian", "").lower()
    dt = np.dtype(_TYPES[dtype_name]).newbyteorder("<" if little else ">")
    ncomp = 2 if dtype_name == "COMPLEX" else 1
    data_name = fields.get("stimFileName", "").strip()
    candidates = [sidecar(p, data_name)] if data_name else []
    # A header moved with its data: the data file beside it, as named or by the header's name.
    if data_name:
        candidates.append(p.parent / Path(data_name).name)
    candidates += [p.with_name(p.name + ".sdt"), p.with_suffix(".sdt")]
    data_path = next((c for c in candidates if c.is_file()), None)
    if data_path is None:
        raise FormatError(p, f"Stimulate data file {data_name or p.with_suffix('.sdt').name} is missing")
    count = int(np.prod(dims, dtype=np.int64)) * ncomp
    require_bytes(p, count * dt.itemsize, file_size(data_path), f"voxel data in {data_path.name}")
    flat = np.fromfile(data_path, dtype=dt, count=count)
    shape = tuple(reversed(dims)) + ((2,) if ncomp == 2 else ())
    array = flat.reshape(shape).astype(dt.newbyteorder("="), copy=False)
    extra = []
    if ndim == 4:
        extra = [AxisInfo(name="time", kind="time",
                          values=(origin[3] + spacing[3] * np.arange(dims[3])).tolist())]
    nsp = min(ndim, 3)
    geometry = Geometry(spacing[:nsp], origin[:nsp], np.eye(nsp))
    components = AxisInfo(name="complex", kind="complex") if ncomp == 2 else None
    meta = {k: v for k, v in fields.items() if k in ("displayRange", "fidName", "sdtOrient", "mapTypeName")}
    vol = Volume(array, geometry, name=base_name(p), extra_axes=extra, components=components,
                 metadata={"stimulate": meta} if meta else {}, source=os.fspath(p))
    vol.kind = volume_kind(p, labelmap, vol.dtype, vol.n_components)
    return [vol]


def _fmt(values) -> str:
    return " ".join(repr(float(v)) for v in values)


def write(volume: Volume, path: str | os.PathLike[str], *, allow_direction_loss: bool = False) -> list[str]:
    """Write ``name.spr`` + ``name.sdt`` (big-endian, as Stimulate writes)."""
    vol = as_volume(volume, path, "Stimulate")
    p = Path(path)
    complex_ = vol.components is not None and vol.components.kind == "complex" and vol.n_components == 2
    check_writable(vol, p, "Stimulate", dtypes=tuple(_TYPE_OF), max_extra_axes=1,
                   components=(1, 2) if complex_ else (1,), component_dtypes=(np.float32,))
    check_direction(vol, p, "Stimulate", allow_direction_loss)
    g = vol.geometry
    if vol.extra_axes and g.ndim != 3:
        raise MedioError(p, "Stimulate 4D images need three spatial axes")
    shape = vol.spatial_shape
    dims = list(reversed(shape))
    spacing = list(g.spacing)
    origin = list(g.origin)
    if vol.extra_axes:
        dims.append(vol.shape[0])
        values = vol.extra_axes[0].values or []
        try:
            t0 = float(values[0]) if values else 0.0
            dt_ = float(values[1]) - float(values[0]) if len(values) > 1 else 1.0
        except (TypeError, ValueError):
            t0, dt_ = 0.0, 1.0
        spacing.append(dt_ if dt_ > 0 else 1.0)
        origin.append(t0)
    type_name = "COMPLEX" if complex_ else _TYPE_OF[vol.dtype]
    sdt_name = p.with_suffix(".sdt").name
    header = (
        f"numDim: {len(dims)}\n"
        f"dim: {' '.join(str(int(d)) for d in dims)}\n"
        f"origin: {_fmt(origin)}\n"
        f"fov: {_fmt(s * d for s, d in zip(spacing, dims))}\n"
        f"interval: {_fmt(spacing)}\n"
        f"dataType: {type_name}\n"
        f"stimFileName: {sdt_name}\n"
    )
    array = np.asarray(vol.array)
    big = array.astype(array.dtype.newbyteorder(">"), copy=False)

    def produce(folder: Path) -> None:
        (folder / p.name).write_text(header, encoding="ascii")
        with open(folder / sdt_name, "wb") as fh:
            np.ascontiguousarray(big).tofile(fh)

    return write_files_atomically(p, produce)


FORMAT = register(
    FileFormat(
        name=NAME,
        description="Stimulate (.spr header + .sdt data)",
        extensions=(".spr",),
        read=read,
        write=write,
        sniff=sniff,
        kinds=(DataKind.VOLUME, DataKind.LABELMAP),
        backend="napari-medio (hand-written)",
        read_options={"labelmap": LABELMAP_OPTION},
        write_options={"allow_direction_loss": DIRECTION_LOSS_OPTION},
    )
)
