"""DICOM export: volumes -> image series, segmentations -> DICOM SEG, files -> folders with a DICOMDIR.

Slicer's "save to DICOM in two steps" on the core objects:

* :func:`volume_to_datasets` / :func:`export_volume` -- a :class:`~napari_medio.core.volume.Volume`
  becomes a CT, MR or secondary-capture series (one file per slice) or, with
  ``enhanced=True``, one Legacy Converted Enhanced CT/MR multi-frame object (highdicom);
* :func:`segmentation_to_seg` / :func:`export_segmentation` -- a
  :class:`~napari_medio.core.segmentation.Segmentation` or a label-map Volume becomes a
  DICOM Segmentation object (highdicom) referencing its source series, with segment
  names, colours (CIELab) and coded terminology;
* :func:`export_files` -- instances (e.g. out of the database) copied into a folder,
  with a DICOMDIR (pydicom's :class:`~pydicom.fileset.FileSet`) or flat, with progress
  and Cancel.

Patient and study tags are the user's (:class:`ExportTags`) where given, else inherited
from the source's ``metadata["dicom"]`` (what the DICOM reader recorded), else new.
All UIDs of new objects are new (``2.25.`` UUID-derived).  Every file is written
through :func:`~napari_medio.core.fileio.atomic_output`.
"""
from __future__ import annotations

import datetime as _dt
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import CancelledError, FormatError, MedioError, WriteError
from ..core.fileio import atomic_output
from ..core.geometry import Geometry
from ..core.kinds import DataKind
from ..core.volume import Volume

__all__ = [
    "ExportTags",
    "SOP_CLASSES",
    "volume_to_datasets",
    "export_volume",
    "load_reference_series",
    "segmentation_to_seg",
    "export_segmentation",
    "export_object",
    "export_files",
    "export_to_database",
    "export_from_database",
    "terminology_codes",
    "rgb_to_cielab",
    "cielab_to_rgb",
    "ProgressCallback",
]

ProgressCallback = Callable[[int, int], None]

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
SC_IMAGE = "1.2.840.10008.5.1.4.1.1.7"
SOP_CLASSES = {"CT": CT_IMAGE, "MR": MR_IMAGE, "SC": SC_IMAGE}
EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
MANUFACTURER = "napari-medio"

#: Slicer's default segment terminology (Tissue / Tissue).
DEFAULT_CATEGORY = ("SCT", "85756007", "Tissue")
DEFAULT_TYPE = ("SCT", "85756007", "Tissue")


def _version() -> str:
    try:
        from .. import __version__

        return str(__version__)
    except Exception:  # pragma: no cover
        return "0"


def new_uid() -> str:
    """A new, valid, globally unique UID (``2.25.<uuid4 as integer>``)."""
    from pydicom.uid import generate_uid

    return str(generate_uid(prefix=None))


# -- tags ----------------------------------------------------------------------------------------
@dataclass
class ExportTags:
    """Patient / study / series tags of an export; None = inherit from the source, else new.

    ``modality`` is CT, MR or anything else (written as secondary capture with
    that Modality; default "OT").  ``inherit`` False starts a new patient and study
    even when the source carries ``metadata["dicom"]``.
    """

    patient_name: str | None = None
    patient_id: str | None = None
    patient_birth_date: str | None = None
    patient_sex: str | None = None
    study_instance_uid: str | None = None
    study_description: str | None = None
    study_id: str | None = None
    study_date: str | None = None
    study_time: str | None = None
    accession_number: str | None = None
    series_description: str | None = None
    series_number: int | None = None
    modality: str | None = None
    frame_of_reference_uid: str | None = None
    manufacturer: str = MANUFACTURER
    inherit: bool = True
    extra: dict = field(default_factory=dict)

    def resolve(self, source: dict | None = None, default_description: str = "") -> dict:
        """Concrete DICOM keyword values: explicit values, else inherited from ``source``, else new.

        A study is inherited only with its patient: naming another patient ID starts a new study.
        """
        src = dict(source or {}) if self.inherit else {}
        now = _dt.datetime.now()
        same_patient = self.patient_id is None or self.patient_id == src.get("PatientID")
        if not same_patient:
            src = {k: v for k, v in src.items() if k in ("Modality", "FrameOfReferenceUID")}
        out = {
            "PatientName": _first_set(self.patient_name, src.get("PatientName"), "Anonymous^"),
            "PatientID": _first_set(self.patient_id, src.get("PatientID"), "MEDIO-" + new_uid()[-10:]),
            "PatientBirthDate": _first_set(self.patient_birth_date, src.get("PatientBirthDate"), ""),
            "PatientSex": _first_set(self.patient_sex, src.get("PatientSex"), ""),
            "StudyInstanceUID": _first_set(self.study_instance_uid, src.get("StudyInstanceUID"), None) or new_uid(),
            "StudyDescription": _first_set(self.study_description, src.get("StudyDescription"), ""),
            "StudyID": _first_set(self.study_id, src.get("StudyID"), ""),
            "StudyDate": _first_set(self.study_date, src.get("StudyDate"), now.strftime("%Y%m%d")),
            "StudyTime": _first_set(self.study_time, src.get("StudyTime"), now.strftime("%H%M%S")),
            "AccessionNumber": _first_set(self.accession_number, src.get("AccessionNumber"), ""),
            "SeriesDescription": _first_set(self.series_description, None, default_description or ""),
            "SeriesNumber": int(self.series_number) if self.series_number is not None else None,
            "Modality": (self.modality or "").upper() or None,
            "FrameOfReferenceUID": _first_set(self.frame_of_reference_uid, src.get("FrameOfReferenceUID"), None),
            "Manufacturer": self.manufacturer,
            "SourceModality": str(src.get("Modality") or "").upper(),
        }
        if self.study_description is not None and self.study_instance_uid is None and src.get("StudyInstanceUID") \
                and self.study_description != (src.get("StudyDescription") or ""):
            out["StudyInstanceUID"] = new_uid()  # a differently named study is a new study
            out["StudyID"] = self.study_id or ""
        out.update(self.extra)
        return out

    @classmethod
    def from_mapping(cls, values: dict) -> ExportTags:
        """From a dict with this class's field names (unknown keys go to ``extra``)."""
        names = {f.name for f in fields(cls)}
        known = {k: v for k, v in values.items() if k in names}
        extra = {k: v for k, v in values.items() if k not in names}
        if extra:
            known.setdefault("extra", {}).update(extra)
        return cls(**known)


