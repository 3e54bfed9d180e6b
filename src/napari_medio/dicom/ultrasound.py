"""3D/4D ultrasound stored in vendor DICOM variants, read as SlicerHeart's DicomUltrasoundPlugin reads them.

Some ultrasound scanners put a Cartesian volume (or a series of volumes) into a
DICOM file whose standard attributes describe something else: 2D frames of an
Ultrasound Multi-frame Image, or a non-standard SOP class.  The generic series
loader (:mod:`.series`) would show 2D frames; this module recognises the
variants below and gives the volume, placed the way 3D Slicer places it.

Source of the facts: SlicerHeart's ``DicomUltrasoundPlugin/DicomUltrasoundPlugin.py``
and ``ArtemisPriv.dic`` (BSD-3), and SlicerHeart's ``Docs/ImageImportExport.md``
(Eigen's reconstruction rules as Eigen gave them to SlicerHeart), read as a
reference for tag meanings and placement; the code here is this project's own.
It is hand-written because no library reads these variants: they are vendor
conventions, not DICOM IODs.  No real scanner file was available: the tests
build files with pydicom carrying the private tags as the plugin reads them.

Philips Cartesian 4D (QLAB "Cartesian DICOM (3DDCM)" export)
    Recognised by SOP Class UID ``1.2.840.113543.6.6.1.3.10002`` (a private,
    non-standard UID).  ``Columns`` x ``Rows`` x ``(3001,1001)`` voxels per
    volume (the private element is read at its fixed tag, with no private
    creator check, as the plugin does), ``NumberOfFrames`` volumes,
    ``FrameTime`` ms between them.  Spacing (mm) = ``PhysicalDeltaX``,
    ``PhysicalDeltaY`` (top-level, cm; also looked for in the first item of
    the Sequence of Ultrasound Regions) and ``(3001,1003)`` (cm), each x 10.
    Voxels: unsigned 8-bit, the **last** frames x slices x rows x columns bytes
    of the file, volume after volume, each slice after slice, rows of
    ``Columns`` bytes (the plugin reads them so, ignoring the pixel data
    element's stated size); they must lie inside the pixel data element.
    Placement: Slicer makes a new volume node with only the spacing set, i.e.
    IJK-to-RAS = diag(spacing), origin 0; in LPS: direction diag(-1, -1, 1),
    origin 0.  Volume ``n`` is at time ``n * FrameTime / 1000`` s (Slicer's
    sequence index values, written with 3 decimals, which we keep): a 4D
    volume with a leading ``time`` axis (unit s); one volume gives a 3D volume.
    The private values may be any numeric VR (UL/US/IS, FD/FL/DS); in an
    implicit-VR file (pydicom gives raw bytes) 4 bytes are read as a 32-bit
    integer / float and 8 bytes as a double -- the plugin itself would fail there.

Eigen Artemis 3D (prostate)
    Recognised by SOP Class Ultrasound Multi-frame Image Storage
    (``1.2.840.10008.5.1.4.1.1.3.1``), ``Manufacturer`` "Eigen" and
    ``ManufacturerModelName`` "Artemis".  Voxels: the standard pixel data,
    frames = slices (k).  Isotropic spacing: ``PixelAspectRatio[0] / 1000`` mm
    when present (preferred, as Eigen advises), else the private VoxelSize
    ``(1129,xx16)`` DS of private creator "Eigen, Inc" or "Eigen Artemis";
    neither -> refused.  ``PixelSpacing`` is ignored.  Placement: Slicer reads
    the file with ITK (origin = ImagePositionPatient or 0, direction from
    ImageOrientationPatient or identity, in LPS), sets the spacing and the
    RAS origin (0.5 Rows s, 0.5 Columns s, -0.5 NumberOfSlices s) and then
    left-multiplies IJK-to-RAS by the permutation ((0,1,0),(0,0,1),(1,0,0)).
    For the usual identity orientation that gives, in LPS:
    ``p = (-0.5 Columns s, 0.5 N s, 0.5 Rows s) + s * (j, -k, -i)``, i.e.
    direction columns i -> -S, j -> +L, k -> -P (N = NumberOfSlices, else
    NumberOfFrames).  We compute it as Slicer does, matrix by matrix.

Philips Affinity 3D
    Recognised by Ultrasound Multi-frame Image Storage plus the private
    element ``(200D,xx03)`` "Voxel Spacing" (LO, 3 values, mm) of private
    creator "Philips US Imaging DD 036".  Voxels: the standard pixel data,
    frames = slices (k).  Spacing = the three private values (x, y, z).
    Placement: as ITK reads the file (Slicer only overrides the spacing):
    origin = ImagePositionPatient or 0, direction from ImageOrientationPatient
    or identity, in LPS.

GE Kretz volume in DICOM (Voluson)
    Recognised by SOP Class Ultrasound Image Storage
    (``1.2.840.10008.5.1.4.1.1.6.1``), private creator ``(7FE1,0011)``
    "KRETZ_US" (the plugin only checks that the element exists) and the
    element ``(7FE1,1101)`` (OB) holding a whole Kretz file (``KRETZFILE 1.0``).
    SlicerHeart hands the file and the byte offset of that element's value to
    its Kretz reader with an output spacing of 0.667 mm (its default DICOM
    loadable; 1.0 and 0.333 mm are offered too), which reads items until an
    item header no longer fits.  We give :func:`napari_medio.formats.kretz.read`
    the element's items (up to where a header no longer fits, which drops the
    element's even-length padding byte) as a temporary file of their own, so
    the placement is that reader's (SlicerHeart's toroidal scan conversion).  A
    manufacturer other than "Kretztechnik" or "GE Healthcare..." gives a
    warning, as the plugin lowers its confidence.

Not handled (the generic loader takes them): GE MovieGroup 2D
sequences (``GEMS_Ultrasound_MovieGroup_001``, raw scan lines) and the
Image3dAPI path (GE, Siemens, Canon, Hitachi 3D/4D), which needs the vendors'
Windows-only loader DLLs.

Array layout: ``array[(time,) k, j, i]`` = (volume, slice, row, column).
Metadata: ``metadata["dicom"]`` (identity tags and UIDs, as the series loader
gives them) and ``metadata["ultrasound"]`` (variant, the values used).
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import FormatError
from ..core.geometry import Geometry
from ..core.registry import FileFormat, register
from ..core.volume import AxisInfo, Volume
from ._parse import sniff_dicom_bytes

__all__ = [
    "DICOM_ULTRASOUND_FORMAT",
    "PHILIPS_4D_SOP_CLASS",
    "US_IMAGE_SOP_CLASS",
    "US_MULTIFRAME_SOP_CLASS",
    "is_ultrasound_3d",
    "read_ultrasound",
    "split_ultrasound",
    "ultrasound_variant",
]

#: Philips QLAB Cartesian 4D export (private SOP class UID).
PHILIPS_4D_SOP_CLASS = "1.2.840.113543.6.6.1.3.10002"
#: Ultrasound Multi-frame Image Storage (Eigen Artemis, Philips Affinity 3D).
US_MULTIFRAME_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.3.1"
#: Ultrasound Image Storage (GE Kretz volumes embedded in a private element).
US_IMAGE_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.6.1"

PHILIPS_4D = "philips-4d"
EIGEN_ARTEMIS = "eigen-artemis"
PHILIPS_AFFINITY = "philips-affinity-3d"
GE_KRETZ = "ge-kretz"

_PHILIPS_SLICES = (0x3001, 0x1001)
_PHILIPS_SLICE_SPACING = (0x3001, 0x1003)
_AFFINITY_CREATOR = "Philips US Imaging DD 036"
_EIGEN_CREATORS = ("Eigen, Inc", "Eigen Artemis")
_KRETZ_CREATOR_TAG = (0x7FE1, 0x0011)
_KRETZ_DATA_TAG = (0x7FE1, 0x1101)
_KRETZ_CREATOR = "KRETZ_US"
#: SlicerHeart's default output spacing (mm) for Kretz data found in DICOM (its "LR" / "HR" loadables: 1.0 / 0.333).
KRETZ_DICOM_OUTPUT_SPACING = 0.667

#: Slicer's vtkMRMLSequenceNode index-value precision for the Philips 4D frame times (s).
_TIME_DECIMALS = 3

_NATIVE_SYNTAXES = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2")

#: IJK-to-RAS permutation SlicerHeart applies to Eigen Artemis volumes (rows of the 3x3 part).
_EIGEN_PERMUTATION = np.array([[0.0, 1.0, 0.0, 0.0],
                               [0.0, 0.0, 1.0, 0.0],
                               [1.0, 0.0, 0.0, 0.0],
                               [0.0, 0.0, 0.0, 1.0]])

_IDENTITY_KEYS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate",
                  "StudyTime", "StudyDescription", "StudyID", "AccessionNumber", "SeriesInstanceUID",
                  "SeriesNumber", "SeriesDescription", "SeriesDate", "Modality", "FrameOfReferenceUID",
                  "Manufacturer", "ManufacturerModelName", "SOPClassUID", "InstanceNumber")


# -- recognising ----------------------------------------------------------------------------------
def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return str(value).strip(" \x00")


def _el(ds: Any, key: Any) -> Any:
    """The DataElement for a keyword or tag, or None (``Dataset.get`` gives values for keywords)."""
    try:
        return ds[key] if key in ds else None  # noqa: SIM401 - Dataset.get gives the value, not the element
    except Exception:
        return None


def _val(ds: Any, key: Any) -> Any:
    """The value of a keyword or tag; None when absent or empty."""
    elem = _el(ds, key)
    if elem is None:
        return None
    value = elem.value
    if value is None or (isinstance(value, (str, bytes, list, tuple)) and len(value) == 0):
        return None
    if type(value).__name__ == "MultiValue" and len(value) == 0:
        return None
    return value


def _private_tag(ds: Any, group: int, element: int, creators: tuple[str, ...]) -> int | None:
    """The tag of private ``element`` (0x00-0xFF) in the block reserved by one of ``creators``, or None."""
    for block in range(0x10, 0x100):
        value = _val(ds, (group, block))
        if value is not None and _text(value) in creators:
            return (group << 16) | (block << 8) | element
    return None


def _variant_of_dataset(ds: Any) -> str:
    sop = _text(_val(ds, "SOPClassUID"))
    if not sop:
        meta = getattr(ds, "file_meta", None)
        sop = _text(getattr(meta, "MediaStorageSOPClassUID", "")) if meta is not None else ""
    if sop == PHILIPS_4D_SOP_CLASS:
        return PHILIPS_4D
    if sop == US_IMAGE_SOP_CLASS:
        creator = _el(ds, _KRETZ_CREATOR_TAG)
        if creator is not None and _text(creator.value) == _KRETZ_CREATOR and _KRETZ_DATA_TAG in ds:
            return GE_KRETZ
        return ""
    if sop != US_MULTIFRAME_SOP_CLASS:
        return ""
    if _text(_val(ds, "Manufacturer")) == "Eigen" and _text(_val(ds, "ManufacturerModelName")) == "Artemis":
        return EIGEN_ARTEMIS
    tag = _private_tag(ds, 0x200D, 0x03, (_AFFINITY_CREATOR,))
    if tag is not None and _val(ds, tag) is not None:
        return PHILIPS_AFFINITY
    return ""


def _read_header(path: str | os.PathLike[str]) -> Any:
    """The data set of ``path`` without loading large values (pixel data stays in the file)."""
    import pydicom

    p = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pydicom.dcmread(os.fspath(p), defer_size=4096, force=True)
    except FileNotFoundError:
        raise FormatError(p, "file not found") from None
    except OSError as exc:
        raise FormatError(p, f"cannot open file: {exc.strerror or exc}") from None
    except Exception as exc:
        raise FormatError(p, f"not a readable DICOM file: {type(exc).__name__}: {exc}") from None


def ultrasound_variant(source: Any) -> str:
    """Which variant ``source`` is: "philips-4d", "eigen-artemis", "philips-affinity-3d", "ge-kretz" or "".

    ``source`` is a pydicom Dataset, a header dict of :func:`.series.read_headers`
    (with ``_path``) or a file path.  Header dicts are decided from their
    SOP Class UID and manufacturer where that suffices; an Ultrasound
    Multi-frame file of another maker is opened to look for the Philips
    Affinity private tag, and an Ultrasound Image only when elements follow
    its pixel data (where the Kretz private group 7FE1 would be).
    """
    if isinstance(source, dict):
        sop = _text(source.get("SOPClassUID") or source.get("_media_sop_class"))
        if sop == PHILIPS_4D_SOP_CLASS:
            return PHILIPS_4D
        if sop == US_IMAGE_SOP_CLASS:
            offset, length, size = (source.get(k) for k in ("_pixel_offset", "_pixel_length", "_size"))
            if all(isinstance(v, int) for v in (offset, length, size)) and offset >= 0 and length >= 0 \
                    and offset + length >= size:
                return ""  # nothing after the pixel data: no (7FE1,xxxx) elements
        elif sop != US_MULTIFRAME_SOP_CLASS:
            return ""
        if sop == US_MULTIFRAME_SOP_CLASS and _text(source.get("Manufacturer")) == "Eigen" \
                and _text(source.get("ManufacturerModelName")) == "Artemis":
            return EIGEN_ARTEMIS
        path = source.get("_path")
        if not path:
            return ""
        source = path
    if isinstance(source, (str, os.PathLike)):
        try:
            source = _read_header(source)
        except FormatError:
            return ""
    try:
        return _variant_of_dataset(source)
    except Exception:
        return ""


def is_ultrasound_3d(source: Any) -> bool:
    """True when ``source`` (Dataset, header dict or path) is a 3D/4D ultrasound variant this module reads."""
    return bool(ultrasound_variant(source))


# -- values ---------------------------------------------------------------------------------------
def _number(value: Any, what: str, path: Path, integer: bool = False) -> float:
    """A numeric private/standard value whatever its VR (int, float, DS/IS text, raw little-endian bytes)."""
    import struct

    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        if len(value) == 0:
            raise FormatError(path, f"{what} is empty")
        value = value[0]
    if isinstance(value, (bytes, bytearray)):
        raw = bytes(value)
        text = raw.strip(b" \x00")
        try:
            return float(int(text)) if integer else float(text)
        except ValueError:
            pass
        if len(raw) == 2:
            value = struct.unpack("<H", raw)[0]
        elif len(raw) == 4:
            value = struct.unpack("<I" if integer else "<f", raw)[0]
        elif len(raw) == 8:
            value = struct.unpack("<Q" if integer else "<d", raw)[0]
        else:
            raise FormatError(path, f"{what} holds {len(raw)} bytes that are no number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise FormatError(path, f"{what} is not a number: {value!r}") from None
    if not np.isfinite(number):
        raise FormatError(path, f"{what} is not finite: {value!r}")
    if integer and number != int(number):
        raise FormatError(path, f"{what} is not an integer: {value!r}")
    return number


def _count(ds: Any, tag: Any, what: str, path: Path, default: int | None = None) -> int:
    value = _val(ds, tag)
    if value is None:
        if default is not None:
            return default
        raise FormatError(path, f"{what} is missing")
    n = int(_number(value, what, path, integer=True))
    if n <= 0:
        raise FormatError(path, f"{what} must be positive, got {n}")
    return n


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [_plain(v) for v in value]
    if isinstance(value, float) or type(value).__name__ in ("DSfloat", "DSdecimal"):
        return float(value)
    if type(value).__name__ == "IS":
        return int(value)
    return str(value)


def _identity(ds: Any) -> dict:
    out = {}
    for key in _IDENTITY_KEYS:
        value = _val(ds, key)
        if value is None:
            continue
        try:
            out[key] = _plain(value)
        except Exception:
            continue
    uid = _text(_val(ds, "SOPInstanceUID"))
    out["SOPInstanceUIDs"] = [uid] if uid else []
    meta = getattr(ds, "file_meta", None)
    ts = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    if ts:
        out["TransferSyntaxUID"] = str(ts)
    return out


def _name(ds: Any, path: Path | None, fallback: str) -> str:
    number = _val(ds, "SeriesNumber")
    desc = _text(_val(ds, "SeriesDescription")) or fallback
    name = f"{_plain(number)}: {desc}" if number is not None else desc
    instance = _val(ds, "InstanceNumber")
    if instance is not None:
        name += f" [{_plain(instance)}]"
    return name


def _transfer_syntax(ds: Any) -> str:
    meta = getattr(ds, "file_meta", None)
    ts = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    if ts is None:
        return "1.2.840.10008.1.2" if getattr(ds, "is_implicit_VR", True) else "1.2.840.10008.1.2.1"
    return str(ts)


def _pixel_element(ds: Any, path: Path) -> Any:
    elem = _pixel_element_at(ds, (0x7FE0, 0x0010))
    if elem is None:
        raise FormatError(path, "no pixel data element (7FE0,0010)")
    return elem


# -- Philips Cartesian 4D -------------------------------------------------------------------------
def _physical_delta(ds: Any, keyword: str, path: Path) -> float:
    value = _val(ds, keyword)
    if value is None:
        regions = _val(ds, "SequenceOfUltrasoundRegions")
        if regions:
            value = _val(regions[0], keyword)
    if value is None:
        raise FormatError(path, f"{keyword} (voxel size in cm) is missing")
    return _number(value, keyword, path)


def _read_philips_4d(ds: Any, path: Path, file_path: Path | None) -> Volume:
    columns = _count(ds, "Columns", "Columns", path)
    rows = _count(ds, "Rows", "Rows", path)
    value = _val(ds, _PHILIPS_SLICES)
    if value is None:
        raise FormatError(path, "Philips 4D private tag (3001,1001) (number of slices) is missing")
    slices = int(_number(value, "private tag (3001,1001) (number of slices)", path, integer=True))
    if slices <= 0:
        raise FormatError(path, f"private tag (3001,1001) gives {slices} slices")
    value = _val(ds, _PHILIPS_SLICE_SPACING)
    if value is None:
        raise FormatError(path, "Philips 4D private tag (3001,1003) (slice spacing in cm) is missing")
    dz = _number(value, "private tag (3001,1003) (slice spacing)", path)
    dx = _physical_delta(ds, "PhysicalDeltaX", path)
    dy = _physical_delta(ds, "PhysicalDeltaY", path)
    spacing = np.array([dx, dy, dz], dtype=float) * 10.0
    if np.any(spacing <= 0):
        raise FormatError(path, f"voxel size must be positive, got {(spacing / 10).tolist()} cm")
    frames = _count(ds, "NumberOfFrames", "NumberOfFrames", path, default=1)
    bits = _count(ds, "BitsAllocated", "BitsAllocated", path, default=8)
    if bits != 8:
        raise FormatError(path, f"Philips 4D voxels are 8-bit; BitsAllocated is {bits}")
    spp = _count(ds, "SamplesPerPixel", "SamplesPerPixel", path, default=1)
    if spp != 1:
        raise FormatError(path, f"Philips 4D voxels have one sample; SamplesPerPixel is {spp}")
    for keyword in ("PhysicalUnitsXDirection", "PhysicalUnitsYDirection"):
        unit = _val(ds, keyword)
        if unit is not None and unit != 3:
            warnings.warn(f"{path}: {keyword} is {unit}, not 3 (cm); read as cm as SlicerHeart does",
                          UserWarning, stacklevel=3)
    frame_time = None
    value = _val(ds, "FrameTime")
    if value is not None:
        frame_time = _number(value, "FrameTime", path)
    ts = _transfer_syntax(ds)
    if ts not in _NATIVE_SYNTAXES:
        raise FormatError(path, f"Philips 4D pixel data must be uncompressed; transfer syntax is {ts}")

    shape = (frames, slices, rows, columns)
    need = frames * slices * rows * columns
    elem = _pixel_element(ds, path)
    start = getattr(elem, "value_tell", None)
    length = getattr(elem, "length", None)
    if file_path is not None and start is not None and length is not None:
        size = file_path.stat().st_size
        if start + length > size:
            raise FormatError(path, f"pixel data is truncated: {size - start} of {length} bytes present")
        if size - need < start:
            raise FormatError(path, f"pixel data holds {size - start} bytes; {frames} frame(s) x {slices} slices x "
                                    f"{rows} rows x {columns} columns need {need}")
        # As SlicerHeart: the voxels are the last bytes of the file.
        array = np.memmap(file_path, dtype=np.uint8, mode="r", offset=size - need, shape=shape)
    else:
        data = bytes(ds.PixelData)
        if len(data) < need:
            raise FormatError(path, f"pixel data holds {len(data)} bytes; {frames} frame(s) x {slices} slices x "
                                    f"{rows} rows x {columns} columns need {need}")
        array = np.frombuffer(data, dtype=np.uint8, count=need, offset=len(data) - need).reshape(shape)

    geometry = Geometry.from_index_to_ras(np.diag([*spacing, 1.0]))
    info: dict[str, Any] = {"variant": PHILIPS_4D, "slices": slices, "frames": frames,
                            "voxel_size_cm": [dx, dy, dz]}
    extra: list[AxisInfo] = []
    if frame_time is not None:
        info["frame_time_ms"] = frame_time
    if frames > 1:
        values = None
        if frame_time is not None:
            values = [round(n * frame_time * 0.001, _TIME_DECIMALS) for n in range(frames)]
        extra = [AxisInfo(name="time", unit="s" if values is not None else "", values=values, kind="list")]
    else:
        array = array[0]
    return Volume(array, geometry, name=_name(ds, file_path, "Philips 4D US"), extra_axes=extra,
                  metadata={"dicom": _identity(ds), "ultrasound": info})


# -- Ultrasound Multi-frame based variants (Eigen Artemis, Philips Affinity) ----------------------
def _frames_array(ds: Any, path: Path, file_path: Path | None) -> tuple[np.ndarray, AxisInfo | None]:
    """The standard pixel data as (frames, rows, columns[, samples]) with its component axis."""
    rows = _count(ds, "Rows", "Rows", path)
    columns = _count(ds, "Columns", "Columns", path)
    frames = _count(ds, "NumberOfFrames", "NumberOfFrames", path, default=1)
    spp = _count(ds, "SamplesPerPixel", "SamplesPerPixel", path, default=1)
    bits = _count(ds, "BitsAllocated", "BitsAllocated", path, default=8)
    if spp not in (1, 3):
        raise FormatError(path, f"SamplesPerPixel {spp} is not supported (1 or 3)")
    if bits not in (8, 16, 32):
        raise FormatError(path, f"BitsAllocated {bits} is not supported (8, 16 or 32)")
    elem = _pixel_element(ds, path)
    ts = _transfer_syntax(ds)
    if ts in _NATIVE_SYNTAXES:
        need = rows * columns * frames * spp * (bits // 8)
        start = getattr(elem, "value_tell", None)
        length = getattr(elem, "length", None)
        if file_path is not None and start is not None and length is not None:
            have = min(length, file_path.stat().st_size - start)
        else:
                have = len(ds.PixelData)
        if have < need:
            raise FormatError(path, f"pixel data is truncated: {have} of {need} bytes present "
                                    f"({frames} frame(s) of {rows} x {columns})")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            array = np.asarray(ds.pixel_array)
    except Exception as exc:
        raise FormatError(path, f"cannot decode the pixel data ({ts}): {type(exc).__name__}: {exc}") from None
    want = (frames, rows, columns) + ((spp,) if spp > 1 else ())
    if array.size != int(np.prod(want)):
        raise FormatError(path, f"pixel data decodes to shape {array.shape}, expected {want}")
    array = array.reshape(want)
    components = AxisInfo(name="component", kind="RGB-color") if spp == 3 else None
    return array, components


def _patient_placement(ds: Any, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Origin and direction (LPS) as ITK gives them for this file: IPP/IOP when present, else 0 and identity."""
    origin = np.zeros(3)
    direction = np.eye(3)
    ipp = _val(ds, "ImagePositionPatient")
    if ipp is not None and len(ipp) == 3:
        origin = np.array([_number(v, "ImagePositionPatient", path) for v in ipp])
    iop = _val(ds, "ImageOrientationPatient")
    if iop is not None and len(iop) == 6:
        cos = np.array([_number(v, "ImageOrientationPatient", path) for v in iop])
        row, col = cos[:3], cos[3:]
        normal = np.cross(row, col)
        if np.linalg.norm(row) > 0.5 and np.linalg.norm(col) > 0.5 and np.linalg.norm(normal) > 0.5:
            direction = np.column_stack([row / np.linalg.norm(row), col / np.linalg.norm(col),
                                         normal / np.linalg.norm(normal)])
    return origin, direction


