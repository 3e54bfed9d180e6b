"""OsiriX ROI export (``.json``, read only): contours as markups, or a segmentation.

Structure (as Slicer's Sandbox ``ImportOsirixROI`` module reads it; OsiriX itself
publishes no specification).  Two layouts:

* a JSON **list** of contours (OsiriX's "Export ROIs" as JSON), each an object with
  ``"Name"``, ``"ROI3DPoints"`` (a list of strings ``"[x,y,z]"``, patient **LPS** mm),
  and usually ``"Slice"``, ``"ROIPoints"`` (``"[col,row]"`` pixels),
  ``"DataSummary"`` (statistics and ``"Type"``, e.g. ``"Closed Polygon"``) and
  ``"DataValues"``;
* an object ``{"Images": [...]}`` (the "Export ROIs" plug-in): each image has
  ``"ImageIndex"``, ``"ImageWidth"``/``"ImageHeight"`` and ``"ROIs"``, each ROI
  ``"Name"``, ``"Point_mm"`` (strings ``"(x, y, z)"``, LPS mm), ``"Point_px"``,
  ``"Type"``, statistics and the DICOM ``SOPInstanceUID`` / ``SeriesInstanceUID`` /
  ``StudyInstanceUID``.

Every contour is one closed planar polygon; contours with the same name form one
ROI.  Reading gives

* by default, one closed-curve :class:`~napari_medio.core.markups.Markups` per contour
  (``curve_type="linear"``: the polygon exactly, not Slicer's optional spline
  smoothing), named after its ROI, the OsiriX fields in ``metadata["osirix"]``;
* ``output="contours"``: one :class:`~napari_medio.core.model.Model` per ROI holding
  its contours as closed poly-lines (Slicer's planar-contour representation);
* ``reference=VOLUME`` (a path, or a data object with a ``geometry``): a
  :class:`~napari_medio.core.segmentation.Segmentation` on the reference's grid, one
  segment per ROI: each contour is filled on the reference slice it lies in (voxel
  centres inside the polygon, even-odd rule, so a contour inside another of the same
  ROI on one slice is a hole); ROIs that overlap go to separate layers.
"""
from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import FormatError
from ..core.fileio import read_content
from ..core.kinds import DataKind
from ..core.registry import FileFormat, register

__all__ = ["read_osirix_roi", "load_osirix_contours", "rasterise_contours"]

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)", re.IGNORECASE)


def _sniff(head: bytes, path: Path) -> bool:
    """Strict: a JSON list of contours with OsiriX's keys, or ``{"Images": [{... "ROIs"``."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"["):
        body = text[1:].lstrip()
        return body.startswith(b"{") and b'"ROI3DPoints"' in head and (
            b'"Name"' in head or b'"DataSummary"' in head or b'"ROIPoints"' in head)
    if text.startswith(b"{"):
        body = text[1:].lstrip()
        return body.startswith(b'"Images"') and (b'"ROIs"' in head or b'"NumberOfROIs"' in head
                                                  or b'"ImageIndex"' in head)
    return False


def _points(values: Any, what: str, path: Path) -> np.ndarray:
    """(n, 3) LPS points from OsiriX's ``"[x,y,z]"`` / ``"(x, y, z)"`` strings (or number triples)."""
    if not isinstance(values, list):
        raise FormatError(path, f"{what}: expected a list of points, got {type(values).__name__}")
    out = np.empty((len(values), 3))
    for n, v in enumerate(values):
        if isinstance(v, str):
            nums = _NUMBER.findall(v)
        elif isinstance(v, (list, tuple)):
            nums = v
        else:
            nums = []
        try:
            p = [float(x) for x in nums]
        except (TypeError, ValueError):
            p = []
        if len(p) != 3 or not np.all(np.isfinite(p)):
            raise FormatError(path, f"{what} point {n}: expected three finite numbers, got {v!r}")
        out[n] = p
    return out


