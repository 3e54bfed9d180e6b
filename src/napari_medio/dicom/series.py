"""DICOM series assembly: files -> correctly placed :class:`~napari_medio.core.volume.Volume` objects.

Fast and exact, on our own header scanner (:mod:`._parse`) and pydicom's pixel
handlers:

* slices are ordered by their position along the slice normal (never by file
  name or instance number); the slice step comes from the positions, so gantry
  tilt gives an exact sheared geometry; irregular spacing or missing slices are
  reported and resampled onto a regular grid (original slices kept exactly);
* a series holding several volumes (time points, echoes, b-values,
  acquisitions) is loaded as 4D when they share one grid, else split into
  volumes; different orientations or image sizes are always separate volumes;
  images sharing a slice position are told apart by the first key of
  ``_SPLIT_KEYS`` that separates them (temporal position, trigger time, echo,
  b-value, stack, acquisition, then the rule "GE image type": GE's private
  (0043,102F) 0/1/2/3 = magnitude/phase/real/imaginary, as dcm2niix reads it, so a
  GE B0 field map's magnitude and field-map images become two volumes; file name
  and instance number come last);
* Siemens MOSAIC files are un-tiled, RT Dose uses GridFrameOffsetVector and
  DoseGridScaling, Enhanced multi-frame objects use their functional groups;
* rescale slope/intercept is applied keeping an integer type when exact,
  MONOCHROME1 is inverted to read like MONOCHROME2, colour (RGB, YBR, palette)
  becomes 8-bit RGB, compressed syntaxes go through pydicom's pixel handlers;
* uncompressed little-endian voxels are read straight into the output array
  (``readinto``), which is what makes loading fast.

Errors name the files; files that cannot be read are left out and the rest loads.
"""
from __future__ import annotations

import math
import os
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import CancelledError, FormatError
from ..core.geometry import Geometry
from ..core.jsonvalue import jsonable
from ..core.kinds import DataKind
from ..core.volume import AxisInfo, DisplayWindow, Volume
from ._parse import NATIVE_SYNTAXES, NotDicomError
from .gzipped import parse_any_header

__all__ = [
    "DicomWarning",
    "scan_files",
    "read_headers",
    "group_by_series",
    "assemble_series",
    "load_volumes",
    "read_dicom_path",
    "scan_dicom_path",
    "series_key",
    "DicomScan",
    "is_image_header",
    "series_name",
    "NON_IMAGE_MODALITIES",
]

#: Modalities that hold no image volume (listed in the database, not loaded as images).
NON_IMAGE_MODALITIES = frozenset(("SEG", "RTSTRUCT", "RTPLAN", "RTRECORD", "SR", "PR", "KO", "REG", "DOC", "RWV",
                                  "FID", "PLAN", "AU", "ECG", "HD"))
_NON_IMAGE_SOP_PREFIXES = ("1.2.840.10008.5.1.4.1.1.66", "1.2.840.10008.5.1.4.1.1.88", "1.2.840.10008.5.1.4.1.1.481.3",
                           "1.2.840.10008.5.1.4.1.1.481.5", "1.2.840.10008.5.1.4.1.1.11",
                           "1.2.840.10008.5.1.4.39", "1.2.840.10008.5.1.4.1.1.104")
_NON_IMAGE_SOP_EXACT = frozenset(("1.2.840.10008.1.3.10",))  # Media Storage Directory (DICOMDIR)

#: Position tolerance (mm) for "the same slice position".
POSITION_TOL = 0.01

class DicomWarning(UserWarning):
    """Something about a DICOM series is unusual; the result is still geometrically correct."""


# -- files and headers ----------------------------------------------------------------------------
def scan_files(paths: Iterable[str | os.PathLike[str]], recursive: bool = True) -> list[str]:
    """Every file under ``paths`` (folders walked recursively), in a stable order."""
    out: list[str] = []
    for p in paths:
        p = os.fspath(p)
        if os.path.isdir(p):
            if recursive:
                for root, dirs, files in os.walk(p):
                    dirs.sort()
                    for f in sorted(files):
                        out.append(os.path.join(root, f))
            else:
                for f in sorted(os.listdir(p)):
                    full = os.path.join(p, f)
                    if os.path.isfile(full):
                        out.append(full)
        else:
            out.append(p)
    return out


def dicomdir_files(path: str | os.PathLike[str]) -> list[str]:
    """Files a DICOMDIR references (that exist), relative to its folder."""
    import pydicom

    try:
        ds = pydicom.dcmread(os.fspath(path), force=True)
    except Exception as exc:
        raise FormatError(path, f"cannot read DICOMDIR: {exc}") from None
    base = Path(path).parent
    out = []
    for rec in ds.get("DirectoryRecordSequence", []) or []:
        ref = rec.get("ReferencedFileID")
        if not ref:
            continue
        many = isinstance(ref, (list, tuple)) or hasattr(ref, "__iter__") and not isinstance(ref, str)
        parts = [str(x) for x in (ref if many else [ref])]
        candidate = base.joinpath(*parts)
        if not candidate.exists():
            # Media file IDs are upper case; file systems may not be.
            alt = _case_insensitive(base, parts)
            if alt is None:
                continue
            candidate = alt
        out.append(os.fspath(candidate))
    return out


def _case_insensitive(base: Path, parts: Sequence[str]) -> Path | None:
    cur = base
    for part in parts:
        try:
            names = {n.lower(): n for n in os.listdir(cur)}
        except OSError:
            return None
        hit = names.get(part.lower())
        if hit is None:
            return None
        cur = cur / hit
    return cur


def read_headers(files: Sequence[str], progress: Callable[[int, int], None] | None = None,
                 cancel: Callable[[], bool] | None = None) -> tuple[list[dict], list[tuple[str, str]], int]:
    """Headers of the DICOM files among ``files``: (headers, problems, non-DICOM count).

    ``problems`` lists (path, reason) for files that look like DICOM but cannot
    be read; plain non-DICOM files are only counted.
    """
    headers: list[dict] = []
    problems: list[tuple[str, str]] = []
    skipped = 0
    total = len(files)
    for n, f in enumerate(files):
        if cancel is not None and n % 32 == 0 and cancel():
            raise CancelledError(None, "cancelled")
        try:
            headers.append(parse_any_header(f))
        except FormatError as exc:  # a gzip file that cannot be decompressed
            problems.append((f, exc.reason))
        except NotDicomError as exc:
            reason = str(exc)
            if reason == "file is empty":
                problems.append((f, "empty file"))
            skipped += 1
        except OSError as exc:
            problems.append((f, f"cannot read: {exc.strerror or exc}"))
        if progress is not None and (n % 16 == 0 or n == total - 1):
            progress(n + 1, total)
    return headers, problems, skipped