def _eigen_spacing(ds: Any, path: Path) -> tuple[float, dict]:
    info: dict[str, Any] = {}
    private = None
    tag = _private_tag(ds, 0x1129, 0x16, _EIGEN_CREATORS)
    value = _val(ds, tag) if tag is not None else None
    if value is not None:
        private = _number(value, "Eigen private VoxelSize (1129,xx16)", path)
        info["private_voxel_size_mm"] = private
    standard = None
    ratio = _val(ds, "PixelAspectRatio")
    if ratio is not None:
        values = ratio if isinstance(ratio, (list, tuple)) or type(ratio).__name__ == "MultiValue" else [ratio]
        numbers = [_number(v, "PixelAspectRatio", path) for v in values]
        if len(numbers) >= 2 and numbers[0] != numbers[1]:
            warnings.warn(f"{path}: PixelAspectRatio values differ ({numbers}); the first is used as SlicerHeart does",
                          UserWarning, stacklevel=4)
        standard = numbers[0] / 1000.0
        info["pixel_aspect_ratio"] = numbers
    if standard is not None:
        if private is not None and private != standard:
            warnings.warn(f"{path}: Eigen private voxel size {private} mm differs from PixelAspectRatio / 1000 = "
                          f"{standard} mm; the standard tag is used, as SlicerHeart does", UserWarning, stacklevel=4)
        spacing, info["spacing_source"] = standard, "PixelAspectRatio/1000"
    elif private is not None:
        spacing, info["spacing_source"] = private, "private VoxelSize (1129,xx16)"
    else:
        raise FormatError(path, "Eigen Artemis voxel size is missing: neither PixelAspectRatio nor the private "
                                "VoxelSize (1129,xx16) of 'Eigen, Inc' / 'Eigen Artemis' is present")
    if not spacing > 0:
        raise FormatError(path, f"Eigen Artemis voxel size must be positive, got {spacing} mm")
    return spacing, info