def load_osirix_contours(path: str | os.PathLike[str]) -> list[dict]:
    """The contours of an OsiriX ROI JSON file, in file order.

    Each is ``{"name", "points" (n, 3) LPS mm, "slice" (or None), "fields"}`` where
    ``fields`` keeps the contour's other scalar fields (statistics, type, UIDs).
    Raises :class:`FormatError` naming the file for anything else.
    """
    p = Path(path)
    raw = read_content(p)
    try:
        doc = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(p, f"not valid JSON: {exc}") from None

    def scalars(d: dict, skip: tuple[str, ...]) -> dict:
        out: dict = {}
        for k, v in d.items():
            if k in skip:
                continue
            if isinstance(v, dict):
                out[k] = {kk: vv for kk, vv in v.items() if not isinstance(vv, (list, dict))}
            elif not isinstance(v, list):
                out[k] = v
        return out

    contours: list[dict] = []
    if isinstance(doc, list):
        for n, c in enumerate(doc):
            if not isinstance(c, dict) or "ROI3DPoints" not in c:
                raise FormatError(p, f"contour {n}: not an OsiriX ROI object (no ROI3DPoints)")
            name = c.get("Name")
            pts = _points(c["ROI3DPoints"], f"contour {n} ROI3DPoints", p)
            fields = scalars(c, ("ROI3DPoints", "ROIPoints", "DataValues"))
            contours.append({"name": str(name) if name not in (None, "") else "Unnamed", "points": pts,
                             "slice": c.get("Slice"), "fields": fields})
    elif isinstance(doc, dict) and "Images" in doc:
        images = doc["Images"]
        if not isinstance(images, list):
            raise FormatError(p, "Images: expected a list")
        for i, image in enumerate(images):
            if not isinstance(image, dict) or not isinstance(image.get("ROIs", []), list):
                raise FormatError(p, f"image {i}: expected an object with a ROIs list")
            for r, roi in enumerate(image.get("ROIs", [])):
                if not isinstance(roi, dict) or "Point_mm" not in roi:
                    raise FormatError(p, f"image {i} ROI {r}: not an OsiriX ROI object (no Point_mm)")
                name = roi.get("Name")
                pts = _points(roi["Point_mm"], f"image {i} ROI {r} Point_mm", p)
                fields = scalars(roi, ("Point_mm", "Point_px", "Point_value"))
                fields["ImageIndex"] = image.get("ImageIndex")
                contours.append({"name": str(name) if name not in (None, "") else "Unnamed", "points": pts,
                                 "slice": image.get("ImageIndex"), "fields": fields})
    else:
        raise FormatError(p, "not an OsiriX ROI export: expected a list of contours or an object with Images")
    return contours


def _resolve_reference(reference: Any, path: Path) -> Any:
    if isinstance(reference, (str, os.PathLike)):
        from ..core.registry import read

        objs = [o for o in read(reference) if getattr(o, "geometry", None) is not None]
        if not objs:
            raise FormatError(path, f"reference {os.fspath(reference)!r} holds no volume")
        reference = objs[0]
    geometry = getattr(reference, "geometry", None)
    shape = getattr(reference, "spatial_shape", None)
    if geometry is None or shape is None or geometry.ndim != 3 or len(shape) != 3:
        raise FormatError(path, "reference must be a 3D volume (a path or an object with a 3D geometry)")
    return reference