def _first_set(*values: Any) -> Any:
    for v in values:
        if v is not None:
            if isinstance(v, list):
                v = v[0] if v else ""
            return str(v) if not isinstance(v, (int, float)) else v
    return None


def _source_identity(obj: Any) -> dict:
    md = getattr(obj, "metadata", None) or {}
    ident = md.get("dicom")
    return dict(ident) if isinstance(ident, dict) else {}


# -- value helpers ---------------------------------------------------------------------------------
def _ds(x: float):
    """A Decimal String value (at most 16 characters) for ``x``, formatted by pydicom.

    ``x`` is first rounded to 14 significant digits: pydicom's auto-format alone writes values just
    below a power of ten (9.999999999999998) as 17 characters (``10.00000000000000``).
    """
    from pydicom.valuerep import DSfloat

    x = float(f"{float(x):.14g}")
    if abs(x) < 1e-12:
        x = 0.0
    return DSfloat(x, auto_format=True)


def _check_cancel(cancel: Callable[[], bool] | None) -> None:
    if cancel is not None and cancel():
        raise CancelledError(None, "export cancelled")


def _encode_pixels(arr: np.ndarray, signed_required: bool = False) -> tuple[np.ndarray, float, float, bool]:
    """16-bit stored values and the rescale (slope, intercept) giving back ``arr``; last: exact."""
    a = np.asarray(arr)
    if a.dtype == bool:
        a = a.astype(np.uint8)
    if a.size == 0:
        return a.astype(np.int16), 1.0, 0.0, True
    if not np.issubdtype(a.dtype, np.integer):
        if not np.all(np.isfinite(a)):
            raise MedioError(None, "the volume holds NaN or infinite values, which DICOM images cannot store")
        if np.array_equal(a, np.round(a)):
            lo, hi = float(a.min()), float(a.max())
            if lo >= -32768 and hi <= 65535:
                a = a.astype(np.int64)
    lo = float(a.min())
    hi = float(a.max())
    if np.issubdtype(a.dtype, np.integer):
        if lo >= -32768 and hi <= 32767:
            return a.astype(np.int16), 1.0, 0.0, True
        if lo >= 0 and hi <= 65535 and not signed_required:
            return a.astype(np.uint16), 1.0, 0.0, True
        if hi - lo <= 65535:  # an integer intercept makes it exact
            intercept = lo + 32768.0
            return (a - int(intercept)).astype(np.int16), 1.0, intercept, True
    # Lossy: a linear map onto the int16 range.
    span = hi - lo
    slope = span / 65534.0 if span > 0 else 1.0
    intercept = lo + 32767.0 * slope
    stored = np.clip(np.round((a.astype(np.float64) - intercept) / slope), -32768, 32767).astype(np.int16)
    return stored, slope, intercept, False