def _read_eigen(ds: Any, path: Path, file_path: Path | None) -> Volume:
    spacing, info = _eigen_spacing(ds, path)
    array, components = _frames_array(ds, path, file_path)
    rows, columns, frames = array.shape[1], array.shape[2], array.shape[0]
    n_slices = _count(ds, "NumberOfSlices", "NumberOfSlices", path, default=frames)
    _, direction_lps = _patient_placement(ds, path)
    # Slicer: ITK's IJK-to-RAS directions, then SetSpacing / SetOrigin (RAS), then the permutation.
    ijk_to_ras = np.eye(4)
    ijk_to_ras[:3, :3] = (np.diag([-1.0, -1.0, 1.0]) @ direction_lps) * spacing
    ijk_to_ras[:3, 3] = [0.5 * rows * spacing, 0.5 * columns * spacing, -0.5 * n_slices * spacing]
    geometry = Geometry.from_index_to_ras(_EIGEN_PERMUTATION @ ijk_to_ras)
    info.update({"variant": EIGEN_ARTEMIS, "spacing_mm": spacing, "number_of_slices": n_slices})
    return Volume(array, geometry, name=_name(ds, file_path, "Eigen Artemis 3D US"), components=components,
                  metadata={"dicom": _identity(ds), "ultrasound": info})


