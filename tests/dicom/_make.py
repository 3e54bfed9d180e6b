"""Generate small DICOM series with pydicom for tests (geometry, splits, bad input)."""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian, MRImageStorage, generate_uid


def make_slice(path, *, pixels: np.ndarray, position, orientation=(1, 0, 0, 0, 1, 0), spacing=(0.5, 0.5),
               series_uid: str, study_uid: str, instance: int = 1, series_number: int = 1,
               description: str = "Test series", modality: str = "CT", patient=("Test^Patient", "P001"),
               slope: Optional[float] = None, intercept: Optional[float] = None, photometric="MONOCHROME2",
               implicit: bool = False, extra: Optional[dict] = None, bits_stored: Optional[int] = None,
               window=None, frame_uid: str = "1.2.3.4") -> Path:
    meta = FileMetaDataset()
    sop_class = CTImageStorage if modality == "CT" else MRImageStorage
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID = patient
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyInstanceUID = study_uid
    ds.StudyDate = "20240102"
    ds.StudyDescription = "Test study"
    ds.AccessionNumber = "ACC1"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.SeriesDescription = description
    ds.FrameOfReferenceUID = frame_uid
    ds.Modality = modality
    ds.InstanceNumber = instance
    if position is not None:
        ds.ImagePositionPatient = [float(x) for x in position]
    if orientation is not None:
        ds.ImageOrientationPatient = [float(x) for x in orientation]
    ds.PixelSpacing = list(spacing)
    ds.Rows, ds.Columns = pixels.shape[:2]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored = bits_stored or pixels.dtype.itemsize * 8
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if pixels.dtype.kind == "i" else 0
    if slope is not None:
        ds.RescaleSlope = slope
    if intercept is not None:
        ds.RescaleIntercept = intercept
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    for k, v in (extra or {}).items():
        setattr(ds, k, v)
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True, implicit_vr=implicit, little_endian=True)
    return path


def make_series(folder, n=5, shape=(6, 7), *, spacing=(0.5, 0.75), step=(0.0, 0.0, 2.0), origin=(-10.0, 20.0, 30.0),
                orientation=(1, 0, 0, 0, 1, 0), dtype="int16", seed=0, shuffle=True, positions=None,
                series_uid=None, study_uid=None, **kw) -> tuple[np.ndarray, list[Path], dict]:
    """A series whose slice k has voxels ``data[k]``; returns (data, paths, uids)."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 1000, (n,) + tuple(shape)).astype(dtype)
    series_uid = series_uid or generate_uid()
    study_uid = study_uid or generate_uid()
    names = list(range(n))
    if shuffle:
        random.Random(seed).shuffle(names)
    paths = []
    for k in range(n):
        pos = positions[k] if positions is not None else np.asarray(origin) + k * np.asarray(step, dtype=float)
        paths.append(make_slice(Path(folder) / f"f{names[k]:04d}", pixels=data[k], position=pos,
                                orientation=orientation, spacing=spacing, series_uid=series_uid,
                                study_uid=study_uid, instance=(n - k), **kw))
    return data, paths, {"series": series_uid, "study": study_uid}
