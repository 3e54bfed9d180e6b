"""DICOM values as shown to people (dicom/text.py)."""
from __future__ import annotations

import pytest

from napari_medio.dicom.text import display_value, format_da, format_dt, format_tm


@pytest.mark.parametrize("value, shown", [("20240131", "2024-01-31"), ("20240101-20240131", "2024-01-01 - 2024-01-31"),
                                          ("", ""), (None, ""), ("2024-01-31", "2024-01-31"), ("garbage", "garbage")])
def test_da(value, shown):
    assert format_da(value) == shown


@pytest.mark.parametrize("value, shown", [("143015.123", "14:30:15"), ("1430", "14:30"), ("14", "14"), (None, "")])
def test_tm(value, shown):
    assert format_tm(value) == shown


def test_dt_and_absent_values():
    assert format_dt("20240131143015+0100") == "2024-01-31 14:30:15 +0100"
    assert format_dt("20240131") == "2024-01-31"
    assert display_value(None) == "" and display_value("None") == "" and display_value(["CT", None, "SEG"]) == "CT, SEG"
    assert display_value(301) == "301"