def _read_affinity(ds: Any, path: Path, file_path: Path | None) -> Volume:
    tag = _private_tag(ds, 0x200D, 0x03, (_AFFINITY_CREATOR,))
    value = _val(ds, tag) if tag is not None else None
    if value is None:
        raise FormatError(path, f"Philips Affinity voxel spacing (200D,xx03) of '{_AFFINITY_CREATOR}' is missing")
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("latin-1").strip(" \x00").split("\\")
    elif isinstance(value, str):
        value = value.split("\\")
    values = list(value) if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue" else [value]
    if len(values) < 3:
        raise FormatError(path, f"Philips Affinity voxel spacing (200D,xx03) needs 3 values, got {values!r}")
    spacing = np.array([_number(v, "Philips Affinity voxel spacing (200D,xx03)", path) for v in values[:3]])
    if np.any(spacing <= 0):
        raise FormatError(path, f"Philips Affinity voxel spacing must be positive, got {spacing.tolist()}")
    array, components = _frames_array(ds, path, file_path)
    origin, direction = _patient_placement(ds, path)
    geometry = Geometry(spacing, origin, direction)
    info = {"variant": PHILIPS_AFFINITY, "voxel_spacing_mm": spacing.tolist()}
    return Volume(array, geometry, name=_name(ds, file_path, "Philips 3D US"), components=components,
                  metadata={"dicom": _identity(ds), "ultrasound": info})


