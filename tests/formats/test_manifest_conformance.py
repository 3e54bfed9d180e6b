"""Every volume file in tests/data (all families) loads with its MANIFEST geometry.

The rows are parsed from each family's MANIFEST.md ("SimpleITK: shape=... spacing=...
origin=... direction=..."), so a new fixture is covered without a code change.  Files
that a specialised reader would claim (a .seg.nrrd, a displacement field) are read with
the plain volume reader here: this checks the volume geometry only.
"""
from __future__ import annotations

import ast
import re

import numpy as np
import pytest

import napari_medio
from tests.conftest import DATA_DIR, fixture_file

VOLUME_FORMATS = {".nrrd": "nrrd", ".nhdr": "nrrd", ".nii": "nifti", ".nii.gz": "nifti", ".mgz": "mgh",
                  ".mha": "metaimage", ".mhd": "metaimage"}
_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|.*SimpleITK: shape=(\([^)]*\)) dtype=(\w+)(?: components=(\d+))? "
                  r"spacing=(\[[^\]]*\]) origin=(\[[^\]]*\]) direction=(\[[^\]]*\])(?:; .*?)?(?:min=\S+ max=\S+ "
                  r"sum=(\S+))?")


def _rows():
    out = []
    for manifest in sorted(DATA_DIR.glob("*/MANIFEST.md")):
        family = manifest.parent.name
        for line in manifest.read_text().splitlines():
            m = _ROW.match(line)
            if not m:
                continue
            rel = m.group(1)
            ext = next((e for e in sorted(VOLUME_FORMATS, key=len, reverse=True) if rel.lower().endswith(e)), None)
            if ext is None or "*" in rel:
                continue
            out.append(pytest.param(f"{family}/{rel}", VOLUME_FORMATS[ext], m, id=f"{family}/{rel}"))
    assert len(out) >= 15, f"too few volume rows in {DATA_DIR}/*/MANIFEST.md"
    return out


@pytest.mark.parametrize("rel,fmt,match", _rows())
def test_volume_geometry_as_manifest(rel, fmt, match):
    path = fixture_file(rel)
    shape = tuple(ast.literal_eval(match.group(2)))
    spacing = np.array(ast.literal_eval(match.group(5)), dtype=float)
    origin = np.array(ast.literal_eval(match.group(6)), dtype=float)
    direction = np.array(ast.literal_eval(match.group(7)), dtype=float)
    n = int(round(np.sqrt(direction.size)))
    direction = direction.reshape(n, n)
    [vol] = napari_medio.read(path, format=fmt)
    arr = vol.array
    if len(spacing) == 4:  # SimpleITK 4D: (t, z, y, x) with a 4th spatial-like axis
        assert tuple(arr.shape) == shape
        spacing, origin, direction = spacing[:3], origin[:3], direction[:3, :3]
    else:
        assert tuple(arr.shape) == shape, (arr.shape, shape)
    assert str(arr.dtype) == match.group(3)
    g = vol.geometry
    assert np.allclose(g.spacing[: len(spacing)], spacing, atol=1e-4, rtol=1e-4)
    assert np.allclose(g.origin[: len(origin)], origin, atol=1e-3)
    assert np.allclose(g.direction[: direction.shape[0], : direction.shape[1]], direction, atol=1e-4)
    if match.group(8):
        total = float(np.asarray(arr).sum(dtype=np.float64))
        assert np.isclose(total, float(match.group(8)), rtol=1e-4, atol=1e-3)
