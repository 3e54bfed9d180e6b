"""Raster pictures: TIFF (tifffile), PNG, JPEG and Windows bitmap (SimpleITK).

Slicer's page: TIFF "can read/write single/series of frames", PNG and JPEG "can
read single/series of frames, can write a single frame", BMP "can read
single/series of frames".  Here:

* **TIFF** (``.tif``, ``.tiff``) is read and written with ``tifffile`` (every
  voxel type, BigTIFF, compression, multi-page = 3D).  Spacing follows ITK
  (and so Slicer): the resolution tags give ``25.4 / XResolution`` mm per pixel
  for inches, ``10 / XResolution`` for centimetres, 1 mm otherwise; the page
  axis has spacing 1 mm.  Files written by napari-medio also carry the exact
  geometry (spacing, origin, direction), kind and axes as JSON in the
  ImageDescription, so they round-trip exactly; other software sees ordinary
  (multi-page) TIFF with resolution tags.
* **PNG** (8/16-bit gray, gray+alpha, RGB, RGBA; spacing kept through ITK; gray+alpha,
  which SimpleITK cannot read, is read through Pillow when installed),
  **JPEG** (8-bit gray or RGB; lossy) and **BMP** (8-bit gray or RGB; an 8-bit
  gray bitmap is returned as one channel, not ITK's RGB) go through SimpleITK.
* 3-/4-channel 8-bit pictures become colour volumes (``components.kind`` is
  ``"RGB-color"`` / ``"RGBA-color"``, so ``Volume.is_rgb``).

Reader options:
    ``labelmap`` (bool | None): as for every volume reader.
    ``series`` (bool, default False): when the file name ends in a number
    (``slice_001.png``), stack every sibling with the same name pattern, in
    numeric order, into one 3D volume (see :func:`read_series`).
Writer options:
    ``series`` (bool): write a 3D volume as one file per slice,
    ``name_000.ext``, ``name_001.ext``, ... (PNG, JPEG and BMP write 2D frames
    only, so a 3D volume needs ``series=True``; TIFF writes 3D as one
    multi-page file by default).
    ``compress`` (TIFF, bool, default False): deflate-compress the strips.
    ``quality`` (JPEG, 1-100, default 95).
    ``allow_direction_loss`` (PNG, JPEG, BMP; bool, default False): these
    cannot store axis directions, so writing a volume whose direction is not the
    identity raises unless this is set.  Their origin is not stored either (nor
    spacing for JPEG and BMP): pictures are read back at the origin.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import FormatError, MedioError
from ..core.fileio import atomic_output, atomic_outputs
from ..core.geometry import Geometry
from ..core.jsonvalue import json_default
from ..core.kinds import VOLUME_KINDS, DataKind
from ..core.registry import FileFormat, register
from ..core.volume import AxisInfo, Volume
from ._imageio import (
    DIRECTION_LOSS_OPTION,
    LABELMAP_OPTION,
    as_volume,
    check_direction,
    check_writable,
    file_size,
    nonempty_file_size,
    read_sitk,
    sitk_write_into,
    stack_frames,
    volume_kind,
    write_files_atomically,
)
from .naming import base_name, numbered_names, numbered_siblings

__all__ = ["component_axis", "read_bmp", "read_jpeg", "read_png", "read_series", "read_tiff"]

_JSON_KEY = "napari_medio"


# -- sniffing --------------------------------------------------------------------------------
def sniff_tiff(head: bytes, path: Path) -> bool:
    """Classic or BigTIFF header, little- or big-endian."""
    return head[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+") and len(head) >= 8


def sniff_png(head: bytes, path: Path) -> bool:
    """PNG signature followed by the IHDR chunk."""
    return head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR"


def sniff_jpeg(head: bytes, path: Path) -> bool:
    """JPEG start-of-image marker followed by another marker."""
    return len(head) >= 4 and head[:3] == b"\xff\xd8\xff" and head[3] not in (0x00, 0xFF)


def sniff_bmp(head: bytes, path: Path) -> bool:
    """``BM`` with zero reserved fields, a known info-header size and a data offset inside the header."""
    if len(head) < 30 or head[:2] != b"BM":
        return False
    reserved = int.from_bytes(head[6:10], "little")
    offset = int.from_bytes(head[10:14], "little")
    info = int.from_bytes(head[14:18], "little")
    planes = int.from_bytes(head[26:28], "little")
    return reserved == 0 and info in (12, 40, 52, 56, 64, 108, 124) and 14 + info <= offset and planes == 1


# -- common ----------------------------------------------------------------------------------
def component_axis(n: int, dtype: np.dtype, rgb_capable: bool) -> AxisInfo | None:
    """The components axis of ``n``-component pixels: None for one, RGB(A) for 3/4 uint8 when allowed, else vector."""
    if n == 1:
        return None
    if rgb_capable and dtype == np.uint8 and n in (3, 4):
        return AxisInfo(name="component", kind="RGB-color" if n == 3 else "RGBA-color")
    return AxisInfo(name="component", kind="vector")


def _finish(vol: Volume, path: Path, labelmap: bool | None) -> Volume:
    stored_labelmap = vol.kind == DataKind.LABELMAP  # a TIFF napari-medio wrote says so itself
    vol.kind = volume_kind(path, True if (labelmap is None and stored_labelmap) else labelmap,
                           vol.dtype, vol.n_components)
    vol.name = vol.name or base_name(path)
    return vol


# -- TIFF ------------------------------------------------------------------------------------
def _tiff_spacing(page) -> tuple[float, float]:
    """ITK's reading of the resolution tags (mm per pixel)."""
    tags = page.tags

    def res(tag: str) -> float:
        t = tags.get(tag)
        if t is None:
            return 0.0
        v = t.value
        try:
            return float(v[0]) / float(v[1]) if isinstance(v, tuple) else float(v)
        except (ZeroDivisionError, TypeError, ValueError, IndexError):
            return 0.0

    unit_tag = tags.get("ResolutionUnit")
    unit = int(unit_tag.value) if unit_tag is not None else 2
    factor = {2: 25.4, 3: 10.0}.get(unit)
    xr, yr = res("XResolution"), res("YResolution")
    sx = factor / xr if factor and xr > 0 else 1.0
    sy = factor / yr if factor and yr > 0 else 1.0
    return sx, sy


