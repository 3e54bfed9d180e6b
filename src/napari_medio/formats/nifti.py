"""NIfTI-1/2 (.nii, .nii.gz, .hdr/.img pairs) and Analyze 7.5 (.hdr/.img, .img.gz).

Headers and voxels are read by nibabel.  Geometry follows ITK (and so Slicer):
the sform or qform is chosen with ITK's ``NiftiImageIO`` rules (see
``shared/reference/coordinates.md``), and the RAS matrix becomes LPS.  Voxels
keep their stored type unless the header scales them (``scl_slope`` /
``scl_inter``), in which case they are scaled to float as ITK does and the
factors are kept in metadata.

The writer streams the NIfTI-1 header and voxels itself so that ``.nii.gz``
is deflated on two threads by ``isal`` (one gzip member every reader accepts)
and huge or lazy arrays are written slab by slab; qform and sform are both
written with code 1 (scanner anatomical), as ITK writes them.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..core import registry
from ..core.errors import CancelledError, FormatError, MedioError, WriteError
from ..core.fileio import atomic_outputs, gzip_read, gzip_write
from ..core.geometry import Geometry
from ..core.kinds import DataKind
from ..core.volume import AxisInfo, DisplayWindow, Volume
from ._imageio import inflate_head
from .naming import base_name, looks_like_labelmap

__all__ = ["read_nifti", "write_nifti", "choose_orientation"]

NIFTI_INTENT_LABEL = 1002
NIFTI_INTENT_VECTOR = 1007
NIFTI_INTENT_DISPVECT = 1006
_TIME_UNITS = {"sec": "s", "msec": "ms", "usec": "us", "hz": "Hz", "ppm": "ppm", "rads": "rad/s", "unknown": ""}


def _sniff_nifti(head: bytes, path: Path) -> bool:
    data = inflate_head(head, 600)
    if len(data) >= 348:
        for order in ("<", ">"):
            size = int(np.frombuffer(data[:4], dtype=order + "i4")[0])
            if size == 348 and data[344:347] in (b"n+1", b"ni1"):
                return True
            if size == 540 and len(data) >= 540 and data[4:7] in (b"n+2", b"ni2"):
                return True
    if len(data) >= 540:
        for order in ("<", ">"):
            if int(np.frombuffer(data[:4], dtype=order + "i4")[0]) == 540 and data[4:7] in (b"n+2", b"ni2"):
                return True
    return False


def _sniff_analyze_pair(head: bytes, path: Path) -> bool:
    """A .hdr (or .img whose .hdr sits beside it) with a 348-byte Analyze/NIfTI-pair header."""
    p = Path(path)
    hdr = p if p.suffix.lower() == ".hdr" else None
    if hdr is None:
        name = p.name.lower()
        stem = p.name[: -len(".img.gz")] if name.endswith(".img.gz") else p.stem
        for cand in (p.with_name(stem + ".hdr"), p.with_name(stem + ".HDR")):
            if cand.exists():
                hdr = cand
                break
        if hdr is None:
            return False
        with open(hdr, "rb") as fh:
            head = fh.read(348)
    if len(head) < 348:
        return False
    return any(int(np.frombuffer(head[:4], dtype=order + "i4")[0]) == 348 for order in ("<", ">"))


def choose_orientation(header: Any) -> tuple[np.ndarray, str]:
    """The RAS index-to-world 4x4 ITK would use for a NIfTI header, and which one ('sform'/'qform'/'none')."""
    sform, scode = header.get_sform(coded=True)
    qform, qcode = header.get_qform(coded=True)
    scode = int(scode or 0)
    qcode = int(qcode or 0)
    if (sform is not None and qform is not None and scode > 0 and qcode > 0
            and np.allclose(sform[:3, :3], qform[:3, :3], atol=1e-5, rtol=0)
            and np.allclose(sform[:3, 3], qform[:3, 3], atol=1e-7, rtol=0)):
        return np.asarray(sform, dtype=float), "sform"
    if sform is not None and scode > 0 and _orthonormal_columns(sform[:3, :3]):
        if qcode == 0 or scode == 1:
            return np.asarray(sform, dtype=float), "sform"
        if _similar(sform, qform):
            return np.asarray(sform, dtype=float), "sform"
        return np.asarray(qform, dtype=float), "qform"
    if qform is not None and qcode > 0:
        return np.asarray(qform, dtype=float), "qform"
    zooms = np.asarray(header.get_zooms()[:3], dtype=float)
    zooms = np.where(zooms > 0, zooms, 1.0)
    m = np.eye(4)
    m[:3, :3] = np.diag(np.r_[zooms, [1.0] * (3 - zooms.size)][:3])
    m[:2, :] *= -1.0  # identity direction and zero origin in LPS, as ITK
    return m, "none"


def _orthonormal_columns(m: np.ndarray, tol: float = 1e-4) -> bool:
    norms = np.linalg.norm(m, axis=0)
    if np.any(norms == 0):
        return False
    r = m / norms
    return bool(np.allclose(r.T @ r, np.eye(3), atol=tol))


def _similar(a: np.ndarray, b: np.ndarray, tol: float = 1e-4) -> bool:
    if b is None:
        return False
    na, nb = np.linalg.norm(a[:3, :3], axis=0), np.linalg.norm(b[:3, :3], axis=0)
    return bool(
        np.allclose(na, nb, atol=tol) and np.allclose(a[:3, :3] / na, b[:3, :3] / nb, atol=tol)
        and np.allclose(a[:3, 3], b[:3, 3], atol=tol)
    )


def _load(path: Path):
    import nibabel as nib

    lower = path.name.lower()
    if lower.endswith((".hdr", ".img", ".img.gz")):
        return _load_pair(path)
    if not lower.endswith((".nii", ".nii.gz")):
        return _load_by_content(path)
    try:
        return nib.load(os.fspath(path))
    except FileNotFoundError as exc:
        raise FormatError(path, f"file not found: {exc.filename}") from None
    except Exception as exc:
        raise FormatError(path, f"not a readable NIfTI/Analyze file: {exc}") from None


def _pair_paths(path: Path) -> tuple[Path, Path]:
    """The (.hdr, .img or .img.gz) files of an Analyze / NIfTI pair given either one."""
    lower = path.name.lower()
    stem = path.name[: -len(".img.gz")] if lower.endswith(".img.gz") else path.name[: -4]
    hdr = next((c for c in (path.with_name(stem + e) for e in (".hdr", ".HDR", ".hdr.gz")) if c.exists()), None)
    img = next((c for c in (path.with_name(stem + e) for e in (".img", ".IMG", ".img.gz")) if c.exists()), None)
    if hdr is None:
        raise FormatError(path, "the .hdr header of this image pair is missing")
    if img is None:
        raise FormatError(path, "the .img data file of this image pair is missing")
    return hdr, img


def _load_pair(path: Path):
    """Load a .hdr/.img(.gz) pair as NIfTI-1 pair (magic 'ni1') or Analyze 7.5."""
    import nibabel as nib

    hdr_path, img_path = _pair_paths(path)
    with open(hdr_path, "rb") as fh:
        head = fh.read(348)
    if len(head) < 348:
        raise FormatError(path, f"header {hdr_path.name} is truncated ({len(head)} of 348 bytes)")
    klass = nib.Nifti1Pair if head[344:347] == b"ni1" else nib.AnalyzeImage
    try:
        file_map = {"header": nib.fileholders.FileHolder(filename=str(hdr_path)),
                    "image": nib.fileholders.FileHolder(filename=str(img_path))}
        return klass.from_file_map(file_map)
    except Exception as exc:
        raise FormatError(path, f"not a readable Analyze/NIfTI pair: {exc}") from None


def _load_by_content(path: Path):
    """Load a single-file NIfTI whose name does not say so (read fully into memory)."""
    import gzip
    import io

    import nibabel as nib

    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except Exception as exc:
            raise FormatError(path, f"gzip data is corrupt or truncated: {exc}") from None
    klass = nib.Nifti2Image if raw[4:7] == b"n+2" or raw[:4] in (b"\x1c\x02\x00\x00", b"\x00\x00\x02\x1c") \
        else nib.Nifti1Image
    try:
        holder = nib.fileholders.FileHolder(fileobj=io.BytesIO(raw))
        return klass.from_file_map({"image": holder, "header": holder})
    except Exception as exc:
        raise FormatError(path, f"not a readable NIfTI file: {exc}") from None


def _fast_gzip_voxels(proxy: Any, img: Any, path: Path, progress: Any) -> np.ndarray | None:
    """Voxels of a single-file .nii.gz inflated by :func:`~napari_medio.core.fileio.gzip_read`, or None.

    nibabel inflates with the standard library's zlib through a file object;
    isal is faster (see docs/performance.md).  The bytes are laid out as
    nibabel's ``get_unscaled`` lays them out (scaling stays with the caller).
    """
    file_like = getattr(proxy, "file_like", None)
    if not isinstance(file_like, str) or not file_like.lower().endswith(".gz"):
        return None
    if not isinstance(img, (_nib().Nifti1Image, _nib().Nifti2Image)):
        return None
    shape = tuple(int(s) for s in proxy.shape)
    dtype = np.dtype(proxy.dtype)
    offset = int(proxy.offset)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    buf = gzip_read(file_like, 0, offset + nbytes, progress=progress)
    flat = buf[offset:offset + nbytes].view(dtype)
    return flat.reshape(shape, order=getattr(proxy, "order", "F"))


def _nib():
    import nibabel

    return nibabel


def _core_array(img: Any, path: Path, progress: Any = None) -> tuple[np.ndarray, dict]:
    """Voxels as (t, k, j, i[, c]) with their stored type (scaled to float only if the header scales)."""
    proxy = img.dataobj
    info: dict[str, Any] = {}
    # nibabel moves the header's scaling into the array proxy when it loads an image
    slope = getattr(proxy, "slope", None)
    inter = getattr(proxy, "inter", None)
    if slope is not None:
        slope, inter = float(slope), float(inter or 0.0)
    try:
        expected = int(np.prod(img.shape)) * img.get_data_dtype().itemsize
        offset = int(getattr(proxy, "offset", 0))
        file_like = getattr(proxy, "file_like", None)
        if (isinstance(file_like, str) and not file_like.endswith(".gz") and os.path.exists(file_like)
                and os.path.getsize(file_like) < offset + expected):
            raise FormatError(path, f"data is truncated: {os.path.getsize(file_like) - offset} bytes "
                                    f"for {expected} expected")
        fast = _fast_gzip_voxels(proxy, img, path, progress)
        if fast is not None:
            data = fast
        elif hasattr(proxy, "get_unscaled"):
            data = proxy.get_unscaled()  # uncompressed .nii: a memory map (nibabel mmap), no read
        else:
            data = np.asanyarray(proxy)
    except (MedioError, CancelledError):  # FormatError, or CancelledError from progress
        raise
    except Exception as exc:
        raise FormatError(path, f"voxel data is truncated or corrupt: {exc}") from None
    if data.dtype.names:  # RGB24 / RGBA32 as a structured dtype
        data = np.stack([data[n] for n in data.dtype.names], axis=-1)
        info["rgb"] = True
    if slope is not None and (slope != 1 or (inter is not None and inter != 0)) and not info.get("rgb"):
        info["scl_slope"], info["scl_inter"] = float(slope), float(inter or 0.0)
        data = np.asarray(data, dtype=np.float32 if data.dtype.itemsize <= 2 else np.float64) * slope + (inter or 0.0)
    if data.dtype.byteorder == ">" or (data.dtype.byteorder == "<" and not np.little_endian):
        data = data.astype(data.dtype.newbyteorder("="))
    return data, info


def read_nifti(
    path: str | os.PathLike[str], *, labelmap: bool | None = None, name: str | None = None,
    progress: Any = None
) -> list[Volume]:
    """Read NIfTI-1/2 or Analyze into one Volume in LPS (sform/qform chosen as ITK does).

    ``.nii`` is memory-mapped (nothing is read until looked at); ``.nii.gz`` is
    inflated with the fastest decoder, reporting to ``progress`` (a
    :class:`~napari_medio.core.progress.Progress`, which can cancel).
    """
    import nibabel as nib

    p = Path(path)
    img = _load(p)
    header = img.header
    data, info = _core_array(img, p, progress)
    rgb = bool(info.pop("rgb", False))
    shape = data.shape
    nd = len(shape) - (1 if rgb else 0)
    spatial_n = min(nd, 3)
    if spatial_n < 2:
        data = data.reshape(shape[:1] + (1,) * (2 - spatial_n) + shape[1:])
        spatial_n = 2
    metadata: dict[str, Any] = {"nifti": {}}
    is_analyze = not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image, nib.Nifti1Pair, nib.Nifti2Pair))
    if is_analyze:
        affine = np.asarray(img.affine, dtype=float)
        which = "analyze"
        msg = (f"{p}: Analyze 7.5 stores orientation ambiguously; assumed nibabel's radiological "
               "(LAS) convention. Use NIfTI or NRRD for unambiguous geometry.")
        warnings.warn(msg, UserWarning, stacklevel=2)
        metadata["warnings"] = [msg]
    else:
        affine, which = choose_orientation(header)
    metadata["nifti"]["orientation_source"] = which
    if spatial_n == 2:  # a 2D NIfTI keeps its 3D placement as a single-slice volume
        data = data[:, :, None, ...] if data.ndim >= 2 else data
        spatial_n = 3
    geometry = Geometry.from_index_to_ras(affine)
    # NIfTI axes: (i, j, k, t, c...) -> core (t, k, j, i, c)
    extra_dims = data.ndim - 3 - (1 if rgb else 0)
    components: AxisInfo | None = None
    extra: list[AxisInfo] = []
    core = np.transpose(data, (2, 1, 0) + tuple(range(3, data.ndim)))
    if rgb:
        components = AxisInfo(name="component", kind="RGB-color" if core.shape[-1] == 3 else "RGBA-color")
    zooms = header.get_zooms()
    units = header.get_xyzt_units() if hasattr(header, "get_xyzt_units") else ("unknown", "unknown")
    if extra_dims >= 1:
        t_axis = 3
        n_t = core.shape[t_axis]
        if extra_dims >= 2:  # dim 5+: vector components (displacement fields, tensors)
            comp_shape = core.shape[4:4 + extra_dims - 1] if not rgb else core.shape[4:-1]
            ncomp = int(np.prod(comp_shape))
            core = core.reshape(core.shape[:4] + (ncomp,) + ((core.shape[-1],) if rgb else ()))
            if n_t == 1 and not rgb:
                core = core[:, :, :, 0, :]
                components = AxisInfo(name="component", kind="vector")
                extra_dims = 0
            elif not rgb:
                core = np.moveaxis(core, 3, 0)
                components = AxisInfo(name="component", kind="vector")
                extra_dims = 1
        if extra_dims >= 1:
            if core.ndim > 4 + (1 if components is not None else 0):
                raise FormatError(p, f"unsupported NIfTI dimensions {img.shape}")
            core = np.moveaxis(core, 3, 0)
            dt = float(zooms[3]) if len(zooms) > 3 and zooms[3] > 0 else 1.0
            toffset = float(header.get("toffset", 0) or 0) if "toffset" in header else 0.0
            extra.append(AxisInfo(name="time", unit=_TIME_UNITS.get(units[1], ""),
                                  values=(toffset + dt * np.arange(n_t)).tolist(), kind="time"))
    intent = int(header.get("intent_code", 0)) if "intent_code" in header else 0
    metadata["nifti"].update({
        "intent_code": intent,
        "intent_name": _text(header.get("intent_name")) if "intent_name" in header else "",
        "descrip": _text(header.get("descrip")) if "descrip" in header else "",
        "qform_code": int(header.get("qform_code", 0)) if "qform_code" in header else 0,
        "sform_code": int(header.get("sform_code", 0)) if "sform_code" in header else 0,
        "spatial_unit": units[0],
    })
    metadata["nifti"].update(info)
    if intent in (NIFTI_INTENT_VECTOR, NIFTI_INTENT_DISPVECT) and components is not None:
        components.kind = "vector"
    if intent == NIFTI_INTENT_DISPVECT and components is not None and core.shape[-1] == 3:
        # NIfTI displacement vectors are RAS (as ITK and Slicer read them): bring them to LPS
        core = np.asarray(core).copy()
        core[..., :2] *= -1
        metadata["displacement_field"] = True
    for key in ("cal_min", "cal_max"):
        if key in header:
            metadata["nifti"][key] = float(header[key])
    cmin, cmax = metadata["nifti"].get("cal_min", 0.0), metadata["nifti"].get("cal_max", 0.0)
    window = DisplayWindow.from_range(cmin, cmax) if np.isfinite([cmin, cmax]).all() and cmax > cmin else None
    if labelmap is None:
        labelmap = (intent == NIFTI_INTENT_LABEL or looks_like_labelmap(p)) and np.issubdtype(core.dtype, np.integer) \
            and components is None
    return [Volume(array=core, geometry=geometry, kind=DataKind.LABELMAP if labelmap else DataKind.VOLUME,
                   name=name or base_name(p), extra_axes=extra, components=components,
                   metadata=metadata, source=os.fspath(p), window=window)]


def _text(value: Any) -> str:
    try:
        v = value.item() if hasattr(value, "item") else value
        return v.decode("latin-1").rstrip("\x00") if isinstance(v, bytes) else str(v)
    except Exception:
        return ""


# -- writing ---------------------------------------------------------------------------------
def _nifti_header(volume: Volume, pair: bool) -> tuple[Any, np.ndarray]:
    """A nibabel NIfTI-1 header for the volume, and the array in NIfTI byte order (C order flat)."""
    import nibabel as nib

    arr = volume.array
    dtype = np.dtype(arr.dtype)
    g = volume.geometry.as_3d()
    n_extra = len(volume.extra_axes)
    if n_extra > 1:
        raise WriteError(volume.source, "NIfTI holds at most one non-spatial axis (time) besides components")
    spatial = list(reversed(volume.spatial_shape))
    if volume.geometry.ndim == 2:
        spatial = spatial + [1]
    t = [int(volume.shape[0])] if n_extra else []
    rgb = volume.is_rgb
    ncomp = volume.n_components if volume.components is not None else 0
    hdr = nib.nifti1.Nifti1PairHeader() if pair else nib.Nifti1Header()
    if rgb:
        names = ("R", "G", "B", "A")[:ncomp]
        hdr.set_data_dtype(np.dtype([(n, "u1") for n in names]))
        shape = spatial + t
    else:
        hdr.set_data_dtype(dtype.newbyteorder("<") if dtype.itemsize > 1 else dtype)
        if ncomp:
            shape = spatial + (t or [1]) + [ncomp]
        else:
            shape = spatial + t
    hdr.set_data_shape(shape)
    ras = g.index_to_ras_matrix()
    hdr.set_sform(ras, code=1)
    hdr.set_qform(ras, code=1)  # nibabel stores the nearest rotation; geometry is exact in sform
    zooms = list(g.spacing)
    if t:
        values = volume.extra_axes[0].values or []
        dt = float(values[1]) - float(values[0]) if len(values) > 1 else 1.0
        zooms.append(dt if dt > 0 else 1.0)
        if values:
            hdr["toffset"] = float(values[0])
    elif ncomp and not rgb:
        zooms.append(1.0)
    if ncomp and not rgb:
        zooms.append(1.0)
        hdr["intent_code"] = NIFTI_INTENT_DISPVECT if _is_displacement_field(volume) else NIFTI_INTENT_VECTOR
    hdr.set_zooms(zooms[: len(shape)])
    unit = volume.extra_axes[0].unit if t else ""
    time_unit = {"s": "sec", "ms": "msec", "us": "usec"}.get(unit, "sec")
    hdr.set_xyzt_units("mm", time_unit)
    if volume.kind == DataKind.LABELMAP:
        hdr["intent_code"] = NIFTI_INTENT_LABEL
    hdr["scl_slope"] = 1.0
    hdr["scl_inter"] = 0.0
    if volume.window is not None:
        hdr["cal_min"], hdr["cal_max"] = volume.window.limits
    descrip = volume.metadata.get("nifti", {}).get("descrip", "")
    if descrip:
        hdr["descrip"] = descrip[:79].encode("latin-1", errors="replace")
    return hdr, dtype


def _nifti_slabs(volume: Volume):
    """Voxel bytes in NIfTI order: i fastest, then j, k, t, then vector components slowest."""
    from .nrrd import byte_slabs

    arr = volume.array
    dtype = np.dtype(arr.dtype)
    dtype = dtype.newbyteorder("<") if dtype.itemsize > 1 else dtype
    if volume.components is not None and not volume.is_rgb:
        ras_vectors = _is_displacement_field(volume) and volume.n_components == 3
        for c in range(volume.n_components):
            view = _ComponentView(arr, c, negate=ras_vectors and c < 2)  # LPS -> RAS vectors
            yield from byte_slabs(view, dtype)
    else:
        yield from byte_slabs(arr, dtype)


class _ComponentView:
    """Lazy view of one component of a (..., c) array, sliced along its first axis."""

    def __init__(self, arr: Any, c: int, negate: bool = False) -> None:
        self.arr, self.c, self.negate = arr, c, negate
        self.shape = tuple(arr.shape[:-1])
        self.dtype = arr.dtype

    def __getitem__(self, key: Any) -> np.ndarray:
        out = np.asarray(self.arr[key])[..., self.c]
        return -out if self.negate else out

    def __array__(self, dtype=None, copy=None):
        out = np.asarray(self.arr)[..., self.c]
        out = -out if self.negate else out
        return out.astype(dtype) if dtype is not None else out


def _is_displacement_field(volume: Volume) -> bool:
    return bool(volume.metadata.get("displacement_field")) or \
        volume.metadata.get("nifti", {}).get("intent_code") == NIFTI_INTENT_DISPVECT


def write_nifti(
    volume: Volume, path: str | os.PathLike[str], *, compression_level: int = 6, progress: Any = None,
) -> list[str]:
    """Write a Volume as NIfTI-1 (.nii, .nii.gz, or a .hdr/.img pair) with qform and sform set from LPS geometry."""
    p = Path(path)
    if not isinstance(volume, Volume):
        raise WriteError(p, f"NIfTI holds volumes, not {type(volume).__name__}")
    lower = p.name.lower()
    pair = lower.endswith((".hdr", ".img", ".img.gz"))
    if pair:
        stem = p.name[: -len(".img.gz")] if lower.endswith(".img.gz") else p.stem
        targets = [p.with_name(stem + ".hdr"), p.with_name(stem + (".img.gz" if lower.endswith(".img.gz") else ".img"))]
    else:
        targets = [p]
    try:
        hdr, _ = _nifti_header(volume, pair)
    except WriteError:
        raise
    except Exception as exc:
        raise WriteError(p, f"cannot build a NIfTI header: {exc}") from None
    compressed = targets[-1].name.lower().endswith(".gz")
    with atomic_outputs(targets) as temps:
        if pair:
            with open(temps[0], "wb") as fh:
                fh.write(hdr.binaryblock)
            data_temp = temps[1]
            prefix = b""
        else:
            hdr["vox_offset"] = 352
            data_temp = temps[0]
            prefix = hdr.binaryblock + b"\x00\x00\x00\x00"

        def chunks():
            if prefix:
                yield prefix
            yield from _nifti_slabs(volume)

        from ..core.progress import ensure_progress

        total = len(prefix) + int(np.prod(volume.shape, dtype=np.int64)) * np.dtype(volume.array.dtype).itemsize
        with open(data_temp, "wb") as fh:
            if compressed:
                gzip_write(fh, chunks(), level=compression_level, progress=progress, total=total)
            else:
                prog = ensure_progress(progress)
                prog.start(total)
                for chunk in chunks():
                    fh.write(chunk)
                    prog.advance(len(chunk))
    return [os.fspath(t) for t in targets]


registry.register(registry.FileFormat(
    name="nifti",
    description="NIfTI-1/NIfTI-2 image (.nii, .nii.gz)",
    extensions=(".nii", ".nii.gz"),
    read=read_nifti,
    write=write_nifti,
    sniff=_sniff_nifti,
    kinds=(DataKind.VOLUME, DataKind.LABELMAP),
    backend="nibabel (reader), napari-medio (isal gzip)",
))
registry.register(registry.FileFormat(
    name="analyze",
    description="Analyze 7.5 / NIfTI-1 pair (.hdr + .img, .img.gz); orientation is ambiguous in Analyze",
    extensions=(".hdr", ".img", ".img.gz"),
    read=read_nifti,
    write=write_nifti,
    sniff=_sniff_analyze_pair,
    kinds=(DataKind.VOLUME, DataKind.LABELMAP),
    backend="nibabel",
))