# -- GE Kretz volume inside DICOM -----------------------------------------------------------------
def _read_kretz(ds: Any, path: Path, file_path: Path | None, scan_convert: bool,
                output_spacing: Any) -> list[Volume]:
    if file_path is None:
        raise FormatError(path, "GE Kretz data in DICOM is read from its file: give the path, not a Dataset "
                                "held in memory")
    import tempfile

    from ..core.errors import MedioError

    elem = _pixel_element_at(ds, _KRETZ_DATA_TAG)
    start = getattr(elem, "value_tell", None)
    length = getattr(elem, "length", None)
    if start is None or length is None or length == 0xFFFFFFFF:
        raise FormatError(path, "cannot locate the Kretz data element (7FE1,1101) in the file")
    manufacturer = _text(_val(ds, "Manufacturer"))
    if manufacturer != "Kretztechnik" and "GE Healthcare" not in manufacturer:
        warnings.warn(f"{path}: Kretz data from an unknown manufacturer {manufacturer!r}", UserWarning, stacklevel=3)
    try:
        from ..formats import kretz
    except ImportError:
        raise FormatError(path, "GE Kretz DICOM needs the GE Kretz reader (napari_medio.formats.kretz)") from None
    with open(file_path, "rb") as fh:
        fh.seek(start)
        data = fh.read(length)
    if len(data) < length:
        raise FormatError(path, f"Kretz data element (7FE1,1101) is truncated: {len(data)} of {length} bytes present")
    data = data[:_kretz_end(data)]
    options = {"scan_convert": scan_convert, "output_spacing": output_spacing}
    # The Kretz reader reads a file to its end; SlicerHeart's reads items until one no longer fits.  Give it
    # exactly the element's items, as a file of their own.
    with tempfile.TemporaryDirectory(prefix="medio-kretz-") as tmp:
        inner = Path(tmp) / "kretz.vol"
        inner.write_bytes(data)
        del data
        try:
            volumes = kretz.read(inner, **options)
        except MedioError as exc:
            raise FormatError(path, f"Kretz data in (7FE1,1101) at byte {start}: {exc.reason}") from None
        for vol in volumes:
            vol.array = np.array(vol.array)  # not a view of the temporary file
    name = _name(ds, file_path, "GE Kretz 3D US")
    for n, vol in enumerate(volumes):
        vol.name = name if len(volumes) == 1 else f"{name} ({n + 1})"
        vol.metadata["dicom"] = _identity(ds)
        vol.metadata["ultrasound"] = {"variant": GE_KRETZ, "kretz_offset": int(start),
                                      "output_spacing": options.get("output_spacing")}
    return volumes