def _check_ifd_chain(path: Path) -> None:
    """Follow the chain of image directories: a truncated multi-page TIFF loses its last pages
    silently in most readers, so refuse a chain that points beyond the end of the file."""
    import struct

    with open(path, "rb") as fh:
        head = fh.read(16)
        if len(head) < 8:
            raise FormatError(path, "file is truncated: incomplete TIFF header")
        order = "<" if head[:2] == b"II" else ">"
        big = struct.unpack(order + "H", head[2:4])[0] == 43
        size = os.fstat(fh.fileno()).st_size
        if big:
            if len(head) < 16:
                raise FormatError(path, "file is truncated: incomplete BigTIFF header")
            offset = struct.unpack(order + "Q", head[8:16])[0]
            count_fmt, entry, next_fmt = order + "Q", 20, order + "Q"
        else:
            offset = struct.unpack(order + "I", head[4:8])[0]
            count_fmt, entry, next_fmt = order + "H", 12, order + "I"
        count_size, next_size = struct.calcsize(count_fmt), struct.calcsize(next_fmt)
        seen: set[int] = set()
        while offset:
            if offset in seen or len(seen) > 10_000_000:
                raise FormatError(path, "corrupt TIFF: the image directories form a loop")
            seen.add(offset)
            if offset + count_size > size:
                raise FormatError(path, "file is truncated: an image directory lies beyond the end of the file")
            fh.seek(offset)
            n = struct.unpack(count_fmt, fh.read(count_size))[0]
            end = offset + count_size + n * entry + next_size
            if end > size:
                raise FormatError(path, "file is truncated: an image directory lies beyond the end of the file")
            fh.seek(end - next_size)
            offset = struct.unpack(next_fmt, fh.read(next_size))[0]


def _check_tiff_data(tif, path: Path) -> None:
    size = file_size(path)
    for page in tif.pages:
        offsets = getattr(page, "dataoffsets", ()) or ()
        counts = getattr(page, "databytecounts", ()) or ()
        for off, cnt in zip(offsets, counts):
            if off + cnt > size:
                raise FormatError(path, f"file is truncated: TIFF image data ends at byte {off + cnt}, "
                                        f"the file has {size}")
        if not offsets or not any(counts):
            raise FormatError(path, "TIFF page has no image data")


def _medio_json(tif) -> dict | None:
    try:
        shaped = tif.shaped_metadata
    except Exception:  # noqa: BLE001 - malformed descriptions are just ignored
        return None
    if shaped and isinstance(shaped[0], dict) and isinstance(shaped[0].get(_JSON_KEY), dict):
        return shaped[0][_JSON_KEY]
    return None


