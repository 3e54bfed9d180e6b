"""Reading DICOM Segmentation objects (binary and fractional, overlapping segments) with highdicom.

:func:`read_seg_segmentation` gives a core
:class:`~napari_medio.core.segmentation.Segmentation`: one layer per group of
mutually non-overlapping segments (Slicer's layers), segment names, colours
(from the CIELab recommended display value), Slicer ``TerminologyEntry`` tags
(from the coded category/type/modifier/anatomic region) and the DICOM UIDs.
:func:`read_seg` gives the label-map Volumes of its layers, each with
``metadata["color_table"] = {label: {"name", "color": [r, g, b, a]}}``.

Geometry comes from the SEG's own plane positions (highdicom's volume
geometry); with ``reference_series`` (a folder, files or a geometry) the
labels are placed on the reference image grid, as the source series shows them.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import CancelledError, FormatError, MedioError
from ..core.geometry import Geometry, reorient
from ..core.volume import Volume
from ._parse import read_dataset

__all__ = ["SEG_SOP_CLASS", "read_seg", "read_seg_segmentation", "reference_grid", "seg_dataset", "split_layers",
           "terminology_entry"]

SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
_LABELMAP_SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.7"


def seg_dataset(path: str | os.PathLike[str]) -> Any:
    """The highdicom Segmentation of a file (FormatError naming the file when it is not a valid SEG)."""
    import highdicom as hd

    p = Path(path)
    ds = read_dataset(p, modality="SEG", sop_classes=(SEG_SOP_CLASS, _LABELMAP_SEG_SOP_CLASS))
    if "PixelData" not in ds:
        raise FormatError(p, "DICOM SEG without pixel data")
    try:
        seg = hd.seg.Segmentation.from_dataset(ds, copy=False)
    except Exception as exc:
        raise FormatError(p, f"invalid DICOM SEG: {type(exc).__name__}: {exc}") from None
    return seg


def _triplet(item: Any) -> dict | None:
    if item is None:
        return None
    return {"scheme": str(item.CodingSchemeDesignator), "value": str(item.CodeValue),
            "meaning": str(item.get("CodeMeaning", ""))}


def terminology_entry(desc: Any) -> dict:
    """Coded terminology of one SegmentSequence item as Slicer's parsed TerminologyEntry dict."""

    def first(owner: Any, keyword: str) -> Any:
        seq = owner.get(keyword) if owner is not None else None
        return seq[0] if seq else None

    typ = first(desc, "SegmentedPropertyTypeCodeSequence")
    entry = {
        "context": "Segmentation category and type - DICOM master list",
        "category": _triplet(first(desc, "SegmentedPropertyCategoryCodeSequence")),
        "type": _triplet(typ),
        "type_modifier": _triplet(first(typ, "SegmentedPropertyTypeModifierCodeSequence")),
        "region_context": "Anatomic codes - DICOM master list",
        "region": _triplet(first(desc, "AnatomicRegionSequence")),
        "region_modifier": _triplet(first(first(desc, "AnatomicRegionSequence"), "AnatomicRegionModifierSequence")),
    }
    return entry


def _hd_volume_geometry(affine: np.ndarray) -> Geometry:
    """Our Geometry from highdicom's (slice, row, column) -> LPS affine."""
    m = np.eye(4)
    m[:3, 0] = affine[:3, 2]
    m[:3, 1] = affine[:3, 1]
    m[:3, 2] = affine[:3, 0]
    m[:3, 3] = affine[:3, 3]
    return Geometry.from_index_to_lps(m)


def split_layers(masks: np.ndarray) -> list[list[int]]:
    """Greedy grouping of segment indices into layers whose masks do not overlap."""
    layers: list[tuple[list[int], np.ndarray]] = []
    for n in range(masks.shape[-1]):
        m = masks[..., n]
        for members, union in layers:
            if not np.any(union & m):
                members.append(n)
                union |= m
                break
        else:
            layers.append(([n], m.copy()))
    return [members for members, _ in layers] or [[]]


