"""The header scanner (`dicom/_parse.py`) against pydicom on every DICOM test file.

The scanner is kept for speed (docs/performance.md); it must give the values pydicom
gives for every tag it reads, and its pixel data offset must be where pydicom finds the
pixel data.
"""
from __future__ import annotations

import math
from pathlib import Path

import pydicom
import pytest

from napari_medio.dicom._parse import (
    NATIVE_SYNTAXES,
    NotDicomError,
    header_from_dataset,
    parse_header,
    sniff_dicom_bytes,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "dicom"
FILES = sorted(p for p in DATA.rglob("*") if p.is_file() and sniff_dicom_bytes(p.read_bytes()[:256]))


def _same(a, b) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=1e-9)
    return a == b


def test_every_test_file_is_checked():
    assert len(FILES) >= 100


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(DATA)))
def test_scanner_matches_pydicom(path):
    try:
        ours = parse_header(path)
    except NotDicomError:
        try:
            ds = pydicom.dcmread(path, force=True)
        except Exception:
            return  # pydicom cannot read it either
        assert not ("SOPInstanceUID" in ds or "SOPClassUID" in ds or "Modality" in ds), "pydicom finds a DICOM object"
        return
    ds = pydicom.dcmread(path, force=True)
    ref = header_from_dataset(ds)
    for key, value in ref.items():
        if key.startswith("_") or key == "NumberOfImagesInMosaic":
            continue
        if isinstance(value, str) and not value.strip():
            continue
        assert _same(ours.get(key), value), (key, ours.get(key), value)
    assert ours["_ts"] == ref["_ts"]
    assert bool(ours.get("_pixel_tag")) == bool(ref.get("_pixel_tag"))
    if ours["_ts"] in NATIVE_SYNTAXES and ours.get("_pixel_length", -1) > 0 and "PixelData" in ds:
        with open(path, "rb") as fh:
            fh.seek(ours["_pixel_offset"])
            assert fh.read(ours["_pixel_length"]) == ds.PixelData