def _volume_from_json(array: np.ndarray, info: dict, path: Path) -> Volume | None:
    """A Volume from napari-medio's JSON block, or None when it does not fit the array."""
    try:
        geometry = Geometry.from_dict(info["geometry"])
        extra = [AxisInfo(**a) for a in info.get("extra_axes", [])]
        comp = AxisInfo(**info["components"]) if info.get("components") else None
        kind = info.get("kind", DataKind.VOLUME)
        if kind not in VOLUME_KINDS:
            kind = DataKind.VOLUME
        return Volume(array, geometry, kind=kind, name=base_name(path), extra_axes=extra, components=comp,
                      source=os.fspath(path))
    except (KeyError, TypeError, ValueError):
        return None


def _tiff_volume(path: Path) -> Volume:
    import tifffile

    _check_ifd_chain(path)
    try:
        tif = tifffile.TiffFile(path)
    except Exception as exc:  # noqa: BLE001 - tifffile raises many kinds
        raise FormatError(path, f"not a readable TIFF file: {exc}") from None
    with tif:
        if not tif.pages or not tif.series:
            raise FormatError(path, "TIFF file has no images")
        _check_tiff_data(tif, path)
        info = _medio_json(tif)
        series = tif.series[0]
        try:
            array = series.asarray()
        except Exception as exc:  # noqa: BLE001
            raise FormatError(path, f"cannot decode TIFF image data: {exc}") from None
        axes = series.axes
        first = tif.pages[0]
        spacing = _tiff_spacing(first)
        imagej = tif.imagej_metadata
    if info is not None and info.get("series_index") is None:
        vol = _volume_from_json(array, info, path)
        if vol is not None:
            return vol
    # Plain TIFF: samples last become components, the last two axes are Y X, and the
    # remaining axes are pages (Z for a single one; extra axes before it otherwise).
    components = None
    if axes.endswith("S") and array.shape[-1] > 1:
        components = component_axis(array.shape[-1], array.dtype, True)
    elif axes.endswith("S"):
        array = array[..., 0]
        axes = axes[:-1]
    spatial_end = array.ndim - (1 if components is not None else 0)
    lead = spatial_end - 2
    # Drop singleton leading axes so a one-page file is 2D.
    squeeze = tuple(i for i in range(lead) if array.shape[i] == 1)
    if squeeze:
        array = array.squeeze(axis=squeeze)
        lead -= len(squeeze)
        axes = "".join(a for i, a in enumerate(axes) if i not in squeeze)
    metadata: dict = {}
    if imagej:
        metadata["imagej"] = {k: v for k, v in imagej.items() if isinstance(v, (int, float, str, bool))}
    if lead == 0:
        geometry = Geometry([spacing[0], spacing[1]], [0.0, 0.0], np.eye(2))
        extra = []
    else:
        geometry = Geometry([spacing[0], spacing[1], 1.0], [0.0, 0.0, 0.0], np.eye(3))
        names = {"T": ("time", "time"), "C": ("channel", "list"), "Z": ("z", "list")}
        extra = [AxisInfo(name=names.get(a, (a.lower(), "list"))[0], kind=names.get(a, ("", "list"))[1])
                 for a in axes[: lead - 1]]
    if info is not None and isinstance(info.get("series_index"), int):
        metadata["series_index"] = info["series_index"]  # one frame of a series napari-medio wrote
    return Volume(array, geometry, name=base_name(path), extra_axes=extra, components=components,
                  metadata=metadata, source=os.fspath(path))


def read_tiff(path: str | os.PathLike[str], *, labelmap: bool | None = None,
              series: bool = False) -> list[Volume]:
    """Read a TIFF (multi-page = 3D) or, with ``series=True``, its numbered siblings."""
    p = Path(path)
    if series:
        return [read_series(numbered_siblings(p), labelmap=labelmap)]
    return [_finish(_tiff_volume(p), p, labelmap)]


def _tiff_description(vol: Volume, **extra: Any) -> dict:
    block = {
        "geometry": vol.geometry.to_dict(),
        "kind": vol.kind,
        "extra_axes": [a.to_dict() for a in vol.extra_axes],
        "components": vol.components.to_dict() if vol.components is not None else None,
    }
    block.update(extra)
    return json.loads(json.dumps({_JSON_KEY: block}, default=json_default))