def reference_grid(reference: Any) -> tuple[Geometry, tuple[int, int, int]]:
    """(LPS geometry, (k, j, i) shape) of a reference image: a (geometry, shape) pair, a Volume or a series."""
    from .export import load_reference_series, reference_geometry

    if isinstance(reference, tuple) and len(reference) == 2 and isinstance(reference[0], Geometry):
        return reference[0], tuple(int(s) for s in reference[1])  # type: ignore[return-value]
    if isinstance(reference, Volume):
        return reference.geometry.as_3d(), tuple(reference.spatial_shape[-3:])  # type: ignore[return-value]
    return reference_geometry(load_reference_series(reference))


def _resample_onto(masks: np.ndarray, src: Geometry, dst: Geometry, shape: Sequence[int]) -> np.ndarray:
    """Nearest-neighbour placement of (k, j, i, n) masks onto another grid (exact when grids share voxels)."""
    src_idx_of_dst = np.linalg.inv(src.index_to_lps_matrix()) @ dst.index_to_lps_matrix()
    lin = src_idx_of_dst[:3, :3]
    off = src_idx_of_dst[:3, 3]
    out = np.zeros(tuple(shape) + masks.shape[-1:], dtype=masks.dtype)
    nk, nj, ni = masks.shape[:3]
    kk, jj, ii = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    ijk = np.stack([ii, jj, kk], axis=-1).reshape(-1, 3).astype(float)
    src_ijk = np.rint(ijk @ lin.T + off).astype(np.int64)
    ok = ((src_ijk[:, 0] >= 0) & (src_ijk[:, 0] < ni) & (src_ijk[:, 1] >= 0) & (src_ijk[:, 1] < nj)
          & (src_ijk[:, 2] >= 0) & (src_ijk[:, 2] < nk))
    flat = out.reshape(-1, masks.shape[-1])
    flat[ok] = masks[src_ijk[ok, 2], src_ijk[ok, 1], src_ijk[ok, 0]]
    return out


def _seg_masks(seg: Any, p: Path, numbers: list[int], threshold: float) -> tuple[np.ndarray, Geometry, bool]:
    """(masks k, j, i, segment; their LPS geometry, k along the slice normal; fractional?) of a SEG."""
    try:
        fractional = str(seg.get("SegmentationType", "BINARY")) == "FRACTIONAL"
        vol = seg.get_volume(combine_segments=False, rescale_fractional=True, skip_overlap_checks=True,
                             segment_numbers=numbers, dtype=np.float32 if fractional else np.uint8)
    except (MedioError, CancelledError):
        raise
    except Exception as exc:
        raise FormatError(p, f"cannot place the DICOM SEG frames on a volume: {type(exc).__name__}: {exc}") from None
    arr = np.asarray(vol.array)
    if arr.ndim == 3:
        arr = arr[..., np.newaxis]
    masks = arr >= threshold if fractional else arr > 0
    geometry = _hd_volume_geometry(np.asarray(vol.affine))
    d = geometry.direction
    if masks.shape[0] > 1 and float(np.dot(np.cross(d[:, 0], d[:, 1]), d[:, 2])) < 0:
        # highdicom stacks slices top-down; keep k along the slice normal (as the image series reads)
        geometry = reorient(geometry, masks.shape[:3], (0, 1, 2), (True, False, False))
        masks = masks[::-1]
    return masks, geometry, fractional


def _segment(desc: Any, number: int, index: int, value: int, layer: int) -> Any:
    """The core Segment of one SegmentSequence item (colour, terminology and DICOM identifiers)."""
    from ..core.segmentation import TERMINOLOGY_TAG, Segment, default_color, format_terminology
    from .export import cielab_to_rgb

    color = None
    if "RecommendedDisplayCIELabValue" in desc:
        try:
            color = cielab_to_rgb(desc.RecommendedDisplayCIELabValue)
        except Exception:
            color = None
    entry = terminology_entry(desc)
    tags = {}
    if entry.get("category") and entry.get("type"):
        tags[TERMINOLOGY_TAG] = format_terminology(entry)
    tags["DicomSegmentNumber"] = str(number)
    if desc.get("TrackingUID"):
        tags["DicomTrackingUID"] = str(desc.TrackingUID)
    algo = str(desc.get("SegmentAlgorithmType", "") or "")
    if algo:
        tags["DicomSegmentAlgorithmType"] = algo
    return Segment(
        id=str(desc.get("TrackingID") or f"Segment_{number}"),
        name=str(desc.get("SegmentLabel", "") or f"Segment_{number}"),
        label_value=value, layer=layer,
        color=color if color is not None else default_color(index),
        tags=tags, color_auto_generated=color is None,
    )


