"""Small DICOM series built with pydicom for the DICOM QA tests (no scanner data needed)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid


def mr_slice(study: str, series: str, frame: str, number: int, orientation: list[float],
             position: list[float], value: int) -> Dataset:
    """One 8x6 MR image with a constant value ``value``."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
    uid = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, uid
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
    ds.Modality, ds.PatientName, ds.PatientID, ds.SeriesNumber = "MR", "Multi^Vol", "MV", 3
    ds.InstanceNumber = number
    ds.ImageOrientationPatient = [f"{x:.6f}" for x in orientation]
    ds.ImagePositionPatient = [f"{x:g}" for x in position]
    ds.PixelSpacing, ds.SliceThickness = [1, 1], 2
    ds.Rows, ds.Columns = 8, 6
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit, ds.PixelRepresentation = 15, 0
    ds.PixelData = np.full((8, 6), value, np.uint16).tobytes()
    return ds


def multi_orientation_series(folder: Path, n_volumes: int = 7, n_slices: int = 3) -> list[Path]:
    """One series of ``n_volumes`` stacks in different in-plane rotations (it loads as that many volumes).

    Volume ``v`` slice ``k`` holds the value ``100 * v + k``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    files = []
    for v in range(n_volumes):
        th = v * 0.2
        orientation = [np.cos(th), np.sin(th), 0.0, -np.sin(th), np.cos(th), 0.0]
        for k in range(n_slices):
            ds = mr_slice(study, series, frame, v * n_slices + k + 1, orientation, [0, 0, 2.0 * k], 100 * v + k)
            path = folder / f"im{v * n_slices + k:03d}.dcm"
            ds.save_as(path, enforce_file_format=True)
            files.append(path)
    return files


__all__ = ["mr_slice", "multi_orientation_series"]