def _kretz_end(data: bytes) -> int:
    """End of the Kretz items in ``data``: where fewer bytes than an item header remain (padding dropped)."""
    import struct

    pos = 16  # signature
    while pos + 8 <= len(data):
        (size,) = struct.unpack_from("<I", data, pos + 4)
        pos += 8 + size
    return min(pos, len(data))


def _pixel_element_at(ds: Any, tag: tuple[int, int]) -> Any:
    try:
        return ds.get_item(tag, keep_deferred=True)
    except TypeError:  # older pydicom
        return ds.get_item(tag)


_READERS = {PHILIPS_4D: _read_philips_4d, EIGEN_ARTEMIS: _read_eigen, PHILIPS_AFFINITY: _read_affinity}


def read_ultrasound(source: Any, *, scan_convert: bool = True,
                    output_spacing: Any = KRETZ_DICOM_OUTPUT_SPACING) -> list[Volume]:
    """The Cartesian 3D/4D ultrasound volume of one vendor DICOM file, in patient LPS (mm).

    ``source`` is a path, a header dict with ``_path`` or a pydicom Dataset (a
    Dataset read from a file is read from that file).  Returns one
    :class:`Volume`: 4D ``(time, k, j, i)`` for a Philips Cartesian 4D file
    with several volumes, else 3D ``(k, j, i)``; placed as SlicerHeart places
    it (see the module docstring).  GE Kretz data is scan-converted by
    :mod:`napari_medio.formats.kretz`; ``scan_convert`` and
    ``output_spacing`` (default 0.667 mm, SlicerHeart's DICOM default) go to
    it, and it may give more than one volume.  Raises :class:`FormatError`
    naming the file for anything that is not one of the variants or is
    inconsistent.
    """
    if isinstance(source, dict):
        source = source.get("_path") or ""
    if isinstance(source, (str, os.PathLike)):
        file_path: Path | None = Path(source)
        ds = _read_header(file_path)
    else:
        ds = source
        name = getattr(ds, "filename", None)
        file_path = Path(name) if isinstance(name, (str, os.PathLike)) and os.path.isfile(name) else None
    path = file_path if file_path is not None else Path("<dataset>")
    try:
        variant = _variant_of_dataset(ds)
    except Exception as exc:
        raise FormatError(path, f"cannot read the DICOM header: {type(exc).__name__}: {exc}") from None
    if not variant:
        raise FormatError(path, "not a 3D/4D ultrasound DICOM variant (Philips Cartesian 4D, Eigen Artemis 3D, "
                                "Philips Affinity 3D or GE Kretz)")
    try:
        if variant == GE_KRETZ:
            volumes = _read_kretz(ds, path, file_path, scan_convert, output_spacing)
        else:
            volumes = [_READERS[variant](ds, path, file_path)]
    except FormatError:
        raise
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:
        raise FormatError(path, f"cannot read {variant} ultrasound: {type(exc).__name__}: {exc}") from None
    if file_path is not None:
        for volume in volumes:
            volume.source = os.fspath(file_path)
    return volumes