def _unique_ids(segments: list) -> None:
    """Make segment IDs unique (a repeated ID gets ``_1``, ``_2``, ...)."""
    ids = set()
    for s in segments:
        base, k = s.id, 1
        while s.id in ids:
            s.id = f"{base}_{k}"
            k += 1
        ids.add(s.id)


def _seg_metadata(seg: Any, fractional: bool, overlapping: bool, n_segments: int) -> dict:
    """The DICOM identifiers and SEG kind a Segmentation keeps in its metadata."""
    refs = [str(item.SeriesInstanceUID) for item in seg.get("ReferencedSeriesSequence", []) or []]
    return {
        "dicom": {
            "Modality": "SEG", "SOPClassUID": str(seg.SOPClassUID), "SOPInstanceUIDs": [str(seg.SOPInstanceUID)],
            "SeriesInstanceUID": str(seg.SeriesInstanceUID), "StudyInstanceUID": str(seg.StudyInstanceUID),
            "PatientID": str(seg.get("PatientID", "")), "PatientName": str(seg.get("PatientName", "")),
            "SeriesDescription": str(seg.get("SeriesDescription", "")),
            "FrameOfReferenceUID": str(seg.get("FrameOfReferenceUID", "")),
            "ReferencedSeriesInstanceUIDs": refs,
            "SegmentationType": str(seg.get("SegmentationType", "")),
        },
        "ReferencedSeriesInstanceUID": refs[0] if refs else "",
        "fractional": fractional,
        "overlapping": overlapping,
        "n_segments": n_segments,
    }


def read_seg_segmentation(path: str | os.PathLike[str], reference_series: Any = None,
                          threshold: float = 0.5) -> Any:
    """A DICOM SEG file as a core Segmentation (layers for overlapping segments).

    Fractional segments are thresholded at ``threshold`` (of the maximum value);
    the fractional values themselves are in ``metadata["fractional"]`` (True).
    """
    from ..core.segmentation import Segmentation

    p = Path(path)
    seg = seg_dataset(p)
    try:
        numbers = [int(s.SegmentNumber) for s in seg.SegmentSequence]
    except Exception as exc:
        raise FormatError(p, f"cannot place the DICOM SEG frames on a volume: {type(exc).__name__}: {exc}") from None
    masks, geometry, fractional = _seg_masks(seg, p, numbers, threshold)
    if reference_series is not None:
        ref_geom, ref_shape = reference_grid(reference_series)
        masks = _resample_onto(masks, geometry, ref_geom, ref_shape)
        geometry = ref_geom
    groups = split_layers(masks)
    top = max((len(g) for g in groups), default=1)
    layer_arrays = np.zeros((len(groups),) + masks.shape[:3], dtype=np.uint8 if top < 255 else np.uint16)
    descs = {int(s.SegmentNumber): s for s in seg.SegmentSequence}
    segments = []
    for layer, members in enumerate(groups):
        for value, n in enumerate(members, start=1):
            layer_arrays[layer][masks[..., n]] = value
            segments.append(_segment(descs[numbers[n]], numbers[n], n, value, layer))
    _unique_ids(segments)
    name = str(seg.get("SeriesDescription", "") or seg.get("ContentLabel", "") or p.stem)
    return Segmentation(array=layer_arrays[0] if len(groups) == 1 else layer_arrays, geometry=geometry,
                        segments=segments, name=name,
                        metadata=_seg_metadata(seg, fractional, len(groups) > 1, masks.shape[-1]),
                        source=os.fspath(p))


def read_seg(path: str | os.PathLike[str], reference_series: Any = None) -> list[Volume]:
    """A DICOM SEG file as label-map Volumes, one per layer of non-overlapping segments.

    Each has ``metadata["color_table"]``, ``metadata["segmentation"]`` (segment table
    with terminology) and ``metadata["dicom"]`` (UIDs, referenced series).
    """
    seg = read_seg_segmentation(path, reference_series)
    volumes = []
    for layer in range(seg.n_layers):
        v = seg.labelmap(layer)
        v.metadata["dicom"] = dict(seg.metadata["dicom"])
        if seg.n_layers > 1:
            v.name = f"{seg.name} (layer {layer + 1})"
        volumes.append(v)
    return volumes
