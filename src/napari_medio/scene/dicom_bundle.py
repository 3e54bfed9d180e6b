"""A Slicer scene in a DICOM secondary capture (Slicer's "Slicer Data Bundle" DICOM export).

3D Slicer's ``DICOMSlicerDataBundlePlugin`` / ``DICOMExportScene`` stores a whole scene as a DICOM
Secondary Capture image (a thumbnail as the pixels) whose private block ``cadb`` holds the ``.mrb``:
``(cadb,0010)`` private creator ``"3D Slicer <zip size>"``, ``(cadb,1008)`` LO the zip size and
``(cadb,1010)`` OB the ``.mrb`` bytes, the last element of the file. Slicer loads it by reading the
size from the creator string and the zip from the end of the file. Written and read here with pydicom;
the scene itself goes through napari-medio's ``.mrb`` writer and reader (LPS world, as every scene).
"""
from __future__ import annotations

import datetime
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import FormatError, WriteError
from ..core.fileio import atomic_output
from ..core.registry import FileFormat, register

__all__ = ["write_scene_capture", "read_scene_capture", "is_scene_capture"]

#: The private group Slicer keeps the bundle in, and the start of its private creator string.
PRIVATE_GROUP = 0xCADB
CREATOR_PREFIX = "3D Slicer"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"


def is_scene_capture(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a DICOM file whose private creator ``(cadb,0010)`` names a Slicer bundle."""
    import pydicom

    try:
        ds = pydicom.dcmread(os.fspath(path), defer_size="4 KB", specific_tags=[(PRIVATE_GROUP, 0x0010)])
    except Exception:  # not DICOM, or unreadable: not ours
        return False
    element = ds.get((PRIVATE_GROUP, 0x0010))
    return element is not None and str(element.value).startswith(CREATOR_PREFIX)


def _sniff(head: bytes, path: Path) -> bool:
    return head[128:132] == b"DICM" and SECONDARY_CAPTURE.encode() in head and is_scene_capture(path)


def read_scene_capture(path: str | os.PathLike[str], *, strict: bool = False, progress: Any = None,
                       cancel: Any = None) -> list:
    """The scene a Slicer Data Bundle DICOM file holds: its ``.mrb`` read as napari-medio reads a bundle."""
    import pydicom

    from .loader import read_scene

    p = Path(path)
    try:
        ds = pydicom.dcmread(os.fspath(p))
    except Exception as exc:
        raise FormatError(p, f"not a readable DICOM file: {exc}") from None
    creator = str(ds.get((PRIVATE_GROUP, 0x0010), "").value if (PRIVATE_GROUP, 0x0010) in ds else "")
    if not creator.startswith(CREATOR_PREFIX) or (PRIVATE_GROUP, 0x1010) not in ds:
        raise FormatError(p, "no Slicer scene: private creator (cadb,0010) '3D Slicer <size>' and the bundle "
                             "(cadb,1010) are missing")
    data = bytes(ds[PRIVATE_GROUP, 0x1010].value)
    try:
        size = int(creator.split()[2])
    except (IndexError, ValueError):
        raise FormatError(p, f"private creator (cadb,0010) {creator!r} gives no bundle size") from None
    if size > len(data):
        raise FormatError(p, f"(cadb,1010) holds {len(data)} bytes; the creator says the bundle has {size}")
    with tempfile.TemporaryDirectory(prefix="medio-sdb-") as tmp:
        bundle = Path(tmp) / "scene.mrb"
        bundle.write_bytes(data[:size])
        objects = read_scene(bundle, strict=strict, progress=progress, cancel=cancel)
    for obj in objects:
        obj.source = os.fspath(p)
    return objects


def _thumbnail(objects: list) -> np.ndarray:
    """An 8-bit grey picture for the capture's pixels: the middle slice of the first volume, else black."""
    for obj in objects:
        array = getattr(obj, "array", None)
        if getattr(obj, "geometry", None) is not None and array is not None and np.ndim(array) == 3:
            plane = np.asarray(array)[np.shape(array)[0] // 2].astype(float)
            lo, hi = float(plane.min()), float(plane.max())
            if hi <= lo:
                return np.zeros(plane.shape, np.uint8)
            return ((plane - lo) * (255.0 / (hi - lo))).astype(np.uint8)
    return np.zeros((64, 64), np.uint8)


def _capture_dataset(thumbnail: np.ndarray, patient: dict) -> Any:
    """A Secondary Capture Image dataset (explicit VR little endian) showing ``thumbnail``."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SECONDARY_CAPTURE
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    now = datetime.datetime.now()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID, ds.SOPInstanceUID = SECONDARY_CAPTURE, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = patient.get("StudyInstanceUID") or generate_uid()
    ds.SeriesInstanceUID = patient.get("SeriesInstanceUID") or generate_uid()
    ds.PatientName, ds.PatientID = patient.get("PatientName", ""), patient.get("PatientID", "")
    ds.PatientBirthDate, ds.PatientSex = patient.get("PatientBirthDate", ""), patient.get("PatientSex", "")
    ds.StudyDate = ds.ContentDate = patient.get("StudyDate") or now.strftime("%Y%m%d")
    ds.StudyTime = ds.ContentTime = patient.get("StudyTime") or now.strftime("%H%M%S")
    ds.StudyID, ds.AccessionNumber, ds.ReferringPhysicianName = patient.get("StudyID", ""), "", ""
    ds.Modality, ds.ConversionType = "OT", "WSD"
    ds.SeriesDescription = patient.get("SeriesDescription", "Slicer Data Bundle")
    ds.SeriesNumber, ds.InstanceNumber = patient.get("SeriesNumber", 1), 1
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = thumbnail.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = np.ascontiguousarray(thumbnail).tobytes()
    return ds


def write_scene_capture(objects: list, path: str | os.PathLike[str], *, patient: dict | None = None) -> list[str]:
    """Write ``objects`` as a Slicer scene (``.mrb``) inside a DICOM Secondary Capture, as Slicer exports it.

    ``patient``: DICOM attributes by keyword (PatientName, PatientID, StudyInstanceUID, SeriesDescription, ...).
    """
    from .save import save_scene

    p = Path(path)
    if not isinstance(objects, (list, tuple)):
        objects = [objects]
    with tempfile.TemporaryDirectory(prefix="medio-sdb-") as tmp:
        bundle = Path(tmp) / "scene.mrb"
        save_scene(list(objects), bundle)
        data = bundle.read_bytes()
    ds = _capture_dataset(_thumbnail(list(objects)), dict(patient or {}))
    block = ds.private_block(PRIVATE_GROUP, f"{CREATOR_PREFIX} {len(data)}", create=True)
    block.add_new(0x08, "LO", str(len(data)))
    block.add_new(0x10, "OB", data)
    try:
        with atomic_output(p) as out:
            ds.save_as(os.fspath(out), enforce_file_format=True)
    except OSError as exc:
        raise WriteError(p, f"cannot write: {exc.strerror or exc}") from None
    return [os.fspath(p)]


SCENE_CAPTURE_FORMAT = register(FileFormat(
    name="slicer-dicom-scene",
    description="3D Slicer scene (.mrb) in a DICOM secondary capture (Slicer Data Bundle)",
    extensions=(".dcm",),
    read=read_scene_capture,
    sniff=_sniff,
    kinds=(),
    priority=10,
    backend="napari-medio on pydicom",
))