def _tiff_write_one(filename: Path, array: np.ndarray, vol: Volume, description: dict, compress: bool,
                    spacing: Sequence[float]) -> None:
    import tifffile

    kwargs: dict = {}
    if vol.components is not None:
        if vol.is_rgb:
            kwargs["photometric"] = "rgb"
            if vol.n_components == 4:
                kwargs["extrasamples"] = ("unassalpha",)
        else:
            kwargs["photometric"] = "minisblack"
            kwargs["extrasamples"] = ("unspecified",) * (vol.n_components - 1)
        kwargs["planarconfig"] = "contig"
    else:
        kwargs["photometric"] = "minisblack"
    if compress:
        kwargs["compression"] = "zlib"
    # ITK reads 10 / XResolution mm per pixel for centimetre units.
    kwargs["resolution"] = (10.0 / float(spacing[0]), 10.0 / float(spacing[1]))
    kwargs["resolutionunit"] = "CENTIMETER"
    bigtiff = array.nbytes > 2**32 - 2**25
    tifffile.imwrite(filename, array, bigtiff=bigtiff, metadata=description, **kwargs)


def write_tiff(volume: Volume, path: str | os.PathLike[str], *, series: bool = False,
               compress: bool = False) -> list[str]:
    """Write a TIFF (3D: multi-page; ``series=True``: one file per slice)."""
    vol = as_volume(volume, path, "TIFF")
    if vol.dtype == np.bool_ or vol.dtype.kind not in "uif":
        raise MedioError(path, f"TIFF cannot hold {vol.dtype} voxels")
    array = np.asarray(vol.array)
    spacing = vol.geometry.spacing
    if not series:
        with atomic_output(path) as temp:
            _tiff_write_one(temp, array, vol, _tiff_description(vol), compress, spacing)
        return [os.fspath(path)]
    if vol.geometry.ndim != 3 or vol.extra_axes:
        raise MedioError(path, "a TIFF series is written from a 3D volume without extra axes")
    names = numbered_names(path, array.shape[0])
    with atomic_outputs(names) as temps:
        for k, temp in enumerate(temps):
            desc = _tiff_description(vol, series_index=k, series_count=len(names))
            _tiff_write_one(temp, array[k], vol, desc, compress, spacing)
    return [os.fspath(n) for n in names]


# -- PNG / JPEG / BMP (SimpleITK) --------------------------------------------------------------
def _check_png(path: Path) -> None:
    with open(path, "rb") as fh:
        data = fh.read()
    if b"IEND" not in data:
        raise FormatError(path, "file is truncated: PNG has no IEND chunk")


def _check_jpeg(path: Path) -> None:
    """Walk the JPEG segments to the scan and require an end-of-image marker after it."""
    with open(path, "rb") as fh:
        data = fh.read()
    pos = 2
    n = len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            raise FormatError(path, "corrupt JPEG: bad segment marker")
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2: pos + 4], "big")
        if length < 2:
            raise FormatError(path, "corrupt JPEG: bad segment length")
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            if data.find(b"\xff\xd9", pos + 2 + length) < 0:
                raise FormatError(path, "file is truncated: JPEG has no end-of-image marker")
            return
        pos += 2 + length
    raise FormatError(path, "file is truncated: JPEG ends before its image data")


def _bmp_compression(path: Path) -> int:
    """The compression field of a BMP's info header (0 for the old 12-byte header)."""
    with open(path, "rb") as fh:
        head = fh.read(34)
    if len(head) < 34 or int.from_bytes(head[14:18], "little") == 12:
        return 0
    return int.from_bytes(head[30:34], "little")


def _check_picture_pixels(path: Path) -> None:
    """Refuse a picture whose declared size exceeds Pillow's decompression-bomb limit
    (``PIL.Image.MAX_IMAGE_PIXELS``; raise it to read larger pictures), before any pixel is decoded."""
    import warnings

    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow comes with napari
        return
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(path):
                pass
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise FormatError(path, f"picture is too large to decode safely: {exc}") from None
        except Exception:  # noqa: BLE001 - other header problems are left to the reader's own checks
            return


