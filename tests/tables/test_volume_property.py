"""Slicer .vp volume rendering properties: fixture, round trip, bad input, napari mapping."""
from __future__ import annotations

import numpy as np
import pytest

import napari_medio
from napari_medio.core.errors import FormatError
from tests.conftest import fixture_file


def test_vp_fixture_and_round_trip(tmp_path):
    [vp] = napari_medio.read(fixture_file("other/VolumeProperty.vp"))
    assert (vp.interpolation, vp.shade, vp.diffuse, vp.ambient, vp.specular, vp.specular_power) == \
        (1, True, 0.42, 0.44, 0.46, 38.5)
    np.testing.assert_array_equal(vp.scalar_opacity, [[-17, 0], [13, 0], [103, 1], [235, 1]])
    np.testing.assert_array_equal(vp.gradient_opacity, [[-17, 1], [235, 1]])
    assert vp.color.shape == (7, 4) and vp.color[0].tolist() == [-17, 1, 0, 0.498039215686275]
    napari_medio.write(vp, tmp_path / "v.vp")
    [back] = napari_medio.read(tmp_path / "v.vp")
    for f in ("scalar_opacity", "gradient_opacity", "color"):
        np.testing.assert_array_equal(getattr(back, f), getattr(vp, f))
    s = vp.napari_settings()
    assert s["contrast_limits"] == [-17.0, 235.0] and len(s["colormap"]["controls"]) == 7


def test_vp_missing_lines_and_bad_counts(tmp_path):
    lines = fixture_file("other/VolumeProperty.vp").read_text().splitlines()
    p = tmp_path / "short.vp"
    p.write_text("\n".join(lines[:7]) + "\n")
    with pytest.raises(FormatError, match="line 8.*gradient opacity"):
        napari_medio.read(p)
    p.write_text("\n".join(lines[:6] + ["3 -17 0 13", *lines[7:]]) + "\n")
    with pytest.raises(FormatError, match="line 7"):
        napari_medio.read(p)
    p.write_bytes(b"")
    with pytest.raises(FormatError, match="short.vp"):
        napari_medio.read(p)
