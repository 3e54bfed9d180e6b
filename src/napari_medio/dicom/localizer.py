"""Which series of a DICOM folder are localizers (scouts, surveys), so they are not loaded unless asked.

The rule, applied to a series' parsed headers (:func:`napari_medio.dicom._parse.parse_header`
dicts), first match wins:

1. **ImageType** holds ``LOCALIZER`` (DICOM's defined term for CT and MR localizers).
2. **SeriesDescription** names one: it matches :data:`DESCRIPTION_PATTERN` (scout,
   localizer/localiser, survey, and the vendors' names topogram, scanogram, surview,
   tri-pilot, 3-plane loc), case-insensitive.
3. **Geometry**: a series of 1-3 images none of which is parallel to the largest
   series of the folder (slice normals more than 45 degrees apart, within the same frame of
   reference when both have one), or a series of at most 3 images per plane spread over
   two or more orthogonal planes (a three-plane localizer).

No imports beyond NumPy and the standard library: the napari reader and the
command line use it alike.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["DESCRIPTION_PATTERN", "MAX_LOCALIZER_IMAGES", "SeriesRow", "localizer_reason", "localizer_reasons",
           "series_rows"]

#: Series descriptions that name a localizer.
DESCRIPTION_PATTERN = re.compile(
    r"scout|locali[sz]er|survey|topogram|scanogram|surview|tri[- ]?pilot|3[- ]?plane[- ]?loc|\bloc\b",
    re.IGNORECASE,
)

#: A series with at most this many images (per plane) may be a localizer by geometry.
MAX_LOCALIZER_IMAGES = 3

#: Slice normals further apart than this (degrees) are not parallel.
_ANGLE_DEG = 45.0


def _image_type(h: dict) -> list[str]:
    it = h.get("ImageType")
    if it is None:
        return []
    values = it if isinstance(it, (list, tuple)) else str(it).split("\\")
    return [str(x).strip().upper() for x in values]


def _normal(h: dict) -> np.ndarray | None:
    iop = h.get("ImageOrientationPatient")
    if iop is None:
        return None
    try:
        v = np.asarray([float(x) for x in (iop if isinstance(iop, (list, tuple)) else str(iop).split("\\"))])
    except (TypeError, ValueError):
        return None
    if v.size != 6:
        return None
    n = np.cross(v[:3], v[3:])
    norm = np.linalg.norm(n)
    return n / norm if norm > 1e-6 else None


def _parallel(a: np.ndarray, b: np.ndarray) -> bool:
    return abs(float(np.dot(a, b))) >= np.cos(np.radians(_ANGLE_DEG))


def _planes(headers: Sequence[dict]) -> list[list[dict]]:
    """Headers grouped by (nearly) parallel slice normals; headers without one are left out."""
    groups: list[tuple[np.ndarray, list[dict]]] = []
    for h in headers:
        n = _normal(h)
        if n is None:
            continue
        for normal, members in groups:
            if _parallel(normal, n):
                members.append(h)
                break
        else:
            groups.append((n, [h]))
    return [members for _, members in groups]


def localizer_reason(series: Sequence[dict], reference: Sequence[dict] | None = None) -> str | None:
    """Why ``series`` (headers of one series) is a localizer, or None when it is not.

    ``reference`` is the folder's largest series (its headers), for the geometric rule.
    """
    if not series:
        return None
    first = series[0]
    if any("LOCALIZER" in _image_type(h) for h in series):
        return "ImageType LOCALIZER"
    description = str(first.get("SeriesDescription") or "")
    if DESCRIPTION_PATTERN.search(description):
        return f'series description "{description.strip()}"'
    planes = _planes(series)
    if len(planes) >= 2 and all(len(p) <= MAX_LOCALIZER_IMAGES for p in planes):
        return f"{len(series)} images in {len(planes)} orthogonal planes"
    if len(series) > MAX_LOCALIZER_IMAGES or not reference or reference is series:
        return None
    ref_normal = next((n for n in map(_normal, reference) if n is not None), None)
    normals = [n for n in map(_normal, series) if n is not None]
    if ref_normal is None or not normals:
        return None
    frame, ref_frame = first.get("FrameOfReferenceUID"), reference[0].get("FrameOfReferenceUID")
    if frame and ref_frame and frame != ref_frame:
        return None
    if all(not _parallel(n, ref_normal) for n in normals):
        return f"{len(series)}-image series orthogonal to the main series"
    return None


def localizer_reasons(series_list: Sequence[Sequence[dict]]) -> list[str | None]:
    """:func:`localizer_reason` of each series of a folder, the largest series as the reference."""
    if not series_list:
        return []
    reference = max(series_list, key=len)
    return [localizer_reason(s, reference) for s in series_list]


@dataclass
class SeriesRow:
    """One series of a folder, as a chooser lists it."""

    key: str  # series_key: SeriesInstanceUID, or no-series:<path>
    number: int | None
    modality: str
    description: str
    images: int
    size: int  # bytes
    is_image: bool
    localizer: str | None  # why it is a localizer, None when it is not
    headers: Sequence[dict]


def _number(value: object) -> int | None:
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    try:
        return int(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def series_rows(series: Mapping[str, Sequence[dict]], is_image: Callable[[dict], bool]) -> list[SeriesRow]:
    """The rows of a series chooser: each series (key -> headers) with its localizer reason, by series number.

    ``is_image(header)`` tells image instances (which make volumes) from others (SEG, RT, SR).
    """
    keys = list(series)
    image_keys = [k for k in keys if any(is_image(h) for h in series[k])]
    reasons = dict(zip(image_keys, localizer_reasons([series[k] for k in image_keys])))
    rows = []
    for k in keys:
        hs = series[k]
        first = hs[0]
        rows.append(SeriesRow(
            key=k, number=_number(first.get("SeriesNumber")), modality=str(first.get("Modality") or "").strip(),
            description=str(first.get("SeriesDescription") or "").strip(), images=len(hs),
            size=int(sum(int(h.get("_size") or 0) for h in hs)), is_image=k in reasons,
            localizer=reasons.get(k), headers=hs))
    rows.sort(key=lambda r: (r.number if r.number is not None else 1 << 30, r.description, r.key))
    return rows