def is_image_header(h: dict) -> bool:
    """True when the instance holds image pixels that belong in a volume."""
    if h.get("_dicomdir") or h.get("_media_sop_class") in _NON_IMAGE_SOP_EXACT and "SOPInstanceUID" not in h:
        return False
    if not h.get("_pixel_tag"):
        return False
    modality = str(h.get("Modality") or "").upper()
    if modality in NON_IMAGE_MODALITIES:
        return False
    sop = str(h.get("SOPClassUID") or "")
    if sop in _NON_IMAGE_SOP_EXACT or any(sop.startswith(p) for p in _NON_IMAGE_SOP_PREFIXES):
        return False
    return bool(h.get("Rows")) and bool(h.get("Columns"))


def group_by_series(headers: Iterable[dict]) -> dict[str, list[dict]]:
    """Headers grouped by SeriesInstanceUID (files without one each form their own group)."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for h in headers:
        groups[series_key(h)].append(h)
    return dict(groups)


def series_name(h: dict) -> str:
    """Layer name ``<SeriesNumber>: <SeriesDescription>`` (the modality when there is no description).

    A description reading "None" (what a writer made of an absent value) counts as none.
    """
    number = h.get("SeriesNumber")
    desc = str(h.get("SeriesDescription") or "").strip()
    if desc == "None":
        desc = ""
    desc = desc or str(h.get("Modality") or "").strip() or "DICOM"
    if isinstance(number, list):
        number = number[0] if number else None
    return f"{number}: {desc}" if number is not None and number != "" else desc


# -- small helpers --------------------------------------------------------------------------------
def _floats(value: Any, n: int) -> np.ndarray | None:
    if value is None:
        return None
    vals = value if isinstance(value, list) else [value]
    try:
        arr = np.array([float(v) for v in vals], dtype=float)
    except (TypeError, ValueError):
        return None
    if arr.size < n or not np.all(np.isfinite(arr)):
        return None
    return arr[:n]


def _first_number(value: Any, default: float | None = None) -> float | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None or value == "":
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _image_type(h: dict) -> list[str]:
    it = h.get("ImageType")
    if it is None:
        return []
    return [str(x).upper() for x in (it if isinstance(it, list) else [it])]


def _pixel_spacing(h: dict) -> np.ndarray:
    """Spacing (i, j) = (column spacing, row spacing)."""
    ps = _floats(h.get("PixelSpacing"), 2)
    if ps is None:
        ps = _floats(h.get("ImagerPixelSpacing"), 2)
    if ps is None or np.any(ps <= 0):
        return np.array([1.0, 1.0])
    return np.array([ps[1], ps[0]])


def _slice_step(h: dict) -> float:
    for key in ("SpacingBetweenSlices", "SliceThickness"):
        v = _first_number(h.get(key))
        if v is not None and v > 0:
            return abs(v)
    return 1.0


_ORIENT_CACHE: dict = {}


def _orientation(h: dict) -> np.ndarray | None:
    raw = h.get("ImageOrientationPatient")
    key = tuple(raw) if isinstance(raw, list) else raw
    try:
        hit = _ORIENT_CACHE.get(key, False)
    except TypeError:
        hit = False
    if hit is not False:
        return hit
    out = _orientation_uncached(h)
    if len(_ORIENT_CACHE) > 4096:
        _ORIENT_CACHE.clear()
    try:
        _ORIENT_CACHE[key] = out
    except TypeError:
        pass
    return out


def _orientation_uncached(h: dict) -> np.ndarray | None:
    iop = _floats(h.get("ImageOrientationPatient"), 6)
    if iop is None:
        return None
    r, c = iop[:3], iop[3:]
    nr, nc = np.linalg.norm(r), np.linalg.norm(c)
    if nr < 1e-6 or nc < 1e-6:
        return None
    r, c = r / nr, c / nc
    n = np.cross(r, c)
    nn = np.linalg.norm(n)
    if nn < 1e-6:
        return None
    return np.stack([r, c, n / nn], axis=1)  # columns: row dir, column dir, normal


# -- frames ---------------------------------------------------------------------------------------
def _frames_of(h: dict) -> list[dict]:
    """One record per 2D image the file holds (frames, mosaic tiles), with its geometry."""
    nframes = int(_first_number(h.get("NumberOfFrames"), 1) or 1)
    if h.get("_frames"):
        return [dict(h, **fr, _hdr=h, _frame=i) for i, fr in enumerate(h["_frames"])]
    # The CSA image header's count first (as dcm2niix), the (0019,100A) tag when the CSA is absent.
    n_mosaic = int(h.get("_csa_n_mosaic") or _first_number(h.get("NumberOfImagesInMosaic"), 0) or 0)
    if n_mosaic > 1 and "MOSAIC" in _image_type(h) and nframes == 1:
        return _mosaic_tiles(h, n_mosaic)
    if nframes > 1:
        orient = _orientation(h)
        ipp = _floats(h.get("ImagePositionPatient"), 3)
        if orient is not None and ipp is not None:
            normal = orient[:, 2]
            gfov = _floats(h.get("GridFrameOffsetVector"), nframes)
            if gfov is not None:
                offsets = gfov - gfov[0] if abs(gfov[0]) > 1e-9 else gfov
            else:
                offsets = np.arange(nframes) * _slice_step(h)
            return [dict(h, _hdr=h, _frame=i, ImagePositionPatient=list(ipp + offsets[i] * normal))
                    for i in range(nframes)]
        return [dict(h, _hdr=h, _frame=i, _nogeom=True) for i in range(nframes)]
    return [dict(h, _hdr=h, _frame=0)]


def _mosaic_tiles(h: dict, n: int) -> list[dict]:
    rows, cols = int(h["Rows"]), int(h["Columns"])
    per_row = int(math.ceil(math.sqrt(n)))
    tr, tc = rows // per_row, cols // per_row
    orient = _orientation(h)
    ipp = _floats(h.get("ImagePositionPatient"), 3)
    direction = None
    if orient is not None:
        # Tiles follow the CSA SliceNormalVector, which may point against row x column
        # (a mosaic stored in descending order): its sign decides the direction, as in dcm2niix.
        direction = orient[:, 2]
        csa_normal = _floats(h.get("_csa_slice_normal"), 3)
        if csa_normal is not None and float(np.dot(csa_normal, direction)) < 0:
            direction = -direction
    out = []
    for t in range(n):
        rec = dict(h, _hdr=h, _frame=0, _tile=(t, per_row, tr, tc), Rows=tr, Columns=tc)
        if orient is not None and ipp is not None:
            sp = _pixel_spacing(h)
            # The stored position is the mosaic's corner: move it to the first tile's corner.
            origin = ipp + orient[:, 0] * sp[0] * (cols - tc) / 2.0 + orient[:, 1] * sp[1] * (rows - tr) / 2.0
            rec["ImagePositionPatient"] = list(origin + direction * _slice_step(h) * t)
        out.append(rec)
    return out


# -- grouping into volumes ------------------------------------------------------------------------
_SPLIT_KEYS = (
    ("TemporalPositionIdentifier", "time", "time", ""),
    ("TriggerTime", "trigger time", "time", "ms"),
    ("EchoNumbers", "echo", "list", ""),
    ("EchoTime", "echo time", "list", "ms"),
    ("DiffusionBValue", "b-value", "list", "s/mm^2"),
    ("StackID", "stack", "list", ""),
    ("AcquisitionNumber", "acquisition", "list", ""),
    ("GEImageType", "GE image type", "list", ""),
    ("_path", "file", "list", ""),
    ("AcquisitionTime", "acquisition time", "time", ""),
    ("ContentTime", "content time", "time", ""),
    ("InstanceNumber", "instance", "list", ""),
)


def _key_value(rec: dict, key: str) -> Any:
    v = rec.get(key)
    if isinstance(v, list):
        v = tuple(v)
    return v


def _sort_key(rec: dict) -> tuple:
    inst = _first_number(rec.get("InstanceNumber"), 0.0)
    return (inst, rec.get("_path", ""), rec.get("_frame", 0), (rec.get("_tile") or (0,))[0])


class _Plan:
    """How one volume is built: a (T x K) grid of records, geometry and axis description."""

    def __init__(self, grid: list[list[dict]], geometry: Geometry, axis: AxisInfo | None, label: str,
                 notes: list[str], resample: dict | None = None, tilt: float = 0.0) -> None:
        self.grid = grid
        self.geometry = geometry
        self.axis = axis
        self.label = label
        self.notes = notes
        self.resample = resample
        self.tilt = tilt


def _plans_for_series(headers: list[dict], warn: list[str]) -> list[_Plan]:
    records: list[dict] = []
    for h in headers:
        records.extend(_frames_of(h))
    # Records that cannot share a volume: image size, pixel format, orientation, in-plane spacing.
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        orient = None if r.get("_nogeom") else _orientation(r)
        ipp = None if r.get("_nogeom") else _floats(r.get("ImagePositionPatient"), 3)
        r["_orient"] = orient
        r["_ipp"] = ipp
        geom = orient is not None and ipp is not None
        key = (
            int(r.get("Rows") or 0), int(r.get("Columns") or 0),
            int(_first_number(r.get("SamplesPerPixel"), 1) or 1),
            int(_first_number(r.get("BitsAllocated"), 16) or 16),
            int(_first_number(r.get("PixelRepresentation"), 0) or 0),
            _photometric(r) in ("MONOCHROME1", "MONOCHROME2"),
            tuple(np.round(orient[:, :2].T.reshape(-1), 4)) if geom else None,
            tuple(np.round(_pixel_spacing(r), 4)),
        )
        groups[key].append(r)
    if len(groups) > 1:
        warn.append(f"{len(groups)} different image sizes, pixel formats or orientations: "
                    f"loaded as {len(groups)} volumes")
    plans: list[_Plan] = []
    ordered = sorted(groups.items(), key=lambda kv: min(_sort_key(r) for r in kv[1]))
    for gi, (key, recs) in enumerate(ordered):
        label = f" [{gi + 1}]" if len(groups) > 1 else ""
        if key[6] is None:
            plans.append(_stack_plan(recs, label, warn))
        else:
            plans.extend(_geometric_plans(recs, label, warn))
    return plans


def _photometric(r: dict) -> str:
    return str(r.get("PhotometricInterpretation") or "MONOCHROME2").strip().upper()


def _stack_plan(recs: list[dict], label: str, warn: list[str]) -> _Plan:
    recs = sorted(recs, key=_sort_key)
    sp = _pixel_spacing(recs[0])
    notes = []
    if len({r["_path"] for r in recs}) > 1:
        notes.append("no position/orientation tags: images stacked in instance-number order")
        warn.append(notes[-1])
    step = _slice_step(recs[0]) if len(recs) > 1 and recs[0].get("SpacingBetweenSlices") else 1.0
    geometry = Geometry([sp[0], sp[1], step], np.zeros(3), np.eye(3))
    return _Plan([recs], geometry, None, label, notes)


def _cluster(dist: np.ndarray) -> np.ndarray:
    """Cluster ids of sorted distances (same position within POSITION_TOL)."""
    ids = np.zeros(dist.size, dtype=int)
    if dist.size > 1:
        ids[1:] = np.cumsum(np.diff(dist) > POSITION_TOL)
    return ids


def _geometric_plans(recs: list[dict], label: str, warn: list[str]) -> list[_Plan]:
    orient = recs[0]["_orient"]
    normal = orient[:, 2]
    recs = sorted(recs, key=_sort_key)
    dist = np.array([float(r["_ipp"] @ normal) for r in recs])
    order = np.argsort(dist, kind="stable")
    recs = [recs[i] for i in order]
    dist = dist[order]
    ids = _cluster(dist)
    n_pos = int(ids[-1]) + 1
    counts = np.bincount(ids)
    if np.all(counts == 1):
        return [_volume_plan(recs, dist, label, warn)]
    clusters: list[list[dict]] = [[] for _ in range(n_pos)]
    for r, c in zip(recs, ids):
        clusters[c].append(r)
    if np.all(counts == counts[0]):
        t = int(counts[0])
        for key, name, kind, unit in _SPLIT_KEYS:
            if all(len({_key_value(r, key) for r in cl}) == t and all(_key_value(r, key) is not None for r in cl)
                   for cl in clusters):
                sorted_clusters = [sorted(cl, key=lambda r: (_key_value(r, key), _sort_key(r))) for cl in clusters]
                value_lists = [[_key_value(r, key) for r in cl] for cl in sorted_clusters]
                values = value_lists[0] if all(v == value_lists[0] for v in value_lists) else None
                if key in ("_path", "InstanceNumber"):
                    values = None
                grid = [[cl[i] for cl in sorted_clusters] for i in range(t)]
                base = _volume_plan(grid[0], np.array([float(r["_ipp"] @ normal) for r in grid[0]]), label, warn)
                if base.resample is not None:
                    base.resample = dict(base.resample)
                axis = AxisInfo(name=name, unit=unit, values=[jsonable(v) for v in values] if values else None,
                                kind=kind)
                base.grid = grid
                base.axis = axis
                base.notes.append(f"{t} volumes on one grid ({name}): loaded as 4D")
                return [base]
    # Unequal counts: split into volumes by the first key that gives unique positions.
    for key, name, _kind, _unit in _SPLIT_KEYS[:-1]:
        parts: dict[Any, list[dict]] = defaultdict(list)
        for r in recs:
            parts[_key_value(r, key)].append(r)
        if len(parts) < 2 or None in parts:
            continue
        ok = True
        for part in parts.values():
            d = np.array([float(r["_ipp"] @ normal) for r in part])
            if np.any(np.diff(d) <= POSITION_TOL):
                ok = False
                break
        if ok:
            warn.append(f"volumes with different slice positions ({name}): loaded as {len(parts)} volumes")
            plans = []
            for value, part in sorted(parts.items(), key=lambda kv: str(kv[0])):
                d = np.array([float(r["_ipp"] @ normal) for r in part])
                shown = jsonable(value) if key != "_path" else Path(value).name
                plan = _volume_plan(part, d, f"{label} ({name} {shown})", warn)
                plans.append(plan)
            return plans
    # Nothing explains the duplicates: keep one image per position.
    kept = [min(cl, key=_sort_key) for cl in clusters]
    dropped = len(recs) - len(kept)
    warn.append(f"{dropped} images repeat a slice position with nothing to tell them apart: kept the first of each")
    return [_volume_plan(kept, np.array([float(r["_ipp"] @ normal) for r in kept]), label, warn)]


def _volume_plan(recs: list[dict], dist: np.ndarray, label: str, warn: list[str]) -> _Plan:
    """One 3D volume from records with distinct positions, sorted along the normal."""
    r0 = recs[0]
    orient = r0["_orient"]
    sp = _pixel_spacing(r0)
    p0 = r0["_ipp"]
    notes: list[str] = []
    n = len(recs)
    resample = None
    tilt = 0.0
    if n == 1:
        # As ITK/GDCM: SpacingBetweenSlices when the file states it, else 1.
        kdir, kspace = orient[:, 2], (_first_number(r0.get("SpacingBetweenSlices")) or 1.0)
        kspace = abs(kspace) if kspace else 1.0
    else:
        steps = np.diff(dist)
        total = dist[-1] - dist[0]
        mean = total / (n - 1)
        p_last = recs[-1]["_ipp"]
        v = (p_last - p0) / (n - 1)
        kspace = float(np.linalg.norm(v))
        kdir = v / kspace
        cosang = float(np.clip(kdir @ orient[:, 2], -1.0, 1.0))
        tilt = math.degrees(math.acos(cosang))
        if tilt > 0.01:
            notes.append(f"gantry tilt / sheared slices: {tilt:.3f} degrees (placed exactly)")
        positions = np.array([r["_ipp"] for r in recs])
        expected = p0 + np.outer(np.arange(n), v)
        off_line = float(np.max(np.linalg.norm(positions - expected, axis=1)))
        tol = max(0.02 * abs(mean), 1e-3)
        if np.max(np.abs(steps - mean)) > tol or off_line > max(tol, 0.02 * kspace):
            step = float(np.median(steps))
            m = int(round(total / step)) + 1
            notes.append(
                f"irregular slice spacing (steps {steps.min():.4g} to {steps.max():.4g} mm"
                + (", slices missing" if m > n else "")
                + f"): resampled onto {m} slices at {total / (m - 1):.4g} mm; original slices kept exactly")
            warn.append(notes[-1])
            # Unit vector along the slice stack in the direction of the positions (with tilt).
            unit_along = v / (mean if mean != 0 else 1.0)  # LPS mm per mm along the normal
            kspace_new = total / (m - 1)
            kvec = unit_along * kspace_new
            kspace = float(np.linalg.norm(kvec))
            kdir = kvec / kspace
            resample = {"dist": dist.tolist(), "targets": (dist[0] + np.arange(m) * kspace_new).tolist()}
    direction = np.stack([orient[:, 0], orient[:, 1], kdir], axis=1)
    geometry = Geometry([sp[0], sp[1], kspace], p0, direction)
    return _Plan([recs], geometry, None, label, notes, resample=resample, tilt=tilt)


# -- pixels ---------------------------------------------------------------------------------------
def _stored_dtype(h: dict) -> np.dtype:
    tag = h.get("_pixel_tag")
    if tag == 0x7FE00008:
        return np.dtype("<f4")
    if tag == 0x7FE00009:
        return np.dtype("<f8")
    bits = int(_first_number(h.get("BitsAllocated"), 16) or 16)
    signed = int(_first_number(h.get("PixelRepresentation"), 0) or 0) == 1
    if bits <= 8:
        return np.dtype(np.int8 if signed else np.uint8)
    if bits <= 16:
        return np.dtype("<i2" if signed else "<u2")
    if bits <= 32:
        return np.dtype("<i4" if signed else "<u4")
    return np.dtype("<i8" if signed else "<u8")


def _stored_range(h: dict, dtype: np.dtype) -> tuple[float, float]:
    if dtype.kind == "f":
        return (-np.inf, np.inf)
    bits = int(_first_number(h.get("BitsStored"), dtype.itemsize * 8) or dtype.itemsize * 8)
    bits = max(1, min(bits, dtype.itemsize * 8))
    if dtype.kind == "i":
        return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    return (0, 2 ** bits - 1)


def _rescale_of(r: dict) -> tuple[float, float]:
    if r.get("DoseGridScaling") is not None:
        return (_first_number(r.get("DoseGridScaling"), 1.0) or 1.0, 0.0)
    slope = _first_number(r.get("RescaleSlope"), 1.0)
    intercept = _first_number(r.get("RescaleIntercept"), 0.0)
    if slope is None or slope == 0 or not math.isfinite(slope):
        slope = 1.0
    if intercept is None or not math.isfinite(intercept):
        intercept = 0.0
    return float(slope), float(intercept)


def _is_colour(h: dict) -> bool:
    return int(_first_number(h.get("SamplesPerPixel"), 1) or 1) > 1 or _photometric(h) == "PALETTE COLOR"


def _fast_ok(h: dict) -> bool:
    """Voxels can be read straight from the file: native little endian, no tiles."""
    if h.get("_ts") not in NATIVE_SYNTAXES or h.get("_pixel_offset", -1) < 0 or h.get("_pixel_length", -1) < 0:
        return False
    bits = int(_first_number(h.get("BitsAllocated"), 16) or 16)
    if bits not in (8, 16, 32, 64):
        return False
    spp = int(_first_number(h.get("SamplesPerPixel"), 1) or 1)
    pi = _photometric(h)
    if spp == 1:
        return pi in ("MONOCHROME1", "MONOCHROME2")
    return spp == 3 and pi == "RGB" and int(_first_number(h.get("PlanarConfiguration"), 0) or 0) == 0 and bits == 8


class _Decoded:
    """Per-file pixel decode through pydicom (cached for the frames of one file)."""

    @staticmethod
    def decode(h: dict) -> np.ndarray:
        import pydicom

        path = h["_path"]
        try:
            ds = pydicom.dcmread(path, force=True)
            if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
                raise FormatError(path, "no pixel data")
            if getattr(ds, "file_meta", None) is not None and "TransferSyntaxUID" not in ds.file_meta:
                ds.file_meta.TransferSyntaxUID = h.get("_ts") or "1.2.840.10008.1.2"
            try:
                arr = ds.pixel_array
            except Exception as first_error:
                arr = _imagecodecs_decode(ds, h)
                if arr is None:
                    raise first_error
            if _photometric(h) == "PALETTE COLOR":
                from pydicom.pixels import apply_color_lut

                arr = apply_color_lut(arr, ds)
                if arr.dtype != np.uint8:
                    arr = (arr >> 8).astype(np.uint8) if arr.max() > 255 else arr.astype(np.uint8)
        except FormatError:
            raise
        except Exception as exc:
            raise FormatError(path, f"cannot decode pixel data ({h.get('_ts')}): {type(exc).__name__}: {exc}") from None
        nframes = int(_first_number(h.get("NumberOfFrames"), 1) or 1)
        spp = 3 if _is_colour(h) else 1
        if nframes == 1 and arr.ndim == (3 if spp > 1 else 2):
            arr = arr[None]
        return arr


_IMAGECODECS = {
    "1.2.840.10008.1.2.4.50": "jpeg8_decode", "1.2.840.10008.1.2.4.51": "jpeg8_decode",
    "1.2.840.10008.1.2.4.57": "ljpeg_decode", "1.2.840.10008.1.2.4.70": "ljpeg_decode",
    "1.2.840.10008.1.2.4.80": "jpegls_decode", "1.2.840.10008.1.2.4.81": "jpegls_decode",
    "1.2.840.10008.1.2.4.90": "jpeg2k_decode", "1.2.840.10008.1.2.4.91": "jpeg2k_decode",
    "1.2.840.10008.1.2.4.201": "htj2k_decode", "1.2.840.10008.1.2.4.202": "htj2k_decode",
    "1.2.840.10008.1.2.4.203": "htj2k_decode",
}


def _imagecodecs_decode(ds: Any, h: dict) -> np.ndarray | None:
    """Decode encapsulated frames with imagecodecs when pydicom's plugins cannot (e.g. 12-bit JPEG)."""
    ts = str(h.get("_ts") or "")
    name = _IMAGECODECS.get(ts)
    if name is None:
        return None
    try:
        import imagecodecs
        from pydicom.encaps import generate_frames

        decode = getattr(imagecodecs, name)
        nframes = int(_first_number(h.get("NumberOfFrames"), 1) or 1)
        frames = [np.asarray(decode(f)) for f in generate_frames(ds.PixelData, number_of_frames=nframes)]
    except Exception:
        return None
    stored = _stored_dtype(h)
    out = np.stack(frames)
    if out.ndim == 3 and int(_first_number(h.get("SamplesPerPixel"), 1) or 1) == 1:
        out = out.astype(stored, copy=False)
    return out if nframes > 1 else out[0]