def split_ultrasound(headers: list[dict]) -> tuple[list[Volume], list[dict], dict[str, str]]:
    """Read the 3D/4D ultrasound files among series headers: (volumes, the other headers, failed {path: reason}).

    For the series loader: these files must not be assembled as 2D frames.
    """
    volumes: list[Volume] = []
    rest: list[dict] = []
    failed: dict[str, str] = {}
    for h in headers:
        if not is_ultrasound_3d(h):
            rest.append(h)
            continue
        try:
            volumes.extend(read_ultrasound(h))
        except FormatError as exc:
            failed[str(h.get("_path"))] = exc.reason
    return volumes, rest, failed


# -- registry -------------------------------------------------------------------------------------
_PHILIPS_UID_BYTES = PHILIPS_4D_SOP_CLASS.encode()
_US_MULTIFRAME_UID_BYTES = US_MULTIFRAME_SOP_CLASS.encode()
_US_IMAGE_UID_BYTES = US_IMAGE_SOP_CLASS.encode()


def _sniff(head: bytes, path: Path) -> bool:
    if not head:
        return False
    if not sniff_dicom_bytes(head):
        return False
    if _PHILIPS_UID_BYTES in head or any(uid + b"\x00" in head for uid in (_US_MULTIFRAME_UID_BYTES,
                                                                         _US_IMAGE_UID_BYTES)):
        return is_ultrasound_3d(path)
    return False


def _read(path: str | os.PathLike[str], *, scan_convert: bool = True,
          output_spacing: Any = KRETZ_DICOM_OUTPUT_SPACING) -> list:
    return read_ultrasound(path, scan_convert=scan_convert, output_spacing=output_spacing)


DICOM_ULTRASOUND_FORMAT = register(
    FileFormat(
        name="dicom-ultrasound",
        description="3D/4D ultrasound in vendor DICOM: Philips Cartesian 4D (QLAB), Eigen Artemis 3D, "
                    "Philips Affinity 3D, GE Kretz in DICOM (as SlicerHeart reads them)",
        extensions=(".dcm", ".dicom"),
        read=_read,
        sniff=_sniff,
        kinds=(),
        priority=4,
        backend="napari-medio on pydicom (SlicerHeart's DicomUltrasoundPlugin conventions)",
    )
)
