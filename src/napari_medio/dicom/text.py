"""DICOM values as people read them: dates (DA), times (TM), date-times (DT), absent values.

No imports beyond the standard library; the widgets and the command line use it.
"""
from __future__ import annotations

import re
from typing import Any

__all__ = ["display_value", "format_da", "format_dt", "format_tm"]

_DA = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_TM = re.compile(r"^(\d{2})(\d{2})?(\d{2})?(\.\d+)?$")


def format_da(value: Any) -> str:
    """DA ``20240131`` -> ``2024-01-31``; a range ``20240101-20240131`` keeps its dash; other text as is."""
    text = "" if value is None else str(value).strip()
    if "-" in text and text.count("-") != 2:
        return " - ".join(format_da(part) for part in text.split("-"))
    m = _DA.match(text)
    return f"{m.group(1)}-{m.group(2)}-{m.group(3)}" if m else text


def format_tm(value: Any) -> str:
    """TM ``143015.123`` -> ``14:30:15``; ``1430`` -> ``14:30``; other text as is."""
    text = "" if value is None else str(value).strip()
    m = _TM.match(text)
    if not m:
        return text
    return ":".join(g for g in m.groups()[:3] if g)


def format_dt(value: Any) -> str:
    """DT ``20240131143015`` -> ``2024-01-31 14:30:15`` (a UTC offset is kept)."""
    text = "" if value is None else str(value).strip()
    if len(text) < 8 or not text[:8].isdigit():
        return text
    rest, offset = text[8:], ""
    for sign in "+-":
        if sign in rest:
            rest, offset = rest.split(sign, 1)
            offset = f" {sign}{offset}"
    return (format_da(text[:8]) + (" " + format_tm(rest) if rest else "") + offset).strip()


def display_value(value: Any) -> str:
    """A header value as text: "" for absent values (never "None"), lists joined with ", "."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(display_value(v) for v in value if v is not None)
    text = str(value)
    return "" if text == "None" else text