def _check_truncated(h: dict, frame_bytes: int, nframes: int) -> None:
    need = frame_bytes * nframes
    have = min(h.get("_pixel_length", 0), max(0, h.get("_size", 0) - h.get("_pixel_offset", 0)))
    if have < need:
        raise FormatError(h["_path"], f"pixel data is truncated: {have} of {need} bytes present")


class _Loader:
    """Fills a (T, K, rows, cols[, 3]) array from the records of a plan."""

    def __init__(self, plan: _Plan) -> None:
        self.plan = plan
        first = plan.grid[0][0]
        self.h0 = first["_hdr"]
        self.colour = _is_colour(self.h0)
        self.stored = np.dtype(np.uint8) if self.colour else _stored_dtype(self.h0)
        self.rows, self.cols = int(first["Rows"]), int(first["Columns"])
        self.T, self.K = len(plan.grid), len(plan.grid[0])
        self.mono1 = _photometric(self.h0) == "MONOCHROME1"
        self.lo, self.hi = _stored_range(self.h0, self.stored)
        self.rescales = [[_rescale_of(r) for r in row] for row in plan.grid]
        flat = [rs for row in self.rescales for rs in row]
        self.identity = all(s == 1.0 and b == 0.0 for s, b in flat)
        self.integer = self.stored.kind in "iu" and all(float(s).is_integer() and float(b).is_integer()
                                                        for s, b in flat)
        # Output type: stored, a wider integer, or float.
        if self.colour or self.identity:
            self.out_dtype = self.stored
        elif self.integer:
            lo = min(min(s * self.lo, s * self.hi) + b for s, b in flat)
            hi = max(max(s * self.lo, s * self.hi) + b for s, b in flat)
            wide = _int_dtype_for(lo, hi)
            self.out_dtype = self.stored if _fits(self.stored, lo, hi) else self.stored
            self.needs_check = not _fits(self.stored, lo, hi)
            self.wide_candidate = wide
        else:
            self.out_dtype = np.dtype(np.float64) if self.stored == np.float64 else np.dtype(np.float32)
        if not hasattr(self, "needs_check"):
            self.needs_check = False
        shape = (self.T, self.K, self.rows, self.cols) + ((3,) if self.colour else ())
        self.out = np.empty(shape, dtype=self.out_dtype)
        self.raw_frames: set[tuple[int, int]] = set()  # stored values kept (rescale did not fit)
        self.minmax: dict[tuple[int, int], tuple[float, float]] = {}
        self.failed: dict[str, str] = {}

    # -- per-file work --------------------------------------------------------------------------
    def tasks(self) -> list[tuple[str, list[tuple[int, int, dict]]]]:
        by_file: dict[str, list[tuple[int, int, dict]]] = defaultdict(list)
        for t, row in enumerate(self.plan.grid):
            for k, r in enumerate(row):
                by_file[r["_path"]].append((t, k, r))
        return list(by_file.items())

    def fill_file(self, path: str, targets: list[tuple[int, int, dict]]) -> None:
        h = targets[0][2]["_hdr"]
        try:
            if _fast_ok(h) and targets[0][2].get("_tile") is None:
                self._fill_native(h, targets)
            else:
                arr = _Decoded.decode(h)
                for t, k, r in targets:
                    src = self._frame_from(arr, r)
                    if src.shape != self.out.shape[2:]:
                        raise FormatError(path, f"frame shape {src.shape} does not match {self.out.shape[2:]}")
                    self._store(t, k, r, src)
        except FormatError as exc:
            self.failed[path] = exc.reason
        except OSError as exc:
            self.failed[path] = f"cannot read: {exc.strerror or exc}"

    def _frame_from(self, arr: np.ndarray, r: dict) -> np.ndarray:
        tile = r.get("_tile")
        frame = arr[r["_frame"]] if arr.shape[0] > r["_frame"] else None
        if frame is None:
            raise FormatError(r["_path"], f"frame {r['_frame'] + 1} is missing")
        if tile is not None:
            t, per_row, tr, tc = tile
            y, x = (t // per_row) * tr, (t % per_row) * tc
            frame = frame[y:y + tr, x:x + tc]
        return frame

    def _fill_native(self, h: dict, targets: list[tuple[int, int, dict]]) -> None:
        stored = np.dtype(np.uint8) if self.colour else _stored_dtype(h)
        frame_bytes = self.rows * self.cols * stored.itemsize * (3 if self.colour else 1)
        nframes = int(_first_number(h.get("NumberOfFrames"), 1) or 1)
        _check_truncated(h, frame_bytes, nframes)
        direct = stored == self.out_dtype
        with open(h["_path"], "rb", buffering=0) as fh:
            for t, k, r in targets:
                fh.seek(h["_pixel_offset"] + r["_frame"] * frame_bytes)
                if direct:
                    dest = self.out[t, k]
                    got = fh.readinto(memoryview(dest).cast("B"))
                    if got != frame_bytes:
                        raise FormatError(h["_path"], "pixel data is truncated")
                    self._post(t, k, r, dest, in_place=True)
                else:
                    buf = np.empty(self.out.shape[2:], dtype=stored)
                    got = fh.readinto(memoryview(buf).cast("B"))
                    if got != frame_bytes:
                        raise FormatError(h["_path"], "pixel data is truncated")
                    self._store(t, k, r, buf, fixed_sign=False)

    def _sign_fix(self, h: dict, a: np.ndarray) -> None:
        if a.dtype.kind != "i":
            return
        bits = int(_first_number(h.get("BitsStored"), a.dtype.itemsize * 8) or a.dtype.itemsize * 8)
        shift = a.dtype.itemsize * 8 - bits
        if 0 < shift < a.dtype.itemsize * 8:
            np.left_shift(a, shift, out=a)
            np.right_shift(a, shift, out=a)

    def _store(self, t: int, k: int, r: dict, src: np.ndarray, fixed_sign: bool = True) -> None:
        dest = self.out[t, k]
        if self.out_dtype == src.dtype or self.out_dtype.kind in "iu":
            np.copyto(dest, src, casting="unsafe")
            if not fixed_sign:
                self._sign_fix(r["_hdr"], dest)
            self._post(t, k, r, dest, in_place=True, sign_done=True)
        else:  # float output
            a = src.astype(self.out_dtype) if fixed_sign else self._signed_copy(r, src)
            self._post_float(t, k, r, a)

    def _signed_copy(self, r: dict, src: np.ndarray) -> np.ndarray:
        s = src.copy()
        self._sign_fix(r["_hdr"], s)
        return s.astype(self.out_dtype)

    def _post(self, t: int, k: int, r: dict, dest: np.ndarray, in_place: bool, sign_done: bool = False) -> None:
        if not sign_done:
            self._sign_fix(r["_hdr"], dest)
        if self.colour:
            return
        if self.out_dtype.kind == "f" and self.stored.kind != "f":
            return
        if self.mono1:
            np.subtract(self.lo + self.hi, dest, out=dest, casting="unsafe")
        s, b = self.rescales[t][k]
        if self.identity or (s == 1.0 and b == 0.0):
            return
        if self.out_dtype.kind == "f":
            np.multiply(dest, s, out=dest, casting="unsafe")
            np.add(dest, b, out=dest, casting="unsafe")
            return
        if self.needs_check:
            info = np.iinfo(self.out_dtype)
            # One-sided checks: only the side the rescale moves towards can overflow.
            if s == 1.0:
                if b < 0:
                    lo = float(dest.min())
                    fits = lo + b >= info.min
                    hi = None
                else:
                    hi = float(dest.max())
                    fits = hi + b <= info.max
                    lo = None
            else:
                lo, hi = float(dest.min()), float(dest.max())
                a1, a2 = s * lo + b, s * hi + b
                fits = min(a1, a2) >= info.min and max(a1, a2) <= info.max
            if not fits:
                self.raw_frames.add((t, k))
                self.minmax[(t, k)] = (float(dest.min()), float(dest.max()))
                return
        if s != 1.0:
            np.multiply(dest, int(s), out=dest, casting="unsafe")
        if b != 0.0:
            np.add(dest, int(b), out=dest, casting="unsafe")

    def _post_float(self, t: int, k: int, r: dict, a: np.ndarray) -> None:
        if self.mono1:
            np.subtract(self.lo + self.hi, a, out=a)
        s, b = self.rescales[t][k]
        if s != 1.0:
            a *= s
        if b != 0.0:
            a += b
        self.out[t, k] = a

    def finish(self) -> np.ndarray:
        if not self.raw_frames:
            return self.out
        # Some frames did not fit the stored type after rescale: widen exactly.
        lo, hi = np.inf, -np.inf
        for t in range(self.T):
            for k in range(self.K):
                s, b = self.rescales[t][k]
                if (t, k) in self.raw_frames:
                    mn, mx = self.minmax[(t, k)]
                    vals = (s * mn + b, s * mx + b)
                else:
                    sl = self.out[t, k]
                    vals = (float(sl.min()), float(sl.max()))
                lo, hi = min(lo, *vals), max(hi, *vals)
        wide = _int_dtype_for(lo, hi)
        new = np.empty(self.out.shape, dtype=wide)
        for t in range(self.T):
            for k in range(self.K):
                if (t, k) in self.raw_frames:
                    s, b = self.rescales[t][k]
                    sl = self.out[t, k].astype(wide)
                    if s != 1.0:
                        sl *= int(s)
                    if b != 0.0:
                        sl += int(b)
                    new[t, k] = sl
                else:
                    new[t, k] = self.out[t, k]
        return new

    def window(self) -> tuple[float, float] | None:
        r = self.plan.grid[0][len(self.plan.grid[0]) // 2]
        c = _first_number(r.get("WindowCenter"))
        w = _first_number(r.get("WindowWidth"))
        if c is None or w is None or not (np.isfinite(c) and np.isfinite(w) and w > 0):
            return None
        if self.mono1:
            s, b = self.rescales[0][0]
            c = s * (self.lo + self.hi) + 2 * b - c
        return c, w


def _fits(dtype: np.dtype, lo: float, hi: float) -> bool:
    if dtype.kind not in "iu":
        return True
    info = np.iinfo(dtype)
    return lo >= info.min and hi <= info.max


def _int_dtype_for(lo: float, hi: float) -> np.dtype:
    for dt in (np.int16, np.uint16, np.int32, np.uint32, np.int64):
        if _fits(np.dtype(dt), lo, hi):
            return np.dtype(dt)
    return np.dtype(np.float64)


def _resample_k(arr: np.ndarray, dist: Sequence[float], targets: Sequence[float]) -> np.ndarray:
    """Linear interpolation along axis 1 (K) from slice positions ``dist`` onto ``targets``."""
    d = np.asarray(dist)
    exact = []
    for x in targets:
        j = int(np.argmin(np.abs(d - x)))
        exact.append(abs(d[j] - x) <= POSITION_TOL)
    dtype = arr.dtype if all(exact) else (arr.dtype if arr.dtype.kind == "f" else np.dtype(np.float32))
    out = np.empty(arr.shape[:1] + (len(targets),) + arr.shape[2:], dtype=dtype)
    for m, x in enumerate(targets):
        j = int(np.argmin(np.abs(d - x)))
        if abs(d[j] - x) <= POSITION_TOL:
            out[:, m] = arr[:, j]
            continue
        hi = int(np.searchsorted(d, x))
        lo = max(hi - 1, 0)
        hi = min(hi, len(d) - 1)
        w = 0.0 if hi == lo else (x - d[lo]) / (d[hi] - d[lo])
        out[:, m] = (1 - w) * arr[:, lo].astype(np.float32) + w * arr[:, hi].astype(np.float32)
    return out


def _run(loaders: list[_Loader], progress: Callable[[int, int], None] | None,
         cancel: Callable[[], bool] | None) -> None:
    jobs = [(ld, path, targets) for ld in loaders for path, targets in ld.tasks()]
    for n, (ld, path, targets) in enumerate(jobs, 1):
        if cancel is not None and cancel():
            raise CancelledError(None, "cancelled")
        ld.fill_file(path, targets)
        if progress is not None:
            progress(n, len(jobs))


# -- public entry points --------------------------------------------------------------------------
def _identity(headers: list[dict], instance_uids: list[str]) -> dict:
    h = headers[0]
    keys = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate",
            "StudyTime", "StudyDescription", "StudyID", "AccessionNumber", "SeriesInstanceUID", "SeriesNumber",
            "SeriesDescription", "SeriesDate", "Modality", "FrameOfReferenceUID", "Manufacturer",
            "ManufacturerModelName", "SOPClassUID", "BodyPartExamined", "DoseUnits", "DoseType")
    out = {k: jsonable(h.get(k)) for k in keys if h.get(k) not in (None, "")}
    out["SOPInstanceUIDs"] = instance_uids
    out["TransferSyntaxUID"] = h.get("_ts")
    return out


def assemble_series(headers: list[dict], progress: Callable[[int, int], None] | None = None,
                    cancel: Callable[[], bool] | None = None) -> tuple[list[Volume], list[str], dict[str, str]]:
    """Volumes of one series: (volumes, warnings, failed files {path: reason})."""
    return _assemble_many([headers], progress, cancel)


def _assemble_many(series_list: list[list[dict]], progress, cancel) -> tuple[list[Volume], list[str], dict[str, str]]:
    all_failed: dict[str, str] = {}
    plans_per_series: list[tuple[list[dict], list[_Plan], list[str]]] = []
    for headers in series_list:
        good = []
        for h in headers:
            reason = _precheck(h)
            if reason:
                all_failed[h["_path"]] = reason
            else:
                good.append(h)
        if not good:
            continue
        warn: list[str] = []
        plans_per_series.append((good, _plans_for_series(good, warn), warn))
    loaders = [_Loader(p) for _, plans, _ in plans_per_series for p in plans]
    _run(loaders, progress, cancel)
    volumes: list[Volume] = []
    warnings_out: list[str] = []
    retry: list[list[dict]] = []
    li = 0
    for good, plans, warn in plans_per_series:
        series_loaders = loaders[li:li + len(plans)]
        li += len(plans)
        failed = {}
        for ld in series_loaders:
            failed.update(ld.failed)
        if failed:
            all_failed.update(failed)
            remaining = [h for h in good if h["_path"] not in failed]
            if remaining:
                retry.append(remaining)
            continue
        name = series_name(good[0])
        for plan, ld in zip(plans, series_loaders):
            volumes.append(_volume_from(plan, ld, good, name, warn))
        warnings_out.extend(f"{name}: {w}" for w in warn)
    if retry:
        more, more_warn, more_failed = _assemble_many(retry, None, cancel)
        volumes.extend(more)
        warnings_out.extend(more_warn)
        all_failed.update(more_failed)
    return volumes, warnings_out, all_failed


def _precheck(h: dict) -> str | None:
    if not h.get("_pixel_tag"):
        return "no pixel data"
    if not h.get("Rows") or not h.get("Columns"):
        return "no image size (Rows/Columns)"
    if _fast_ok(h):
        colour = _is_colour(h)
        stored = np.dtype(np.uint8) if colour else _stored_dtype(h)
        frame_bytes = int(h["Rows"]) * int(h["Columns"]) * stored.itemsize * (3 if colour else 1)
        nframes = int(_first_number(h.get("NumberOfFrames"), 1) or 1)
        need = frame_bytes * nframes
        have = min(h.get("_pixel_length", 0), max(0, h.get("_size", 0) - h.get("_pixel_offset", 0)))
        if have < need:
            return f"pixel data is truncated: {have} of {need} bytes present"
    elif (h.get("_ts") in NATIVE_SYNTAXES and h.get("_pixel_offset", -1) >= 0 and h.get("_pixel_length", -1) >= 0
          and h["_pixel_offset"] + h["_pixel_length"] > h.get("_size", 0)):
        return "pixel data is truncated"
    else:
        return _compressed_size_check(h)
    return None


#: Most bytes one byte of compressed pixel data may decode to (run-length and JPEG-LS reach a few hundred
#: on flat images), on top of :data:`DECODE_ALLOWANCE`.
MAX_DECODE_RATIO = 1000
#: Decoded bytes any compressed file may declare whatever its size.
DECODE_ALLOWANCE = 256 << 20


def _compressed_size_check(h: dict) -> str | None:
    """Rows x Columns x NumberOfFrames of compressed pixel data bounded by what the file can hold,
    before anything is allocated: each frame needs at least one 8-byte item, each byte decodes to at
    most :data:`MAX_DECODE_RATIO` bytes."""
    have = max(0, h.get("_size", 0) - max(h.get("_pixel_offset", 0), 0))
    rows, cols = int(_first_number(h.get("Rows"), 0) or 0), int(_first_number(h.get("Columns"), 0) or 0)
    nframes = int(_first_number(h.get("NumberOfFrames"), 1) or 1)
    spp = int(_first_number(h.get("SamplesPerPixel"), 1) or 1)
    bits = int(_first_number(h.get("BitsAllocated"), 16) or 16)
    if nframes < 1 or nframes > max(have // 8, 1):
        return f"NumberOfFrames {nframes} is more than the {have} bytes of pixel data can hold"
    need = rows * cols * nframes * max(spp, 1) * max(bits // 8, 1)
    if need > have * MAX_DECODE_RATIO + DECODE_ALLOWANCE:
        return (f"Rows x Columns x NumberOfFrames ({rows} x {cols} x {nframes}, {need / (1 << 30):.1f} GiB decoded) "
                f"is more than the {have} bytes of compressed pixel data can hold")
    return None


def _volume_from(plan: _Plan, ld: _Loader, headers: list[dict], name: str, warn: list[str]) -> Volume:
    arr = ld.finish()
    if plan.resample is not None:
        arr = _resample_k(arr, plan.resample["dist"], plan.resample["targets"])
    extra = []
    if plan.axis is not None:
        extra = [plan.axis]
    else:
        arr = arr[0]
    components = AxisInfo(name="component", kind="RGB-color") if ld.colour else None
    uids = [str(r.get("SOPInstanceUID") or "") for r in plan.grid[0]]
    seen = set()
    uids = [u for u in uids if not (u in seen or seen.add(u))]
    meta: dict[str, Any] = {"dicom": _identity(headers, uids)}
    if plan.notes:
        meta["dicom"]["notes"] = list(plan.notes)
    if plan.tilt > 0.01:
        meta["dicom"]["gantry_tilt_deg"] = plan.tilt
    if ld.mono1:
        meta["dicom"]["monochrome1_inverted"] = True
    if plan.axis is not None:
        meta["dicom"]["split"] = f"4D along {plan.axis.name}"
    if headers[0].get("DoseGridScaling") is not None or str(headers[0].get("Modality")) == "RTDOSE":
        meta["units"] = str(headers[0].get("DoseUnits") or "GY")
    win = ld.window()
    window = DisplayWindow(*win) if win is not None and not ld.colour else None
    return Volume(arr, plan.geometry, kind=DataKind.VOLUME, name=name + plan.label, extra_axes=extra,
                  components=components, metadata=meta, source=headers[0]["_path"], window=window)


def load_volumes(headers: list[dict], progress: Callable[[int, int], None] | None = None,
                 cancel: Callable[[], bool] | None = None,
                 warn: bool = True) -> tuple[list[Volume], list[str], dict[str, str], list[dict]]:
    """Volumes of every image series in ``headers``, ordered by series number.

    Returns (volumes, warnings, failed files {path: reason}, non-image headers).
    Warnings are also issued as :class:`DicomWarning` when ``warn``.
    """
    from .ultrasound import split_ultrasound

    us_volumes, headers, us_failed = split_ultrasound(headers)  # 3D/4D vendor ultrasound: not 2D frames
    images = [h for h in headers if is_image_header(h)]
    others = [h for h in headers if not is_image_header(h)]
    groups = group_by_series(images)

    def order(item):
        hs = item[1]
        num = _first_number(hs[0].get("SeriesNumber"), 1e9)
        return (num, str(hs[0].get("SeriesDescription") or ""), item[0])

    series_list = [hs for _, hs in sorted(groups.items(), key=order)]
    volumes, warns, failed = _assemble_many(series_list, progress, cancel)
    volumes, failed = us_volumes + volumes, {**us_failed, **failed}
    if warn:
        for w in warns:
            warnings.warn(w, DicomWarning, stacklevel=3)
        if failed and volumes:
            warnings.warn(_failed_text(failed), DicomWarning, stacklevel=3)
    return volumes, warns, failed, others


def _failed_text(failed: dict[str, str], limit: int = 5) -> str:
    items = list(failed.items())
    text = "; ".join(f"{p}: {r}" for p, r in items[:limit])
    if len(items) > limit:
        text += f"; and {len(items) - limit} more"
    return f"{len(items)} file(s) could not be loaded: {text}"


def series_key(h: dict) -> str:
    """The series a header belongs to: its SeriesInstanceUID (``no-series:<path>`` without one)."""
    return str(h.get("SeriesInstanceUID") or f"no-series:{h.get('_path')}")


class DicomScan:
    """The headers of a DICOM file, DICOMDIR or folder (recursive), read once: what to choose series from."""

    def __init__(self, path: Path, headers: list[dict], problems: list[tuple[str, str]], skipped: int) -> None:
        self.path = path
        self.headers = headers
        self.problems = problems
        self.skipped = skipped

    def series(self) -> dict[str, list[dict]]:
        """Headers per series (key: :func:`series_key`), image and non-image series alike, in file order."""
        groups: dict[str, list[dict]] = defaultdict(list)
        for h in self.headers:
            groups[series_key(h)].append(h)
        return dict(groups)


def scan_dicom_path(path: str | os.PathLike[str], progress: Callable[[int, int], None] | None = None,
                    cancel: Callable[[], bool] | None = None) -> DicomScan:
    """Headers (no pixels) of a DICOM file, DICOMDIR or folder (recursive), for :func:`read_dicom_path`."""
    p = Path(path)
    if p.is_dir():
        files = scan_files([p])
    elif p.name.upper() == "DICOMDIR":
        files = dicomdir_files(p)
        if not files:
            raise FormatError(p, "the DICOMDIR references no files that exist")
    else:
        files = [os.fspath(p)]
    headers, problems, skipped = read_headers(files, progress=progress, cancel=cancel)
    headers = [h for h in headers if not h.get("_dicomdir") and h.get("_media_sop_class") != "1.2.840.10008.1.3.10"]
    if not p.is_dir() and p.name.upper() != "DICOMDIR" and not headers:
        raise FormatError(p, problems[0][1] if problems else "not a DICOM file")
    return DicomScan(p, headers, problems, skipped)


def read_dicom_path(path: str | os.PathLike[str], progress: Callable[[int, int], None] | None = None,
                    cancel: Callable[[], bool] | None = None,
                    delegate: Callable[[list], list] | None = None, *,
                    scan: DicomScan | None = None, series: Iterable[str] | None = None) -> list:
    """Every image series in a DICOM file, DICOMDIR, folder (recursive) or .zip, as volumes.

    ``delegate(non_image_headers)`` may return further data objects for the
    files that hold no image series (SEG, RT structure sets, ...), read by the
    formats that own them; they follow the volumes.  ``scan``: the headers
    already read by :func:`scan_dicom_path`; ``series``: the series keys
    (:func:`series_key`) to load, all when None.
    """
    p = Path(path)
    if scan is None and p.is_file() and p.suffix.lower() == ".zip":
        return _read_zip(p, progress, cancel, delegate)
    if scan is None:
        scan = scan_dicom_path(p, cancel=cancel)
    headers, problems, skipped = scan.headers, scan.problems, scan.skipped
    if series is not None:
        wanted = set(series)
        headers = [h for h in headers if series_key(h) in wanted]
    volumes, warns, failed, others = load_volumes(headers, progress, cancel)
    failed = dict(failed)
    for f, r in problems:
        failed.setdefault(f, r)
    extra = delegate(others) if (delegate is not None and others) else []
    if extra:
        for v in volumes:
            v.source = os.fspath(p)
        return list(volumes) + list(extra)
    if not volumes:
        if failed:
            raise FormatError(p, _failed_text(failed))
        if others:
            kinds = sorted({str(h.get("Modality") or "non-image") for h in others})
            raise FormatError(p, f"no image series to load (holds only {', '.join(kinds)} objects without a volume)")
        raise FormatError(p, f"no DICOM image found ({skipped} non-DICOM file(s))")
    for v in volumes:
        v.source = os.fspath(p)
    return volumes


def _read_zip(p: Path, progress, cancel, delegate=None) -> list:
    """A zip of DICOM files, extracted with the archive checks (names, sizes, zip-bomb ratios) to a temporary folder."""
    import tempfile

    from ..core.archive import safe_extract

    with tempfile.TemporaryDirectory(prefix="medio-dicom-zip-") as tmp:
        root = Path(tmp).resolve()
        safe_extract(p, root, cancel=cancel)
        volumes = read_dicom_path(root, progress, cancel, delegate)
        for v in volumes:
            if isinstance(v, Volume):
                v.array = np.asarray(v.array)
                v.source = os.fspath(p)
        return volumes
