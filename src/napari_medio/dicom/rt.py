"""DICOM RT objects and structured reports (SlicerRT and Quantitative Reporting on the core objects).

* RT Structure Set: :func:`read_rtstruct` -> :class:`RTStructureSet` (ROI names,
  colours, contours as LPS polylines); :func:`rasterize_rtstruct` -> a core
  :class:`~napari_medio.core.segmentation.Segmentation` on the referenced image's
  grid (or on a grid covering the contours), one segment per ROI, overlapping ROIs
  in separate layers; planar contours are filled with even-odd rule (holes).
* RT Dose: :func:`read_rtdose` -> a dose Volume (stored value x DoseGridScaling,
  frames placed with GridFrameOffsetVector).
* RT Image: :func:`read_rtimage` -> a 2D image Volume (image-plane geometry).
* RT Plan: :func:`describe_rtplan` -> a summary dict (listed, never a layer).
* SR (TID 1500): :func:`read_sr_measurements` -> a :class:`~napari_medio.core.table.Table`
  of the numeric measurements with their group, finding and finding site.

Every reader raises :class:`~napari_medio.core.errors.FormatError` naming the file for
empty, truncated, random or wrong-kind input.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import FormatError
from ..core.geometry import Geometry
from ..core.kinds import DataKind
from ..core.volume import Volume
from ._parse import read_dataset

__all__ = [
    "RTSTRUCT_SOP_CLASS", "RTDOSE_SOP_CLASS", "RTPLAN_SOP_CLASSES", "RTIMAGE_SOP_CLASS",
    "ROI", "RTStructureSet", "read_rtstruct", "rasterize_rtstruct", "read_rtstruct_objects",
    "read_rtdose", "read_rtimage", "describe_rtplan", "read_sr_measurements", "read_dataset",
]

RTIMAGE_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.1"
RTDOSE_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.2"
RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
RTPLAN_SOP_CLASSES = ("1.2.840.10008.5.1.4.1.1.481.5", "1.2.840.10008.5.1.4.1.1.481.8")


# -- RT Structure Set -------------------------------------------------------------------------------
@dataclass
class ROI:
    """One structure: number, name, colour (RGB 0-1), contours (LPS polylines) and their types."""

    number: int
    name: str
    color: tuple[float, float, float] = (1.0, 1.0, 0.0)
    contours: list = field(default_factory=list)
    contour_types: list = field(default_factory=list)
    interpreted_type: str = ""

    @property
    def closed_planar(self) -> list:
        """Contours that enclose an area (CLOSED_PLANAR with at least 3 points)."""
        return [c for c, t in zip(self.contours, self.contour_types) if t == "CLOSED_PLANAR" and len(c) >= 3]


@dataclass
class RTStructureSet:
    """ROIs of an RT Structure Set in patient LPS (mm), with the UIDs of the images they were drawn on."""

    rois: list[ROI]
    name: str = ""
    frame_of_reference_uid: str = ""
    referenced_series_uid: str = ""
    referenced_instance_uids: list = field(default_factory=list)
    metadata: dict = field(default_factory=dict)
    source: str | None = None
    kind: DataKind = DataKind.RTSTRUCT

    def info(self) -> dict:
        """Summary for ``medio info --json``."""
        return {
            "kind": DataKind.RTSTRUCT, "name": self.name, "source": self.source,
            "rois": [{"number": r.number, "name": r.name, "color": list(r.color), "contours": len(r.contours),
                      "types": sorted(set(r.contour_types))} for r in self.rois],
            "referenced_series": self.referenced_series_uid,
        }

    def paths(self) -> list[dict]:
        """Every contour as ``{"roi", "name", "color", "type", "points" (N, 3) LPS}``."""
        out = []
        for r in self.rois:
            for c, t in zip(r.contours, r.contour_types):
                out.append({"roi": r.number, "name": r.name, "color": r.color, "type": t, "points": c})
        return out


def read_rtstruct(path: str | os.PathLike[str]) -> RTStructureSet:
    """ROIs, colours and contours of an RT Structure Set file."""
    p = Path(path)
    ds = read_dataset(p, modality="RTSTRUCT", sop_classes=(RTSTRUCT_SOP_CLASS,))
    try:
        names = {int(r.ROINumber): str(r.get("ROIName", "") or f"ROI {r.ROINumber}")
                 for r in ds.get("StructureSetROISequence", [])}
        interpreted = {int(o.ReferencedROINumber): str(o.get("RTROIInterpretedType", "") or "")
                       for o in ds.get("RTROIObservationsSequence", []) if "ReferencedROINumber" in o}
        rois: dict[int, ROI] = {n: ROI(n, name, interpreted_type=interpreted.get(n, "")) for n, name in names.items()}
        for item in ds.get("ROIContourSequence", []):
            n = int(item.ReferencedROINumber)
            roi = rois.setdefault(n, ROI(n, f"ROI {n}"))
            if item.get("ROIDisplayColor"):
                roi.color = tuple(round(float(c) / 255.0, 6) for c in item.ROIDisplayColor[:3])  # type: ignore[assignment]
            for c in item.get("ContourSequence", []) or []:
                data = np.asarray([float(v) for v in c.ContourData], dtype=float)
                if data.size % 3:
                    raise FormatError(p, f"ROI {n}: contour data has {data.size} values, not a multiple of 3")
                roi.contours.append(data.reshape(-1, 3))
                roi.contour_types.append(str(c.get("ContourGeometricType", "CLOSED_PLANAR")))
        ref_series, ref_instances, for_uid = "", [], ""
        for fr in ds.get("ReferencedFrameOfReferenceSequence", []) or []:
            for_uid = for_uid or str(fr.get("FrameOfReferenceUID", "") or "")
            for st in fr.get("RTReferencedStudySequence", []) or []:
                for se in st.get("RTReferencedSeriesSequence", []) or []:
                    ref_series = ref_series or str(se.get("SeriesInstanceUID", "") or "")
                    ref_instances += [str(i.ReferencedSOPInstanceUID) for i in se.get("ContourImageSequence", []) or []]
    except FormatError:
        raise
    except Exception as exc:
        raise FormatError(p, f"invalid RT Structure Set: {type(exc).__name__}: {exc}") from None
    meta = {"dicom": {k: str(ds.get(k, "")) for k in ("PatientName", "PatientID", "StudyInstanceUID",
                                                       "SeriesInstanceUID", "SOPInstanceUID", "Modality",
                                                       "StructureSetLabel", "SeriesDescription")}}
    return RTStructureSet(rois=[rois[k] for k in sorted(rois)], name=str(ds.get("StructureSetLabel", "") or p.stem),
                          frame_of_reference_uid=for_uid, referenced_series_uid=ref_series,
                          referenced_instance_uids=ref_instances, metadata=meta, source=os.fspath(p))


def _grid_for_contours(rs: RTStructureSet, spacing: float) -> tuple[Geometry, tuple[int, int, int]]:
    pts = [c for r in rs.rois for c in r.closed_planar]
    if not pts:
        raise FormatError(rs.source, "the structure set has no closed planar contours to rasterise")
    allp = np.vstack(pts)
    zs = np.unique(np.round([c[0, 2] for c in pts], 4))
    dz = float(np.min(np.diff(zs))) if zs.size > 1 else spacing
    lo = allp.min(axis=0) - spacing
    hi = allp.max(axis=0) + spacing
    lo[2], hi[2] = zs.min(), zs.max()
    steps = np.array([spacing, spacing, dz])
    shape_ijk = np.floor((hi - lo) / steps + 1e-6).astype(int) + 1
    return Geometry(steps, lo, np.eye(3)), (int(shape_ijk[2]), int(shape_ijk[1]), int(shape_ijk[0]))


def _fill_polygon(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    from skimage.draw import polygon

    mask = np.zeros(shape, dtype=bool)
    rr, cc = polygon(rows, cols, shape)
    mask[rr, cc] = True
    return mask


def rasterize_rtstruct(rs: RTStructureSet, reference: Any = None, *, spacing: float = 1.0) -> Any:
    """The ROIs as a core Segmentation on ``reference``'s grid (a series folder/files, a Volume or
    ``(Geometry, shape)``), else on an axis-aligned grid of ``spacing`` mm covering the contours.

    Closed planar contours are filled slice by slice (even-odd rule, so inner contours are holes);
    point and open contours are kept only in :meth:`RTStructureSet.paths`.
    """
    from ..core.segmentation import Segment, Segmentation
    from .seg import reference_grid, split_layers

    if reference is not None:
        geometry, shape = reference_grid(reference)
    else:
        geometry, shape = _grid_for_contours(rs, spacing)
    rois = [r for r in rs.rois if r.closed_planar]
    masks = np.zeros(tuple(shape) + (max(len(rois), 1),), dtype=bool)
    nk = shape[0]
    for n, roi in enumerate(rois):
        for contour in roi.closed_planar:
            ijk = geometry.lps_to_index(contour)
            ks = np.rint(ijk[:, 2]).astype(int)
            k = int(np.bincount(ks - ks.min()).argmax() + ks.min())
            if not 0 <= k < nk:
                continue
            masks[k, :, :, n] ^= _fill_polygon(ijk[:, 1], ijk[:, 0], (shape[1], shape[2]))
    if not rois:
        raise FormatError(rs.source, "the structure set has no closed planar contours to rasterise")
    groups = split_layers(masks[..., : len(rois)])
    arr = np.zeros((len(groups),) + tuple(shape), dtype=np.uint8 if len(rois) < 255 else np.uint16)
    segments = []
    for layer, members in enumerate(groups):
        for value, n in enumerate(members, start=1):
            arr[layer][masks[..., n]] = value
            roi = rois[n]
            segments.append(Segment(id=f"ROI_{roi.number}", name=roi.name, label_value=value, layer=layer,
                                    color=roi.color, tags={"DicomROINumber": str(roi.number),
                                                           "RTROIInterpretedType": roi.interpreted_type}))
    meta = {"dicom": dict(rs.metadata.get("dicom", {})), "ReferencedSeriesInstanceUID": rs.referenced_series_uid,
            "FrameOfReferenceUID": rs.frame_of_reference_uid}
    return Segmentation(array=arr[0] if len(groups) == 1 else arr, geometry=geometry, segments=segments,
                        name=rs.name, metadata=meta, source=rs.source)


def read_rtstruct_objects(path: str | os.PathLike[str], reference: Any = None) -> list:
    """What an RT Structure Set file loads as: [Segmentation (one Labels layer), RTStructureSet (Shapes paths)]."""
    rs = read_rtstruct(path)
    out: list = []
    if any(r.closed_planar for r in rs.rois):
        out.append(rasterize_rtstruct(rs, reference))
    out.append(rs)
    return out


# -- RT Dose -------------------------------------------------------------------------------------------
def _plane_geometry(ds: Any, p: Path, offsets: np.ndarray | None, nframes: int) -> Geometry:
    iop = np.asarray([float(v) for v in ds.ImageOrientationPatient], dtype=float)
    ipp = np.asarray([float(v) for v in ds.ImagePositionPatient], dtype=float)
    ps = [float(v) for v in ds.PixelSpacing]
    row, col = iop[:3], iop[3:]
    normal = np.cross(row, col)
    dz = 1.0
    if offsets is not None and nframes > 1:
        steps = np.diff(offsets)
        if np.any(np.abs(steps - steps[0]) > 1e-3 * max(1.0, abs(steps[0]))):
            raise FormatError(p, "GridFrameOffsetVector is not uniformly spaced; this dose grid cannot be placed "
                                 "on a regular volume")
        # Relative offsets (first 0) or absolute ones (first = the IPP's position along the
        # normal): either way the first frame is at ImagePositionPatient and the step is the difference.
        dz = float(steps[0])
    direction = np.column_stack([row, col, normal * (1.0 if dz >= 0 else -1.0)])
    return Geometry([ps[1], ps[0], abs(dz) if dz else 1.0], ipp, direction)


def read_rtdose(path: str | os.PathLike[str]) -> Volume:
    """An RT Dose grid as a float Volume in its DoseUnits (stored value x DoseGridScaling)."""
    p = Path(path)
    ds = read_dataset(p, modality="RTDOSE", sop_classes=(RTDOSE_SOP_CLASS,))
    if "PixelData" not in ds:
        raise FormatError(p, "RT Dose without a dose grid (no pixel data): a DVH-only object")
    try:
        arr = np.asarray(ds.pixel_array)
    except Exception as exc:
        raise FormatError(p, f"cannot decode the dose grid: {type(exc).__name__}: {exc}") from None
    nframes = int(ds.get("NumberOfFrames", 1) or 1)
    if nframes == 1:
        arr = arr[np.newaxis]
    offsets = None
    if ds.get("GridFrameOffsetVector") is not None:
        offsets = np.asarray([float(v) for v in ds.GridFrameOffsetVector], dtype=float)
        if offsets.size != nframes:
            raise FormatError(p, f"GridFrameOffsetVector has {offsets.size} values for {nframes} frames")
    elif nframes > 1:
        raise FormatError(p, "multi-frame RT Dose without GridFrameOffsetVector")
    try:
        geometry = _plane_geometry(ds, p, offsets, nframes)
    except FormatError:
        raise
    except Exception as exc:
        raise FormatError(p, f"RT Dose without a usable image plane: {type(exc).__name__}: {exc}") from None
    scaling = float(ds.get("DoseGridScaling", 1.0) or 1.0)
    dose = arr.astype(np.float64) * scaling
    meta = {
        "units": str(ds.get("DoseUnits", "GY") or "GY"),
        "dicom": {k: str(ds.get(k, "")) for k in ("PatientName", "PatientID", "StudyInstanceUID", "SeriesInstanceUID",
                                                   "SOPInstanceUID", "Modality", "FrameOfReferenceUID", "DoseType",
                                                   "DoseSummationType", "DoseUnits")},
        "DoseGridScaling": scaling,
        "GridFrameOffsetVector": offsets.tolist() if offsets is not None else None,
    }
    return Volume(dose.astype(np.float32), geometry, kind=DataKind.VOLUME,
                  name=str(ds.get("SeriesDescription", "") or "RT Dose"),
                  metadata=meta, source=os.fspath(p))


# -- RT Image --------------------------------------------------------------------------------------------
def read_rtimage(path: str | os.PathLike[str]) -> Volume:
    """An RT Image (portal / DRR) as a 2D Volume in its image plane (ImagePlanePixelSpacing, RTImagePosition)."""
    p = Path(path)
    ds = read_dataset(p, modality="RTIMAGE", sop_classes=(RTIMAGE_SOP_CLASS,))
    try:
        arr = np.asarray(ds.pixel_array)
    except Exception as exc:
        raise FormatError(p, f"cannot decode the RT Image pixels: {type(exc).__name__}: {exc}") from None
    if arr.ndim == 3 and int(ds.get("NumberOfFrames", 1) or 1) > 1:
        arr = arr[0]
    spacing = [float(v) for v in (ds.get("ImagePlanePixelSpacing") or ds.get("PixelSpacing") or [1.0, 1.0])]
    pos = [float(v) for v in (ds.get("RTImagePosition") or [0.0, 0.0])]
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    if slope != 1 or intercept != 0:
        arr = arr * slope + intercept
    # RT Image position is the upper-left pixel in the image plane, y up: flip j.
    geometry = Geometry([spacing[1], spacing[0]], [pos[0], -pos[1]], np.eye(2))
    meta = {"dicom": {k: str(ds.get(k, "")) for k in ("PatientID", "SeriesInstanceUID", "SOPInstanceUID", "Modality",
                                                       "RTImageLabel", "RTImagePlane")},
            "coordinates": "RT image plane (mm at the image receptor), not patient LPS"}
    return Volume(arr, geometry, name=str(ds.get("RTImageLabel", "") or "RT Image"), metadata=meta, source=os.fspath(p))


# -- RT Plan ---------------------------------------------------------------------------------------------
def describe_rtplan(path: str | os.PathLike[str]) -> dict:
    """A summary of an RT Plan (label, beams, fractions); plans are listed, never loaded as layers."""
    p = Path(path)
    ds = read_dataset(p, modality="RTPLAN", sop_classes=RTPLAN_SOP_CLASSES, pixels=False)
    beams = []
    for b in ds.get("BeamSequence", []) or ds.get("IonBeamSequence", []) or []:
        beams.append({"number": int(b.get("BeamNumber", 0) or 0), "name": str(b.get("BeamName", "") or ""),
                      "type": str(b.get("BeamType", "") or ""), "radiation": str(b.get("RadiationType", "") or "")})
    fractions = None
    for fg in ds.get("FractionGroupSequence", []) or []:
        fractions = int(fg.get("NumberOfFractionsPlanned", 0) or 0)
        break
    return {"kind": "rtplan", "label": str(ds.get("RTPlanLabel", "") or ""),
            "name": str(ds.get("RTPlanName", "") or ""),
            "geometry": str(ds.get("RTPlanGeometry", "") or ""), "beams": beams, "fractions_planned": fractions,
            "SOPInstanceUID": str(ds.get("SOPInstanceUID", "")), "source": os.fspath(p)}


# -- Structured report (TID 1500) --------------------------------------------------------------------------
def _meaning(item: Any, keyword: str = "ConceptNameCodeSequence") -> str:
    seq = item.get(keyword)
    return str(seq[0].get("CodeMeaning", "") or seq[0].get("CodeValue", "")) if seq else ""


def read_sr_measurements(path: str | os.PathLike[str]) -> Any:
    """Numeric measurements of a structured report (TID 1500 measurement groups) as a Table.

    Columns: group (tracking identifier), tracking_uid, finding, finding_site, measurement,
    value, unit, derivation.  Measurements outside groups are listed with an empty group.
    """
    from ..core.table import Table

    p = Path(path)
    ds = read_dataset(p, modality="SR", pixels=False)
    if "ContentSequence" not in ds:
        raise FormatError(p, "structured report without content")
    rows: list[list[str]] = []

    def walk(items: Any, ctx: dict) -> None:
        local = dict(ctx)
        for it in items:  # context items of this level first (tracking id, finding, site)
            name = _meaning(it)
            vt = str(it.get("ValueType", ""))
            if vt == "TEXT" and name == "Tracking Identifier":
                local["group"] = str(it.get("TextValue", ""))
            elif vt == "UIDREF" and name == "Tracking Unique Identifier":
                local["tracking_uid"] = str(it.get("UID", ""))
            elif vt == "CODE" and name == "Finding":
                local["finding"] = _meaning(it, "ConceptCodeSequence")
            elif vt == "CODE" and name == "Finding Site":
                local["finding_site"] = _meaning(it, "ConceptCodeSequence")
        for it in items:
            vt = str(it.get("ValueType", ""))
            if vt == "NUM":
                mv = (it.get("MeasuredValueSequence") or [None])[0]
                value = str(mv.get("NumericValue", "")) if mv is not None else ""
                unit = ""
                if mv is not None and mv.get("MeasurementUnitsCodeSequence"):
                    unit = str(mv.MeasurementUnitsCodeSequence[0].get("CodeValue", ""))
                derivation = ""
                for sub in it.get("ContentSequence", []) or []:
                    if _meaning(sub) == "Derivation":
                        derivation = _meaning(sub, "ConceptCodeSequence")
                rows.append([local.get("group", ""), local.get("tracking_uid", ""), local.get("finding", ""),
                             local.get("finding_site", ""), _meaning(it), value, unit, derivation])
            elif vt == "CONTAINER" and it.get("ContentSequence"):
                walk(it.ContentSequence, local)

    try:
        walk(ds.ContentSequence, {})
    except Exception as exc:
        raise FormatError(p, f"invalid structured report content: {type(exc).__name__}: {exc}") from None
    columns = ["group", "tracking_uid", "finding", "finding_site", "measurement", "value", "unit", "derivation"]
    schema = [{"columnName": "value", "type": "double"}]
    title = _meaning(ds) or "Structured report"
    keys = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID", "Modality")
    return Table(columns=columns, rows=rows, schema=schema, name=title,
                 metadata={"dicom": {k: str(ds.get(k, "")) for k in keys}}, source=os.fspath(p))
