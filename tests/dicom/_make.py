"""Generate small DICOM series with pydicom for tests (geometry, splits, bad input)."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)


def make_slice(path, *, pixels: np.ndarray, position, orientation=(1, 0, 0, 0, 1, 0), spacing=(0.5, 0.5),
               series_uid: str, study_uid: str, instance: int = 1, series_number: int = 1,
               description: str = "Test series", modality: str = "CT", patient=("Test^Patient", "P001"),
               slope: float | None = None, intercept: float | None = None, photometric="MONOCHROME2",
               implicit: bool = False, extra: dict | None = None, bits_stored: int | None = None,
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


def csa_blob(tags: dict) -> bytes:
    """A Siemens CSA2 ("SV10") header from ``{name: (vr, [values as text])}`` (the format nibabel reads)."""
    import struct

    out = [b"SV10", b"\x04\x03\x02\x01", struct.pack("<2I", len(tags), 77)]
    for name, (vr, values) in tags.items():
        values = [str(v) for v in values]
        out.append(struct.pack("<64si4s3i", name.encode("ascii"), len(values), vr.encode("ascii"), 0,
                               len(values), 77 if values else 205))
        for v in values:
            data = v.encode("latin-1") + b"\x00"
            out.append(struct.pack("<4i", len(data), len(data), 77, len(data)))
            out.append(data + b"\x00" * (-len(data) % 4))
    return b"".join(out)


def reverse_mosaic(src, dst) -> None:
    """Rewrite a Siemens MOSAIC file as the same volume stored in the opposite slice order.

    Tile t becomes tile n-1-t, ImagePositionPatient moves to the other end of the
    stack and the CSA SliceNormalVector is negated (row x column stays as it was),
    as a scanner writes a descending acquisition.  Loaded right, the result is the
    same volume in the same place.
    """
    import math

    import pydicom

    from napari_medio.dicom._parse import _csareader

    ds = pydicom.dcmread(src)
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        ds.decompress()  # written back uncompressed
    csa_reader = _csareader()
    block = ds.private_block(0x0029, "SIEMENS CSA HEADER")
    info = csa_reader.read(block[0x10].value)
    n = int(csa_reader.get_n_mosaic(info))
    normal = np.asarray(csa_reader.get_slice_normal(info), float)
    arr = ds.pixel_array
    per_row = int(math.ceil(math.sqrt(n)))
    tr, tc = arr.shape[0] // per_row, arr.shape[1] // per_row
    tiles = [arr[(t // per_row) * tr:(t // per_row + 1) * tr, (t % per_row) * tc:(t % per_row + 1) * tc].copy()
             for t in range(n)]
    out = np.zeros_like(arr)
    for t in range(n):
        r, c = divmod(t, per_row)
        out[r * tr:(r + 1) * tr, c * tc:(c + 1) * tc] = tiles[n - 1 - t]
    ds.PixelData = out.tobytes()
    step = float(ds.get("SpacingBetweenSlices") or ds.SliceThickness)
    ipp = np.asarray([float(v) for v in ds.ImagePositionPatient])
    ds.ImagePositionPatient = [f"{v:.6f}" for v in ipp + normal / np.linalg.norm(normal) * step * (n - 1)]
    tags = {}
    for name, tag in info["tags"].items():
        items = tag["items"]
        if name == "SliceNormalVector":
            items = [f"{-v:.8f}" for v in items]
        elif tag["vr"] in ("FD", "FL", "DS"):
            items = [repr(float(v)) for v in items]
        tags[name] = (tag["vr"], items)
    block[0x10].value = csa_blob(tags)
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(dst)