def _fill_polygon(xy: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (rows, cols) of a (rows x cols) slice whose centres lie inside polygon ``xy``
    (col, row) by the even-odd rule."""
    nrow, ncol = shape
    x, y = xy[:, 0], xy[:, 1]
    x0, y0 = x, y
    x1, y1 = np.roll(x, -1), np.roll(y, -1)
    r_lo = max(int(np.ceil(y.min())), 0)
    r_hi = min(int(np.floor(y.max())), nrow - 1)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    cgrid = np.arange(ncol, dtype=float)
    for r in range(r_lo, r_hi + 1):
        cross = (y0 <= r) != (y1 <= r)  # edge straddles this row (half-open: no double counting)
        if not cross.any():
            continue
        xa, ya, xb, yb = x0[cross], y0[cross], x1[cross], y1[cross]
        xs = np.sort(xa + (r - ya) * (xb - xa) / (yb - ya))
        c_lo = max(int(np.ceil(xs[0])), 0)
        c_hi = min(int(np.floor(xs[-1])), ncol - 1)
        if c_hi < c_lo:
            continue
        c = cgrid[c_lo:c_hi + 1]
        inside = (np.searchsorted(xs, c, side="right") % 2) == 1
        cc = np.flatnonzero(inside) + c_lo
        rows.append(np.full(cc.size, r))
        cols.append(cc)
    if not rows:
        return np.zeros(0, int), np.zeros(0, int)
    return np.concatenate(rows), np.concatenate(cols)


def rasterise_contours(contours: list[dict], reference: Any, *, path: Any = None, name: str = "") -> Any:
    """A Segmentation on ``reference``'s grid, one segment per contour name (see the module doc)."""
    from ..core.segmentation import Segment, Segmentation, default_color

    geometry = reference.geometry
    nk, nj, ni = (int(s) for s in reference.spatial_shape)
    shape = (nk, nj, ni)
    names: list[str] = []
    for c in contours:
        if c["name"] not in names:
            names.append(c["name"])
    masks: dict[str, np.ndarray] = {}
    off_grid = 0
    for c in contours:
        idx = geometry.lps_to_index(c["points"])  # (n, 3) continuous (i, j, k)
        if len(idx) < 3:
            continue
        spread = idx.max(axis=0) - idx.min(axis=0)
        axis = int(np.argmin(spread))  # the index axis the contour's plane is normal to
        if spread[axis] > 0.5:
            off_grid += 1
        s = int(np.round(idx[:, axis].mean()))
        if not 0 <= s < shape[2 - axis]:
            continue
        plane_axes = [a for a in range(3) if a != axis]  # (i, j, k) axes spanning the slice, ascending
        # Slice array indices are in numpy order: rows = the later index axis, cols = the earlier one.
        col_axis, row_axis = plane_axes
        xy = idx[:, [col_axis, row_axis]]
        nrow, ncol = shape[2 - row_axis], shape[2 - col_axis]
        rr, cc = _fill_polygon(xy, (nrow, ncol))
        if rr.size == 0:
            continue
        mask = masks.get(c["name"])
        if mask is None:
            mask = masks[c["name"]] = np.zeros(shape, bool)
        sel = [None, None, None]
        sel[2 - axis] = np.full(rr.size, s)
        sel[2 - row_axis] = rr
        sel[2 - col_axis] = cc
        mask[tuple(sel)] ^= True  # even-odd across contours of one ROI on one slice: nested = hole
    if off_grid:
        warnings.warn(f"{path}: {off_grid} contour(s) do not lie in a slice of the reference grid; "
                      "each was filled on its nearest slice", stacklevel=3)
    # Layers: a segment goes to the first layer it does not overlap.
    layers: list[np.ndarray] = []
    segments: list = []
    dtype = np.uint8 if len(names) < 256 else np.uint16
    for n, roi in enumerate(names):
        mask = masks.get(roi)
        layer = 0
        if mask is not None:
            free = next((i for i, arr in enumerate(layers) if not np.any(arr[mask])), None)
            if free is None:
                layers.append(np.zeros(shape, dtype))
                free = len(layers) - 1
            layer = free
        label = 1 + sum(1 for s in segments if s.layer == layer)
        if mask is not None:
            layers[layer][mask] = label
        segments.append(Segment(id=f"Segment_{n + 1}", name=roi, label_value=label, layer=layer,
                                color=default_color(n)))
    if not layers:
        layers = [np.zeros(shape, dtype)]
    array = layers[0] if len(layers) == 1 else np.stack(layers)
    return Segmentation(array, geometry, segments, name=name,
                        metadata={"master_representation": "Binary labelmap",
                                  "contained_representations": ["Binary labelmap"]},
                        source=os.fspath(path) if path is not None else None)


def read_osirix_roi(path: str | os.PathLike[str], *, reference: Any = None, output: str = "markups") -> list:
    """Read an OsiriX ROI JSON export (see the module doc for ``output`` and ``reference``)."""
    p = Path(path)
    contours = load_osirix_contours(p)
    if not contours:
        raise FormatError(p, "the OsiriX ROI file holds no contour")
    empty = [n for n, c in enumerate(contours) if len(c["points"]) < 3]
    if empty:
        warnings.warn(f"{p}: {len(empty)} contour(s) with fewer than 3 points skipped", stacklevel=2)
    contours = [c for c in contours if len(c["points"]) >= 3]
    if not contours:
        raise FormatError(p, "no OsiriX contour has 3 or more points")
    stem = p.name[:-5] if p.name.lower().endswith(".json") else p.stem
    if reference is not None:
        ref = _resolve_reference(reference, p)
        return [rasterise_contours(contours, ref, path=p, name=stem)]
    if output == "contours":
        from ..core.model import Model

        models = []
        for roi in dict.fromkeys(c["name"] for c in contours):
            parts = [c for c in contours if c["name"] == roi]
            pts = np.concatenate([c["points"] for c in parts])
            sizes = np.array([len(c["points"]) + 1 for c in parts])
            starts = np.r_[0, np.cumsum([len(c["points"]) for c in parts])[:-1]]
            conn = np.concatenate([np.r_[np.arange(len(c["points"])), 0] + s for c, s in zip(parts, starts)])
            model = Model(pts, np.full(len(parts), 4, np.uint8), np.r_[0, np.cumsum(sizes)], conn, name=roi,
                          coordinate_system="LPS", source=os.fspath(p))
            model.metadata["osirix"] = [c["fields"] for c in parts]
            models.append(model)
        return models
    if output != "markups":
        raise FormatError(p, f"unknown output {output!r}: use 'markups', 'contours' or reference=VOLUME")
    from ..core.markups import Markups

    out = []
    for c in contours:
        m = Markups(type="ClosedCurve", name=c["name"], curve_type="linear", source=os.fspath(p))
        for q in c["points"]:
            m.add_point(q)
        m.metadata["osirix"] = dict(c["fields"], Slice=c["slice"]) if c["slice"] is not None else dict(c["fields"])
        out.append(m)
    return out


register(FileFormat(
    name="osirix-roi",
    description="OsiriX ROI export (JSON, read): contours as closed-curve markups, "
                "or a segmentation on a reference volume's grid",
    extensions=(".json",),
    read=read_osirix_roi,
    sniff=_sniff,
    kinds=(DataKind.MARKUPS, DataKind.SEGMENTATION),
    priority=4,
    backend="napari-medio",
    read_options={"reference": "volume path or object: rasterise onto its grid",
                  "output": "'markups' (default) or 'contours'"},
))