def _check_bmp(path: Path) -> None:
    with open(path, "rb") as fh:
        head = fh.read(64)
    if len(head) < 30:
        raise FormatError(path, "file is truncated: incomplete BMP header")
    offset = int.from_bytes(head[10:14], "little")
    info = int.from_bytes(head[14:18], "little")
    if info == 12:
        width = int.from_bytes(head[18:20], "little")
        height = int.from_bytes(head[20:22], "little")
        bpp = int.from_bytes(head[24:26], "little")
        compression = 0
    else:
        width = int.from_bytes(head[18:22], "little", signed=True)
        height = abs(int.from_bytes(head[22:26], "little", signed=True))
        bpp = int.from_bytes(head[28:30], "little")
        compression = int.from_bytes(head[30:34], "little") if len(head) >= 34 else 0
    if width <= 0 or height <= 0 or bpp not in (1, 4, 8, 16, 24, 32):
        raise FormatError(path, f"corrupt BMP header (size {width}x{height}, {bpp} bits per pixel)")
    if compression in (0, 3, 6):  # uncompressed rows, 4-byte aligned
        row = ((width * bpp + 31) // 32) * 4
        needed = offset + row * height
        size = file_size(path)
        if size < needed:
            raise FormatError(path, f"file is truncated: BMP pixel data needs {needed} bytes, only {size} present")


def _bmp_is_gray_palette(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(54 + 1024)
    info = int.from_bytes(head[14:18], "little")
    if info == 12:
        return False
    bpp = int.from_bytes(head[28:30], "little")
    if bpp != 8:
        return False
    ncolors = int.from_bytes(head[46:50], "little") or 256
    table = head[14 + info: 14 + info + 4 * ncolors]
    return all(table[4 * i] == table[4 * i + 1] == table[4 * i + 2] == i for i in range(len(table) // 4))


def _pillow_frame(path: Path, reason: str) -> Volume:
    """Pictures SimpleITK cannot read (gray + alpha PNG) through Pillow, when it is installed."""
    try:
        from PIL import Image
    except ImportError:
        raise FormatError(path, reason + " (install Pillow to read gray+alpha pictures)") from None
    try:
        with Image.open(path) as im:
            im.load()
            array = _pillow_array(im)
            dpi = im.info.get("dpi")
    except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds
        raise FormatError(path, f"cannot decode picture: {exc}") from None
    spacing = _png_scal(path) or [25.4 / float(d) if d and float(d) > 0 else 1.0 for d in (dpi or (0, 0))][:2]
    comps = component_axis(array.shape[-1], array.dtype, True) if array.ndim == 3 else None
    return Volume(array, Geometry(spacing, [0.0, 0.0], np.eye(2)), name=base_name(path), components=comps,
                  source=os.fspath(path))


def _pillow_array(im: Any) -> np.ndarray:
    """Pixels of a Pillow image; a palette image as RGB, or gray when its palette is gray."""
    if im.mode != "P":
        return np.asarray(im)
    rgb = np.asarray(im.convert("RGB"))
    return np.ascontiguousarray(rgb[..., 0]) if (rgb == rgb[..., :1]).all() else rgb


def _png_scal(path: Path) -> list[float] | None:
    """Pixel size from a PNG ``sCAL`` chunk, read as ITK does (the values are the spacing)."""
    with open(path, "rb") as fh:
        data = fh.read(1 << 16)
    at = data.find(b"sCAL")
    if at < 4:
        return None
    n = int.from_bytes(data[at - 4: at], "big")
    parts = data[at + 5: at + 4 + n].split(b"\0")
    try:
        values = [float(v) for v in parts[:2]]
    except ValueError:
        return None
    return values if len(values) == 2 and all(v > 0 for v in values) else None


def _sitk_frame(path: Path, imageio: str, check) -> Volume:
    nonempty_file_size(path)
    check(path)
    _check_picture_pixels(path)
    if imageio == "BMPImageIO" and _bmp_compression(path) in (1, 2):
        # ITK's run-length decoder trusts the data (raw rows marked RLE overrun its buffer): Pillow decodes it.
        return _pillow_frame(path, "run-length encoded BMP")
    try:
        vol = read_sitk(path, imageio, labelmap=False)
    except FormatError as exc:
        if imageio == "PNGImageIO" and "Unknown PixelType" in exc.reason:
            return _pillow_frame(path, exc.reason)
        raise
    if imageio == "BMPImageIO" and vol.n_components == 3 and _bmp_is_gray_palette(path):
        vol = vol.with_array(np.ascontiguousarray(vol.to_numpy()[..., 0]), components=None)
    if vol.components is not None:
        vol.components = component_axis(vol.n_components, vol.dtype, True)
    return vol


_FRAME_READERS = {
    "png": ("PNGImageIO", _check_png),
    "jpeg": ("JPEGImageIO", _check_jpeg),
    "bmp": ("BMPImageIO", _check_bmp),
}


def _read_frame(path: Path) -> Volume:
    """One picture file as a Volume, by its content."""
    from ..core.registry import read_head

    head = read_head(path)
    if not head:
        raise FormatError(path, "file is empty")
    if sniff_tiff(head, path):
        return _tiff_volume(path)
    for name, sniff in (("png", sniff_png), ("jpeg", sniff_jpeg), ("bmp", sniff_bmp)):
        if sniff(head, path):
            imageio, check = _FRAME_READERS[name]
            return _sitk_frame(path, imageio, check)
    raise FormatError(path, "not a TIFF, PNG, JPEG or BMP picture")


def _make_reader(kind: str):
    imageio, check = _FRAME_READERS[kind]

    def read(path: str | os.PathLike[str], *, labelmap: bool | None = None, series: bool = False) -> list[Volume]:
        p = Path(path)
        if series:
            return [read_series(numbered_siblings(p), labelmap=labelmap)]
        return [_finish(_sitk_frame(p, imageio, check), p, labelmap)]

    read.__name__ = f"read_{kind}"
    read.__doc__ = f"Read a {kind.upper()} picture, or with ``series=True`` its numbered siblings as one volume."
    return read


read_png = _make_reader("png")
read_jpeg = _make_reader("jpeg")
read_bmp = _make_reader("bmp")


def read_series(
    paths: Sequence[str | os.PathLike[str]],
    *,
    labelmap: bool | None = None,
    spacing: float | None = None,
) -> Volume:
    """Stack 2D pictures (TIFF, PNG, JPEG, BMP; same size and type) into one 3D volume, in the given order.

    In-plane spacing comes from the first frame; the slice spacing is ``spacing``
    (default 1 mm), except for a series written by napari-medio, whose TIFF
    frames carry the whole volume's geometry.
    """
    files = [Path(p) for p in paths]
    if not files:
        raise MedioError(None, "an image series needs at least one file")
    frames = [_read_frame(f) for f in files]
    for f, v in zip(files, frames):
        if v.geometry.ndim != 2 or v.extra_axes:
            raise FormatError(f, f"series frames must be 2D pictures, this one is {v.shape}")
    array = stack_frames([np.asarray(v.array) for v in frames], files)
    first = frames[0]
    geometry = None
    stored = first.metadata.get("series_index")
    if stored is not None and first.source:
        geometry = _stored_series_geometry(files, len(files))
    if geometry is None:
        g2 = first.geometry
        dz = float(spacing) if spacing else 1.0
        geometry = Geometry([g2.spacing[0], g2.spacing[1], dz], [g2.origin[0], g2.origin[1], 0.0], np.eye(3))
    vol = Volume(array, geometry, name=_series_name(files[0]), components=first.components,
                 metadata={"series_files": [os.fspath(f) for f in files]}, source=os.fspath(files[0]))
    vol.kind = volume_kind(files[0], labelmap, vol.dtype, vol.n_components)
    return vol


def _stored_series_geometry(files: Sequence[Path], count: int) -> Geometry | None:
    """The 3D geometry napari-medio stored in each frame of a TIFF series, when consistent."""
    import tifffile

    blocks = []
    for f in files:
        try:
            with tifffile.TiffFile(f) as tif:
                blocks.append(_medio_json(tif))
        except Exception:  # noqa: BLE001
            return None
    if any(b is None for b in blocks):
        return None
    if ([b.get("series_index") for b in blocks] != list(range(count))
            or any(b.get("series_count") != count for b in blocks)):
        return None
    try:
        g = Geometry.from_dict(blocks[0]["geometry"])
    except (KeyError, TypeError, ValueError):
        return None
    return g if g.ndim == 3 else None


def _series_name(first: Path) -> str:
    import re

    name = base_name(first)
    return re.sub(r"[_\-. ]*\d+$", "", name) or name


def _make_frame_writer(kind: str, imageio: str, *, dtypes, components, keeps_spacing: bool):
    def write(volume: Volume, path: str | os.PathLike[str], *, series: bool = False,
              allow_direction_loss: bool = False, quality: int | None = None) -> list[str]:
        vol = as_volume(volume, path, kind)
        check_writable(vol, path, kind, dtypes=dtypes, ndims=(2, 3), components=components)
        if vol.geometry.ndim == 3 and not series:
            raise MedioError(path, f"{kind} holds a single 2D frame; this volume has {vol.spatial_shape[0]} "
                                   f"slices: pass series=True to write one {kind} file per slice, or save as TIFF")
        check_direction(vol, path, kind, allow_direction_loss)
        level = None
        if quality is not None:
            if kind != "JPEG":
                raise MedioError(path, f"{kind} has no quality setting")
            level = int(quality)
            if not 1 <= level <= 100:
                raise MedioError(path, "JPEG quality must be between 1 and 100")
        elif kind == "JPEG":
            level = 95
        array = np.asarray(vol.array)
        if vol.geometry.ndim == 2:
            frames = [(Path(path), array)]
        else:
            frames = list(zip(numbered_names(path, array.shape[0]), array))
        g = vol.geometry

        def produce(folder: Path) -> None:
            from ..core.itk_image import sitk

            s = sitk()
            for name, frame in frames:
                image = s.GetImageFromArray(np.ascontiguousarray(frame), isVector=vol.components is not None)
                if keeps_spacing:
                    image.SetSpacing([float(g.spacing[0]), float(g.spacing[1])])
                sitk_write_into(image, folder / name.name, imageio, target=name, level=level)

        return write_files_atomically(frames[0][0] if len(frames) == 1 else Path(path), produce,
                                      first=len(frames) == 1)

    write.__name__ = f"write_{kind.lower()}"
    write.__doc__ = f"Write a 2D {kind} picture, or with ``series=True`` one {kind} file per slice of a 3D volume."
    return write


write_png = _make_frame_writer("PNG", "PNGImageIO", dtypes=(np.uint8, np.uint16), components=(1, 2, 3, 4),
                               keeps_spacing=True)
write_jpeg = _make_frame_writer("JPEG", "JPEGImageIO", dtypes=(np.uint8,), components=(1, 3), keeps_spacing=False)
write_bmp = _make_frame_writer("BMP", "BMPImageIO", dtypes=(np.uint8,), components=(1, 3, 4), keeps_spacing=False)

_READ_OPTIONS = {
    "labelmap": LABELMAP_OPTION,
    "series": "stack numbered sibling files (name_001.ext, name_002.ext, ...) into one 3D volume",
}

register(FileFormat(
    name="tiff",
    description="Tagged Image File Format (.tif, .tiff; multi-page = 3D)",
    extensions=(".tif", ".tiff"),
    read=read_tiff,
    write=write_tiff,
    sniff=sniff_tiff,
    kinds=(DataKind.VOLUME, DataKind.LABELMAP),
    backend="tifffile",
    read_options=_READ_OPTIONS,
    write_options={"series": "one file per slice", "compress": "deflate compression (default False)"},
))
register(FileFormat(
    name="png",
    description="Portable Network Graphics (.png)",
    extensions=(".png",),
    read=read_png,
    write=write_png,
    sniff=sniff_png,
    kinds=(DataKind.VOLUME, DataKind.LABELMAP),
    backend="SimpleITK",
    read_options=_READ_OPTIONS,
    write_options={"series": "one file per slice of a 3D volume",
                   "allow_direction_loss": DIRECTION_LOSS_OPTION},
))
register(FileFormat(
    name="jpeg",
    description="JPEG picture (.jpg, .jpeg; lossy)",
    extensions=(".jpg", ".jpeg"),
    read=read_jpeg,
    write=write_jpeg,
    sniff=sniff_jpeg,
    kinds=(DataKind.VOLUME,),
    backend="SimpleITK",
    read_options=_READ_OPTIONS,
    write_options={"series": "one file per slice of a 3D volume", "quality": "1-100 (default 95)",
                   "allow_direction_loss": DIRECTION_LOSS_OPTION},
))
register(FileFormat(
    name="bmp",
    description="Windows bitmap (.bmp)",
    extensions=(".bmp",),
    read=read_bmp,
    write=write_bmp,
    sniff=sniff_bmp,
    kinds=(DataKind.VOLUME, DataKind.LABELMAP),
    backend="SimpleITK",
    read_options=_READ_OPTIONS,
    write_options={"series": "one file per slice of a 3D volume",
                   "allow_direction_loss": DIRECTION_LOSS_OPTION},
))
