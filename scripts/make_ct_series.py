#!/usr/bin/env python3
"""Write a synthetic CT series (uncompressed, one file per slice) for benchmarks.

usage: make_ct_series.py OUTDIR [--slices 300] [--size 512] [--seed 0]
File names are shuffled so a loader must sort by geometry, not by name.
Used by benchmarks/bench_dicom.py and tests/scale/test_batch.py.

Provenance: written for napari-medio's benchmarks (first kept beside the checkout,
in the developers' shared tools folder); part of the repository since the test
data moved into tests/data. Same licence as napari-medio.
"""
import argparse
import os
import random

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--slices", type=int, default=300)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    n = a.size
    yy, xx = np.mgrid[0:n, 0:n]
    disk = ((yy - n / 2) ** 2 + (xx - n / 2) ** 2) < (0.4 * n) ** 2
    names = list(range(a.slices))
    random.Random(a.seed).shuffle(names)
    for k in range(a.slices):
        img = np.where(disk, 1040, 0).astype(np.int16) + rng.integers(0, 40, (n, n), dtype=np.int16)
        img[k % n, :] = 2000  # a marker that shows slice order
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.PatientName = "Bench^Phantom"
        ds.PatientID = "BENCH001"
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = series
        ds.FrameOfReferenceUID = frame
        ds.Modality = "CT"
        ds.StudyDate = "20260101"
        ds.SeriesNumber = 1
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [-250.0, -250.0, -300.0 + 1.25 * k]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [500.0 / n, 500.0 / n]
        ds.SliceThickness = 1.25
        ds.Rows = ds.Columns = n
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleIntercept = -1024
        ds.RescaleSlope = 1
        ds.PixelData = img.tobytes()
        ds.save_as(os.path.join(a.out, f"IM{names[k]:05d}.dcm"), enforce_file_format=True)


if __name__ == "__main__":
    main()