def _window(volume: Volume, values: np.ndarray) -> tuple[float, float]:
    if volume.window is not None:
        return volume.window.center, max(volume.window.width, 1.0)
    sample = values.ravel()
    if sample.size > 1 << 20:
        sample = sample[:: sample.size // (1 << 20) + 1]
    lo, hi = np.percentile(sample, [1, 99]) if sample.size else (0.0, 1.0)
    if hi <= lo:
        lo, hi = float(values.min()), float(values.max()) + 1.0
    return (float(lo) + float(hi)) / 2.0, max(float(hi) - float(lo), 1.0)


def _plane_vectors(geometry: Geometry, path: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    g = geometry.as_3d()
    row_dir = g.direction[:, 0]  # along i (a row, left to right)
    col_dir = g.direction[:, 1]  # along j (a column, top to bottom)
    if abs(float(row_dir @ col_dir)) > 1e-4:
        raise MedioError(path, "the image rows and columns are not perpendicular (sheared in-plane): "
                               "DICOM images cannot store this geometry")
    return row_dir, col_dir, g.direction[:, 2] * g.spacing[2]


# -- volume -> image series --------------------------------------------------------------------------
def _base_dataset(tags: dict, sop_class: str, sop_uid: str, series_uid: str, modality: str,
                  now: _dt.datetime) -> Any:
    from pydicom.dataset import Dataset, FileMetaDataset

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = EXPLICIT_VR_LE
    meta.ImplementationClassUID = "1.2.826.0.1.3680043.10.1467.1"
    meta.ImplementationVersionName = ("MEDIO_" + _version())[:16]
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.InstanceCreationDate = now.strftime("%Y%m%d")
    ds.InstanceCreationTime = now.strftime("%H%M%S")
    ds.StudyDate = tags["StudyDate"]
    ds.SeriesDate = now.strftime("%Y%m%d")
    ds.ContentDate = now.strftime("%Y%m%d")
    ds.StudyTime = tags["StudyTime"]
    ds.SeriesTime = now.strftime("%H%M%S")
    ds.ContentTime = now.strftime("%H%M%S")
    ds.AccessionNumber = tags["AccessionNumber"]
    ds.Modality = modality
    ds.Manufacturer = tags["Manufacturer"]
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = tags["StudyDescription"]
    ds.SeriesDescription = tags["SeriesDescription"]
    ds.ManufacturerModelName = "napari-medio"
    ds.SoftwareVersions = _version()
    ds.PatientName = tags["PatientName"]
    ds.PatientID = tags["PatientID"]
    ds.PatientBirthDate = tags["PatientBirthDate"]
    ds.PatientSex = tags["PatientSex"] if tags["PatientSex"] in ("M", "F", "O") else ""
    ds.StudyInstanceUID = tags["StudyInstanceUID"]
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = tags["StudyID"]
    ds.SeriesNumber = tags["SeriesNumber"]
    ds.Laterality = ""
    ds.PatientPosition = ""
    return ds


def _image_modality(volume: Volume, tags: dict) -> tuple[str, str]:
    """(Modality, IOD key CT/MR/SC) for a volume."""
    mod = tags.get("Modality") or tags.get("SourceModality") or ""
    mod = mod.upper()
    if volume.components is not None:
        return (mod if mod and mod not in ("CT", "MR") else "OT"), "SC"
    if mod in ("CT", "MR"):
        return mod, mod
    return (mod or "OT"), "SC"


def _series_tags(volume: Any, tags: ExportTags, enhanced: bool) -> tuple[dict, str, str]:
    """The resolved tags, modality and IOD of an image series export, after checking the volume fits one."""
    if not isinstance(volume, Volume):
        raise MedioError(None, f"cannot export a {type(volume).__name__} as a DICOM image series")
    if volume.extra_axes:
        raise MedioError(volume.source, "a DICOM image series holds one 3D volume; export one time point "
                                        f"(this volume has {len(volume.extra_axes)} extra axes)")
    t = tags.resolve(_source_identity(volume), default_description=volume.name)
    modality, iod = _image_modality(volume, t)
    if enhanced and iod == "SC":
        raise MedioError(volume.source, "an enhanced multi-frame object needs modality CT or MR "
                                        "(secondary capture has no enhanced form)")
    if t["SeriesNumber"] is None:
        t["SeriesNumber"] = 1
    return t, modality, iod


def _stored_pixels(volume: Volume, arr: np.ndarray) -> tuple[np.ndarray, float, float, bool]:
    """(stored voxels, slope, intercept, exact): 8-bit RGB for colour volumes, else 16-bit rescaled."""
    if volume.components is None:
        return _encode_pixels(arr, signed_required=False)
    if arr.shape[-1] not in (3, 4):
        raise MedioError(volume.source, f"cannot store {arr.shape[-1]} voxel components in DICOM (1 or 3)")
    if arr.dtype != np.uint8:
        raise MedioError(volume.source, "colour volumes are exported as 8-bit RGB; convert the voxels to uint8")
    return np.ascontiguousarray(arr[..., :3]), 1.0, 0.0, True


def _set_rgb_pixels(ds: Any) -> None:
    """Image Pixel module attributes of 8-bit interleaved RGB."""
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0


def _set_grey_pixels(ds: Any, signed: bool, slope: float, intercept: float, iod: str,
                     window: tuple[float, float]) -> None:
    """Image Pixel, Modality LUT and VOI LUT attributes of 16-bit greyscale."""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1 if signed else 0
    ds.RescaleIntercept = _ds(intercept)
    ds.RescaleSlope = _ds(slope)
    ds.RescaleType = "HU" if iod == "CT" else "US"
    ds.WindowCenter = _ds(window[0])
    ds.WindowWidth = _ds(window[1])


def _set_iod_attributes(ds: Any, iod: str) -> None:
    """The Type 2 attributes the CT or MR image IOD requires (empty), or the SC conversion type."""
    if iod == "CT":
        ds.KVP = ""
        ds.AcquisitionNumber = ""
    elif iod == "MR":
        ds.ScanningSequence = "RM"
        ds.SequenceVariant = "NONE"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = ""
        ds.RepetitionTime = ""
        ds.EchoTime = ""
        ds.EchoTrainLength = ""
        del ds.RescaleType
    else:
        ds.ConversionType = "WSD"


def _set_plane(ds: Any, geometry: Geometry, k: int, nk: int, thickness: float,
               planes: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    """Image Plane module of slice ``k`` (LPS position and orientation, spacing in mm)."""
    row_dir, col_dir, k_step = planes
    ds.PatientOrientation = ""
    ds.PositionReferenceIndicator = ""
    ds.ImagePositionPatient = [_ds(v) for v in geometry.origin + k * k_step]
    ds.ImageOrientationPatient = [_ds(v) for v in np.r_[row_dir, col_dir]]
    ds.PixelSpacing = [_ds(geometry.spacing[1]), _ds(geometry.spacing[0])]
    ds.SliceThickness = _ds(thickness)
    if nk > 1:
        ds.SpacingBetweenSlices = _ds(thickness)


def volume_to_datasets(volume: Volume, tags: ExportTags | None = None, *, enhanced: bool = False,
                       cancel: Callable[[], bool] | None = None) -> list:
    """pydicom datasets of a new image series holding ``volume`` (sorted by slice).

    Voxels are stored as 16-bit integers with Rescale Slope/Intercept (exact for
    integer data within a 16-bit range, else a linear map with a warning in
    ``ImageComments``); RGB volumes become 8-bit RGB secondary capture.  With
    ``enhanced`` a CT/MR volume becomes one Legacy Converted Enhanced multi-frame object.
    """
    t, modality, iod = _series_tags(volume, tags or ExportTags(), enhanced)
    geometry = volume.geometry.as_3d()
    arr = np.asarray(volume.array)
    if volume.geometry.ndim == 2:
        arr = arr[np.newaxis]
    planes = _plane_vectors(geometry, volume.source)
    is_rgb = volume.components is not None
    stored, slope, intercept, exact = _stored_pixels(volume, arr)
    series_uid = new_uid()
    for_uid = t["FrameOfReferenceUID"] or new_uid()
    now = _dt.datetime.now()
    nk, rows, cols = stored.shape[:3]
    window = (None, None) if is_rgb else _window(volume, arr)
    thickness = float(np.linalg.norm(planes[2])) if nk > 1 else float(geometry.spacing[2])
    datasets = []
    for k in range(nk):
        _check_cancel(cancel)
        ds = _base_dataset(t, SOP_CLASSES[iod], new_uid(), series_uid, modality, now)
        ds.InstanceNumber = k + 1
        ds.FrameOfReferenceUID = for_uid
        _set_plane(ds, geometry, k, nk, thickness, planes)
        ds.Rows = int(rows)
        ds.Columns = int(cols)
        if is_rgb:
            _set_rgb_pixels(ds)
        else:
            _set_grey_pixels(ds, stored.dtype == np.int16, slope, intercept, iod, window)
        ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL" if iod == "CT" else "OTHER"]
        ds.BurnedInAnnotation = "NO"
        if not exact:
            ds.ImageComments = "voxels rescaled to 16 bits by napari-medio (lossy)"
        _set_iod_attributes(ds, iod)
        ds.PixelData = np.ascontiguousarray(stored[k]).tobytes()
        datasets.append(ds)
    if enhanced:
        return [_enhanced_from(datasets, iod, t)]
    return datasets


def _enhanced_from(datasets: list, iod: str, t: dict) -> Any:
    import highdicom as hd

    cls = hd.legacy.LegacyConvertedEnhancedCTImage if iod == "CT" else hd.legacy.LegacyConvertedEnhancedMRImage
    for ds in datasets:  # the legacy converter wants plain image instances
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"] if iod == "CT" else ["ORIGINAL", "PRIMARY", "OTHER"]
    import warnings

    with warnings.catch_warnings():  # highdicom's converter re-assigns empty Type 2 values
        warnings.simplefilter("ignore", UserWarning)
        obj = cls(datasets, series_instance_uid=datasets[0].SeriesInstanceUID,
                  series_number=int(t["SeriesNumber"]), sop_instance_uid=new_uid(), instance_number=1)
    obj.SpecificCharacterSet = "ISO_IR 192"
    obj.Laterality = ""
    _fill_unassigned_per_frame(obj)
    obj.SeriesDescription = t["SeriesDescription"]
    # The classic instances it was built from are never written: do not reference them.
    for key in ("ReferencedSeriesSequence", "ReferencedImageSequence"):
        if key in obj:
            delattr(obj, key)
    return obj


def _fill_unassigned_per_frame(obj: Any) -> None:
    """Give every frame the Type 2 Unassigned Per-Frame Converted Attributes Sequence.

    highdicom's legacy converter leaves it out when no attribute differs between frames (a
    one-slice volume); the Legacy Converted Enhanced IODs require it with one item, an empty item
    when nothing is unassigned.
    """
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as DicomSequence

    for item in obj.PerFrameFunctionalGroupsSequence:
        if "UnassignedPerFrameConvertedAttributesSequence" not in item:
            item.UnassignedPerFrameConvertedAttributesSequence = DicomSequence([Dataset()])


def _write_dataset(ds: Any, target: Path) -> Path:
    with atomic_output(target) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
    return target


def _series_folder(out_dir: Path, ds: Any) -> Path:
    number = getattr(ds, "SeriesNumber", "") or ""
    return out_dir / f"{ds.Modality}_{number}_{str(ds.SeriesInstanceUID)[-12:]}"


def _write_series(datasets: Sequence, out_dir: str | os.PathLike[str], progress: ProgressCallback | None,
                  cancel: Callable[[], bool] | None, subfolder: bool = True) -> list[Path]:
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise WriteError(out, "not a folder")
    if not datasets:
        return []
    folder = _series_folder(out, datasets[0]) if subfolder else out
    written: list[Path] = []
    total = len(datasets)
    try:
        for n, ds in enumerate(datasets):
            _check_cancel(cancel)
            written.append(_write_dataset(ds, folder / f"{ds.Modality}{n + 1:05d}.dcm"))
            if progress is not None:
                progress(n + 1, total)
    except CancelledError:
        for p in written:  # a cancelled series is removed, never left half-written
            p.unlink(missing_ok=True)
        raise
    return written


def export_volume(volume: Volume, out_dir: str | os.PathLike[str], tags: ExportTags | None = None, *,
                  enhanced: bool = False, progress: ProgressCallback | None = None,
                  cancel: Callable[[], bool] | None = None, subfolder: bool = True) -> list[Path]:
    """Write ``volume`` as a new DICOM series into ``out_dir`` (a sub-folder per series); returns the files."""
    datasets = volume_to_datasets(volume, tags, enhanced=enhanced, cancel=cancel)
    return _write_series(datasets, out_dir, progress, cancel, subfolder)


# -- reference series -----------------------------------------------------------------------------
def load_reference_series(source: str | os.PathLike[str] | Sequence, series_uid: str | None = None) -> list:
    """Image datasets (with pixels) of one series: a folder, a file list or datasets, sorted along the normal.

    When the source holds several image series, ``series_uid`` chooses; otherwise the
    series with most instances is taken.
    """
    import pydicom

    from .series import NON_IMAGE_MODALITIES, scan_files

    if isinstance(source, (str, os.PathLike)):
        p = Path(source)
        if not p.exists():
            raise FormatError(p, "reference series not found")
        files = scan_files([p]) if p.is_dir() else [os.fspath(p)]
        label: Any = p
    else:
        files = list(source)
        label = None
    datasets = []
    for f in files:
        if isinstance(f, pydicom.Dataset):
            datasets.append(f)
            continue
        try:
            ds = pydicom.dcmread(f, force=True)
        except Exception:
            continue
        if "PixelData" not in ds and "FloatPixelData" not in ds or "SeriesInstanceUID" not in ds:
            continue
        if str(ds.get("Modality", "")).upper() in NON_IMAGE_MODALITIES:
            continue
        datasets.append(ds)
    if not datasets:
        raise FormatError(label, "no DICOM image instances found for the reference series")
    groups: dict[str, list] = {}
    for ds in datasets:
        groups.setdefault(str(ds.SeriesInstanceUID), []).append(ds)
    if series_uid is not None:
        if series_uid not in groups:
            raise FormatError(label, f"reference series {series_uid} not found")
        chosen = groups[series_uid]
    else:
        chosen = max(groups.values(), key=len)
    return _sort_along_normal(chosen)


def _sort_along_normal(datasets: list) -> list:
    first = datasets[0]
    if "ImageOrientationPatient" not in first or "ImagePositionPatient" not in first:
        return sorted(datasets, key=lambda d: int(d.get("InstanceNumber", 0) or 0))
    iop = np.array(first.ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    return sorted(datasets, key=lambda d: float(np.dot(normal, np.array(d.ImagePositionPatient, dtype=float))))


def reference_geometry(datasets: Sequence) -> tuple[Geometry, tuple[int, int, int]]:
    """Geometry and (k, j, i) shape of a sorted single-frame series (classic images)."""
    first = datasets[0]
    iop = np.array(first.ImageOrientationPatient, dtype=float)
    row_dir, col_dir = iop[:3], iop[3:]
    ps = np.array(first.PixelSpacing, dtype=float)
    origin = np.array(first.ImagePositionPatient, dtype=float)
    n = len(datasets)
    if int(first.get("NumberOfFrames", 1) or 1) > 1:
        raise MedioError(None, "use a classic (single-frame) reference series")
    if n > 1:
        last = np.array(datasets[-1].ImagePositionPatient, dtype=float)
        step = (last - origin) / (n - 1)
        dz = float(np.linalg.norm(step))
        k_dir = step / dz if dz > 0 else np.cross(row_dir, col_dir)
    else:
        dz = float(first.get("SliceThickness", 1.0) or 1.0)
        k_dir = np.cross(row_dir, col_dir)
    direction = np.column_stack([row_dir, col_dir, k_dir])
    return Geometry([ps[1], ps[0], dz], origin, direction), (n, int(first.Rows), int(first.Columns))


# -- segmentation -> DICOM SEG ------------------------------------------------------------------------
def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    c = np.asarray(c, dtype=float)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def rgb_to_cielab(rgb: Sequence[float]) -> tuple[float, float, float]:
    """sRGB (0-1) -> CIE L*a*b* (D65), as DICOM Recommended Display CIELab values describe."""
    import highdicom as hd

    r, g, b = (min(max(float(c), 0.0), 1.0) * 255.0 for c in rgb[:3])
    lab = hd.color.CIELabColor.from_rgb(r, g, b)
    return float(lab.l_star), float(lab.a_star), float(lab.b_star)


def cielab_to_rgb(dicom_value: Sequence[int]) -> tuple[float, float, float]:
    """DICOM scaled CIELab (three 0-65535 integers) -> sRGB (0-1)."""
    import highdicom as hd

    lab = hd.color.CIELabColor.from_dicom_value(tuple(int(v) for v in dicom_value))
    r, g, b = lab.to_rgb(clip=True)
    return (round(r / 255.0, 6), round(g / 255.0, 6), round(b / 255.0, 6))


def _code(triplet: dict | None, default: tuple[str, str, str]) -> Any:
    from highdicom.sr import CodedConcept

    if triplet and triplet.get("value") and triplet.get("scheme"):
        return CodedConcept(value=str(triplet["value"]), scheme_designator=str(triplet["scheme"]),
                            meaning=str(triplet.get("meaning") or triplet["value"]))
    return CodedConcept(value=default[1], scheme_designator=default[0], meaning=default[2])


def terminology_codes(segment: Any) -> dict:
    """``{"category", "type", "type_modifier", "region", "region_modifier"}`` coded concepts of a segment.

    From Slicer's ``TerminologyEntry`` tag when set, else Slicer's default (Tissue / Tissue).
    """
    from ..core.segmentation import parse_terminology

    entry = parse_terminology(getattr(segment, "terminology", None)) or {}
    out = {"category": _code(entry.get("category"), DEFAULT_CATEGORY),
           "type": _code(entry.get("type"), DEFAULT_TYPE)}
    for key in ("type_modifier", "region", "region_modifier"):
        if entry.get(key):
            out[key] = _code(entry[key], ("", "", ""))
    return out


def _as_segmentation(obj: Any) -> Any:
    from ..core.segmentation import Segmentation

    if isinstance(obj, Segmentation):
        return obj
    if isinstance(obj, Volume):
        return Segmentation.from_labelmap(obj)
    raise MedioError(getattr(obj, "source", None), f"cannot export a {type(obj).__name__} as DICOM SEG")


def _hd_affine(geometry: Geometry) -> np.ndarray:
    """4x4 affine from highdicom's (slice, row, column) index to LPS."""
    g = geometry.as_3d()
    m = np.eye(4)
    steps = g.direction * g.spacing
    m[:3, 0] = steps[:, 2]
    m[:3, 1] = steps[:, 1]
    m[:3, 2] = steps[:, 0]
    m[:3, 3] = g.origin
    return m


def segmentation_to_seg(obj: Any, reference: str | os.PathLike[str] | Sequence, tags: ExportTags | None = None,
                        *, fractional: bool = False, omit_empty_frames: bool = False,
                        algorithm_type: str = "MANUAL") -> Any:
    """A highdicom Segmentation (DICOM SEG) of ``obj`` referencing the ``reference`` image series.

    ``obj`` is a :class:`~napari_medio.core.segmentation.Segmentation` (overlapping
    segments allowed) or a label-map Volume.  Its grid may differ from the
    reference's (same frame of reference); frames are placed by their LPS positions.
    """
    import highdicom as hd

    seg = _as_segmentation(obj)
    ref = load_reference_series(reference) if not (isinstance(reference, (list, tuple)) and reference
                                                   and hasattr(reference[0], "SOPInstanceUID")) \
        else _sort_along_normal(list(reference))
    if not seg.segments:
        raise MedioError(seg.source, "the segmentation has no segments to export")
    _plane_vectors(seg.geometry, seg.source)
    tags = tags or ExportTags()
    t = tags.resolve(_ref_ident(ref[0]), default_description=seg.name or "Segmentation")
    masks = np.zeros(seg.spatial_shape + (len(seg.segments),), dtype=bool)
    descriptions = []
    for n, s in enumerate(seg.segments):
        masks[..., n] = seg.mask(s)
        codes = terminology_codes(s)
        lab = rgb_to_cielab(s.color)
        descriptions.append(hd.seg.SegmentDescription(
            segment_number=n + 1,
            segment_label=(s.name or s.id)[:64],
            segmented_property_category=codes["category"],
            segmented_property_type=codes["type"],
            algorithm_type=algorithm_type,
            algorithm_identification=None if algorithm_type == "MANUAL" else hd.AlgorithmIdentificationSequence(
                name="napari-medio", version=_version(),
                family=hd.sr.CodedConcept("123109", "DCM", "Manual Processing")),
            tracking_uid=new_uid(),
            tracking_id=str(s.id)[:64],
            anatomic_regions=[codes["region"]] if "region" in codes else None,
            display_color=hd.color.CIELabColor(*lab),
        ))
        if "type_modifier" in codes:
            descriptions[-1].SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence = \
                [codes["type_modifier"]]
    for_uid = str(ref[0].get("FrameOfReferenceUID", "") or "") or None
    volume = hd.Volume(masks.astype(np.uint8), _hd_affine(seg.geometry), coordinate_system="PATIENT",
                       frame_of_reference_uid=for_uid,
                       channels={"SegmentNumber": list(range(1, len(seg.segments) + 1))})
    number = t["SeriesNumber"] if t["SeriesNumber"] is not None else 100
    import warnings

    with warnings.catch_warnings():  # single-component patient names in the source are fine
        warnings.filterwarnings("ignore", message=".*unlikely to represent the intended person name.*")
        obj_seg = _make_seg(hd, ref, volume, fractional, descriptions, number, t, seg, omit_empty_frames)
    obj_seg.SpecificCharacterSet = "ISO_IR 192"
    # highdicom copies patient/study from the source; explicit tags win.
    for key in ("PatientName", "PatientID", "StudyDescription"):
        explicit = getattr(tags, _snake(key))
        if explicit is not None:
            setattr(obj_seg, key, explicit)
    return obj_seg


def _make_seg(hd: Any, ref: list, volume: Any, fractional: bool, descriptions: list, number: int, t: dict, seg: Any,
              omit_empty_frames: bool) -> Any:
    return hd.seg.Segmentation(
        source_images=ref,
        pixel_array=volume,
        segmentation_type="FRACTIONAL" if fractional else "BINARY",
        segment_descriptions=descriptions,
        series_instance_uid=new_uid(),
        series_number=int(number),
        sop_instance_uid=new_uid(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name="napari-medio",
        software_versions=_version(),
        device_serial_number="0",
        series_description=(t["SeriesDescription"] or "Segmentation")[:64],
        content_label="SEGMENTATION",
        content_description=(seg.name or "napari-medio segmentation")[:64],
        content_creator_name="napari-medio^",
        omit_empty_frames=omit_empty_frames,
        specific_character_set="ISO_IR 192",
    )


def _snake(keyword: str) -> str:
    return {"PatientName": "patient_name", "PatientID": "patient_id", "StudyDescription": "study_description"}[keyword]


def _ref_ident(ds: Any) -> dict:
    keys = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDescription",
            "StudyID", "StudyDate", "StudyTime", "AccessionNumber", "Modality", "FrameOfReferenceUID")
    return {k: str(ds.get(k)) for k in keys if ds.get(k) not in (None, "")}


def export_segmentation(obj: Any, out_dir: str | os.PathLike[str], reference: Any,
                        tags: ExportTags | None = None, *, subfolder: bool = True, **options: Any) -> list[Path]:
    """Write ``obj`` as a DICOM SEG file referencing ``reference``; returns ``[path]``."""
    ds = segmentation_to_seg(obj, reference, tags, **options)
    out = Path(out_dir)
    folder = _series_folder(out, ds) if subfolder else out
    return [_write_dataset(ds, folder / "SEG00001.dcm")]


def export_object(obj: Any, out_dir: str | os.PathLike[str], tags: ExportTags | None = None, *,
                  reference: Any = None, enhanced: bool = False, progress: ProgressCallback | None = None,
                  cancel: Callable[[], bool] | None = None) -> list[Path]:
    """Export one data object: a segmentation or label map -> SEG (needs ``reference``), a volume -> series.

    Models, markups and other objects raise a clear :class:`MedioError` (DICOM export skips them).
    """
    from ..core.segmentation import Segmentation

    if isinstance(obj, Segmentation) or (isinstance(obj, Volume) and obj.kind == DataKind.LABELMAP):
        if reference is None:
            raise MedioError(getattr(obj, "source", None),
                             "a segmentation is exported as DICOM SEG referencing the image series it was drawn "
                             "on: give the reference series (--reference SERIES_DIR)")
        files = export_segmentation(obj, out_dir, reference, tags)
        if progress is not None:
            progress(1, 1)
        return files
    if isinstance(obj, Volume):
        return export_volume(obj, out_dir, tags, enhanced=enhanced, progress=progress, cancel=cancel)
    kind = getattr(obj, "kind", type(obj).__name__)
    raise MedioError(getattr(obj, "source", None), f"a {kind} cannot be exported to DICOM (skipped)")


# -- files -> folder (DICOMDIR or flat) -----------------------------------------------------------------
def export_files(files: Iterable[str | os.PathLike[str]], out_dir: str | os.PathLike[str], *,
                 dicomdir: bool = True, progress: ProgressCallback | None = None,
                 cancel: Callable[[], bool] | None = None) -> list[Path]:
    """Copy DICOM instances into ``out_dir``: as a DICOM File-set with a DICOMDIR, or flat.

    DICOMDIR mode adds to an existing File-set in ``out_dir`` (instances already in it
    are skipped) and writes the new DICOMDIR atomically; flat mode names files
    ``<SOPInstanceUID>.dcm``.  Returns the paths of the files in the folder.
    """
    import pydicom

    src = [Path(f) for f in files]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    total = len(src)
    if not dicomdir:
        written = []
        for n, f in enumerate(src):
            _check_cancel(cancel)
            try:
                ds = pydicom.dcmread(f, stop_before_pixels=True, specific_tags=["SOPInstanceUID"], force=True)
                uid = str(ds.SOPInstanceUID)
            except Exception as exc:
                raise FormatError(f, f"not a DICOM instance: {exc}") from None
            target = out / f"{uid}.dcm"
            with atomic_output(target) as tmp:
                shutil.copyfile(f, tmp)
            written.append(target)
            if progress is not None:
                progress(n + 1, total)
        return written
    from pydicom.fileset import FileSet

    existing = out / "DICOMDIR"
    fs = FileSet(existing) if existing.exists() else FileSet()
    have = {str(i.SOPInstanceUID) for i in fs}
    for n, f in enumerate(src):
        _check_cancel(cancel)
        try:
            ds = pydicom.dcmread(f, force=True)
        except Exception as exc:
            raise FormatError(f, f"not a DICOM instance: {exc}") from None
        if "SOPInstanceUID" not in ds or "SOPClassUID" not in ds:
            raise FormatError(f, "not a DICOM instance (no SOP Class/Instance UID)")
        if not hasattr(ds, "file_meta") or "TransferSyntaxUID" not in ds.file_meta:
            ds.ensure_file_meta()
            ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2" if ds.is_implicit_VR else EXPLICIT_VR_LE
        if str(ds.SOPInstanceUID) in have:
            continue
        if "SpecificCharacterSet" in ds and not ds.SpecificCharacterSet:
            del ds.SpecificCharacterSet  # an empty Type 1C value would be copied into the DICOMDIR records
        fs.add(ds)
        have.add(str(ds.SOPInstanceUID))
        if progress is not None:
            progress(n + 1, total)
    _check_cancel(cancel)
    _write_fileset(fs, out)
    return [Path(i.path) for i in fs]


def _write_fileset(fs: Any, out: Path) -> None:
    """Write the File-set (copies staged instances) and then its DICOMDIR, atomically."""
    if fs.path is None:
        fs.write(out)  # writes instances, then DICOMDIR
        return
    fs.write()


# -- database ----------------------------------------------------------------------------------------------
def export_to_database(obj: Any, database: Any, tags: ExportTags | None = None, *, reference: Any = None,
                       enhanced: bool = False, progress: ProgressCallback | None = None,
                       cancel: Callable[[], bool] | None = None) -> list[str]:
    """Export ``obj`` as new DICOM instances and import them (copied) into a DICOM database.

    ``database`` is an open :class:`~napari_medio.dicom.database.DicomDatabase` (or anything
    with ``import_paths(paths, copy=True)``; this module does not import the database).  A segmentation
    without ``reference`` uses the series its ``metadata["dicom"]`` names, when the
    database holds it.  Returns the SOP Instance UIDs written.
    """
    import tempfile

    import pydicom

    if isinstance(database, (str, os.PathLike)):
        raise MedioError(database, "export_to_database needs an open DicomDatabase, not a folder")
    importer = getattr(database, "import_paths", None)
    if importer is None:
        raise MedioError(None, "the database has no import function")
    if reference is None:
        reference = _reference_from_database(obj, database)
    with tempfile.TemporaryDirectory(prefix="medio-export-") as tmp:
        files = export_object(obj, tmp, tags, reference=reference, enhanced=enhanced, progress=progress,
                              cancel=cancel)
        uids = [str(pydicom.dcmread(f, stop_before_pixels=True, specific_tags=["SOPInstanceUID"]).SOPInstanceUID)
                for f in files]
        _check_cancel(cancel)
        importer([os.fspath(f) for f in files], copy=True)
    return uids


def _reference_from_database(obj: Any, database: Any) -> Any:
    md = getattr(obj, "metadata", None) or {}
    uid = (md.get("dicom") or {}).get("SeriesInstanceUID") if isinstance(md.get("dicom"), dict) else None
    if not uid:
        fields = (md.get("segmentation") or {}).get("fields") or {}
        uid = fields.get("ReferencedSeriesInstanceUID") or md.get("ReferencedSeriesInstanceUID")
    finder = getattr(database, "instance_files", None)
    if uid and finder is not None:
        try:
            present = finder(uid)[0]
        except Exception:
            present = []
        if present:
            return [os.fspath(f) for f in present]
    return None


def export_from_database(database: Any, out_dir: str | os.PathLike[str], *, series: Sequence[str] = (),
                         studies: Sequence[str] = (), dicomdir: bool = True,
                         progress: ProgressCallback | None = None,
                         cancel: Callable[[], bool] | None = None) -> list[Path]:
    """Copy chosen series and studies out of an open DICOM database into ``out_dir`` (DICOMDIR or flat)."""
    if isinstance(database, (str, os.PathLike)):
        raise MedioError(database, "export_from_database needs an open DicomDatabase, not a folder")
    uids = list(series)
    for st in studies:
        uids += [s["uid"] for s in database.series(study_uid=st)]
    if not uids:
        raise MedioError(None, "nothing to export: choose series or studies")
    files: list[str] = []
    for uid in dict.fromkeys(uids):
        present, missing = database.instance_files(uid)
        if not present and not missing:
            raise MedioError(None, f"no series {uid} in the DICOM database")
        if missing:
            raise MedioError(missing[0], f"{len(missing)} file(s) of series {uid} are missing from the database")
        files += present
    return export_files(files, out_dir, dicomdir=dicomdir, progress=progress, cancel=cancel)
